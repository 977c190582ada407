"""Defense-evasion POST detector: errors of malicious code silenced (``code_suppressing_error``).

A blanket handler (``except:``, ``except Exception:``, ``except BaseException:``,
``contextlib.suppress(Exception)``) whose body only swallows is suspicious in proportion to
what it protects: the other detectors' signals on the statements of its ``try`` body, or
dangerous calls there. Benign libraries swallow errors around harmless code all the time,
so those handlers get no signal. Shell redirections that discard errors (``2>nul``,
``>/dev/null 2>&1``) are judged the same way, by the signals on their own statement.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, PackageContext, detector
from triage.indicators.system_common import facts, is_exec, is_network, scaled
from triage.model import Phase, Signal, Statement

INDICATOR = "code_suppressing_error"
_BROAD = ("Exception", "BaseException", "builtins.Exception", "builtins.BaseException")
_FALLBACK_EXCEPT = re.compile(r"^\s*except(\s*\(?\s*(Exception|BaseException)\b[^:]*)?\s*:"
                              r"\s*(pass|continue|break|None|\.\.\.)?\s*(#.*)?$")
_SWALLOW_TEXT = re.compile(r"^\s*(pass|continue|break|None|\.\.\.|return(\s+None)?)\s*(#.*)?$")
_REDIRECT = re.compile(r"(?i)2>\s*(nul\b|/dev/null|&1)|&>\s*/dev/null|>\s*/dev/null|>\s*nul\b|"
                       r"\|\s*out-null\b|-ErrorAction\s+SilentlyContinue|-ea\s+0\b")
_DANGER = re.compile(r"(?i)powershell|\bcmd(\.exe)?\s+/[ck]\b|-enc(odedcommand)?\b|\bcurl\s|"
                     r"\bwget\s|(https?|ftp)://|/bin/(ba)?sh\b|\bexec\(|b64decode|\.exe\b")
_RISKY_WRITES = (".write", "urlretrieve", "shutil.copy", "shutil.move", "os.remove",
                 "shutil.rmtree", "os.rename", "winreg.SetValueEx")


def _broad(ctx: FileContext, handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((ctx.resolver.qualname(t) or "") in _BROAD for t in types)


def _swallows(handler: ast.ExceptHandler) -> bool:
    """The handler body only drops the error (no re-raise, logging, or use of it)."""
    for stmt in handler.body:
        if isinstance(stmt, (ast.Pass, ast.Continue, ast.Break)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        value = getattr(stmt, "value", None)
        if isinstance(value, ast.Name) and value.id == handler.name:
            return False
        if isinstance(stmt, ast.Return) and (value is None or isinstance(
                value, (ast.Constant, ast.Name))):
            continue
        if isinstance(stmt, ast.Assign) and isinstance(value, (
                ast.Constant, ast.Name, ast.List, ast.Dict, ast.Tuple)):
            continue
        return False
    return True


def _suppress_with(ctx: FileContext, node: ast.AST) -> bool:
    if not isinstance(node, (ast.With, ast.AsyncWith)):
        return False
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call) and (ctx.resolver.qualname(call.func) or "").endswith(
                "suppress"):
            if any((ctx.resolver.qualname(a) or "") in _BROAD for a in call.args):
                return True
    return False


class _Tree:
    """Parent/child links of one file's statements."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.children: dict[str, list[Statement]] = {}
        self.by_node: dict[int, Statement] = {}
        for st, node in ctx.statements():
            if st.parent:
                self.children.setdefault(st.parent, []).append(st)
            if node is not None:
                self.by_node[id(node)] = st

    def descendants(self, roots: list[Statement]) -> list[Statement]:
        out: list[Statement] = []
        stack = list(roots)
        while stack:
            st = stack.pop()
            out.append(st)
            stack.extend(self.children.get(st.id, ()))
        return out

    def protected(self, st: Statement, node: ast.AST | None) -> list[Statement] | None:
        """Statements a swallowing handler/with protects, or None when ``st`` is not one."""
        ctx = self.ctx
        if isinstance(node, ast.ExceptHandler):
            if not (_broad(ctx, node) and _swallows(node)) or st.parent is None:
                return None
            parent = ctx.index.node_of(st.parent)
            if not isinstance(parent, ast.Try) and not (
                    hasattr(ast, "TryStar") and isinstance(parent, ast.TryStar)):
                return None
            roots = [self.by_node[id(s)] for s in parent.body + parent.orelse
                     if id(s) in self.by_node]
            return self.descendants(roots)
        if node is not None and _suppress_with(ctx, node):
            return self.descendants(list(self.children.get(st.id, ())))
        if node is None and _FALLBACK_EXCEPT.match(st.text):
            return self._fallback(st)
        return None

    def _fallback(self, st: Statement) -> list[Statement] | None:
        """Python 2 files indexed line by line: find the matching ``try:`` by indentation."""
        body = self.children.get(st.id, [])
        if body and not all(_SWALLOW_TEXT.match(b.text) for b in body):
            return None
        indent = len(st.text) - len(st.text.lstrip())
        siblings = [s for s in self.ctx.index.statements
                    if s.parent == st.parent and s.start_line < st.start_line]
        for prev in reversed(siblings):
            if len(prev.text) - len(prev.text.lstrip()) == indent and re.match(
                    r"\s*try\s*:", prev.text):
                return self.descendants(list(self.children.get(prev.id, ())))
        return None


