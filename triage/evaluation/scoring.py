"""Glue between saved run records, the corpus labels and the pure metrics.

A run is saved as JSON Lines of :class:`RunRecord`; scoring reads only those records plus
the label file, the cluster file and the source text of labelled files (read in memory
from the corpus zip), so a saved run can be re-scored without re-analysing anything.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triage.errors import ArtifactError
from triage.evaluation.corpus import Label, load_clusters, load_labels, read_archive, read_members
from triage.evaluation.labels import load_aliases
from triage.evaluation.metrics import NO_VERDICT, ArchiveCase, Span, code_lines
from triage.evaluation.runner import OK, RunRecord

SourceReader = Callable[[str, frozenset[str]], Mapping[str, str]]
"""``(archive, wanted files) -> {file: text}``."""


@dataclass(frozen=True)
class CorpusPaths:
    """Files of a corpus directory (``shared/corpus``)."""

    root: Path

    @property
    def zip(self) -> Path:
        """The encrypted archive zip."""
        return self.root / "malicious-dev.zip"

    @property
    def labels(self) -> Path:
        """Statement-level labels."""
        return self.root / "labels-dev.jsonl"

    @property
    def clusters(self) -> Path:
        """Per-archive cluster keys."""
        return self.root / "packages-dev.csv"


def spans_from_report(report: Mapping[str, Any]) -> tuple[Span, ...]:
    """Finding spans of a report dict (as saved in the results file)."""
    return tuple(
        Span(
            file=str(f["file"]),
            start_line=int(f["start_line"]),
            end_line=int(f["end_line"]),
            indicator=str(f["indicator"]),
        )
        for f in report.get("findings", ())
    )


def verdict_of(record: RunRecord) -> str:
    """The verdict label of a record, or :data:`NO_VERDICT` when it has none."""
    if record.status != OK or record.report is None:
        return NO_VERDICT
    verdict = record.report.get("verdict") or {}
    return str(verdict.get("label", NO_VERDICT))


def zip_source_reader(zip_path: Path) -> SourceReader:
    """A :data:`SourceReader` over the encrypted corpus zip (in memory)."""

    def read(archive: str, wanted: frozenset[str]) -> Mapping[str, str]:
        try:
            return read_members(read_archive(zip_path, archive), archive, wanted)
        except (ArtifactError, KeyError):
            return {}

    return read


def build_cases(
    records: Iterable[RunRecord],
    labels: Iterable[Label],
    clusters: Mapping[str, str],
    read_sources: SourceReader,
) -> tuple[ArchiveCase, ...]:
    """One :class:`ArchiveCase` per record, with labels and code lines of labelled files.

    Archives missing from ``clusters`` form a cluster of their own. Every corpus archive
    is malicious at package level.
    """
    by_archive: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_archive[label.archive].append(label)
    cases = []
    for record in records:
        archive_labels = tuple(by_archive.get(record.archive, ()))
        files = frozenset(label.file for label in archive_labels)
        texts = read_sources(record.archive, files) if files else {}
        cases.append(
            ArchiveCase(
                archive=record.archive,
                cluster=clusters.get(record.archive, f"archive:{record.archive}"),
                verdict=verdict_of(record),
                findings=spans_from_report(record.report) if record.report else (),
                labels=archive_labels,
                code_lines={f: code_lines(t) for f, t in texts.items()},
            )
        )
    return tuple(cases)


def read_records(path: Path) -> tuple[RunRecord, ...]:
    """Records of a results JSON Lines file; a later record of an archive replaces earlier."""
    out: dict[str, RunRecord] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = RunRecord.from_json(json.loads(line))
                out[record.archive] = record
    return tuple(out.values())


def load_ground_truth(paths: CorpusPaths) -> tuple[tuple[Label, ...], dict[str, str]]:
    """Labels (aliases applied) and cluster keys of a corpus."""
    return load_labels(paths.labels, load_aliases()), load_clusters(paths.clusters)


def taxonomy_type_of() -> tuple[Callable[[str], str], str]:
    """``indicator -> type ID`` from the taxonomy, and a note ("" when it loaded).

    When the taxonomy cannot be loaded, each ID is its own type (type-level accuracy then
    equals exact accuracy) and the note says so.
    """
    try:
        from triage.taxonomy import load_taxonomy

        taxonomy = load_taxonomy()
    except Exception as exc:  # the taxonomy module is optional for scoring
        note = f"taxonomy unavailable ({type(exc).__name__}: {exc}); type accuracy = exact"
        return (lambda indicator: indicator), note

    def type_of(indicator: str) -> str:
        try:
            return str(taxonomy.type_of(indicator).id)
        except Exception:  # an ID the taxonomy does not know is a type of its own
            return f"unknown:{indicator}"

    return type_of, ""


def unanalysed_label_files(
    records: Iterable[RunRecord], labels: Iterable[Label]
) -> tuple[tuple[str, str], ...]:
    """(archive, file) of labelled files that a successful report did not analyse.

    Only reports that list ``files_analysed`` are checked. A non-empty result usually means
    the report names files differently from the labels (e.g. without the top directory),
    which would make every line metric 0 for those files.
    """
    analysed = {
        r.archive: set(r.report.get("files_analysed") or ())
        for r in records
        if r.status == OK and r.report is not None and r.report.get("files_analysed")
    }
    pairs = {(label.archive, label.file) for label in labels}
    return tuple(sorted((a, f) for a, f in pairs if a in analysed and f not in analysed[a]))
