"""Static call flow: which local code a statement runs, across the files of one package.

Resolves, without executing anything, the calls and references of each statement to the
package's own functions, classes and modules: ``f()`` and nested ``g()``, ``self.m()``,
``Cls()`` (its ``__init__``), an install command class referenced in ``cmdclass`` (its
``run``), ``from .mod import f`` / ``from pkg.mod import f`` / ``import pkg.mod as m`` and the
import itself (the imported module's top level runs there). A decoded payload runs where its
origin statement runs. Resolution is flow-insensitive and deliberately simple: an
unresolved call is just not followed.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from triage.indicators.base import dotted
from triage.model import Statement
from triage.statements import FileIndex, is_install_command_class, own_nodes

MODULE = "<module>"
"""Unit name of a file's top-level code (class bodies included: they run inline)."""
MAIN = "<main>"
"""Unit name of a file's ``if __name__ == "__main__":`` block (runs only as a script)."""

Unit = tuple[str, str]
"""(file path, unit name): ``MODULE``, ``MAIN`` or a function's qualified name."""


@dataclass(frozen=True)
class FileSymbols:
    """Functions, classes and import bindings of one indexed file."""

    path: str
    functions: frozenset[str]
    """Qualified names of every function (``f``, ``Cls.run``, ``f.inner``)."""
    classes: frozenset[str]
    """Qualified names of every class."""
    hook_classes: frozenset[str]
    """Classes that subclass a setuptools/distutils command that runs on install."""
    bindings: Mapping[str, Unit]
    """Local name -> unit it designates (an imported function or a module's top level)."""
    modules: Mapping[str, str]
    """Dotted name bound by ``import a.b`` (``a.b``) -> file path."""
    heads: frozenset[str] = frozenset()
    """Names a resolvable reference can start with (a filter for speed)."""


def unit_of(st: Statement, functions: frozenset[str]) -> str:
    """The unit a statement belongs to: its innermost enclosing function, else the module."""
    if st.scope == MODULE:
        return MODULE
    parts = st.scope.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in functions:
            return name
    return MODULE


def _def_name(st: Statement, node: ast.AST | None) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    return None


def _reachable(path: str, name: str, here: str) -> bool:
    """True when module ``name`` at ``path`` sits on an import root visible from ``here``:
    the importer's directory or one above it (Python 2 implicit relative imports, the
    project root of ``setup.py``), or a ``src/`` layout beside it."""
    depth = name.count(".") + (2 if path.endswith("/__init__.py") else 1)
    root = "/".join(path.split("/")[:-depth])
    if not root or here == root or here.startswith(root + "/"):
        return True
    return root.endswith("/src") and posixpath.dirname(root) in (here, "")


