"""The detector framework: name resolution, per-file context, and the detector Protocol.

Detectors never compute locations: they name a statement (or an AST node, which the
framework maps to its statement) and the framework fills in lines from the index.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from triage.model import Artifact, PackageMetadata, Signal, SourceFile, Statement
from triage.statements import FileIndex, own_nodes

_BUILTINS = frozenset(dir(builtins))
_MAX_FOLD = 200_000  # characters; folding stops beyond this to bound work


def dotted(expr: ast.AST) -> str | None:
    """Plain dotted text of a Name/Attribute chain (``os.path.join``), else None."""
    parts: list[str] = []
    cur = expr
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if isinstance(cur, ast.Name):
        parts.append(cur.id)
        return ".".join(reversed(parts))
    return None


class Resolver:
    """Resolves local names to fully qualified names, flow-insensitively, per file.

    Handles ``import a.b as c``, ``from os import system as s``, ``x = __import__('o'+'s')``,
    ``x = importlib.import_module('os')``, ``f = getattr(os, 'sys'+'tem')``, ``f = os.system``,
    ``__builtins__['exec']`` and ``builtins.exec``. Module-level string constants are
    folded so that ``getattr(os, NAME)`` resolves too.
    """

    def __init__(self, nodes: Iterable[ast.AST | None]) -> None:
        self.aliases: dict[str, str] = {}
        self.constants: dict[str, object] = {}
        self.star_modules: list[str] = []
        conflicting: set[str] = set()
        assigns: list[tuple[str, ast.expr]] = []
        for top in nodes:
            if top is None:
                continue
            for node in own_nodes(top):
                if isinstance(node, ast.Import):
                    for a in node.names:
                        if a.asname:
                            self.aliases[a.asname] = a.name
                        else:
                            head = a.name.split(".")[0]
                            self.aliases.setdefault(head, head)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    for a in node.names:
                        if a.name == "*":
                            self.star_modules.append(node.module)
                        else:
                            self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                    tgt = node.targets[0]
                    if isinstance(tgt, ast.Name):
                        assigns.append((tgt.id, node.value))
        # constants first (they feed getattr/__import__ folding), then aliases
        seen: dict[str, int] = {}
        for name, _ in assigns:
            seen[name] = seen.get(name, 0) + 1
        conflicting = {n for n, c in seen.items() if c > 1}
        for name, value in assigns:
            if name in conflicting:
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, (str, bytes, int)):
                self.constants[name] = value.value
        for name, value in assigns:
            if name in conflicting or name in self.constants:
                continue
            folded = self.fold(value)
            if isinstance(folded, (str, bytes)):
                self.constants[name] = folded
                continue
            q = self.qualname(value)
            if q and isinstance(value, (ast.Name, ast.Attribute, ast.Call, ast.Subscript)):
                if isinstance(value, ast.Call) and not _is_module_getter(value):
                    continue
                self.aliases[name] = q

    def fold(self, node: ast.AST) -> object | None:
        """Constant-fold a string/bytes expression, or None."""
        try:
            from triage.deobfuscate import fold_constant

            value = fold_constant(node, self.constants)  # type: ignore[arg-type]
        except (RecursionError, MemoryError, ValueError, TypeError, OverflowError):
            return None
        if isinstance(value, (str, bytes)) and len(value) > _MAX_FOLD:
            return None
        return value

    def qualname(self, expr: ast.AST) -> str | None:
        """Fully qualified name of a callee or value expression, or None."""
        if isinstance(expr, ast.Name):
            if expr.id in self.aliases:
                return self.aliases[expr.id]
            if expr.id in _BUILTINS:
                return expr.id
            return expr.id
        if isinstance(expr, ast.Attribute):
            base = self.qualname(expr.value)
            if base is None:
                return None
            if base in ("builtins", "__builtins__", "__builtin__"):
                return expr.attr
            return f"{base}.{expr.attr}"
        if isinstance(expr, ast.Call):
            return self._call_value(expr)
        if isinstance(expr, ast.Subscript):
            base = self.qualname(expr.value)
            key = self.fold(expr.slice)
            if isinstance(key, str) and base in ("__builtins__", "builtins.__dict__",
                                                 "vars", "globals", "locals"):
                return key
            if isinstance(key, str) and base and base.endswith("__dict__"):
                return f"{base[: -len('.__dict__')]}.{key}"
        return None

    def _call_value(self, call: ast.Call) -> str | None:
        """What a call expression evaluates to, when it is a module or attribute getter."""
        fn = self.qualname(call.func)
        if fn in ("__import__", "importlib.import_module", "importlib.__import__") and call.args:
            mod = self.fold(call.args[0])
            return mod if isinstance(mod, str) else None
        if fn == "getattr" and len(call.args) >= 2:
            base = self.qualname(call.args[0])
            attr = self.fold(call.args[1])
            if base and isinstance(attr, str):
                return attr if base in ("builtins", "__builtins__") else f"{base}.{attr}"
        if fn in ("globals", "locals", "vars"):
            return "globals"
        return None


def _is_module_getter(call: ast.Call) -> bool:
    f = dotted(call.func) or ""
    return f.split(".")[-1] in ("__import__", "import_module", "getattr")


@dataclass(frozen=True)
class CallSite:
    """One call inside one statement, with its resolved callee name."""

    statement: Statement
    node: ast.Call
    name: str
    """Resolved dotted name (``subprocess.Popen``), or the plain text when unresolved."""


@dataclass
class FileContext:
    """Everything a per-file detector needs, computed once per file."""

    index: FileIndex
    resolver: Resolver
    artifact: Artifact
    _calls: list[CallSite] | None = field(default=None, repr=False)
    _strings: list[tuple[Statement, ast.AST, str]] | None = field(default=None, repr=False)

    @property
    def source(self) -> SourceFile:
        """The file being analysed."""
        return self.index.file

    def statements(self) -> Iterator[tuple[Statement, ast.AST | None]]:
        """Every statement with its node (None in fallback mode)."""
        return zip(self.index.statements, self.index.nodes, strict=True)

    def own(self, statement: Statement) -> list[ast.AST]:
        """The statement's own AST nodes (header only for compound statements)."""
        node = self.index.node_of(statement.id)
        return own_nodes(node) if node is not None else []

    def calls(self) -> list[CallSite]:
        """Every call in the file with its statement and resolved name (cached)."""
        if self._calls is None:
            out: list[CallSite] = []
            for st, node in self.statements():
                if node is None:
                    continue
                for sub in own_nodes(node):
                    if isinstance(sub, ast.Call):
                        name = self.resolver.qualname(sub.func) or dotted(sub.func) or ""
                        out.append(CallSite(st, sub, name))
            self._calls = out
        return self._calls

    def strings(self) -> list[tuple[Statement, ast.AST, str]]:
        """Every string constant (and folded string expression) with its statement (cached)."""
        if self._strings is None:
            out: list[tuple[Statement, ast.AST, str]] = []
            for st, node in self.statements():
                if node is None:
                    continue
                for sub in own_nodes(node):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        out.append((st, sub, sub.value))
                    elif isinstance(sub, ast.Constant) and isinstance(sub.value, bytes):
                        out.append((st, sub, sub.value.decode("latin-1")))
                    elif isinstance(sub, (ast.BinOp, ast.JoinedStr, ast.Call, ast.Subscript)):
                        v = self.resolver.fold(sub)
                        if isinstance(v, str) and v:
                            out.append((st, sub, v))
            self._strings = out
        return self._strings

    def signal(self, indicator: str, statement: Statement, evidence: str,
               confidence: float = 0.8, detector: str = "",
               lines: tuple[int, int] | None = None) -> Signal:
        """Build a Signal on a statement (optionally a narrower line span inside it)."""
        return Signal(indicator=indicator, statement_id=statement.id, evidence=evidence,
                      confidence=confidence, detector=detector,
                      start_line=lines[0] if lines else None,
                      end_line=lines[1] if lines else None)


