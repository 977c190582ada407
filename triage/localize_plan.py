"""What the LLM reads: parts of files, their prompts and token counts, within the budget.

Shared by the real pass and ``--dry-run`` (which prints the same plan's tokens and estimated
cost without calling anything). Everything the model does not read is listed with the reason
(binary, not Python, vendored, over budget, larger than the context), so a report always says
what was and was not reviewed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from triage.budget import (
    Candidate,
    Counter,
    Segment,
    messages_tokens,
    select,
    split_file,
    suspicion,
    vendored,
)
from triage.model import Artifact, FileKind, Signal, SkippedFile
from triage.prompting import (
    ChunkData,
    Hint,
    Retrieved,
    display_lines,
    localize_prompt,
    messages,
    review_prompt,
    system_prompt,
)
from triage.statements import FileIndex, module_phase
from triage.taxonomy import Taxonomy

DEFAULT_CONTEXT = 8192
PROMPT_OVERHEAD = 3000
"""Tokens kept for the system prompt, retrieved definitions and the schema around the code."""

Retriever = Callable[[str, Sequence[str], int], tuple[Retrieved, ...]]


@dataclass(frozen=True)
class PlanSettings:
    """Budget knobs."""

    max_tokens_per_package: int = 60_000
    """Prompt tokens of every call for one package (review pass included)."""
    chunk_tokens: int = 6_000
    """Most code tokens shown in one prompt; bigger files are split."""
    context_tokens: int = 0
    """The model's context (0: :data:`DEFAULT_CONTEXT`); the LLM pass fills it from litellm."""
    max_output_tokens: int = 2048
    review: bool = True
    est_answer_tokens: int = 400
    """Assumed answer size for estimates (answers are short JSON)."""
    retrieval_k: int = 6
    max_hints: int = 40


@dataclass(frozen=True)
class Part:
    """One prompt's worth of one file."""

    segment: Segment
    chunk: ChunkData
    messages: tuple[dict[str, str], ...]
    prompt_tokens: int
    total_tokens: int
    suspicion: float

    @property
    def lines(self) -> str:
        """``lines a-b: `` for a file split in parts, else ``""``."""
        s = self.segment
        return f"lines {s.start_line}-{s.end_line}: " if s.parts > 1 else ""

    @property
    def where(self) -> str:
        """``file`` or ``file lines a-b``."""
        s = self.segment
        return f"{s.file} lines {s.start_line}-{s.end_line}" if s.parts > 1 else s.file


