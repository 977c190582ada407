"""Pure renderers of a :class:`~triage.evaluation.evaluate.Leaderboard`: Markdown and CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence

from triage.evaluation.aggregate import Estimate, FamilySummary, Metric
from triage.evaluation.evaluate import Leaderboard, SystemRow, most_labelled

CSV_COLUMNS = (
    "system", "kind", "version", "status", "done", "total", "errors",
    "code_precision", "code_precision_low", "code_precision_high",
    "code_recall", "code_recall_low", "code_recall_high",
    "code_f1", "code_f1_low", "code_f1_high",
    "code_precision_raw", "code_recall_raw", "code_f1_raw",
    "code_macro_precision", "code_macro_recall", "code_macro_f1",
    "code_indicator_exact", "code_indicator_type", "code_first_rank", "code_first_found",
    "metadata_precision", "metadata_recall", "metadata_f1", "metadata_indicator_exact",
    "detection_rate", "detection_rate_low", "detection_rate_high", "detection_rate_raw",
    "benign_fpr", "benign_fpr_low", "benign_fpr_high",
    "seconds_per_package", "seconds_median", "tokens_per_package", "cost_usd_per_package",
    "sample_packages", "rejected_citations",
)  # fmt: skip


def _v(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_estimate(est: Estimate, digits: int = 2) -> str:
    """``0.61 [0.52, 0.70]``; ``n/a`` when undefined; no interval when none was computed."""
    if est.value is None:
        return "n/a"
    if est.low is None or est.high is None:
        return f"{est.value:.{digits}f}"
    return f"{est.value:.{digits}f} [{est.low:.{digits}f}, {est.high:.{digits}f}]"


def _m(fam: FamilySummary | None, name: str) -> Metric | None:
    return None if fam is None else fam.metrics[name]


def _w(metric: Metric | None) -> str:
    return "-" if metric is None else fmt_estimate(metric.weighted)


def _seconds(row: SystemRow) -> str:
    return "-" if row.seconds_mean is None else f"{row.seconds_mean:.2f}"


def _headline_cells(row: SystemRow) -> str:
    """P, R, F1, detection, FPR, seconds, tokens and cost cells of one row."""
    s = row.scores
    code = s.code if s else None
    tokens = "-" if row.tokens_per_package is None else f"{row.tokens_per_package:.0f}"
    cost = "-" if row.cost_per_package is None else f"{row.cost_per_package:.4f}"
    return (f"{_w(_m(code, 'precision'))} | {_w(_m(code, 'recall'))} | {_w(_m(code, 'f1'))} |"
            f" {_w(s.detection_rate if s else None)} | {_w(s.benign_fpr if s else None)} |"
            f" {_seconds(row)} | {tokens} | {cost}")


def main_table(board: Leaderboard) -> str:
    """The headline table: code statements P/R/F1, detection, FPR, time, tokens, cost."""
    lines = [
        "| system | code P | code R | code F1 | detection rate | benign FPR | s/package |"
        " tokens/package | $/package | done | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in board.rows:
        lines.append(f"| {row.system} | {_headline_cells(row)} | {row.done}/{row.total} |"
                     f" {row.status} |")
    return "\n".join(lines) + "\n"


def sample_table(board: Leaderboard) -> str:
    """Systems run on a sample, each after static on the same packages (same columns as the
    headline table, plus LLM citations rejected by verification)."""
    lines = [
        "| system | packages | code P | code R | code F1 | detection rate | benign FPR |"
        " s/package | tokens/package | $/package | citations rejected | done | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in board.sample_rows:
        rejected = "-" if row.rejected is None else str(row.rejected)
        lines.append(f"| {row.system} | {row.sample} | {_headline_cells(row)} | {rejected} |"
                     f" {row.done}/{row.total} | {row.status} |")
    return "\n".join(lines) + "\n"


def detail_table(board: Leaderboard, family: str) -> str:
    """Micro and macro P/R/F1, raw variant, indicator accuracy and first-hit rank."""
    lines = [
        f"| system | {family} P | R | F1 | raw P / R / F1 | macro P / R / F1 |"
        " indicator exact | indicator type | first-hit rank | first hit found |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in board.rows:
        if row.scores is None:
            continue
        fam = row.scores.code if family == "code" else row.scores.metadata
        raw = " / ".join(_v(fam.metrics[k].raw.value, 2) for k in ("precision", "recall", "f1"))
        macro = " / ".join(
            _v(fam.metrics[k].weighted.value, 2)
            for k in ("macro_precision", "macro_recall", "macro_f1")
        )
        lines.append(
            f"| {row.system} | {_w(fam.metrics['precision'])} | {_w(fam.metrics['recall'])} |"
            f" {_w(fam.metrics['f1'])} | {raw} | {macro} |"
            f" {_w(fam.metrics['indicator_exact'])} | {_w(fam.metrics['indicator_type'])} |"
            f" {_w(fam.metrics['first_rank'])} | {_w(fam.metrics['first_found'])} |"
        )
    return "\n".join(lines) + "\n"


def indicator_table(board: Leaderboard, top: int = 25) -> str:
    """Per-indicator statement F1 (exact indicator), the most labelled indicators first."""
    scored = [r for r in board.rows if r.scores is not None]
    labelled = most_labelled(scored, top)
    head = "| indicator | labelled | " + " | ".join(r.system for r in scored) + " |"
    lines = [head, "|---|---|" + "---|" * len(scored)]
    for ind in labelled:
        cells = []
        for row in scored:
            assert row.scores is not None
            hit = [x for x in row.scores.per_indicator if x.indicator == ind]
            cells.append(_v(hit[0].f1, 2) if hit else "0.00")
        lines.append(f"| `{ind}` | {labelled[ind]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _csv_row(row: SystemRow) -> list[str]:
    s = row.scores

    def est(metric: Metric | None, part: str = "value", raw: bool = False) -> str:
        if metric is None:
            return ""
        e = metric.raw if raw else metric.weighted
        value = getattr(e, part)
        return "" if value is None else f"{value:.4f}"

    code = s.code if s else None
    meta = s.metadata if s else None
    cells: list[str] = [row.system, row.kind, row.version, row.status, str(row.done),
                        str(row.total), str(row.errors)]
    for name in ("precision", "recall", "f1"):
        cells += [est(_m(code, name)), est(_m(code, name), "low"), est(_m(code, name), "high")]
    cells += [est(_m(code, n), raw=True) for n in ("precision", "recall", "f1")]
    cells += [est(_m(code, n)) for n in ("macro_precision", "macro_recall", "macro_f1",
                                         "indicator_exact", "indicator_type", "first_rank",
                                         "first_found")]
    cells += [est(_m(meta, n)) for n in ("precision", "recall", "f1", "indicator_exact")]
    det = s.detection_rate if s else None
    fpr = s.benign_fpr if s else None
    cells += [est(det), est(det, "low"), est(det, "high"), est(det, raw=True)]
    cells += [est(fpr), est(fpr, "low"), est(fpr, "high")]
    cells += ["" if v is None else f"{v:.4f}" for v in (
        row.seconds_mean, row.seconds_median, row.tokens_per_package, row.cost_per_package)]
    cells += [str(row.sample) if row.sample else "", "" if row.rejected is None
              else str(row.rejected)]
    return cells


def render_csv(board: Leaderboard) -> str:
    """One CSV row per system with every headline number (weighted, CI bounds, raw)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in (*board.rows, *board.sample_rows):
        writer.writerow(_csv_row(row))
    return buf.getvalue()


