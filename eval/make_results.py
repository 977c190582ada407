"""Regenerate eval/RESULTS.md (and eval/results/*.csv, *.png) from the dev corpus in one command.

Usage (from the repository root)::

    python eval/make_results.py [--model static --model bandit --model guarddog
        --model local:qwen2.5-coder-1.5b] [--run eval/runs/dev] [--concurrency 2]
        [--llm-sample 15] [--llm-budget 7000] [--no-llm-review] [--api-base URL]

The same as ``triage bench --dataset dev --results eval --model ...`` with the default
systems: static triage, bandit, GuardDog and one LLM configuration, Qwen2.5-Coder-1.5B
served here by llama.cpp on the CPU (``triage model pull qwen2.5-coder-1.5b`` first). A local
1.5B model reads about 30 prompt tokens a second on two cores, so by default the LLM runs on
a fixed sample (one archive of each labelled near-duplicate cluster, first 15 clusters, plus
3 benign wheels) with a 7,000-token budget per package and no review pass, and is scored
beside static on the same packages. A system that cannot run here is listed as "not run
here" with the reason. The run directory is resumed, so an interrupted regeneration
continues where it stopped; ``triage score eval/runs/dev --results eval`` re-scores without
running anything.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

import typer

from triage import cli_eval
from triage.cli_eval import bench_cmd

DEFAULT_SYSTEMS = ("static", "bandit", "guarddog", "local:qwen2.5-coder-1.5b")
LLM_DEFAULTS = (("--llm-sample", "15"), ("--llm-budget", "7000"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with the defaults of this script; return the exit code."""
    user_args = list(sys.argv[1:] if argv is None else argv)
    args = list(user_args)
    if "--model" not in args and "-m" not in args:
        for system in DEFAULT_SYSTEMS:
            args += ["--model", system]
    for flag, value in LLM_DEFAULTS:
        if flag not in args:
            args += [flag, value]
    if "--llm-review" not in args and "--no-llm-review" not in args:
        args.append("--no-llm-review")
    if "--results" not in args:
        args += ["--results", "eval"]
    if "--run" not in args:
        args += ["--run", "eval/runs/dev"]
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench_cmd)
    cli_eval.REGENERATE = shlex.join(["python", "eval/make_results.py", *user_args])
    try:
        code = app(args, prog_name="triage bench", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
