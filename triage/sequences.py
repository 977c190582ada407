"""Indicator sequences from labelled data and from saved triage runs (for mining and scoring).

Labelled sequences: per archive, the code labels (``code_*``; metadata is not a step of what
runs) ordered by the phase of the labelled statement, then its place in the static call
flow, then line: the order chains use (:mod:`triage.execution`), computed with
:func:`triage.statements.index_file` over the archive's files, read in memory from the
encrypted corpus zip (nothing is extracted or executed). Several labels on one statement
are ordered like chain steps on one statement (:data:`triage.chains.TYPE_ORDER`). Run sequences:
the code steps of each report's ``chain``. Both are collapsed to the first occurrence of
each indicator, as chains are.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from triage.chains import TYPE_ORDER, is_code
from triage.evaluation.corpus import Label
from triage.evaluation.runner import OK, RunRecord
from triage.execution import execution_order
from triage.mining import ChainCase, ItemSequence, collapse
from triage.model import FileKind, SourceFile
from triage.statements import index_file, module_phase
from triage.taxonomy import Taxonomy

ArchiveReader = Callable[[str], Sequence[SourceFile]]
"""``archive -> its Python and .pth files`` (read in memory, never extracted)."""

_UNPLACED = 10**9


def zip_archive_reader(zip_path: Path) -> ArchiveReader:
    """An :data:`ArchiveReader` over the encrypted corpus zip, through the safe intake."""
    from triage.artifact import open_bytes
    from triage.errors import ArtifactError
    from triage.evaluation.corpus import read_archive

    def read(archive: str) -> tuple[SourceFile, ...]:
        try:
            art = open_bytes(read_archive(zip_path, archive), posixpath.basename(archive))
        except (ArtifactError, KeyError):
            return ()
        return tuple(f for f in art.files if f.kind in (FileKind.PYTHON, FileKind.PTH))

    return read


def label_keys(rows: Sequence[Label], files: Sequence[SourceFile], taxonomy: Taxonomy
               ) -> list[tuple[int, int, int, int, str]]:
    """Sort key of each label: (phase, execution rank, type order, line, indicator).

    Phase and rank are those of the statement at the label's first line, from
    :func:`triage.execution.execution_order` over every Python file of the archive; a label
    on a file or line with no statement sorts after the placed ones of its file's phase.
    """
    indices = {f.path: index_file(f) for f in files}
    order = execution_order(indices)
    out = []
    for r in rows:
        kind = taxonomy.get(r.indicator).type_name if r.indicator in taxonomy else ""
        line = min(r.lines)
        index = indices.get(r.file)
        st = index.at_line(line) if index is not None else None
        pos = order.get(st.id) if st is not None else None
        if pos is not None:
            out.append((pos.phase.order, pos.rank, TYPE_ORDER.get(kind, 4), line, r.indicator))
        else:
            phase = module_phase(SourceFile(r.file, "")).order
            out.append((phase, _UNPLACED, TYPE_ORDER.get(kind, 4), line, r.indicator))
    return out


def label_sequences(labels: Iterable[Label], clusters: Mapping[str, str],
                    read_archive: ArchiveReader, taxonomy: Taxonomy) -> tuple[ItemSequence, ...]:
    """One sequence per archive with code labels, in execution order (see :func:`label_keys`).

    Labels are ordered as chains are: trigger phase, then static call flow, then source
    order, so a download labelled inside a function that an install hook calls comes after
    the hook even when the function is defined above it.
    """
    by_archive: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        if is_code(label.indicator) and label.lines:
            by_archive[label.archive].append(label)
    out = []
    for archive in sorted(by_archive):
        rows = by_archive[archive]
        keys = label_keys(rows, read_archive(archive), taxonomy)
        ranked = sorted(range(len(rows)), key=lambda i: (keys[i], rows[i].file))
        items = collapse(rows[i].indicator for i in ranked)
        out.append(ItemSequence(key=archive, group=clusters.get(archive, archive), items=items))
    return tuple(out)


def chain_of(report: Mapping[str, Any]) -> tuple[str, ...]:
    """Code indicators of a saved report's chain, in order, first occurrences only."""
    steps = report.get("chain") or ()
    return collapse(str(s["indicator"]) for s in steps if is_code(str(s["indicator"])))


def run_sequences(records: Iterable[RunRecord],
                  clusters: Mapping[str, str]) -> tuple[ItemSequence, ...]:
    """One sequence per successfully analysed archive (empty chains included: they count
    in the support denominator)."""
    return tuple(
        ItemSequence(key=r.archive, group=clusters.get(r.archive, r.archive),
                     items=chain_of(r.report))
        for r in sorted(records, key=lambda r: r.archive)
        if r.status == OK and r.report is not None
    )


def chain_cases(labelled: Iterable[ItemSequence],
                records: Iterable[RunRecord]) -> tuple[ChainCase, ...]:
    """Labelled sequence vs predicted chain for every labelled archive that was analysed.

    Archives are matched by path; a record whose archive path differs only by directory
    (a run over a copy) is matched by file name.
    """
    by_archive = {r.archive: r for r in records if r.status == OK and r.report is not None}
    by_name = {posixpath.basename(a): r for a, r in by_archive.items()}
    out = []
    for seq in labelled:
        record = by_archive.get(seq.key) or by_name.get(posixpath.basename(seq.key))
        if record is None or record.report is None:
            continue
        out.append(ChainCase(key=seq.key, group=seq.group, labelled=seq.items,
                             predicted=chain_of(record.report)))
    return tuple(out)
