"""Execution order of a package's statements, as an attack would run them. Pure.

The order is a depth-first walk of the static call flow (:mod:`triage.callflow`) from each
trigger, in trigger order: install (``setup.py`` top level, then install command classes
that nothing referenced), start-up (``.pth``, ``sitecustomize``), import (package
``__init__`` files first, then other modules), call (``__main__`` blocks, then functions
nothing calls, then anything left). Inside a unit statements run in source order; a
statement is followed by the units it runs (inner calls first), so a function called from
an install hook runs at install time, right where it is called, and a decoded payload runs
right after the statement that held it. Every statement is reached once, at its first run.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from triage.callflow import (
    MAIN,
    MODULE,
    CallResolver,
    FileSymbols,
    ModuleMap,
    Unit,
    file_symbols,
    unit_of,
)
from triage.model import FileKind, Phase, Statement
from triage.statements import FileIndex, module_phase


@dataclass(frozen=True)
class Position:
    """Where a statement falls in the package's execution."""

    rank: int
    """0-based order of first execution across the whole package."""
    phase: Phase
    """The trigger that first reaches it (earliest of that and its indexed phase)."""


_Item = tuple[Statement, ast.AST | None]


class _Program:
    """Units of every file and the resolver that links them."""

    def __init__(self, indices: Mapping[str, FileIndex]) -> None:
        self.indices = indices
        modules = ModuleMap([p for p in indices if "#" not in p])
        self.symbols: dict[str, FileSymbols] = {
            p: file_symbols(ix, modules) for p, ix in indices.items()
        }
        self.resolver = CallResolver(self.symbols, modules)
        self.units: dict[Unit, list[_Item]] = {}
        self.decoded: dict[str, list[str]] = {}  # origin statement ID -> decoded file paths
        self._callees: dict[str, list[Unit]] = {}
        self.unit_by_id: dict[str, str] = {}
        for path, ix in indices.items():
            funcs = self.symbols[path].functions
            base = module_phase(ix.file)
            by_scope: dict[str, str] = {}
            for st, node in zip(ix.statements, ix.nodes, strict=True):
                unit = by_scope.get(st.scope)
                if unit is None:
                    unit = by_scope[st.scope] = unit_of(st, funcs)
                self.unit_by_id[st.id] = unit
                if unit == MODULE and st.phase is Phase.CALL and base is not Phase.CALL:
                    unit = MAIN  # the body of `if __name__ == "__main__":`
                self.units.setdefault((path, unit), []).append((st, node))
            if ix.file.kind is FileKind.DECODED and ix.file.origin:
                self.decoded.setdefault(ix.file.origin, []).append(path)

    def callees(self, st: Statement, node: ast.AST | None, unit: str) -> list[Unit]:
        """Units ``st`` runs: its decoded payloads first, then resolved calls (memoised)."""
        cached = self._callees.get(st.id)
        if cached is None:
            cached = [(p, MODULE) for p in self.decoded.get(st.id, ())]
            cached += self.resolver.callees(st, node, unit)
            self._callees[st.id] = cached
        return cached


def _file_rank(path: str) -> tuple[int, int, str]:
    """Import order guess: package ``__init__`` files first, shallow before deep."""
    base = posixpath.basename(path)
    return (0 if base == "__init__.py" else 1, path.count("/"), path)


def _walk(program: _Program, start: Unit, seen: set[Unit]) -> Iterator[Statement]:
    """Statements in first-execution order from one unit (iterative depth-first)."""
    if start in seen or start not in program.units:
        return
    seen.add(start)
    stack: list[Iterator[_Item | Unit]] = [iter(program.units[start])]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        if isinstance(step[0], str):  # a unit to run here, unless it already ran
            unit = (step[0], str(step[1]))
            if unit not in seen and unit in program.units:
                seen.add(unit)
                stack.append(iter(program.units[unit]))
            continue
        st, node = step[0], step[1]
        yield st
        callees = program.callees(st, node, program.unit_by_id[st.id])
        if callees:
            stack.append(iter(callees))


def _entries(program: _Program) -> list[tuple[Phase, Unit]]:
    """Trigger units in trigger order."""
    files = sorted((p for p in program.indices if "#" not in p), key=_file_rank)
    phases = {p: module_phase(program.indices[p].file) for p in files}
    out: list[tuple[Phase, Unit]] = []
    for phase in (Phase.INSTALL, Phase.STARTUP, Phase.IMPORT):
        for p in files:
            if phases[p] is phase:
                out.append((phase, (p, MODULE)))
        if phase is Phase.INSTALL:  # install hooks that no `cmdclass` we could see named
            for p in files:
                for cls in sorted(program.symbols[p].hook_classes):
                    out.append((phase, (p, f"{cls}.run")))
    out += [(Phase.CALL, (p, MAIN)) for p in files]
    called: set[Unit] = set()
    for (path, unit), items in program.units.items():
        for st, node in items:
            called.update(u for u in program.callees(st, node, unit) if u != (path, unit))
    funcs = sorted(
        (u for u in program.units if u[1] not in (MODULE, MAIN)),
        key=lambda u: (_file_rank(u[0]), program.units[u][0][0].start_line),
    )
    out += [(Phase.CALL, u) for u in funcs if u not in called]
    out += [(Phase.CALL, u) for u in funcs if u in called]
    return out


def execution_order(indices: Mapping[str, FileIndex]) -> dict[str, Position]:
    """Statement ID -> position in the package's execution, for every indexed statement.

    Args:
        indices: per-file statement indices (decoded virtual files included), by path.

    Returns:
        A position for every statement; statements no trigger reaches (e.g. a decoded
        payload whose origin is not indexed) come last, in file and source order.
    """
    program = _Program(indices)
    seen: set[Unit] = set()
    out: dict[str, Position] = {}
    for phase, unit in _entries(program):
        for st in _walk(program, unit, seen):
            if st.id not in out:
                best = phase if phase.order <= st.phase.order else st.phase
                out[st.id] = Position(rank=len(out), phase=best)
    for path in sorted(indices, key=_file_rank):
        for st in indices[path].statements:
            if st.id not in out:
                out[st.id] = Position(rank=len(out), phase=st.phase)
    return out