class ModuleMap:
    """Dotted module names -> file paths, for every Python file of the package."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = set(paths)
        self.by_name: dict[str, list[str]] = {}
        for path in sorted(paths, key=lambda p: (p.count("/"), p)):
            if "#" in path or not path.endswith(".py"):
                continue
            parts = path[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for i in range(len(parts)):
                tail = parts[i:]
                if tail and all(p.isidentifier() for p in tail):
                    self.by_name.setdefault(".".join(tail), []).append(path)

    def absolute(self, name: str, importer: str) -> str | None:
        """The file of module ``name`` nearest to ``importer`` (longest shared directory)."""
        here = posixpath.dirname(importer.split("#")[0])
        found = [p for p in self.by_name.get(name, ()) if _reachable(p, name, here)]
        if not found:
            return None
        return max(found, key=lambda p: (len(posixpath.commonpath([here, posixpath.dirname(p)])
                                             if here else ""), -p.count("/")))

    def relative(self, module: str | None, level: int, importer: str) -> str | None:
        """The file of ``from <dots><module> import`` seen from ``importer``."""
        base = posixpath.dirname(importer.split("#")[0])
        for _ in range(level - 1):
            base = posixpath.dirname(base)
        rel = (module or "").replace(".", "/")
        stem = posixpath.join(base, rel) if rel else base
        for cand in (f"{stem}.py", posixpath.join(stem, "__init__.py")):
            if cand in self.paths:
                return cand
        return None

    def resolve(self, node: ast.ImportFrom, importer: str) -> str | None:
        """The file a ``from ... import`` statement imports from, if it is in the package."""
        if node.level:
            return self.relative(node.module, node.level, importer)
        return self.absolute(node.module, importer) if node.module else None


def _module_symbols(index: FileIndex) -> tuple[set[str], set[str], set[str]]:
    functions: set[str] = set()
    classes: set[str] = set()
    hooks: set[str] = set()
    aliases: dict[str, str] = {}
    for st, node in zip(index.statements, index.nodes, strict=True):
        if isinstance(node, ast.ImportFrom) and node.module and "command" in node.module:
            aliases.update({a.asname: a.name for a in node.names if a.asname})
        name = _def_name(st, node)
        if name is None:
            continue
        qual = name if st.scope == MODULE else f"{st.scope}.{name}"
        if isinstance(node, ast.ClassDef):
            classes.add(qual)
            if is_install_command_class(node, aliases):
                hooks.add(qual)
        else:
            functions.add(qual)
    return functions, classes, hooks


def file_symbols(index: FileIndex, modules: ModuleMap) -> FileSymbols:
    """Symbols of one file; imports resolve only to files of the package."""
    path = index.file.path
    functions, classes, hooks = _module_symbols(index)
    bindings: dict[str, Unit] = {}
    dotted_mods: dict[str, str] = {}
    for node in index.nodes:
        if node is None:
            continue
        for sub in own_nodes(node):
            if isinstance(sub, ast.Import):
                for a in sub.names:
                    target = modules.absolute(a.name, path)
                    if a.asname and target is not None:
                        bindings[a.asname] = (target, MODULE)
                    parts = a.name.split(".")
                    for end in range(1, len(parts) + 1):  # `import a.b` also binds `a`
                        prefix = ".".join(parts[:end])
                        found = modules.absolute(prefix, path)
                        if found is not None and not a.asname:
                            dotted_mods[prefix] = found
            elif isinstance(sub, ast.ImportFrom):
                source = modules.resolve(sub, path)
                for a in sub.names:
                    local = a.asname or a.name
                    sub_mod = modules.relative(f"{sub.module or ''}.{a.name}".strip("."),
                                               sub.level, path) if sub.level else \
                        modules.absolute(f"{sub.module}.{a.name}", path)
                    if sub_mod is not None:
                        bindings[local] = (sub_mod, MODULE)
                    elif source is not None and a.name != "*":
                        bindings[local] = (source, a.name)
    heads = {q.rsplit(".", 1)[-1] for q in functions | classes} | set(bindings)
    heads |= {m.split(".")[0] for m in dotted_mods} | {"self", "cls"}
    return FileSymbols(path=path, functions=frozenset(functions), classes=frozenset(classes),
                       hook_classes=frozenset(hooks), bindings=bindings, modules=dotted_mods,
                       heads=frozenset(heads))


class CallResolver:
    """Maps the references of a statement to the units they run."""

    def __init__(self, symbols: Mapping[str, FileSymbols], modules: ModuleMap) -> None:
        self.symbols = symbols
        self.modules = modules

    def _member(self, path: str, name: str, called: bool) -> list[Unit]:
        """Units run by referring to top-level ``name`` of file ``path``."""
        sym = self.symbols.get(path)
        if sym is None:
            return []
        if name in sym.functions:
            return [(path, name)]
        if name in sym.classes:
            out = []
            if called and f"{name}.__init__" in sym.functions:
                out.append((path, f"{name}.__init__"))
            if name in sym.hook_classes and f"{name}.run" in sym.functions:
                out.append((path, f"{name}.run"))
            return out
        return []

    def _resolve(self, sym: FileSymbols, unit: str, text: str, called: bool) -> list[Unit]:
        head, _, rest = text.partition(".")
        if not rest:
            scopes = unit.split(".") if unit not in (MODULE, MAIN) else []
            for end in range(len(scopes), 0, -1):  # nested functions see enclosing ones
                qual = ".".join(scopes[:end] + [head])
                if qual in sym.functions:
                    return [(sym.path, qual)]
            found = self._member(sym.path, head, called)
            if found:
                return found
            bound = sym.bindings.get(head)
            if bound is not None and bound[1] != MODULE:
                return self._member(bound[0], bound[1], called)
            return []
        if head in ("self", "cls") and "." in unit and "." not in rest:
            cls = unit.rsplit(".", 1)[0]
            return self._member(sym.path, f"{cls}.{rest}", called) if \
                f"{cls}.{rest}" in sym.functions else []
        bound = sym.bindings.get(head)
        if bound is not None and bound[1] == MODULE and "." not in rest:
            return self._member(bound[0], rest, called)
        mod, _, attr = text.rpartition(".")
        if mod in sym.modules:
            return self._member(sym.modules[mod], attr, called)
        return []

    def callees(self, st: Statement, node: ast.AST | None, unit: str) -> list[Unit]:
        """Units a statement runs, in evaluation order (inner calls before outer ones)."""
        sym = self.symbols.get(st.file)
        if sym is None or node is None:
            return []
        found: list[tuple[tuple[int, int], Unit]] = []
        called: set[int] = set()
        for sub in own_nodes(node):  # parents come before their children
            if isinstance(sub, ast.Call):
                called.add(id(sub.func))
                continue
            if isinstance(sub, (ast.Import, ast.ImportFrom)):
                found += [((sub.lineno, sub.col_offset), u) for u in self._imports(sym, sub)]
                continue
            root = sub
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Call):
                pos = (getattr(sub, "end_lineno", 0) or 0, getattr(sub, "end_col_offset", 0) or 0)
                found += [(pos, u) for u in self._method_of_new(sym, sub.value, sub.attr)]
                continue
            if not isinstance(root, ast.Name) or root.id not in sym.heads:
                continue  # cheap filter: most names cannot lead to package code
            if not isinstance(getattr(sub, "ctx", None), ast.Load):
                continue
            text = dotted(sub)
            if text is None:
                continue
            pos = (getattr(sub, "end_lineno", 0) or 0, getattr(sub, "end_col_offset", 0) or 0)
            for u in self._resolve(sym, unit, text, id(sub) in called):
                found.append((pos, u))
        found.sort(key=lambda t: t[0])
        return list(dict.fromkeys(u for _, u in found))

    def _method_of_new(self, sym: FileSymbols, call: ast.Call, attr: str) -> list[Unit]:
        """``Cls().method``: the method of a package class instantiated on the spot."""
        text = dotted(call.func)
        if text is None or text.split(".")[0] not in sym.heads:
            return []
        head, _, rest = text.partition(".")
        bound = sym.bindings.get(head)
        cls: Unit | None = None
        if not rest and head in sym.classes:
            cls = (sym.path, head)
        elif bound is not None and bound[1] != MODULE and not rest:
            cls = bound
        elif bound is not None and bound[1] == MODULE and "." not in rest:
            cls = (bound[0], rest)
        elif text.rpartition(".")[0] in sym.modules:
            cls = (sym.modules[text.rpartition(".")[0]], text.rpartition(".")[2])
        target = self.symbols.get(cls[0]) if cls is not None else None
        if cls is None or target is None or cls[1] not in target.classes:
            return []
        method = f"{cls[1]}.{attr}"
        return [(cls[0], method)] if method in target.functions else []

    def _imports(self, sym: FileSymbols, node: ast.Import | ast.ImportFrom) -> list[Unit]:
        """Module top levels an import statement runs (package ``__init__`` first)."""
        out: list[Unit] = []
        if isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                for end in range(1, len(parts) + 1):
                    target = self.modules.absolute(".".join(parts[:end]), sym.path)
                    if target is not None:
                        out.append((target, MODULE))
            return list(dict.fromkeys(out))
        if not node.level and node.module:  # `from a.b import x` runs a, then a.b
            parts = node.module.split(".")
            for end in range(1, len(parts)):
                parent = self.modules.absolute(".".join(parts[:end]), sym.path)
                if parent is not None:
                    out.append((parent, MODULE))
        source = self.modules.resolve(node, sym.path)
        if source is not None:
            out.append((source, MODULE))
        for a in node.names:
            bound = sym.bindings.get(a.asname or a.name)
            if bound is not None and bound[1] == MODULE:
                out.append(bound)
        return list(dict.fromkeys(out))
