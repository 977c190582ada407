"""The only place that wires stages together: intake -> index -> detectors -> report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from triage.chains import analyse_chain
from triage.indicators.engine import EngineResult, analyse
from triage.model import (
    Artifact,
    ArtifactInfo,
    Finding,
    IndicatorInfo,
    Report,
    Signal,
    Source,
    Verdict,
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
    # LLM localization (off unless ``model`` is set); see triage/localize.py
    model: str | None = None
    """litellm model string (``openai/gpt-4.1-mini``, ``anthropic/...``, ``ollama/...``, or
    ``local``/``openai/<name>`` with ``api_base``); None runs the static engine only."""
    api_base: str | None = None
    """OpenAI-compatible server URL (vLLM, llama.cpp, ...)."""
    max_tokens_per_package: int = 60_000
    """Prompt tokens of all LLM calls for one package; the rest is listed as not reviewed."""
    chunk_tokens: int = 6_000
    """Most code tokens in one prompt; bigger files are split at statement boundaries."""
    context_tokens: int = 0
    """Override of the model's context size (0: litellm's map, else 8192)."""
    review_pass: bool = True
    """Let the model re-check its answer once, with verification feedback."""
    concurrency: int = 4
    llm_timeout_s: float | None = None
    """Seconds per LLM call (None: 120 for hosted models, 900 for ``local``)."""
    llm_retries: int = 3
    llm_backoff_s: float = 1.0
    llm_cache: bool = True
    """Reuse cached answers for identical prompts."""
    llm_db: str | None = None
    """Cache + transcript database (default ``$TRIAGE_HOME/llm.sqlite3``)."""
    stream: bool = False
    json_mode: str = "auto"


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
    llm = None
    if opts.model:
        from triage.localize import localize, settings_from

        llm = localize(artifact, result, found, settings_from(opts),
                       lambda fs: _decide(artifact, result, fs), taxonomy=tax)
        found = llm.findings
        notes += llm.notes
    used = sorted({f.indicator for f in found})
    indicators = tuple(
        IndicatorInfo(id=i, name=tax.get(i).name, type=tax.get(i).type_name,
                      severity=tax.get(i).severity, cwe=tax.get(i).cwe,
                      attack=tax.get(i).attack, definition=tax.get(i).definition)
        for i in used
    )
    chain = analyse_chain(found, result.indices)
    return Report(
        artifact=ArtifactInfo(name=artifact.name, version=artifact.version,
                              sha256=artifact.sha256, kind=artifact.kind,
                              source=artifact.source),
        verdict=llm.verdict if llm else decide(found, tuple(artifact.skipped),
                                               pure=_pure(artifact), chain_bonus=chain.bonus,
                                               chain_reason=chain.reason), findings=found,
        skipped=tuple(artifact.skipped) + result.skipped,
        chain=chain.chain, workflows=chain.workflows, indicators=indicators,
        files_analysed=tuple(result.indices), elapsed_s=round(time.perf_counter() - t0, 4),
        notes=tuple(notes),
        engine=llm.usage.model if llm else "static", rejected=llm.rejected if llm else (),
        not_reviewed=llm.not_reviewed if llm else (), llm=llm.usage if llm else None,
    )


def _decide(artifact: Artifact, result: EngineResult, found: tuple[Finding, ...]) -> Verdict:
    """The verdict for a set of findings, with the chain they form (for the LLM pass)."""
    chain = analyse_chain(found, result.indices)
    return decide(found, tuple(artifact.skipped), pure=_pure(artifact),
                  chain_bonus=chain.bonus, chain_reason=chain.reason)


def estimate_llm(target: str, options: Options, models: tuple[str, ...]) -> tuple[Any, ...]:
    """``--dry-run``: tokens and estimated cost of the LLM pass per model; calls nothing.

    Raises:
        ArtifactError: the target cannot be read or is rejected as hostile.
    """
    from triage.artifact import open_artifact
    from triage.llm_estimate import estimate
    from triage.localize import settings_from

    artifact = open_artifact(target, artifact=options.artifact, index_url=options.index_url)
    return estimate(artifact, analyse(artifact), settings_from(options).plan, models)


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
