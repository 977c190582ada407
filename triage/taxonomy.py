"""The indicator taxonomy (kb/taxonomy.yaml), validated at the boundary.

The YAML is parsed with a loader that rejects duplicate keys, checked with strict pydantic
models, then converted into frozen dataclasses that the rest of triage uses. Every problem
raises :class:`triage.errors.TaxonomyError` with a message naming the file and the entry.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError, field_validator

from triage.errors import TaxonomyError

CORE_COUNT = 47
"""Indicators in the paper's taxonomy (those not marked ``extension``)."""
TYPE_COUNT = 7
"""Indicator types in the paper's taxonomy."""
SEVERITIES = ("low", "medium", "high", "critical")
"""Allowed severities, lowest first."""
TAXONOMY_FILE = "taxonomy.yaml"

_INDICATOR_ID = re.compile(r"^(code|metadata)_[a-z0-9]+(_[a-z0-9]+)*$")
_TYPE_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_ATTACK_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_CWE_ID = re.compile(r"^CWE-\d+$")
_METADATA_TYPE = "metadata_manipulation"


@dataclass(frozen=True)
class SourceRef:
    """A source the taxonomy was built from."""

    name: str
    """Title or description of the source."""
    reference: str
    """Where to find it (arXiv ID, repository)."""
    used_for: str
    """What we took from it."""


@dataclass(frozen=True)
class TypeDef:
    """One of the seven indicator types."""

    id: str
    """snake_case ID, e.g. ``execution_stage``."""
    name: str
    """Display name, e.g. ``Execution Stage``."""
    description: str
    """One or two sentences."""
    order: int
    """Position 1..7 in the paper's order."""


@dataclass(frozen=True)
class IndicatorDef:
    """One indicator: a statement-level behaviour a finding can be labelled with."""

    id: str
    """snake_case ID starting with ``code_`` or ``metadata_``."""
    type: str
    """ID of its type."""
    type_name: str
    """Display name of its type."""
    name: str
    """Short human title."""
    definition: str
    """What the behaviour is and which statement carries the label."""
    benign_contrast: str
    """What separates it from benign use."""
    attack: tuple[str, ...]
    """MITRE ATT&CK technique IDs."""
    cwe: str
    """CWE ID, e.g. ``CWE-506``."""
    severity: str
    """low, medium, high or critical."""
    extension: bool
    """True for indicators beyond the paper's 47."""
    observed: bool
    """True for IDs used verbatim in the public annotations."""


@dataclass(frozen=True)
class Taxonomy:
    """The validated taxonomy: types in order, indicators in file order."""

    version: str
    types: tuple[TypeDef, ...]
    indicators: tuple[IndicatorDef, ...]
    sources: tuple[SourceRef, ...] = ()

    def get(self, indicator_id: str) -> IndicatorDef:
        """Return the indicator with this ID.

        Raises:
            KeyError: the ID is not in the taxonomy.
        """
        for ind in self.indicators:
            if ind.id == indicator_id:
                return ind
        raise KeyError(f"unknown indicator ID {indicator_id!r} (not in taxonomy {self.version})")

    def __contains__(self, indicator_id: object) -> bool:
        return any(ind.id == indicator_id for ind in self.indicators)

    def core(self) -> tuple[IndicatorDef, ...]:
        """The paper's indicators (not extensions), in file order."""
        return tuple(ind for ind in self.indicators if not ind.extension)

    def type_of(self, indicator_id: str) -> TypeDef:
        """Return the type an indicator belongs to.

        Raises:
            KeyError: the ID is not in the taxonomy.
        """
        type_id = self.get(indicator_id).type
        return next(t for t in self.types if t.id == type_id)


# --------------------------------------------------------------------------- YAML schema


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SourceIn(_Model):
    name: str
    reference: str
    used_for: str


class _TypeIn(_Model):
    id: str
    name: str
    description: str
    order: StrictInt

    @field_validator("id")
    @classmethod
    def _snake(cls, v: str) -> str:
        if not _TYPE_ID.match(v):
            raise ValueError(f"type ID {v!r} is not snake_case")
        return v


class _IndicatorIn(_Model):
    id: str
    type: str
    name: str
    definition: str
    benign_contrast: str
    attack: list[str]
    cwe: str
    severity: str
    extension: StrictBool
    observed: StrictBool

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not _INDICATOR_ID.match(v):
            raise ValueError(
                f"indicator ID {v!r} must be snake_case and start with code_ or metadata_"
            )
        return v

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: str) -> str:
        if v not in SEVERITIES:
            raise ValueError(f"invalid severity {v!r}; expected one of {', '.join(SEVERITIES)}")
        return v

    @field_validator("attack")
    @classmethod
    def _attack(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not _ATTACK_ID.match(t)]
        if bad:
            raise ValueError(f"invalid ATT&CK technique ID(s) {bad}; expected e.g. T1059.006")
        if not v:
            raise ValueError("attack must list at least one ATT&CK technique ID")
        return v

    @field_validator("cwe")
    @classmethod
    def _cwe(cls, v: str) -> str:
        if not _CWE_ID.match(v):
            raise ValueError(f"invalid CWE ID {v!r}; expected e.g. CWE-506")
        return v


