"""Cluster weighting, micro/macro averages and the cluster bootstrap, on hand-computed cases."""

from __future__ import annotations

import time

import numpy as np
import pytest

from triage.evaluation.aggregate import (
    Estimate,
    bootstrap_plan,
    resample_counts,
    score_system,
)
from triage.evaluation.stmt_metrics import (
    PackageResult,
    PackageTruth,
    Predicted,
    TruthStatement,
)

RUN = "code_execution_runtime"
SPANS = tuple((n, n) for n in range(1, 21))


def type_of(indicator: str) -> str:
    return "stage"


def mal(archive: str, cluster: str, lines: tuple[int, ...]) -> PackageTruth:
    labelled = tuple(TruthStatement("s.py", n, n, (RUN,)) for n in lines)
    return PackageTruth(archive, cluster, True, labelled, {"s.py": SPANS})


def ben(archive: str) -> PackageTruth:
    return PackageTruth(archive, archive, False)


def res(archive: str, verdict: str, lines: tuple[int, ...] = ()) -> PackageResult:
    return PackageResult(archive, verdict, tuple(Predicted("s.py", n, n, RUN) for n in lines))


TRUTHS = (
    mal("A", "c1", (1, 2)),
    mal("B", "c1", (1, 2)),
    mal("C", "c2", (5,)),
    ben("D"),
    ben("E"),
)
RESULTS = {
    "A": res("A", "malicious", (9, 1, 2, 10)),  # 4 predicted, 2 hits, first hit read 2nd
    "B": res("B", "benign"),  # nothing predicted
    "C": res("C", "suspicious", (5,)),
    "D": res("D", "suspicious"),
    "E": res("E", "benign"),
}


def values(metric):
    return metric.weighted.value, metric.raw.value


def test_weighted_and_raw_micro_macro_by_hand():
    s = score_system("x", TRUTHS, RESULTS, type_of, bootstrap_plan(TRUTHS, 0))
    m = s.code.metrics
    assert (s.code.packages, s.code.clusters, s.code.labelled) == (3, 2, 5)
    # weights A=B=1/2, C=1: hits 2, predicted 3, labelled 3; raw 3/5 and 3/5
    assert values(m["precision"]) == pytest.approx((2 / 3, 3 / 5))
    assert values(m["recall"]) == pytest.approx((2 / 3, 3 / 5))
    assert values(m["f1"]) == pytest.approx((2 / 3, 3 / 5))
    # per-package P: A 1/2, B 0 (nothing predicted), C 1 -> (0.25 + 0 + 1) / 2
    assert m["macro_precision"].weighted.value == pytest.approx(0.625)
    assert m["macro_recall"].weighted.value == pytest.approx(0.75)
    assert m["macro_f1"].weighted.value == pytest.approx((0.5 * 2 / 3 + 1) / 2)
    assert values(m["indicator_exact"]) == pytest.approx((1.0, 1.0))
    # first-hit rank: A 2 (weight 1/2), C 1 (weight 1); B never
    assert values(m["first_rank"]) == pytest.approx((2 / 1.5, 1.5))
    assert values(m["first_found"]) == pytest.approx((0.75, 2 / 3))
    assert values(s.detection_rate) == pytest.approx((0.75, 2 / 3))
    assert values(s.benign_fpr) == pytest.approx((0.5, 0.5))
    assert (s.packages, s.malicious, s.benign, s.errors) == (5, 3, 2, 0)
    assert s.metadata.packages == 0
    assert s.metadata.metrics["precision"].weighted == Estimate(None)


def test_per_indicator_scores():
    s = score_system("x", TRUTHS, RESULTS, type_of, bootstrap_plan(TRUTHS, 0))
    (ind,) = s.per_indicator
    assert (ind.indicator, ind.labelled, ind.predicted) == (RUN, 5, 5)
    assert (ind.precision, ind.recall) == pytest.approx((2 / 3, 2 / 3))


def test_missing_results_are_errors_and_predict_nothing():
    s = score_system("x", TRUTHS, {}, type_of, bootstrap_plan(TRUTHS, 0))
    assert s.errors == 5
    assert values(s.detection_rate) == (0.0, 0.0)
    assert values(s.benign_fpr) == (0.0, 0.0)
    assert values(s.code.metrics["recall"]) == (0.0, 0.0)
    assert values(s.code.metrics["precision"]) == (None, None)  # 0/0 stays undefined
    assert s.code.metrics["f1"].weighted.value == 0.0  # recall 0 -> F1 0


def test_empty_dataset_is_undefined_everywhere():
    s = score_system("x", (), {}, type_of)
    assert s.packages == 0
    assert s.detection_rate.weighted == Estimate(None)
    assert s.benign_fpr.raw == Estimate(None)
    assert s.code.metrics["first_rank"].weighted == Estimate(None)
    assert s.per_indicator == ()


def test_bootstrap_is_deterministic_and_brackets_the_point():
    plan = bootstrap_plan(TRUTHS, 1000, seed=7)
    a = score_system("x", TRUTHS, RESULTS, type_of, plan)
    b = score_system("x", TRUTHS, RESULTS, type_of, bootstrap_plan(TRUTHS, 1000, seed=7))
    assert a == b
    for metric in (a.code.metrics["precision"], a.code.metrics["f1"], a.detection_rate):
        est = metric.weighted
        assert est.low is not None and est.high is not None
        assert 0.0 <= est.low <= est.value <= est.high <= 1.0  # type: ignore[operator]
    # two malicious clusters: resamples are {c1,c1}, {c1,c2}, {c2,c2}
    assert a.detection_rate.weighted == Estimate(0.75, 0.5, 1.0)


def test_one_cluster_gives_a_degenerate_interval():
    truths = (mal("A", "c1", (1, 2)), mal("B", "c1", (1, 2)))
    results = {"A": res("A", "malicious", (1,)), "B": res("B", "benign", (2,))}
    s = score_system("x", truths, results, type_of, bootstrap_plan(truths, 200))
    assert s.code.metrics["recall"].weighted == Estimate(0.5, 0.5, 0.5)
    assert s.benign_fpr.weighted == Estimate(None)


def test_resample_counts_stay_within_strata():
    counts = resample_counts(["m", "m", "m", "b", "b"], 50, seed=1)
    assert counts.shape == (50, 5)
    assert np.all(counts[:, :3].sum(axis=1) == 3)
    assert np.all(counts[:, 3:].sum(axis=1) == 2)
    assert np.array_equal(counts, resample_counts(["m", "m", "m", "b", "b"], 50, seed=1))


def test_bootstrap_of_a_thousand_packages_is_fast():
    truths = tuple(mal(f"p{i}", f"c{i % 300}", (1, 2, 3)) for i in range(1000))
    results = {t.archive: res(t.archive, "malicious", (2, 3, 4)) for t in truths}
    started = time.perf_counter()
    s = score_system("x", truths, results, type_of, bootstrap_plan(truths, 1000))
    assert time.perf_counter() - started < 5.0
    assert s.code.metrics["precision"].weighted == Estimate(2 / 3, 2 / 3, 2 / 3)
