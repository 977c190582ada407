"""Ranking of indicators from per-document similarities (pure; no chromadb, no embedding).

The store returns, for a query, the cosine similarity of every document in each embedding
space. This module fuses the spaces (hybrid dense + lexical), aggregates documents to their
indicator, applies the static signals and returns frozen hits for the prompt builder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from triage.retrieval_kb import Example, KbDocument
from triage.taxonomy import IndicatorDef, Taxonomy

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class RankOptions:
    """How similarities become an indicator ranking (defaults chosen in eval/RETRIEVAL.md)."""

    mode: Mode = "hybrid"
    """Which embedding spaces to use."""
    dense_weight: float = 0.3
    """Hybrid only: weight of the dense similarity (the lexical one gets 1 - this)."""
    definition_weight: float = 0.8
    """Multiplier on the similarity of an indicator's definition text."""
    benign_weight: float = 0.6
    """Multiplier on the similarity of benign look-alike examples (they share vocabulary
    with the indicator but are evidence against it)."""
    signal_boost: float = 0.25
    """Added to indicators that static detectors already raised for the statement."""
    use_examples: bool = True
    """False ranks by definitions alone (baseline)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown retrieval mode {self.mode!r}; expected one of {MODES}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be within 0..1")


@dataclass(frozen=True)
class ExampleHit:
    """A labelled example close to the query."""

    example: Example
    score: float
    """Fused similarity of the example to the query."""


@dataclass(frozen=True)
class IndicatorHit:
    """One indicator retrieved for a query, with the evidence for the prompt."""

    indicator: IndicatorDef
    """The full definition (name, definition, benign contrast, severity, ATT&CK, CWE)."""
    score: float
    """Ranking score: best fused document similarity, plus the signal boost if any."""
    dense: float
    """Best dense similarity among the indicator's documents (0 when not used)."""
    lexical: float
    """Best lexical similarity among the indicator's documents (0 when not used)."""
    from_signal: bool
    """True when a static detector raised this indicator for the query."""
    examples: tuple[ExampleHit, ...]
    """Closest malicious examples of this indicator, best first."""
    contrasts: tuple[ExampleHit, ...]
    """Closest benign look-alikes of this indicator, best first."""


@dataclass(frozen=True)
class SearchResult:
    """What a search returns: the query and the ranked indicators."""

    query: str
    signals: tuple[str, ...]
    """Indicator IDs given as static signals."""
    mode: Mode
    hits: tuple[IndicatorHit, ...]
    """Top-k indicators, best first."""

    @property
    def ids(self) -> tuple[str, ...]:
        """Indicator IDs of the hits, in rank order."""
        return tuple(h.indicator.id for h in self.hits)


def fuse(dense: float, lexical: float, options: RankOptions) -> float:
    """One similarity per document from its per-space similarities."""
    if options.mode == "dense":
        return dense
    if options.mode == "lexical":
        return lexical
    return options.dense_weight * dense + (1.0 - options.dense_weight) * lexical


def rank(
    query: str,
    similarities: Mapping[str, tuple[float, float]],
    docs: Mapping[str, KbDocument],
    examples: Mapping[str, Example],
    taxonomy: Taxonomy,
    *,
    signals: Sequence[str] = (),
    k: int = 5,
    per_indicator: int = 2,
    options: RankOptions = RankOptions(),
) -> SearchResult:
    """Rank indicators for one query.

    Args:
        query: the query text (kept in the result).
        similarities: document ID -> (dense cosine, lexical cosine).
        docs: document ID -> document.
        examples: example ID -> example.
        taxonomy: the taxonomy the documents were built from.
        signals: indicator IDs already raised by static detectors for this statement.
        k: how many indicators to return.
        per_indicator: how many examples (and benign contrasts) to attach to each hit.
        options: fusion and weighting.

    Raises:
        KeyError: a signal is not a taxonomy ID.
    """
    for sig in signals:
        taxonomy.get(sig)
    best: dict[str, list[float]] = {}  # indicator -> [score, dense, lexical]
    ex_hits: dict[str, list[ExampleHit]] = {}
    contrast_hits: dict[str, list[ExampleHit]] = {}
    for doc_id, (dense, lexical) in similarities.items():
        doc = docs.get(doc_id)
        if doc is None or doc.kind == "workflow" or (doc.kind == "example"
                                                     and not options.use_examples):
            continue  # workflows describe chains, not one statement's indicator
        sim = fuse(dense, lexical, options)
        if doc.kind == "indicator":
            score = sim * options.definition_weight
        else:
            ex = examples[doc_id.removeprefix("ex:")]
            target = ex_hits if ex.label == "malicious" else contrast_hits
            target.setdefault(doc.indicator, []).append(ExampleHit(ex, round(sim, 6)))
            score = sim * (1.0 if ex.label == "malicious" else options.benign_weight)
        cur = best.setdefault(doc.indicator, [float("-inf"), 0.0, 0.0])
        cur[0] = max(cur[0], score)
        cur[1] = max(cur[1], dense if options.mode != "lexical" else 0.0)
        cur[2] = max(cur[2], lexical if options.mode != "dense" else 0.0)
    order = {ind.id: i for i, ind in enumerate(taxonomy.indicators)}
    wanted = set(signals)
    for sig in wanted:
        best.setdefault(sig, [0.0, 0.0, 0.0])
    scored = sorted(
        ((v[0] + (options.signal_boost if ind in wanted else 0.0), ind) for ind, v in best.items()),
        key=lambda t: (-t[0], order.get(t[1], 10**6)),
    )
    hits = []
    for score, ind in scored[: max(k, 0)]:
        _, dense, lexical = best[ind]
        hits.append(IndicatorHit(
            indicator=taxonomy.get(ind),
            score=round(score, 6),
            dense=round(dense, 6),
            lexical=round(lexical, 6),
            from_signal=ind in wanted,
            examples=_top(ex_hits.get(ind, []), per_indicator),
            contrasts=_top(contrast_hits.get(ind, []), per_indicator),
        ))
    return SearchResult(query=query, signals=tuple(dict.fromkeys(signals)), mode=options.mode,
                        hits=tuple(hits))


def _top(hits: list[ExampleHit], n: int) -> tuple[ExampleHit, ...]:
    return tuple(sorted(hits, key=lambda h: (-h.score, h.example.id))[: max(n, 0)])
