"""Pure scoring of findings against statement-level labels.

Everything here is a pure function of its arguments: no files, no corpus, no taxonomy.

Conventions (documented once, used everywhere):

* ``code_*`` and ``metadata_*`` are scored separately ("families"); a finding only counts
  for the family of its own indicator, so a code finding spanning ``setup(...)`` does not
  cover metadata labels.
* Lines that are blank or comment-only in the source are excluded from every line count.
  The caller supplies, per labelled file, the set of code lines (:func:`code_lines`); a file
  missing from that mapping has every line counted.
* A ratio with a zero denominator is undefined: :attr:`Ratio.value` is ``None`` (recall with
  no labelled lines, precision with no predicted lines). An archive with labels and no
  findings therefore has recall 0 and adds nothing to the precision denominator.
* Cluster weighting: each metric is computed over the archives that contribute to it
  (package recall: malicious archives; a family's line metrics: archives with at least one
  labelled code line of that family). Each such archive gets weight
  ``1 / (number of contributing archives of its cluster)``, so every near-duplicate cluster
  counts once; counts are multiplied by the weight and summed (micro-average of weighted
  counts). The unweighted (raw) variant is returned beside it.
* Indicator accuracy counts labelled (file, line, indicator) triples whose line is covered
  by a finding of the family: exact when a covering finding has that indicator, type-level
  when a covering finding's indicator has the same type (``type_of``).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from triage.evaluation.corpus import Label

CODE = "code"
METADATA = "metadata"
FAMILIES = (CODE, METADATA)
DETECTED_VERDICTS = frozenset({"malicious", "suspicious"})
NO_VERDICT = "error"
"""Verdict label recorded for archives whose analysis crashed or timed out."""

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_NON_CODE_TOKENS = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
        tokenize.ENCODING,
    }
)

Line = tuple[str, int]
"""(file, 1-based line)."""


def family_of(indicator: str) -> str:
    """``metadata`` for ``metadata_*`` IDs, else ``code``."""
    return METADATA if indicator.startswith("metadata_") else CODE


def code_lines(text: str) -> frozenset[int]:
    """1-based lines of ``text`` holding code: not blank, not comment-only.

    Lines inside a multi-line string count as code. Uses the tokenizer; if the text does
    not tokenize (broken or odd source), falls back to "not blank and not starting with #".
    Lines are split on ``\\r\\n``, ``\\r`` and ``\\n`` only, as the ``ast`` module counts them.
    """
    normalised = _NEWLINE_RE.sub("\n", text)
    found: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(normalised).readline):
            if tok.type not in _NON_CODE_TOKENS:
                found.update(range(tok.start[0], tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        return frozenset(
            number
            for number, line in enumerate(normalised.split("\n"), 1)
            if line.strip() and not line.lstrip().startswith("#")
        )
    return frozenset(found)


@dataclass(frozen=True)
class Span:
    """The part of a finding that scoring needs."""

    file: str
    start_line: int
    end_line: int
    indicator: str


@dataclass(frozen=True)
class ArchiveCase:
    """One analysed archive with its findings and its ground truth."""

    archive: str
    cluster: str
    verdict: str
    """Verdict label, or :data:`NO_VERDICT` when the analysis failed."""
    findings: tuple[Span, ...]
    labels: tuple[Label, ...]
    code_lines: Mapping[str, frozenset[int]] = field(default_factory=dict)
    """Code lines per labelled file; files missing here have every line counted."""
    malicious: bool = True
    """Ground truth at package level."""


@dataclass(frozen=True)
class Ratio:
    """A ratio kept as its parts, so undefined (0/0) stays visible."""

    numerator: float
    denominator: float

    @property
    def value(self) -> float | None:
        """numerator / denominator, or ``None`` when the denominator is 0."""
        return None if self.denominator == 0 else self.numerator / self.denominator


@dataclass(frozen=True)
class Measure:
    """A metric with cluster weighting and without."""

    weighted: Ratio
    raw: Ratio


@dataclass(frozen=True)
class ArchiveLineScore:
    """Line-level result of one archive for one family."""

    archive: str
    cluster: str
    family: str
    labelled: int
    """Labelled code lines."""
    covered: int
    """Labelled code lines inside a finding span (equals true positives)."""
    predicted: int
    """Code lines inside finding spans, in files labelled for this family."""
    pairs: int
    """Labelled (file, line, indicator) triples whose line is covered."""
    exact: int
    """Covered triples with a covering finding of exactly the labelled indicator."""
    same_type: int
    """Covered triples with a covering finding of the same type."""
    missed_lines: tuple[Line, ...]
    """Labelled code lines no finding covers, sorted."""
    missed_indicators: tuple[str, ...]
    """Labelled indicators not reported exactly on at least one of their lines, sorted."""

    @property
    def recall(self) -> float | None:
        """covered / labelled, ``None`` when nothing is labelled."""
        return Ratio(self.covered, self.labelled).value


@dataclass(frozen=True)
class FamilyScores:
    """Line and indicator metrics of one family."""

    family: str
    archives: int
    """Archives with at least one labelled code line of this family."""
    clusters: int
    line_recall: Measure
    line_precision: Measure
    indicator_exact: Measure
    indicator_type: Measure


@dataclass(frozen=True)
class Scores:
    """All metrics of one evaluated set."""

    archives: int
    clusters: int
    verdicts: tuple[tuple[str, int], ...]
    """(verdict label, count), most common first."""
    package_recall: Measure
    """Share of malicious archives judged malicious or suspicious."""
    code: FamilyScores
    metadata: FamilyScores


def _is_code(case: ArchiveCase, file: str, line: int) -> bool:
    lines = case.code_lines.get(file)
    return lines is None or line in lines


def archive_line_score(
    case: ArchiveCase, family: str, type_of: Callable[[str], str]
) -> ArchiveLineScore:
    """Score one archive for one family (see the module docstring for the rules)."""
    labelled: dict[Line, set[str]] = defaultdict(set)
    for label in case.labels:
        if family_of(label.indicator) != family:
            continue
        for line in label.lines:
            if _is_code(case, label.file, line):
                labelled[(label.file, line)].add(label.indicator)
    files = {label.file for label in case.labels if family_of(label.indicator) == family}
    predicted: dict[Line, set[str]] = defaultdict(set)
    for span in case.findings:
        if family_of(span.indicator) != family or span.file not in files:
            continue
        for line in range(span.start_line, span.end_line + 1):
            if _is_code(case, span.file, line):
                predicted[(span.file, line)].add(span.indicator)
    covered = [key for key in labelled if key in predicted]
    pairs = exact = same_type = 0
    missed_indicators: set[str] = set()
    for key, indicators in labelled.items():
        found = predicted.get(key, set())
        found_types = {type_of(i) for i in found}
        for indicator in indicators:
            if indicator not in found:
                missed_indicators.add(indicator)
            if not found:
                continue
            pairs += 1
            exact += indicator in found
            same_type += type_of(indicator) in found_types
    return ArchiveLineScore(
        archive=case.archive,
        cluster=case.cluster,
        family=family,
        labelled=len(labelled),
        covered=len(covered),
        predicted=len(predicted),
        pairs=pairs,
        exact=exact,
        same_type=same_type,
        missed_lines=tuple(sorted(k for k in labelled if k not in predicted)),
        missed_indicators=tuple(sorted(missed_indicators)),
    )


def cluster_weights(pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Weight per archive from ``(archive, cluster)`` pairs: 1 / archives in its cluster."""
    items = list(pairs)
    sizes = Counter(cluster for _, cluster in items)
    return {archive: 1.0 / sizes[cluster] for archive, cluster in items}


