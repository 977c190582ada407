"""Exact small cases for statement-level matching (triage.evaluation.stmt_metrics)."""

from __future__ import annotations

from triage.evaluation.stmt_metrics import (
    FamilyCounts,
    PackageResult,
    PackageTruth,
    Predicted,
    TruthStatement,
    detected,
    empty_counts,
    f1_score,
    family_counts,
    map_lines,
    overlapping,
    score_package,
)

RUN = "code_execution_runtime"
EVAL = "code_execution_dynamic_evaluation"
SHELL = "code_execution_shell_command"
META = "metadata_description_anomaly"
TYPES = {RUN: "stage", EVAL: "mechanism", SHELL: "mechanism", META: "meta"}


def type_of(indicator: str) -> str:
    return TYPES.get(indicator, f"unknown:{indicator}")


# setup.py: statements (1,1) (2,2) (3,3) class header (4,4) def header (5,5)
# body (6,6) (7,7), a 3-line call (8,10)
SPANS = ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 10))


def truth(labelled: tuple[TruthStatement, ...], **kw: object) -> PackageTruth:
    return PackageTruth("a/1/a-1.tar.gz", "c1", True, labelled, {"setup.py": SPANS}, **kw)


def ts(start: int, end: int, *ids: str) -> TruthStatement:
    return TruthStatement("setup.py", start, end, tuple(sorted(ids)))


def pred(start: int, end: int, indicator: str, file: str = "setup.py") -> Predicted:
    return Predicted(file, start, end, indicator)


def result(*findings: Predicted, verdict: str = "malicious") -> PackageResult:
    return PackageResult("a/1/a-1.tar.gz", verdict, findings)


def test_map_lines_covers_multiline_statement_and_reports_uncovered():
    assert map_lines(SPANS, [9]) == (((8, 10),), ())
    assert map_lines(SPANS, [6, 7, 9, 12, 6]) == (((6, 6), (7, 7), (8, 10)), (12,))
    assert map_lines(SPANS, []) == ((), ())
    assert map_lines((), [3]) == ((), (3,))


def test_overlapping_is_inclusive_on_both_ends():
    assert overlapping(SPANS, 10, 12) == ((8, 10),)
    assert overlapping(SPANS, 5, 8) == ((5, 5), (6, 6), (7, 7), (8, 10))
    assert overlapping(SPANS, 11, 20) == ()


def test_hit_on_overlap_counts_statements_not_lines():
    t = truth((ts(6, 6, RUN), ts(8, 10, EVAL)))
    # one finding on line 9 hits the 3-line statement; another covers 5..6
    c = family_counts(t, result(pred(9, 9, EVAL), pred(5, 6, RUN)), "code", type_of)
    assert (c.labelled, c.predicted, c.hits) == (2, 3, 2)
    assert (c.pairs, c.exact, c.same_type) == (2, 2, 2)
    assert (c.precision, c.recall) == (2 / 3, 1.0)
    assert c.f1 == 0.8
    assert c.per_indicator == {EVAL: (1, 1, 1), RUN: (1, 2, 1)}


def test_indicator_exact_versus_type_level():
    t = truth((ts(8, 10, EVAL),))
    c = family_counts(t, result(pred(8, 8, SHELL)), "code", type_of)  # same type, other ID
    assert (c.hits, c.pairs, c.exact, c.same_type) == (1, 1, 0, 1)
    c = family_counts(t, result(pred(8, 8, RUN)), "code", type_of)  # other type
    assert (c.hits, c.pairs, c.exact, c.same_type) == (1, 1, 0, 0)


def test_no_findings_gives_zero_recall_and_undefined_precision_as_zero():
    c = family_counts(truth((ts(6, 6, RUN),)), result(verdict="benign"), "code", type_of)
    assert (c.labelled, c.predicted, c.hits, c.first_rank) == (1, 0, 0, None)
    assert (c.precision, c.recall, c.f1) == (0.0, 0.0, 0.0)


def test_nothing_labelled_and_nothing_found_is_all_zero():
    c = family_counts(truth(()), result(), "code", type_of)
    assert c == FamilyCounts(0, 0, 0, 0, 0, 0, None, {})
    assert c == empty_counts()


def test_findings_in_other_files_cost_effort_but_not_precision():
    t = truth((ts(7, 7, RUN),))
    r = result(pred(1, 3, RUN, file="pkg/other.py"), pred(2, 2, RUN), pred(7, 7, RUN))
    c = family_counts(t, r, "code", type_of)
    assert (c.predicted, c.hits) == (2, 1)  # (2,2) and (7,7) in setup.py only
    assert c.first_rank == 3  # other.py span, then (2,2), then the labelled (7,7)


def test_first_rank_counts_distinct_statements_in_reading_order():
    t = truth((ts(8, 10, EVAL),))
    r = result(pred(1, 2, RUN), pred(2, 2, SHELL), pred(10, 10, EVAL))
    assert family_counts(t, r, "code", type_of).first_rank == 3  # (1,1) (2,2) then (8,10)
    r = result(pred(8, 8, EVAL), pred(1, 1, RUN))
    assert family_counts(t, r, "code", type_of).first_rank == 1


def test_families_are_scored_separately():
    t = truth((ts(8, 10, META), ts(6, 6, RUN)))
    r = result(pred(8, 10, RUN), pred(9, 9, META))
    scores = score_package(t, r, type_of)
    code, meta = scores["code"], scores["metadata"]
    assert (code.labelled, code.predicted, code.hits) == (1, 1, 0)  # code finding on setup()
    assert (meta.labelled, meta.predicted, meta.hits, meta.exact) == (1, 1, 1, 1)


def test_statement_with_both_families_counts_in_each():
    t = truth((ts(8, 10, META, EVAL),))
    scores = score_package(t, result(pred(8, 8, EVAL)), type_of)
    assert (scores["code"].labelled, scores["code"].hits) == (1, 1)
    assert (scores["metadata"].labelled, scores["metadata"].hits) == (1, 0)


def test_peer_rule_ids_count_as_code_detection_but_never_as_indicator():
    t = truth((ts(6, 6, RUN),))
    c = family_counts(t, result(pred(6, 6, "bandit:B404")), "code", type_of)
    assert (c.hits, c.pairs, c.exact, c.same_type) == (1, 1, 0, 0)


def test_missing_result_is_an_error_that_predicts_nothing():
    scores = score_package(truth((ts(6, 6, RUN),)), None, type_of)
    assert scores["code"].labelled == 1 and scores["code"].predicted == 0


def test_f1_score_degenerate_cases():
    assert f1_score(None, 1.0) is None
    assert f1_score(None, None) is None
    assert f1_score(None, 0.0) == 0.0  # labels, no predictions: recall 0 -> F1 0
    assert f1_score(0.0, None) == 0.0
    assert f1_score(0.0, 0.0) == 0.0
    assert f1_score(1.0, 0.5) == 2 / 3


def test_detected_only_for_malicious_and_suspicious():
    assert detected(result(verdict="malicious")) and detected(result(verdict="suspicious"))
    assert not detected(result(verdict="benign"))
    assert not detected(result(verdict="needs-review"))
    assert not detected(result(verdict="error"))
