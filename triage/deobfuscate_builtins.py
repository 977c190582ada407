"""Pure builtins and str/bytes methods the constant folder understands
(helper of :mod:`triage.deobfuscate`): ``chr``, ``bytes``, ``map``, ``''.join``, ``.format``...
"""

from __future__ import annotations

import ast
import string
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from triage.deobfuscate_ops import (
    MAX_INPUT,
    MAX_ITEMS,
    Env,
    NotConstant,
    Plan,
    check_format,
    errors_of,
    estimated_size,
    int_of,
    items_of,
    slots,
    text_encoding,
)

MAX_EVAL_SOURCE = 100_000
"""Longest constant string that ``eval(...)`` folding parses."""

if TYPE_CHECKING:
    from triage.deobfuscate_fold import Folder


# --- calls -------------------------------------------------------------------------------


def plan_call(folder: Folder, node: ast.Call) -> Plan:
    """Plan a call to a pure builtin (``chr``, ``bytes``...) or a str/bytes method."""
    func = node.func
    if isinstance(func, ast.Name):
        return _plan_builtin(folder, func.id, node)
    if isinstance(func, ast.Attribute):
        if func.attr == "fromhex" and isinstance(func.value, ast.Name):
            if func.value.id in ("bytes", "bytearray"):
                return Plan(slots(node, ("string",)), lambda vals, env: _fromhex(folder, vals[0]))
        if func.attr == "format":
            return plan_format(folder, func, node)
        method = _METHODS.get(func.attr)
        if method is not None:
            return _plan_method(folder, func, node, method)
    raise NotConstant("unsupported call")


def _fromhex(folder: Folder, text: Any) -> bytes:
    if not isinstance(text, str):
        raise NotConstant("fromhex needs text")
    folder.note("hex")
    return bytes.fromhex(text)


def _to_bytes(folder: Folder, literal: bool, src: Any, enc: Any, errors: Any) -> bytes:
    if isinstance(src, str):
        return src.encode(*text_encoding(enc), errors_of(errors))
    if isinstance(src, tuple):
        if literal:  # bytes([105, 109, ...]): the payload is spelled as a list of ints
            folder.note("int-list")
        return bytes(int_of(v) for v in src)
    if isinstance(src, bytes) and enc is None:
        return src
    if src is None:
        return b""
    raise NotConstant("unsupported bytes() argument")


def _to_str(src: Any, enc: Any, errors: Any) -> str:
    if enc is None and errors is None:
        if isinstance(src, (str, int, bytes)) and not isinstance(src, bool):
            return str(src)  # str(b'..') is its repr: at most 4x the bytes, under MAX_INPUT
        raise NotConstant("unsupported str() argument")
    if isinstance(src, bytes):
        return src.decode(*text_encoding(enc), errors_of(errors))
    raise NotConstant("str() with an encoding needs bytes")


def _map(folder: Folder, fn: ast.AST, seq: Any) -> tuple[Any, ...]:
    items = items_of(seq)
    if isinstance(fn, ast.Lambda):
        args = fn.args.args
        if len(args) != 1 or fn.args.vararg or fn.args.kwonlyargs or fn.args.posonlyargs:
            raise NotConstant("unsupported lambda")
        name = args[0].arg
        return tuple(folder.nested(fn.body, folder.scope({name: x}, folder.names)) for x in items)
    if isinstance(fn, ast.Name) and fn.id in _UNARY:
        if fn.id == "chr":
            folder.note("chr")
        return tuple(_UNARY[fn.id](x) for x in items)
    raise NotConstant("unsupported map function")


def _chr(value: Any) -> str:
    return chr(int_of(value))


def _ord(value: Any) -> int:
    if isinstance(value, (str, bytes)) and len(value) == 1:
        return ord(value)
    raise NotConstant("ord needs one character")


def _int_of(value: Any, base: Any = None) -> int:
    if isinstance(value, str) and len(value) <= 200:
        return int(value, 10 if base is None else int_of(base))
    return int_of(value)


_UNARY: dict[str, Callable[[Any], Any]] = {"chr": _chr, "ord": _ord, "int": _int_of, "str": str}


def _range(start: Any, stop: Any, step: Any) -> tuple[int, ...]:
    bounds = [int_of(v) for v in (start, stop, step) if v is not None]
    rng = range(*bounds)
    if len(rng) > MAX_ITEMS:
        raise NotConstant("range too long")
    return tuple(rng)


def _eval_constant(folder: Folder, text: Any, env: Env) -> Any:
    """``eval('magic')`` / ``eval('codecs.decode(love, joy)')`` on a constant string: the
    string is parsed (never compiled) and folded like any other expression."""
    if not isinstance(text, str) or len(text) > MAX_EVAL_SOURCE:
        raise NotConstant("eval of a non-constant or huge string")
    tree = folder.parsed.get(text)
    if tree is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                tree = ast.parse(text.strip(), mode="eval").body
            except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                raise NotConstant("eval string does not parse") from exc
        folder.parsed[text] = tree
    return folder.nested(tree, env)


