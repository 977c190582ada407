"""Module scan of :mod:`triage.deobfuscate`: every decodable payload in a parsed module.

Module-level names are followed through straight-line assignments (``X = ''``, ``X += '..'``,
``X = b64decode(X)``), so each statement sees the values bound before it and function bodies
see the values bound at the end of the module. The walk is iterative and its work bounded.
"""

from __future__ import annotations

import ast
import bisect
import collections
import re
import warnings
from collections.abc import Iterator, Mapping
from functools import partial

from triage import deobfuscate_text as dt
from triage.deobfuscate_calls import DECODER_LAYERS, DecodeCalls, dotted_name
from triage.deobfuscate_core import DEFAULT_MAX_BYTES, Decoded, decode_literal, decode_node
from triage.deobfuscate_fold import Folder, Traced
from triage.deobfuscate_ops import NotConstant

MAX_PAYLOADS = 200
"""``find_payloads`` stops after this many payloads in one module."""
FIND_BUDGET = 500_000
"""Node evaluations ``find_payloads`` spends on one module's expressions."""
MAX_FLOW_BYTES = 64 * 2**20
"""Total size of the module-level values followed through assignments."""
MAX_EMBEDDED_SOURCE = 2**20
"""Longest string constant parsed as embedded Python source."""
_EMBEDDED = re.compile(r"b64decode|decompress|decrypt|fromhex|unhexlify|marshal|codecs\.decode")
_UNKNOWN = object()
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_HIDDEN = (ast.ClassDef, ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp, *_SCOPES)
_HANDLED = (ValueError, TypeError, LookupError, ArithmeticError, MemoryError, RecursionError)