def render_indicator_csv(board: Leaderboard) -> str:
    """indicator, system, labelled, predicted, precision, recall, f1 (cluster-weighted)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["indicator", "system", "labelled", "predicted", "precision", "recall", "f1"])
    for row in board.rows:
        for ind in row.scores.per_indicator if row.scores else ():
            writer.writerow([ind.indicator, row.system, ind.labelled, ind.predicted,
                             *("" if v is None else f"{v:.4f}"
                               for v in (ind.precision, ind.recall, ind.f1))])
    return buf.getvalue()


SYSTEM_NOTES = {
    "static": "static engine; detected = verdict malicious or suspicious",
    "llm": "static engine + LLM localisation (pipeline verdict); answers verified against"
           " the statement index",
    "bandit": "bandit on the unpacked files; detected = an issue of at least medium severity"
              " and medium confidence (`-ll -ii`); test IDs mapped to taxonomy IDs where one"
              " fits",
    "guarddog": "`guarddog pypi scan` on the unpacked files; detected = its risk label"
                " `high_risk` or `suspicious`; rules mapped to taxonomy IDs where one fits",
}

DEFINITIONS = (
    "A labelled line range maps to the statements of the file that cover it (compound"
    " statements span their header only); a finding hits when its span overlaps a labelled"
    " statement of the same file. P = labelled statements hit / statements the findings"
    " overlap in labelled files; R = labelled statements hit / labelled statements.",
    "`code_*` and `metadata_*` are scored separately: a finding counts only for the family of"
    " its indicator. Peer rules without a taxonomy match count for P/R but never for"
    " indicator accuracy.",
    "Cluster-weighted micro averages (each near-duplicate cluster counts once); *raw* weighs"
    " every package 1; *macro* averages per-package P/R/F1 (no prediction: P = 0).",
    "Indicator accuracy: share of hit (statement, labelled indicator) pairs where a finding on"
    " the statement has that indicator (*exact*) or one of the same type (*type*).",
    "First-hit rank: distinct statements an analyst reads, findings sorted by severity then"
    " confidence, up to the first labelled one (mean over packages where one is reached).",
    "Detection rate: malicious packages judged malicious/suspicious; benign FPR: the same on"
    " the pinned benign wheels. Failed analyses count as not detected and predict nothing.",
    "Seconds per package: analysis time in the worker (peers: unpacking + the tool's"
    " process), 2 workers on 2 cores; a local model analyses one package at a time while"
    " its llama.cpp server uses both cores.",
)


def systems_table(board: Leaderboard) -> str:
    """What each system is, its version, packages done, errors and time per package."""
    lines = ["| system | version | what | done | errors | s/package (mean / median) |",
             "|---|---|---|---|---|---|"]
    for row in (*board.rows, *(r for r in board.sample_rows if r.kind != "static")):
        what = SYSTEM_NOTES.get(row.system, SYSTEM_NOTES.get(row.kind, row.kind))
        if row.sample:
            what += f"; run on a sample of {row.sample} packages (`--llm-sample`)"
        secs = "-" if row.seconds_mean is None else (
            f"{row.seconds_mean:.2f} / {row.seconds_median or 0:.2f}")
        lines.append(f"| {row.system} | {row.version or '-'} | {what} | {row.done}/{row.total}"
                     f" | {row.errors} | {secs} |")
    return "\n".join(lines) + "\n"


def _not_run_notes(board: Leaderboard) -> list[str]:
    out = []
    for row in (*board.rows, *board.sample_rows):
        if row.scores is None and row.kind == "llm":
            out.append(
                f"`{row.system}` has no numbers: {row.status}. Nothing is estimated in its"
                " place; start an OpenAI-compatible server and pass `--api-base URL` (or use"
                " a hosted model string with its API key set) and rerun the same command:"
                " finished systems are reused."
            )
    return out


def render_markdown(board: Leaderboard, images: Sequence[tuple[str, str]] = (),
                    command: str = "", title: str = "Evaluation results") -> str:
    """The results page: setup, headline table, family details, indicators, plots, notes."""
    lines = [f"# {title}", ""]
    if command:
        lines += ["Regenerate with (resumes `eval/runs/`; `triage score RUN --results eval`"
                  " re-scores offline):", "", "```", command, "```", ""]
    lines += [
        f"Dataset `{board.dataset}`: {board.packages} packages ({board.malicious} malicious in"
        f" {board.clusters - board.benign} clusters, {board.labelled} with statement labels;"
        f" {board.benign} benign wheels). Brackets: 95% cluster-bootstrap intervals"
        f" ({board.resamples} resamples, seed {board.seed}).",
        "",
        "## Leaderboard (code statements, cluster-weighted)",
        "",
        main_table(board),
    ]
    if board.sample_rows:
        lines += [
            "## LLM configurations on a sample (code statements, cluster-weighted)",
            "",
            "Too slow for the whole dataset here, so run on a fixed sample (`--llm-sample`:"
            " one archive of each of the first labelled near-duplicate clusters in key order,"
            " and the first benign wheels by name), each row after static on the very same"
            " packages. Not comparable with the headline table's numbers; compare within a"
            " pair.",
            "",
            sample_table(board),
        ]
    lines += [
        "## Systems",
        "",
        systems_table(board),
        "## Code statements in detail",
        "",
        detail_table(board, "code"),
        "## Metadata statements",
        "",
        detail_table(board, "metadata"),
        "## Per-indicator statement F1 (exact indicator, cluster-weighted)",
        "",
        indicator_table(board),
    ]
    for caption, path in images:
        lines += [f"![{caption}]({path})", ""]
    lines += ["## Definitions", ""] + [f"- {d}" for d in DEFINITIONS] + [""]
    notes = [*_not_run_notes(board), *board.notes]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def to_plain(value: object) -> object:
    """Dataclass/mapping/tuple tree -> JSON-ready data (for ``triage score --json``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
