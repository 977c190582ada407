"""Sequential pattern mining, labelled/run sequences, chain accuracy and `triage mine`."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import typer
from typer.testing import CliRunner

from triage.cli_mine import command_line, mine
from triage.evaluation.corpus import Label
from triage.evaluation.runner import RunRecord
from triage.mining import (
    ChainAccuracy,
    ChainCase,
    FrequentSequence,
    ItemSequence,
    chain_accuracy,
    closed,
    collapse,
    lcs_length,
    prefixspan,
)
from triage.model import SourceFile
from triage.sequences import chain_cases, label_sequences, run_sequences
from triage.taxonomy import load_taxonomy
from triage.workflows import load_workflows

TAX = load_taxonomy()


def seq(key: str, group: str, items: str) -> ItemSequence:
    return ItemSequence(key=key, group=group, items=tuple(items.split()))


DATA = (seq("A", "g1", "a b c"), seq("B", "g1", "a a c"), seq("C", "g2", "a b"),
        seq("D", "g3", "b c"))


def test_prefixspan_cluster_weighted_support_confidence_and_min_clusters() -> None:
    assert prefixspan(DATA, min_support=0.3, min_clusters=2) == (
        FrequentSequence(("b",), 0.8333, 0.8333, 3, 3),
        FrequentSequence(("a",), 0.6667, 0.6667, 2, 3),
        FrequentSequence(("c",), 0.6667, 0.6667, 2, 3),
        FrequentSequence(("a", "b"), 0.5, 0.75, 2, 2),
        FrequentSequence(("b", "c"), 0.5, 0.6, 2, 2),
    )
    # one cluster is enough when allowed: (a, c) is in both g1 sequences, weight 2 x 0.5
    one = {p.pattern: p for p in prefixspan(DATA, min_support=0.1, min_clusters=1)}
    assert one[("a", "c")] == FrequentSequence(("a", "c"), 0.3333, 0.5, 1, 2)
    assert one[("a", "b", "c")] == FrequentSequence(("a", "b", "c"), 0.1667, 0.3333, 1, 1)
    assert one[("a", "a")] == FrequentSequence(("a", "a"), 0.1667, 0.25, 1, 1)  # B repeats a
    assert prefixspan(DATA, min_support=0.3, max_length=1)[-1].pattern == ("c",)
    assert prefixspan((), 0.1) == ()


def test_closed_drops_patterns_with_an_equally_supported_superpattern() -> None:
    pats = (FrequentSequence(("a",), 0.5, 0.5, 2, 2), FrequentSequence(("b",), 0.6, 0.6, 2, 3),
            FrequentSequence(("a", "b"), 0.5, 1.0, 2, 2))
    assert closed(pats) == (pats[1], pats[2])


def test_collapse_lcs_and_cluster_weighted_chain_accuracy() -> None:
    assert collapse(["x", "y", "x", "z", "y"]) == ("x", "y", "z")
    assert lcs_length("abcd", "axcyd") == 3 and lcs_length("", "ab") == 0
    cases = (
        ChainCase("p1", "g1", ("a", "b"), ("a", "x", "b")),  # contained
        ChainCase("p2", "g1", ("a", "b"), ("b", "a")),  # out of order: 1 of 2 in order
        ChainCase("p3", "g2", ("a", "b", "c"), ("a", "c")),  # 2 of 3
    )
    assert [c.contained for c in cases] == [True, False, False]
    assert chain_accuracy(cases) == ChainAccuracy(cases=3, clusters=2, contained=0.25,
                                                  ordered_recall=0.7083)
    assert chain_accuracy(()) == ChainAccuracy(0, 0, 0.0, 0.0)


SETUP = '''\
import getpass
from setuptools import setup
from setuptools.command.install import install

USER = getpass.getuser()


def execute():
    data = download()
    run(data)


class PostInstall(install):
    def run(self):
        execute()


setup(name="p", cmdclass={"install": PostInstall})
'''


def label(line: int, indicator: str, file: str = "p-1/setup.py") -> Label:
    return Label(package="p", archive="p/1/p-1.tar.gz", file=file, lines=(line,),
                 indicator=indicator, raw_indicator=indicator, is_metadata=False)


def test_label_sequences_follow_execution_not_line_order() -> None:
    rows = [label(9, "code_download_executable_or_binary_file"),
            label(10, "code_execution_executable_file"),
            label(5, "code_read_system_and_user_info"),
            label(15, "code_execution_install_hook_override"),
            label(18, "metadata_typosquatting"),  # metadata is not a step
            label(9, "code_download_executable_or_binary_file")]

    def reader(archive: str) -> tuple[SourceFile, ...]:
        assert archive == "p/1/p-1.tar.gz"
        return (SourceFile("p-1/setup.py", SETUP),)

    assert label_sequences(rows, {"p/1/p-1.tar.gz": "c1"}, reader, TAX) == (
        ItemSequence("p/1/p-1.tar.gz", "c1", (
            "code_read_system_and_user_info", "code_execution_install_hook_override",
            "code_download_executable_or_binary_file", "code_execution_executable_file")),
    )


def record(archive: str, chain: list[str], status: str = "ok") -> RunRecord:
    report = {"chain": [{"phase": "install", "indicator": i, "finding_index": n}
                        for n, i in enumerate(chain)]}
    return RunRecord(archive, status, 0.1, report if status == "ok" else None)


def test_run_sequences_and_chain_cases() -> None:
    records = (record("b/1/b.whl", ["code_obfuscation", "metadata_typosquatting",
                                    "code_execution_dynamic_evaluation"]),
               record("a/1/a.tar.gz", []), record("c/1/c.zip", ["x"], status="timeout"))
    assert run_sequences(records, {"a/1/a.tar.gz": "k"}) == (
        ItemSequence("a/1/a.tar.gz", "k", ()),
        ItemSequence("b/1/b.whl", "b/1/b.whl",
                     ("code_obfuscation", "code_execution_dynamic_evaluation")),
    )
    labelled = (ItemSequence("b/1/b.whl", "g", ("code_execution_dynamic_evaluation",)),
                ItemSequence("z/1/z.whl", "g", ("code_obfuscation",)))
    assert chain_cases(labelled, records) == (
        ChainCase("b/1/b.whl", "g", ("code_execution_dynamic_evaluation",),
                  ("code_obfuscation", "code_execution_dynamic_evaluation")),
    )


def _sdist(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _corpus(root: Path) -> None:
    """Two clusters of look-alike droppers: a tiny corpus laid out like shared/corpus."""
    labels, rows = [], ["archive,cluster,added,n_py,py_lines,labelled"]
    with zipfile.ZipFile(root / "malicious-dev.zip", "w") as zf:
        for name, cluster in (("aa", "c1"), ("ab", "c1"), ("bb", "c2")):
            archive = f"{name}/1.0/{name}-1.0.tar.gz"
            zf.writestr(f"malregistry/{archive}", _sdist({f"{name}-1.0/setup.py": SETUP}))
            rows.append(f"{archive},{cluster},2024-01-01,1,18,1")
            for line, ind in ((15, "code_execution_install_hook_override"),
                              (9, "code_download_payload"), (5, "code_read_credentials")):
                if name == "bb" and ind == "code_read_credentials":
                    continue
                labels.append({"package": name, "archive": archive,
                               "file": f"{name}-1.0/setup.py", "lines": [line],
                               "indicator": ind, "note": ""})
    (root / "packages-dev.csv").write_text("\n".join(rows) + "\n")
    (root / "labels-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    run = [record("aa/1.0/aa-1.0.tar.gz", ["code_execution_install_hook_override",
                                           "code_download_payload"]),
           record("ab/1.0/ab-1.0.tar.gz", ["code_read_credentials",
                                           "code_execution_install_hook_override",
                                           "code_download_payload"]),
           record("bb/1.0/bb-1.0.tar.gz", ["code_download_payload"])]
    (root / "run.jsonl").write_text("".join(json.dumps(r.to_json()) + "\n" for r in run))


def test_mine_command_tables_accuracy_and_chains_yaml(tmp_path: Path) -> None:
    _corpus(tmp_path)
    app = typer.Typer()
    app.command()(mine)
    app.command("noop")(lambda: None)  # two commands: `mine` is addressed by name
    out = tmp_path / "chains.yaml"
    args = ["mine", "--labels", str(tmp_path / "labels-dev.jsonl"), "--run",
            str(tmp_path / "run.jsonl"), "--min-support", "0.5", "--top", "3",
            "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    hook, dl, cred = ("code_execution_install_hook_override", "code_download_payload",
                      "code_read_credentials")
    assert result.stdout.splitlines() == [
        "Top sequences mined from labels (labels-dev.jsonl): 3 packages in 2 clusters, each "
        "cluster counted once", "",
        "| # | sequence | support | confidence | clusters | packages |",
        "|---|---|---|---|---|---|",
        f"| 1 | {hook} → {dl} | 1.00 | 1.00 | 2 | 3 |", "",
        "Top sequences mined from run (run.jsonl): 3 packages in 2 clusters, each cluster "
        "counted once", "",
        "| # | sequence | support | confidence | clusters | packages |",
        "|---|---|---|---|---|---|",
        "| - | no sequence reaches the thresholds | | | | |", "",
        "Chain accuracy over 3 labelled packages in 2 clusters (cluster-weighted):", "",
        "- chain contains the labelled sequence in order: 0.250",
        "- labelled steps found in order (LCS / labelled length): 0.667",
        "", "| package | labelled | predicted chain |", "|---|---|---|",
        f"| `bb/1.0/bb-1.0.tar.gz` | {hook} → {dl} | {dl} |",
        f"| `aa/1.0/aa-1.0.tar.gz` | {cred} → {hook} → {dl} | {hook} → {dl} |",
    ]
    flows = load_workflows(out, TAX)
    assert [(w.id, w.pattern, w.support, w.clusters, w.source, w.also) for w in flows] == [
        ("W01", (hook, dl), 1.0, 2, "labels", ())]
    assert flows[0].title == ("Install command override (cmdclass) -> Payload download")
    header = out.read_text().splitlines()[1]
    assert header == "# Generated by: " + command_line({
        "labels": tmp_path / "labels-dev.jsonl", "corpus": None, "run": tmp_path / "run.jsonl",
        "analyse": False, "min_support": 0.5, "min_clusters": 2, "max_length": 5, "top": 3,
        "out": out})
    assert header.startswith(f"# Generated by: triage mine --labels {tmp_path}/labels-dev.jsonl"
                             f" --run {tmp_path}/run.jsonl --min-support 0.5 ")


def test_mine_command_usage_errors(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(mine)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["mine"])
    assert (result.exit_code, result.stderr) == (2, "error: give --labels, --run or --analyse\n")
    (tmp_path / "l.jsonl").write_text("")
    result = CliRunner().invoke(app, ["mine", "--labels", str(tmp_path / "l.jsonl")])
    assert (result.exit_code, result.stderr) == (
        3, f"error: --labels needs the corpus zip: no {tmp_path}/malicious-dev.zip\n")
