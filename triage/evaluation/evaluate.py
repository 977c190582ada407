"""Score a saved run directory offline: records + cached truth -> leaderboard rows.

Nothing is analysed and no model is called: the reports stored per package are read back,
their findings put in reading order and scored against the statement-level truth cached in
the run (rebuilt from the dataset only when asked, or when the cache is missing).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from triage.evaluation.aggregate import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    SystemScores,
    bootstrap_plan,
    score_system,
)
from triage.evaluation.rundir import RunDir
from triage.evaluation.runner import OK, RunRecord
from triage.evaluation.scoring import taxonomy_type_of, verdict_of
from triage.evaluation.stmt_metrics import PackageResult, PackageTruth, Predicted

_SEVERITY = {"critical": 3, "high": 2, "medium": 1, "low": 0}


@dataclass(frozen=True)
class SystemRow:
    """One system of a leaderboard."""

    system: str
    kind: str
    version: str
    status: str
    """``ran``, ``partial``, or ``not run here: <reason>``."""
    done: int
    """Packages with a record."""
    total: int
    errors: int
    """Records without a report (analysis error or timeout)."""
    scores: SystemScores | None
    """``None`` when the system has no record at all."""
    seconds_mean: float | None = None
    """Mean analysis seconds per package (successful packages)."""
    seconds_median: float | None = None
    tokens_per_package: float | None = None
    """Mean prompt + completion tokens per package (LLM systems)."""
    cost_per_package: float | None = None
    """Mean USD per package (LLM systems)."""
    sample: int = 0
    """Packages of the sample this row is scored on (0: the whole dataset)."""
    rejected: int | None = None
    """LLM citations rejected by verification, over all packages (LLM systems)."""


@dataclass(frozen=True)
class Leaderboard:
    """Every system of one run, scored on identical packages and resamples."""

    run: str
    dataset: str
    packages: int
    malicious: int
    benign: int
    clusters: int
    labelled: int
    """Malicious packages with at least one labelled statement."""
    rows: tuple[SystemRow, ...]
    resamples: int
    seed: int
    notes: tuple[str, ...] = ()
    sample_rows: tuple[SystemRow, ...] = ()
    """Systems run on a sample (``--llm-sample``), each preceded by static on the same
    packages; scored on that sample only."""


def reading_order(report: Mapping[str, Any]) -> tuple[Predicted, ...]:
    """Findings of a saved report, most important first (severity, confidence, position)."""
    findings = list(enumerate(report.get("findings") or ()))
    findings.sort(key=lambda item: (-_SEVERITY.get(str(item[1].get("severity")), 0),
                                    -float(item[1].get("confidence") or 0), item[0]))
    return tuple(
        Predicted(str(f["file"]), int(f["start_line"]), int(f["end_line"]), str(f["indicator"]))
        for _, f in findings
    )


def package_result(record: RunRecord) -> PackageResult:
    """A record as the scorer sees it (no report: verdict ``error``, no findings)."""
    findings = reading_order(record.report) if record.report else ()
    return PackageResult(record.archive, verdict_of(record), findings)


def _usage(records: Sequence[RunRecord]) -> tuple[float | None, float | None]:
    tokens: list[float] = []
    costs: list[float] = []
    for r in records:
        llm = (r.report or {}).get("llm") if r.status == OK else None
        if llm:
            tokens.append(float(llm.get("prompt_tokens", 0)) + float(
                llm.get("completion_tokens", 0)))
            costs.append(float(llm.get("cost_usd", 0.0)))
    if not tokens:
        return None, None
    return statistics.fmean(tokens), statistics.fmean(costs)


def system_row(name: str, entry: Mapping[str, Any], records: Mapping[str, RunRecord],
               truths: Sequence[PackageTruth], plan: Any, type_of: Any) -> SystemRow:
    """Score one system's records (only records of the dataset's packages count)."""
    keys = {t.archive for t in truths}
    own = [r for a, r in records.items() if a in keys]
    kind, version = str(entry.get("kind", "")), str(entry.get("version", ""))
    if not own:
        reason = str(entry.get("skip_reason") or "no records")
        return SystemRow(name, kind, version, f"not run here: {reason}", 0, len(truths), 0,
                         None)
    results = {r.archive: package_result(r) for r in own}
    seconds = [r.seconds for r in own if r.status == OK]
    tokens, cost = _usage(own)
    rejected = (sum(len((r.report or {}).get("rejected") or ()) for r in own)
                if kind == "llm" else None)
    return SystemRow(
        system=name, kind=kind, version=version,
        status="ran" if len(own) == len(truths) else "partial", done=len(own),
        total=len(truths), errors=sum(r.status != OK for r in own),
        scores=score_system(name, truths, results, type_of, plan),
        seconds_mean=statistics.fmean(seconds) if seconds else None,
        seconds_median=statistics.median(seconds) if seconds else None,
        tokens_per_package=tokens, cost_per_package=cost, rejected=rejected,
    )


def most_labelled(rows: Sequence[SystemRow], top: int) -> dict[str, int]:
    """The ``top`` indicators with the most labelled statements (as any scored row counts
    them), most first, then by ID; values are those counts."""
    labelled: dict[str, int] = {}
    for row in rows:
        for score in row.scores.per_indicator if row.scores else ():
            if score.labelled:
                labelled[score.indicator] = max(labelled.get(score.indicator, 0), score.labelled)
    order = sorted(labelled, key=lambda i: (-labelled[i], i))[:top]
    return {i: labelled[i] for i in order}


def load_truth(run: RunDir, refresh: bool = False) -> tuple[tuple[PackageTruth, ...], str]:
    """The run's cached truth, or truth rebuilt from its dataset (and a note saying so)."""
    cached = None if refresh else run.read_truth()
    if cached is not None:
        return cached, ""
    from triage.evaluation.bench import ensure_truth
    from triage.evaluation.datasets import DatasetSpec, load_dataset

    spec = DatasetSpec.from_json(run.read_config()["dataset"])
    dataset = load_dataset(spec, download=False)
    return ensure_truth(run, dataset, force=True), "ground truth rebuilt from the dataset"


