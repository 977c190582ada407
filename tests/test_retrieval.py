"""The Chroma-backed knowledge base: build offline, search, survive restarts, rebuild on edits.

The real store (ONNX model + lexical) is built once per module, with outbound network
connections blocked; the edit/rebuild tests use a copy of kb/ and a lexical stand-in for the
dense model so they stay fast.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from triage.cli_kb import kb_app
from triage.embedding import LexicalEmbedder
from triage.retrieval import MANIFEST, KnowledgeBase
from triage.retrieval_kb import kb_hash
from triage.retrieval_rank import RankOptions
from triage.taxonomy import kb_dir
from triage.workflows import load_workflows

REPO = Path(__file__).resolve().parents[1]
POPEN = ("subprocess.Popen('powershell -WindowStyle Hidden -EncodedCommand "
         "SQBuAHYAbwBrAGUALQBXAGUAYgBSAGUAcQB1AGUAcwB0AA==', "
         "creationflags=subprocess.CREATE_NO_WINDOW)")


def _loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


@pytest.fixture(scope="module")
def offline() -> Iterator[list[object]]:
    """Block every non-loopback connection and name lookup; record attempts."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_UNIX or _loopback(address):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"network blocked in tests: {address!r}")

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family == socket.AF_UNIX or _loopback(address):
            return real_connect_ex(self, address)
        attempts.append(address)
        raise OSError(f"network blocked in tests: {address!r}")

    def getaddrinfo(host: object, *args: object, **kw: object) -> object:
        if host is None or _loopback((host,)):
            return real_getaddrinfo(host, *args, **kw)  # type: ignore[arg-type]
        attempts.append(host)
        raise socket.gaierror(f"name lookup blocked in tests: {host!r}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield attempts


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("triage-home")


@pytest.fixture(scope="module")
def store(home: Path, offline: list[object]) -> KnowledgeBase:
    """The real store, built once from kb/ with the network blocked."""
    kb = KnowledgeBase(home=home)
    report = kb.build()
    assert (report.rebuilt, report.reason, report.indicators) == (True, "no store built yet", 57)
    workflows = [d for d in kb.documents.values() if d.kind == "workflow"]
    assert len(workflows) == len(load_workflows()) > 0  # kb/chains.yaml is embedded too
    assert report.examples == len(kb.examples)
    assert report.documents == 57 + len(kb.examples) + len(workflows)
    return kb


def test_build_is_offline_and_records_what_it_embedded(store: KnowledgeBase,
                                                       offline: list[object]) -> None:
    assert offline == []
    manifest = json.loads((store.path / MANIFEST).read_text())
    assert manifest["kb_hash"] == kb_hash(kb_dir())
    assert manifest["fingerprint"] == store.fingerprint()
    assert manifest["embedders"] == {"dense": "minilm-l6-int8-onnx@8199be6f699a-t128",
                                     "lexical": "lexical-hash-v1-2048"}
    status = store.status()
    assert (status.fresh, status.reason) == (True, "up to date")
    for space in ("dense", "lexical"):
        col = store._collection(space)
        assert col.metadata["fingerprint"] == store.fingerprint()
        with warnings.catch_warnings():  # chromadb warns that a None function is "legacy"
            warnings.simplefilter("ignore", DeprecationWarning)
            assert col.configuration["embedding_function"] is None  # never Chroma's default


def test_search_finds_the_labelled_indicators(store: KnowledgeBase,
                                              offline: list[object]) -> None:
    top3 = store.search(POPEN, k=3)
    assert set(top3.ids) == {"code_execution_encoded_command", "code_execution_subprocess_hidden",
                             "code_execution_runtime"}
    assert store.search("except: pass", k=1).ids == ("code_suppressing_error",)
    assert store.search('if os.name == "nt":', k=1).ids == ("code_execution_environment_specific",)
    hit = store.search("shutil.rmtree(os.path.expanduser('~'))", k=1, per_indicator=1).hits[0]
    assert hit.indicator.id == "code_remove_file"
    assert [e.example.id for e in hit.examples] == ["code_remove_file.m3"]
    assert hit.contrasts[0].example.label == "benign"
    assert offline == []


def test_search_modes_and_signals(store: KnowledgeBase) -> None:
    for mode in ("dense", "lexical"):
        res = store.search("except: pass", k=1, options=RankOptions(mode=mode))
        assert (res.mode, res.ids) == (mode, ("code_suppressing_error",))
    lexical = store.search("except: pass", k=2, options=RankOptions(mode="lexical"))
    assert lexical.hits[0].dense == 0.0 and lexical.hits[0].lexical > 0.9
    boosted = store.search("except: pass", k=1, signals=("code_read_crypto_wallet",),
                           options=RankOptions(signal_boost=5.0))
    assert boosted.ids == ("code_read_crypto_wallet",) and boosted.hits[0].from_signal


def test_store_survives_a_restart(store: KnowledgeBase, home: Path) -> None:
    code = ("from triage.retrieval import KnowledgeBase\n"
            "kb = KnowledgeBase()\n"
            "r = kb.build()\n"
            "print(r.rebuilt, r.reason)\n"
            "print(kb.search('except: pass', k=1).ids)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"TRIAGE_HOME": str(home), "PATH": "/usr/bin:/bin"}, cwd=REPO,
                         timeout=120, check=True)
    assert out.stdout.splitlines() == ["False up to date", "('code_suppressing_error',)"]


def test_cli_commands(store: KnowledgeBase, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    runner = CliRunner()
    build = runner.invoke(kb_app, ["build"])
    assert (build.exit_code, build.output) == (
        0, f"knowledge base up to date at {home / 'kb-store'} ({len(store.documents)} "
        "documents)\n")
    search = runner.invoke(kb_app, ["search", "except: pass", "-k", "2", "--json",
                                    "--examples", "1"])
    assert search.exit_code == 0
    data = json.loads(search.output)
    assert data["hits"][0]["indicator"] == "code_suppressing_error"
    assert data["hits"][0]["examples"][0]["label"] == "malicious"
    text = runner.invoke(kb_app, ["search", "except: pass", "-k", "1", "--examples", "0"])
    assert text.exit_code == 0
    assert text.output.startswith("1. code_suppressing_error  ")
    assert text.output.endswith("  (Error suppression; low)\n")
    bad = runner.invoke(kb_app, ["search", "x", "--signal", "code_nope"])
    assert bad.exit_code == 2


def test_cli_show_and_list_need_no_store(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "none"))
    runner = CliRunner()
    shown = runner.invoke(kb_app, ["show", "code_remove_file"])
    assert shown.exit_code == 0
    assert shown.output.splitlines()[:2] == [
        "code_remove_file: File deletion",
        "type: System Impact   severity: high   cwe: CWE-506   att&ck: T1070.004, T1485"]
    assert "[malicious] code_remove_file.m1  (examples/system_impact.yaml)" in shown.output
    example = runner.invoke(kb_app, ["show", "code_remove_file.b2"])
    assert example.output.splitlines()[0] == "[benign] code_remove_file.b2  " \
                                             "(examples/system_impact.yaml)"
    missing = runner.invoke(kb_app, ["show", "code_nope"])
    assert missing.exit_code == 2
    listed = runner.invoke(kb_app, ["list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split()[:3] == ["code_execution_runtime", "execution_stage", "5m/2b"]
    assert lines[-1].startswith("57 indicators, ")
    assert not (tmp_path / "none").exists()


def test_kb_edit_triggers_rebuild(tmp_path: Path, offline: list[object]) -> None:
    kb_copy = tmp_path / "kb"
    (kb_copy / "examples").mkdir(parents=True)
    shutil.copy(kb_dir() / "taxonomy.yaml", kb_copy / "taxonomy.yaml")
    for f in (kb_dir() / "examples").glob("*.yaml"):
        shutil.copy(f, kb_copy / "examples" / f.name)
    home = tmp_path / "home"
    fast = LexicalEmbedder(dim=256)  # stands in for the dense model to keep this test fast
    first = KnowledgeBase(home=home, kb=kb_copy, dense=fast)
    assert first.build().rebuilt is True
    again = KnowledgeBase(home=home, kb=kb_copy, dense=fast)
    unchanged = again.build()
    assert (unchanged.rebuilt, unchanged.reason) == (False, "up to date")

    extra = ("  - id: code_remove_file.zz\n    indicator: code_remove_file\n"
             "    label: malicious\n    code: os.unlink(SENTINEL_LOCKFILE_QQQ)\n"
             "    why: test edit\n")
    path = kb_copy / "examples" / "system_impact.yaml"
    path.write_text(path.read_text() + extra)
    status = again.status()
    assert (status.fresh, status.reason) == (
        False, "kb/ or the embedders changed since the store was built")
    hit = again.search("os.unlink(SENTINEL_LOCKFILE_QQQ)", k=1, per_indicator=1).hits[0]
    assert again.last_build is not None and again.last_build.rebuilt
    assert again.last_build.reason == "kb/ or the embedders changed since the store was built"
    assert [e.example.id for e in hit.examples] == ["code_remove_file.zz"]
    manifest = json.loads((home / "kb-store" / MANIFEST).read_text())
    assert manifest["kb_hash"] == kb_hash(kb_copy)

    other = KnowledgeBase(home=home, kb=kb_copy, dense=LexicalEmbedder(dim=128))
    assert other.status().reason == "kb/ or the embedders changed since the store was built"
    assert offline == []


def test_half_built_store_is_stale(tmp_path: Path) -> None:
    kb_copy = tmp_path / "kb"
    (kb_copy / "examples").mkdir(parents=True)
    shutil.copy(kb_dir() / "taxonomy.yaml", kb_copy / "taxonomy.yaml")
    kb = KnowledgeBase(home=tmp_path / "home", kb=kb_copy, dense=LexicalEmbedder(dim=64))
    kb.build()
    (kb.path / MANIFEST).unlink()
    assert kb.status().reason == "no store built yet"
    kb.build()
    kb._chroma().delete_collection("triage-kb-lexical")
    kb._collections.clear()
    assert kb.status().reason == "collection lexical is missing"
    assert kb.build().rebuilt is True


def test_unreadable_store_is_replaced(tmp_path: Path) -> None:
    kb_copy = tmp_path / "kb"
    (kb_copy / "examples").mkdir(parents=True)
    shutil.copy(kb_dir() / "taxonomy.yaml", kb_copy / "taxonomy.yaml")
    chroma = tmp_path / "home" / "kb-store" / "chroma"
    chroma.mkdir(parents=True)
    (chroma / "chroma.sqlite3").write_bytes(b"not a database" * 64)
    (chroma.parent / MANIFEST).write_text('{"schema": 1, "fingerprint": "x"}')
    kb = KnowledgeBase(home=tmp_path / "home", kb=kb_copy, dense=LexicalEmbedder(dim=64))
    report = kb.build()
    assert (report.rebuilt, report.reason, report.documents) == (True, "no store built yet", 57)
    assert kb.search("except: pass", k=1).ids == ("code_suppressing_error",)


def test_cli_import_is_light() -> None:
    code = ("import sys, triage.cli, triage.cli_kb, triage.retrieval\n"
            "print(sorted(m for m in ('chromadb', 'onnxruntime', 'tokenizers', 'numpy')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True)
    assert out.stdout == "[]\n"
