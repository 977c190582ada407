"""Exact small cases for triage.evaluation.metrics."""

from __future__ import annotations

import pytest

from triage.evaluation.corpus import Label
from triage.evaluation.metrics import (
    CODE,
    METADATA,
    NO_VERDICT,
    ArchiveCase,
    Ratio,
    Span,
    archive_line_score,
    cluster_weights,
    code_lines,
    package_recall,
    score,
    worst_recall,
)

TYPES = {
    "code_execution_runtime": "execution_stage",
    "code_execution_install_hook_override": "execution_stage",
    "code_execution_dynamic_evaluation": "execution_mechanism",
    "code_execution_encoded_command": "execution_mechanism",
    "code_suppressing_error": "defense_evasion",
    "metadata_author_info_suspicious": "metadata_manipulation",
    "metadata_description_anomaly": "metadata_manipulation",
}


def type_of(indicator: str) -> str:
    return TYPES[indicator]


def label(archive: str, file: str, lines: tuple[int, ...], indicator: str) -> Label:
    return Label(
        package=archive.split("/")[0],
        archive=archive,
        file=file,
        lines=lines,
        indicator=indicator,
        raw_indicator=indicator,
        is_metadata=indicator.startswith("metadata_"),
    )


def case(
    archive: str = "a/1/a-1.tar.gz",
    cluster: str = "c1",
    verdict: str = "malicious",
    findings: tuple[Span, ...] = (),
    labels: tuple[Label, ...] = (),
    code: dict[str, frozenset[int]] | None = None,
) -> ArchiveCase:
    return ArchiveCase(archive, cluster, verdict, findings, labels, code or {})


A = "a/1/a-1.tar.gz"
B = "b/1/b-1.tar.gz"
RUNTIME = "code_execution_runtime"
EVAL = "code_execution_dynamic_evaluation"


def test_recall_and_precision_two_thirds():
    c = case(
        labels=(label(A, "a.py", (3, 4, 5), RUNTIME),),
        findings=(Span("a.py", 4, 6, RUNTIME),),
    )
    s = archive_line_score(c, CODE, type_of)
    assert (s.labelled, s.covered, s.predicted) == (3, 2, 3)
    assert s.missed_lines == (("a.py", 3),)
    assert s.missed_indicators == (RUNTIME,)
    scores = score([c], type_of)
    assert scores.code.line_recall.raw == Ratio(2, 3)
    assert scores.code.line_precision.raw == Ratio(2, 3)
    assert scores.code.line_recall.weighted == Ratio(2, 3)
    assert scores.code.indicator_exact.raw == Ratio(2, 2)


def test_blank_and_comment_lines_excluded_from_both_sides():
    text = "import os\n\n# note\nos.system('x')\ny = 1\n"
    assert code_lines(text) == frozenset({1, 4, 5})
    c = case(
        labels=(label(A, "a.py", (1, 2, 3, 4), RUNTIME),),
        findings=(Span("a.py", 2, 5, RUNTIME),),
        code={"a.py": code_lines(text)},
    )
    s = archive_line_score(c, CODE, type_of)
    # labelled code lines {1, 4}; predicted code lines {4, 5}
    assert (s.labelled, s.covered, s.predicted) == (2, 1, 2)
    assert s.missed_lines == (("a.py", 1),)


def test_code_lines_keeps_multiline_strings_and_falls_back_on_broken_source():
    assert code_lines('x = """\n# not a comment\n\n"""\n# real comment\n') == frozenset(
        {1, 2, 3, 4}
    )
    # unterminated triple-quoted string: tokenizer fails, heuristic used
    assert code_lines('a = 1\n\n# c\nb = """\n') == frozenset({1, 4})
    assert code_lines("a = 1\r\n\r\nb = 2\rc = 3") == frozenset({1, 3, 4})


def test_findings_in_other_files_and_other_family_do_not_count():
    c = case(
        labels=(
            label(A, "setup.py", (3,), RUNTIME),
            label(A, "setup.py", (10, 11), "metadata_author_info_suspicious"),
        ),
        findings=(
            Span("other.py", 1, 50, RUNTIME),  # unlabelled file: ignored for precision
            Span("setup.py", 9, 12, "code_execution_install_hook_override"),  # code family
        ),
    )
    code = archive_line_score(c, CODE, type_of)
    assert (code.labelled, code.covered, code.predicted) == (1, 0, 4)
    meta = archive_line_score(c, METADATA, type_of)
    assert (meta.labelled, meta.covered, meta.predicted) == (2, 0, 0)
    scores = score([c], type_of)
    assert scores.metadata.line_precision.raw == Ratio(0, 0)
    assert scores.metadata.line_precision.raw.value is None
    assert scores.code.line_precision.raw.value == 0.0


def test_empty_findings_recall_zero_precision_undefined():
    c = case(labels=(label(A, "a.py", (1, 2), RUNTIME),))
    scores = score([c], type_of)
    assert scores.code.line_recall.raw == Ratio(0, 2)
    assert scores.code.line_recall.raw.value == 0.0
    assert scores.code.line_precision.raw == Ratio(0, 0)
    assert scores.code.line_precision.raw.value is None
    assert scores.code.indicator_exact.raw.value is None


