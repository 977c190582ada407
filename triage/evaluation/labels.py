"""Aliases from the free-text indicator labels of the dev corpus to taxonomy IDs.

The alias file (``kb/aliases.yaml``) is data edited by hand, so it is validated at the
boundary: unknown keys are rejected and every value must look like a taxonomy ID.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from triage.errors import TaxonomyError

DEFAULT_ALIASES_PATH = Path(__file__).resolve().parents[2] / "kb" / "aliases.yaml"
"""``kb/aliases.yaml`` of the source checkout."""

_ID_RE = re.compile(r"^(code|metadata)_[a-z0-9_]+$")


def is_taxonomy_id(text: str) -> bool:
    """True when ``text`` is already a snake_case indicator ID (``code_...``/``metadata_...``)."""
    return bool(_ID_RE.match(text))


class _AliasFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: dict[str, str | list[str]]

    @field_validator("aliases")
    @classmethod
    def _ids_look_valid(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for text, ids in value.items():
            id_list = [ids] if isinstance(ids, str) else ids
            if not id_list:
                raise ValueError(f"alias {text!r} maps to an empty list")
            for one in id_list:
                if not is_taxonomy_id(one):
                    raise ValueError(f"alias {text!r} maps to {one!r}, not a taxonomy ID")
        return value


def parse_aliases(
    text: str, valid_ids: Collection[str] | None = None
) -> Mapping[str, tuple[str, ...]]:
    """Parse and validate alias YAML.

    Args:
        text: YAML of the form ``aliases: {"<free text>": <id or [ids]>}``.
        valid_ids: when given, every target ID must be one of these.

    Returns:
        Read-only mapping from free text to a non-empty tuple of taxonomy IDs.

    Raises:
        TaxonomyError: the YAML is malformed, has unknown keys, or names an invalid ID.
    """
    try:
        raw = yaml.safe_load(text)
        model = _AliasFile.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise TaxonomyError(f"invalid alias file: {exc}") from exc
    out: dict[str, tuple[str, ...]] = {}
    for free_text, ids in model.aliases.items():
        id_tuple = (ids,) if isinstance(ids, str) else tuple(dict.fromkeys(ids))
        if valid_ids is not None:
            unknown = [i for i in id_tuple if i not in valid_ids]
            if unknown:
                raise TaxonomyError(f"alias {free_text!r} maps to unknown IDs {unknown}")
        out[free_text] = id_tuple
    return MappingProxyType(out)


def load_aliases(
    path: Path = DEFAULT_ALIASES_PATH, valid_ids: Collection[str] | None = None
) -> Mapping[str, tuple[str, ...]]:
    """Read and validate an alias file (see :func:`parse_aliases`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TaxonomyError(f"cannot read alias file {path}: {exc}") from exc
    return parse_aliases(text, valid_ids)


def resolve_indicator(raw: str, aliases: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Taxonomy IDs for one raw ``indicator`` value of a label row.

    Raises:
        TaxonomyError: ``raw`` is free text with no alias.
    """
    if is_taxonomy_id(raw):
        return (raw,)
    try:
        return aliases[raw]
    except KeyError:
        raise TaxonomyError(f"no alias for free-text indicator {raw!r}") from None
