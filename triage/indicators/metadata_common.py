"""Shared plumbing of the metadata detectors: setup() keyword fields as statements.

Limit: findings must point at indexed statements, so only metadata declared through
``setup(...)`` keywords in a setup.py is signalled (on the keyword's own lines, plus the
module-level ``NAME = '...'`` assignment when the keyword's value is a module-level name).
Values declared only in PKG-INFO, METADATA, setup.cfg or pyproject.toml are not Python
statements and are skipped, so a wheel-only artifact gets no metadata findings.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from triage.indicators.base import FileContext, PackageContext
from triage.indicators.hosts import defang
from triage.indicators.network_flow import is_test_path
from triage.model import FileKind, MetadataField, Signal, Statement

MAX_BEHAVIOUR_STATEMENTS = 4000
"""Packages larger than this are not re-scanned for behaviour by the metadata detectors."""


_KEYWORDS = {"summary": "description", "description": "long_description",
             "requires": "install_requires", "home_page": "url"}


@dataclass(frozen=True)
class SetupField:
    """A setup() keyword with the statement that holds it."""

    field: MetadataField
    file: FileContext
    statement: Statement

    @property
    def keyword(self) -> str:
        """The setup() keyword as written (``description`` for the summary field...)."""
        return _KEYWORDS.get(self.field.key, self.field.key)

    @property
    def lines(self) -> tuple[int, int]:
        """The keyword's own line span."""
        line = self.field.line or self.statement.start_line
        return line, self.field.end_line or line


def setup_fields(pkg: PackageContext, *keys: str) -> list[SetupField]:
    """setup.py keyword fields with any of ``keys`` that map to an indexed statement."""
    out: list[SetupField] = []
    for f in pkg.metadata.fields:
        if f.key not in keys or not f.file or f.line is None or \
                not f.file.rsplit("/", 1)[-1] == "setup.py":
            continue
        fc = pkg.file(f.file)
        st = fc.index.at_line(f.line) if fc is not None else None
        if fc is not None and st is not None:
            out.append(SetupField(f, fc, st))
    return out


def keyword_value(sf: SetupField) -> ast.expr | None:
    """The AST of the keyword's value, when the setup.py statement parsed."""
    node = sf.file.index.node_of(sf.statement.id)
    for sub in ast.walk(node) if node is not None else ():
        if isinstance(sub, ast.keyword) and getattr(sub, "lineno", None) == sf.field.line:
            return sub.value
    return None


def _feeding_assignment(sf: SetupField) -> Statement | None:
    """The module-level ``NAME = ...`` statement whose name the keyword's value is."""
    value = keyword_value(sf)
    if not isinstance(value, ast.Name):
        return None
    name = value.id
    best: Statement | None = None
    for st, n in sf.file.statements():
        if st.scope != "<module>" or st.start_line >= sf.statement.start_line:
            continue
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                             for t in n.targets):
            best = st
    return best


def emit(indicator: str, sf: SetupField, evidence: str, confidence: float, detector: str,
         lines: tuple[int, int] | None = None) -> Iterator[Signal]:
    """Signal on the keyword lines, and on the module-level assignment feeding it."""
    conf = round(max(0.05, min(0.95, confidence)), 2)
    text = defang(evidence)
    yield sf.file.signal(indicator, sf.statement, text, confidence=conf, detector=detector,
                         lines=lines or sf.lines)
    feed = _feeding_assignment(sf)
    if feed is not None:
        yield sf.file.signal(indicator, feed, text, confidence=conf, detector=detector)


def code_statements(pkg: PackageContext) -> int:
    """Statements of the package's own modules (not setup.py, tests or decoded payloads)."""
    total = 0
    for fc in pkg.files:
        path = fc.source.path
        if fc.source.kind is not FileKind.PYTHON or path.rsplit("/", 1)[-1] == "setup.py" \
                or is_test_path(path):
            continue
        total += len(fc.index.statements)
    return total


_BEHAVIOUR: list[tuple[object, tuple[float, str]]] = []


def behaviour(pkg: PackageContext) -> tuple[float, str]:
    """(highest confidence, evidence) of the package's code findings; (0, "") if none.

    Runs the per-file detectors once more on small packages (metadata detectors cannot see
    the other detectors' signals); packages over :data:`MAX_BEHAVIOUR_STATEMENTS`
    statements report (0, "").
    """
    for art, result in _BEHAVIOUR:
        if art is pkg.artifact:
            return result
    from triage.indicators import registry  # late: registry imports this family

    best: tuple[float, str] = (0.0, "")
    if sum(len(fc.index.statements) for fc in pkg.files) <= MAX_BEHAVIOUR_STATEMENTS:
        for fc in pkg.files:
            for det in registry.FILE_DETECTORS:
                try:
                    found = list(det(fc))
                except Exception:  # a failing detector is reported by the engine itself
                    continue
                for s in found:
                    if s.indicator.startswith("code_") and s.confidence > best[0]:
                        best = (s.confidence, s.evidence)
    _BEHAVIOUR.append((pkg.artifact, best))
    del _BEHAVIOUR[:-4]
    return best
