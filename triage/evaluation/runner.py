"""Run the analysis over many archives, each in its own process, with a timeout.

Each archive is analysed in a forked child process, so one archive that hangs, crashes the
interpreter or exhausts memory costs only its own result: the parent kills it at the
deadline and records an error. Nothing here executes package code; the analysis function
is static.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import multiprocessing
import multiprocessing.connection
import resource
import tarfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import PurePosixPath
from typing import Any

from triage.model import Report

Analyse = Callable[[bytes, str], Report]
"""``explain_bytes(data, filename) -> Report``."""

OK = "ok"
ERROR = "error"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class RunRecord:
    """The outcome of analysing one archive."""

    archive: str
    """Archive path relative to the corpus root."""
    status: str
    """``ok``, ``error`` (the analysis raised or the worker died) or ``timeout``."""
    seconds: float
    """Analysis time (measured in the worker for ``ok``; wall time otherwise)."""
    report: Mapping[str, Any] | None = None
    """The report as JSON-ready data, for ``ok`` only."""
    error: str = ""
    """Why there is no report, for ``error`` and ``timeout``."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (one line of the results file)."""
        return {
            "archive": self.archive,
            "status": self.status,
            "seconds": round(self.seconds, 4),
            "error": self.error,
            "report": self.report,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            archive=str(data["archive"]),
            status=str(data["status"]),
            seconds=float(data["seconds"]),
            report=data.get("report"),
            error=str(data.get("error", "")),
        )


def _plain(value: Any) -> Any:
    """Dataclass/enum/tuple tree -> JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON renderer's dict when it exists, else a plain dataclass dump."""
    try:
        from triage.render.json_report import report_to_dict as render
    except ImportError:
        return _plain(report)
    return render(report)


def warm_up(analyse: Analyse) -> str:
    """Analyse a tiny benign sdist in the parent, so forked workers inherit loaded modules
    and the taxonomy, and per-archive times measure analysis, not imports. Returns why it
    failed ("" when it did not); the real run reports errors per archive anyway."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"from setuptools import setup\nsetup(name='warmup', version='0')\n"
        info = tarfile.TarInfo("warmup-0/setup.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    try:
        analyse(buf.getvalue(), "warmup-0.tar.gz")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def analyse_one(analyse: Analyse, archive: str, data: bytes) -> RunRecord:
    """Analyse one archive in this process; an exception becomes an ``error`` record."""
    start = time.perf_counter()
    try:
        report = analyse(data, PurePosixPath(archive).name)
        seconds = time.perf_counter() - start
        return RunRecord(archive, OK, seconds, report_to_dict(report))
    except Exception as exc:  # one bad archive must not stop the run
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {tb[-1].filename}:{tb[-1].lineno}" if tb else ""
        return RunRecord(
            archive, ERROR, time.perf_counter() - start, None, f"{type(exc).__name__}: {exc}{where}"
        )


def _child(
    analyse: Analyse,
    archive: str,
    data: bytes,
    conn: Connection,
    memory_limit_mb: int,
) -> None:
    if memory_limit_mb > 0:
        limit = memory_limit_mb * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass  # cannot lower the limit here: run without it
    try:
        conn.send(analyse_one(analyse, archive, data))
    except BaseException as exc:  # e.g. MemoryError while pickling: report, do not hang
        conn.send(RunRecord(archive, ERROR, 0.0, None, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_archives(
    items: Iterable[tuple[str, bytes]],
    analyse: Analyse,
    jobs: int = 2,
    timeout_s: float = 60.0,
    memory_limit_mb: int = 3072,
) -> Iterator[RunRecord]:
    """Analyse every ``(archive, bytes)`` item, ``jobs`` at a time, one process each.

    Records are yielded in completion order. An archive still running after ``timeout_s``
    is killed and yields a ``timeout`` record; a worker that dies without answering yields
    an ``error`` record with its exit code.

    Args:
        items: ``(archive_relpath, bytes)`` pairs, read lazily.
        analyse: the analysis function; must be picklable where fork is unavailable.
        jobs: concurrent worker processes (at least 1).
        timeout_s: per-archive wall-clock limit.
        memory_limit_mb: address-space limit per worker; 0 for none.
    """
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pending = iter(items)
    running: dict[Any, tuple[Any, str, float]] = {}
    try:
        yield from _schedule(pending, running, ctx, analyse, jobs, timeout_s, memory_limit_mb)
    finally:  # the caller stopped early (or an error): leave no worker behind
        for proc, _, _ in running.values():
            proc.kill()
            proc.join(5)


def _schedule(
    pending: Iterator[tuple[str, bytes]],
    running: dict[Any, tuple[Any, str, float]],
    ctx: Any,
    analyse: Analyse,
    jobs: int,
    timeout_s: float,
    memory_limit_mb: int,
) -> Iterator[RunRecord]:
    exhausted = False
    while True:
        while not exhausted and len(running) < max(1, jobs):
            item = next(pending, None)
            if item is None:
                exhausted = True
                break
            archive, data = item
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_child, args=(analyse, archive, data, send, memory_limit_mb), daemon=True
            )
            proc.start()
            send.close()
            running[recv] = (proc, archive, time.monotonic())
        if not running:
            return
        for ready in multiprocessing.connection.wait(list(running), timeout=0.1):
            conn: Connection = ready  # type: ignore[assignment]  # we only wait on Connections
            proc, archive, started = running.pop(conn)
            try:
                record: RunRecord = conn.recv()
            except (EOFError, OSError):
                proc.join(5)
                record = RunRecord(
                    archive,
                    ERROR,
                    time.monotonic() - started,
                    None,
                    f"worker died without a result (exit code {proc.exitcode})",
                )
            conn.close()
            proc.join(5)
            yield record
        now = time.monotonic()
        for conn, (proc, archive, started) in list(running.items()):
            if now - started > timeout_s:
                proc.kill()
                proc.join(5)
                conn.close()
                del running[conn]
                yield RunRecord(
                    archive, TIMEOUT, now - started, None, f"no result within {timeout_s:g} s"
                )
