"""Aggregate per-package statement counts into cluster-weighted metrics with bootstrap CIs.

Pure functions of their arguments (numpy only). Each metric is a ratio of weighted sums over
the packages of its *population* (statement metrics: malicious packages with a labelled
statement of the family; detection rate: malicious packages; false-positive rate: benign
packages). In the cluster-weighted variant each package of the population weighs
``1 / (packages of its cluster in that population)``, so each near-duplicate cluster counts
once; the raw variant weighs every package 1.

95% intervals come from a cluster bootstrap: clusters (not packages) are resampled with
replacement, separately within the malicious and the benign stratum, ``resamples`` times with
a fixed seed, and every metric is recomputed from the same resampled clusters (so F1 uses the
precision and recall of the same resample). Percentile intervals; resamples where a metric is
undefined (0/0) are left out of its interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from triage.evaluation.metrics import FAMILIES
from triage.evaluation.stmt_metrics import (
    FamilyCounts,
    PackageResult,
    PackageTruth,
    detected,
    f1_score,
    score_package,
)

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20240607
MALICIOUS, BENIGN = "malicious", "benign"


@dataclass(frozen=True)
class Estimate:
    """A point value with its 95% bootstrap interval (``None`` where undefined)."""

    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Metric:
    """One metric, cluster-weighted and raw."""

    weighted: Estimate
    raw: Estimate


@dataclass(frozen=True)
class FamilySummary:
    """Statement-level metrics of one family (``code`` or ``metadata``)."""

    family: str
    packages: int
    """Malicious packages with at least one labelled statement of the family."""
    clusters: int
    labelled: int
    """Labelled statements in those packages."""
    metrics: Mapping[str, Metric]
    """precision, recall, f1 (micro); macro_precision, macro_recall, macro_f1;
    indicator_exact, indicator_type; first_rank (mean statements read to the first true
    one, over packages where one is reached); first_found (share where one is reached)."""


@dataclass(frozen=True)
class IndicatorScore:
    """Cluster-weighted statement-level P/R/F1 of one indicator (exact indicator match)."""

    indicator: str
    labelled: int
    """Labelled statements with this indicator (raw count)."""
    predicted: int
    """Predicted statements with this indicator in labelled files (raw count)."""
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class SystemScores:
    """Every metric of one system on one dataset."""

    system: str
    packages: int
    malicious: int
    benign: int
    errors: int
    """Packages whose analysis failed (they count as not detected, nothing predicted)."""
    detection_rate: Metric
    benign_fpr: Metric
    code: FamilySummary
    metadata: FamilySummary
    per_indicator: tuple[IndicatorScore, ...]


class _Columns:
    """Per-cluster weighted and raw sums of every ratio, keyed by metric part name."""

    def __init__(self, clusters: Sequence[str]) -> None:
        self.index = {c: i for i, c in enumerate(clusters)}
        self.sums: dict[tuple[str, bool], np.ndarray] = {}

    def add(self, name: str, rows: Sequence[tuple[str, float]]) -> None:
        """Add one part (numerator or denominator) from (cluster, value) rows of a population.

        The population's cluster sizes come from the rows themselves.
        """
        sizes = Counter(c for c, _ in rows)
        for weighted in (True, False):
            vec = np.zeros(len(self.index))
            for cluster, value in rows:
                vec[self.index[cluster]] += value / sizes[cluster] if weighted else value
            self.sums[(name, weighted)] = vec


def resample_counts(
    strata: Sequence[str], resamples: int, seed: int
) -> np.ndarray:
    """Bootstrap multiplicities: row b holds how often each cluster is drawn in resample b.

    Args:
        strata: stratum of each cluster (clusters are drawn within their stratum).
        resamples: number of resamples.
        seed: RNG seed.
    """
    rng = np.random.default_rng(seed)
    counts = np.zeros((resamples, len(strata)))
    for stratum in sorted(set(strata)):
        idx = np.array([i for i, s in enumerate(strata) if s == stratum])
        draws = rng.integers(0, len(idx), size=(resamples, len(idx)))
        sub = np.zeros((resamples, len(idx)))
        np.add.at(sub, (np.arange(resamples)[:, None], draws), 1.0)
        counts[:, idx] = sub
    return counts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _estimate(point: float | None, samples: np.ndarray | None) -> Estimate:
    if point is None or samples is None:
        return Estimate(point)
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return Estimate(point)
    low, high = np.percentile(finite, [2.5, 97.5])
    return Estimate(point, float(low), float(high))


def _point(num: np.ndarray, den: np.ndarray) -> float | None:
    d = float(den.sum())
    return None if d == 0 else float(num.sum()) / d


class _Builder:
    def __init__(self, cols: _Columns, counts: np.ndarray | None) -> None:
        self.cols, self.counts = cols, counts

    def ratio(self, num: str, den: str) -> Metric:
        return Metric(*(self._ratio(num, den, w) for w in (True, False)))

    def _ratio(self, num: str, den: str, weighted: bool) -> Estimate:
        n, d = self.cols.sums[(num, weighted)], self.cols.sums[(den, weighted)]
        samples = None if self.counts is None else _ratio(self.counts @ n, self.counts @ d)
        return _estimate(_point(n, d), samples)

    def f1(self, p: tuple[str, str], r: tuple[str, str]) -> Metric:
        return Metric(*(self._f1(p, r, w) for w in (True, False)))

    def _f1(self, p: tuple[str, str], r: tuple[str, str], weighted: bool) -> Estimate:
        s = self.cols.sums
        pn, pd, rn, rd = (s[(k, weighted)] for k in (*p, *r))
        point = f1_score(_point(pn, pd), _point(rn, rd))
        if self.counts is None:
            return Estimate(point)
        ps = _ratio(self.counts @ pn, self.counts @ pd)
        rs = _ratio(self.counts @ rn, self.counts @ rd)
        samples = _ratio(2 * ps * rs, ps + rs)
        samples[(ps == 0) | (rs == 0)] = 0.0  # as f1_score: 0 when either part is 0
        return _estimate(point, samples)


def bootstrap_plan(
    truths: Sequence[PackageTruth], resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """Clusters of a dataset (in a fixed order) and their bootstrap multiplicities.

    Computed once per dataset and shared by every system, so systems are compared on the
    same resamples. ``resamples`` 0 gives no intervals.
    """
    strata: dict[str, str] = {}
    for t in truths:
        strata.setdefault(t.cluster, MALICIOUS if t.malicious else BENIGN)
    clusters = tuple(sorted(strata))
    if resamples <= 0 or not clusters:
        return clusters, None
    return clusters, resample_counts([strata[c] for c in clusters], resamples, seed)


def _family_rows(
    cols: _Columns, family: str, scored: Sequence[tuple[PackageTruth, FamilyCounts]]
) -> None:
    rows = [(t.cluster, c) for t, c in scored]
    parts: dict[str, Callable[[FamilyCounts], float]] = {
        "hits": lambda c: c.hits,
        "pred": lambda c: c.predicted,
        "lab": lambda c: c.labelled,
        "pairs": lambda c: c.pairs,
        "exact": lambda c: c.exact,
        "type": lambda c: c.same_type,
        "p": lambda c: c.precision,
        "r": lambda c: c.recall,
        "f1": lambda c: c.f1,
        "one": lambda c: 1.0,
        "rank": lambda c: float(c.first_rank or 0),
        "found": lambda c: float(c.first_rank is not None),
    }
    for name, get in parts.items():
        cols.add(f"{family}.{name}", [(cluster, float(get(c))) for cluster, c in rows])


def _family_summary(
    b: _Builder, family: str, scored: Sequence[tuple[PackageTruth, FamilyCounts]]
) -> FamilySummary:
    f = family
    metrics = {
        "precision": b.ratio(f"{f}.hits", f"{f}.pred"),
        "recall": b.ratio(f"{f}.hits", f"{f}.lab"),
        "f1": b.f1((f"{f}.hits", f"{f}.pred"), (f"{f}.hits", f"{f}.lab")),
        "macro_precision": b.ratio(f"{f}.p", f"{f}.one"),
        "macro_recall": b.ratio(f"{f}.r", f"{f}.one"),
        "macro_f1": b.ratio(f"{f}.f1", f"{f}.one"),
        "indicator_exact": b.ratio(f"{f}.exact", f"{f}.pairs"),
        "indicator_type": b.ratio(f"{f}.type", f"{f}.pairs"),
        "first_rank": b.ratio(f"{f}.rank", f"{f}.found"),
        "first_found": b.ratio(f"{f}.found", f"{f}.one"),
    }
    return FamilySummary(
        family=family,
        packages=len(scored),
        clusters=len({t.cluster for t, _ in scored}),
        labelled=sum(c.labelled for _, c in scored),
        metrics=metrics,
    )


def _per_indicator(
    scored: Sequence[tuple[PackageTruth, FamilyCounts]],
) -> list[IndicatorScore]:
    sizes = Counter(t.cluster for t, _ in scored)
    sums: dict[str, list[float]] = {}
    for truth, counts in scored:
        w = 1.0 / sizes[truth.cluster]
        for indicator, (lab, pred, hits) in counts.per_indicator.items():
            acc = sums.setdefault(indicator, [0.0, 0.0, 0.0, 0.0, 0.0])
            acc[0] += w * lab
            acc[1] += w * pred
            acc[2] += w * hits
            acc[3] += lab
            acc[4] += pred
    out = []
    for indicator, (w_lab, w_pred, w_hits, raw_lab, raw_pred) in sorted(sums.items()):
        p = w_hits / w_pred if w_pred else None
        r = w_hits / w_lab if w_lab else None
        out.append(IndicatorScore(indicator, int(raw_lab), int(raw_pred), p, r, f1_score(p, r)))
    return out


def score_system(
    system: str,
    truths: Sequence[PackageTruth],
    results: Mapping[str, PackageResult],
    type_of: Callable[[str], str],
    plan: tuple[tuple[str, ...], np.ndarray | None] | None = None,
) -> SystemScores:
    """Every metric of one system.

    Args:
        system: system name (for the record).
        truths: ground truth of every package of the dataset.
        results: the system's result per archive; a missing archive counts as an error.
        type_of: indicator -> type, for type-level indicator accuracy.
        plan: :func:`bootstrap_plan` of ``truths`` (computed here when ``None``).
    """
    clusters, counts = plan if plan is not None else bootstrap_plan(truths)
    cols = _Columns(clusters)
    per_family: dict[str, list[tuple[PackageTruth, FamilyCounts]]] = {f: [] for f in FAMILIES}
    det_rows: list[tuple[str, float]] = []
    fp_rows: list[tuple[str, float]] = []
    errors = 0
    for truth in truths:
        result = results.get(truth.archive) or PackageResult(truth.archive, "error")
        errors += result.verdict == "error"
        flagged = float(detected(result))
        (det_rows if truth.malicious else fp_rows).append((truth.cluster, flagged))
        if not truth.malicious or not truth.labelled:
            continue
        for family, fc in score_package(truth, result, type_of).items():
            if fc.labelled:
                per_family[family].append((truth, fc))
    cols.add("det.hit", det_rows)
    cols.add("det.n", [(c, 1.0) for c, _ in det_rows])
    cols.add("fp.hit", fp_rows)
    cols.add("fp.n", [(c, 1.0) for c, _ in fp_rows])
    for family, scored in per_family.items():
        _family_rows(cols, family, scored)
    b = _Builder(cols, counts)
    return SystemScores(
        system=system,
        packages=len(truths),
        malicious=len(det_rows),
        benign=len(fp_rows),
        errors=errors,
        detection_rate=b.ratio("det.hit", "det.n"),
        benign_fpr=b.ratio("fp.hit", "fp.n"),
        code=_family_summary(b, "code", per_family["code"]),
        metadata=_family_summary(b, "metadata", per_family["metadata"]),
        per_indicator=tuple(i for f in FAMILIES for i in _per_indicator(per_family[f])),
    )