def _risky_call(fc: FileContext, statements: list[Statement]) -> str | None:
    ff = facts(fc)
    for st in statements:
        for call in ff.calls(st):
            n = call.name
            if is_exec(n) or is_network(n) or n.endswith(_RISKY_WRITES) or n.startswith(
                    "ctypes.windll"):
                return n
    return None


def _strong_file(fc: FileContext, sigs: dict[str, float]) -> bool:
    """The file has a strong behaviour signal, or runs commands/URLs at install time."""
    if any(c >= 0.7 for c in sigs.values()):
        return True
    ff = facts(fc)
    early = [st for st in fc.index.statements if st.phase in (Phase.INSTALL, Phase.STARTUP)
             and any(_DANGER.search(t) for t in ff.strings(st))]
    return _risky_call(fc, early) is not None


@detector("error_suppression", INDICATOR)
def error_suppression(arg: tuple[PackageContext, tuple[Signal, ...]]) -> Iterator[Signal]:
    """Blanket error handlers and redirections that hide failures of malicious code."""
    pkg, signals = arg
    by_stmt: dict[str, float] = {}
    for s in signals:
        if s.indicator == INDICATOR or s.indicator.startswith("metadata_"):
            continue
        by_stmt[s.statement_id] = max(by_stmt.get(s.statement_id, 0.0), s.confidence)
    for fc in pkg.files:
        prefix = fc.source.path + ":"
        file_sigs = {k: v for k, v in by_stmt.items() if k.startswith(prefix)}
        tree = _Tree(fc)
        strong: bool | None = None
        for st, node in fc.statements():
            body = tree.protected(st, node)
            if body is not None:
                if strong is None:
                    strong = _strong_file(fc, file_sigs)
                hit = _judge_handler(fc, st, body, file_sigs, strong)
                if hit:
                    yield fc.signal(INDICATOR, st, hit[0], confidence=hit[1],
                                    detector="error_suppression")
            redirect = _judge_redirect(fc, st, file_sigs)
            if redirect:
                yield fc.signal(INDICATOR, st, redirect[0], confidence=redirect[1],
                                detector="error_suppression")


def _judge_handler(fc: FileContext, st: Statement, body: list[Statement],
                   sigs: dict[str, float], strong: bool) -> tuple[str, float] | None:
    guarded = max((sigs.get(b.id, 0.0) for b in body), default=0.0)
    kind = "a blanket handler" if "suppress" not in st.text else "contextlib.suppress"
    if guarded >= 0.5:
        return (f"{kind} silently swallows failures of flagged code (signal confidence "
                f"{guarded:.2f}) in its try body", round(min(0.9, 0.45 + 0.5 * guarded), 2))
    risky = _risky_call(fc, body)
    early = st.phase in (Phase.INSTALL, Phase.STARTUP, Phase.IMPORT)
    if risky and early:
        ff = facts(fc)
        loud = any(_DANGER.search(t) for b in body for t in ff.strings(b))
        return (f"{kind} silently swallows failures of {risky} run at {st.phase.value} time",
                scaled(0.75 if loud else 0.3, st, fc.source.path))
    if risky:
        return f"{kind} silently swallows failures of {risky}", 0.25
    if st.phase is Phase.INSTALL and strong:
        return (f"{kind} silently swallows install-time errors in a setup script that runs "
                "suspicious code", 0.55)
    return None


def _judge_redirect(fc: FileContext, st: Statement,
                    sigs: dict[str, float]) -> tuple[str, float] | None:
    ff = facts(fc)
    m = next((m for s in ff.strings(st) if (m := _REDIRECT.search(s))), None)
    if m is None or not any(is_exec(c.name) for c in ff.calls(st)):
        return None
    own = sigs.get(st.id, 0.0)
    what = f"the command discards errors with `{m.group(0)}`"
    if own >= 0.5:
        return what, round(min(0.85, 0.4 + 0.5 * own), 2)
    if st.phase is not Phase.CALL:
        return what, 0.4
    return what, 0.15
