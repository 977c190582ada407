"""Pure operations the constant folder understands (helper of :mod:`triage.deobfuscate`).

Each supported node or call becomes a :class:`Plan`: the child expressions to fold first and a
function combining their values. Only side-effect-free operations on str/bytes/int/tuple
values are planned; anything else raises :class:`NotConstant`.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from triage.deobfuscate_fold import Folder

MAX_ITEMS = 1_000_000
"""Longest sequence (list, range, comprehension) the folder builds."""
MAX_INPUT = 20 * 2**20
"""Largest str/bytes value folding builds or holds (decoder outputs are capped lower, at the
folder's ``max_bytes``)."""
MAX_INT_BITS = 4096
"""Integers larger than this are not folded (keeps arithmetic cheap)."""
TEXT_ENCODINGS = frozenset(
    "utf_8 utf8 u8 ascii us_ascii latin_1 latin1 iso_8859_1 iso8859_1 l1 cp1252 windows_1252 "
    "utf_16 utf_16_le utf_16_be utf_32 utf_32_le utf_32_be utf_8_sig raw_unicode_escape "
    "unicode_escape".split()
)
_ERRORS = frozenset({"strict", "ignore", "replace", "backslashreplace", "surrogateescape"})
_FIELD = re.compile(r"\d*|[A-Za-z_]\w*")
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


class NotConstant(Exception):
    """The expression is not constant, or folding it would cost too much."""


Env = Mapping[str, Any]
Combine = Callable[[list[Any], Env], Any]


@dataclass(frozen=True)
class Plan:
    """How to fold one node: fold ``children`` first, then ``combine`` their values."""

    children: tuple[ast.AST | None, ...]
    combine: Combine


Hook = Callable[["Folder", ast.Call], "Plan | None"]


def norm_encoding(value: Any, default: str = "utf_8") -> str:
    """Normalised codec name (``UTF-8`` -> ``utf_8``)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise NotConstant("encoding is not a string")
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def text_encoding(value: Any) -> tuple[str]:
    """A whitelisted text encoding name (no codec lookup of arbitrary names)."""
    name = norm_encoding(value)
    if name not in TEXT_ENCODINGS:
        raise NotConstant(f"unsupported encoding {name}")
    return (name,)


def errors_of(value: Any) -> str:
    if value is None:
        return "strict"
    if value not in _ERRORS:
        raise NotConstant("unsupported error handler")
    return str(value)


def items_of(value: Any) -> tuple[Any, ...]:
    """Iterate a folded value the way Python would (str -> chars, bytes -> ints)."""
    if isinstance(value, (str, bytes, tuple)):
        if len(value) > MAX_ITEMS:
            raise NotConstant("sequence too long")
        return tuple(value)
    raise NotConstant("not iterable")


def safe_format_spec(spec: str) -> None:
    """Reject format specs that could allocate huge strings (``{:>999999999}``)."""
    if "{" in spec or re.search(r"\d{5,}", spec):
        raise NotConstant("unsafe format spec")


def _check_printf(fmt: str | bytes) -> None:
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    for match in _PRINTF.finditer(text):
        for part in match.groups():
            if part and (part == "*" or len(part) > 4):
                raise NotConstant("unsafe printf width")


def check_format(fmt: str) -> None:
    try:
        for _, field, spec, _ in string.Formatter().parse(fmt):
            if field is not None and not _FIELD.fullmatch(field):
                raise NotConstant("attribute or index access in format field")
            safe_format_spec(spec or "")
    except ValueError as exc:
        raise NotConstant(str(exc)) from exc


def int_of(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise NotConstant("not an int")


def slots(node: ast.Call, params: tuple[str, ...]) -> tuple[ast.AST | None, ...]:
    """Positional and keyword arguments of ``node`` laid out in ``params`` order."""
    if len(node.args) > len(params):
        raise NotConstant("too many arguments")
    out: list[ast.AST | None] = [*node.args, *([None] * (len(params) - len(node.args)))]
    for kw in node.keywords:
        if kw.arg not in params or out[params.index(kw.arg)] is not None:
            raise NotConstant("unsupported keyword")
        out[params.index(kw.arg)] = kw.value
    return tuple(out)


# --- nodes -------------------------------------------------------------------------------


def plan_node(folder: Folder, node: ast.AST) -> Plan:
    """Plan any supported non-call node."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, (str, bytes, int)) and not isinstance(value, bool):
            return Plan((), lambda vals, env: value)
        raise NotConstant("unsupported constant")
    if isinstance(node, ast.Name):
        name = node.id
        return Plan((), lambda vals, env: folder.lookup(name, env))
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise NotConstant("starred element")
        return Plan(tuple(node.elts), lambda vals, env: tuple(vals))
    if isinstance(node, ast.BinOp):
        op = node.op
        return Plan((node.left, node.right), lambda vals, env: _binop(folder, op, *vals))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
        fn = {ast.USub: int.__neg__, ast.UAdd: int.__pos__, ast.Invert: int.__invert__}
        unary = fn[type(node.op)]
        return Plan((node.operand,), lambda vals, env: unary(int_of(vals[0])))
    if isinstance(node, ast.JoinedStr):
        return Plan(tuple(node.values), lambda vals, env: _joined(vals))
    if isinstance(node, ast.FormattedValue):
        conv = node.conversion
        return Plan((node.value, node.format_spec), lambda vals, env: _fmt_value(conv, *vals))
    if isinstance(node, ast.Subscript):
        return _plan_subscript(folder, node)
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)) and len(node.generators) == 1:
        gen = node.generators[0]
        if gen.is_async:
            raise NotConstant("async comprehension")
        return Plan((gen.iter,), folder.comprehension(node.elt, gen.target, gen.ifs))
    raise NotConstant(f"unsupported node {type(node).__name__}")


