"""Serve a pulled GGUF with llama.cpp on 127.0.0.1 and resolve ``local`` / ``local:<name>``.

``serve`` runs llama-cpp-python's OpenAI-compatible server (``pip install 'triage[local]'``) as
a child process on 127.0.0.1; ``--model local`` (or ``local:<name>``) then talks to it like to
any OpenAI-compatible server (vLLM, Ollama...). Pulling is :mod:`triage.local_model`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from triage.errors import UsageError
from triage.local_model import LocalModelError, is_pulled, model_path, spec_for

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
"""Matches ``triage.llm.LOCAL_API_BASE`` so ``--model local`` needs no ``--api-base``."""
API_BASE_ENV = "TRIAGE_LOCAL_API_BASE"

def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def served_models(api_base: str, timeout_s: float = 2.0) -> tuple[str, ...]:
    """Model IDs an OpenAI-compatible server lists at ``<api_base>/models`` (empty if down)."""
    try:
        with urllib.request.urlopen(api_base.rstrip("/") + "/models",  # noqa: S310 - local URL
                                    timeout=timeout_s) as resp:
            data = json.load(resp)
    except (OSError, ValueError, urllib.error.URLError):
        return ()
    return tuple(str(m.get("id", "")) for m in data.get("data", ()) if isinstance(m, dict))


def unreachable(api_base: str, timeout_s: float = 2.0) -> str:
    """Why nothing answers HTTP at ``api_base`` ("" when something does, even an error)."""
    try:
        with urllib.request.urlopen(api_base.rstrip("/") + "/models",  # noqa: S310 - local URL
                                    timeout=timeout_s):
            return ""
    except urllib.error.HTTPError:
        return ""
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return str(getattr(exc, "reason", exc))


def llama_server_available() -> bool:
    """True when llama-cpp-python with its server extra can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None
               for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette"))


class LocalServer:
    """llama-cpp-python's OpenAI-compatible server as a child process (a context manager)."""

    def __init__(self, gguf: Path, alias: str, *, host: str = DEFAULT_HOST,
                 port: int = DEFAULT_PORT, n_ctx: int = 8192, n_threads: int = 0,
                 log_path: Path | None = None) -> None:
        self.gguf, self.alias, self.host, self.port = gguf, alias, host, port
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.log_path = log_path or gguf.with_name(f"server-{alias}.log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server command line."""
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf),
               "--model_alias", self.alias, "--host", self.host, "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--verbose", "False"]
        if self.n_threads > 0:
            cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd

    def start(self, timeout_s: float = 120.0) -> LocalServer:
        """Start the server and wait until it lists the model.

        Raises:
            LocalModelError: llama-cpp-python is missing, the port is taken, or the server
                exited or did not answer in time.
        """
        if not llama_server_available():
            raise LocalModelError("serving needs llama-cpp-python: pip install 'triage[local]'")
        if served_models(self.api_base, timeout_s=0.5):
            raise LocalModelError(f"something already answers on {self.api_base}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # busy-waiting OpenMP threads collapse throughput on a shared, oversubscribed CPU
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalModelError(f"llama.cpp server exited with {self.proc.returncode}: "
                                      f"{self._log_tail()}")
            if self.alias in served_models(self.api_base, timeout_s=1.0):
                return self
            time.sleep(0.25)
        self.stop()
        raise LocalModelError(f"llama.cpp server did not answer within {timeout_s:.0f}s: "
                              f"{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Terminate the server (kill it if it does not exit in ``timeout_s``)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)

    def __enter__(self) -> LocalServer:
        return self if self.proc is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(name: str, *, port: int = DEFAULT_PORT, n_ctx: int = 0, n_threads: int = 0,
          root: Path | None = None) -> LocalServer:
    """Start the server for a pulled model (see :class:`LocalServer`); the caller stops it.

    Raises:
        UsageError: unknown model name.
        LocalModelError: the model is not pulled, or the server did not start.
    """
    spec = spec_for(name)
    if not is_pulled(spec, root):
        raise LocalModelError(f"{name} is not pulled: run `triage model pull {name}`")
    return LocalServer(model_path(spec, root), spec.name, port=port,
                       n_ctx=n_ctx or spec.context, n_threads=n_threads).start()


def resolve_local(model: str, api_base: str | None = None) -> tuple[str, str]:
    """The litellm model string and server URL for ``local`` or ``local:<name>``.

    ``local:<name>`` names the model so cached answers of different local models never mix;
    plain ``local`` asks the server which model it serves (``openai/local`` if it is down).
    The URL is ``api_base``, else ``$TRIAGE_LOCAL_API_BASE``, else 127.0.0.1:8080.

    Raises:
        UsageError: ``model`` is not ``local`` or ``local:<name>``.
    """
    base = (api_base or os.environ.get(API_BASE_ENV)
            or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/v1").rstrip("/")
    head, _, name = model.strip().partition(":")
    if head != "local" or (_ and not name):
        raise UsageError(f"not a local model: {model!r} (expected local or local:<name>)")
    if not name:
        ids = served_models(base)
        name = ids[0] if len(ids) == 1 else "local"
    return f"openai/{name}", base


def is_local(model: str | None) -> bool:
    """True for ``local`` and ``local:<name>``."""
    text = (model or "").strip()
    return text == "local" or text.startswith("local:")
