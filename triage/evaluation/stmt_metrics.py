"""Pure statement-level scoring of one system's findings on one package.

Everything here is a pure function of its arguments (no files, no taxonomy, no index).

Conventions:

* Ground truth is a set of *labelled statements*: each labelled line range is mapped to the
  statements of the file's index that cover it (:func:`map_lines`); the statement spans of
  every labelled file travel with the truth (:class:`PackageTruth`).
* A finding is a *hit* when its span overlaps a labelled statement in the same file. The
  *predicted statements* of a package are the statements of its labelled files that a
  finding of the family overlaps. Findings in files without labels of the family are not
  counted for precision (the single-annotator labels leave some malicious files unlabelled),
  but they do count as reading effort for the first-hit rank.
* ``code_*`` and ``metadata_*`` are separate families; a finding counts only for the family
  of its own indicator. Peer rule IDs (``bandit:B602``) are ``code`` findings.
* Indicator accuracy is over labelled (statement, indicator) pairs whose statement is
  predicted: *exact* when a finding on that statement has the indicator, *type* when one has
  an indicator of the same type.
* First-hit rank ("analyst effort"): findings are read in the order given (the caller sorts
  them most important first); each distinct statement read costs 1; the rank is the count
  up to and including the first labelled statement, ``None`` when none is reached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from triage.evaluation.metrics import DETECTED_VERDICTS, FAMILIES, family_of

StmtSpan = tuple[int, int]
"""(start_line, end_line) of one statement, 1-based, inclusive."""
StmtKey = tuple[str, int, int]
"""(file, start_line, end_line)."""


@dataclass(frozen=True)
class TruthStatement:
    """A labelled statement with every indicator labelled on it."""

    file: str
    start_line: int
    end_line: int
    indicators: tuple[str, ...]
    """Sorted taxonomy IDs labelled on this statement."""

    @property
    def key(self) -> StmtKey:
        """(file, start_line, end_line)."""
        return (self.file, self.start_line, self.end_line)


@dataclass(frozen=True)
class PackageTruth:
    """Ground truth of one package at statement level."""

    archive: str
    """Archive path relative to the corpus root (the package key)."""
    cluster: str
    """Near-duplicate cluster key."""
    malicious: bool
    """Package-level ground truth."""
    labelled: tuple[TruthStatement, ...] = ()
    """Labelled statements (empty for benign and unlabelled malicious packages)."""
    statements: Mapping[str, tuple[StmtSpan, ...]] = field(default_factory=dict)
    """Statement spans of each labelled file, sorted by start line."""
    unmapped_lines: int = 0
    """Labelled lines that no statement covers (blank, comment, decorator-only lines)."""


@dataclass(frozen=True)
class Predicted:
    """The part of a finding that scoring needs."""

    file: str
    start_line: int
    end_line: int
    indicator: str


@dataclass(frozen=True)
class PackageResult:
    """One system's output on one package."""

    archive: str
    verdict: str
    """Verdict label, or ``error`` when the analysis failed."""
    findings: tuple[Predicted, ...] = ()
    """Findings in reading order (most important first)."""