@dataclass(frozen=True)
class Plan:
    """The parts to send, in file order, and what is left out."""

    parts: tuple[Part, ...]
    not_reviewed: tuple[SkippedFile, ...]
    notes: tuple[str, ...] = ()
    budget: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of every planned call."""
        return sum(p.total_tokens for p in self.parts)


def definitions_retriever(taxonomy: Taxonomy) -> Retriever:
    """Fallback retrieval: the definitions of the signalled indicators, no examples."""
    def search(text: str, signals: Sequence[str], k: int) -> tuple[Retrieved, ...]:
        return tuple(Retrieved(taxonomy.get(s)) for s in dict.fromkeys(signals) if s in taxonomy)
    return search


class KbRetriever:
    """The Chroma knowledge base; falls back to definitions (with a note) when unavailable."""

    def __init__(self, taxonomy: Taxonomy, kb: Any = None) -> None:
        self.taxonomy = taxonomy
        self.kb = kb
        self.note = ""

    def __call__(self, text: str, signals: Sequence[str], k: int) -> tuple[Retrieved, ...]:
        if not self.note:
            try:
                if self.kb is None:
                    from triage.retrieval import KnowledgeBase

                    self.kb = KnowledgeBase()
                res = self.kb.search(text, [s for s in signals if s in self.taxonomy], k=k,
                                     per_indicator=1)
                return tuple(Retrieved(h.indicator,
                                       tuple((e.example.code, e.example.why) for e in h.examples),
                                       tuple((e.example.code, e.example.why)
                                             for e in h.contrasts)) for h in res.hits)
            except Exception as exc:  # retrieval is an aid: never lose the review for it
                self.note = (f"knowledge base unavailable ({type(exc).__name__}: {exc}); prompts "
                             "carry the definitions of the signalled indicators only")[:300]
        return definitions_retriever(self.taxonomy)(text, signals, k)


_DEFAULT: dict[int, KbRetriever] = {}


def default_retriever(taxonomy: Taxonomy) -> KbRetriever:
    """One knowledge base per process (it is slow to open)."""
    key = id(taxonomy)
    if key not in _DEFAULT:
        _DEFAULT[key] = KbRetriever(taxonomy)
    return _DEFAULT[key]


def _chunk(artifact: Artifact, index: FileIndex, seg: Segment,
           by_statement: Mapping[str, Sequence[Signal]], max_hints: int) -> ChunkData:
    hints = [Hint(s.statement_id, s.indicator, round(s.confidence, 2), s.evidence)
             for sid in seg.statement_ids for s in by_statement.get(sid, ())]
    context = display_lines(index, 1, len(index.lines), only=seg.context_ids) \
        if seg.context_ids else []
    return ChunkData(
        package=f"{artifact.name} {artifact.version}".strip(), file=seg.file,
        phase=module_phase(index.file).value, origin=index.file.origin or "",
        part=seg.part, parts=seg.parts, start_line=seg.start_line, end_line=seg.end_line,
        total_lines=len(index.lines),
        code=tuple(display_lines(index, seg.start_line, seg.end_line)),
        context=tuple(context), hints=tuple(hints[:max_hints]))


def _query(index: FileIndex, seg: Segment, by_statement: Mapping[str, Sequence[Signal]]) -> str:
    flagged = [index.get(sid).text for sid in seg.statement_ids if by_statement.get(sid)]
    text = "\n".join(flagged) if flagged else "\n".join(
        index.get(sid).text for sid in seg.statement_ids)
    return text[:3000]


def _left_out(left: Sequence[Candidate], chosen: Sequence[Candidate],
              budget: int) -> list[SkippedFile]:
    used = sum(c.total_tokens for c in chosen)
    out: list[SkippedFile] = []
    files_chosen = {c.segment.file for c in chosen}
    by_file: dict[str, list[Candidate]] = {}
    for c in left:
        by_file.setdefault(c.segment.file, []).append(c)
    for path, cands in by_file.items():
        tail = f"{budget - used} of {budget} left"
        if path not in files_chosen and len(cands) == cands[0].segment.parts:
            need = sum(c.total_tokens for c in cands)
            out.append(SkippedFile(path, f"over the per-package token budget ({need} prompt "
                                         f"tokens needed, {tail})"))
            continue
        for c in sorted(cands, key=lambda c: c.segment.start_line):
            s = c.segment
            out.append(SkippedFile(path, f"lines {s.start_line}-{s.end_line}: over the "
                                         f"per-package token budget ({c.total_tokens} prompt "
                                         f"tokens needed, {tail})"))
    return out


def build_plan(artifact: Artifact, result: Any, settings: PlanSettings, taxonomy: Taxonomy,
               count: Counter, retriever: Retriever | None = None) -> Plan:
    """Split, render, count, rank and select the parts of one package.

    Args:
        artifact: the opened artifact.
        result: the static engine's result (indices and signals).
        settings: budget knobs (``context_tokens`` set to the model's context).
        taxonomy: the taxonomy.
        count: token counter of the model.
        retriever: knowledge-base retrieval (default :func:`default_retriever`).
    """
    search = retriever or default_retriever(taxonomy)
    context = settings.context_tokens or DEFAULT_CONTEXT
    limit = max(1, min(settings.chunk_tokens,
                         context - settings.max_output_tokens - PROMPT_OVERHEAD))
    skipped: list[SkippedFile] = [SkippedFile(s.path, s.reason) for s in artifact.skipped]
    skipped += [SkippedFile(s.path, s.reason) for s in result.skipped]
    skipped += [SkippedFile(f.path, "not Python source; the model reviews Python statements "
                            "only") for f in artifact.files if f.kind == FileKind.TEXT]
    by_statement: dict[str, list[Signal]] = {}
    for sig in result.signals:
        by_statement.setdefault(sig.statement_id, []).append(sig)
    system = system_prompt(taxonomy)
    review_extra = count(review_prompt([])) + 4 + settings.est_answer_tokens + 4
    cands: list[Candidate] = []
    parts: dict[tuple[str, int], Part] = {}
    for path, index in result.indices.items():
        if not index.statements:
            continue
        if vendored(path) and not any(by_statement.get(s.id) for s in index.statements):
            skipped.append(SkippedFile(path, "vendored third-party code without static "
                                             "signals; not sent to the model"))
            continue
        for seg in split_file(index, limit, count):
            chunk = _chunk(artifact, index, seg, by_statement, settings.max_hints)
            signals = [s.indicator for sid in seg.statement_ids
                       for s in by_statement.get(sid, ())]
            hits = search(_query(index, seg, by_statement), signals, settings.retrieval_k)
            msgs = messages(system, localize_prompt(chunk, hits))
            tokens = messages_tokens(msgs, count)
            where = f"lines {seg.start_line}-{seg.end_line}: " if seg.parts > 1 else ""
            if tokens + settings.max_output_tokens > context:
                skipped.append(SkippedFile(path, f"{where}prompt of {tokens} tokens does not "
                                                 f"fit the model's context ({context})"))
                continue
            total = tokens + (tokens + review_extra if settings.review else 0)
            part = Part(seg, chunk, msgs, tokens, total,
                        suspicion(seg, index, by_statement, taxonomy))
            parts[(path, seg.start_line)] = part
            cands.append(Candidate(seg, part.suspicion, tokens, total))
    chosen, left = select(cands, settings.max_tokens_per_package)
    skipped += _left_out(left, chosen, settings.max_tokens_per_package)
    order = {p: i for i, p in enumerate(result.indices)}
    picked = sorted((parts[(c.segment.file, c.segment.start_line)] for c in chosen),
                    key=lambda p: (order[p.segment.file], p.segment.start_line))
    note = getattr(search, "note", "")
    return Plan(parts=tuple(picked), not_reviewed=tuple(skipped),
                notes=(note,) if note else (), budget=settings.max_tokens_per_package)
