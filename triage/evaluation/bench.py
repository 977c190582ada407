"""Run several systems over one dataset into a run directory, resumably.

Each package of each system runs in its own forked worker with a timeout
(:func:`triage.evaluation.runner.run_archives`); its record is stored the moment it
finishes. A package whose analysis raises (an LLM call that fails, a peer tool that
crashes) gets an ``error`` record with the reason; the run goes on. Rerunning the same
command on the same run directory skips every package that already has a record.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from triage.evaluation.datasets import Dataset, DatasetSpec
from triage.evaluation.rundir import RunDir
from triage.evaluation.runner import ERROR, OK, RunRecord, run_archives
from triage.evaluation.stmt_metrics import PackageTruth
from triage.evaluation.systems import LLM, System
from triage.evaluation.truth import build_truths, files_digest

Echo = Callable[[str], None]


@dataclass(frozen=True)
class SystemRun:
    """What one system did in one bench invocation."""

    system: str
    ran: int
    """Packages analysed now."""
    reused: int
    """Packages skipped because a record existed."""
    failed: int
    """Packages analysed now without a report (error or timeout)."""
    skip_reason: str = ""


def truth_digest(spec: DatasetSpec, archives: Sequence[str]) -> str:
    """Digest of what the truth depends on: label, cluster and alias files and the packages."""
    paths = [Path(p) if p else None for p in (spec.labels, spec.clusters, spec.aliases)]
    listing = hashlib.sha256("\n".join(sorted(archives)).encode()).hexdigest()[:16]
    return f"{files_digest(paths)}:{listing}"


def ensure_truth(run: RunDir, dataset: Dataset, force: bool = False) -> tuple[PackageTruth, ...]:
    """The statement-level truth of the dataset, from the run's cache or built and cached."""
    digest = truth_digest(dataset.spec, [p.archive for p in dataset.packages])
    cached = None if force else run.read_truth(digest)
    if cached is not None:
        return cached
    truths = build_truths(((p.archive, p.cluster, p.malicious) for p in dataset.packages),
                          dataset.labels, dataset.read_sources)
    run.write_truth(digest, truths)
    return truths


def llm_sample(truths: Sequence[PackageTruth], malicious: int,
               benign: int) -> tuple[str, ...]:
    """A fixed sample for slow systems: one archive (the first by name) of each of the first
    ``malicious`` near-duplicate clusters with statement labels, clusters in key order, then
    the first ``benign`` benign archives by name. 0 takes none of that stratum."""
    first: dict[str, str] = {}
    for t in sorted(truths, key=lambda t: t.archive):
        if t.malicious and t.labelled and t.cluster not in first:
            first[t.cluster] = t.archive
    picked = [first[c] for c in sorted(first)][:malicious]
    picked += sorted(t.archive for t in truths if not t.malicious)[:benign]
    return tuple(picked)


def _config(run: RunDir, dataset: Dataset, systems: Sequence[System], jobs: int) -> None:
    from triage import __version__

    old = run.read_config()
    if old.get("dataset") and old["dataset"] != dataset.spec.to_json():
        raise ValueError(f"{run.root} holds a run of another dataset; use a new run directory")
    entries = dict(old.get("systems", {}))
    for s in systems:
        entries[s.name] = {"kind": s.kind, "version": s.version, "timeout_s": s.timeout_s,
                           "skip_reason": s.skip_reason,
                           "subset": list(s.subset) if s.subset is not None else None}
        if s.kind == LLM and s.options is not None:
            entries[s.name]["llm"] = {
                "max_tokens_per_package": s.options.max_tokens_per_package,
                "review_pass": s.options.review_pass}
    run.write_config({
        "created": old.get("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": dataset.spec.to_json(),
        "dataset_notes": list(dataset.notes),
        "systems": entries,
        "jobs": jobs,
        "triage_version": __version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
    })


def _items(run: RunDir, system: str, dataset: Dataset,
           todo: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    for archive in todo:
        try:
            data = dataset.read(archive)
        except (OSError, KeyError, RuntimeError) as exc:
            run.save_record(system, RunRecord(archive, ERROR, 0.0, None,
                                              f"cannot read archive: {exc}"))
            continue
        yield archive, data


def run_system(run: RunDir, dataset: Dataset, system: System, jobs: int,
               retry_errors: bool, echo: Echo) -> SystemRun:
    """Run one system over every package that has no record yet."""
    if system.analyse is None:
        run.log("skip", system=system.name, reason=system.skip_reason)
        echo(f"{system.name}: not run: {system.skip_reason}")
        return SystemRun(system.name, 0, 0, 0, system.skip_reason)
    archives = [p.archive for p in dataset.packages]
    if system.subset is not None:
        wanted = set(system.subset)
        archives = [a for a in archives if a in wanted]
    todo = [a for a in archives if not run.is_done(system.name, a, retry_errors)]
    reused = len(archives) - len(todo)
    echo(f"{system.name}: {reused} done before, {len(todo)} to run")
    run.log("start", system=system.name, todo=len(todo), reused=reused)
    jobs = min(jobs, system.max_jobs) if system.max_jobs else jobs
    failed = ran = 0
    try:
        if todo and system.prepare is not None:
            system.prepare()  # load what workers need before they fork
        for record in run_archives(_items(run, system.name, dataset, todo), system.analyse,
                                   jobs=jobs, timeout_s=system.timeout_s):
            run.save_record(system.name, record)
            ran += 1
            failed += record.status != OK
            run.log("done", system=system.name, archive=record.archive, status=record.status,
                    seconds=round(record.seconds, 3), error=record.error[:300])
            echo(f"[{system.name} {reused + ran}/{len(archives)}] {record.status:7}"
                 f" {record.seconds:6.2f}s {record.archive}")
    finally:
        if todo and system.cleanup is not None:
            system.cleanup()
    run.log("end", system=system.name, ran=ran, failed=failed)
    return SystemRun(system.name, ran, reused, failed)


def run_bench(run: RunDir, dataset: Dataset, systems: Sequence[System], jobs: int = 2,
              retry_errors: bool = False, echo: Echo | None = None,
              sample: tuple[int, int] | None = None) -> tuple[SystemRun, ...]:
    """Run every system over the dataset into ``run`` (resuming), then cache the truth.

    ``sample`` (malicious clusters, benign wheels) restricts LLM systems to
    :func:`llm_sample`; they are then scored on that sample, next to static on the same
    packages.

    Raises:
        ValueError: ``run`` already holds a run of another dataset.
    """
    say = echo or (lambda text: print(text, file=sys.stderr, flush=True))
    truths = ensure_truth(run, dataset)
    if sample is not None:
        subset = llm_sample(truths, *sample)
        systems = [replace(s, subset=subset) if s.kind == LLM else s for s in systems]
    _config(run, dataset, systems, jobs)
    run.write_packages(dataset.packages)
    return tuple(run_system(run, dataset, s, jobs, retry_errors, say) for s in systems)