def estimated_size(template: str | bytes, args: tuple[Any, ...] | list[Any]) -> int:
    """Upper bound on a formatted result, for scalar (str/bytes/int) arguments only."""
    total = len(template)
    for arg in args:
        if isinstance(arg, (str, bytes)):
            total += 4 * len(arg) if isinstance(arg, bytes) else len(arg)
        elif isinstance(arg, int) and not isinstance(arg, bool):
            total += MAX_INT_BITS // 3
        else:
            raise NotConstant("formatting of a non-scalar value")
    return total


def _joined(vals: list[Any]) -> str:
    if not all(isinstance(v, str) for v in vals):
        raise NotConstant("f-string part is not text")
    if sum(map(len, vals)) > MAX_INPUT:
        raise NotConstant("value too large")
    return "".join(vals)


def _fmt_value(conversion: int, value: Any, spec: Any) -> str:
    if not isinstance(value, (str, bytes, int)):
        raise NotConstant("unsupported f-string value")
    if conversion == 115:
        value = str(value)
    elif conversion == 114:
        value = repr(value)
    elif conversion == 97:
        value = ascii(value)
    spec = spec or ""
    safe_format_spec(spec)
    return format(value, spec)


def _plan_subscript(folder: Folder, node: ast.Subscript) -> Plan:
    sl = node.slice
    if isinstance(sl, ast.Slice):

        def combine(vals: list[Any], env: Env) -> Any:
            seq, lo, hi, step = vals
            if not isinstance(seq, (str, bytes, tuple)):
                raise NotConstant("not a sequence")
            bounds = [None if v is None else int_of(v) for v in (lo, hi, step)]
            if bounds[2] is not None and bounds[2] < 0:
                folder.note("reverse")
            return seq[bounds[0] : bounds[1] : bounds[2]]

        return Plan((node.value, sl.lower, sl.upper, sl.step), combine)

    def index(vals: list[Any], env: Env) -> Any:
        if not isinstance(vals[0], (str, bytes, tuple)):
            raise NotConstant("not a sequence")
        return vals[0][int_of(vals[1])]

    return Plan((node.value, sl), index)


def _binop(folder: Folder, op: ast.operator, a: Any, b: Any) -> Any:
    cap = MAX_INPUT
    seqs = (str, bytes, tuple)
    if isinstance(op, ast.Add) and type(a) in seqs and type(a) is type(b):
        if len(a) + len(b) > cap:
            raise NotConstant("value too large")
        return a + b
    if isinstance(op, ast.Mult) and (type(a) in seqs or type(b) in seqs):
        seq, times = (a, int_of(b)) if type(a) in seqs else (b, int_of(a))
        if len(seq) * max(times, 0) > cap:
            raise NotConstant("value too large")
        return seq * times
    if isinstance(op, ast.Mod) and isinstance(a, (str, bytes)):
        _check_printf(a)
        args = b if isinstance(b, tuple) else (b,)
        if estimated_size(a, args) > cap:
            raise NotConstant("value too large")
        return a % b
    x, y = int_of(a), int_of(b)
    if isinstance(op, ast.BitXor):
        folder.note("xor")
        return x ^ y
    simple: dict[type, Callable[[int, int], int]] = {
        ast.Add: int.__add__,
        ast.Sub: int.__sub__,
        ast.Mod: int.__mod__,
        ast.FloorDiv: int.__floordiv__,
        ast.BitAnd: int.__and__,
        ast.BitOr: int.__or__,
        ast.RShift: int.__rshift__,
    }
    if type(op) in simple:
        return simple[type(op)](x, y)
    if isinstance(op, ast.Mult) and x.bit_length() + y.bit_length() <= MAX_INT_BITS:
        return x * y
    if isinstance(op, ast.LShift) and 0 <= y <= 64:
        return x << y
    if isinstance(op, ast.Pow) and 0 <= y <= 64 and x.bit_length() * y <= MAX_INT_BITS:
        return x**y
    raise NotConstant("unsupported operator")
