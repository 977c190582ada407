"""Prompts for the localization pass, from the jinja2 templates in prompts/.

The only module that imports jinja2 (inside functions). Templates are rendered with
``StrictUndefined`` and reject variables they do not use, so a typo fails loudly. Package
text (code, file names, metadata, static-hint evidence that quotes the package) is passed to
the templates as values between two markers that carry a nonce derived from the data itself,
so the package cannot close the data block; it is never rendered as a template.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from triage.llm_answer import ANSWER_SCHEMA
from triage.statements import FileIndex
from triage.taxonomy import IndicatorDef, Taxonomy

MAX_LINE_CHARS = 400
KEEP_LINE_CHARS = 300
MAX_STATEMENT_LINES = 80
KEEP_STATEMENT_LINES = 60
SYSTEM, LOCALIZE, REVIEW, REPAIR = "system.j2", "localize.j2", "review.j2", "repair.j2"


def prompts_dir() -> Path:
    """prompts/ beside the package (checkout, editable install) or the installed data."""
    repo = Path(__file__).resolve().parent.parent / "prompts"
    if (repo / SYSTEM).is_file():
        return repo
    return Path(str(resources.files("triage._prompts").joinpath(SYSTEM))).parent


@functools.lru_cache(maxsize=4)
def _env(directory: str) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory), undefined=jinja2.StrictUndefined,
        autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


@functools.lru_cache(maxsize=16)
def _declared(directory: str, name: str) -> frozenset[str]:
    import jinja2.meta

    env = _env(directory)
    source = env.loader.get_source(env, name)[0]
    return frozenset(jinja2.meta.find_undeclared_variables(env.parse(source)))


def render(template: str, directory: Path | None = None, /, **values: Any) -> str:
    """Render one template.

    Raises:
        ValueError: a value the template does not use was passed.
        jinja2.UndefinedError: the template uses a value that was not passed.
    """
    where = str(directory or prompts_dir())
    unknown = set(values) - _declared(where, template)
    if unknown:
        raise ValueError(f"template {template} does not use: {', '.join(sorted(unknown))}")
    return str(_env(where).get_template(template).render(**values))


# ---------------------------------------------------------------- package data


def _short(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    return f"{text[:KEEP_LINE_CHARS]}…[+{len(text) - KEEP_LINE_CHARS} chars]"


def display_lines(index: FileIndex, start: int, end: int,
                  only: Iterable[str] | None = None) -> list[str]:
    """Source lines ``start..end`` numbered, each statement's first line tagged with its ID.

    A line reads ``<line> [<line>:<ordinal>] | <code>`` where a statement starts, else
    ``<line> | <code>``; blank lines are left out, lines over 400 characters and statements
    over 80 lines are shortened with a ``…[+N chars]`` / ``…[+N lines]`` marker.

    Args:
        index: the file's statement index.
        start: first line (1-based).
        end: last line (inclusive).
        only: show just these statements' spans (context lines), not every line.
    """
    return [text for _, text in numbered_display(index, start, end, only)]


def numbered_display(index: FileIndex, start: int, end: int,
                     only: Iterable[str] | None = None) -> list[tuple[int, str]]:
    """:func:`display_lines` with the source line number of each displayed line."""
    starts: dict[int, list[str]] = {}
    hidden: set[int] = set()
    for st in index.statements:
        if start <= st.start_line <= end:
            starts.setdefault(st.start_line, []).append(":".join(st.id.rsplit(":", 2)[1:]))
            if st.end_line - st.start_line + 1 > MAX_STATEMENT_LINES:
                hidden.update(range(st.start_line + KEEP_STATEMENT_LINES, st.end_line + 1))
    wanted: set[int] | None = None
    if only is not None:
        wanted = set()
        for sid in only:
            st = index.get(sid)
            last = min(st.end_line, st.start_line + KEEP_STATEMENT_LINES - 1)
            wanted.update(range(st.start_line, last + 1))
    out: list[tuple[int, str]] = []
    skipped = 0
    for no in range(start, min(end, len(index.lines)) + 1):
        if wanted is not None and no not in wanted:
            continue
        if no in hidden and no not in starts:
            skipped += 1
            continue
        if skipped:
            out.append((no - 1, f"…[+{skipped} lines]"))
            skipped = 0
        text = index.lines[no - 1]
        ids = starts.get(no)
        if not text.strip() and not ids:
            continue
        out.append((no, f"{no} [{','.join(ids)}] | {_short(text)}" if ids else
                    f"{no} | {_short(text)}"))
    if skipped:
        out.append((min(end, len(index.lines)), f"…[+{skipped} lines]"))
    return out


@dataclass(frozen=True)
class Hint:
    """A static signal shown to the model as a hint."""

    statement_id: str
    indicator: str
    confidence: float
    evidence: str


@dataclass(frozen=True)
class ChunkData:
    """Everything from the package that one localization prompt shows (untrusted)."""

    package: str
    file: str
    phase: str
    """Phase of the file's module-level code."""
    origin: str
    """For decoded payloads: the statement that held it, else ``""``."""
    part: int
    parts: int
    start_line: int
    end_line: int
    total_lines: int
    code: tuple[str, ...]
    context: tuple[str, ...] = ()
    hints: tuple[Hint, ...] = ()

    @property
    def marker(self) -> str:
        """Nonce for the data delimiters: a hash of the data, so the data cannot contain it."""
        blob = json.dumps([self.package, self.file, self.code, self.context,
                           [h.__dict__ for h in self.hints]], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _indicator(ind: IndicatorDef) -> dict[str, Any]:
    return {"id": ind.id, "name": ind.name, "type": ind.type_name, "severity": ind.severity,
            "definition": " ".join(ind.definition.split()),
            "benign_contrast": " ".join(ind.benign_contrast.split()),
            "examples": [], "contrasts": []}


@dataclass(frozen=True)
class Retrieved:
    """One indicator retrieved for a chunk, with examples (from kb/, trusted)."""

    indicator: IndicatorDef
    examples: tuple[tuple[str, str], ...] = ()
    """(code, why) of malicious examples."""
    contrasts: tuple[tuple[str, str], ...] = ()
    """(code, why) of benign look-alikes."""


def system_prompt(taxonomy: Taxonomy) -> str:
    """The system message: role, rules and every indicator ID."""
    return render(SYSTEM, indicators=[{"id": i.id, "name": i.name, "type": i.type_name}
                                      for i in taxonomy.indicators])


def localize_prompt(chunk: ChunkData, retrieved: Sequence[Retrieved]) -> str:
    """The user message asking for citations in one chunk."""
    hits = []
    for r in retrieved:
        d = _indicator(r.indicator)
        d["examples"] = [{"code": c, "why": w} for c, w in r.examples]
        d["contrasts"] = [{"code": c, "why": w} for c, w in r.contrasts]
        hits.append(d)
    return render(LOCALIZE, chunk=chunk, marker=chunk.marker, hits=hits,
                  schema=json.dumps(ANSWER_SCHEMA, separators=(",", ":")))


def review_prompt(problems: Sequence[str]) -> str:
    """The follow-up asking the model to re-check its own answer (self-refinement)."""
    return render(REVIEW, problems=list(problems))


def repair_prompt(error: str) -> str:
    """The follow-up after an unusable answer."""
    return render(REPAIR, error=error)


def messages(system: str, user: str,
             history: Sequence[Mapping[str, str]] = ()) -> tuple[dict[str, str], ...]:
    """Chat messages: system, user, then any follow-up turns."""
    return ({"role": "system", "content": system}, {"role": "user", "content": user},
            *({"role": m["role"], "content": m["content"]} for m in history))
