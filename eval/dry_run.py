"""LLM dry run over the dev corpus: prompt tokens and estimated cost per hosted model.

Usage (from the repository root)::

    python eval/dry_run.py [--model openai/gpt-4.1-mini --model anthropic/claude-sonnet-4-5]
        [--out eval/RESULTS-llm.md]

Builds exactly the prompts ``triage explain --model M`` would send (same split at statement
boundaries, knowledge-base retrieval, ranking by static suspicion and per-package budget),
counts them offline with tiktoken and prices them with litellm's bundled model map; calls no
model and uses no network. The archives are read in memory from the encrypted corpus zip
(nothing is extracted). Review pass on and off.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from pathlib import PurePosixPath as PPath

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from triage.artifact import open_bytes  # noqa: E402
from triage.evaluation.datasets import load_dataset, resolve_dataset  # noqa: E402
from triage.indicators.engine import analyse  # noqa: E402
from triage.llm_estimate import Estimate, estimate  # noqa: E402
from triage.localize import settings_from  # noqa: E402
from triage.pipeline import Options  # noqa: E402

MODELS = ("openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5")


def run(models: Sequence[str]) -> dict[bool, list[Estimate]]:
    """Estimates per review setting (True: review pass on) for every malicious archive."""
    dataset = load_dataset(resolve_dataset("dev", benign=False), download=False)
    plans = {review: settings_from(Options(model=models[0], review_pass=review)).plan
             for review in (True, False)}
    out: dict[bool, list[Estimate]] = {True: [], False: []}
    for i, pkg in enumerate(dataset.packages, 1):
        artifact = open_bytes(dataset.read(pkg.archive), PPath(pkg.archive).name)
        result = analyse(artifact)
        for review, plan in plans.items():
            out[review] += estimate(artifact, result, plan, models)
        print(f"[{i}/{len(dataset.packages)}] {pkg.archive}", file=sys.stderr, flush=True)
    return out


def _totals(rows: Sequence[Estimate], models: Sequence[str]) -> list[str]:
    lines = ["| model | calls | prompt tokens | completion tokens (assumed) | total $ |"
             " $/package median | $/package max | prompt tokens/package median / p90 / max |",
             "|---|---|---|---|---|---|---|---|"]
    for model in models:
        own = [r for r in rows if r.model == model]
        if not own:
            continue
        costs = sorted(r.cost_usd for r in own)
        toks = sorted(r.prompt_tokens for r in own)
        p90 = toks[min(len(toks) - 1, int(0.9 * len(toks)))]
        lines.append(
            f"| {model} | {sum(r.calls for r in own):,} | {sum(toks):,} |"
            f" {sum(r.completion_tokens for r in own):,} | {sum(costs):.2f} |"
            f" {statistics.median(costs):.4f} | {costs[-1]:.4f} |"
            f" {statistics.median(toks):,.0f} / {p90:,} / {toks[-1]:,} |")
    return lines


def render(by_review: dict[bool, list[Estimate]], models: Sequence[str], command: str) -> str:
    """The results page."""
    on = by_review[True]
    first = [r for r in on if r.model == models[0]]
    n = len(first)
    full = sum(1 for r in first if any("budget" in s.reason for s in r.not_reviewed))
    parts = sum(r.parts for r in first)
    lines = [
        "# LLM localization: dry-run token and cost estimate for the dev corpus", "",
        f"Regenerate with:\n\n```\n{command}\n```\n",
        "`eval/dry_run.py` builds exactly the prompts the LLM pass would send (same split at"
        " statement boundaries, knowledge-base retrieval, ranking by static suspicion and"
        " per-package budget), counts them offline with tiktoken, and prices them with the"
        " model map bundled in litellm (`LITELLM_LOCAL_MODEL_COST_MAP=True`). No model is"
        " called and no network is used; archives are read in memory from the encrypted"
        " corpus zip. These are estimates of cost, not of accuracy. `triage explain PKG"
        " --model M --dry-run` prints the same per package.", "",
        "Defaults: `--max-tokens-per-package 60000` (prompt tokens of every call for one"
        " package, review pass included), parts of at most 6,000 code tokens, 6 retrieved"
        " indicators per part, answers assumed to be 400 completion tokens per call.", "",
        f"## {n} malicious archives, review pass on (the default)", "",
        *_totals(on, models), "",
        f"{parts:,} parts reviewed ({parts / max(n, 1):.1f} per package); {full} of {n}"
        " packages reach the budget, and their remaining files are"
        " listed in `not_reviewed` with the reason.", "",
        "## Review pass off (`--no-review`: one call per part, so more parts fit the budget)",
        "", *_totals(by_review[False], models), "",
        "## Caveats", "",
        "- Claude's tokenizer is not public: its prompts are counted with cl100k_base, an"
        " approximation. OpenAI models use their own o200k_base.",
        "- Completion tokens are an assumption (400 per call); real answers for clean parts"
        " are shorter, for parts with many citations longer.",
        "- Cached answers cost nothing on re-runs (`$TRIAGE_HOME/llm.sqlite3`).",
        "- Not counted: files the model never reads (non-Python text, binaries); each report"
        " lists them under `not_reviewed`.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="litellm model string (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "RESULTS-llm.md")
    args = ap.parse_args(argv)
    models = tuple(args.model or MODELS)
    user = list(sys.argv[1:] if argv is None else argv)
    page = render(run(models), models, shlex.join(["python", "eval/dry_run.py", *user]))
    args.out.write_text(page, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