@dataclass(frozen=True)
class PackageContext:
    """Everything a package-level detector needs."""

    artifact: Artifact
    files: tuple[FileContext, ...]

    @property
    def metadata(self) -> PackageMetadata:
        """The artifact's metadata."""
        return self.artifact.metadata

    def file(self, path: str) -> FileContext | None:
        """The context of one analysed file, by path."""
        for fc in self.files:
            if fc.source.path == path:
                return fc
        return None


class FileDetector(Protocol):
    """A per-file detector: one module, a name, the indicators it can raise."""

    name: str
    indicators: tuple[str, ...]

    def __call__(self, ctx: FileContext) -> Iterable[Signal]: ...


class PackageDetector(Protocol):
    """A package-level detector (metadata, cross-file facts)."""

    name: str
    indicators: tuple[str, ...]

    def __call__(self, ctx: PackageContext) -> Iterable[Signal]: ...


@dataclass(frozen=True)
class Detector:
    """Adapter that gives a plain function the detector attributes."""

    name: str
    indicators: tuple[str, ...]
    fn: Callable[..., Iterable[Signal]]

    def __call__(self, ctx: object) -> Iterable[Signal]:
        return self.fn(ctx)


def detector(name: str, *indicators: str) -> Callable[[Callable[..., Iterable[Signal]]], Detector]:
    """Decorator: turn ``fn(ctx) -> Iterable[Signal]`` into a registered-ready Detector."""

    def wrap(fn: Callable[..., Iterable[Signal]]) -> Detector:
        return Detector(name=name, indicators=tuple(indicators), fn=fn)

    return wrap
