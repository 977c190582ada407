"""The knowledge-base content: labelled examples, the content hash, and the documents to embed.

Pure data handling (no chromadb, no embedding): ``kb/examples/*.yaml`` is validated at the
boundary with pydantic, every example must name an indicator of the taxonomy, and the
content hash of ``kb/taxonomy.yaml`` + ``kb/examples/**`` (+ ``kb/chains.yaml``, the mined attack
workflows, embedded as documents too) decides when the store is stale.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from triage.errors import TaxonomyError
from triage.taxonomy import TAXONOMY_FILE, IndicatorDef, Taxonomy
from triage.workflows import CHAINS_FILE, Workflow, workflow_text

EXAMPLES_DIR = "examples"
_EXAMPLE_ID = re.compile(r"^[a-z0-9_]+\.[a-z0-9_-]+$")
_LIVE_URL = re.compile(r"\bhttps?://(?![\w.-]*example\.invalid\b)[\w.-]+", re.I)


@dataclass(frozen=True)
class Example:
    """A labelled snippet: a malicious pattern, or a benign look-alike of one indicator."""

    id: str
    """Unique ID, ``<indicator>.<suffix>`` by convention (``code_remove_file.m1``)."""
    indicator: str
    """Taxonomy ID the example illustrates."""
    label: Literal["malicious", "benign"]
    """malicious: shows the indicator; benign: looks similar but is not it."""
    code: str
    """The snippet (inert: defanged URLs, example.invalid hosts, fake payloads)."""
    why: str
    """Why it is (or is not) the indicator."""
    file: str
    """The YAML file it came from, relative to kb/."""


@dataclass(frozen=True)
class KbDocument:
    """One unit stored and searched in the vector store."""

    id: str
    """``ind:<indicator>`` for definitions, ``ex:<example id>`` for examples, ``wf:<workflow
    id>`` for known attack workflows (kb/chains.yaml)."""
    kind: Literal["indicator", "example", "workflow"]
    indicator: str
    """Taxonomy ID this document belongs to (a workflow's first step)."""
    label: str
    """``definition``, ``malicious``, ``benign`` or ``workflow``."""
    dense_text: str
    """Text given to the dense (sentence) embedder."""
    lexical_text: str
    """Text given to the lexical (code feature) embedder."""


class _ExampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    indicator: str
    label: Literal["malicious", "benign"]
    code: str
    why: str

    @field_validator("id")
    @classmethod
    def _id_form(cls, v: str) -> str:
        if not _EXAMPLE_ID.match(v):
            raise ValueError(f"example ID {v!r} must look like <indicator>.<suffix>")
        return v

    @field_validator("code", "why")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("code")
    @classmethod
    def _inert(cls, v: str) -> str:
        live = _LIVE_URL.search(v)
        if live:
            raise ValueError(f"live URL {live.group(0)!r}: defang it or use example.invalid")
        return v


class _ExampleFileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    examples: list[_ExampleIn]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    dup = sorted({str(k) for k in keys if keys.count(k) > 1})
    if dup:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate key(s) {dup}",
                                                node.start_mark)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def example_files(kb: Path) -> tuple[Path, ...]:
    """The example YAML files under ``kb/examples/``, sorted (recursive)."""
    root = kb / EXAMPLES_DIR
    if not root.is_dir():
        return ()
    return tuple(sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")
                        and p.is_file()))


def load_examples(kb: Path, taxonomy: Taxonomy) -> tuple[Example, ...]:
    """Load and validate every example under ``kb/examples/``.

    Raises:
        TaxonomyError: a file is not valid YAML, breaks the schema, repeats an ID or names an
            indicator that is not in the taxonomy.
    """
    out: list[Example] = []
    seen: dict[str, str] = {}
    for path in example_files(kb):
        rel = path.relative_to(kb).as_posix()
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
            parsed = _ExampleFileIn.model_validate(raw)
        except (OSError, yaml.YAMLError) as exc:
            raise TaxonomyError(f"{rel}: cannot read examples: {exc}") from exc
        except ValidationError as exc:
            raise TaxonomyError(f"{rel}: {_describe(exc, raw)}") from exc
        for ex in parsed.examples:
            if ex.id in seen:
                raise TaxonomyError(f"{rel}: duplicate example ID {ex.id} (also in {seen[ex.id]})")
            if ex.indicator not in taxonomy:
                raise TaxonomyError(f"{rel}: example {ex.id} names unknown indicator "
                                    f"{ex.indicator!r}")
            seen[ex.id] = rel
            out.append(Example(id=ex.id, indicator=ex.indicator, label=ex.label,
                               code=ex.code.rstrip("\n"), why=" ".join(ex.why.split()),
                               file=rel))
    return tuple(out)


def _describe(exc: ValidationError, raw: Any) -> str:
    clauses = []
    for err in exc.errors():
        loc = err["loc"]
        where = "top level"
        if len(loc) >= 2 and loc[0] == "examples" and isinstance(loc[1], int):
            where = f"examples[{loc[1]}]"
            entries = raw.get("examples") if isinstance(raw, dict) else None
            if isinstance(entries, list) and loc[1] < len(entries) \
                    and isinstance(entries[loc[1]], dict) and "id" in entries[loc[1]]:
                where += f" ({entries[loc[1]]['id']})"
        field = ".".join(str(p) for p in loc[2:]) or ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            clauses.append(f"{where}: unknown key {field!r}")
        elif err["type"] == "missing":
            clauses.append(f"{where}: missing key {field!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            clauses.append(f"{where}: {field}: {msg}")
    return "; ".join(clauses)


def kb_files(kb: Path) -> tuple[Path, ...]:
    """The kb/ files the store is built from: taxonomy, examples, and chains.yaml if any."""
    chains = kb / CHAINS_FILE
    return (kb / TAXONOMY_FILE, *example_files(kb), *((chains,) if chains.is_file() else ()))


def kb_hash(kb: Path) -> str:
    """sha256 over ``taxonomy.yaml``, every example file and ``chains.yaml`` (path and bytes)."""
    h = hashlib.sha256()
    for path in kb_files(kb):
        data = path.read_bytes() if path.is_file() else b"<missing>"
        h.update(path.relative_to(kb).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


def indicator_text(ind: IndicatorDef) -> str:
    """What an indicator definition contributes to search: its name, type and definition."""
    return f"{ind.name} ({ind.type_name}). {ind.definition}"


def documents(taxonomy: Taxonomy, examples: tuple[Example, ...],
              workflows: tuple[Workflow, ...] = ()) -> tuple[KbDocument, ...]:
    """Every document of the store: one per indicator definition, example and workflow."""
    docs = [KbDocument(id=f"ind:{ind.id}", kind="indicator", indicator=ind.id,
                       label="definition", dense_text=indicator_text(ind),
                       lexical_text=indicator_text(ind))
            for ind in taxonomy.indicators]
    docs += [KbDocument(id=f"ex:{ex.id}", kind="example", indicator=ex.indicator,
                        label=ex.label, dense_text=ex.code, lexical_text=ex.code)
             for ex in examples]
    names = {ind.id: ind.name for ind in taxonomy.indicators}
    docs += [KbDocument(id=f"wf:{w.id}", kind="workflow", indicator=w.pattern[0],
                        label="workflow", dense_text=workflow_text(w, names),
                        lexical_text=" ".join(w.pattern))
             for w in workflows]
    return tuple(docs)
