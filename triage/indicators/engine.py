"""Runs every registered detector over an artifact, decoded payloads included.

Literal payloads that decode statically become virtual files (``setup.py#decoded-1``),
indexed and analysed like any other file; their phase is the phase of the statement
that held them, and their findings keep a link to it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from triage.indicators.base import Detector, FileContext, PackageContext, Resolver
from triage.model import Artifact, FileKind, Signal, SkippedFile, SourceFile
from triage.statements import FileIndex, index_file, own_nodes

MAX_DECODED_FILES = 64
MAX_DECODE_DEPTH = 4


@dataclass(frozen=True)
class EngineResult:
    """Static analysis of one artifact."""

    indices: dict[str, FileIndex]
    """Every analysed file (virtual decoded files included), by path."""
    signals: tuple[Signal, ...]
    """Every detector signal, deduplicated on (statement, indicator, lines)."""
    skipped: tuple[SkippedFile, ...]
    """Problems met during analysis (detector errors, decode limits), with reasons."""
    notes: tuple[str, ...] = ()
    """Run notes (e.g. files indexed by fallback segmentation)."""


def file_context(src: SourceFile, artifact: Artifact | None = None) -> FileContext:
    """Index a file and build its detector context (also handy in tests)."""
    index = index_file(src)
    art = artifact or Artifact(name="", version="", sha256="", kind="file", source=src.path,
                               files=(src,))
    return FileContext(index=index, resolver=Resolver(index.nodes), artifact=art)


def _decoded_files(ctx: FileContext, start: int) -> list[SourceFile]:
    """Virtual files for the literal payloads of one file."""
    from triage.deobfuscate import find_payloads

    index = ctx.index
    owner: dict[int, str] = {}
    roots: list[ast.stmt] = []
    for st, node in ctx.statements():
        if node is None:
            continue
        for sub in own_nodes(node):
            owner.setdefault(id(sub), st.id)
        if isinstance(node, ast.stmt) and (st.depth == 0 or index.fallback):
            roots.append(node)
    out: list[SourceFile] = []
    module = ast.Module(body=roots, type_ignores=[])
    for node, decoded in find_payloads(module):
        sid = owner.get(id(node))
        if sid is None or not decoded.text.strip() or (decoded.binary and not decoded.is_python):
            continue  # binary blobs (icons, certificates, marshal) are not source to index
        origin = index.get(sid)
        out.append(SourceFile(
            path=f"{ctx.source.path.split('#')[0]}#decoded-{start + len(out)}",
            text=decoded.text, kind=FileKind.DECODED, origin=sid,
            origin_phase=origin.phase,
        ))
    return out


def _run(det: Detector, ctx: object, where: str, problems: list[SkippedFile]) -> list[Signal]:
    try:
        return list(det(ctx))
    except (RecursionError, MemoryError) as exc:
        problems.append(SkippedFile(where, f"detector {det.name} gave up: {type(exc).__name__}"))
    except Exception as exc:  # a detector bug must not drop the other findings
        problems.append(SkippedFile(where, f"detector {det.name} failed: {exc!r}"[:300]))
    return []


def analyse(artifact: Artifact) -> EngineResult:
    """Index every Python file of ``artifact`` and run all detectors on it.

    Args:
        artifact: an opened artifact (nothing in it is executed).

    Returns:
        Indices, signals and analysis problems.
    """
    from triage.indicators import registry

    problems: list[SkippedFile] = []
    notes: list[str] = []
    contexts: list[FileContext] = []
    queue: list[tuple[SourceFile, int]] = [
        (f, 0) for f in artifact.files if f.kind in (FileKind.PYTHON, FileKind.PTH)
    ]
    decoded_count = 0
    while queue:
        src, depth = queue.pop(0)
        try:
            ctx = file_context(src, artifact)
        except (RecursionError, MemoryError) as exc:
            problems.append(SkippedFile(src.path, f"could not index: {type(exc).__name__}"))
            continue
        if ctx.index.fallback:
            notes.append(f"{src.path}: {ctx.index.fallback}; indexed line by line")
        contexts.append(ctx)
        if depth >= MAX_DECODE_DEPTH:
            continue
        try:
            decoded = _decoded_files(ctx, decoded_count + 1)
        except (RecursionError, MemoryError, ValueError) as exc:
            problems.append(SkippedFile(src.path, f"payload decoding gave up: {exc!r}"[:300]))
            decoded = []
        for d in decoded:
            if decoded_count >= MAX_DECODED_FILES:
                problems.append(SkippedFile(d.path, "decoded payload not analysed: more than "
                                            f"{MAX_DECODED_FILES} payloads in this package"))
                break
            decoded_count += 1
            queue.append((d, depth + 1))
    signals: list[Signal] = []
    for ctx in contexts:
        for det in registry.FILE_DETECTORS:
            signals += _run(det, ctx, ctx.source.path, problems)
    pkg = PackageContext(artifact=artifact, files=tuple(contexts))
    for det in registry.PACKAGE_DETECTORS:
        signals += _run(det, pkg, artifact.source, problems)
    for det in registry.POST_DETECTORS:
        signals += _run(det, (pkg, tuple(signals)), artifact.source, problems)
    seen: set[tuple[str, str, int | None, int | None]] = set()
    unique: list[Signal] = []
    for s in signals:
        key = (s.statement_id, s.indicator, s.start_line, s.end_line)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return EngineResult(
        indices={c.source.path: c.index for c in contexts},
        signals=tuple(unique), skipped=tuple(problems), notes=tuple(notes),
    )
