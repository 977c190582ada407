"""The knowledge base in an embedded Chroma store: build, keep fresh, search.

The only module that imports chromadb (lazily, inside functions). The store lives in
``$TRIAGE_HOME/kb-store`` (default: ``platformdirs.user_cache_dir("triage")``) and holds two
collections of the same documents (indicator definitions and labelled examples), one per
embedding space: dense (all-MiniLM-L6-v2 int8 ONNX) and lexical (hashed code features).
A sidecar ``manifest.json`` and each collection's metadata record the fingerprint of what
was embedded (content hash of kb/taxonomy.yaml + kb/examples/**, embedder IDs, schema):
when it differs from the current kb/, the store is rebuilt before it is used, never used
stale. Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from triage.embedding import Embedder, LexicalEmbedder, OnnxMiniLM
from triage.errors import TriageError
from triage.retrieval_kb import (
    Example,
    KbDocument,
    documents,
    kb_files,
    kb_hash,
    load_examples,
)
from triage.retrieval_rank import RankOptions, SearchResult, rank
from triage.retrieval_store import (
    MANIFEST,
    SCHEMA,
    STORE_DIR,
    BuildReport,
    StoreStatus,
    build_lock,
    read_manifest,
    triage_home,
    write_manifest,
)
from triage.taxonomy import TAXONOMY_FILE, Taxonomy, kb_dir, load_taxonomy
from triage.workflows import CHAINS_FILE, load_workflows

__all__ = ["MANIFEST", "BuildReport", "KnowledgeBase", "KnowledgeBaseError", "StoreStatus",
           "triage_home"]
SPACES = ("dense", "lexical")
_COLLECTION = "triage-kb-{space}"
log = logging.getLogger(__name__)


class KnowledgeBaseError(TriageError):
    """The store exists but cannot be opened."""

    exit_code = 3


def _sqlite_readable(path: Path) -> bool:
    """True when ``path`` opens as an SQLite database (Chroma caches broken clients per path,
    so a corrupt file must be caught before Chroma sees it)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
            con.execute("PRAGMA schema_version").fetchone()
        return True
    except sqlite3.DatabaseError:
        return False


