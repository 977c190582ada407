"""Read ``setup(...)`` keyword arguments from setup.py with ``ast``; never executed.

Each keyword becomes a ``MetadataField`` on the keyword's own lines. Values are resolved
statically (constants, module-level names, lists, f-strings of those); anything else is
kept as its source text. Python 2 files that do not parse fall back to a regex.
"""

from __future__ import annotations

import ast
import re

from triage.model import MetadataField

SETUP_KEYS = {
    "name": "name",
    "version": "version",
    "author": "author",
    "author_email": "author_email",
    "description": "summary",
    "long_description": "description",
    "url": "home_page",
    "license": "license",
    "keywords": "keywords",
    "classifiers": "classifiers",
    "maintainer": "maintainer",
    "maintainer_email": "maintainer_email",
    "install_requires": "requires",
    "setup_requires": "setup_requires",
    "cmdclass": "cmdclass",
}
"""setup() keyword -> normalised metadata key."""

_SETUP_MODULES = frozenset({"setuptools", "distutils.core"})
_MAX_DEPTH = 8
_PY2_SETUP = re.compile(r"(?<![\w.])(?:setuptools\.|core\.)?setup\s*\(")
_PY2_KEYWORD = re.compile(
    r"(?<![\w.])(" + "|".join(sorted(SETUP_KEYS)) + r")\s*=\s*[uUbBrR]{0,2}(['\"])(.*?)(?<!\\)\2"
)
_Value = str | list[str]
_Assignments = dict[str, list[tuple[int, ast.expr]]]


def setup_py_fields(path: str, text: str) -> tuple[MetadataField, ...]:
    """Metadata declared by every ``setup(...)`` call in a setup.py.

    Args:
        path: member path of the setup.py (recorded in each field).
        text: its decoded source.

    Returns:
        One field per recognised keyword, in source order.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _regex_fields(path, text)
    aliases = _setup_aliases(tree)
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _is_setup(node.func, aliases)
    ]
    reader = _Reader(text, _module_assignments(tree))
    fields: list[MetadataField] = []
    for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
        for keyword in call.keywords:
            fields.extend(reader.keyword_fields(path, keyword, call.lineno))
    return tuple(fields)


def _setup_aliases(tree: ast.Module) -> frozenset[str]:
    names = {"setup"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in _SETUP_MODULES:
            names.update(a.asname for a in node.names if a.name == "setup" and a.asname)
    return frozenset(names)


def _is_setup(func: ast.expr, aliases: frozenset[str]) -> bool:
    if isinstance(func, ast.Name):
        return func.id in aliases
    return isinstance(func, ast.Attribute) and func.attr == "setup"


def _module_assignments(tree: ast.Module) -> _Assignments:
    """``name = value`` at module level (inside if/try/with too, never in def/class)."""
    found: _Assignments = {}
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append((node.lineno, node.value))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            found.setdefault(node.target.id, []).append((node.lineno, node.value))
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for attr in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, attr, ()))
    for entries in found.values():
        entries.sort(key=lambda entry: entry[0])
    return found


class _Reader:
    """Resolves keyword values against one module's assignments."""

    def __init__(self, text: str, assignments: _Assignments) -> None:
        self.text = text
        self.assignments = assignments

    def keyword_fields(
        self, path: str, keyword: ast.keyword, call_line: int
    ) -> list[MetadataField]:
        if keyword.arg is not None:
            key = SETUP_KEYS.get(keyword.arg)
            if key is None:
                return []
            value = self.render(keyword.value, call_line)
            return [MetadataField(key, value, path, keyword.lineno, keyword.end_lineno)]
        return self._expanded(path, keyword.value, call_line)

    def _expanded(self, path: str, node: ast.expr, call_line: int) -> list[MetadataField]:
        """``setup(**args)`` where ``args`` is a dict literal or ``dict(...)`` call."""
        if isinstance(node, ast.Name):
            node = self._lookup(node.id, call_line) or node
        fields: list[MetadataField] = []
        if isinstance(node, ast.Dict):
            for key_node, value in zip(node.keys, node.values, strict=True):
                if isinstance(key_node, ast.Constant) and key_node.value in SETUP_KEYS:
                    text = self.render(value, value.lineno)
                    key = SETUP_KEYS[key_node.value]
                    fields.append(MetadataField(key, text, path, key_node.lineno, value.end_lineno))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
        ):
            for keyword in node.keywords:
                fields.extend(self.keyword_fields(path, keyword, node.lineno))
        return fields

    def _lookup(self, name: str, before: int) -> ast.expr | None:
        entries = self.assignments.get(name, [])
        earlier = [value for line, value in entries if line < before]
        return earlier[-1] if earlier else None

    def render(self, node: ast.expr, before: int) -> str:
        """The value as text: resolved when static, else the expression's source."""
        value = self._resolve(node, before, 0)
        if isinstance(value, list):
            return "\n".join(value)
        if value is not None:
            return value
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def _resolve(self, node: ast.expr, before: int, depth: int) -> _Value | None:
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, ast.Constant):
            return "" if node.value is None else str(node.value)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items: list[str] = []
            for element in node.elts:
                value = self._resolve(element, before, depth + 1)
                if value is None:
                    return None
                items.extend(value if isinstance(value, list) else [value])
            return items
        if isinstance(node, ast.Name):
            target = self._lookup(node.id, before)
            line = getattr(target, "lineno", before)
            return None if target is None else self._resolve(target, line, depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self._resolve(node.left, before, depth + 1)
            right = self._resolve(node.right, before, depth + 1)
            if isinstance(left, str) and isinstance(right, str):
                return left + right
            if isinstance(left, list) and isinstance(right, list):
                return left + right
            return None
        if isinstance(node, ast.JoinedStr):
            return self._joined(node, before, depth)
        return None

    def _joined(self, node: ast.JoinedStr, before: int, depth: int) -> str | None:
        parts: list[str] = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
                continue
            if (
                not isinstance(part, ast.FormattedValue)
                or part.conversion != -1
                or part.format_spec
            ):
                return None
            value = self._resolve(part.value, before, depth + 1)
            if not isinstance(value, str):
                return None
            parts.append(value)
        return "".join(parts)


def _regex_fields(path: str, text: str) -> tuple[MetadataField, ...]:
    """Fallback for setup.py that does not parse (Python 2): ``key='value'`` after setup(."""
    start = _PY2_SETUP.search(text)
    if start is None:
        return ()
    first_line = text.count("\n", 0, start.start()) + 1
    fields = []
    lines = text[start.start() :].splitlines()
    for offset, line in enumerate(lines):
        for match in _PY2_KEYWORD.finditer(line):
            lineno = first_line + offset
            key = SETUP_KEYS[match.group(1)]
            fields.append(MetadataField(key, match.group(3), path, lineno, lineno))
    return tuple(fields)
