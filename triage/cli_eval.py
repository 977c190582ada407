"""``triage bench`` and ``triage score``: batch evaluation into a run directory, offline scoring.

Plain functions that triage/cli.py mounts (``app.command("bench")(bench_cmd)``). Heavy
modules (numpy, matplotlib, the engine) load inside the commands.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from triage.evaluation.evaluate import Leaderboard

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE = 0, 2, 3
DEFAULT_RUNS = Path("eval") / "runs"
REGENERATE: str | None = None
"""Command shown in RESULTS.md instead of the bench command line (set by a wrapper script)."""


def write_results(board: Leaderboard, out_dir: Path, command: str = "") -> Path:
    """Write ``RESULTS.md`` into ``out_dir`` and CSV tables and PNG plots into ``results/``.

    Returns:
        The Markdown file.
    """
    from triage.evaluation.leaderboard import (
        render_csv,
        render_indicator_csv,
        render_markdown,
    )
    from triage.evaluation.plots import relative, write_plots

    assets = out_dir / "results"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "leaderboard.csv").write_text(render_csv(board), encoding="utf-8")
    (assets / "per_indicator.csv").write_text(render_indicator_csv(board), encoding="utf-8")
    images, note = write_plots(board, assets)
    if note:
        board = dataclasses.replace(board, notes=(*board.notes, note))
    md = out_dir / "RESULTS.md"
    md.write_text(render_markdown(board, relative(images, out_dir), command), encoding="utf-8")
    return md


def _echo_board(board: Leaderboard) -> None:
    from triage.evaluation.leaderboard import main_table

    typer.echo(main_table(board))
    for note in board.notes:
        typer.echo(f"note: {note}")


def bench_cmd(
    model: Annotated[list[str], typer.Option(
        "--model", "-m", help="System to run (repeatable): static, bandit, guarddog, "
        "llm:<model> or a model string such as openai/gpt-4o-mini or local.")] = ["static"],  # noqa: B006
    dataset: Annotated[str, typer.Option(
        help="dev (shared/corpus), a corpus directory, an encrypted zip or a directory of "
        "archives.")] = "dev",
    run: Annotated[Path | None, typer.Option(
        help="Run directory (default eval/runs/<dataset>); an existing one is resumed.")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", "-j", "--jobs", min=1, help="Packages analysed at once.")] = 2,
    limit: Annotated[int, typer.Option(
        min=0, help="Only the first N malicious and N benign packages.")] = 0,
    benign: Annotated[bool, typer.Option(
        "--benign/--no-benign", help="Include the dataset's pinned benign wheels.")] = True,
    api_base: Annotated[str | None, typer.Option(
        help="OpenAI-compatible endpoint for LLM systems (local: TRIAGE_API_BASE or "
        "http://127.0.0.1:8000/v1).")] = None,
    retry_errors: Annotated[bool, typer.Option(
        help="Rerun packages whose stored record is an error or timeout.")] = False,
    results: Annotated[Path | None, typer.Option(
        help="Also write RESULTS.md, CSV tables and plots into this directory.")] = None,
    resamples: Annotated[int, typer.Option(min=0, help="Bootstrap resamples.")] = 1000,
    llm_sample: Annotated[int, typer.Option(
        min=0, help="Run LLM systems only on one archive of each of the first N labelled "
        "clusters (0: every package); scored next to static on the same packages.")] = 0,
    llm_sample_benign: Annotated[int, typer.Option(
        min=0, help="With --llm-sample: also the first M benign wheels.")] = 3,
    llm_budget: Annotated[int, typer.Option(
        min=0, help="Prompt-token budget per package of LLM systems (0: explain's "
        "default).")] = 0,
    llm_review: Annotated[bool, typer.Option(
        "--llm-review/--no-llm-review", help="Second LLM pass re-checking the first "
        "answer.")] = True,
) -> None:
    """Run systems over a dataset into a resumable run directory, then score them.

    LLM exchanges (cache and transcript) go to RUN/llm.sqlite3.
    """
    from triage.errors import TriageError
    from triage.evaluation.bench import run_bench
    from triage.evaluation.datasets import load_dataset, resolve_dataset
    from triage.evaluation.evaluate import score_run
    from triage.evaluation.rundir import RunDir
    from triage.evaluation.systems import make_system

    try:
        spec = resolve_dataset(dataset, limit=limit, benign=benign)
        data = load_dataset(spec)
    except TriageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc
    root = run or DEFAULT_RUNS / spec.name
    extra = {"review_pass": llm_review, "max_tokens_per_package": llm_budget or None}
    systems = [make_system(m, api_base, llm_db=str(root / "llm.sqlite3"), **extra)
               for m in dict.fromkeys(model)]
    for note in data.notes:
        typer.echo(f"note: {note}", err=True)
    try:
        run_bench(RunDir(root), data, systems, jobs=concurrency, retry_errors=retry_errors,
                  sample=(llm_sample, llm_sample_benign) if llm_sample else None)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    board = score_run(root, resamples=resamples)
    _echo_board(board)
    if results is not None:
        args = ["triage", "bench", *(x for m in dict.fromkeys(model) for x in ("--model", m)),
                "--dataset", dataset, "--run", str(root), "--concurrency", str(concurrency),
                "--results", str(results)]
        args += ["--limit", str(limit)] if limit else []
        args += [] if benign else ["--no-benign"]
        args += ["--api-base", api_base] if api_base else []
        args += (["--llm-sample", str(llm_sample), "--llm-sample-benign",
                  str(llm_sample_benign)] if llm_sample else [])
        args += ["--llm-budget", str(llm_budget)] if llm_budget else []
        args += [] if llm_review else ["--no-llm-review"]
        command = REGENERATE or shlex.join(args)
        typer.echo(f"wrote {write_results(board, results, command)}")


def score_cmd(
    run: Annotated[Path, typer.Argument(help="A run directory written by triage bench.")],
    results: Annotated[Path | None, typer.Option(
        help="Also write RESULTS.md, CSV tables and plots into this directory.")] = None,
    resamples: Annotated[int, typer.Option(min=0, help="Bootstrap resamples.")] = 1000,
    refresh_truth: Annotated[bool, typer.Option(
        help="Rebuild the statement-level truth from the dataset instead of the cache.")] = False,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write every score as JSON here.")] = None,
) -> None:
    """Re-score a saved run offline (no analysis, no model calls)."""
    from triage.errors import TriageError
    from triage.evaluation.evaluate import score_run

    try:
        board = score_run(run, resamples=resamples, refresh_truth=refresh_truth)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except TriageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from exc
    _echo_board(board)
    if json_out is not None:
        from triage.evaluation.leaderboard import to_plain

        json_out.write_text(json.dumps(to_plain(board), indent=1) + "\n", encoding="utf-8")
    if results is not None:
        typer.echo(f"wrote {write_results(board, results, f'triage score {run}')}")
