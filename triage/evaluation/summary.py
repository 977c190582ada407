"""Pure Markdown rendering of evaluation scores."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from triage.evaluation.metrics import ArchiveLineScore, FamilyScores, Measure, Ratio, Scores
from triage.evaluation.runner import OK, RunRecord
from triage.render.defang import defang

MAX_LISTED_LINES = 12


def fmt_ratio(ratio: Ratio) -> str:
    """``0.667 (2/3)``; ``n/a (0/0)`` when undefined; weighted parts with 2 decimals."""
    value = ratio.value
    parts = f"{_num(ratio.numerator)}/{_num(ratio.denominator)}"
    return f"n/a ({parts})" if value is None else f"{value:.3f} ({parts})"


def scores_to_json(scores: Scores) -> dict[str, Any]:
    """JSON-ready scores; every ratio as ``{numerator, denominator, value}``."""

    def convert(value: Any) -> Any:
        if isinstance(value, Ratio):
            return {
                "numerator": value.numerator,
                "denominator": value.denominator,
                "value": value.value,
            }
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple):
            return [convert(v) for v in value]
        return value

    return convert(scores)


def _num(x: float) -> str:
    return str(round(x)) if abs(x - round(x)) < 1e-9 else f"{x:.2f}"


def _row(name: str, measure: Measure) -> str:
    return f"| {name} | {fmt_ratio(measure.weighted)} | {fmt_ratio(measure.raw)} |"


def _family_rows(fam: FamilyScores) -> list[str]:
    return [
        _row(f"{fam.family} line recall", fam.line_recall),
        _row(f"{fam.family} line precision", fam.line_precision),
        _row(f"{fam.family} indicator accuracy (exact)", fam.indicator_exact),
        _row(f"{fam.family} indicator accuracy (type)", fam.indicator_type),
    ]


def _missed(score: ArchiveLineScore) -> str:
    by_file: dict[str, list[int]] = {}
    for file, line in score.missed_lines:
        by_file.setdefault(file, []).append(line)
    parts = []
    for file, numbers in by_file.items():
        shown = ", ".join(str(n) for n in numbers[:MAX_LISTED_LINES])
        extra = len(numbers) - MAX_LISTED_LINES
        more = f" (+{extra} more)" if extra > 0 else ""
        parts.append(f"{file}: {shown}{more}")
    return "; ".join(parts) or "-"


def _worst_table(table: Sequence[ArchiveLineScore]) -> list[str]:
    if not table:
        return []
    lines = ["", f"## Worst {table[0].family} line recall ({len(table)} archives)", ""]
    lines += ["| archive | recall | missed lines | missed indicators |", "|---|---|---|---|"]
    for s in table:
        lines.append(
            f"| `{s.archive}` | {s.covered}/{s.labelled} | {_missed(s)} |"
            f" {', '.join(s.missed_indicators) or '-'} |"
        )
    return lines


def render_summary(
    scores: Scores,
    records: Sequence[RunRecord],
    worst: Sequence[Sequence[ArchiveLineScore]] = (),
    wall_s: float | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Markdown summary of one scored run.

    Args:
        scores: the metrics.
        records: the run records (for errors and per-archive times).
        worst: tables of lowest-recall labelled archives (one per family) to list.
        wall_s: total wall time of the run, when it was just run (not re-scored).
        notes: lines to show under the header (e.g. taxonomy fallback).
    """
    times = [r.seconds for r in records if r.status == OK]
    verdicts = ", ".join(f"{label}: {n}" for label, n in scores.verdicts) or "none"
    lines = ["# Dev corpus, static engine", ""]
    lines += [f"> {note}" for note in notes]
    lines += [
        f"- archives: {scores.archives} in {scores.clusters} clusters",
        f"- verdicts: {verdicts}",
        f"- code-labelled archives: {scores.code.archives} in {scores.code.clusters} clusters;"
        f" metadata-labelled: {scores.metadata.archives} in {scores.metadata.clusters} clusters",
    ]
    if wall_s is not None:
        lines.append(f"- total wall time: {wall_s:.1f} s")
    if times:
        lines.append(
            f"- per-archive analysis time: median {statistics.median(times):.3f} s,"
            f" max {max(times):.3f} s"
        )
    lines += [
        "",
        "| metric | cluster-weighted | raw |",
        "|---|---|---|",
        _row("package recall", scores.package_recall),
        *_family_rows(scores.code),
        *_family_rows(scores.metadata),
        "",
    ]
    errors = [r for r in records if r.status != OK]
    lines.append(f"## Errors ({len(errors)})")
    lines.append("")
    lines += [f"- `{r.archive}`: {r.status}: {defang(r.error)}" for r in errors] or ["none"]
    for table in worst:
        lines += _worst_table(table)
    return "\n".join(lines) + "\n"
