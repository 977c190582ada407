"""Time offline scoring: 1,000 saved package reports must score in under 10 s.

Usage (from the repository root)::

    python benchmarks/bench_score.py [--packages 1000] [--findings 20] [--run eval/runs/dev]

Builds a synthetic run directory in a temp dir (1,000 packages in 300 clusters, 80%
malicious with statement labels, 20 findings per report, 200 statements per labelled file),
then times :func:`triage.evaluation.evaluate.score_run` with 1,000 bootstrap resamples:
reading every record, putting findings in reading order, matching them to statements and
bootstrapping the intervals. With ``--run``, also times re-scoring that saved run. Exits 1
when the synthetic case misses the target.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from triage.evaluation.datasets import Package
from triage.evaluation.evaluate import score_run
from triage.evaluation.rundir import RunDir
from triage.evaluation.runner import OK, RunRecord
from triage.evaluation.stmt_metrics import PackageTruth, TruthStatement

TARGET_S = 10.0
INDICATORS = ("code_execution_shell_command", "code_exfiltration_data",
              "code_execution_install_hook_override", "metadata_description_anomaly")


def _finding(file: str, line: int, indicator: str, rng: random.Random) -> dict[str, object]:
    return {"file": file, "start_line": line, "end_line": line + rng.randint(0, 2),
            "code": "x", "indicator": indicator, "type": "t", "phase": "install",
            "severity": rng.choice(("low", "medium", "high", "critical")),
            "confidence": round(rng.random(), 2), "source": "static", "justification": "j",
            "statement_id": f"{file}:{line}:0", "origin": None}


def build_run(root: Path, packages: int, findings: int, seed: int = 1) -> None:
    """A synthetic run directory with one system and ``packages`` records."""
    rng = random.Random(seed)
    run = RunDir(root)
    spans = tuple((n, n) for n in range(1, 201))
    truths, pkgs = [], []
    for i in range(packages):
        archive, cluster, malicious = f"p{i}/1/p{i}-1.tar.gz", f"c{i % 300}", i % 5 != 0
        file = f"p{i}-1/setup.py"
        labelled = tuple(
            TruthStatement(file, n, n, (rng.choice(INDICATORS),))
            for n in sorted(rng.sample(range(1, 201), 8))
        ) if malicious else ()
        truths.append(PackageTruth(archive, cluster, malicious, labelled,
                                   {file: spans} if malicious else {}))
        pkgs.append(Package(archive, cluster, malicious))
        report = {"verdict": {"label": rng.choice(("malicious", "benign")), "score": 50},
                  "findings": [_finding(file, rng.randint(1, 198), rng.choice(INDICATORS), rng)
                               for _ in range(findings)]}
        run.save_record("static", RunRecord(archive, OK, 0.1, report))
    run.write_packages(pkgs)
    run.write_truth("synthetic", truths)
    run.write_config({"dataset": {"name": "synthetic"},
                      "systems": {"static": {"kind": "static", "version": "x"}}})


def _time(root: Path) -> tuple[float, int]:
    started = time.perf_counter()
    board = score_run(root)
    return time.perf_counter() - started, sum(r.done for r in board.rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    p = argparse.ArgumentParser(description="Benchmark offline scoring of saved reports.")
    p.add_argument("--packages", type=int, default=1000)
    p.add_argument("--findings", type=int, default=20, help="findings per report")
    p.add_argument("--run", type=Path, help="also time re-scoring this saved run")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="triage-bench-score-") as tmp:
        build_run(Path(tmp), args.packages, args.findings)
        seconds, reports = _time(Path(tmp))
    ok = seconds < TARGET_S
    print(f"synthetic: scored {reports} saved reports in {seconds:.2f} s")
    if args.run is not None:
        seconds_run, reports_run = _time(args.run)
        print(f"{args.run}: scored {reports_run} saved reports in {seconds_run:.2f} s")
    print(f"{'PASS' if ok else 'FAIL'}: {args.packages} reports under {TARGET_S:g} s"
          f" ({seconds:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
