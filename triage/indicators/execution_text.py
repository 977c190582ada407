"""Best-effort text of command and path expressions, for reading command lines statically.

Constants fold; lists join; f-strings, ``+`` and ``%`` concatenate; local names are followed
to their assignment; ``os.path.join``/``Path``/``.replace`` are applied; anything unknown
becomes ``{expr}`` so later regexes still see the shape of the command.
"""

from __future__ import annotations

import ast

from triage.indicators.base import FileContext
from triage.indicators.execution_common import assigned, callee
from triage.model import Statement

_MAX = 4


def text_of(ctx: FileContext, expr: ast.AST, st: Statement, depth: int = 0) -> str:
    """Best-effort command text of an expression; unknown parts become ``{expr}``."""
    value = ctx.resolver.fold(expr)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if depth > _MAX:
        return "{...}"
    if isinstance(expr, (ast.List, ast.Tuple)):
        parts = [text_of(ctx, e, st, depth + 1) for e in expr.elts]
        return " ".join(f'"{p}"' if " " in p and not p.startswith("{") else p for p in parts)
    if isinstance(expr, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                       else text_of(ctx, getattr(v, "value", v), st, depth + 1)
                       for v in expr.values)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return text_of(ctx, expr.left, st, depth + 1) + text_of(ctx, expr.right, st, depth + 1)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
        return text_of(ctx, expr.left, st, depth + 1)
    if isinstance(expr, ast.Name):
        alias = ctx.resolver.aliases.get(expr.id)
        if alias:
            return "{" + alias + "}"
        hit = assigned(ctx, expr.id, st)
        if hit is not None:
            return text_of(ctx, hit[0], hit[1], depth + 1)
        return "{" + expr.id + "}"
    if isinstance(expr, ast.Call):
        return _call_text(ctx, expr, st, depth)
    name = ctx.resolver.qualname(expr) if isinstance(expr, ast.Attribute) else None
    return "{" + (name or _short(expr)) + "}"


def _short(expr: ast.AST) -> str:
    try:
        return ast.unparse(expr)[:60]
    except (ValueError, RecursionError, AttributeError):
        return "..."


def _call_text(ctx: FileContext, call: ast.Call, st: Statement, depth: int) -> str:
    name = callee(ctx, call)
    last = name.split(".")[-1]
    if last == "join" and name.endswith(("path.join", "ntpath.join", "posixpath.join")):
        return "/".join(text_of(ctx, a, st, depth + 1) for a in call.args)
    if last in ("Path", "PurePath", "abspath", "expanduser", "expandvars", "str", "normpath",
                "realpath", "fspath") and call.args:
        return text_of(ctx, call.args[0], st, depth + 1)
    if isinstance(call.func, ast.Attribute) and call.func.attr == "format":
        return text_of(ctx, call.func.value, st, depth + 1)
    if isinstance(call.func, ast.Attribute) and call.func.attr == "replace" and len(call.args) == 2:
        base = text_of(ctx, call.func.value, st, depth + 1)
        old, new = (ctx.resolver.fold(a) for a in call.args)
        if isinstance(old, str) and isinstance(new, str):
            if "pythonw" in new or new.lower() == "w.exe":
                return "pythonw.exe"
            if "pip" in new and "pip" not in base:
                return "pip"
            return base.replace(old, new)
        return base
    return "{" + _short(call) + "}"
