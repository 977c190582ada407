"""Sequential pattern mining over indicator sequences (PrefixSpan, cluster-weighted). Pure.

Why PrefixSpan rather than GSP: a package's chain is a short sequence of single items
(one indicator per step), the datasets are small, and we want every frequent pattern with
exact supports. PrefixSpan grows patterns depth-first inside projected databases (the
suffixes after each occurrence of the prefix), so it never generates candidates that do
not occur and scans only the projections; GSP generates and counts candidate k-sequences
level by level over the whole database, which buys nothing here. Both give the same
patterns; PrefixSpan is simpler to make exact with weighted support.

Support is counted per near-duplicate cluster: each sequence weighs ``1 / (sequences in
its cluster)``, so a cluster of 30 copies of one package counts as much as a singleton, and
``support = (sum of weights of sequences containing the pattern) / (number of clusters)``.
A pattern is matched as an ordered subsequence (gaps allowed), each sequence at most once.
``confidence(p) = support(p) / support(p[:-1])`` (the share of clusters showing the prefix
in which the last step follows); for one-step patterns it is the support.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ItemSequence:
    """One package's indicators in execution order."""

    key: str
    """Which package (the archive path)."""
    group: str
    """Near-duplicate cluster key (the archive itself when unknown)."""
    items: tuple[str, ...]
    """Indicator IDs in order."""


@dataclass(frozen=True)
class FrequentSequence:
    """A mined pattern with its statistics."""

    pattern: tuple[str, ...]
    support: float
    """Cluster-weighted share of sequences that contain the pattern (0..1)."""
    confidence: float
    """support(pattern) / support(pattern[:-1])."""
    clusters: int
    """Distinct clusters with at least one sequence containing it."""
    sequences: int
    """Sequences containing it (unweighted)."""


def collapse(items: Iterable[str]) -> tuple[str, ...]:
    """First occurrence of each item, in order (a chain has one step per behaviour)."""
    return tuple(dict.fromkeys(items))


def _weights(seqs: Sequence[ItemSequence]) -> list[float]:
    sizes = Counter(s.group for s in seqs)
    return [1.0 / sizes[s.group] for s in seqs]


def prefixspan(seqs: Sequence[ItemSequence], min_support: float = 0.1, min_clusters: int = 2,
               max_length: int = 5) -> tuple[FrequentSequence, ...]:
    """Every frequent sequential pattern, by cluster-weighted support.

    Args:
        seqs: the sequences (items may repeat; each sequence counts once per pattern).
        min_support: least support (0..1) a pattern needs.
        min_clusters: least number of distinct clusters that must show it (a pattern of a
            single cluster is one package family, not a recurring workflow).
        max_length: longest pattern mined.

    Returns:
        Patterns sorted by support (descending), then length (descending), then pattern.
    """
    if not seqs:
        return ()
    weights = _weights(seqs)
    total = float(len({s.group for s in seqs}))
    found: dict[tuple[str, ...], tuple[float, int, int]] = {}

    def grow(prefix: tuple[str, ...], projection: list[tuple[int, int]]) -> None:
        weight: dict[str, float] = defaultdict(float)
        count: Counter[str] = Counter()
        groups: dict[str, set[str]] = {}
        for s, pos in projection:
            for item in set(seqs[s].items[pos:]):
                weight[item] += weights[s]
                count[item] += 1
                groups.setdefault(item, set()).add(seqs[s].group)
        for item in sorted(weight):
            support = weight[item] / total
            if support + 1e-12 < min_support or len(groups[item]) < min_clusters:
                continue
            pattern = prefix + (item,)
            found[pattern] = (support, len(groups[item]), count[item])
            if len(pattern) >= max_length:
                continue
            nxt = [(s, seqs[s].items.index(item, pos) + 1) for s, pos in projection
                   if item in seqs[s].items[pos:]]
            grow(pattern, nxt)

    grow((), [(i, 0) for i in range(len(seqs))])
    out = []
    for pattern, (support, clusters, count) in found.items():
        base = found[pattern[:-1]][0] if len(pattern) > 1 else 1.0
        out.append(FrequentSequence(pattern=pattern, support=round(support, 4),
                                    confidence=round(support / base, 4) if base else 0.0,
                                    clusters=clusters, sequences=count))
    out.sort(key=lambda p: (-p.support, -len(p.pattern), p.pattern))
    return tuple(out)


def is_subsequence(pattern: Sequence[str], sequence: Sequence[str]) -> bool:
    """True when ``pattern`` occurs in ``sequence`` in order, gaps allowed."""
    it = iter(sequence)
    return all(any(x == p for x in it) for p in pattern)


def closed(patterns: Sequence[FrequentSequence]) -> tuple[FrequentSequence, ...]:
    """Patterns no longer pattern contains with the same support (input order kept)."""
    return tuple(
        p for p in patterns
        if not any(len(q.pattern) > len(p.pattern) and abs(q.support - p.support) < 1e-9
                   and is_subsequence(p.pattern, q.pattern) for q in patterns)
    )


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b``."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class ChainCase:
    """One labelled package: its labelled sequence and the predicted chain."""

    key: str
    group: str
    labelled: tuple[str, ...]
    predicted: tuple[str, ...]

    @property
    def contained(self) -> bool:
        """The predicted chain contains the whole labelled sequence, in order."""
        return is_subsequence(self.labelled, self.predicted)

    @property
    def ordered_recall(self) -> float:
        """Share of the labelled sequence found in order (LCS / labelled length)."""
        return lcs_length(self.labelled, self.predicted) / len(self.labelled) \
            if self.labelled else 1.0


@dataclass(frozen=True)
class ChainAccuracy:
    """Chain accuracy over labelled packages, cluster-weighted."""

    cases: int
    clusters: int
    contained: float
    """Cluster-weighted share of packages whose chain contains the labelled sequence."""
    ordered_recall: float
    """Cluster-weighted mean of :attr:`ChainCase.ordered_recall`."""


def chain_accuracy(cases: Sequence[ChainCase]) -> ChainAccuracy:
    """Cluster-weighted chain accuracy (each near-duplicate cluster counts once)."""
    if not cases:
        return ChainAccuracy(0, 0, 0.0, 0.0)
    sizes = Counter(c.group for c in cases)
    n = len(sizes)
    contained = sum(1.0 / sizes[c.group] for c in cases if c.contained) / n
    recall = sum(c.ordered_recall / sizes[c.group] for c in cases) / n
    return ChainAccuracy(len(cases), n, round(contained, 4), round(recall, 4))