class KnowledgeBase:
    """Taxonomy + labelled examples, embedded in a persistent Chroma store."""

    def __init__(self, home: Path | None = None, kb: Path | None = None,
                 dense: Embedder | None = None, lexical: Embedder | None = None) -> None:
        """Open (lazily) the knowledge base.

        Args:
            home: triage's cache directory (default :func:`triage_home`).
            kb: the kb/ data directory (default :func:`triage.taxonomy.kb_dir`).
            dense: dense embedder (default :class:`~triage.embedding.OnnxMiniLM`).
            lexical: lexical embedder (default :class:`~triage.embedding.LexicalEmbedder`).
        """
        self.home = Path(home) if home is not None else triage_home()
        self.kb = Path(kb) if kb is not None else kb_dir()
        self.path = self.home / STORE_DIR
        self._embedders: dict[str, Embedder] = {
            "dense": dense if dense is not None else OnnxMiniLM(),
            "lexical": lexical if lexical is not None else LexicalEmbedder(),
        }
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._checked: tuple[tuple[str, int, int], ...] = ()
        self._loaded_hash = ""
        self._taxonomy: Taxonomy | None = None
        self._examples: tuple[Example, ...] = ()
        self._docs: dict[str, KbDocument] = {}
        self.last_build: BuildReport | None = None

    # ------------------------------------------------------------------ content

    def _load_content(self) -> str:
        """(Re)load taxonomy and examples when kb/ changed; return the kb hash."""
        current = kb_hash(self.kb)
        if current != self._loaded_hash:
            self._taxonomy = load_taxonomy(self.kb / TAXONOMY_FILE)
            self._examples = load_examples(self.kb, self._taxonomy)
            workflows = load_workflows(self.kb / CHAINS_FILE, self._taxonomy)
            self._docs = {d.id: d for d in documents(self._taxonomy, self._examples, workflows)}
            self._loaded_hash = current
        return current

    @property
    def taxonomy(self) -> Taxonomy:
        """The validated taxonomy of kb/."""
        self._load_content()
        assert self._taxonomy is not None
        return self._taxonomy

    @property
    def examples(self) -> tuple[Example, ...]:
        """The validated examples of kb/examples/."""
        self._load_content()
        return self._examples

    def fingerprint(self) -> str:
        """Hash of kb/ content, embedder IDs and the store schema."""
        parts = [f"schema={SCHEMA}", f"kb={self._load_content()}",
                 *(f"{s}={self._embedders[s].name}" for s in SPACES)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    # ------------------------------------------------------------------ store

    def _chroma(self) -> Any:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            self.path.mkdir(parents=True, exist_ok=True)
            db = self.path / "chroma" / "chroma.sqlite3"
            if db.exists() and not _sqlite_readable(db):
                log.warning("store at %s is unreadable; starting a new one", self.path)
                (self.path / MANIFEST).unlink(missing_ok=True)
                shutil.rmtree(self.path / "chroma", ignore_errors=True)
            try:
                self._client = chromadb.PersistentClient(
                    path=str(self.path / "chroma"),
                    settings=Settings(anonymized_telemetry=False, allow_reset=False))
            except Exception as exc:  # e.g. a store written by an incompatible chromadb
                raise KnowledgeBaseError(
                    f"cannot open the knowledge-base store at {self.path}: {exc}; delete that "
                    "directory and run `triage kb build`") from exc
        return self._client

    def status(self) -> StoreStatus:
        """Compare the store with kb/ without changing anything."""
        fp = self.fingerprint()
        self._chroma()  # first: an unreadable store is discarded together with its manifest
        manifest = read_manifest(self.path)
        built = str(manifest.get("fingerprint", ""))
        reason = "up to date"
        if not manifest:
            reason = "no store built yet"
        elif built != fp:
            reason = "kb/ or the embedders changed since the store was built"
        else:
            for space in SPACES:
                col = self._collection(space)
                if col is None:
                    reason = f"collection {space} is missing"
                elif (col.metadata or {}).get("fingerprint") != fp:
                    reason = f"collection {space} was built from other content"
                elif col.count() != len(self._docs):
                    reason = (f"collection {space} holds {col.count()} of {len(self._docs)} "
                              "documents")
                else:
                    continue
                break
        return StoreStatus(path=self.path, fingerprint=fp, built_fingerprint=built,
                           fresh=reason == "up to date", reason=reason)

    def _collection(self, space: str) -> Any:
        if space not in self._collections:
            try:
                self._collections[space] = self._chroma().get_collection(
                    _COLLECTION.format(space=space))
            except Exception:  # chromadb raises NotFoundError/ValueError across versions
                return None
        return self._collections[space]

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        """Cheap change detector for kb/ files (path, mtime, size); the hash decides."""
        out = []
        for path in kb_files(self.kb):
            try:
                st = path.stat()
                out.append((str(path), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(path), -1, -1))
        return tuple(out)

    def build(self, force: bool = False) -> BuildReport:
        """Build the store if it is stale (or always, with ``force``).

        Raises:
            TaxonomyError: kb/ is invalid.
            EmbeddingModelError: the pinned embedding model is unavailable.
        """
        with build_lock(self.path):
            start = time.perf_counter()
            state = self.status()
            if state.fresh and not force:
                report = self._report(state, 0.0, rebuilt=False, reason="up to date")
                self.last_build = report
                return report
            reason = "forced" if force and state.fresh else state.reason
            (self.path / MANIFEST).unlink(missing_ok=True)  # half-built stores stay stale
            client = self._chroma()
            docs = list(self._docs.values())
            self._collections.clear()
            for space in SPACES:
                name = _COLLECTION.format(space=space)
                with contextlib.suppress(Exception):
                    client.delete_collection(name)
                col = client.create_collection(
                    name, embedding_function=None,
                    configuration={"hnsw": {"space": "cosine", "ef_search": 512,
                                            "ef_construction": 200}},
                    metadata={"fingerprint": state.fingerprint, "embedder":
                              self._embedders[space].name, "schema": SCHEMA},
                )
                texts = [d.dense_text if space == "dense" else d.lexical_text for d in docs]
                col.add(ids=[d.id for d in docs], embeddings=self._embedders[space].embed(texts),
                        documents=texts,
                        metadatas=[{"kind": d.kind, "indicator": d.indicator, "label": d.label}
                                   for d in docs])
                self._collections[space] = col
            report = self._report(state, time.perf_counter() - start, rebuilt=True,
                                  reason=reason)
            write_manifest(self.path, report, {s: self._embedders[s].name for s in SPACES})
            self.last_build = report
            log.info("built knowledge base at %s (%s) in %.1fs", self.path, reason,
                     report.seconds)
            return report

    def ensure_fresh(self) -> BuildReport:
        """Rebuild when stale (with a log warning saying why); return what happened."""
        report = self.build()
        if report.rebuilt:
            log.warning("knowledge base rebuilt: %s", report.reason)
        return report

    def _report(self, state: StoreStatus, seconds: float, rebuilt: bool,
                reason: str) -> BuildReport:
        n_ex = sum(1 for d in self._docs.values() if d.kind == "example")
        n_ind = sum(1 for d in self._docs.values() if d.kind == "indicator")
        return BuildReport(path=self.path, fingerprint=state.fingerprint,
                           kb_hash=self._loaded_hash, indicators=n_ind,
                           examples=n_ex, documents=len(self._docs),
                           seconds=round(seconds, 3), rebuilt=rebuilt, reason=reason)

    # ------------------------------------------------------------------ search

    def search(self, text: str, signals: Sequence[str] = (), k: int = 5,
               per_indicator: int = 2, options: RankOptions | None = None) -> SearchResult:
        """Top-k indicators for a statement or chunk (rebuilding the store first if stale).

        Args:
            text: source code of the statement/chunk, or words.
            signals: indicator IDs static detectors raised for it (boosted).
            k: indicators to return.
            per_indicator: examples and benign contrasts attached to each hit.
            options: ranking options (default :class:`RankOptions`).
        """
        opts = options or RankOptions()
        sims = self.similarities(text, opts.mode)
        assert self._taxonomy is not None
        return rank(text, sims, self._docs, {e.id: e for e in self._examples}, self._taxonomy,
                    signals=signals, k=k, per_indicator=per_indicator, options=opts)

    def similarities(self, text: str, mode: str = "hybrid") -> dict[str, tuple[float, float]]:
        """Cosine similarity of ``text`` to every document: ID -> (dense, lexical).

        A space not used by ``mode`` is reported as 0. Rebuilds the store first if stale.
        """
        signature = self._signature()
        if signature != self._checked or self.last_build is None:
            self.ensure_fresh()
            self._checked = signature
        sims: dict[str, list[float]] = {doc_id: [0.0, 0.0] for doc_id in self._docs}
        for slot, space in enumerate(SPACES):
            if mode not in ("hybrid", space):
                continue
            vec = self._embedders[space].embed([text])[0]
            res = self._collection(space).query(query_embeddings=[vec],
                                                n_results=len(self._docs),
                                                include=["distances"])
            for doc_id, dist in zip(res["ids"][0], res["distances"][0], strict=True):
                if doc_id in sims:
                    sims[doc_id][slot] = 1.0 - float(dist)
        return {d: (v[0], v[1]) for d, v in sims.items()}

    @property
    def documents(self) -> dict[str, KbDocument]:
        """Document ID -> document, for the current kb/."""
        self._load_content()
        return dict(self._docs)
