"""Corpus reading, the process-per-archive runner, scoring glue and the summary, end to end
on archives built in tmp_path (no real corpus, no pipeline)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import zipfile
from pathlib import Path

from triage.evaluation.corpus import Label, iter_archives, read_archive, read_members
from triage.evaluation.metrics import NO_VERDICT, Ratio, score, worst_recall
from triage.evaluation.runner import ERROR, OK, TIMEOUT, RunRecord, analyse_one, run_archives
from triage.evaluation.scoring import (
    build_cases,
    read_records,
    spans_from_report,
    unanalysed_label_files,
    verdict_of,
)
from triage.evaluation.summary import render_summary, scores_to_json
from triage.model import ArtifactInfo, Finding, Phase, Report, Source, Verdict

SETUP = "import os\n\n# comment\nos.system('echo hi')\nx = 1\n"


def make_sdist(name: str, files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_corpus_zip(tmp_path: Path, archives: dict[str, bytes]) -> Path:
    path = tmp_path / "corpus.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("malregistry/", b"")
        for rel, data in archives.items():
            zf.writestr(f"malregistry/{rel}", data)
    return path


def fake_report(filename: str, findings: tuple[tuple[str, int, int, str], ...]) -> Report:
    return Report(
        artifact=ArtifactInfo(filename, "1", "0" * 64, "sdist", filename),
        verdict=Verdict("malicious" if findings else "benign", 90.0 if findings else 0.0),
        findings=tuple(
            Finding(
                file=f,
                start_line=s,
                end_line=e,
                code="",
                indicator=ind,
                type="execution_stage",
                phase=Phase.INSTALL,
                severity="high",
                confidence=0.9,
                source=Source.STATIC,
                justification="test",
                statement_id=f"{f}:{s}:0",
            )
            for f, s, e, ind in findings
        ),
        skipped=(),
    )


def analyse_ok(data: bytes, filename: str) -> Report:
    if filename.startswith("slow"):
        time.sleep(30)
    if filename.startswith("boom"):
        raise RuntimeError("bad archive")
    if filename.startswith("die"):
        os._exit(7)
    return fake_report(filename, (("p-1/setup.py", 4, 5, "code_execution_runtime"),))


def test_iter_archives_and_read_members(tmp_path: Path):
    sdist = make_sdist("p-1", {"setup.py": SETUP, "PKG-INFO": "Name: p\n"})
    zip_path = make_corpus_zip(tmp_path, {"p/1/p-1.tar.gz": sdist, "a/2/a-2.tar.gz": sdist})
    assert [rel for rel, _ in iter_archives(zip_path)] == ["a/2/a-2.tar.gz", "p/1/p-1.tar.gz"]
    assert read_archive(zip_path, "p/1/p-1.tar.gz") == sdist
    assert read_members(sdist, "p-1.tar.gz", {"p-1/setup.py", "p-1/missing.py"}) == {
        "p-1/setup.py": SETUP
    }
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("p/__init__.py", b"\xff\xfeX = 1\n")  # not UTF-8: latin-1 fallback
    assert read_members(wheel.getvalue(), "p-1-py3-none-any.whl", {"p/__init__.py"}) == {
        "p/__init__.py": "\xff\xfeX = 1\n"
    }


def test_analyse_one_records_exceptions():
    record = analyse_one(analyse_ok, "boom/1/boom-1.tar.gz", b"")
    assert (record.archive, record.status, record.report) == ("boom/1/boom-1.tar.gz", ERROR, None)
    assert record.error.startswith("RuntimeError: bad archive at ")
    ok = analyse_one(analyse_ok, "p/1/p-1.tar.gz", b"")
    assert ok.status == OK and ok.report is not None
    assert ok.report["verdict"]["label"] == "malicious"
    assert spans_from_report(ok.report)[0].indicator == "code_execution_runtime"


def test_run_archives_survives_errors_timeouts_and_dead_workers():
    items = [
        ("slow/1/slow-1.tar.gz", b""),
        ("p/1/p-1.tar.gz", b""),
        ("boom/1/boom-1.tar.gz", b""),
        ("die/1/die-1.tar.gz", b""),
    ]
    started = time.monotonic()
    records = {r.archive: r for r in run_archives(items, analyse_ok, jobs=2, timeout_s=1.5)}
    assert time.monotonic() - started < 10
    assert {a: r.status for a, r in records.items()} == {
        "slow/1/slow-1.tar.gz": TIMEOUT,
        "p/1/p-1.tar.gz": OK,
        "boom/1/boom-1.tar.gz": ERROR,
        "die/1/die-1.tar.gz": ERROR,
    }
    assert records["slow/1/slow-1.tar.gz"].error == "no result within 1.5 s"
    assert records["die/1/die-1.tar.gz"].error == "worker died without a result (exit code 7)"
    assert verdict_of(records["boom/1/boom-1.tar.gz"]) == NO_VERDICT
    assert verdict_of(records["p/1/p-1.tar.gz"]) == "malicious"


def test_records_round_trip_and_score_end_to_end(tmp_path: Path):
    report = analyse_one(analyse_ok, "p/1/p-1.tar.gz", b"")
    failed = RunRecord("q/1/q-1.tar.gz", TIMEOUT, 60.0, None, "no result within 60 s")
    path = tmp_path / "run.jsonl"
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in (report, failed)))
    records = read_records(path)
    assert [r.archive for r in records] == ["p/1/p-1.tar.gz", "q/1/q-1.tar.gz"]
    assert records[1] == failed

    labels = (
        Label("p", "p/1/p-1.tar.gz", "p-1/setup.py", (1, 2, 3, 4), "code_execution_runtime",
              "code_execution_runtime", False),
        Label("q", "q/1/q-1.tar.gz", "q-1/setup.py", (7,), "code_execution_runtime",
              "code_execution_runtime", False),
    )  # fmt: skip
    sources = {("p/1/p-1.tar.gz", "p-1/setup.py"): SETUP}

    def read_sources(archive: str, wanted: frozenset[str]) -> dict[str, str]:
        return {f: sources[(archive, f)] for f in wanted if (archive, f) in sources}

    cases = build_cases(records, labels, {"p/1/p-1.tar.gz": "c1"}, read_sources)
    assert [(c.archive, c.cluster, c.verdict) for c in cases] == [
        ("p/1/p-1.tar.gz", "c1", "malicious"),
        ("q/1/q-1.tar.gz", "archive:q/1/q-1.tar.gz", NO_VERDICT),
    ]
    scores = score(cases, lambda i: i)
    # p: labelled code lines {1, 4} (2 blank, 3 comment), finding 4-5 -> covered {4}, predicted
    # {4, 5}; q: one labelled line, no source text (every line counts), no finding.
    assert scores.code.line_recall.raw == Ratio(1, 3)
    assert scores.code.line_precision.raw == Ratio(1, 2)
    assert scores.package_recall.raw == Ratio(1, 2)
    assert scores_to_json(scores)["package_recall"]["raw"] == {
        "numerator": 1.0,
        "denominator": 2.0,
        "value": 0.5,
    }
    worst = worst_recall(cases, "code", lambda i: i)
    text = render_summary(scores, records, [worst], wall_s=1.5)
    assert "| package recall | 0.500 (1/2) | 0.500 (1/2) |" in text.splitlines()
    assert "| code line recall | 0.333 (1/3) | 0.333 (1/3) |" in text.splitlines()
    assert "| metadata line recall | n/a (0/0) | n/a (0/0) |" in text.splitlines()
    assert "- `q/1/q-1.tar.gz`: timeout: no result within 60 s" in text.splitlines()
    assert "- total wall time: 1.5 s" in text.splitlines()
    assert (
        "| `q/1/q-1.tar.gz` | 0/1 | q-1/setup.py: 7 | code_execution_runtime |" in text.splitlines()
    )
    assert "| `p/1/p-1.tar.gz` | 1/2 | p-1/setup.py: 1 | code_execution_runtime |" in (
        text.splitlines()
    )


def test_unanalysed_label_files_flags_path_mismatch():
    ok = RunRecord("p/1/p-1.tar.gz", OK, 0.1, {"files_analysed": ["setup.py"], "findings": []})
    no_list = RunRecord("q/1/q-1.tar.gz", OK, 0.1, {"findings": []})
    labels = tuple(
        Label(a.split("/")[0], a, f, (1,), "code_execution_runtime", "x", False)
        for a, f in (("p/1/p-1.tar.gz", "p-1/setup.py"), ("q/1/q-1.tar.gz", "q-1/setup.py"))
    )
    assert unanalysed_label_files([ok, no_list], labels) == (("p/1/p-1.tar.gz", "p-1/setup.py"),)
