"""Mine datasets of indicator sequences into known workflows and readable tables. Pure.

Glue between :mod:`triage.mining` (PrefixSpan) and :mod:`triage.workflows` (the shipped
``kb/chains.yaml``): each dataset is mined on its own, the closed patterns of two or more
steps are kept, and patterns found in several datasets become one workflow whose support is
that of the first dataset (labelled data first), the others noted under ``also``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from triage.mining import (
    ChainAccuracy,
    ChainCase,
    FrequentSequence,
    ItemSequence,
    closed,
    prefixspan,
)
from triage.taxonomy import Taxonomy
from triage.workflows import Workflow


@dataclass(frozen=True)
class Dataset:
    """Sequences of one source."""

    name: str
    """``labels`` or ``run``."""
    source: str
    """The file it came from (name only)."""
    sequences: tuple[ItemSequence, ...]

    @property
    def clusters(self) -> int:
        """Distinct near-duplicate clusters."""
        return len({s.group for s in self.sequences})


@dataclass(frozen=True)
class MinedDataset:
    """A dataset with its frequent patterns."""

    dataset: Dataset
    patterns: tuple[FrequentSequence, ...]
    """Every frequent pattern, by support."""

    def top(self, n: int, min_length: int = 2) -> tuple[FrequentSequence, ...]:
        """The ``n`` best closed patterns of at least ``min_length`` steps."""
        long = [p for p in self.patterns if len(p.pattern) >= min_length]
        return closed(long)[: max(n, 0)]


def mine(datasets: Sequence[Dataset], min_support: float, min_clusters: int,
         max_length: int) -> tuple[MinedDataset, ...]:
    """Mine each dataset separately (supports are not comparable across datasets)."""
    return tuple(
        MinedDataset(d, prefixspan(d.sequences, min_support, min_clusters, max_length))
        for d in datasets
    )


def title(pattern: Sequence[str], taxonomy: Taxonomy) -> str:
    """Indicator names joined by arrows."""
    return " -> ".join(taxonomy.get(i).name if i in taxonomy else i for i in pattern)


def select_workflows(mined: Sequence[MinedDataset], taxonomy: Taxonomy, keep: int = 15,
                     min_length: int = 2) -> tuple[Workflow, ...]:
    """The top closed patterns of each dataset as workflows ``W01``, ``W02``... by support."""
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for m in mined:
        for p in m.top(keep, min_length):
            entry = merged.get(p.pattern)
            if entry is None:
                merged[p.pattern] = {"p": p, "source": m.dataset.name, "also": {}}
            else:
                entry["also"][m.dataset.name] = p.support
    for m in mined:  # supports of already-kept patterns in the other datasets
        stats = {p.pattern: p.support for p in m.patterns}
        for pattern, entry in merged.items():
            if entry["source"] != m.dataset.name and pattern in stats:
                entry["also"].setdefault(m.dataset.name, stats[pattern])
    ranked = sorted(merged.values(),
                    key=lambda e: (-e["p"].support, -len(e["p"].pattern), e["p"].pattern))
    width = 2 if len(ranked) < 100 else 3
    return tuple(
        Workflow(id=f"W{n:0{width}d}", pattern=e["p"].pattern, support=e["p"].support,
                 confidence=e["p"].confidence, clusters=e["p"].clusters, source=e["source"],
                 title=title(e["p"].pattern, taxonomy),
                 also=tuple(sorted((k, round(v, 4)) for k, v in e["also"].items())))
        for n, e in enumerate(ranked, start=1)
    )


def dataset_info(d: Dataset) -> dict[str, Any]:
    """What the chains YAML records about a dataset."""
    return {"name": d.name, "source": d.source, "sequences": len(d.sequences),
            "non_empty": sum(1 for s in d.sequences if s.items), "clusters": d.clusters}


def format_table(m: MinedDataset, top: int, min_length: int = 2) -> str:
    """A Markdown table of the top closed patterns of one dataset."""
    d = m.dataset
    rows = m.top(top, min_length)
    out = [f"Top sequences mined from {d.name} ({d.source}): {len(d.sequences)} packages in "
           f"{d.clusters} clusters, each cluster counted once", "",
           "| # | sequence | support | confidence | clusters | packages |",
           "|---|---|---|---|---|---|"]
    out += [f"| {i} | {' → '.join(p.pattern)} | {p.support:.2f} | {p.confidence:.2f} | "
            f"{p.clusters} | {p.sequences} |" for i, p in enumerate(rows, start=1)]
    if not rows:
        out.append("| - | no sequence reaches the thresholds | | | | |")
    return "\n".join(out) + "\n"


def format_accuracy(acc: ChainAccuracy, cases: Sequence[ChainCase], worst: int = 10) -> str:
    """Chain accuracy and the labelled packages whose chain misses the labelled order."""
    out = [f"Chain accuracy over {acc.cases} labelled packages in {acc.clusters} clusters "
           "(cluster-weighted):", "",
           f"- chain contains the labelled sequence in order: {acc.contained:.3f}",
           f"- labelled steps found in order (LCS / labelled length): {acc.ordered_recall:.3f}"]
    misses = sorted((c for c in cases if not c.contained), key=lambda c: (c.ordered_recall,
                                                                         c.key))
    if misses:
        out += ["", "| package | labelled | predicted chain |", "|---|---|---|"]
        out += [f"| `{c.key}` | {' → '.join(c.labelled)} | {' → '.join(c.predicted) or '-'} |"
                for c in misses[:worst]]
    return "\n".join(out) + "\n"
