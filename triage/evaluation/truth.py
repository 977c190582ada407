"""Statement-level ground truth: labelled line ranges mapped onto the statement index.

Each labelled file is indexed with :func:`triage.statements.index_file` (parse only, never
executed); a labelled line maps to the statements whose span covers it. The result is plain
data that is cached as JSON in a run directory, so a saved run is re-scored without reading
the corpus again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from triage.evaluation.corpus import Label
from triage.evaluation.stmt_metrics import PackageTruth, StmtSpan, TruthStatement, map_lines
from triage.model import FileKind, SourceFile
from triage.statements import index_file

SourceReader = Callable[[str, frozenset[str]], Mapping[str, str]]
"""``(archive, wanted files) -> {file: text}``."""


def statement_spans(path: str, text: str) -> tuple[StmtSpan, ...]:
    """Sorted distinct (start, end) spans of every statement of one Python file."""
    index = index_file(SourceFile(path=path, text=text, kind=FileKind.PYTHON))
    return tuple(sorted({(s.start_line, s.end_line) for s in index.statements}))


def package_truth(
    archive: str,
    cluster: str,
    labels: Sequence[Label],
    texts: Mapping[str, str],
    malicious: bool = True,
) -> PackageTruth:
    """Map the labels of one archive onto statements.

    A labelled file whose text is missing from ``texts`` (unreadable member) is treated as
    one statement per labelled line, so its labels are still scored.
    """
    spans: dict[str, tuple[StmtSpan, ...]] = {}
    indicators: dict[tuple[str, int, int], set[str]] = defaultdict(set)
    unmapped = 0
    for file in sorted({label.file for label in labels}):
        if file in texts:
            spans[file] = statement_spans(file, texts[file])
        else:
            spans[file] = tuple(sorted({(n, n) for lb in labels if lb.file == file
                                        for n in lb.lines}))
    for label in labels:
        covering, uncovered = map_lines(spans[label.file], label.lines)
        unmapped += len(uncovered)
        for start, end in covering:
            indicators[(label.file, start, end)].add(label.indicator)
    labelled = tuple(
        TruthStatement(file, start, end, tuple(sorted(ids)))
        for (file, start, end), ids in sorted(indicators.items())
    )
    return PackageTruth(archive, cluster, malicious, labelled, spans, unmapped)


def build_truths(
    packages: Iterable[tuple[str, str, bool]],
    labels: Iterable[Label],
    read_sources: SourceReader,
) -> tuple[PackageTruth, ...]:
    """Ground truth of every ``(archive, cluster, malicious)`` package, in the given order."""
    by_archive: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_archive[label.archive].append(label)
    out = []
    for archive, cluster, malicious in packages:
        own = by_archive.get(archive, [])
        texts = read_sources(archive, frozenset(lb.file for lb in own)) if own else {}
        out.append(package_truth(archive, cluster, own, texts, malicious))
    return tuple(out)


def truth_to_json(truth: PackageTruth) -> dict[str, Any]:
    """JSON-ready form of one package's truth."""
    return {
        "archive": truth.archive,
        "cluster": truth.cluster,
        "malicious": truth.malicious,
        "labelled": [[t.file, t.start_line, t.end_line, list(t.indicators)] for t in
                     truth.labelled],
        "statements": {f: [list(s) for s in spans] for f, spans in truth.statements.items()},
        "unmapped_lines": truth.unmapped_lines,
    }


def truth_from_json(data: Mapping[str, Any]) -> PackageTruth:
    """Inverse of :func:`truth_to_json`."""
    return PackageTruth(
        archive=str(data["archive"]),
        cluster=str(data["cluster"]),
        malicious=bool(data["malicious"]),
        labelled=tuple(
            TruthStatement(str(f), int(s), int(e), tuple(str(i) for i in ids))
            for f, s, e, ids in data["labelled"]
        ),
        statements={
            str(f): tuple((int(s), int(e)) for s, e in spans)
            for f, spans in data["statements"].items()
        },
        unmapped_lines=int(data.get("unmapped_lines", 0)),
    )


def files_digest(paths: Iterable[Path | None]) -> str:
    """sha256 over the contents of the given files (``None`` and missing files count as empty).

    Used to tell whether cached truth is still valid for the label, cluster and alias files.
    """
    h = hashlib.sha256()
    for path in paths:
        h.update(b"\0")
        if path is not None and Path(path).is_file():
            h.update(Path(path).read_bytes())
    return h.hexdigest()
