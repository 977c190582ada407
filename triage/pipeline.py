"""The only place that wires stages together: intake -> index -> detectors -> report."""

from __future__ import annotations

import time
from dataclasses import dataclass

from triage.indicators.engine import EngineResult, analyse
from triage.model import (
    Artifact,
    ArtifactInfo,
    ChainStep,
    Finding,
    IndicatorInfo,
    Report,
    Signal,
    Source,
)
from triage.taxonomy import Taxonomy, load_taxonomy
from triage.verdict import decide

#: Signals below this confidence are capability noise, not findings.
DEFAULT_MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class Options:
    """How to analyse (the CLI builds this from its flags)."""

    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    """Signals below this confidence are counted in the notes but not reported."""
    artifact: str = "all"
    """For ``name==version`` targets: wheel, sdist or all."""
    index_url: str = "https://pypi.org"
    """Package index for ``name==version`` targets."""


def _finding(sig: Signal, result: EngineResult, tax: Taxonomy) -> Finding | None:
    path = sig.statement_id.rsplit(":", 2)[0]
    index = result.indices.get(path)
    if index is None or sig.statement_id not in index or sig.indicator not in tax:
        return None
    st = index.get(sig.statement_id)
    start, end = st.start_line, st.end_line
    code = st.text
    if sig.start_line is not None:
        start = sig.start_line
        end = sig.end_line if sig.end_line is not None else start
        code = "\n".join(index.lines[start - 1 : end])
    ind = tax.get(sig.indicator)
    return Finding(
        file=path, start_line=start, end_line=end, code=code, indicator=sig.indicator,
        type=ind.type_name, phase=st.phase, severity=ind.severity,
        confidence=round(sig.confidence, 2), source=Source.STATIC,
        justification=sig.evidence, statement_id=st.id, origin=index.file.origin,
    )


def _pure(artifact: Artifact) -> bool:
    """True when the artifact should hold no native code (sdist, none-any wheel, dir, file)."""
    if artifact.kind != "wheel":
        return True
    return artifact.source.endswith("none-any.whl") or "-none-any" in artifact.source


def _file_order(findings: list[Finding]) -> dict[str, int]:
    first: dict[str, int] = {}
    for f in findings:
        first.setdefault(f.file.split("#")[0], len(first))
    return first


def build_chain(findings: tuple[Finding, ...]) -> tuple[ChainStep, ...]:
    """Order findings as the attack runs: phase, then file, then source order.

    Decoded payload findings run where their origin statement runs, so they sort right
    after it. Consecutive steps with the same indicator collapse into one.
    """
    code = [f for f in findings if not f.indicator.startswith("metadata_")]
    order = _file_order(code)
    origin_line: dict[str, int] = {f.statement_id: f.start_line for f in code}

    def key(item: tuple[int, Finding]) -> tuple[int, int, int, int, int]:
        _, f = item
        base_line = origin_line.get(f.origin or "", f.start_line) if f.origin else f.start_line
        decoded = 1 if f.origin else 0
        return (f.phase.order, order[f.file.split("#")[0]], base_line, decoded, f.start_line)

    indexed = [(i, f) for i, f in enumerate(findings) if f in code]
    steps: list[ChainStep] = []
    for i, f in sorted(indexed, key=key):
        if steps and steps[-1].indicator == f.indicator:
            continue
        steps.append(ChainStep(phase=f.phase, indicator=f.indicator, finding_index=i))
    return tuple(steps)


def explain_artifact(artifact: Artifact, options: Options | None = None,
                     started: float | None = None) -> Report:
    """Analyse an opened artifact with the static engine.

    Args:
        artifact: the package, opened safely.
        options: analysis options.
        started: ``time.perf_counter()`` at the start of intake, for ``elapsed_s``.

    Returns:
        The report.
    """
    opts = options or Options()
    t0 = started if started is not None else time.perf_counter()
    tax = load_taxonomy()
    result = analyse(artifact)
    findings: list[Finding] = []
    hidden = 0
    for sig in result.signals:
        if sig.confidence < opts.min_confidence:
            hidden += 1
            continue
        f = _finding(sig, result, tax)
        if f is not None:
            findings.append(f)
    findings.sort(key=lambda f: (f.file, f.start_line, f.end_line, f.indicator))
    found = tuple(findings)
    notes = list(result.notes)
    if hidden:
        notes.append(f"{hidden} low-confidence signal(s) below {opts.min_confidence} "
                     "not reported (capabilities common in benign code)")
    used = sorted({f.indicator for f in found})
    indicators = tuple(
        IndicatorInfo(id=i, name=tax.get(i).name, type=tax.get(i).type_name,
                      severity=tax.get(i).severity, cwe=tax.get(i).cwe,
                      attack=tax.get(i).attack, definition=tax.get(i).definition)
        for i in used
    )
    return Report(
        artifact=ArtifactInfo(name=artifact.name, version=artifact.version,
                              sha256=artifact.sha256, kind=artifact.kind,
                              source=artifact.source),
        verdict=decide(found, tuple(artifact.skipped), pure=_pure(artifact)), findings=found,
        skipped=tuple(artifact.skipped) + result.skipped,
        chain=build_chain(found), indicators=indicators,
        files_analysed=tuple(result.indices), elapsed_s=round(time.perf_counter() - t0, 4),
        notes=tuple(notes),
    )


def explain(target: str, options: Options | None = None) -> Report:
    """Open ``target`` safely and analyse it (never executes anything in it).

    Raises:
        ArtifactError: the target cannot be read or is rejected as hostile.
    """
    from triage.artifact import open_artifact

    opts = options or Options()
    t0 = time.perf_counter()
    artifact = open_artifact(target, artifact=opts.artifact, index_url=opts.index_url)
    return explain_artifact(artifact, opts, started=t0)


def explain_bytes(data: bytes, filename: str, options: Options | None = None) -> Report:
    """Analyse an archive given as bytes (e.g. read from an encrypted corpus zip)."""
    from triage.artifact import open_bytes

    t0 = time.perf_counter()
    artifact = open_bytes(data, filename, source=filename)
    return explain_artifact(artifact, options, started=t0)