class _TaxonomyIn(_Model):
    version: str
    sources: list[_SourceIn]
    types: list[_TypeIn]
    indicators: list[_IndicatorIn]


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def kb_dir() -> Path:
    """Return the kb/ data directory.

    From a source checkout or editable install this is the top-level ``kb/`` beside the
    ``triage`` package; when installed it is the package data ``triage._kb``.

    Raises:
        TaxonomyError: neither location holds ``taxonomy.yaml``.
    """
    repo_kb = Path(__file__).resolve().parent.parent / "kb"
    if (repo_kb / TAXONOMY_FILE).is_file():
        return repo_kb
    try:
        # joinpath on the file, then .parent: for a namespace package files() returns a
        # MultiplexedPath whose str() is not a path, but its children are real Paths.
        marker = resources.files("triage._kb").joinpath(TAXONOMY_FILE)
    except ModuleNotFoundError as exc:
        raise TaxonomyError(f"kb/ not found: no {repo_kb} and no package triage._kb") from exc
    path = Path(str(marker))
    if not path.is_file():
        raise TaxonomyError(f"kb/ not found: no {repo_kb} and no {TAXONOMY_FILE} in triage._kb")
    return path.parent


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Load and validate a taxonomy file.

    Args:
        path: a taxonomy YAML file; default ``kb_dir() / "taxonomy.yaml"`` (cached).

    Returns:
        The validated taxonomy.

    Raises:
        TaxonomyError: the file is missing, not YAML, or breaks the schema or design rules.
    """
    if path is None:
        return _load_default()
    return _load(Path(path))


@functools.lru_cache(maxsize=1)
def _load_default() -> Taxonomy:
    return _load(kb_dir() / TAXONOMY_FILE)


def _load(path: Path) -> Taxonomy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy: {exc}") from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TaxonomyError(f"{path}: top level must be a mapping")
    try:
        parsed = _TaxonomyIn.model_validate(raw)
    except ValidationError as exc:
        raise TaxonomyError(f"{path}: {_describe(exc, raw)}") from exc
    problem = _design_problem(parsed)
    if problem:
        raise TaxonomyError(f"{path}: {problem}")
    return _convert(parsed)


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    """Turn pydantic errors into one readable clause per problem, naming the entry."""
    clauses = []
    for err in exc.errors():
        where, rest = _where(err["loc"], raw)
        key = rest.rpartition(".")[2]
        if err["type"] == "extra_forbidden":
            clauses.append(f"unknown key {key!r} in {where}")
        elif err["type"] == "missing":
            clauses.append(f"missing key {key!r} in {where}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            clauses.append(f"{where}: {rest}: {msg}" if rest else f"{where}: {msg}")
    return "; ".join(clauses)


def _where(loc: tuple[int | str, ...], raw: dict[str, Any]) -> tuple[str, str]:
    """Split an error location into the entry (``indicators[3] (code_x)``) and the rest."""
    if len(loc) < 2 or not isinstance(loc[1], int):
        return "top level", ".".join(str(part) for part in loc)
    section, index = str(loc[0]), loc[1]
    label = f"{section}[{index}]"
    entries = raw.get(section)
    if isinstance(entries, list) and index < len(entries) and isinstance(entries[index], dict):
        entry_id = entries[index].get("id")
        if entry_id is not None:
            label += f" ({entry_id})"
    return label, ".".join(str(part) for part in loc[2:])


def _design_problem(tax: _TaxonomyIn) -> str | None:
    """Check cross-entry rules; return a message for the first problem found, else None."""
    type_ids = [t.id for t in tax.types]
    dup_types = sorted({t for t in type_ids if type_ids.count(t) > 1})
    if dup_types:
        return f"duplicate type ID(s): {', '.join(dup_types)}"
    if len(type_ids) != TYPE_COUNT:
        return f"expected exactly {TYPE_COUNT} types, found {len(type_ids)}"
    orders = sorted(t.order for t in tax.types)
    if orders != list(range(1, TYPE_COUNT + 1)):
        return f"type orders must be 1..{TYPE_COUNT} once each, found {orders}"
    ids = [i.id for i in tax.indicators]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        return f"duplicate indicator ID(s): {', '.join(dups)}"
    for ind in tax.indicators:
        if ind.type not in type_ids:
            return f"indicator {ind.id} has unknown type {ind.type!r}"
        if ind.id.startswith("metadata_") != (ind.type == _METADATA_TYPE):
            return f"indicator {ind.id}: metadata_ IDs belong to {_METADATA_TYPE} and only there"
        if ind.extension and ind.observed:
            return f"indicator {ind.id}: an extension cannot be observed in the annotations"
    core = sum(1 for i in tax.indicators if not i.extension)
    if core != CORE_COUNT:
        return f"expected exactly {CORE_COUNT} core (non-extension) indicators, found {core}"
    return None


def _convert(tax: _TaxonomyIn) -> Taxonomy:
    types = tuple(
        TypeDef(id=t.id, name=t.name, description=t.description, order=t.order)
        for t in sorted(tax.types, key=lambda t: t.order)
    )
    names = {t.id: t.name for t in types}
    indicators = tuple(
        IndicatorDef(
            id=i.id,
            type=i.type,
            type_name=names[i.type],
            name=i.name,
            definition=i.definition,
            benign_contrast=i.benign_contrast,
            attack=tuple(i.attack),
            cwe=i.cwe,
            severity=i.severity,
            extension=i.extension,
            observed=i.observed,
        )
        for i in tax.indicators
    )
    sources = tuple(
        SourceRef(name=s.name, reference=s.reference, used_for=s.used_for) for s in tax.sources
    )
    return Taxonomy(version=tax.version, types=types, indicators=indicators, sources=sources)