def test_no_labels_recall_undefined_and_archive_not_counted():
    c = case(findings=(Span("a.py", 1, 3, RUNTIME),))
    scores = score([c], type_of)
    assert scores.code.archives == 0
    assert scores.code.line_recall.raw == Ratio(0, 0)
    assert scores.code.line_recall.weighted.value is None
    assert scores.metadata.line_recall.raw.value is None
    assert scores.package_recall.raw == Ratio(1, 1)


def test_empty_set():
    scores = score([], type_of)
    assert (scores.archives, scores.clusters, scores.verdicts) == (0, 0, ())
    assert scores.package_recall.weighted.value is None
    assert scores.code.line_recall.raw.value is None


def test_cluster_weighting_two_archives_in_one_cluster():
    twins = [
        case(
            A,
            "c1",
            labels=(label(A, "s.py", (1, 2), RUNTIME),),
            findings=(Span("s.py", 1, 2, RUNTIME),),
        ),
        case(
            B,
            "c1",
            labels=(label(B, "s.py", (1, 2), RUNTIME),),
            findings=(Span("s.py", 1, 2, RUNTIME),),
        ),
    ]
    other = case(
        "z/1/z-1.tar.gz",
        "c2",
        verdict="benign",
        labels=(label("z/1/z-1.tar.gz", "s.py", (1, 2), RUNTIME),),
    )
    assert cluster_weights([(A, "c1"), (B, "c1"), ("z", "c2")]) == {A: 0.5, B: 0.5, "z": 1.0}
    scores = score([*twins, other], type_of)
    assert scores.code.line_recall.raw == Ratio(4, 6)
    assert scores.code.line_recall.weighted == Ratio(2, 4)
    assert scores.code.line_recall.weighted.value == 0.5
    assert scores.code.clusters == 2
    assert scores.package_recall.raw == Ratio(2, 3)
    assert scores.package_recall.weighted == Ratio(1, 2)
    assert scores.verdicts == (("malicious", 2), ("benign", 1))


def test_line_weights_count_only_archives_labelled_for_the_family():
    # B is in the same cluster but has no code labels: A keeps weight 1 for code lines
    a = case(
        A, "c1", labels=(label(A, "s.py", (1,), RUNTIME),), findings=(Span("s.py", 1, 1, RUNTIME),)
    )
    b = case(B, "c1", labels=(label(B, "s.py", (5,), "metadata_description_anomaly"),))
    scores = score([a, b], type_of)
    assert scores.code.line_recall.weighted == Ratio(1, 1)
    assert scores.metadata.line_recall.weighted == Ratio(0, 1)
    assert scores.package_recall.weighted == Ratio(1, 1)


def test_package_recall_verdicts():
    cases = [
        case("m", "1", verdict="malicious"),
        case("s", "2", verdict="suspicious"),
        case("n", "3", verdict="needs-review"),
        case("b", "4", verdict="benign"),
        case("e", "5", verdict=NO_VERDICT),
    ]
    assert package_recall(cases).raw == Ratio(2, 5)
    benign_only = ArchiveCase("x", "9", "malicious", (), (), {}, malicious=False)
    assert package_recall([benign_only]).raw == Ratio(0, 0)


def test_indicator_accuracy_exact_and_type():
    c = case(
        labels=(
            label(A, "s.py", (1,), RUNTIME),
            label(A, "s.py", (1,), EVAL),
            label(A, "s.py", (2,), "code_suppressing_error"),
            label(A, "s.py", (3,), RUNTIME),  # not covered: not in accuracy counts
        ),
        findings=(
            Span("s.py", 1, 1, "code_execution_encoded_command"),
            Span("s.py", 1, 2, "code_execution_install_hook_override"),
        ),
    )
    s = archive_line_score(c, CODE, type_of)
    # covered triples: (1,runtime) type hit via hook_override; (1,eval) type hit via encoded;
    # (2,suppressing) covered by hook_override: wrong type. No exact hit.
    assert (s.pairs, s.exact, s.same_type) == (3, 0, 2)
    assert s.missed_indicators == (EVAL, RUNTIME, "code_suppressing_error")
    exact_hit = case(
        B, "c9", labels=(label(B, "s.py", (1,), RUNTIME),), findings=(Span("s.py", 1, 1, RUNTIME),)
    )
    scores = score([c, exact_hit], type_of)
    assert scores.code.indicator_exact.raw == Ratio(1, 4)
    assert scores.code.indicator_type.raw == Ratio(3, 4)
    assert scores.code.indicator_exact.weighted == Ratio(1, 4)


def test_duplicate_archive_rejected():
    with pytest.raises(ValueError, match="more than once"):
        score([case(A), case(A)], type_of)


def test_worst_recall_order():
    cases = [
        case(
            A,
            "1",
            labels=(label(A, "s.py", (1, 2), RUNTIME),),
            findings=(Span("s.py", 1, 1, RUNTIME),),
        ),
        case(B, "2", labels=(label(B, "s.py", (1, 2, 3), RUNTIME),)),
        case("c", "3", labels=(label("c", "s.py", (1,), RUNTIME),)),
        case("d", "4"),
    ]
    worst = worst_recall(cases, CODE, type_of, n=2)
    assert [(w.archive, w.covered, w.labelled) for w in worst] == [(B, 0, 3), ("c", 0, 1)]
    assert worst[0].missed_lines == (("s.py", 1), ("s.py", 2), ("s.py", 3))
