"""Iterative constant folding of string/bytes expressions for :mod:`triage.deobfuscate`.

The evaluator walks the AST with an explicit stack (a 5,000-deep concatenation folds without
recursion), understands only a fixed set of pure operations on str/bytes/int/tuple values,
and caps sizes and total work. Nothing is ever executed.
"""

from __future__ import annotations

import ast
import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from triage.deobfuscate_builtins import plan_call
from triage.deobfuscate_ops import (
    MAX_INPUT,
    MAX_INT_BITS,
    MAX_ITEMS,
    Combine,
    Env,
    Hook,
    NotConstant,
    Plan,
    items_of,
    plan_node,
)

MAX_PRODUCED = 128 * 2**20
"""Text one top-level evaluation may build in total (all intermediate values together)."""
_FREE = (ast.Constant, ast.Name)  # values that exist already: no new memory
MAX_NESTING = 12
"""Nested evaluations (comprehension bodies, names bound to expressions) allowed."""


@dataclass(frozen=True)
class Traced:
    """A name's folded value with the decoding layers that produced it."""

    value: Any
    """The value (str, bytes, int, tuple or an opaque record)."""
    layers: tuple[str, ...] = ()
    """Layers applied to obtain it; noted again wherever the name is used."""


class Folder:
    """Folds expressions to str/bytes/int/tuple values, or raises :class:`NotConstant`.

    Args:
        names: Module-level constants: values, :class:`Traced` values, or AST expressions
            folded on first use. Not copied: a caller may swap in another mapping between
            evaluations (the module scanner does, statement by statement).
        max_bytes: Cap on each decoder's output (folded text itself is capped at 20 MiB).
        hook: Plans extra calls (decoders) before the built-in ones.
        budget: Total node evaluations allowed over this folder's lifetime.
    """

    def __init__(
        self,
        names: Mapping[str, object] | None = None,
        *,
        max_bytes: int = 5 * 2**20,
        hook: Hook | None = None,
        budget: int = 500_000,
    ) -> None:
        self.names: Mapping[str, object] = names if names is not None else {}
        self.max_bytes = max_bytes
        self.hook = hook
        self.budget = budget
        self.layers: list[str] = []
        self.truncated = False
        self.visited: list[ast.AST] = []
        self.parsed: dict[str, ast.expr] = {}
        self.memo: dict[int, tuple[ast.AST, Any, tuple[str, ...], bool, list[ast.AST]]] = {}
        """Top-level results kept by :meth:`remember` (valid while names stay the same)."""
        # Caches keyed by id() keep their node alive, so an id is never reused meanwhile.
        self._failed: dict[int, ast.AST] = {}
        self._plans: dict[int, tuple[ast.AST, Plan]] = {}
        self._resolved: dict[int, tuple[ast.AST, Traced | None]] = {}
        self._level = 0
        self._produced = 0

    def note(self, layer: str, *, once: bool = True) -> None:
        """Record a layer; fold operations (``once``) are recorded a single time."""
        if once and layer in self.layers:
            return
        self.layers.append(layer)

    def sized(self, value: Any) -> Any:
        """Return ``value`` if it is within the size caps, else raise NotConstant."""
        if isinstance(value, bytearray):
            value = bytes(value)
        if isinstance(value, (str, bytes)) and len(value) > MAX_INPUT:
            raise NotConstant("value too large")
        if isinstance(value, tuple) and len(value) > MAX_ITEMS:
            raise NotConstant("sequence too long")
        if isinstance(value, bool) or (
            isinstance(value, int) and value.bit_length() > MAX_INT_BITS
        ):
            raise NotConstant("unsupported int")
        return value

    def remember(self, root: ast.AST) -> Any:
        """Evaluate ``root`` (top level), reusing or keeping the result in :attr:`memo`.

        Layers and truncation are restored with the value; callers reset them first.
        """
        hit = self.memo.get(id(root))
        if hit is not None:
            _, value, layers, truncated, self.visited = hit
            self.layers, self.truncated = list(layers), truncated
            return value
        value = self.evaluate(root)
        self.memo[id(root)] = (root, value, tuple(self.layers), self.truncated, self.visited)
        return value

    def evaluate(self, root: ast.AST, env: Env | None = None) -> Any:
        """Fold ``root`` iteratively; ``env`` overrides names (comprehension variables)."""
        top = env is None
        env = self.names if env is None else env
        if top:
            self._produced = 0
        done: dict[int, Any] = {}
        order: list[ast.AST] = []
        parent: dict[int, ast.AST] = {}
        stack: list[ast.AST] = [root]
        while stack:
            node = stack[-1]
            key = id(node)
            if key in done:
                stack.pop()
                continue
            self.budget -= 1
            if self.budget < 0:
                raise NotConstant("work budget exhausted")
            try:
                plan = self._plan(node)
                pending = [c for c in plan.children if c is not None and id(c) not in done]
                if pending:
                    for child in pending:
                        parent[id(child)] = node
                    stack.extend(reversed(pending))
                    continue
                vals = [None if c is None else done[id(c)] for c in plan.children]
                value = self.sized(plan.combine(vals, env))
                if isinstance(value, (str, bytes)) and not isinstance(node, _FREE):
                    self._produced += len(value)  # bounds memory across comprehension items
                    if self._produced > MAX_PRODUCED:
                        raise NotConstant("folding built too much text")
                done[key] = value
                order.append(node)
            except NotConstant:
                if top:
                    self._mark_failed(node, parent)
                raise
            except (TypeError, ValueError, ArithmeticError, LookupError, MemoryError) as exc:
                if top:
                    self._mark_failed(node, parent)
                raise NotConstant(str(exc)) from exc
            stack.pop()
        if top:
            self.visited = order
        return done[id(root)]

    def nested(self, node: ast.AST, env: Env) -> Any:
        """Evaluate a sub-expression under another environment (depth-guarded)."""
        if self._level >= MAX_NESTING:
            raise NotConstant("nesting too deep")
        self._level += 1
        try:
            return self.evaluate(node, env)
        finally:
            self._level -= 1

    def known_failure(self, node: ast.AST) -> bool:
        """True when ``node`` already failed to fold (under the same names)."""
        return id(node) in self._failed

    def _mark_failed(self, node: ast.AST, parent: dict[int, ast.AST]) -> None:
        current: ast.AST | None = node
        while current is not None and id(current) not in self._failed:
            self._failed[id(current)] = current
            current = parent.get(id(current))

    def lookup(self, name: str, env: Env) -> Any:
        """Value of ``name``: a comprehension variable, a constant, or a folded expression."""
        maps = env.maps if isinstance(env, collections.ChainMap) else [env]
        for scope in maps:
            if name in scope:
                return self._named(name) if scope is self.names else scope[name]
        raise NotConstant(f"unknown name {name}")

    def scope(self, bindings: dict[str, Any], env: Env) -> Env:
        """``env`` with ``bindings`` (comprehension or lambda variables) in front."""
        maps = env.maps if isinstance(env, collections.ChainMap) else [env]
        return collections.ChainMap(bindings, *maps)

    def _named(self, name: str) -> Any:
        value = self.names[name]
        if isinstance(value, ast.AST):
            value = self._fold_named(value)
        if isinstance(value, Traced):
            for layer in value.layers:
                self.note(layer, once=False)
            value = value.value
        return self.sized(value)

    def _fold_named(self, node: ast.AST) -> Traced:
        """Fold the expression a name is bound to, once (cycles and failures are cached)."""
        key = id(node)
        if key in self._resolved:
            traced = self._resolved[key][1]
            if traced is None:
                raise NotConstant("name is not constant")
            return traced
        self._resolved[key] = (node, None)  # in progress: a cycle reads "not constant"
        saved, self.layers = self.layers, []
        try:
            traced = Traced(self.nested(node, self.names), tuple(self.layers))
        finally:
            self.layers = saved
        self._resolved[key] = (node, traced)
        return traced

    def _plan(self, node: ast.AST) -> Plan:
        key = id(node)
        if key in self._failed:
            raise NotConstant("known not constant")
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        plan = self._make_plan(node)
        self._plans[key] = (node, plan)
        return plan

    def _make_plan(self, node: ast.AST) -> Plan:
        if isinstance(node, ast.Call):
            if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords
            ):
                raise NotConstant("star arguments")
            if self.hook is not None:
                plan = self.hook(self, node)
                if plan is not None:
                    return plan
            return plan_call(self, node)
        return plan_node(self, node)

    def comprehension(self, elt: ast.AST, target: ast.AST, ifs: Iterable[ast.AST]) -> Combine:
        """Combine function mapping ``elt`` over the items bound to ``target``."""
        names = _target_names(target)
        ifs = tuple(ifs)

        def combine(vals: list[Any], env: Env) -> tuple[Any, ...]:
            out = []
            for item in items_of(vals[0]):
                scope = self.scope(_bind(names, target, item), env)
                if all(self.nested(cond, scope) for cond in ifs):
                    out.append(self.nested(elt, scope))
            return tuple(out)

        return combine


def _target_names(target: ast.AST) -> tuple[str, ...]:
    if isinstance(target, ast.Name):
        return (target.id,)
    if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
        return tuple(e.id for e in target.elts if isinstance(e, ast.Name))
    raise NotConstant("unsupported loop target")


def _bind(names: tuple[str, ...], target: ast.AST, item: Any) -> dict[str, Any]:
    if isinstance(target, ast.Name):
        return {names[0]: item}
    if not isinstance(item, tuple) or len(item) != len(names):
        raise NotConstant("cannot unpack")
    return dict(zip(names, item, strict=True))


def fold_constant(
    node: ast.expr, names: Mapping[str, object] | None = None
) -> str | bytes | int | None:
    """Constant-fold a str/bytes/int expression without executing it.

    Args:
        node: Expression to fold.
        names: Module-level constants by name: plain values, or AST expressions that are
            folded on first use.

    Returns:
        The folded value, or None when the expression is not a constant (or too costly).
    """
    try:
        value = Folder(names).evaluate(node)
    except (NotConstant, RecursionError):
        return None
    if isinstance(value, (str, bytes, int)) and not isinstance(value, bool):
        return value
    return None
