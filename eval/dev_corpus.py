"""Run the static engine over the dev corpus and score it against the statement labels.

Usage (from the repository root)::

    python eval/dev_corpus.py --corpus ../shared/corpus --out eval/results/dev-static.jsonl \\
        [--limit N] [--jobs N] [--timeout S] [--only-labelled]
    python eval/dev_corpus.py --score-only eval/results/dev-static.jsonl [--corpus DIR]

The corpus is live malware: archives are read in memory from the encrypted zip and analysed
statically (``triage.pipeline.explain_bytes``), each in its own worker process with a
per-archive timeout. Every record is appended to the JSON Lines file as it completes; the
Markdown summary is printed and also written beside it (``<out>.md``), and the scores as
``<out>.scores.json``. ``--score-only`` re-scores a saved file without re-running.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from triage.evaluation.corpus import iter_archives
from triage.evaluation.metrics import CODE, METADATA, score, worst_recall
from triage.evaluation.runner import RunRecord, run_archives, warm_up
from triage.evaluation.scoring import (
    CorpusPaths,
    build_cases,
    load_ground_truth,
    read_records,
    taxonomy_type_of,
    unanalysed_label_files,
    zip_source_reader,
)
from triage.evaluation.summary import render_summary, scores_to_json

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_OUT = ROOT / "eval" / "results" / "dev-static.jsonl"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="shared/corpus directory")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON Lines file")
    p.add_argument("--limit", type=int, default=0, help="analyse only the first N archives")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per archive (60)")
    p.add_argument("--only-labelled", action="store_true", help="only archives with labels")
    p.add_argument("--worst", type=int, default=15, help="worst-recall archives to list (15)")
    p.add_argument("--score-only", type=Path, metavar="JSONL", help="re-score a saved run")
    return p.parse_args(argv)


def _run(args: argparse.Namespace, paths: CorpusPaths, labelled: set[str]) -> list[RunRecord]:
    try:
        from triage.pipeline import explain_bytes
    except ImportError as exc:
        raise SystemExit(f"triage.pipeline.explain_bytes is not available: {exc}") from exc
    failed = warm_up(explain_bytes)
    if failed:
        print(f"warm-up failed: {failed}", file=sys.stderr)
    items = iter_archives(paths.zip)
    if args.only_labelled:
        items = (item for item in items if item[0] in labelled)
    if args.limit > 0:
        items = itertools.islice(items, args.limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records: list[RunRecord] = []
    with open(args.out, "w", encoding="utf-8") as fh:
        for record in run_archives(items, explain_bytes, jobs=args.jobs, timeout_s=args.timeout):
            records.append(record)
            fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
            fh.flush()
            print(
                f"[{len(records)}] {record.status:7} {record.seconds:6.2f}s {record.archive}",
                file=sys.stderr,
            )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Run and/or score; print the Markdown summary. Returns the exit code."""
    args = _parse(argv)
    paths = CorpusPaths(args.corpus)
    if not paths.zip.is_file():
        print(f"corpus not found: {paths.zip}", file=sys.stderr)
        return 2
    labels, clusters = load_ground_truth(paths)
    wall: float | None = None
    if args.score_only:
        records: Sequence[RunRecord] = read_records(args.score_only)
        out = args.score_only
    else:
        started = time.perf_counter()
        records = _run(args, paths, {label.archive for label in labels})
        wall = time.perf_counter() - started
        out = args.out
    type_of, note = taxonomy_type_of()
    notes = [note] if note else []
    unanalysed = unanalysed_label_files(records, labels)
    if unanalysed:
        shown = ", ".join(f"{a}!{f}" for a, f in unanalysed[:5])
        notes.append(f"{len(unanalysed)} labelled files absent from files_analysed: {shown}")
    cases = build_cases(records, labels, clusters, zip_source_reader(paths.zip))
    scores = score(cases, type_of)
    worst = [worst_recall(cases, family, type_of, args.worst) for family in (CODE, METADATA)]
    summary = render_summary(scores, records, worst, wall, notes)
    print(summary)
    out.with_suffix(".md").write_text(summary, encoding="utf-8")
    scores_json = {"scores": scores_to_json(scores), "wall_s": wall, "notes": notes}
    out.with_suffix(".scores.json").write_text(json.dumps(scores_json, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
