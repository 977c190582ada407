"""SQLite response cache and transcript of every LLM exchange, with numbered migrations.

One database file (default ``$TRIAGE_HOME/llm.sqlite3``) holds two things:

- ``responses``: answers keyed on a hash of (model, messages, parameters), so a
  re-run of the same prompts costs nothing;
- ``exchanges``: one row per attempt (cache hits, failures and retries included) with the
  request, the answer, tokens, cost and latency, so every verdict can be audited.

Migrations are plain functions applied in order and recorded in ``_migrations`` (the pattern
of simonw/llm): a new column is a new function at the end, never an edit of an old one.
Stdlib only; safe to share between threads.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DB_NAME = "llm.sqlite3"

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; order of definition is order of application."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_responses(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE responses (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            content TEXT NOT NULL,
            finish_reason TEXT NOT NULL DEFAULT '',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            created TEXT NOT NULL
        )""")


@migration
def m002_exchanges(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE exchanges (
            id INTEGER PRIMARY KEY,
            started TEXT NOT NULL,
            model TEXT NOT NULL,
            api_base TEXT NOT NULL DEFAULT '',
            cache_key TEXT NOT NULL,
            messages TEXT NOT NULL,
            params TEXT NOT NULL,
            content TEXT,
            finish_reason TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            cached INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 1,
            error TEXT
        )""")


@migration
def m003_exchange_context(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE exchanges ADD COLUMN purpose TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE exchanges ADD COLUMN label TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX exchanges_label ON exchanges(label)")


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in one write transaction; return the names applied now.

    The transaction takes the write lock before reading what is applied, so processes that
    open a new database at the same time apply each migration once.
    """
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT)")
    db.commit()
    applied: list[str] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        for fn in MIGRATIONS:
            if fn.__name__ not in done:
                fn(db)
                db.execute("INSERT INTO _migrations (name, applied) VALUES (?, ?)",
                           (fn.__name__, _now()))
                applied.append(fn.__name__)
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return applied


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def cache_key(model: str, messages: Sequence[Mapping[str, str]],
              params: Mapping[str, Any]) -> str:
    """Stable hash of what decides an answer: model, messages and parameters.

    The server URL is not part of it (a proxy or a restarted local server gives the same
    answers); give a local model a distinct name, or use ``--no-llm-cache``, when the model
    behind a name changes.
    """
    blob = json.dumps({"model": model, "messages": list(messages), "params": dict(params)},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """A stored answer."""

    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class ExchangeLog:
    """One attempt, as written to the transcript."""

    model: str
    api_base: str
    cache_key: str
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]
    content: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False
    attempt: int = 1
    error: str | None = None
    purpose: str = ""
    """localize, review or repair."""
    label: str = ""
    """What was reviewed: ``<package> <file> lines a-b``."""


def _wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL. Processes that open a new database at once can get "database is
    locked" here at once: SQLite does not wait on its busy timeout for this switch."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 + random.random() * 0.05)


class LlmStore:
    """The cache + transcript database (thread-safe; one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        _wal(self._db)
        with self._lock:
            migrate(self._db)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def get(self, key: str) -> CachedResponse | None:
        """The cached answer for ``key``, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT content, finish_reason, prompt_tokens, completion_tokens, cost_usd "
                "FROM responses WHERE key = ?", (key,)).fetchone()
        return CachedResponse(*row) if row else None

    def put(self, key: str, model: str, response: CachedResponse) -> None:
        """Store an answer (replacing any older one for the same key)."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, content, finish_reason, "
                "prompt_tokens, completion_tokens, cost_usd, created) VALUES (?,?,?,?,?,?,?,?)",
                (key, model, response.content, response.finish_reason, response.prompt_tokens,
                 response.completion_tokens, response.cost_usd, _now()))

    def log(self, ex: ExchangeLog) -> int:
        """Append one exchange to the transcript; return its row ID."""
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO exchanges (started, model, api_base, cache_key, messages, params, "
                "content, finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_s, "
                "cached, attempt, error, purpose, label) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (_now(), ex.model, ex.api_base, ex.cache_key,
                 json.dumps(list(ex.messages), ensure_ascii=False),
                 json.dumps(dict(ex.params), sort_keys=True, ensure_ascii=False),
                 ex.content, ex.finish_reason, ex.prompt_tokens, ex.completion_tokens,
                 ex.cost_usd, round(ex.latency_s, 4), int(ex.cached), ex.attempt, ex.error,
                 ex.purpose, ex.label))
            return int(cur.lastrowid or 0)

    def exchanges(self) -> list[dict[str, Any]]:
        """Every transcript row, oldest first (for tests and audits)."""
        with self._lock:
            cur = self._db.execute("SELECT * FROM exchanges ORDER BY id")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
