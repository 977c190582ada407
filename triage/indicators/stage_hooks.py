"""Execution-stage post detectors: install command overrides, install gates, start-up hooks.

They run after the behaviour detectors so that a hook's confidence can follow what its body
does: an overridden ``install.run`` that only calls the base class is a low-confidence
capability; one whose body downloads and runs a file is as sure as that behaviour.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, PackageContext, detector
from triage.indicators.execution_common import callee
from triage.indicators.execution_post import SignalIndex
from triage.indicators.execution_text import text_of
from triage.model import FileKind, Phase, Signal, Statement
from triage.statements import INSTALL_COMMANDS, STARTUP_MODULES, module_phase

_STRONG_COMMANDS = frozenset({"install", "develop", "egg_info", "easy_install", "bdist_egg",
                              "install_lib", "install_scripts", "install_data"})
_HOOK = "code_execution_install_hook_override"
_CMDCLASS_CAP = 0.45


def _command_base(fc: FileContext, node: ast.ClassDef) -> str:
    """The setuptools/distutils command a class overrides ('' when none)."""
    for base in node.bases:
        name = fc.resolver.qualname(base) or ""
        last = name.split(".")[-1]
        if last in INSTALL_COMMANDS:
            return last
        if ".command." in name:
            return name.split(".command.")[-1].split(".")[0]
    return ""


def _is_base_call(fc: FileContext, node: ast.AST, classes: set[str]) -> bool:
    """``install.run(self)``, ``super().run()``, ``self.do_egg_install()`` and the like."""
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call) or not isinstance(sub.func, ast.Attribute):
            continue
        owner = sub.func.value
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) \
                and owner.func.id == "super":
            return True
        name = callee(fc, sub)
        parts = name.split(".")
        if len(parts) >= 2 and (parts[-2] in INSTALL_COMMANDS or parts[-2] in classes
                                or parts[-2].lstrip("_") in INSTALL_COMMANDS):
            return True
        if name.startswith("self.do_egg_install") or name == "orig.run":
            return True
    return False


def _local_call(node: ast.AST, functions: set[str]) -> bool:
    return any(isinstance(s, ast.Call) and isinstance(s.func, ast.Name) and s.func.id in functions
               for s in ast.walk(node))


@detector("install_hook_override", _HOOK)
def install_hook_override(arg: tuple[PackageContext, tuple[Signal, ...]]) -> Iterator[Signal]:
    """``class X(install)`` with an overriding ``run``, and the ``cmdclass=`` that registers it."""
    pkg, signals = arg
    idx = SignalIndex.build(pkg, signals)
    install_texts = [fc.source.text for fc in pkg.files
                     if module_phase(fc.source) is Phase.INSTALL]
    if not install_texts:
        return  # no setup.py (a wheel): no install command of the package ever runs
    for fc in pkg.files:
        hooks: dict[str, float] = {}
        at_install = module_phase(fc.source) is Phase.INSTALL
        functions = {n.name for st, n in fc.statements()
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.depth == 0}
        for st, node in fc.statements():
            if not isinstance(node, ast.ClassDef):
                continue
            cmd = _command_base(fc, node)
            if not cmd:
                continue
            if not at_install and not _mentioned(node.name, install_texts):
                continue  # a command class setup.py never names (setuptools' own commands)
            body = idx.subtree(fc, st.id)
            best, where = idx.strongest_in(body)
            called = {s.id for s in body if _local_call(fc.index.node_of(s.id) or ast.Pass(),
                                                        functions)}
            for s in body:
                if s.id in called:
                    best = max(best, _function_behaviour(idx, fc, s, functions))
            base = 0.35 if cmd in _STRONG_COMMANDS else 0.2
            conf = round(max(base, min(best, 0.95)), 2)
            hooks[node.name] = conf
            tail = f"; its body acts at line {where.start_line}" if where and best >= 0.5 else ""
            yield fc.signal(_HOOK, st, f"class {node.name} overrides the setuptools `{cmd}` "
                            f"command{tail}", confidence=conf, detector="install_hook_override")
            yield from _methods(fc, idx, st, node, cmd, conf, called)
            if conf >= 0.5:  # a malicious hook: its whole body is the finding
                for s in body:
                    if s.scope == node.name:
                        yield fc.signal(_HOOK, s, f"part of the overriding command class "
                                        f"{node.name}", confidence=conf,
                                        detector="install_hook_override")
        if hooks:
            yield from _cmdclass(fc, hooks)


def _mentioned(name: str, texts: list[str]) -> bool:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    return any(pattern.search(t) for t in texts)


def _function_behaviour(idx: SignalIndex, fc: FileContext, st: Statement,
                        functions: set[str]) -> float:
    node = fc.index.node_of(st.id)
    names = {s.func.id for s in ast.walk(node) if isinstance(s, ast.Call)
             and isinstance(s.func, ast.Name) and s.func.id in functions} if node else set()
    scoped = [x for x in fc.index.statements if x.scope.split(".")[0] in names]
    return idx.strongest_in(scoped)[0]


def _methods(fc: FileContext, idx: SignalIndex, cls_st: Statement, node: ast.ClassDef, cmd: str,
             conf: float, called: set[str]) -> Iterator[Signal]:
    classes = {node.name}
    for meth_st in idx.children(fc, cls_st.id):
        meth = fc.index.node_of(meth_st.id)
        if not isinstance(meth, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        inner = idx.subtree(fc, meth_st.id)
        acts = idx.strongest_in(inner)[0] >= 0.5 or any(s.id in called for s in inner)
        if meth.name != "run" and not acts:
            continue
        yield fc.signal(_HOOK, meth_st, f"{node.name}.{meth.name}() replaces the `{cmd}` "
                        f"command's step and runs during installation", confidence=conf,
                        detector="install_hook_override")
        malicious = conf >= 0.5
        for s in (inner if malicious else idx.children(fc, meth_st.id)):
            n = fc.index.node_of(s.id)
            if n is None and not malicious:
                continue
            if n is not None and _is_base_call(fc, n, classes):
                what = "hands back to the original command after its own code"
            elif s.id in called:
                what = "calls a local function from the overridden command"
            elif malicious:
                what = "runs this statement during installation"
            else:
                continue
            yield fc.signal(_HOOK, s, f"{node.name}.{meth.name}() {what}", confidence=conf,
                            detector="install_hook_override")


def _cmdclass(fc: FileContext, hooks: dict[str, float]) -> Iterator[Signal]:
    """The ``cmdclass=`` keyword lines of setup() (and dict entries) naming a hook class."""
    for site in fc.calls():
        if site.name.split(".")[-1] != "setup":
            continue
        for kw in site.node.keywords:
            if kw.arg != "cmdclass":
                continue
            value = kw.value
            entries: list[tuple[int, int, str]] = []
            if isinstance(value, ast.Dict):
                for key, val in zip(value.keys, value.values, strict=True):
                    if isinstance(val, ast.Name) and val.id in hooks:
                        start = key.lineno if key is not None else val.lineno
                        entries.append((start, val.end_lineno or val.lineno, val.id))
            named = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)} & set(hooks)
            if not named and not entries:
                continue
            # the dev labels never mark these lines, so they stay below the usual threshold
            conf = min(_CMDCLASS_CAP, max(hooks[n] for n in named | {e[2] for e in entries}))
            kw_line = getattr(kw, "lineno", value.lineno)
            yield fc.signal(_HOOK, site.statement, "setup(cmdclass=...) registers the "
                            f"overriding command class {', '.join(sorted(named))}",
                            confidence=conf, detector="install_hook_override",
                            lines=(kw_line, kw_line))
            for start, end, name in entries:
                if start != kw_line:
                    yield fc.signal(_HOOK, site.statement, f"cmdclass maps a setuptools "
                                    f"command to {name}", confidence=conf,
                                    detector="install_hook_override", lines=(start, end))


_INSTALL_WORDS = frozenset({"install", "develop", "egg_info", "bdist_wheel", "bdist_egg",
                            "build", "easy_install", "install_lib"})


def _install_gate(fc: FileContext, test: ast.AST) -> str:
    """What an ``if`` test checks about installation ('' when it does not)."""
    word = ""
    argv = pip_name = process = False
    for sub in ast.walk(test):
        if isinstance(sub, (ast.Attribute, ast.Name)):
            name = fc.resolver.qualname(sub) or ""
            argv = argv or name == "sys.argv"
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            if sub.value in _INSTALL_WORDS:
                word = sub.value
            if re.match(r"(?i)^pip[0-9.]*(\.exe)?$", sub.value):
                pip_name = True
            if re.match(r"^PIP_(BUILD_TRACKER|REQ_TRACKER|PYTHON_PATH)$", sub.value):
                return f"the {sub.value} variable is set (pip is running)"
        elif isinstance(sub, ast.Call):
            last = callee(fc, sub).split(".")[-1]
            process = process or last in ("getppid", "Process", "parent", "parents", "cmdline")
    if argv and word:
        return f"`{word}` in sys.argv"
    if pip_name and process:
        return "pip in the process tree"
    return ""


@detector("install_gate", "code_execution_install")
def install_gate(arg: tuple[PackageContext, tuple[Signal, ...]]) -> Iterator[Signal]:
    """Code gated on installation: ``if "install" in sys.argv:`` and the block it guards."""
    pkg, signals = arg
    idx = SignalIndex.build(pkg, signals)
    for fc in pkg.files:
        for st, node in fc.statements():
            if not isinstance(node, ast.If):
                continue
            what = _install_gate(fc, node.test)
            if not what:
                continue
            best, where = idx.strongest_in(idx.subtree(fc, st.id))
            conf = round(max(0.25, min(best, 0.9)), 2)
            tail = f"; the block acts at line {where.start_line}" if where and best >= 0.5 else ""
            yield fc.signal("code_execution_install", st, f"runs its block only when {what}"
                            f"{tail}", confidence=conf, detector="install_gate")
            if best >= 0.5:
                for child in idx.children(fc, st.id):
                    yield fc.signal("code_execution_install", child, f"runs only when {what}",
                                    confidence=conf, detector="install_gate")


_PTH_BENIGN = re.compile(r"_distutils_hack|__editable__|_virtualenv|COV_CORE_SOURCE|"
                         r"coverage\.process_startup|_pytest|setuptools")
_PTH_BAD = re.compile(r"exec|eval|b64decode|base64|subprocess|urlopen|compile|os\.system|"
                      r"marshal|zlib|socket|requests|popen|__import__")


@detector("startup_hook", "code_execution_startup_hook")
def startup_hook(arg: tuple[PackageContext, tuple[Signal, ...]]) -> Iterator[Signal]:
    """Executable .pth lines, sitecustomize/usercustomize code, and writes of such files."""
    pkg, signals = arg
    idx = SignalIndex.build(pkg, signals)
    for fc in pkg.files:
        base = fc.source.path.split("!")[-1].split("#")[0].rsplit("/", 1)[-1]
        if fc.source.kind is FileKind.PTH:
            for st, node in fc.statements():
                if node is None:
                    continue
                text = st.text.strip()
                if _PTH_BENIGN.search(text):
                    conf = 0.2
                elif _PTH_BAD.search(text):
                    conf = 0.9
                elif ";" in text:
                    conf = 0.6
                else:
                    conf = 0.35
                conf = max(conf, idx.own(st.id))
                yield fc.signal("code_execution_startup_hook", st, "a .pth line that Python "
                                "executes at every interpreter start-up", confidence=conf,
                                detector="startup_hook")
        elif base in STARTUP_MODULES and fc.source.kind is not FileKind.DECODED:
            for st, node in fc.statements():
                if st.scope != "<module>" or node is None or isinstance(
                        node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
                    continue
                conf = idx.own(st.id)
                if conf < 0.3 and not any(isinstance(n, ast.Call) for n in fc.own(st)):
                    continue
                yield fc.signal("code_execution_startup_hook", st, f"{base} runs this at "
                                "every interpreter start-up", confidence=max(conf, 0.4),
                                detector="startup_hook")
        yield from _writes_hook_file(fc)


def _writes_hook_file(fc: FileContext) -> Iterator[Signal]:
    for site in fc.calls():
        last = site.name.split(".")[-1]
        if last not in ("open", "copy", "copyfile", "copy2", "write_text", "write_bytes",
                        "move", "urlretrieve"):
            continue
        text = " ".join(text_of(fc, a, site.statement) for a in site.node.args[:2])
        if last == "open" and not re.search(r"['\"][wax]b?\+?['\"]", site.statement.text):
            continue
        m = re.search(r"[\w.-]*\.pth\b|sitecustomize\.py|usercustomize\.py", text)
        if m:
            yield fc.signal("code_execution_startup_hook", site.statement,
                            f"writes `{m.group(0)}`, which Python runs at every start-up",
                            confidence=0.8, detector="startup_hook")
