"""Command line: build options, call one function, pick a renderer, choose the exit code.

Heavy modules (the engine, renderers, and later litellm/chromadb) are imported inside
the commands, so ``triage --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from triage.model import Report

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
_RANK = {"benign": 0, "needs-review": 1, "suspicious": 1, "malicious": 2}

app = typer.Typer(
    name="triage",
    help="Explain which statements of a suspect Python package are malicious, and why. "
    "Nothing in the package is ever executed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount_subcommands() -> None:
    # sub-apps import nothing heavy at module level (chromadb loads inside the commands)
    from triage.cli_kb import kb_app

    app.add_typer(kb_app, name="kb")
    from triage.cli_model import model_app

    app.add_typer(model_app, name="model")
    from triage.cli_eval import bench_cmd, score_cmd

    app.command("bench")(bench_cmd)
    app.command("score")(score_cmd)
    from triage.cli_mine import mine

    app.command("mine")(mine)


_mount_subcommands()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = (
        False),
) -> None:
    """triage: explainable, statement-level triage of suspect Python packages."""
    if version:
        from triage import __version__

        typer.echo(f"triage {__version__}")
        raise typer.Exit(EXIT_OK)


class Format(str, Enum):
    terminal = "terminal"
    markdown = "markdown"
    json = "json"
    jsonl = "jsonl"
    sarif = "sarif"
    html = "html"


class FailOn(str, Enum):
    suspicious = "suspicious"
    malicious = "malicious"
    never = "never"


class ArtifactChoice(str, Enum):
    all = "all"
    wheel = "wheel"
    sdist = "sdist"


def _render_many(reports: list[Report], fmt: Format, color: bool) -> str:
    from triage.render import RENDERERS, render_batch_summary, render_jsonl
    from triage.render import terminal as term

    if fmt is Format.jsonl or (fmt is Format.json and len(reports) > 1):
        return "".join(render_jsonl(r) + "\n" for r in reports)
    if fmt is Format.sarif and len(reports) > 1:
        runs = [json.loads(RENDERERS["sarif"](r))["runs"][0] for r in reports]
        log = json.loads(RENDERERS["sarif"](reports[0]))
        log["runs"] = runs
        return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
    if fmt is Format.terminal:
        parts = [term.render(r, color=color) for r in reports]
        if len(reports) > 1:
            parts.append(render_batch_summary(reports))
        return "\n".join(parts)
    out = [RENDERERS[fmt.value](r) for r in reports]
    return "\n".join(out if out[-1:] and out[-1].endswith("\n") else [o + "\n" for o in out])


def _over(report: Report, fail_on: FailOn) -> bool:
    if fail_on is FailOn.never:
        return False
    return _RANK.get(report.verdict.label, 0) >= _RANK[fail_on.value]


@app.command()
def explain(
    targets: Annotated[list[str], typer.Argument(
        help="Wheels, sdists (.tar.gz/.zip), .egg, directories, .py/.pth files, "
        "or name / name==version from PyPI.", show_default=False)],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = (
        Format.terminal),
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the report here (a directory for several HTML "
        "reports) instead of standard output.")] = None,
    fail_on: Annotated[FailOn, typer.Option(
        help="Exit 1 when a verdict is at or above this level.")] = FailOn.suspicious,
    min_confidence: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Hide static signals below this confidence.")] = 0.3,
    artifact: Annotated[ArtifactChoice, typer.Option(
        help="For name==version targets: which file to fetch.")] = ArtifactChoice.all,
    index_url: Annotated[str, typer.Option(help="Package index for name==version.")] = (
        "https://pypi.org"),
    color: Annotated[bool | None, typer.Option(
        "--color/--no-color", help="Colour terminal output (default: when a TTY).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="LLM localization with this litellm model (openai/gpt-4.1-mini, "
        "anthropic/..., ollama/..., local or openai/NAME with --api-base); keys come from "
        "the environment. Repeat with --dry-run to compare models.", show_default=False,
        rich_help_panel="LLM")] = None,
    api_base: Annotated[str | None, typer.Option(
        help="OpenAI-compatible server URL (vLLM, llama.cpp); its key is TRIAGE_LLM_API_KEY.",
        rich_help_panel="LLM")] = None,
    max_tokens_per_package: Annotated[int, typer.Option(
        min=1000, help="Prompt-token budget of the LLM pass per package; files left out are "
        "listed as not reviewed.", rich_help_panel="LLM")] = 60_000,
    context_tokens: Annotated[int, typer.Option(
        min=0, help="Model context size when litellm does not know it (0: its map, else "
        "8192).", rich_help_panel="LLM")] = 0,
    review: Annotated[bool, typer.Option(
        "--review/--no-review", help="Second LLM pass re-checking the first answer.",
        rich_help_panel="LLM")] = True,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the LLM tokens and estimated cost per model; call nothing.",
        rich_help_panel="LLM")] = False,
    llm_cache: Annotated[bool, typer.Option(
        "--llm-cache/--no-llm-cache", help="Reuse cached answers for identical prompts.",
        rich_help_panel="LLM")] = True,
    llm_db: Annotated[Path | None, typer.Option(
        help="Cache and transcript database (default: $TRIAGE_HOME/llm.sqlite3).",
        rich_help_panel="LLM")] = None,
    concurrency: Annotated[int, typer.Option(
        min=1, max=64, help="LLM calls in flight at once.", rich_help_panel="LLM")] = 4,
    llm_timeout: Annotated[float | None, typer.Option(
        min=1.0, help="Seconds per LLM call [default: 120, or 900 for --model local].",
        rich_help_panel="LLM")] = None,
    llm_retries: Annotated[int, typer.Option(
        min=0, max=10, help="Retries on 429, 5xx and timeouts.", rich_help_panel="LLM")] = 3,
    stream: Annotated[bool, typer.Option(
        "--stream", help="Ask the model for streamed answers.", rich_help_panel="LLM")] = False,
) -> None:
    """Analyse packages statically and report every malicious statement with its indicator.

    Exit codes: 0 nothing at or above --fail-on, 1 a verdict at or above it, 2 usage
    error, 3 a target unreadable or rejected.
    """
    from triage.errors import TriageError
    from triage.pipeline import Options
    from triage.pipeline import explain as run_explain

    if fmt is Format.html and len(targets) > 1 and (output is None or not output.is_dir()):
        typer.echo("error: several HTML reports need --output DIRECTORY", err=True)
        raise typer.Exit(EXIT_USAGE)
    models = tuple(model or ())
    if (dry_run and not models) or (len(models) > 1 and not dry_run):
        typer.echo("error: --dry-run needs --model, and several --model need --dry-run",
                   err=True)
        raise typer.Exit(EXIT_USAGE)
    opts = Options(min_confidence=min_confidence, artifact=artifact.value,
                   index_url=index_url, model=models[0] if models else None,
                   api_base=api_base, max_tokens_per_package=max_tokens_per_package,
                   context_tokens=context_tokens, review_pass=review, concurrency=concurrency,
                   llm_timeout_s=llm_timeout, llm_retries=llm_retries, llm_cache=llm_cache,
                   llm_db=str(llm_db) if llm_db else None, stream=stream)
    if dry_run:
        raise typer.Exit(_dry_run(targets, opts, models, fmt, output))
    reports: list[Report] = []
    code = EXIT_OK
    progress = len(targets) > 1 and sys.stderr.isatty()
    for i, target in enumerate(targets, start=1):
        if progress:
            sys.stderr.write(f"\r[{i}/{len(targets)}] {target[:60]:<60}")
            sys.stderr.flush()
        try:
            report = run_explain(target, opts)
        except TriageError as exc:
            typer.echo(f"error: {target}: {exc}", err=True)
            code = max(code, exc.exit_code)
            continue
        reports.append(report)
        if _over(report, fail_on):
            code = max(code, EXIT_FINDINGS)
    if progress:
        sys.stderr.write("\n")
    if reports:
        _write(reports, fmt, output, color)
    raise typer.Exit(code)


def _dry_run(targets: list[str], opts: object, models: tuple[str, ...], fmt: Format,
             output: Path | None) -> int:
    """Print the LLM pass's tokens and estimated cost per package and model; call nothing."""
    import dataclasses

    from triage.errors import TriageError
    from triage.llm_estimate import format_estimates
    from triage.localize import settings_from
    from triage.pipeline import estimate_llm

    estimates: list[object] = []
    code = EXIT_OK
    for target in targets:
        try:
            estimates += estimate_llm(target, opts, models)  # type: ignore[arg-type]
        except TriageError as exc:
            typer.echo(f"error: {target}: {exc}", err=True)
            code = max(code, exc.exit_code)
    if fmt in (Format.json, Format.jsonl):
        text = "".join(json.dumps(dataclasses.asdict(e), ensure_ascii=False) + "\n"  # type: ignore
                       for e in estimates)
    else:
        text = format_estimates(estimates, settings_from(opts).plan,  # type: ignore[arg-type]
                                details=len(targets) <= 50)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    return code


def _write(reports: list[Report], fmt: Format, output: Path | None,
           color: bool | None) -> None:
    if fmt is Format.html and output is not None and output.is_dir():
        from triage.render import RENDERERS

        for r in reports:
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in
                           f"{r.artifact.name}-{r.artifact.version}")[:120] or "report"
            (output / f"{name}.html").write_text(RENDERERS["html"](r), encoding="utf-8")
        return
    use_color = sys.stdout.isatty() if color is None and output is None else bool(color)
    text = _render_many(reports, fmt, use_color)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
