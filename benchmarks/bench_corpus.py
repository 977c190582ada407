"""Time the static engine over the whole dev corpus, sequentially, in one process.

Usage (from the repository root)::

    python benchmarks/bench_corpus.py [--corpus ../shared/corpus] [--limit N]

Archives are read in memory from the encrypted corpus zip (live malware: never extracted or
executed) and analysed one after another with ``triage.pipeline.explain_bytes``. Prints wall
time, peak RSS and per-archive time percentiles, then one PASS/FAIL line per target; exits 1
if any target fails.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from triage.evaluation.corpus import iter_archives

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared" / "corpus" / "malicious-dev.zip"

TARGET_TOTAL_S = 60.0
"""Whole corpus, under this on 2 cores."""
TARGET_PEAK_MB = 500.0
TARGET_MEDIAN_S = 0.3


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit code."""
    p = argparse.ArgumentParser(description="Benchmark the static engine on the dev corpus.")
    p.add_argument("--corpus", type=Path, default=DEFAULT_ZIP.parent, help="shared/corpus dir")
    p.add_argument("--limit", type=int, default=0, help="only the first N archives")
    args = p.parse_args(argv)
    zip_path = args.corpus / "malicious-dev.zip"
    if not zip_path.is_file():
        print(f"corpus not found: {zip_path}", file=sys.stderr)
        return 2

    from triage.pipeline import explain_bytes

    items = iter_archives(zip_path)
    if args.limit > 0:
        items = itertools.islice(items, args.limit)
    times: list[tuple[float, str]] = []
    errors: list[str] = []
    started = time.perf_counter()
    for archive, data in items:
        t0 = time.perf_counter()
        try:
            explain_bytes(data, Path(archive).name)
        except Exception as exc:  # count it and go on: the benchmark measures time
            errors.append(f"{archive}: {type(exc).__name__}: {exc}")
        times.append((time.perf_counter() - t0, archive))
    wall = time.perf_counter() - started
    peak = peak_rss_mb()
    if not times:
        print("no archives", file=sys.stderr)
        return 2

    secs = [t for t, _ in times]
    median = statistics.median(secs)
    print(f"archives: {len(times)}  errors: {len(errors)}")
    print(f"wall time: {wall:.2f} s  (includes reading the zip)")
    print(f"peak RSS: {peak:.0f} MB")
    print(
        f"per archive: median {median:.3f} s, p90 {percentile(secs, 90):.3f} s,"
        f" max {max(secs):.3f} s"
    )
    print("slowest:")
    for t, archive in sorted(times, reverse=True)[:5]:
        print(f"  {t:7.3f} s  {archive}")
    for line in errors:
        print(f"error: {line}")
    checks = [
        ("every archive analysed", not errors, f"{len(errors)} errors"),
        (f"total under {TARGET_TOTAL_S:g} s", wall < TARGET_TOTAL_S, f"{wall:.1f} s"),
        (f"peak RSS under {TARGET_PEAK_MB:g} MB", peak < TARGET_PEAK_MB, f"{peak:.0f} MB"),
        (f"median under {TARGET_MEDIAN_S:g} s", median < TARGET_MEDIAN_S, f"{median:.3f} s"),
    ]
    if args.limit > 0:
        print(f"note: --limit {args.limit}: the total-time target is for the whole corpus")
    for name, ok, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {name} ({value})")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
