"""Code-execution detectors: exec/eval, encoded and decrypted payloads, dynamic imports.

Each exec/eval call is judged by where its argument comes from (followed through local
assignments): network fetches, decoders and decryption are high; constant harmless literals
and the ubiquitous ``exec(open('pkg/version.py').read())`` of setup.py files are low or
silent.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from triage.indicators.base import CallSite, FileContext, detector
from triage.indicators.execution_commands import Launch, launches, program_expr
from triage.indicators.execution_common import (
    EXEC_FUNCS,
    Origin,
    Traits,
    callee,
    defang,
    early,
    facts,
    is_decode,
    is_decrypt,
    origin,
    per_file,
    top_level,
    traits,
)
from triage.indicators.execution_text import text_of
from triage.indicators.system_common import TEST_PATH
from triage.model import Signal, Statement

_VERSION_FILE = re.compile(r"(?i)(version|about|__init__|_meta|release|pkg_?info|const|"
                           r"info\.py|\.cfg|\.toml|\.txt|requirements|readme)")
_TEMP = re.compile(r"(?i)(temp|tmp|appdata|download|cache)")
_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "getattr", "globals", "open",
                       "setattr", "vars", "locals", "execfile", "input"})
DANGER_MODULES = frozenset({"os", "subprocess", "socket", "base64", "ctypes", "urllib",
                            "urllib.request", "urllib2", "requests", "marshal", "zlib",
                            "builtins", "__builtin__", "shutil", "pty", "codecs", "sys",
                            "importlib", "win32api", "winreg", "platform", "getpass"})


@dataclass(frozen=True)
class ExecSite:
    """One exec/eval call with the origin of its argument."""

    site: CallSite
    arg: ast.AST
    origin: Origin
    traits: Traits


def exec_sites(ctx: FileContext) -> list[ExecSite]:
    """exec/eval/execfile calls of a file with what their argument is made of (cached)."""
    return per_file(ctx, "exec_sites", _exec_sites)


def _exec_sites(ctx: FileContext) -> list[ExecSite]:
    out: list[ExecSite] = []
    for site in ctx.calls():
        if site.name not in EXEC_FUNCS:
            continue
        call = site.node
        arg = call.args[0] if call.args else next(
            (k.value for k in call.keywords if k.arg in ("source", "object", "expression")),
            None)
        if arg is None:
            continue
        org = origin(ctx, arg, site.statement)
        out.append(ExecSite(site, arg, org, traits(ctx, org.nodes)))
    return out


_PLAIN_BUILTINS = frozenset({
    "type", "len", "int", "float", "str", "bytes", "bool", "complex", "dict", "list", "tuple",
    "set", "frozenset", "range", "isinstance", "issubclass", "repr", "min", "max", "sum", "abs",
    "round", "sorted", "reversed", "enumerate", "zip", "print", "object", "slice"})
"""Builtins that neither run code nor touch the system (numpy's tests build classes with
``eval("type('T', (base,), ns)")``)."""


_RISKY_NAMES = re.compile(r"__import__|\b(os|sys|subprocess|system|popen|exec|eval|compile|"
                          r"open|socket|urllib|requests|getattr|globals|builtins|b64decode|"
                          r"marshal|pickle|ctypes)\b")


def _eager_calls(tree: ast.AST) -> list[ast.Call]:
    """Calls that run when the code runs (not those inside lambdas or definitions)."""
    out: list[ast.Call] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Call):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _literal_verdict(code: str) -> tuple[float, str]:
    """Confidence and reason for exec/eval of a constant string."""
    try:
        tree = ast.parse(code.strip(), mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0.2, "a constant string that is not valid Python"
    body = tree.body
    if len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Name):
        name = body[0].value.id
        if name in _BUILTINS:
            return 0.7, f"a string that names the builtin `{name}` (hides the call)"
    nodes = list(ast.walk(tree))
    if not any(isinstance(n, (ast.Call, ast.Import, ast.ImportFrom)) for n in nodes):
        return 0.1, "a constant literal without calls"
    now = _eager_calls(tree)
    if _RISKY_NAMES.search(code):
        return 0.6, "constant code that makes calls"
    if not now and not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes):
        return 0.15, "constant code whose calls run only later (in a lambda)"
    if all(isinstance(c.func, ast.Name) and c.func.id in _PLAIN_BUILTINS for c in now) and \
            not any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in nodes):
        return 0.2, "constant code that calls only plain builtins"
    if all(isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign,
                          ast.AsyncFunctionDef, ast.Pass, ast.If, ast.Try)) for s in body):
        return 0.15, "constant code that only defines names"
    return 0.6, "constant code that makes calls"


def _file_path(ctx: FileContext, es: ExecSite) -> str | None:
    for sub in es.origin.nodes:
        if isinstance(sub, ast.Call) and callee(ctx, sub).split(".")[-1] == "open" and sub.args:
            return text_of(ctx, sub.args[0], es.site.statement)
    return None


def _written(ctx: FileContext, path: str) -> bool:
    fx = facts(ctx)
    base = re.split(r"[\\/]", path.strip("{}'\""))[-1]
    names = set(re.findall(r"[\w.-]+", path))
    return bool(_TEMP.search(path) or base in fx.written or names & fx.written)


def _sig(ctx: FileContext, ind: str, st: Statement, ev: str, conf: float, name: str) -> Signal:
    return ctx.signal(ind, st, ev, confidence=round(conf, 2), detector=name)


@detector("dynamic_evaluation", "code_execution_dynamic_evaluation",
          "code_execution_script_file")
def dynamic_evaluation(ctx: FileContext) -> Iterator[Signal]:
    """exec/eval/execfile of code built or obtained at run time."""
    for es in exec_sites(ctx):
        st, name, tr = es.site.statement, es.site.name, es.traits
        ind = "code_execution_dynamic_evaluation"
        if tr.network:
            yield _sig(ctx, ind, st, f"{name} runs code fetched from the network with "
                       f"{tr.network} at {st.phase.value} time", 0.95, "dynamic_evaluation")
            continue
        if tr.decrypt or tr.decode:
            how = f"decrypted with {tr.decrypt}" if tr.decrypt else f"decoded with {tr.decode}"
            yield _sig(ctx, ind, st, f"{name} runs code {how} at {st.phase.value} time",
                       0.9, "dynamic_evaluation")
            continue
        folded = ctx.resolver.fold(es.arg)
        if isinstance(folded, bytes):
            folded = folded.decode("latin-1")
        if isinstance(folded, str):
            conf, why = _literal_verdict(folded)
            if not isinstance(es.arg, ast.Constant) and conf >= 0.6:
                conf, why = 0.85, why + ", assembled from pieces to hide it"
            elif conf >= 0.6 and not early(st):
                conf = 0.45
            if TEST_PATH.search(ctx.source.path) and not early(st):
                conf *= 0.4  # test scaffolding that a user never runs
            yield _sig(ctx, ind, st, f"{name} evaluates {why}: `{defang(folded, 60)}`", conf,
                       "dynamic_evaluation")
            continue
        path = _file_path(ctx, es) if tr.file_read else None
        if path is not None:
            if _written(ctx, path):
                yield _sig(ctx, "code_execution_script_file", st,
                           f"{name} runs the contents of `{defang(path, 60)}`, a file the "
                           f"package writes or downloads", 0.85, "dynamic_evaluation")
                yield _sig(ctx, ind, st, f"{name} runs the contents of `{defang(path, 60)}`",
                           0.8, "dynamic_evaluation")
            elif not _VERSION_FILE.search(path):
                yield _sig(ctx, ind, st, f"{name} runs the contents of the local file "
                           f"`{defang(path, 60)}`", 0.15, "dynamic_evaluation")
            continue
        conf = 0.45 if top_level(st) else 0.2
        yield _sig(ctx, ind, st, f"{name} evaluates a value computed at run time at "
                   f"{st.phase.value} time", conf, "dynamic_evaluation")
    yield from _written_exec(ctx)


_INNER_EXEC = re.compile(r"\b(?:exec|eval)\s*\(")
_INNER_SOURCE = re.compile(r"urlopen|requests\.|b64decode|decompress|urllib|socket|decrypt")


def _written_exec(ctx: FileContext) -> Iterator[Signal]:
    """Code written to a file (or handed to ``python -c``) that itself runs exec/eval."""
    for site in ctx.calls():
        if site.name.split(".")[-1] not in ("write", "write_text", "write_bytes", "writelines"):
            continue
        if not site.node.args:
            continue
        value = ctx.resolver.fold(site.node.args[0])
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(value, str) or not _INNER_EXEC.search(value):
            continue
        try:
            ast.parse(value)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        st = site.statement
        src = _INNER_SOURCE.search(value)
        conf = 0.85 if src else 0.5
        how = f" code obtained with {src.group(0)}" if src else " code"
        yield _sig(ctx, "code_execution_dynamic_evaluation", st, f"writes a Python file that "
                   f"runs exec/eval on{how}: `{defang(value, 80)}`", conf, "dynamic_evaluation")


_CODE_LOADERS = ("types.FunctionType", "pickle.loads", "dill.loads", "cloudpickle.loads")
_ENCODED = re.compile(r"^[A-Za-z0-9+/=_\s-]{16,}$")
"""A literal in a base64/base32/hex alphabet, long enough to be an embedded payload."""


@detector("encoded_command", "code_execution_encoded_command")
def encoded_command(ctx: FileContext) -> Iterator[Signal]:
    """Running an encoded command: exec(b64decode(...)), PowerShell -EncodedCommand, marshal."""
    ind = "code_execution_encoded_command"
    for es in exec_sites(ctx):
        if not es.traits.decode:
            continue
        st = es.site.statement
        yield _sig(ctx, ind, st, f"{es.site.name} runs code decoded with {es.traits.decode} at "
                   f"{st.phase.value} time", 0.9, "encoded_command")
        for org_st in _decoding_statements(ctx, es.origin):
            yield _sig(ctx, ind, org_st, f"decodes ({es.traits.decode}) the code that "
                       f"{es.site.name} on line {st.start_line} runs", 0.75, "encoded_command")
    for launch in launches(ctx):
        cmd = launch.command
        if not cmd.encoded:
            yield from _decoded_command(ctx, launch)
            continue
        st = launch.site.statement
        yield _sig(ctx, ind, st, f"{launch.site.name} runs an encoded command that decodes to "
                   f"`{defang(cmd.encoded[0], 120)}` at {st.phase.value} time",
                   0.95 if early(st) else 0.85, "encoded_command")
    for site in ctx.calls():
        if site.name in _CODE_LOADERS and site.node.args:
            arg = site.node.args[0]
            nodes = origin(ctx, arg, site.statement).nodes
            tr = traits(ctx, nodes if site.name == _CODE_LOADERS[0] else tuple(ast.walk(arg)))
            if tr.decode or (tr.network and site.name == _CODE_LOADERS[0]):
                st = site.statement
                embedded = tr.network or any(
                    isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes))
                    and _ENCODED.match(n.value if isinstance(n.value, str)
                                       else n.value.decode("latin-1")) for n in nodes)
                # pickle.loads(b64decode(arg)) of a run-time value deserialises the caller's
                # data (SQLAlchemy's serializer); of an embedded literal it runs a payload
                conf = 0.85 if embedded else (0.5 if early(st) else 0.3)
                what = "embedded" if embedded else "run-time"
                yield _sig(ctx, ind, st, f"{site.name} turns {tr.decode or tr.network} output "
                           f"of {what} data into code at {st.phase.value} time", conf,
                           "encoded_command")


def _decoded_command(ctx: FileContext, launch: Launch) -> Iterator[Signal]:
    """A process launch whose command is decoded at run time: ``os.system(b64decode(x))``.
    Running decoded text as a command is malicious in any phase."""
    target = program_expr(launch)
    if target is None:
        return
    st = launch.site.statement
    org = origin(ctx, target, st)
    tr = traits(ctx, org.nodes)
    if not tr.decode:
        return
    src = f" from data fetched with {tr.network}" if tr.network else ""
    yield _sig(ctx, "code_execution_encoded_command", st, f"{launch.site.name} runs a command "
               f"decoded with {tr.decode}{src} at {st.phase.value} time",
               0.9 if early(st) or tr.network else 0.8, "encoded_command")


def _decoding_statements(ctx: FileContext, org: Origin) -> list[Statement]:
    out = []
    for st in org.statements:
        node = ctx.index.node_of(st.id)
        if node is not None and any(isinstance(n, ast.Call) and is_decode(ctx, n, callee(ctx, n))
                                    for n in ast.walk(node)):
            out.append(st)
    return out


@detector("decryption", "code_execution_decryption")
def decryption(ctx: FileContext) -> Iterator[Signal]:
    """Executing decrypted code: exec(Fernet(key).decrypt(token)), AES then exec."""
    for es in exec_sites(ctx):
        if not es.traits.decrypt:
            continue
        st = es.site.statement
        yield _sig(ctx, "code_execution_decryption", st, f"{es.site.name} runs code decrypted "
                   f"with {es.traits.decrypt} at {st.phase.value} time", 0.9, "decryption")
        for org_st in es.origin.statements:
            node = ctx.index.node_of(org_st.id)
            if node is not None and any(isinstance(n, ast.Call) and is_decrypt(callee(ctx, n))
                                        for n in ast.walk(node)):
                yield _sig(ctx, "code_execution_decryption", org_st, f"decrypts the code that "
                           f"{es.site.name} on line {st.start_line} runs", 0.85, "decryption")


_IMPORTERS = ("__import__", "importlib.import_module", "importlib.__import__")
_LOADERS = ("imp.load_source", "imp.load_module", "imp.load_compiled", "imp.load_dynamic",
            "importlib.util.spec_from_file_location", "importlib.machinery.SourceFileLoader",
            "zipimport.zipimporter", "importlib.util.spec_from_loader")


@detector("import_dynamic_module", "code_execution_import_dynamic_module")
def import_dynamic_module(ctx: FileContext) -> Iterator[Signal]:
    """Importing a module by a computed, obfuscated or downloaded name or from loose code."""
    ind = "code_execution_import_dynamic_module"
    for site in ctx.calls():
        st, args = site.statement, site.node.args
        if site.name in _IMPORTERS and args:
            arg = args[0]
            if isinstance(arg, ast.Constant):
                if arg.value in DANGER_MODULES and early(st) and site.name == "__import__":
                    yield _sig(ctx, ind, st, f"imports `{arg.value}` through {site.name} at "
                               f"{st.phase.value} time", 0.3, "import_dynamic_module")
                continue
            folded = ctx.resolver.fold(arg)
            if isinstance(folded, str):
                conf = 0.8 if folded in DANGER_MODULES else 0.6
                yield _sig(ctx, ind, st, f"imports `{defang(folded, 40)}` through {site.name} "
                           f"with the name hidden in an expression", conf,
                           "import_dynamic_module")
                continue
            tr = traits(ctx, origin(ctx, arg, st).nodes)
            if tr.decode or tr.network or tr.decrypt:
                yield _sig(ctx, ind, st, f"imports a module whose name comes from "
                           f"{tr.decode or tr.network or tr.decrypt}", 0.8,
                           "import_dynamic_module")
            elif early(st):
                yield _sig(ctx, ind, st, f"imports a module named at run time through "
                           f"{site.name} at {st.phase.value} time", 0.3, "import_dynamic_module")
        elif site.name in _LOADERS and args:
            path = text_of(ctx, args[-1] if site.name == "imp.load_source" else args[0], st)
            written = _written(ctx, " ".join(text_of(ctx, a, st) for a in args))
            conf = 0.8 if written else (0.35 if early(st) else 0.15)
            yield _sig(ctx, ind, st, f"loads module code from `{defang(path, 60)}` with "
                       f"{site.name}", conf, "import_dynamic_module")
        elif site.name == "types.ModuleType" and any(es.site.statement.scope == st.scope
                                                     for es in exec_sites(ctx)):
            yield _sig(ctx, ind, st, "builds a module object and fills it with exec'd code",
                       0.5 if early(st) else 0.3, "import_dynamic_module")


DETECTORS = (dynamic_evaluation, encoded_command, decryption, import_dynamic_module)