def score_run(root: Path, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
              refresh_truth: bool = False) -> Leaderboard:
    """Score every system of a saved run.

    Raises:
        FileNotFoundError: ``root`` is not a run directory.
    """
    run = RunDir(root)
    config = run.read_config()
    if not config:
        raise FileNotFoundError(f"no run at {root} (config.json missing)")
    truths, note = load_truth(run, refresh_truth)
    type_of, tax_note = taxonomy_type_of()
    plan = bootstrap_plan(truths, resamples, seed)
    systems: dict[str, Any] = config.get("systems", {})
    rows = tuple(
        system_row(name, entry, run.load_records(name), truths, plan, type_of)
        for name, entry in systems.items() if entry.get("subset") is None
    )
    sample_rows: list[SystemRow] = []
    for name, entry in systems.items():
        if entry.get("subset") is None:
            continue
        keep = set(entry["subset"])
        sub = tuple(t for t in truths if t.archive in keep)
        sub_plan = bootstrap_plan(sub, resamples, seed)
        if "static" in systems and systems["static"].get("subset") is None:
            row = system_row("static", systems["static"], run.load_records("static"), sub,
                             sub_plan, type_of)
            sample_rows.append(replace(row, system=f"static (sample of {name})",
                                       sample=len(sub)))
        row = system_row(name, entry, run.load_records(name), sub, sub_plan, type_of)
        sample_rows.append(replace(row, sample=len(sub)))
    notes = [n for n in (note, tax_note) if n] + list(config.get("dataset_notes", ()))
    return Leaderboard(
        run=str(root), dataset=str(config["dataset"].get("name", "")),
        packages=len(truths), malicious=sum(t.malicious for t in truths),
        benign=sum(not t.malicious for t in truths), clusters=len({t.cluster for t in truths}),
        labelled=sum(bool(t.labelled) for t in truths), rows=rows, resamples=resamples,
        seed=seed, notes=tuple(notes), sample_rows=tuple(sample_rows),
    )