def _measure(rows: list[tuple[float, float, float]]) -> Measure:
    """Measure from (weight, numerator, denominator) rows."""
    return Measure(
        weighted=Ratio(sum(w * n for w, n, _ in rows), sum(w * d for w, _, d in rows)),
        raw=Ratio(sum(n for _, n, _ in rows), sum(d for _, _, d in rows)),
    )


def package_recall(cases: Iterable[ArchiveCase]) -> Measure:
    """Share of malicious archives whose verdict is malicious or suspicious."""
    malicious = [c for c in cases if c.malicious]
    weights = cluster_weights((c.archive, c.cluster) for c in malicious)
    return _measure(
        [(weights[c.archive], float(c.verdict in DETECTED_VERDICTS), 1.0) for c in malicious]
    )


def family_scores(
    cases: Iterable[ArchiveCase], family: str, type_of: Callable[[str], str]
) -> FamilyScores:
    """Line recall/precision and indicator accuracy of one family over ``cases``."""
    scored = [(c, archive_line_score(c, family, type_of)) for c in cases]
    scored = [(c, s) for c, s in scored if s.labelled > 0]
    weights = cluster_weights((c.archive, c.cluster) for c, _ in scored)
    rows = [(weights[c.archive], s) for c, s in scored]
    return FamilyScores(
        family=family,
        archives=len(scored),
        clusters=len({c.cluster for c, _ in scored}),
        line_recall=_measure([(w, s.covered, s.labelled) for w, s in rows]),
        line_precision=_measure([(w, s.covered, s.predicted) for w, s in rows]),
        indicator_exact=_measure([(w, s.exact, s.pairs) for w, s in rows]),
        indicator_type=_measure([(w, s.same_type, s.pairs) for w, s in rows]),
    )


def score(cases: Iterable[ArchiveCase], type_of: Callable[[str], str]) -> Scores:
    """Every metric over ``cases``.

    Args:
        cases: the evaluated archives (each archive once).
        type_of: indicator ID -> type ID, for type-level indicator accuracy.
    """
    case_list = list(cases)
    names = [c.archive for c in case_list]
    if len(set(names)) != len(names):
        raise ValueError("an archive appears more than once in the evaluated set")
    return Scores(
        archives=len(case_list),
        clusters=len({c.cluster for c in case_list}),
        verdicts=tuple(Counter(c.verdict for c in case_list).most_common()),
        package_recall=package_recall(case_list),
        code=family_scores(case_list, CODE, type_of),
        metadata=family_scores(case_list, METADATA, type_of),
    )


def worst_recall(
    cases: Iterable[ArchiveCase], family: str, type_of: Callable[[str], str], n: int = 15
) -> tuple[ArchiveLineScore, ...]:
    """The ``n`` labelled archives with the lowest line recall (most labelled lines first)."""
    scores = [archive_line_score(c, family, type_of) for c in cases]
    scores = [s for s in scores if s.labelled > 0]
    scores.sort(key=lambda s: (s.covered / s.labelled, -s.labelled, s.archive))
    return tuple(scores[:n])
