"""Pure ranking of indicators from per-document similarities (no store, no model)."""

from __future__ import annotations

import pytest

from triage.retrieval_kb import Example, KbDocument
from triage.retrieval_rank import RankOptions, fuse, rank
from triage.taxonomy import load_taxonomy

TAX = load_taxonomy()


def _ex(ex_id: str, indicator: str, label: str) -> Example:
    return Example(id=ex_id, indicator=indicator, label=label, code=f"code of {ex_id}",  # type: ignore[arg-type]
                   why="w", file="examples/t.yaml")


EXAMPLES = {e.id: e for e in (
    _ex("code_remove_file.m1", "code_remove_file", "malicious"),
    _ex("code_remove_file.b1", "code_remove_file", "benign"),
    _ex("code_move_file.m1", "code_move_file", "malicious"),
    _ex("code_move_file.b1", "code_move_file", "benign"),
)}
DOCS = {f"ex:{e.id}": KbDocument(id=f"ex:{e.id}", kind="example", indicator=e.indicator,
                                 label=e.label, dense_text=e.code, lexical_text=e.code)
        for e in EXAMPLES.values()}
DOCS |= {f"ind:{i}": KbDocument(id=f"ind:{i}", kind="indicator", indicator=i,
                                label="definition", dense_text=i, lexical_text=i)
         for i in ("code_remove_file", "code_move_file", "code_write_to_disk")}


def test_fuse_per_mode() -> None:
    assert fuse(0.8, 0.2, RankOptions(mode="dense")) == 0.8
    assert fuse(0.8, 0.2, RankOptions(mode="lexical")) == 0.2
    assert fuse(0.8, 0.2, RankOptions(mode="hybrid", dense_weight=0.25)) == pytest.approx(0.35)


def test_rank_takes_best_document_per_indicator_and_weights_kinds() -> None:
    sims = {"ex:code_remove_file.m1": (0.5, 0.5), "ex:code_remove_file.b1": (0.9, 0.9),
            "ex:code_move_file.m1": (0.6, 0.6), "ex:code_move_file.b1": (0.1, 0.1),
            "ind:code_remove_file": (0.2, 0.2), "ind:code_move_file": (0.2, 0.2),
            "ind:code_write_to_disk": (0.7, 0.7)}
    res = rank("q", sims, DOCS, EXAMPLES, TAX, k=3, per_indicator=1)
    # remove_file: max(0.5, 0.9*0.6, 0.2*0.8) = 0.54; move_file 0.6; write_to_disk 0.7*0.8
    assert [(h.indicator.id, h.score) for h in res.hits] == [
        ("code_move_file", 0.6), ("code_write_to_disk", 0.56), ("code_remove_file", 0.54)]
    remove = res.hits[2]
    assert [e.example.id for e in remove.examples] == ["code_remove_file.m1"]
    assert [e.example.id for e in remove.contrasts] == ["code_remove_file.b1"]
    assert res.hits[1].examples == () and res.hits[1].contrasts == ()


def test_signals_boost_and_are_marked() -> None:
    sims = {"ex:code_remove_file.m1": (0.3, 0.3), "ex:code_move_file.m1": (0.5, 0.5)}
    res = rank("q", sims, DOCS, EXAMPLES, TAX, k=2, signals=("code_remove_file",),
               options=RankOptions(signal_boost=0.25))
    assert [(h.indicator.id, h.score, h.from_signal) for h in res.hits] == [
        ("code_remove_file", 0.55, True), ("code_move_file", 0.5, False)]
    assert res.signals == ("code_remove_file",)


def test_signal_without_any_document_still_appears() -> None:
    res = rank("q", {}, DOCS, EXAMPLES, TAX, k=1, signals=("code_read_crypto_wallet",))
    assert res.ids == ("code_read_crypto_wallet",)
    assert res.hits[0].score == 0.25


def test_unknown_signal_is_an_error() -> None:
    with pytest.raises(KeyError, match="unknown indicator ID 'code_nope'"):
        rank("q", {}, DOCS, EXAMPLES, TAX, signals=("code_nope",))


def test_definitions_only_ignores_examples() -> None:
    sims = {"ex:code_move_file.m1": (0.9, 0.9), "ind:code_remove_file": (0.5, 0.5)}
    res = rank("q", sims, DOCS, EXAMPLES, TAX, k=5,
               options=RankOptions(use_examples=False, definition_weight=1.0))
    assert [(h.indicator.id, h.score) for h in res.hits] == [("code_remove_file", 0.5)]


def test_ties_break_in_taxonomy_order() -> None:
    sims = {"ind:code_write_to_disk": (0.5, 0.5), "ind:code_remove_file": (0.5, 0.5),
            "ind:code_move_file": (0.5, 0.5)}
    res = rank("q", sims, DOCS, EXAMPLES, TAX, k=3)
    assert res.ids == ("code_remove_file", "code_write_to_disk", "code_move_file")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown retrieval mode 'bm25'"):
        RankOptions(mode="bm25")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dense_weight must be within 0..1"):
        RankOptions(dense_weight=1.5)
