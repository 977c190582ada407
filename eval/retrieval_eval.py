"""Measure knowledge-base retrieval on the labelled dev corpus (recall@k of the right indicator).

Usage (from the repository root)::

    python eval/retrieval_eval.py [--corpus ../shared/corpus] [--json OUT.json] [--signals]

For every label row of ``labels-dev.jsonl`` whose indicator is (or maps through
``kb/aliases.yaml`` to) a ``code_*`` ID, the query is the source of the labelled lines, read
from the encrypted corpus zip in memory (nothing is extracted or executed). Each embedding
option ranks all indicators; a row is a hit at k when its indicator is in the top k.
Near-duplicates count once: rows are grouped into units (cluster of ``packages-dev.csv``,
indicator), a unit scores the mean of its rows, and recall is the mean over units. Per-row
recall is printed too. ``--signals`` adds a row using the static detectors' indicators for the
labelled statements (``triage.indicators.engine``) as retrieval signals.

Timings: ``build`` is ``KnowledgeBase.build()`` into an empty temporary TRIAGE_HOME (model
load, embedding of every document, Chroma writes); ``query`` is the median of
``KnowledgeBase.search()`` over all distinct queries after a warm-up, store already loaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from triage.evaluation.corpus import Label, load_clusters, load_labels, read_archive, read_members
from triage.evaluation.labels import DEFAULT_ALIASES_PATH, is_taxonomy_id, load_aliases
from triage.retrieval import KnowledgeBase
from triage.retrieval_rank import RankOptions, rank
from triage.taxonomy import load_taxonomy

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
KS = (1, 3, 5)
VARIANTS: tuple[tuple[str, RankOptions], ...] = (
    ("definitions only, dense (MiniLM int8 ONNX)", RankOptions(mode="dense", use_examples=False)),
    ("definitions only, lexical (hashed code features)",
     RankOptions(mode="lexical", use_examples=False)),
    ("definitions only, hybrid", RankOptions(mode="hybrid", use_examples=False)),
    ("definitions + examples, dense (MiniLM int8 ONNX)", RankOptions(mode="dense")),
    ("definitions + examples, lexical (hashed code features)", RankOptions(mode="lexical")),
    ("definitions + examples, hybrid 0.3 dense + 0.7 lexical (default)", RankOptions()),
    ("definitions + examples, hybrid 0.5 dense + 0.5 lexical",
     RankOptions(mode="hybrid", dense_weight=0.5)),
    ("definitions + examples, hybrid 0.7 dense + 0.3 lexical",
     RankOptions(mode="hybrid", dense_weight=0.7)),
)


@dataclass(frozen=True)
class Query:
    """One label row turned into a retrieval query."""

    label: Label
    cluster: str
    text: str
    signals: tuple[str, ...] = ()


def code_labels(corpus: Path) -> tuple[tuple[Label, ...], str]:
    """The code_* labels, and a note on how free-text labels were handled."""
    ids = {i.id for i in load_taxonomy().indicators}
    if DEFAULT_ALIASES_PATH.is_file():
        aliases = load_aliases(DEFAULT_ALIASES_PATH, valid_ids=ids)
        note = f"free-text labels mapped through {DEFAULT_ALIASES_PATH.name}"
    else:
        aliases = {}
        note = "kb/aliases.yaml absent: only rows already using snake_case IDs"
    rows = [json.loads(line) for line in (corpus / "labels-dev.jsonl").read_text().splitlines()
            if line.strip()]
    if not aliases:
        kept = [r for r in rows if is_taxonomy_id(r["indicator"])]
        tmp = Path(tempfile.mkdtemp()) / "labels.jsonl"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        labels = load_labels(tmp, {})
    else:
        labels = load_labels(corpus / "labels-dev.jsonl", aliases)
    return tuple(lab for lab in labels if lab.indicator.startswith("code_")), note


def build_queries(corpus: Path, labels: Sequence[Label], with_signals: bool) -> list[Query]:
    """Read the labelled lines of every row from the archives, in memory."""
    clusters = load_clusters(corpus / "packages-dev.csv")
    by_archive: dict[str, list[Label]] = defaultdict(list)
    for lab in labels:
        by_archive[lab.archive].append(lab)
    out: list[Query] = []
    for archive, labs in sorted(by_archive.items()):
        data = read_archive(corpus / "malicious-dev.zip", archive)
        texts = read_members(data, archive, {lab.file for lab in labs})
        engine = _engine_signals(texts) if with_signals else {}
        for lab in labs:
            lines = texts.get(lab.file, "").splitlines()
            text = "\n".join(lines[n - 1] for n in sorted(set(lab.lines)) if 0 < n <= len(lines))
            if not text.strip():
                continue
            sigs = tuple(sorted({ind for (f, line), inds in engine.items() if f == lab.file
                                 and line in lab.lines for ind in inds}))
            out.append(Query(lab, clusters.get(lab.archive, lab.archive), text, sigs))
    return out


def _engine_signals(texts: dict[str, str]) -> dict[tuple[str, int], set[str]]:
    """(file, line) -> indicator IDs the static detectors raise on statements covering it."""
    from triage.indicators.engine import analyse
    from triage.model import Artifact, SourceFile

    files = tuple(SourceFile(path=p, text=t) for p, t in texts.items() if p.endswith(".py"))
    result = analyse(Artifact(name="x", version="", sha256="", kind="directory", source="x",
                              files=files))
    out: dict[tuple[str, int], set[str]] = defaultdict(set)
    for sig in result.signals:
        path = sig.statement_id.rsplit(":", 2)[0]
        if path not in result.indices:
            continue
        stmt = result.indices[path].get(sig.statement_id)
        lo, hi = sig.start_line or stmt.start_line, sig.end_line or stmt.end_line
        for line in range(lo, hi + 1):
            out[(path, line)].add(sig.indicator)
    return out


def recall(queries: Sequence[Query], ranks: Sequence[int]) -> dict[str, float]:
    """Cluster-deduplicated and per-row recall@k (rank is 1-based; 0 means absent)."""
    units: dict[tuple[str, str], list[int]] = defaultdict(list)
    for q, r in zip(queries, ranks, strict=True):
        units[(q.cluster, q.label.indicator)].append(r)
    out: dict[str, float] = {}
    for k in KS:
        out[f"unit@{k}"] = statistics.mean(
            statistics.mean(1.0 if 0 < r <= k else 0.0 for r in rs) for rs in units.values())
        out[f"row@{k}"] = statistics.mean(1.0 if 0 < r <= k else 0.0 for r in ranks)
    return out


def evaluate(kb: KnowledgeBase, queries: Sequence[Query], options: RankOptions,
             sims_cache: dict[tuple[str, str], dict[str, tuple[float, float]]],
             use_signals: bool = False) -> list[int]:
    """Rank of the labelled indicator for each query under ``options``."""
    docs = kb.documents
    examples = {e.id: e for e in kb.examples}
    n = len(kb.taxonomy.indicators)
    out = []
    for q in queries:
        key = (q.text, options.mode)
        if key not in sims_cache:
            sims_cache[key] = kb.similarities(q.text, options.mode)
        res = rank(q.text, sims_cache[key], docs, examples, kb.taxonomy, k=n,
                   signals=q.signals if use_signals else (), options=options)
        ids = res.ids
        out.append(ids.index(q.label.indicator) + 1 if q.label.indicator in ids else 0)
    return out


def timings(queries: Sequence[Query]) -> dict[str, float]:
    """Build from scratch in a temp TRIAGE_HOME, then median query latency."""
    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        kb = KnowledgeBase(home=Path(home))
        report = kb.build()
        build_s = time.perf_counter() - start
        texts = list(dict.fromkeys(q.text for q in queries))
        kb.search(texts[0])
        lat = []
        for t in texts:
            t0 = time.perf_counter()
            kb.search(t)
            lat.append(time.perf_counter() - t0)
    return {"build_s": round(build_s, 2), "build_inner_s": report.seconds,
            "documents": report.documents,
            "query_median_ms": round(statistics.median(lat) * 1e3, 1),
            "query_p90_ms": round(sorted(lat)[int(0.9 * (len(lat) - 1))] * 1e3, 1),
            "queries_timed": len(lat)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--signals", action="store_true",
                        help="add a row using static detector signals as retrieval signals")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args(argv)

    labels, note = code_labels(args.corpus)
    queries = build_queries(args.corpus, labels, args.signals)
    units = {(q.cluster, q.label.indicator) for q in queries}
    print(f"{len(queries)} code_* label rows, {len(units)} (cluster, indicator) units, "
          f"{len({q.cluster for q in queries})} clusters; {note}\n")
    with tempfile.TemporaryDirectory() as home:
        kb = KnowledgeBase(home=Path(home))
        kb.build()
        cache: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
        variants = list(VARIANTS)
        if args.signals:
            variants.append(("default + static detector signals", RankOptions()))
        results = []
        print("| option | unit R@1 | unit R@3 | unit R@5 | row R@3 | row R@5 |")
        print("|---|---|---|---|---|---|")
        for name, opts in variants:
            ranks = evaluate(kb, queries, opts, cache, use_signals="signals" in name)
            r = recall(queries, ranks)
            results.append({"option": name, **{k: round(v, 3) for k, v in r.items()}})
            print(f"| {name} | {r['unit@1']:.3f} | {r['unit@3']:.3f} | {r['unit@5']:.3f} | "
                  f"{r['row@3']:.3f} | {r['row@5']:.3f} |")
        misses = evaluate(kb, queries, replace(RankOptions()), cache)
        print("\nDefault option, units not fully in the top 3 (cluster, indicator: ranks):")
        per_unit: dict[tuple[str, str], list[int]] = defaultdict(list)
        for q, rk in zip(queries, misses, strict=True):
            per_unit[(q.cluster, q.label.indicator)].append(rk)
        for (cl, ind), rs in sorted(per_unit.items()):
            if any(not 0 < r <= 3 for r in rs):
                print(f"  {cl} {ind}: {sorted(rs)}")
    timing = {} if args.no_timing else timings(queries)
    if timing:
        print(f"\nbuild from scratch: {timing['build_s']} s ({timing['documents']} documents); "
              f"query median {timing['query_median_ms']} ms, p90 {timing['query_p90_ms']} ms "
              f"over {timing['queries_timed']} distinct queries")
    if args.json:
        args.json.write_text(json.dumps({"note": note, "results": results, "timing": timing},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