class _Bindings(Mapping[str, object]):
    """Module-level names as bound before statement ``at``."""

    def __init__(self, versions: dict[str, list[tuple[int, object]]], at: int) -> None:
        self._versions = versions
        self._at = at

    def __getitem__(self, name: str) -> object:
        versions = self._versions.get(name, [])
        i = bisect.bisect_left(versions, self._at, key=lambda v: v[0])
        if i == 0 or versions[i - 1][1] is _UNKNOWN:
            raise KeyError(name)
        return versions[i - 1][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._versions if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _module_facts(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Import aliases (local name -> dotted target, ``b`` -> ``base64``) and names declared
    ``global`` anywhere (never followed: a function may rebind them)."""
    aliases: dict[str, str] = {}
    globals_: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.partition(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Global):
            globals_.update(node.names)
    return aliases, globals_


def _resolve_alias(aliases: dict[str, str], func: ast.expr) -> str | None:
    plain = dotted_name(func)
    if plain is None:
        return None
    root, dot, rest = plain.partition(".")
    return aliases[root] + dot + rest if root in aliases else plain


def _bound_names(stmt: ast.stmt) -> set[str]:
    """Names a module-level statement binds in the module scope."""
    out: set[str] = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            out.add(node.name)
        if not isinstance(node, _HIDDEN):
            stack.extend(ast.iter_child_nodes(node))
    return out


def _simple_assignment(stmt: ast.stmt) -> tuple[list[ast.expr], ast.expr] | None:
    """(targets, value expression) of ``X = v``, ``X += v`` or ``X: T = v``; else None."""
    if isinstance(stmt, ast.Assign):
        return list(stmt.targets), stmt.value
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return [stmt.target], stmt.value
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        current = ast.Name(stmt.target.id, ast.Load())
        return [stmt.target], ast.BinOp(current, stmt.op, stmt.value)
    return None


class _Flow:
    """Values of module-level names, statement by statement (straight-line code only)."""

    def __init__(self, tree: ast.Module, folder: Folder, globals_: set[str]) -> None:
        self.versions: dict[str, list[tuple[int, object]]] = collections.defaultdict(list)
        self.size = 0
        for index, stmt in enumerate(tree.body):
            folder.names = self.at(index)
            bound = _bound_names(stmt)
            assigned = _simple_assignment(stmt)
            values = self._assign(folder, *assigned) if assigned else {}
            for name in bound:
                value = _UNKNOWN if name in globals_ else values.get(name, _UNKNOWN)
                self.versions[name].append((index, value))
        self.end = len(tree.body)

    def at(self, index: int) -> _Bindings:
        """Names as bound before statement ``index`` (``len(body)``: at the end)."""
        return _Bindings(self.versions, index)

    def _assign(
        self, folder: Folder, targets: list[ast.expr], value: ast.expr
    ) -> dict[str, object]:
        folder.layers, folder.truncated = [], False
        try:
            folded: object = Traced(folder.remember(value), tuple(folder.layers))
        except (NotConstant, *_HANDLED):
            folded = value if isinstance(value, ast.Call) else _UNKNOWN  # Fernet(KEY) objects
        out: dict[str, object] = {}
        for target in targets:
            if isinstance(target, ast.Name):
                out[target.id] = self._kept(folded)
            elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(folded, Traced):
                items = folded.value
                if isinstance(items, tuple) and len(items) == len(target.elts):
                    for elt, item in zip(target.elts, items, strict=True):
                        if isinstance(elt, ast.Name):
                            out[elt.id] = self._kept(Traced(item, folded.layers))
        return out

    def _kept(self, value: object) -> object:
        data = value.value if isinstance(value, Traced) else None
        if isinstance(data, (str, bytes)):
            self.size += len(data)
            if self.size > MAX_FLOW_BYTES:
                return _UNKNOWN
        return value


def find_payloads(tree: ast.Module, *, min_len: int = 40) -> Iterator[tuple[ast.AST, Decoded]]:
    """Find decodable payloads in a module, in source order.

    Yields every decoding call expression that decodes (the outermost one when calls nest),
    every other constant expression (chr-joins, reversals, concatenations) and every string or
    bytes constant of at least ``min_len`` characters whose decoded text is Python, mentions a
    URL or a command, or is an executable/bytecode. A long string that is itself Python source
    holding such payloads yields them with a leading ``python-source`` layer. One payload per
    distinct decoded text (a decoding call is preferred to a literal).

    Args:
        tree: Parsed module.
        min_len: Shortest string/bytes constant considered on its own.

    Yields:
        ``(node, decoded)`` pairs; at most :data:`MAX_PAYLOADS`.
    """
    found, _ = _scan(tree, min_len, FIND_BUDGET, embedded=False)
    yield from _deduplicated(found)


def _scan(
    tree: ast.Module, min_len: int, budget: int, *, embedded: bool
) -> tuple[list[tuple[ast.AST, Decoded]], int]:
    """Payloads of one module and the folding budget left."""
    aliases, globals_ = _module_facts(tree)
    folder = Folder(hook=DecodeCalls(partial(_resolve_alias, aliases), 8), budget=budget)
    flow = _Flow(tree, folder, globals_)
    covered: set[int] = set()
    found: list[tuple[ast.AST, Decoded]] = []
    for index, stmt in enumerate(tree.body):
        queue: collections.deque[tuple[ast.AST, ast.AST | None, bool]]
        queue = collections.deque([(stmt, None, False)])
        while queue and len(found) < MAX_PAYLOADS:
            node, parent, deferred = queue.popleft()
            for child in ast.iter_child_nodes(node):
                queue.append((child, node, deferred or isinstance(node, _SCOPES)))
            if id(node) in covered:
                continue
            folder.names = flow.at(flow.end if deferred else index)
            try:
                decoded = _payloads_at(node, parent, folder, covered, min_len, embedded)
            except _HANDLED:
                decoded = []  # hostile input must not stop the scan of the rest of the module
            for d in decoded[: MAX_PAYLOADS - len(found)]:
                found.append((node, d))
            if decoded:
                covered.update(id(n) for n in ast.walk(node))
    return found, folder.budget


def _payloads_at(
    node: ast.AST,
    parent: ast.AST | None,
    folder: Folder,
    covered: set[int],
    min_len: int,
    embedded: bool,
) -> list[Decoded]:
    if isinstance(node, ast.Constant):
        value = node.value
        if not isinstance(value, (str, bytes)) or len(value) < min_len:
            return []
        decoded = decode_literal(value)
        if decoded is not None:
            return [decoded] if _interesting(decoded) else []
        if (
            isinstance(value, str)
            and not embedded
            and len(value) <= MAX_EMBEDDED_SOURCE
            and _EMBEDDED.search(value)
        ):
            return _embedded(value, min_len, folder)
        return []
    if not _is_candidate(node, parent) or folder.budget <= 0 or folder.known_failure(node):
        return []
    decoded, folded = decode_node(folder, node, 8, DEFAULT_MAX_BYTES, min_len)
    explicit = bool(DECODER_LAYERS.intersection(folder.layers))  # a decoding call, not a literal
    if decoded is not None and (explicit or _interesting(decoded)):
        return [decoded]
    if folded:  # it folded to plain text: its sub-expressions cannot decode to more
        covered.update(id(n) for n in folder.visited if not isinstance(n, ast.Constant))
    return []


def _embedded(source: str, min_len: int, folder: Folder) -> list[Decoded]:
    """Payloads inside a string that is itself Python source (written out, then run); the
    inner scan spends the outer folder's budget."""
    if folder.budget <= 0:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return []
    found, folder.budget = _scan(tree, min_len, folder.budget, embedded=True)
    return [Decoded(d.text, ("python-source", *d.layers), d.is_python, d.binary) for _, d in found]


def _interesting(decoded: Decoded) -> bool:
    if decoded.binary:
        return decoded.text.partition("\n")[0] in dt.EXECUTABLE_KINDS
    return decoded.is_python or dt.mentions_url_or_command(decoded.text)


def _is_candidate(node: ast.AST, parent: ast.AST | None) -> bool:
    if isinstance(node, (ast.Call, ast.Subscript)):
        return True
    return isinstance(node, ast.BinOp) and not isinstance(parent, ast.BinOp)


def _deduplicated(found: list[tuple[ast.AST, Decoded]]) -> list[tuple[ast.AST, Decoded]]:
    """One payload per decoded text, in source order: the first decoding call that yields it,
    else the first literal (``P = '<b64>'`` then ``exec(b64decode(P))`` reports the call)."""
    best: dict[str, tuple[ast.AST, Decoded]] = {}
    for node, d in sorted(found, key=lambda p: _position(p[0])):
        kept = best.get(d.text)
        if kept is None or (
            isinstance(kept[0], ast.Constant) and not isinstance(node, ast.Constant)
        ):
            best[d.text] = (node, d)
    return sorted(best.values(), key=lambda p: _position(p[0]))


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
