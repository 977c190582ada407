"""Static only vs static + a local LLM (llama.cpp) on the labelled dev packages.

Usage (from the repository root, after ``pip install -e '.[local]'``)::

    python eval/local_llm_eval.py [--model qwen2.5-coder-0.5b] [--limit 12] [--threads 2]
        [--budget 7000] [--review] [--out eval/RESULTS-local.md]

Pulls the model if needed (``triage model pull``), starts llama.cpp's OpenAI-compatible server
on a free 127.0.0.1 port, and for one archive per near-duplicate cluster with statement labels
(sorted by cluster key, first ``--limit``) runs the pipeline twice: static only, then static +
LLM. Archives are read in memory from the encrypted corpus zip; nothing is written to disk but
the metrics table (no code) and the LLM cache (``$TRIAGE_HOME/local-eval.sqlite3``, which makes
a re-run free). Scores are statement level, code statements, micro-averaged over packages,
with the scorer of ``triage.evaluation``.

``--from-run eval/runs/dev`` tabulates a finished ``triage bench`` run (``eval/make_results.py``
makes one) per package instead, calling no model.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from pathlib import PurePosixPath as PPath
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage import local_model, local_server  # noqa: E402
from triage.evaluation.datasets import load_dataset, resolve_dataset  # noqa: E402
from triage.evaluation.evaluate import reading_order  # noqa: E402
from triage.evaluation.scoring import taxonomy_type_of  # noqa: E402
from triage.evaluation.stmt_metrics import (  # noqa: E402
    PackageResult,
    PackageTruth,
    f1_score,
    family_counts,
)
from triage.evaluation.truth import build_truths  # noqa: E402
from triage.model import Report, Source  # noqa: E402
from triage.pipeline import Options, explain_bytes  # noqa: E402
from triage.render import RENDERERS  # noqa: E402


@dataclass(frozen=True)
class Row:
    """One package, both configurations."""

    archive: str
    labelled: int
    static: tuple[int, int]
    """(predicted, hits) of code statements, static only."""
    llm: tuple[int, int]
    """(predicted, hits) of code statements, static + LLM."""
    verdicts: tuple[str, str]
    llm_findings: int
    """Findings whose source is llm or both (all verified)."""
    rejected: int
    tokens: int
    calls: int
    static_s: float
    llm_s: float
    failed_parts: int
    """Parts of the LLM pass that gave no usable answer (verdict needs-review)."""


def pick(truths: Sequence[PackageTruth], limit: int) -> tuple[PackageTruth, ...]:
    """One labelled archive per cluster (the first by name), clusters sorted by key."""
    seen: dict[str, PackageTruth] = {}
    for t in sorted(truths, key=lambda t: t.archive):
        if t.labelled and t.cluster not in seen:
            seen[t.cluster] = t
    chosen = [seen[c] for c in sorted(seen)]
    return tuple(chosen[:limit] if limit > 0 else chosen)


def _counts(truth: PackageTruth, report: Report, type_of: Any) -> tuple[int, int]:
    data = json.loads(RENDERERS["json"](report))
    res = PackageResult(truth.archive, report.verdict.label, reading_order(data))
    c = family_counts(truth, res, "code", type_of)
    return c.predicted, c.hits


def row_of(truth: PackageTruth, st: Report, lm: Report, static_s: float, llm_s: float,
           type_of: Any) -> Row:
    """Both configurations of one package, scored."""
    usage = lm.llm
    return Row(
        archive=truth.archive, labelled=len([s for s in truth.labelled if any(
            not i.startswith("metadata") for i in s.indicators)]),
        static=_counts(truth, st, type_of), llm=_counts(truth, lm, type_of),
        verdicts=(st.verdict.label, lm.verdict.label),
        llm_findings=sum(1 for f in lm.findings if f.source is not Source.STATIC),
        rejected=len(lm.rejected),
        tokens=(usage.prompt_tokens + usage.completion_tokens) if usage else 0,
        calls=usage.calls if usage else 0, static_s=static_s, llm_s=llm_s,
        failed_parts=sum(1 for s in lm.not_reviewed if "LLM review failed" in s.reason))


def from_run(root: Path, system: str) -> list[Row]:
    """Rows from a ``triage bench`` run directory: ``static`` and ``system`` on the packages
    ``system`` ran (its ``--llm-sample``), no model call."""
    from triage.evaluation.rundir import RunDir
    from triage.render.json_report import report_from_dict

    run_dir = RunDir(root)
    truths = {t.archive: t for t in run_dir.read_truth() or ()}
    static, llm = run_dir.load_records("static"), run_dir.load_records(system)
    type_of, _ = taxonomy_type_of()
    rows = []
    for archive in sorted(llm, key=lambda a: (not truths[a].malicious, truths[a].cluster)):
        st, lm = static.get(archive), llm[archive]
        if st is None or st.report is None or lm.report is None:
            continue
        rows.append(row_of(truths[archive], report_from_dict(st.report),
                           report_from_dict(lm.report), st.seconds, lm.seconds, type_of))
    return rows


def run(args: argparse.Namespace, on_row: Any = None) -> tuple[list[Row], str, float]:
    """Run both configurations; return rows, the model string and the server start time."""
    spec = replace(resolve_dataset("dev", benign=False))
    dataset = load_dataset(spec, download=False)
    truths = build_truths(((p.archive, p.cluster, p.malicious) for p in dataset.packages),
                          dataset.labels, dataset.read_sources)
    chosen = pick(truths, args.limit)
    type_of, _ = taxonomy_type_of()
    local_model.pull(args.model, log=lambda m: print(m, file=sys.stderr))
    from triage.retrieval_store import triage_home

    db = str(triage_home() / "local-eval.sqlite3")
    t0 = time.perf_counter()
    server = local_server.serve(args.model, port=local_server.free_port(), n_threads=args.threads,
                               n_ctx=args.n_ctx)
    started = time.perf_counter() - t0
    # the product path: `--model local:<name>` (grammar-constrained JSON, one call at a time)
    model, _ = local_server.resolve_local(f"local:{args.model}", server.api_base)
    static_opts = Options()
    llm_opts = Options(model=f"local:{args.model}", api_base=server.api_base,
                       review_pass=args.review, llm_timeout_s=args.timeout, llm_retries=0,
                       llm_db=db, max_tokens_per_package=args.budget)
    rows: list[Row] = []
    try:
        for i, truth in enumerate(chosen, 1):
            data = dataset.read(truth.archive)
            name = PPath(truth.archive).name
            st = explain_bytes(data, name, static_opts)
            lm = explain_bytes(data, name, llm_opts)
            row = row_of(truth, st, lm, st.elapsed_s, lm.elapsed_s, type_of)
            rows.append(row)
            print(f"[{i}/{len(chosen)}] {row}", file=sys.stderr, flush=True)
            if on_row is not None:
                on_row(rows, model, started)
    finally:
        server.stop()
    return rows, model, started


def _prf(pairs: Sequence[tuple[int, int]], labelled: int) -> tuple[float, float, float]:
    pred = sum(p for p, _ in pairs)
    hits = sum(h for _, h in pairs)
    p = hits / pred if pred else 0.0
    r = hits / labelled if labelled else 0.0
    return p, r, f1_score(p, r) or 0.0


def live_setup(model: str, args: argparse.Namespace, server_s: float, n: int) -> str:
    """How a live run was configured."""
    return (
        f"Model `{args.model}` served by llama-cpp-python (litellm model `{model}`), "
        f"{args.threads or 'default'} CPU thread(s), context {args.n_ctx or 'model default'}, "
        "grammar-constrained JSON (`triage.llm_answer.grammar_schema`, statement IDs limited to "
        f"those shown), review pass {'on' if args.review else 'off'}, LLM prompt budget "
        f"{args.budget} tokens per package (files beyond it are listed as not reviewed). "
        "Packages: one labelled archive per near-duplicate cluster of the dev corpus, clusters "
        f"in key order, first {n}. Server start: {server_s:.1f}s.")


def render(rows: Sequence[Row], label: str, command: str, setup: str) -> str:
    """The results page (numbers and archive names only, no code)."""
    lab = sum(r.labelled for r in rows)
    n = max(len(rows), 1)
    sp, sr, sf = _prf([r.static for r in rows], lab)
    lp, lr, lf = _prf([r.llm for r in rows], lab)
    tok = sum(r.tokens for r in rows)
    lines = [
        "# Local LLM evaluation (llama.cpp, CPU)", "",
        f"Regenerate with:\n\n```\n{command}\n```\n",
        setup,
        "",
        "## Code statements (micro-averaged over packages)", "",
        "| system | P | R | F1 | tokens/package | s/package | LLM findings (verified) "
        "| citations rejected | LLM parts failed |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| static | {sp:.2f} | {sr:.2f} | {sf:.2f} | - | "
        f"{sum(r.static_s for r in rows) / n:.2f} | - | - | - |",
        f"| static + {label} | {lp:.2f} | {lr:.2f} | {lf:.2f} | {tok / n:.0f} | "
        f"{sum(r.llm_s for r in rows) / n:.1f} | {sum(r.llm_findings for r in rows)} | "
        f"{sum(r.rejected for r in rows)} | {sum(r.failed_parts for r in rows)} |",
        "",
        f"{lab} labelled code statements in {len(rows)} packages. Verdict changes "
        f"(static -> static+LLM): "
        + (", ".join(f"{r.archive.split('/')[0]} {r.verdicts[0]}->{r.verdicts[1]}"
                     for r in rows if r.verdicts[0] != r.verdicts[1]) or "none") + ".",
        "",
        "## Per package", "",
        "| archive | labelled | static pred/hits | +LLM pred/hits | verdict static / +LLM "
        "| LLM findings | rejected | calls | tokens | s (LLM run) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.archive} | {r.labelled} | {r.static[0]}/{r.static[1]} | "
                     f"{r.llm[0]}/{r.llm[1]} | {r.verdicts[0]} / {r.verdicts[1]} | "
                     f"{r.llm_findings} | {r.rejected} | {r.calls} | {r.tokens} | "
                     f"{r.llm_s:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", choices=sorted(local_model.MODELS))
    ap.add_argument("--limit", type=int, default=12, help="clusters (0: all labelled)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--budget", type=int, default=7000, help="LLM prompt tokens per package")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per LLM call")
    ap.add_argument("--review", action="store_true", help="second LLM pass (doubles cost)")
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "RESULTS-local.md")
    ap.add_argument("--from-run", type=Path, help="tabulate a `triage bench` run directory "
                    "(static vs --system on the packages it ran) instead of running a model")
    ap.add_argument("--system", default="llm:local:qwen2.5-coder-1.5b",
                    help="with --from-run: the LLM system of that run")
    args = ap.parse_args(argv)
    user = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "eval/local_llm_eval.py", *user])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server is stopped

    if args.from_run is not None:
        rows = from_run(args.from_run, args.system)
        setup = (f"Reports of `static` and `{args.system}` from the bench run "
                 f"`{args.from_run}` (its `--llm-sample` packages: one labelled archive per "
                 "near-duplicate cluster, then benign wheels, which have no labelled "
                 "statements); seconds are the bench's per-package analysis times. "
                 "Options of the LLM system are in the run's `config.json`.")
        args.out.write_text(render(rows, args.system, command, setup), encoding="utf-8")
        print(args.out)
        return 0

    def write(rows: Sequence[Row], model: str, server_s: float) -> None:
        page = render(rows, args.model, command, live_setup(model, args, server_s, len(rows)))
        args.out.write_text(page, encoding="utf-8")

    rows, model, server_s = run(args, on_row=write)
    write(rows, model, server_s)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
