"""``triage mine``: frequent attack-indicator sequences (workflows) from labels and runs.

A typer command function; triage/cli.py mounts it (``app.command("mine")(mine)``). Reads
the corpus zip in memory only (it holds live malware) and never executes anything in it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from triage.evaluation.runner import RunRecord
    from triage.mining import ChainCase, ItemSequence
    from triage.workflow_mining import Dataset

EXIT_USAGE, EXIT_UNREADABLE = 2, 3


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def command_line(options: dict[str, object]) -> str:
    """The ``triage mine`` command that reproduces a run (options left at None are omitted)."""
    words = ["triage", "mine"]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        words += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


def mine(
    labels: Annotated[Path | None, typer.Option(
        help="Statement labels (labels-dev.jsonl); needs --corpus for the archives.")] = None,
    corpus: Annotated[Path | None, typer.Option(
        help="Corpus directory (malicious-dev.zip, packages-dev.csv, labels-dev.jsonl); "
        "default: the directory of --labels.")] = None,
    run: Annotated[Path | None, typer.Option(
        help="A saved triage run (JSON Lines of run records, eval/dev_corpus.py --out).")] = None,
    analyse: Annotated[bool, typer.Option(
        "--analyse", help="Run the static engine over the corpus zip first (in memory, "
        "one process per archive) and mine its chains.")] = False,
    min_support: Annotated[float, typer.Option(min=0.0, max=1.0,
                                               help="Least cluster-weighted support.")] = 0.1,
    min_clusters: Annotated[int, typer.Option(min=1, help="Least distinct clusters.")] = 2,
    max_length: Annotated[int, typer.Option(min=1, max=10, help="Longest pattern.")] = 5,
    top: Annotated[int, typer.Option(min=1, help="Rows per table / workflows kept per "
                                     "dataset.")] = 15,
    out: Annotated[Path | None, typer.Option(
        help="Write the workflows as chains YAML here (e.g. kb/chains.yaml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")] = False,
) -> None:
    """Mine frequent indicator sequences (PrefixSpan, each near-duplicate cluster counted
    once) from labelled data and/or the chains of a triage run; print the top sequences
    with support and confidence, chain accuracy when both are given, and optionally write
    them as kb/chains.yaml.
    """
    from triage.errors import TriageError

    command = command_line({"labels": labels, "corpus": corpus, "run": run, "analyse": analyse,
                            "min_support": min_support, "min_clusters": min_clusters,
                            "max_length": max_length, "top": top, "out": out})
    if labels is None and run is None and not analyse:
        raise _fail("give --labels, --run or --analyse")
    root = corpus if corpus is not None else (labels.parent if labels is not None else None)
    try:
        datasets, cases = _load(labels, root, run, analyse)
    except (OSError, ValueError, TriageError) as exc:
        raise _fail(str(exc), EXIT_UNREADABLE) from exc
    _report(datasets, cases, min_support, min_clusters, max_length, top, out, as_json,
            command)


def _load(labels: Path | None, root: Path | None, run: Path | None, analyse: bool
          ) -> tuple[list[Dataset], tuple[ChainCase, ...]]:
    from triage.evaluation.corpus import load_clusters, load_labels
    from triage.evaluation.labels import load_aliases
    from triage.evaluation.scoring import CorpusPaths, read_records
    from triage.sequences import (
        chain_cases,
        label_sequences,
        run_sequences,
        zip_archive_reader,
    )
    from triage.taxonomy import load_taxonomy
    from triage.workflow_mining import Dataset

    paths = CorpusPaths(root) if root is not None else None
    clusters = load_clusters(paths.clusters) if paths and paths.clusters.is_file() else {}
    datasets: list[Dataset] = []
    labelled: tuple[ItemSequence, ...] = ()
    if labels is not None:
        if paths is None or not paths.zip.is_file():
            raise ValueError(f"--labels needs the corpus zip: no {root}/malicious-dev.zip")
        rows = load_labels(labels, load_aliases())
        labelled = label_sequences(rows, clusters, zip_archive_reader(paths.zip),
                                   load_taxonomy())
        datasets.append(Dataset("labels", labels.name, labelled))
    records: tuple[RunRecord, ...] = ()
    if run is not None:
        records = read_records(run)
        datasets.append(Dataset("run", run.name, run_sequences(records, clusters)))
    elif analyse:
        if paths is None or not paths.zip.is_file():
            raise ValueError("--analyse needs --corpus with malicious-dev.zip")
        records = _analyse(paths.zip)
        datasets.append(Dataset("run", "static run of " + paths.zip.name,
                                run_sequences(records, clusters)))
    cases = chain_cases(labelled, records) if labelled and records else ()
    return datasets, cases


def _tiny_sdist() -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    data = b"from setuptools import setup\nsetup(name='warmup', version='0')\n"
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("warmup-0/setup.py")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _analyse(zip_path: Path) -> tuple[RunRecord, ...]:
    from triage.evaluation.corpus import iter_archives
    from triage.evaluation.runner import run_archives
    from triage.pipeline import explain_bytes

    explain_bytes(_tiny_sdist(), "warmup-0.tar.gz")  # forked workers inherit loaded modules
    records = []
    for record in run_archives(iter_archives(zip_path), explain_bytes, jobs=2, timeout_s=60.0):
        records.append(record)
        typer.echo(f"[{len(records)}] {record.status} {record.archive}", err=True)
    return tuple(records)


def _report(datasets: list[Dataset], cases: tuple[ChainCase, ...], min_support: float,
            min_clusters: int, max_length: int, top: int, out: Path | None, as_json: bool,
            command: str) -> None:
    from triage.mining import chain_accuracy
    from triage.taxonomy import load_taxonomy
    from triage.workflow_mining import (
        dataset_info,
        format_accuracy,
        format_table,
        select_workflows,
    )
    from triage.workflow_mining import (
        mine as mine_all,
    )
    from triage.workflows import dump_workflows

    mined = mine_all(datasets, min_support, min_clusters, max_length)
    accuracy = chain_accuracy(cases) if cases else None
    if as_json:
        data = {
            "datasets": [
                {**dataset_info(m.dataset), "patterns": [
                    {"pattern": list(p.pattern), "support": p.support,
                     "confidence": p.confidence, "clusters": p.clusters,
                     "packages": p.sequences} for p in m.top(top)]}
                for m in mined
            ],
            "chain_accuracy": None if accuracy is None else {
                "cases": accuracy.cases, "clusters": accuracy.clusters,
                "contained": accuracy.contained, "ordered_recall": accuracy.ordered_recall},
        }
        typer.echo(json.dumps(data, indent=1))
    else:
        parts = [format_table(m, top) for m in mined]
        if accuracy is not None:
            parts.append(format_accuracy(accuracy, cases))
        typer.echo("\n".join(parts), nl=False)
    if out is not None:
        workflows = select_workflows(mined, load_taxonomy(), keep=top)
        header = (f"Known attack workflows: frequent indicator sequences (PrefixSpan).\n"
                  f"Generated by: {command}\nDo not edit by hand: re-run the command.")
        params = {"min_support": min_support, "min_clusters": min_clusters,
                  "max_length": max_length, "kept_per_dataset": top}
        out.write_text(dump_workflows(workflows, header, params,
                                      [dataset_info(m.dataset) for m in mined]),
                       encoding="utf-8")
        typer.echo(f"wrote {len(workflows)} workflows to {out}", err=True)


if __name__ == "__main__":  # pragma: no cover - `python -m triage.cli_mine ...`
    typer.run(mine)