@dataclass(frozen=True)
class FamilyCounts:
    """Statement counts of one package for one family."""

    labelled: int
    predicted: int
    hits: int
    """Labelled statements that are predicted (true positives)."""
    pairs: int
    """Labelled (statement, indicator) pairs whose statement is predicted."""
    exact: int
    same_type: int
    first_rank: int | None
    """Statements read up to the first labelled one; ``None`` when never reached."""
    per_indicator: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)
    """indicator -> (labelled, predicted, hits) counting only findings of that indicator."""

    @property
    def precision(self) -> float:
        """hits / predicted; 0 when nothing is predicted (zero-division = 0)."""
        return self.hits / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """hits / labelled; 0 when nothing is labelled."""
        return self.hits / self.labelled if self.labelled else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 0 when both are 0."""
        return f1_score(self.precision, self.recall) or 0.0


def f1_score(precision: float | None, recall: float | None) -> float | None:
    """2PR/(P+R); 0 when either is 0 (even if the other is undefined), else ``None`` when
    either is undefined (labels but no predictions: recall 0, so F1 0)."""
    if precision == 0 or recall == 0:
        return 0.0
    if precision is None or recall is None:
        return None
    total = precision + recall
    return 0.0 if total == 0 else 2 * precision * recall / total


def map_lines(
    spans: Sequence[StmtSpan], lines: Iterable[int]
) -> tuple[tuple[StmtSpan, ...], tuple[int, ...]]:
    """Statements covering any of ``lines``, and the lines no statement covers.

    Returns:
        (covering statement spans sorted, uncovered lines sorted).
    """
    covering: set[StmtSpan] = set()
    uncovered: list[int] = []
    for line in sorted(set(lines)):
        found = [s for s in spans if s[0] <= line <= s[1]]
        covering.update(found)
        if not found:
            uncovered.append(line)
    return tuple(sorted(covering)), tuple(uncovered)


def overlapping(spans: Sequence[StmtSpan], start: int, end: int) -> tuple[StmtSpan, ...]:
    """Statement spans that share at least one line with ``start..end``."""
    return tuple(s for s in spans if s[0] <= end and start <= s[1])


def detected(result: PackageResult) -> bool:
    """True when the verdict flags the package (malicious or suspicious)."""
    return result.verdict in DETECTED_VERDICTS


def _read_keys(truth: PackageTruth, finding: Predicted) -> tuple[StmtKey, ...]:
    spans = truth.statements.get(finding.file)
    if spans is None:  # a file without labels: one unit of reading per finding span
        return ((finding.file, finding.start_line, finding.end_line),)
    hit = overlapping(spans, finding.start_line, finding.end_line)
    return tuple((finding.file, s, e) for s, e in hit)


def family_counts(
    truth: PackageTruth, result: PackageResult, family: str, type_of: Callable[[str], str]
) -> FamilyCounts:
    """Statement-level counts of one package for one family (rules in the module docstring)."""
    labelled: dict[StmtKey, tuple[str, ...]] = {}
    for statement in truth.labelled:
        own = tuple(i for i in statement.indicators if family_of(i) == family)
        if own:
            labelled[statement.key] = own
    files = {k[0] for k in labelled}
    predicted: dict[StmtKey, set[str]] = defaultdict(set)
    read: set[StmtKey] = set()
    first_rank: int | None = None
    for finding in result.findings:
        if family_of(finding.indicator) != family:
            continue
        for key in _read_keys(truth, finding):
            if key not in read:
                read.add(key)
                if first_rank is None and key in labelled:
                    first_rank = len(read)
            if key[0] in files:
                predicted[key].add(finding.indicator)
    hits = [k for k in labelled if k in predicted]
    pairs = exact = same_type = 0
    for key in hits:
        found = predicted[key]
        found_types = {type_of(i) for i in found}
        for indicator in labelled[key]:
            pairs += 1
            exact += indicator in found
            same_type += type_of(indicator) in found_types
    return FamilyCounts(
        labelled=len(labelled),
        predicted=len(predicted),
        hits=len(hits),
        pairs=pairs,
        exact=exact,
        same_type=same_type,
        first_rank=first_rank,
        per_indicator=_per_indicator(labelled, predicted),
    )


def _per_indicator(
    labelled: Mapping[StmtKey, tuple[str, ...]], predicted: Mapping[StmtKey, set[str]]
) -> dict[str, tuple[int, int, int]]:
    lab: dict[str, set[StmtKey]] = defaultdict(set)
    pred: dict[str, set[StmtKey]] = defaultdict(set)
    for key, indicators in labelled.items():
        for indicator in indicators:
            lab[indicator].add(key)
    for key, found in predicted.items():
        for indicator in found:
            pred[indicator].add(key)
    return {
        i: (len(lab[i]), len(pred[i]), len(lab[i] & pred[i]))
        for i in sorted(set(lab) | set(pred))
    }


def empty_counts() -> FamilyCounts:
    """Counts of a package with nothing labelled and nothing predicted."""
    return FamilyCounts(0, 0, 0, 0, 0, 0, None, {})


def score_package(
    truth: PackageTruth, result: PackageResult | None, type_of: Callable[[str], str]
) -> dict[str, FamilyCounts]:
    """Counts per family (``code``, ``metadata``); a missing result predicts nothing."""
    res = result or PackageResult(truth.archive, "error")
    return {family: family_counts(truth, res, family, type_of) for family in FAMILIES}

