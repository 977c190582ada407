"""kb/examples/: every example validates, covers the taxonomy and is inert."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from triage.errors import TaxonomyError
from triage.retrieval_kb import example_files, kb_hash, load_examples
from triage.taxonomy import kb_dir, load_taxonomy

KB = kb_dir()
TAXONOMY = load_taxonomy()
EXAMPLES = load_examples(KB, TAXONOMY)


def test_every_indicator_has_four_examples_with_both_labels() -> None:
    per = Counter(e.indicator for e in EXAMPLES)
    mal = Counter(e.indicator for e in EXAMPLES if e.label == "malicious")
    ben = Counter(e.indicator for e in EXAMPLES if e.label == "benign")
    short = {i.id: per[i.id] for i in TAXONOMY.indicators if per[i.id] < 4}
    no_mal = [i.id for i in TAXONOMY.indicators if mal[i.id] < 1]
    no_ben = [i.id for i in TAXONOMY.indicators if ben[i.id] < 1]
    assert (short, no_mal, no_ben) == ({}, [], [])


def test_example_ids_are_unique_and_prefixed_by_their_indicator() -> None:
    ids = [e.id for e in EXAMPLES]
    assert len(ids) == len(set(ids))
    assert [e.id for e in EXAMPLES if e.id.split(".")[0] != e.indicator] == []
    assert {e.indicator for e in EXAMPLES} == {i.id for i in TAXONOMY.indicators}


def test_one_example_file_per_type() -> None:
    names = [p.name for p in example_files(KB)]
    assert names == sorted(f"{t.id}.yaml" for t in TAXONOMY.types)
    by_file = {(e.file, TAXONOMY.get(e.indicator).type) for e in EXAMPLES}
    assert all(f == f"examples/{t}.yaml" for f, t in by_file)


_WEBHOOK = re.compile(r"discord(app)?\.com/api/webhooks/\d{6,}|api\.telegram\.org/bot\d+", re.I)
_TOKEN = re.compile(r"\b(ghp_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|xox[bp]-[0-9A-Za-z-]{10,})")


def test_examples_are_inert() -> None:
    for e in EXAMPLES:
        assert not re.search(r"\bhttps?://(?![\w.-]*example\.invalid)", e.code), e.id
        assert not _WEBHOOK.search(e.code), e.id
        assert not _TOKEN.search(e.code), e.id
        for host in re.findall(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", e.code):
            # only documentation ranges (RFC 5737) and loopback
            assert host.startswith(("192.0.2.", "198.51.100.", "203.0.113.", "127.")), e.id


def _write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "x.yaml").write_text(body, encoding="utf-8")
    return tmp_path


ONE = ("examples:\n  - id: code_remove_file.m1\n    indicator: {ind}\n    label: {label}\n"
       "    code: {code}\n    why: because\n{extra}")


@pytest.mark.parametrize(("fields", "message"), [
    ({"ind": "code_nope"},
     "examples/x.yaml: example code_remove_file.m1 names unknown indicator 'code_nope'"),
    ({"label": "evil"},
     "examples/x.yaml: examples[0] (code_remove_file.m1): label: Input should be 'malicious' "
     "or 'benign'"),
    ({"code": "requests.get('https://real.example.com/x')"},
     "examples/x.yaml: examples[0] (code_remove_file.m1): code: live URL "
     "'https://real.example.com': defang it or use example.invalid"),
    ({"extra": "    colour: red\n"},
     "examples/x.yaml: examples[0] (code_remove_file.m1): unknown key 'colour'"),
])
def test_invalid_examples_are_rejected(tmp_path: Path, fields: dict[str, str],
                                       message: str) -> None:
    values = {"ind": "code_remove_file", "label": "malicious", "code": "os.remove(p)",
              "extra": ""} | fields
    kb = _write(tmp_path, ONE.format(**values))
    with pytest.raises(TaxonomyError) as err:
        load_examples(kb, TAXONOMY)
    assert str(err.value) == message


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    one = ONE.format(ind="code_remove_file", label="malicious", code="x", extra="")
    kb = _write(tmp_path, one + one.removeprefix("examples:\n"))
    with pytest.raises(TaxonomyError) as err:
        load_examples(kb, TAXONOMY)
    assert str(err.value) == ("examples/x.yaml: duplicate example ID code_remove_file.m1 "
                              "(also in examples/x.yaml)")


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    kb = _write(tmp_path, ONE.format(ind="code_remove_file", label="malicious", code="x",
                                     extra="    why: again\n"))
    with pytest.raises(TaxonomyError, match=r"^examples/x.yaml: cannot read examples: "
                       r"duplicate key\(s\) \['why'\]"):
        load_examples(kb, TAXONOMY)


def test_valid_example_loads_exactly(tmp_path: Path) -> None:
    kb = _write(tmp_path, ONE.format(ind="code_remove_file", label="benign",
                                     code="os.remove(p)", extra=""))
    (ex,) = load_examples(kb, TAXONOMY)
    assert (ex.id, ex.indicator, ex.label, ex.code, ex.why, ex.file) == (
        "code_remove_file.m1", "code_remove_file", "benign", "os.remove(p)", "because",
        "examples/x.yaml")


def test_kb_hash_changes_with_examples_and_taxonomy(tmp_path: Path) -> None:
    kb = _write(tmp_path, ONE.format(ind="code_remove_file", label="benign", code="a", extra=""))
    (kb / "taxonomy.yaml").write_text("version: x\n")
    first = kb_hash(kb)
    assert kb_hash(kb) == first
    (kb / "examples" / "x.yaml").write_text(
        ONE.format(ind="code_remove_file", label="benign", code="b", extra=""))
    second = kb_hash(kb)
    (kb / "taxonomy.yaml").write_text("version: y\n")
    third = kb_hash(kb)
    (kb / "examples" / "sub").mkdir()
    (kb / "examples" / "sub" / "more.yaml").write_text("examples: []\n")
    assert len({first, second, third, kb_hash(kb)}) == 4
