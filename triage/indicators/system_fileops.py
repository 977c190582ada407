"""System-impact detectors for file operations: deletion, extension changes, relocation."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.system_common import any_match, defang, facts, is_exec, scaled, sends
from triage.indicators.system_writes import EXEC_EXT, writes
from triage.model import Signal, Statement

_REMOVERS = ("os.remove", "os.unlink", "os.rmdir", "os.removedirs", "shutil.rmtree",
             "send2trash.send2trash")
_DEL_CMD = re.compile(
    r"(?i)(?:^|[\s&|;\"'(])(?:del|erase)\s+(?:/[a-z]\s+)*\"?([^\s\"&|]+)|"
    r"\brm\s+(?:-[a-z]+\s+)*\"?([^\s\"&|;]+)|\b(?:rmdir|rd)\s+/s\s+(?:/q\s+)?\"?([^\s\"&|]+)|"
    r"\bRemove-Item\s+(?:-\w+\s+)*\"?([^\s\"&|;]+)")
_SELF = re.compile(r"^(__file__|sys\.argv\[0\]|argv\[0\])$")
#: Whole targets that are roots of user or system data.
_ROOTS = re.compile(
    r"(?i)^(~|/|\*|/home|/Users|/root|[a-z]:\\{0,2}|[a-z]:/|/(etc|usr|bin|var))[\\/]?$")
#: Fragments naming the user's data folders.
_USER_DATA = re.compile(r"(?i)(^|[\\/~])(Desktop|Documents|Pictures|Music|Videos|OneDrive|"
                        r"System32)([\\/]|$)")
_TEMP = re.compile(r"(?i)\b(te?mp|gettempdir)\b")
_RANSOM_EXT = re.compile(r"(?i)\.(locked|enc|encrypted|crypt|crypted|lock|ransom|pay|cry)$")


def _target_texts(ctx: FileContext, call: ast.Call, st: Statement) -> tuple[list[str], bool]:
    """Strings describing the first argument (or the receiver of ``path.unlink()``), and
    whether the first one is the whole target (not a fragment of a built path)."""
    target: ast.AST | None = call.args[0] if call.args else None
    if target is None and isinstance(call.func, ast.Attribute):
        target = call.func.value
    if target is None:
        return [], False
    src = ast.unparse(target).replace(" ", "")
    if _SELF.match(src) or "__file__" in src:
        return ["__file__" if "__file__" in src else "sys.argv[0]"], True
    folded = ctx.resolver.fold(target)
    if isinstance(folded, str):
        return [folded], True
    ff = facts(ctx)
    if isinstance(target, ast.Call) and (ctx.resolver.qualname(target.func) or "").endswith(
            ("expanduser", "Path.home")) and not target.args[1:]:
        arg = ctx.resolver.fold(target.args[0]) if target.args else "~"
        if isinstance(arg, str):
            return [arg], True
    if isinstance(target, ast.Name):
        local = ff.assigned.get((st.scope, target.id))
        values = local if local is not None else ff.assigned.get(("<module>", target.id), [])
        return list(values), len(values) == 1
    out: list[str] = []
    for sub in ast.walk(target):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
        elif isinstance(sub, ast.Name):
            local = ff.assigned.get((st.scope, sub.id))
            out += local if local is not None else ff.assigned.get(("<module>", sub.id), [])
    return out, False


@detector("file_removal", "code_remove_file")
def file_removal(ctx: FileContext) -> Iterator[Signal]:
    """Deleting the package itself, dropped payloads, or the user's data."""
    ff = facts(ctx)
    written = {t for w in writes(ctx) if w.content for t in w.targets}
    seen: set[str] = set()
    for call in ctx.calls():
        st = call.statement
        if st.id in seen:
            continue
        targets: list[str] = []
        how = call.name
        if call.name in _REMOVERS or (isinstance(call.node.func, ast.Attribute)
                                      and call.node.func.attr in ("unlink", "rmdir")
                                      and not call.name.startswith("os.")):
            targets, whole = _target_texts(ctx, call.node, st)
        elif is_exec(call.name):
            m = any_match(_DEL_CMD, ff.strings_deep(st))
            if not m:
                continue
            targets, whole = [next(g for g in m.groups() if g)], True
            how = f"the command `{defang(m.group(0).strip(), 60)}`"
        else:
            continue
        base, why = 0.0, ""
        for t in targets:
            t = t.strip().strip("\"'")
            if t in ("__file__", "sys.argv[0]"):
                base, why = 0.85, "deletes its own file"
            elif ((whole and _ROOTS.match(t)) or _USER_DATA.search(t)) and base < 0.85:
                base, why = 0.85, f"deletes user or system data `{defang(t, 60)}`"
            elif EXEC_EXT.search(t) and base < 0.75:
                base, why = 0.75, f"deletes the dropped executable/script `{defang(t, 60)}`"
            elif t in written and base < 0.7:
                base, why = 0.7, f"deletes the written payload `{defang(t, 60)}`"
            elif _TEMP.search(t) and sends(ff, st) and base < 0.45:
                base, why = 0.45, "removes a staged temporary file in code that sends data out"
        if base:
            seen.add(st.id)
            yield ctx.signal("code_remove_file", st, f"{why} with {how}",
                             confidence=scaled(base, st, ctx.source.path),
                             detector="file_removal")


_RENAMERS = ("os.rename", "os.replace", "shutil.move", "os.renames")
_REN_CMD = re.compile(r"(?i)\b(?:move|ren|rename|mv)\s+(?:/[a-z]\s+|-\w+\s+)*\"?([^\s\"&|]+)"
                      r"\"?\s+\"?([^\s\"&|;]+)")


def _ext(path: str) -> str:
    m = re.search(r"(\.[A-Za-z0-9]{1,8})$", path.strip().strip("\"'"))
    return m.group(1).lower() if m else ""


