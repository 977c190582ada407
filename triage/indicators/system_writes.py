"""System-impact detectors for writes: payloads written to disk, writes to sensitive paths.

A small per-scope taint pass marks names bound to downloaded content (``requests.get``,
``urlopen``...) or decoded content (``b64decode``, ``decrypt``, ``decompress``...), and
file handles bound by ``open(..., 'w...')`` with their target path strings.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from triage.indicators.base import FileContext, detector, dotted
from triage.indicators.system_common import TEST_PATH, defang, facts, scaled
from triage.model import Signal, Statement
from triage.statements import own_nodes

#: Windows executables: downloaded or decoded bytes written under such a name are a dropper
#: wherever the code runs, so the phase does not lower the confidence.
WINDOWS_EXEC = re.compile(r"(?i)\.(exe|scr|pif|com|msi|dll|cpl)$")
EXEC_EXT = re.compile(r"(?i)\.(exe|bat|cmd|ps1|vbs|vbe|js|jse|scr|dll|pyw|hta|lnk|jar|sh|msi|"
                      r"com|pif|elf|bin|so|dylib|apk)$")
_DOWNLOAD = ("requests.", "urllib.request.urlopen", "urllib2.urlopen", "urllib.urlopen",
             "httpx.", "urllib3.", "aiohttp.", "pycurl.")
_DECODE = ("b64decode", "b32decode", "b85decode", "a85decode", "decodebytes", "unhexlify",
           "fromhex", "decompress", "decrypt", "marshal.loads", "codecs.decode", "a2b_base64")
SENSITIVE = re.compile(
    r"(?i)^/etc/|^/usr/(local/)?s?bin/|^/usr/lib/|^/bin/|^/sbin/|^/lib/|[a-z]:[\\/]+windows\b|"
    r"%(windir|systemroot)%|system32|syswow64|\.pth$|sitecustomize\.py$|usercustomize\.py$|"
    r"authorized_keys$|drivers[\\/]+etc[\\/]+hosts$|/etc/hosts$|ld\.so\.preload|sudoers|"
    r"site-packages[\\/]|dist-packages[\\/]")


@dataclass
class WriteFacts:
    """Taint and file-handle facts of one file."""

    tainted: dict[tuple[str, str], str] = field(default_factory=dict)
    """(scope, name) -> 'downloaded' or 'decoded'."""
    handles: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)
    """(scope, handle name) -> (open mode, target path strings)."""


def _source_kind(ctx: FileContext, expr: ast.AST, scope: str, wf: WriteFacts) -> str | None:
    """'downloaded'/'decoded' when ``expr`` carries fetched or decoded content (downloaded
    wins: ``unhexlify(resp.text)`` is downloaded content)."""
    found: str | None = None
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call):
            name = ctx.resolver.qualname(sub.func) or ""
            if name.startswith(_DOWNLOAD) or name.endswith((".urlopen", "urlretrieve")):
                return "downloaded"
            if name.endswith(_DECODE):
                found = "decoded"
        elif isinstance(sub, ast.Name):
            kind = wf.tainted.get((scope, sub.id)) or wf.tainted.get(("<module>", sub.id))
            if kind == "downloaded":
                return kind
            found = found or kind
    return found


def _open_target(ctx: FileContext, call: ast.Call) -> tuple[str, ast.AST | None] | None:
    """(mode, path expression) of an ``open()`` call that writes, else None."""
    name = ctx.resolver.qualname(call.func) or ""
    if name not in ("open", "io.open", "codecs.open"):
        return None
    mode_node = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    mode = ctx.resolver.fold(mode_node) if mode_node is not None else "r"
    if not isinstance(mode, str) or not any(c in mode for c in "wax+"):
        return None
    return mode, (call.args[0] if call.args else None)


def write_facts(ctx: FileContext) -> WriteFacts:
    """Compute taint and handle facts in source order (one pass is enough in practice)."""
    wf = WriteFacts()
    for st, node in ctx.statements():
        if node is None:
            continue
        for sub in own_nodes(node):
            if isinstance(sub, ast.Assign):
                kind = _source_kind(ctx, sub.value, st.scope, wf)
                for tgt in sub.targets:
                    if isinstance(tgt, ast.Name):
                        if kind:
                            wf.tainted[(st.scope, tgt.id)] = kind
                        if isinstance(sub.value, ast.Call):
                            opened = _open_target(ctx, sub.value)
                            if opened:
                                wf.handles[(st.scope, tgt.id)] = (
                                    opened[0], _path_strings(ctx, opened[1], st))
            elif isinstance(sub, ast.withitem) and isinstance(sub.optional_vars, ast.Name):
                if isinstance(sub.context_expr, ast.Call):
                    opened = _open_target(ctx, sub.context_expr)
                    if opened:
                        wf.handles[(st.scope, sub.optional_vars.id)] = (
                            opened[0], _path_strings(ctx, opened[1], st))
    return wf


def _path_strings(ctx: FileContext, expr: ast.AST | None, st: Statement) -> list[str]:
    """Strings a path expression may hold (folded, or its literals and names' values)."""
    if expr is None:
        return []
    folded = ctx.resolver.fold(expr)
    if isinstance(folded, str):
        return [folded]
    out: list[str] = []
    f = facts(ctx)
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
        elif isinstance(sub, ast.Name):
            local = f.assigned.get((st.scope, sub.id))
            out += local if local is not None else f.assigned.get(("<module>", sub.id), [])
        elif isinstance(sub, ast.Attribute):
            if ctx.resolver.qualname(sub) in ("__file__",):
                out.append("__file__")
            out += f.assigned.get(("*", "." + sub.attr), [])
    return out


@dataclass(frozen=True)
class Write:
    """One write found in a statement."""

    statement: Statement
    how: str
    targets: tuple[str, ...]
    content: str | None
    """'downloaded', 'decoded', or None (unknown/constant)."""


def writes(ctx: FileContext) -> list[Write]:
    """Every file write of the file with its target strings and content kind."""
    wf = write_facts(ctx)
    out: list[Write] = []
    for call in ctx.calls():
        st, node, name = call.statement, call.node, call.name
        func = node.func
        targets: list[str] = []
        if name.endswith("urlretrieve") and len(node.args) > 1:
            targets = _path_strings(ctx, node.args[1], st)
            out.append(Write(st, name, tuple(targets), "downloaded"))
        elif isinstance(func, ast.Attribute) and func.attr in ("write", "writelines"):
            recv = func.value
            mode = ""
            if isinstance(recv, ast.Call):
                opened = _open_target(ctx, recv)
                if opened is None:
                    continue
                mode, targets = opened[0], _path_strings(ctx, opened[1], st)
            elif isinstance(recv, ast.Name):
                handle = wf.handles.get((st.scope, recv.id))
                if handle is None:
                    continue
                mode, targets = handle
            else:
                continue
            content = _source_kind(ctx, node.args[0], st.scope, wf) if node.args else None
            out.append(Write(st, f"open(..., '{mode}').write", tuple(targets), content))
        elif isinstance(func, ast.Attribute) and func.attr in ("write_bytes", "write_text"):
            content = _source_kind(ctx, node.args[0], st.scope, wf) if node.args else None
            out.append(Write(st, f"Path.{func.attr}", tuple(_path_strings(
                ctx, func.value, st)), content))
        elif name in ("shutil.copyfileobj",) and len(node.args) > 1:
            content = _source_kind(ctx, node.args[0], st.scope, wf)
            out.append(Write(st, name, tuple(_path_strings(ctx, node.args[1], st)),
                             content))
    return out


@detector("payload_write", "code_write_to_disk")
def payload_write(ctx: FileContext) -> Iterator[Signal]:
    """Downloaded or decoded content, or executable files, written to disk."""
    seen: set[str] = set()
    for w in writes(ctx):
        if w.statement.id in seen:
            continue
        exe = next((t for t in w.targets if EXEC_EXT.search(t.strip())), None)
        if w.content == "downloaded":
            base, what = 0.8, "downloaded content"
        elif w.content == "decoded":
            base, what = 0.7, "decoded content"
        elif exe:
            base, what = 0.55, "content"
        else:
            continue
        if exe:
            base = min(base + 0.1, 0.95)
            what += f" to an executable/script file `{defang(exe, 60)}`"
        seen.add(w.statement.id)
        conf = scaled(base, w.statement, ctx.source.path)
        if w.content and exe and WINDOWS_EXEC.search(exe.strip()) and \
                not TEST_PATH.search(ctx.source.path):
            conf = max(conf, 0.85 if w.content == "downloaded" else 0.75)
        yield ctx.signal("code_write_to_disk", w.statement, f"writes {what} with {w.how}",
                         confidence=conf, detector="payload_write")


_COPIERS = ("shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.move", "os.rename",
            "os.replace", "shutil.copytree", "os.symlink", "os.link")


@detector("sensitive_write", "code_write_sensitive_path")
def sensitive_write(ctx: FileContext) -> Iterator[Signal]:
    """Writes, copies or moves into system directories, start-up files or authorized_keys."""
    seen: set[str] = set()
    hits: list[tuple[Statement, str, str]] = [
        (w.statement, w.how, t) for w in writes(ctx) for t in w.targets if SENSITIVE.search(t)
    ]
    for call in ctx.calls():
        if call.name in _COPIERS and len(call.node.args) > 1:
            for t in _path_strings(ctx, call.node.args[1], call.statement):
                if SENSITIVE.search(t):
                    hits.append((call.statement, call.name, t))
    for st, how, target in hits:
        if st.id in seen:
            continue
        seen.add(st.id)
        base = 0.8
        if _STARTUP_FILE.search(target) and not _into_site_dir(ctx, st):
            base = 0.4  # a start-up file name in a directory not known to be on sys.path
        yield ctx.signal("code_write_sensitive_path", st,
                         f"writes to sensitive path `{defang(target, 80)}` with {how}",
                         confidence=scaled(base, st, ctx.source.path),
                         detector="sensitive_write")


_STARTUP_FILE = re.compile(r"(?i)(^|[\\/])([^\\/]*\.pth|sitecustomize\.py|usercustomize\.py)$")
_SITE_DIR = re.compile(r"site-packages|dist-packages|getsitepackages|getusersitepackages|"
                       r"USER_SITE|get_python_lib|purelib|platlib|sys\.prefix|PREFIXES|"
                       r"site\.__file__|sys\.path\b")


def _into_site_dir(ctx: FileContext, st: Statement) -> bool:
    """True when the write's path is built from a site directory, in the statement or in
    the statements (two levels up) that bind the names it uses: pip writes sitecustomize.py
    into a temporary build environment, a .pth dropper writes into site-packages. Long
    string literals (the content written) are not looked at."""
    binders: dict[str, list[ast.AST]] = {}
    for _other, onode in ctx.statements():
        if onode is not None:
            for name in _bound(onode):
                binders.setdefault(name, []).append(onode)
    start: ast.AST | None = ctx.index.node_of(st.id)
    call = start.value if isinstance(start, ast.Expr) else None
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
            call.func.attr in ("write", "writelines", "write_text", "write_bytes"):
        start = call.func.value  # the handle or path written to, not what is written
    work: list[tuple[ast.AST | None, int]] = [(start, 0)]
    seen: set[int] = set()
    while work:
        node, depth = work.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names = set()
        for sub in (own_nodes(node) if isinstance(node, ast.stmt) else ast.walk(node)):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str) \
                    and len(sub.value) <= 120 and _SITE_DIR.search(sub.value):
                return True
            if isinstance(sub, (ast.Name, ast.Attribute)):
                text = dotted(sub) or ""
                if _SITE_DIR.search(text):
                    return True
                names.add(sub.id if isinstance(sub, ast.Name) else sub.attr)
        if depth < 2:
            work += [(b, depth + 1) for n in names for b in binders.get(n, ())]
    return False


def _bound(node: ast.AST | None) -> set[str]:
    """Names (and attribute names) a statement binds: assignments and ``with ... as x``."""
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
    return {t.id if isinstance(t, ast.Name) else t.attr for t in targets
            if isinstance(t, (ast.Name, ast.Attribute))}
