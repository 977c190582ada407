"""Files of the knowledge-base store besides Chroma's own: location, manifest, build lock.

No chromadb here (triage/retrieval.py is its only importer). The manifest is a sidecar JSON
written last in a build, so a half-built store never looks fresh.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = 1
"""Store layout version; a change forces a rebuild."""
STORE_DIR = "kb-store"
MANIFEST = "manifest.json"


def triage_home() -> Path:
    """``$TRIAGE_HOME`` if set, else the per-user cache directory of triage."""
    env = os.environ.get("TRIAGE_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("triage"))


@dataclass(frozen=True)
class StoreStatus:
    """Whether the store on disk matches kb/."""

    path: Path
    """The store directory."""
    fingerprint: str
    """Fingerprint of the current kb/ and embedders."""
    built_fingerprint: str
    """Fingerprint recorded in the store, or ``""`` when there is none."""
    fresh: bool
    reason: str
    """Why it is stale (or ``up to date``)."""


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    path: Path
    fingerprint: str
    kb_hash: str
    indicators: int
    examples: int
    documents: int
    seconds: float
    rebuilt: bool
    """False when the store was already fresh and nothing was done."""
    reason: str
    """Why it was (re)built, or ``up to date``."""


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the store at ``path``, or ``{}`` if absent, unreadable or old."""
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else {}


def write_manifest(path: Path, report: BuildReport, embedders: Mapping[str, str]) -> None:
    """Write the manifest atomically (temp file + rename)."""
    try:
        chroma = importlib.metadata.version("chromadb")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        chroma = "unknown"
    data = {"schema": SCHEMA, "fingerprint": report.fingerprint, "kb_hash": report.kb_hash,
            "embedders": dict(embedders), "documents": report.documents, "chromadb": chroma,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path / MANIFEST)


@contextlib.contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Serialise builds between processes sharing one store (POSIX only)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no inter-process lock
        yield
        return
    with open(path / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
