"""Run directories: a run killed midway resumes without recomputing; failures are recorded."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

from triage.evaluation.bench import run_bench
from triage.evaluation.datasets import load_dataset, resolve_dataset
from triage.evaluation.evaluate import score_run
from triage.evaluation.rundir import RunDir, slug
from triage.evaluation.systems import System
from triage.model import ArtifactInfo, Finding, Phase, Report, Source, Verdict

ROOT = Path(__file__).resolve().parents[1]
N = 6


def make_dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    ds.mkdir()
    for i in range(N):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            data = f"import os\nos.system('x{i}')\n".encode()
            info = tarfile.TarInfo(f"p{i}-1/setup.py")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        (ds / f"p{i}-1.tar.gz").write_bytes(buf.getvalue())
    return ds


def report(filename: str) -> Report:
    finding = Finding("x/setup.py", 2, 2, "os.system()", "code_execution_shell_command",
                      "Execution Mechanism", Phase.INSTALL, "high", 0.9, Source.STATIC, "t",
                      "x/setup.py:2:0")
    return Report(ArtifactInfo(filename, "1", "0" * 64, "sdist", filename),
                  Verdict("malicious", 90.0), (finding,), ())


def logging_system(log: Path, fail: frozenset[str] = frozenset()) -> System:
    def analyse(data: bytes, filename: str) -> Report:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(filename + "\n")
        if filename in fail:
            raise ConnectionError("model call failed: 503 from the server")
        return report(filename)

    return System("llm:fake", "llm", analyse, 30.0, version="fake")


SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from triage.evaluation.bench import run_bench
    from triage.evaluation.datasets import load_dataset, resolve_dataset
    from triage.evaluation.rundir import RunDir
    from triage.evaluation.systems import System
    from triage.model import ArtifactInfo, Report, Verdict

    ds, run, log = sys.argv[1:4]

    def analyse(data, filename):
        with open(log, "a") as fh:
            fh.write(filename + "\\n")
        time.sleep(0.4)
        return Report(ArtifactInfo(filename, "1", "0" * 64, "sdist", filename),
                      Verdict("benign", 0.0), (), ())

    system = System("llm:fake", "llm", analyse, 30.0, version="fake")
    run_bench(RunDir(Path(run)), load_dataset(resolve_dataset(ds)), [system], jobs=1,
              echo=lambda text: None)
""")


def test_killed_run_resumes_without_recomputing(tmp_path: Path):
    ds = make_dataset(tmp_path)
    run = tmp_path / "run"
    script = tmp_path / "bench_script.py"
    script.write_text(SCRIPT)
    first_log = tmp_path / "first.log"
    proc = subprocess.Popen([sys.executable, str(script), str(ds), str(run), str(first_log)],
                            cwd=ROOT, start_new_session=True)
    records = run / "systems" / slug("llm:fake")
    deadline = time.monotonic() + 60
    try:
        while len(list(records.glob("*.json"))) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no records written in time"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finished = {p.name: p.read_bytes() for p in records.glob("*.json")}
    assert 2 <= len(finished) < N
    assert not list(records.glob(".tmp-*"))  # no half-written record
    done_before = {json.loads(b)["archive"] for b in finished.values()}

    second_log = tmp_path / "second.log"
    runs = run_bench(RunDir(run), load_dataset(resolve_dataset(str(ds))),
                     [logging_system(second_log)], jobs=2, echo=lambda text: None)
    analysed = sorted(second_log.read_text().split())
    expected = sorted(f"p{i}-1.tar.gz" for i in range(N) if f"p{i}-1.tar.gz" not in done_before)
    assert analysed == expected
    assert (runs[0].ran, runs[0].reused, runs[0].failed) == (N - len(finished), len(finished), 0)
    for name, content in finished.items():
        assert (records / name).read_bytes() == content  # earlier results untouched
    assert len(list(records.glob("*.json"))) == N
    events = [json.loads(line)["event"] for line in (run / "transcript.jsonl").open()]
    assert events.count("start") == 2 and events[-1] == "end"

    # a third run has nothing left to do
    third_log = tmp_path / "third.log"
    run_bench(RunDir(run), load_dataset(resolve_dataset(str(ds))),
              [logging_system(third_log)], echo=lambda text: None)
    assert not third_log.exists()


def test_failed_model_calls_are_recorded_per_package_and_retried_on_request(tmp_path: Path):
    ds = make_dataset(tmp_path)
    run = tmp_path / "run"
    data = load_dataset(resolve_dataset(str(ds)))
    log = tmp_path / "calls.log"
    system = logging_system(log, fail=frozenset({"p1-1.tar.gz", "p4-1.tar.gz"}))
    (res,) = run_bench(RunDir(run), data, [system], jobs=2, echo=lambda text: None)
    assert (res.ran, res.failed) == (N, 2)
    records = RunDir(run).load_records("llm:fake")
    assert {a: r.status for a, r in records.items() if r.status != "ok"} == {
        "p1-1.tar.gz": "error", "p4-1.tar.gz": "error"}
    assert records["p1-1.tar.gz"].error.startswith(
        "ConnectionError: model call failed: 503 from the server at ")
    assert records["p0-1.tar.gz"].report is not None

    board = score_run(run, resamples=0)
    (row,) = board.rows
    assert (row.status, row.done, row.errors) == ("ran", N, 2)
    assert row.scores is not None and row.scores.detection_rate.raw.value == 4 / 6

    log.unlink()
    (res,) = run_bench(RunDir(run), data, [logging_system(log)], retry_errors=True,
                       echo=lambda text: None)
    assert sorted(log.read_text().split()) == ["p1-1.tar.gz", "p4-1.tar.gz"]
    assert all(r.status == "ok" for r in RunDir(run).load_records("llm:fake").values())


def test_skipped_system_is_listed_with_its_reason(tmp_path: Path):
    ds = make_dataset(tmp_path)
    run = tmp_path / "run"
    skipped = System("llm:local", "llm", None, 30.0, "no OpenAI-compatible server at x")
    run_bench(RunDir(run), load_dataset(resolve_dataset(str(ds))), [skipped],
              echo=lambda text: None)
    (row,) = score_run(run, resamples=0).rows
    assert (row.system, row.status, row.scores) == (
        "llm:local", "not run here: no OpenAI-compatible server at x", None)


def test_a_run_directory_refuses_another_dataset(tmp_path: Path):
    import pytest

    ds = make_dataset(tmp_path)
    run = tmp_path / "run"
    run_bench(RunDir(run), load_dataset(resolve_dataset(str(ds))), [], echo=lambda t: None)
    other = load_dataset(resolve_dataset(str(ds), limit=2))
    with pytest.raises(ValueError, match="holds a run of another dataset"):
        run_bench(RunDir(run), other, [], echo=lambda t: None)
