"""Peer adapters: safe unpacking, bandit and GuardDog output mapped to findings."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from triage.errors import ArtifactError
from triage.evaluation import peers
from triage.evaluation.peer_maps import bandit_indicator, guarddog_indicator

SETUP = b"import os\nos.system('echo hi')\nexec('1')\n"


def tar_bytes(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info in entries:
            content = data.get(info.name)
            if content is not None:
                info.size = len(content)
            tf.addfile(info, io.BytesIO(content) if content is not None else None)
    return buf.getvalue()


def regular(name: str, mode: int = 0o755) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info


def test_unpack_keeps_regular_files_inside_and_drops_everything_else(tmp_path: Path):
    link = tarfile.TarInfo("p-1/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    data = tar_bytes(
        [regular("p-1/setup.py"), regular("../evil.py"), regular("/abs.py"), link,
         regular("p-1/a/../b.py")],
        {"p-1/setup.py": SETUP, "../evil.py": b"x", "/abs.py": b"y", "p-1/a/../b.py": b"z"},
    )
    dest = tmp_path / "out"
    dest.mkdir()
    files = peers.unpack(data, "p-1.tar.gz", dest)
    assert files == ("p-1/setup.py", "abs.py", "p-1/b.py")
    assert (dest / "p-1/setup.py").read_bytes() == SETUP
    assert (dest / "p-1/setup.py").stat().st_mode & 0o777 == 0o644
    assert not (tmp_path / "evil.py").exists() and not (dest / "p-1/link").exists()


def test_unpack_reads_zip_named_tar_gz_and_rejects_garbage(tmp_path: Path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/__init__.py", "x = 1\n")
    assert peers.unpack(buf.getvalue(), "m-1-py3-none-any.tar.gz", tmp_path) == (
        "m/__init__.py",)
    with pytest.raises(ArtifactError, match="cannot unpack"):
        peers.unpack(b"garbage", "g.tar.gz", tmp_path)


def test_temp_root_is_outside_the_repository():
    assert not peers.temp_root().resolve().is_relative_to(peers.ROOT)


def test_rule_maps_fall_back_to_tool_ids():
    assert bandit_indicator("B605") == "code_execution_shell_command"
    assert bandit_indicator("B404") == "bandit:B404"
    assert guarddog_indicator("threat-network-exfil-messenger") == "code_exfiltration_webhook"
    assert guarddog_indicator("capability-network-outbound") == (
        "guarddog:capability-network-outbound")


def fake_tool(monkeypatch: pytest.MonkeyPatch, output: dict[str, Any]) -> list[list[str]]:
    calls: list[list[str]] = []

    def run(cmd: list[str], timeout_s: float) -> dict[str, Any]:
        calls.append(cmd)
        return output

    monkeypatch.setattr(peers, "_run_tool", run)
    monkeypatch.setattr(peers, "tool_path", lambda name: f"/bin/{name}")
    return calls


def test_bandit_issues_become_findings_with_archive_paths(tmp_path, monkeypatch):
    (tmp_path / "p-1").mkdir()
    (tmp_path / "p-1/setup.py").write_bytes(SETUP)
    issue = {"filename": str(tmp_path / "p-1/setup.py"), "line_number": 2, "line_range": [2],
             "test_id": "B605", "test_name": "start_process_with_a_shell",
             "issue_severity": "HIGH", "issue_confidence": "HIGH", "issue_text": "shell"}
    low = {**issue, "line_number": 3, "line_range": [3, 4], "test_id": "B999",
           "issue_severity": "LOW", "issue_confidence": "HIGH", "issue_text": "odd"}
    calls = fake_tool(monkeypatch, {"results": [issue, low], "errors": []})
    report = peers.bandit_report(SETUP, "p-1.tar.gz", tmp_path, ("p-1/setup.py",))
    assert calls == [["/bin/bandit", "-r", str(tmp_path), "-f", "json", "-q"]]
    got = [(f.file, f.start_line, f.end_line, f.indicator, f.severity, f.confidence, f.code)
           for f in report.findings]
    assert got == [
        ("p-1/setup.py", 2, 2, "code_execution_shell_command", "high", 0.9,
         "os.system('echo hi')"),
        ("p-1/setup.py", 3, 4, "bandit:B999", "low", 0.9, "exec('1')"),
    ]
    assert report.verdict.label == "suspicious"
    assert report.files_analysed == ("p-1/setup.py",)


def test_bandit_low_severity_only_is_benign(tmp_path, monkeypatch):
    issue = {"filename": str(tmp_path / "x.py"), "line_number": 1, "test_id": "B404",
             "issue_severity": "LOW", "issue_confidence": "HIGH"}
    fake_tool(monkeypatch, {"results": [issue]})
    report = peers.bandit_report(b"", "x.tar.gz", tmp_path, ())
    assert report.verdict.label == "benign"
    assert [(f.file, f.indicator) for f in report.findings] == [("x.py", "bandit:B404")]


def test_guarddog_matches_and_risk_label(tmp_path, monkeypatch):
    out = {
        "results": {
            "threat-process-download-exec": [
                {"location": "p-1/setup.py:2", "match": "os.system(\n'curl", "message": "dl"}],
            "capability-process-spawn": [{"location": "p-1/setup.py:2", "match": "os.system("}],
            "capability-network-outbound": {},
            "typosquatting": "looks like requests",
        },
        "errors": {"rule-x": "failed"},
        "risk_score": {"score": 8.8, "label": "high_risk"},
    }
    calls = fake_tool(monkeypatch, out)
    report = peers.guarddog_report(SETUP, "p-1.tar.gz", tmp_path, ("p-1/setup.py",))
    assert calls == [["/bin/guarddog", "pypi", "scan", str(tmp_path), "--output-format",
                      "json"]]
    assert [(f.file, f.start_line, f.end_line, f.indicator, f.severity)
            for f in report.findings] == [
        ("p-1/setup.py", 2, 2, "guarddog:capability-process-spawn", "low"),
        ("p-1/setup.py", 2, 3, "code_download_payload", "high"),
    ]
    assert (report.verdict.label, report.verdict.score) == ("malicious", 88.0)
    assert report.notes == ("guarddog typosquatting: looks like requests",
                            "guarddog error: rule-x: failed")


@pytest.mark.parametrize(("label", "verdict"), [("suspicious", "suspicious"),
                                                 ("low", "benign"),
                                                 ("no_risks_detected", "benign")])
def test_guarddog_verdicts(tmp_path, monkeypatch, label, verdict):
    fake_tool(monkeypatch, {"results": {}, "risk_score": {"score": 1, "label": label}})
    assert peers.guarddog_report(b"", "x.tar.gz", tmp_path, ()).verdict.label == verdict


def test_run_peer_cleans_up_its_temp_dir(tmp_path, monkeypatch):
    seen: list[Path] = []

    def fake(data: bytes, filename: str, root: Path, files: tuple[str, ...]):
        seen.append(root)
        assert (root / "p-1/setup.py").read_bytes() == SETUP
        raise RuntimeError("tool crashed")

    monkeypatch.setitem(peers.PEERS, "bandit", fake)
    data = tar_bytes([regular("p-1/setup.py")], {"p-1/setup.py": SETUP})
    with pytest.raises(RuntimeError, match="tool crashed"):
        peers.run_peer("bandit", data, "p-1.tar.gz")
    assert seen and not seen[0].exists()
    assert not seen[0].is_relative_to(peers.ROOT)


@pytest.mark.skipif(peers.tool_path("bandit") is None, reason="bandit not installed")
def test_real_bandit_on_a_tiny_package():
    data = tar_bytes([regular("p-1/setup.py")], {"p-1/setup.py": SETUP})
    report = peers.run_peer("bandit", data, "p-1.tar.gz")
    assert [(f.file, f.start_line, f.indicator) for f in report.findings] == [
        ("p-1/setup.py", 2, "code_execution_shell_command"),  # B605 shell
        ("p-1/setup.py", 2, "code_execution_shell_command"),  # B607 partial path
        ("p-1/setup.py", 3, "code_execution_dynamic_evaluation"),
    ]
    assert report.engine.startswith("bandit ")