def _suffix_of(ctx: FileContext, expr: ast.AST) -> str:
    """Extension an expression ends with (``x + '.exe'``, ``f'{x}.bat'``, constants)."""
    folded = ctx.resolver.fold(expr)
    if isinstance(folded, str):
        return _ext(folded)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return _suffix_of(ctx, expr.right)
    if isinstance(expr, ast.JoinedStr) and expr.values:
        last = expr.values[-1]
        if isinstance(last, ast.Constant) and isinstance(last.value, str):
            return _ext(last.value)
    return ""


def _renames(ctx: FileContext) -> Iterator[tuple[Statement, str, str, str]]:
    """(statement, how, source extension, destination extension) of every rename/move."""
    ff = facts(ctx)
    for call in ctx.calls():
        st, node = call.statement, call.node
        is_path_rename = (isinstance(node.func, ast.Attribute) and node.func.attr in (
            "rename", "replace") and not call.name.startswith(("os.", "str.")) and
            len(node.args) == 1 and not isinstance(node.func.value, ast.Constant))
        if call.name in _RENAMERS and len(node.args) >= 2:
            yield st, call.name, _suffix_of(ctx, node.args[0]), _suffix_of(ctx, node.args[1])
        elif is_path_rename and isinstance(node.func, ast.Attribute):
            yield st, "Path.rename", _suffix_of(ctx, node.func.value), _suffix_of(
                ctx, node.args[0])
        elif is_exec(call.name):
            m = any_match(_REN_CMD, ff.strings_deep(st))
            if m:
                yield st, f"the command `{defang(m.group(0), 60)}`", _ext(m.group(1)), _ext(
                    m.group(2))


@detector("extension_change", "code_rename_file_extension")
def extension_change(ctx: FileContext) -> Iterator[Signal]:
    """Renames that turn a file into an executable/script, or mark files as encrypted."""
    seen: set[str] = set()
    for st, how, src, dst in _renames(ctx):
        if st.id in seen or not dst or src == dst:
            continue
        if _RANSOM_EXT.search(dst):
            base, why = 0.85, f"renames files to `{dst}` (ransomware-like)"
        elif EXEC_EXT.search(dst):
            base, why = 0.8, f"renames {src or 'a file'} to an executable `{dst}`"
        elif src:
            base, why = 0.25, f"changes a file extension from {src} to {dst}"
        else:
            continue
        seen.add(st.id)
        yield ctx.signal("code_rename_file_extension", st, f"{why} with {how}",
                         confidence=scaled(base, st, ctx.source.path),
                         detector="extension_change")


_MOVERS = ("shutil.move", "os.replace", "os.rename", "shutil.copy", "shutil.copy2",
           "shutil.copyfile", "shutil.copytree", "copy2", "copyfile")
_DESTS = (
    re.compile(r"(?i)Start Menu[\\/]+Programs[\\/]+Startup|[\\/]Startup[\\/]?$|LaunchAgents|"
               r"\.config/autostart"),
    re.compile(r"(?i)System32|SysWOW64|^[a-z]:[\\/]+Windows\b|^/(usr/(local/)?bin|etc)/"),
    re.compile(r"(?i)\bAppData\b|\b(LOCALAPPDATA|APPDATA|ProgramData)\b|^/(tmp|var/tmp|dev/shm)/"
               r"|[\\/]\.[A-Za-z]\w+[\\/]|\bTEMP\b|\bTMP\b"),
)
_CP_CMD = re.compile(r"(?i)\b(?:move|copy|xcopy|cp|mv)\s+(?:/[a-z]\s+|-\w+\s+)*\"?([^\s\"&|]+)"
                     r"\"?\s+\"?([^\s\"&|;]+)")


@detector("file_relocation", "code_move_file")
def file_relocation(ctx: FileContext) -> Iterator[Signal]:
    """Moves/copies of payloads (or of the package itself) into start-up/system/app folders."""
    ff = facts(ctx)
    renames = {st.id for st, _h, src, dst in _renames(ctx) if dst and src != dst}
    seen: set[str] = set()
    for call in ctx.calls():
        st, node = call.statement, call.node
        if st.id in seen or st.id in renames:
            continue
        dst_texts: list[str] = []
        src_texts: list[str] = []
        how = call.name
        if (call.name in _MOVERS or call.name.endswith((".copy2", ".copyfile", ".move"))) and (
                len(node.args) >= 2):
            src_texts = _target_texts(ctx, node, st)[0]
            dst_node = ast.Call(func=node.func, args=[node.args[1]], keywords=[])
            dst_texts = _target_texts(ctx, dst_node, st)[0]
        elif is_exec(call.name):
            m = any_match(_CP_CMD, ff.strings_deep(st))
            if not m:
                continue
            src_texts, dst_texts = [m.group(1)], [m.group(2)]
            how = f"the command `{defang(m.group(0), 60)}`"
        else:
            continue
        dest = next((m for p in _DESTS if (m := any_match(p, dst_texts))), None)
        selfcopy = any(t in ("__file__", "sys.argv[0]") for t in src_texts)
        exe = any(EXEC_EXT.search(t.strip()) for t in src_texts + dst_texts)
        if not dest and not selfcopy:
            continue
        base = 0.8 if (selfcopy or exe or "startup" in (dest.group(0).lower() if dest else "")
                       ) else 0.35
        what = "itself" if selfcopy else "a file"
        where = f" into `{defang(dest.group(0), 50)}`" if dest else ""
        seen.add(st.id)
        yield ctx.signal("code_move_file", st, f"moves/copies {what}{where} with {how}",
                         confidence=scaled(base, st, ctx.source.path),
                         detector="file_relocation")