def _plan_builtin(folder: Folder, name: str, node: ast.Call) -> Plan:
    if name == "chr":

        def chr_(vals: list[Any], env: Env) -> str:
            folder.note("chr")
            return _chr(vals[0])

        return Plan(slots(node, ("i",)), chr_)
    if name == "ord":
        return Plan(slots(node, ("c",)), lambda vals, env: _ord(vals[0]))
    if name in ("bytes", "bytearray"):
        params = ("source", "encoding", "errors")
        literal = bool(node.args) and isinstance(node.args[0], (ast.List, ast.Tuple))
        return Plan(slots(node, params), lambda vals, env: _to_bytes(folder, literal, *vals))
    if name == "str":
        params = ("object", "encoding", "errors")
        return Plan(slots(node, params), lambda vals, env: _to_str(*vals))
    if name == "int":
        return Plan(slots(node, ("x", "base")), lambda vals, env: _int_of(*vals))
    if name == "len":
        return Plan(slots(node, ("obj",)), lambda vals, env: len(items_of(vals[0])))
    if name == "map" and len(node.args) == 2 and not node.keywords:
        fn = node.args[0]
        return Plan((node.args[1],), lambda vals, env: _map(folder, fn, vals[0]))
    if name == "reversed":

        def reverse(vals: list[Any], env: Env) -> tuple[Any, ...]:
            folder.note("reverse")
            return tuple(reversed(items_of(vals[0])))

        return Plan(slots(node, ("seq",)), reverse)
    if name in ("list", "tuple"):
        return Plan(slots(node, ("iterable",)), lambda vals, env: items_of(vals[0] or ()))
    if name == "enumerate":
        return Plan(
            slots(node, ("iterable", "start")),
            lambda vals, env: tuple(enumerate(items_of(vals[0]), int_of(vals[1] or 0))),
        )
    if name == "zip" and not node.keywords:
        return Plan(
            tuple(node.args), lambda vals, env: tuple(zip(*map(items_of, vals), strict=False))
        )
    if name == "eval" and len(node.args) == 1 and not node.keywords:
        return Plan((node.args[0],), lambda vals, env: _eval_constant(folder, vals[0], env))
    if name == "range":
        return Plan(slots(node, ("start", "stop", "step")), lambda vals, env: _range(*vals))
    raise NotConstant(f"unsupported call {name}")


# --- methods -----------------------------------------------------------------------------


def _join(folder: Folder, sep: Any, seq: Any) -> Any:
    items = items_of(seq)
    if not isinstance(sep, (str, bytes)) or not all(type(i) is type(sep) for i in items):
        raise NotConstant("join of mixed types")
    if sum(map(len, items)) + len(sep) * len(items) > MAX_INPUT:
        raise NotConstant("value too large")
    return sep.join(items)


def _replace(folder: Folder, recv: Any, old: Any, new: Any, count: Any) -> Any:
    if type(recv) not in (str, bytes) or type(old) is not type(recv):
        raise NotConstant("replace on non-text")
    if type(new) is not type(recv):
        raise NotConstant("replace on non-text")
    hits = recv.count(old) if old else len(recv) + 1
    if len(recv) + hits * len(new) > MAX_INPUT:
        raise NotConstant("value too large")
    return recv.replace(old, new, -1 if count is None else int_of(count))


def _format(folder: Folder, recv: Any, *args: Any, **kwargs: Any) -> str:
    if not isinstance(recv, str):
        raise NotConstant("format on non-text")
    check_format(recv)
    # a field may repeat an argument ('{0}{0}{0}'): bound by fields x largest argument
    fields = sum(1 for _, name, _, _ in string.Formatter().parse(recv) if name is not None)
    largest = max((estimated_size("", [a]) for a in [*args, *kwargs.values()]), default=0)
    if len(recv) + fields * largest > MAX_INPUT:
        raise NotConstant("value too large")
    return recv.format(*args, **kwargs)


def _encode(recv: Any, enc: Any, errors: Any) -> bytes:
    if not isinstance(recv, str):
        raise NotConstant("encode needs text")
    return recv.encode(*text_encoding(enc), errors_of(errors))


def _decode(recv: Any, enc: Any, errors: Any) -> str:
    if not isinstance(recv, bytes):
        raise NotConstant("decode needs bytes")
    return recv.decode(*text_encoding(enc), errors_of(errors))


def _split(recv: Any, sep: Any, maxsplit: Any) -> tuple[Any, ...]:
    if not isinstance(recv, (str, bytes)):
        raise NotConstant("split on non-text")
    return tuple(recv.split(sep, -1 if maxsplit is None else int_of(maxsplit)))


def _text_method(name: str) -> Callable[..., Any]:
    def apply(folder: Folder, recv: Any, *args: Any) -> Any:
        if not isinstance(recv, (str, bytes)):
            raise NotConstant(f"{name} on non-text")
        return getattr(recv, name)(*[a for a in args if a is not None])

    return apply


_METHODS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "join": (("iterable",), lambda folder, recv, seq: _join(folder, recv, seq)),
    "replace": (("old", "new", "count"), _replace),
    "encode": (("encoding", "errors"), lambda folder, recv, *a: _encode(recv, *a)),
    "decode": (("encoding", "errors"), lambda folder, recv, *a: _decode(recv, *a)),
    **{
        m: (params, _text_method(m))
        for m, params in (
            ("strip", ("chars",)),
            ("lstrip", ("chars",)),
            ("rstrip", ("chars",)),
            ("lower", ()),
            ("upper", ()),
            ("swapcase", ()),
        )
    },
    "split": (("sep", "maxsplit"), lambda folder, recv, *a: _split(recv, *a)),
}


def _plan_method(
    folder: Folder,
    func: ast.Attribute,
    node: ast.Call,
    method: tuple[tuple[str, ...], Callable[..., Any]],
) -> Plan:
    params, apply = method
    children = (func.value, *slots(node, params))
    return Plan(children, lambda vals, env: apply(folder, *vals))


def plan_format(folder: Folder, func: ast.Attribute, node: ast.Call) -> Plan:
    """Plan ``'...'.format(*constants, **constants)``."""
    names = tuple(str(k.arg) for k in node.keywords)
    npos = len(node.args)

    def combine(vals: list[Any], env: Env) -> str:
        return _format(
            folder, vals[0], *vals[1 : 1 + npos], **dict(zip(names, vals[1 + npos :], strict=True))
        )

    return Plan((func.value, *node.args, *(k.value for k in node.keywords)), combine)
