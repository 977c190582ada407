"""Peer tools (bandit, GuardDog) as systems: same packages, same finding format.

Peers need files on disk, so each archive is unpacked into a fresh temporary directory
outside the repository (regular files only, normalised relative paths, size and count
limits, no execute bits), the tool runs on it as a subprocess (both only parse or pattern-
match source; nothing of the package is imported or run), its line-level results are mapped
into :class:`~triage.model.Finding` records with paths as the archive names them, and the
directory is deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from triage.errors import ArtifactError
from triage.evaluation.corpus import is_zip_bytes
from triage.evaluation.peer_maps import bandit_indicator, guarddog_indicator
from triage.model import ArtifactInfo, Finding, Phase, Report, Source, Verdict

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_FILES = 20_000
DEFAULT_TOOL_TIMEOUT_S = 240.0
_LEVEL = {"LOW": 0, "MEDIUM": 1, "HIGH": 2}
_CONFIDENCE = {"LOW": 0.3, "MEDIUM": 0.6, "HIGH": 0.9}


def _safe_name(name: str) -> str | None:
    norm = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
    if norm in ("", ".") or norm.startswith("..") or "\0" in norm:
        return None
    return norm


def _members(data: bytes, filename: str) -> Iterator[tuple[str, bytes]]:
    if is_zip_bytes(data, filename):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if not info.is_dir() and info.file_size <= MAX_FILE_BYTES:
                    yield info.filename, zf.read(info)
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for member in tf:
            if member.isfile() and member.size <= MAX_FILE_BYTES:
                fh = tf.extractfile(member)
                if fh is not None:
                    yield member.name, fh.read()


def temp_root() -> Path:
    """The system temp directory, or /tmp when that lies inside the repository."""
    base = Path(tempfile.gettempdir()).resolve()
    return Path("/tmp") if base.is_relative_to(ROOT) else base


def unpack(data: bytes, filename: str, dest: Path) -> tuple[str, ...]:
    """Write the regular files of an archive under ``dest``; return their relative paths.

    Raises:
        ArtifactError: the archive is unreadable or over the file-count or size limits.
    """
    written: list[str] = []
    total = 0
    try:
        for name, content in _members(data, filename):
            rel = _safe_name(name)
            if rel is None:
                continue
            total += len(content)
            if len(written) >= MAX_FILES or total > MAX_TOTAL_BYTES:
                raise ArtifactError(f"{filename}: over the unpack limits")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                continue
            target.write_bytes(content)
            target.chmod(0o644)
            written.append(rel)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArtifactError(f"cannot unpack {filename}: {exc}") from exc
    return tuple(written)


def tool_path(name: str) -> str | None:
    """Executable of a console script: beside this interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def tool_version(dist: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _run_tool(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{Path(cmd[0]).name} ran past {timeout_s:g} s") from exc
    start = done.stdout.find("{")
    if start < 0:
        raise RuntimeError(f"{Path(cmd[0]).name} exit {done.returncode}: {done.stderr[-300:]}")
    return json.loads(done.stdout[start:])


def _code(root: Path, rel: str, start: int, end: int) -> str:
    try:
        lines = (root / rel).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[start - 1 : end])


def _type_name(indicator: str) -> str:
    from triage.taxonomy import load_taxonomy

    tax = load_taxonomy()
    return tax.get(indicator).type_name if indicator in tax else "peer rule"


def _finding(rel: str, start: int, end: int, code: str, indicator: str, severity: str,
             confidence: float, why: str) -> Finding:
    return Finding(
        file=rel, start_line=start, end_line=max(start, end), code=code, indicator=indicator,
        type=_type_name(indicator), phase=Phase.CALL,
        severity=severity, confidence=confidence, source=Source.STATIC, justification=why,
        statement_id=f"{rel}:{start}:0",
    )


def _report(data: bytes, filename: str, engine: str, verdict: Verdict,
            findings: list[Finding], files: tuple[str, ...], notes: list[str]) -> Report:
    findings.sort(key=lambda f: (f.file, f.start_line, f.end_line, f.indicator))
    return Report(
        artifact=ArtifactInfo(filename, "", hashlib.sha256(data).hexdigest(),
                              "wheel" if filename.endswith(".whl") else "sdist", filename),
        verdict=verdict, findings=tuple(findings), skipped=(),
        files_analysed=tuple(f for f in files if f.endswith(".py")), engine=engine,
        notes=tuple(notes),
    )


def bandit_report(data: bytes, filename: str, root: Path, files: tuple[str, ...],
                  timeout_s: float = DEFAULT_TOOL_TIMEOUT_S) -> Report:
    """Run bandit on an unpacked package under ``root`` and map its issues.

    Verdict: ``suspicious`` when an issue is at least medium severity and medium confidence
    (the common ``bandit -ll -ii`` gate), else ``benign``.
    """
    exe = tool_path("bandit")
    if exe is None:
        raise RuntimeError("bandit is not installed")
    out = _run_tool([exe, "-r", str(root), "-f", "json", "-q"], timeout_s)
    findings, flagged = [], False
    for issue in out.get("results", []):
        rel = Path(issue["filename"]).resolve().relative_to(root.resolve()).as_posix()
        lines = [int(n) for n in issue.get("line_range") or [issue["line_number"]]]
        sev, conf = str(issue["issue_severity"]), str(issue["issue_confidence"])
        flagged |= _LEVEL.get(sev, 0) >= 1 and _LEVEL.get(conf, 0) >= 1
        findings.append(_finding(
            rel, min(lines), max(lines), _code(root, rel, min(lines), max(lines)),
            bandit_indicator(str(issue["test_id"])), sev.lower(), _CONFIDENCE.get(conf, 0.5),
            f"{issue['test_id']} {issue.get('test_name', '')}: {issue.get('issue_text', '')}",
        ))
    notes = [f"bandit error: {e.get('filename', '')}: {e.get('reason', '')}"
             for e in out.get("errors", [])]
    verdict = Verdict("suspicious" if flagged else "benign", 50.0 if flagged else 0.0)
    return _report(data, filename, f"bandit {tool_version('bandit')}", verdict, findings,
                   files, notes)


_GUARDDOG_VERDICT = {"high_risk": "malicious", "suspicious": "suspicious"}


def guarddog_report(data: bytes, filename: str, root: Path, files: tuple[str, ...],
                    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S) -> Report:
    """Run ``guarddog pypi scan`` on an unpacked package and map its matches.

    Verdict: GuardDog's own risk label (``high_risk`` -> malicious, ``suspicious`` ->
    suspicious, otherwise benign). Metadata rules need registry data and do not run on a
    local directory; their messages, if any, go to the notes.
    """
    exe = tool_path("guarddog")
    if exe is None:
        raise RuntimeError("guarddog is not installed")
    out = _run_tool([exe, "pypi", "scan", str(root), "--output-format", "json"], timeout_s)
    findings, notes = [], []
    for rule, matches in (out.get("results") or {}).items():
        if isinstance(matches, str) and matches:
            notes.append(f"guarddog {rule}: {matches}")
            continue
        for m in matches if isinstance(matches, list) else ():
            path, _, line = str(m.get("location", "")).rpartition(":")
            if not path or not line.isdigit():
                continue
            start = int(line)
            end = start + str(m.get("match", "")).rstrip("\n").count("\n")
            threat = rule.startswith("threat-")
            findings.append(_finding(
                path, start, end, _code(root, path, start, end), guarddog_indicator(rule),
                "high" if threat else "low", 0.8 if threat else 0.4,
                f"{rule}: {m.get('message', '')}",
            ))
    notes += [f"guarddog error: {k}: {v}" for k, v in (out.get("errors") or {}).items()]
    label = str((out.get("risk_score") or {}).get("label", ""))
    score = float((out.get("risk_score") or {}).get("score", 0.0)) * 10
    verdict = Verdict(_GUARDDOG_VERDICT.get(label, "benign"), min(score, 100.0), (label,))
    return _report(data, filename, f"guarddog {tool_version('guarddog')}", verdict, findings,
                   files, notes)


PeerRunner = Callable[[bytes, str, Path, tuple[str, ...]], Report]
PEERS: dict[str, PeerRunner] = {"bandit": bandit_report, "guarddog": guarddog_report}


def run_peer(name: str, data: bytes, filename: str) -> Report:
    """Unpack ``data`` into a fresh temp dir outside the repo, run peer ``name``, clean up."""
    dest = Path(tempfile.mkdtemp(prefix=f"triage-{name}-", dir=temp_root()))
    try:
        files = unpack(data, filename, dest)
        return PEERS[name](data, filename, dest, files)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
