"""The litellm client and its SQLite store: backoff, errors, cache keys, numbered migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.llm_server import Reply, ScriptedServer
from triage.llm import (
    ClientSettings,
    LiteLlmChat,
    LlmConfigError,
    LlmError,
    ModelLimits,
    model_limits,
    normalise_model,
    response_format,
)
from triage.llm_cache import MIGRATIONS, CachedResponse, LlmStore, cache_key, migrate

MSGS = ({"role": "system", "content": "s"}, {"role": "user", "content": "u"})


def _client(url: str, db: Path | None, sleeps: list[float], **kw: object) -> LiteLlmChat:
    settings = ClientSettings(model="openai/gpt-4.1-mini", api_base=url, timeout_s=5.0,
                              **kw)  # type: ignore[arg-type]
    return LiteLlmChat(settings, store=LlmStore(db) if db else None, sleep=sleeps.append)


def test_backoff_honours_retry_after_then_doubles(tmp_path: Path) -> None:
    sleeps: list[float] = []
    script = [Reply(status=429, headers={"Retry-After": "7"}), Reply(status=503),
              Reply(status=502), Reply('{"findings": []}')]
    with ScriptedServer(script) as srv:
        reply = _client(srv.url, tmp_path / "db", sleeps, retries=3, backoff_s=0.5).chat(MSGS)
    assert (reply.content, reply.attempts, reply.cached) == ('{"findings": []}', 4, False)
    assert sleeps[0] == 7.0
    assert 1.0 <= sleeps[1] <= 1.25 and 2.0 <= sleeps[2] <= 2.5


def test_errors_that_retrying_cannot_fix(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with ScriptedServer([Reply(status=400, error="bad schema")]) as srv:
        with pytest.raises(LlmError) as err:
            _client(srv.url, None, sleeps).chat(MSGS)
    assert err.value.kind == "bad_request" and err.value.attempts == 1 and sleeps == []
    with ScriptedServer([Reply(status=401, error="invalid api key")]) as srv:
        with pytest.raises(LlmConfigError, match="model openai/gpt-4.1-mini: "):
            _client(srv.url, None, sleeps).chat(MSGS)


def test_cache_is_keyed_on_model_messages_and_params(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with ScriptedServer([Reply('{"findings": []}'), Reply('{"findings": [1]}')]) as srv:
        client = _client(srv.url, tmp_path / "db", sleeps)
        first = client.chat(MSGS)
        second = client.chat(MSGS)
        other = client.chat(MSGS, accept=lambda text: False)  # a hit is returned as cached
        changed = client.chat((*MSGS, {"role": "user", "content": "more"}),
                              accept=lambda text: False)
    assert (first.cached, second.cached, other.cached, changed.cached) == (False, True, True,
                                                                           False)
    assert second.content == first.content and len(srv.requests) == 2
    key = cache_key("m", MSGS, {"temperature": 0.0})
    assert key == cache_key("m", [dict(m) for m in MSGS], {"temperature": 0.0})
    assert len({key, cache_key("m2", MSGS, {"temperature": 0.0}),
                cache_key("m", MSGS, {"temperature": 0.5}),
                cache_key("m", MSGS[:1], {"temperature": 0.0})}) == 4


def test_migrations_are_numbered_and_applied_once(tmp_path: Path) -> None:
    names = [m.__name__ for m in MIGRATIONS]
    assert names == ["m001_responses", "m002_exchanges", "m003_exchange_context"]
    db = sqlite3.connect(tmp_path / "old.sqlite3")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    for fn in MIGRATIONS[:2]:  # a database written before m003 existed
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, 'then')", (fn.__name__,))
    db.commit()
    assert migrate(db) == ["m003_exchange_context"]
    assert migrate(db) == []
    cols = [r[1] for r in db.execute("PRAGMA table_info(exchanges)")]
    assert cols[-2:] == ["purpose", "label"]
    store = LlmStore(tmp_path / "new.sqlite3")
    store.put("k", "m", CachedResponse("c", "stop", 1, 2, 0.5))
    assert store.get("k") == CachedResponse("c", "stop", 1, 2, 0.5) and store.get("x") is None


def test_model_names_limits_and_json_modes() -> None:
    assert normalise_model("local") == "openai/local"
    mini = model_limits("openai/gpt-4.1-mini")
    assert (mini.context_tokens, mini.known, mini.supports_schema) == (1047576, True, True)
    local = model_limits("openai/my-llama", context_tokens=32768)
    assert (local.context_tokens, local.known, local.input_cost_per_token,
            local.supports_schema, local.supports_json_object) == (32768, False, 0.0, False,
                                                                   True)
    assert model_limits("openai/my-llama").context_tokens == 8192
    assert response_format("auto", mini)["type"] == "json_schema"  # type: ignore[index]
    assert response_format("auto", local) == {"type": "json_object"}
    bare = ModelLimits("x/y", 8192, 1024, 0.0, 0.0, False)
    assert response_format("auto", bare) is None and response_format("off", mini) is None


def test_processes_opening_a_new_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    db = tmp_path / "shared.sqlite3"
    code = "import sys; from triage.llm_cache import LlmStore; LlmStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    rows = sqlite3.connect(db).execute("SELECT name FROM _migrations ORDER BY name").fetchall()
    assert [r[0] for r in rows] == [m.__name__ for m in MIGRATIONS]


def test_missing_hosted_key_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from triage.llm import check_credentials

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LlmConfigError) as err:
        check_credentials("anthropic/claude-sonnet-4-5", None)
    assert str(err.value) == ("model anthropic/claude-sonnet-4-5: set ANTHROPIC_API_KEY in the "
                              "environment (or use --api-base for an OpenAI-compatible server)")
    assert err.value.exit_code == 2
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    check_credentials("anthropic/claude-sonnet-4-5", None)
    check_credentials("openai/local", "http://127.0.0.1:1/v1")   # custom servers need none
    check_credentials("ollama/llama3", None)                     # a default local base URL


def test_switching_to_wal_retries_while_another_process_holds_the_new_database() -> None:
    """SQLite answers "database is locked" to the WAL switch without waiting on its busy
    timeout; a process that opens a new cache beside others must retry, not crash."""
    from triage.llm_cache import _wal

    class Busy:
        def __init__(self, failures: int, message: str = "database is locked") -> None:
            self.failures, self.message, self.calls = failures, message, 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise sqlite3.OperationalError(self.message)

    db = Busy(3)
    _wal(db)  # type: ignore[arg-type]
    assert db.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _wal(Busy(10), attempts=5)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _wal(Busy(1, "disk I/O error"))  # type: ignore[arg-type]
