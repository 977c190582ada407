"""Checks every LLM citation against the statement index, then merges with static findings. Pure.

A citation becomes a finding only when every statement it names exists, its quote matches the
source of those statements (whitespace-normalised) and its indicator is in the taxonomy;
otherwise it is a :class:`~triage.model.RejectedCitation` with the reason. Verified citations
merge with static findings: when both engines name the same (statement, indicator) the finding
is ``both`` with a combined confidence. The model may dispute static findings of low or medium
severity; high and critical ones stay whatever it says, and no dispute is honoured when the
package addresses an AI reviewer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from triage.llm_answer import BenignHint, Citation
from triage.model import Finding, RejectedCitation, Signal, Source
from triage.statements import FileIndex
from triage.taxonomy import Taxonomy

MIN_QUOTE_CHARS = 6
"""A shorter quote must be the whole statement (``os`` alone proves nothing)."""
MAX_STATEMENTS_PER_CITATION = 8
LLM_CONFIDENCE_CAP = 0.9
"""A finding only the model claims never gets more confidence than this."""
PROTECTED_SEVERITIES = ("high", "critical")
"""Static findings of these severities cannot be removed by the model."""
INJECTION_INDICATOR = "code_prompt_injection"

_SHORT_ID = re.compile(r"^\d+:\d+$")
_DISPLAY_PREFIX = re.compile(r"^\s*\d+\s*(?:\[[^\]]*\])?\s*\|\s?")
TRUNCATION = re.compile(r"…\[\+\d+ (?:chars|lines)\]|…(?:\[(?:\+\d*(?: \w*)?)?)?$")
"""Marker the prompt puts where it shortened a long line or statement (also cut short at the
end of a quote, where a length-bounded answer stopped inside it)."""


@dataclass(frozen=True)
class VerifiedCitation:
    """A citation that passed every check, with full statement IDs."""

    statement_ids: tuple[str, ...]
    indicator: str
    quote: str
    justification: str
    confidence: float
    dropped: tuple[RejectedCitation, ...] = ()
    """Statements the citation named that its quote does not cover (not findings)."""


@dataclass(frozen=True)
class Verification:
    """Outcome of checking one answer."""

    verified: tuple[VerifiedCitation, ...]
    rejected: tuple[RejectedCitation, ...]


@dataclass(frozen=True)
class Merged:
    """Static and verified LLM findings together, with notes on disputed static findings."""

    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()


def normalise(text: str) -> str:
    """Collapse every run of whitespace to one space."""
    return " ".join(text.split())


def file_of(statement_id: str) -> str:
    """The file part of ``<file>:<line>:<ordinal>``."""
    return statement_id.rsplit(":", 2)[0]


def resolve_id(statement_id: str, default_file: str | None) -> str:
    """Expand a short ``<line>:<ordinal>`` ID against the file the prompt showed."""
    sid = statement_id.strip().strip("[]`'\"")
    if default_file and _SHORT_ID.match(sid):
        return f"{default_file}:{sid}"
    return sid


def _quote_pieces(quote: str) -> list[str]:
    text = quote.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[\w-]*\n?|\n?```$", "", text)
    text = "\n".join(_DISPLAY_PREFIX.sub("", line) for line in text.splitlines())
    return [normalise(p) for p in TRUNCATION.split(text) if normalise(p)]


def quote_matches(quote: str, source: str) -> bool:
    """True when ``quote`` is a verbatim (whitespace-normalised) excerpt of ``source``.

    Display prefixes the prompt added (line numbers, statement IDs) and truncation markers
    are tolerated; every remaining piece must occur in order.
    """
    return match_spans(quote, source) is not None


def match_spans(quote: str, source: str) -> list[tuple[int, int]] | None:
    """Where the pieces of ``quote`` occur, in order, in ``normalise(source)`` (None: they
    do not; see :func:`quote_matches`)."""
    pieces = _quote_pieces(quote)
    src = normalise(source)
    if not pieces:
        return None
    short = sum(len(p) for p in pieces) < MIN_QUOTE_CHARS
    if short:  # a short quote must be the whole statement or its header line
        head = normalise(source.split("\n", 1)[0])
        text = " ".join(pieces)
        return [(0, len(text))] if text in (src, head) else None
    pos = 0
    spans = []
    for piece in pieces:
        found = src.find(piece, pos)
        if found < 0:
            return None
        pos = found + len(piece)
        spans.append((found, pos))
    return spans


def statement_source(index: FileIndex, statement_id: str) -> str:
    """Full source lines of a statement's span (what the prompt showed)."""
    st = index.get(statement_id)
    return "\n".join(index.lines[st.start_line - 1 : st.end_line]) or st.text


def _reject(c: Citation, reason: str, model: str, sid: str | None = None) -> RejectedCitation:
    first = sid if sid is not None else (c.statement_ids[0] if c.statement_ids else "")
    return RejectedCitation(statement_id=first, indicator=c.indicator, quote=c.quote[:500],
                            reason=reason, model=model)


def check(c: Citation, indices: Mapping[str, FileIndex], taxonomy: Taxonomy, model: str = "",
          default_file: str | None = None) -> VerifiedCitation | RejectedCitation:
    """Verify one citation.

    Args:
        c: the model's citation.
        indices: statement index of every analysed file, by path.
        taxonomy: the taxonomy.
        model: model string, recorded on rejections.
        default_file: the file the prompt showed, for short ``<line>:<ordinal>`` IDs.
    """
    ids = tuple(dict.fromkeys(resolve_id(s, default_file) for s in c.statement_ids))
    if not ids:
        return _reject(c, "no statement cited", model)
    if len(ids) > MAX_STATEMENTS_PER_CITATION:
        return _reject(c, f"too many statements in one citation ({len(ids)} > "
                          f"{MAX_STATEMENTS_PER_CITATION})", model, ids[0])
    for sid in ids:
        index = indices.get(file_of(sid))
        if index is None or sid not in index:
            return _reject(c, f"statement {sid} does not exist", model, sid)
    if c.indicator not in taxonomy:
        return _reject(c, f"indicator {c.indicator!r} is not in the taxonomy", model, ids[0])
    if not c.quote.strip():
        return _reject(c, "no code quoted", model, ids[0])
    ordered = sorted(ids, key=lambda s: (file_of(s), indices[file_of(s)].get(s).start_line))
    parts = [statement_source(indices[file_of(s)], s) for s in ordered]
    spans = match_spans(c.quote, "\n".join(parts))
    if spans is None:
        what = f"statement {ids[0]}" if len(ids) == 1 else "statements " + ", ".join(ids)
        return _reject(c, f"quote does not match the source of {what}", model, ids[0])
    covered, dropped = [], []
    start = 0
    for sid, part in zip(ordered, parts, strict=True):
        end = start + len(normalise(part))
        if any(a < end and b > start for a, b in spans) or not normalise(part):
            covered.append(sid)
        else:
            dropped.append(_reject(c, f"the quote does not cover statement {sid}", model, sid))
        start = end + 1  # the space that joins two normalised parts
    keep = tuple(s for s in ids if s in covered)
    return VerifiedCitation(statement_ids=keep, indicator=c.indicator, quote=c.quote,
                            justification=c.justification, confidence=c.confidence,
                            dropped=tuple(dropped))


def verify(citations: Iterable[Citation], indices: Mapping[str, FileIndex],
           taxonomy: Taxonomy, model: str = "", default_file: str | None = None) -> Verification:
    """Verify every citation of an answer (see :func:`check`)."""
    ok: list[VerifiedCitation] = []
    bad: list[RejectedCitation] = []
    for c in citations:
        res = check(c, indices, taxonomy, model, default_file)
        if isinstance(res, VerifiedCitation):
            ok.append(res)
            bad.extend(res.dropped)
        else:
            bad.append(res)
    return Verification(verified=tuple(ok), rejected=tuple(bad))


def combine(a: float, b: float) -> float:
    """Confidence when two independent engines agree."""
    return round(min(0.99, 1.0 - (1.0 - a) * (1.0 - b)), 2)


def _llm_finding(sid: str, v: VerifiedCitation, index: FileIndex, taxonomy: Taxonomy,
                 signal: Signal | None) -> Finding:
    st = index.get(sid)
    ind = taxonomy.get(v.indicator)
    start, end, code = st.start_line, st.end_line, st.text
    conf, source, just = min(v.confidence, LLM_CONFIDENCE_CAP), Source.LLM, v.justification
    if signal is not None:  # a static signal below the reporting threshold, now confirmed
        conf, source = combine(signal.confidence, v.confidence), Source.BOTH
        just = f"{signal.evidence}; model: {v.justification}"
        if signal.start_line is not None:
            start = signal.start_line
            end = signal.end_line if signal.end_line is not None else start
            code = "\n".join(index.lines[start - 1 : end])
    return Finding(file=index.file.path, start_line=start, end_line=end, code=code,
                   indicator=v.indicator, type=ind.type_name, phase=st.phase,
                   severity=ind.severity, confidence=round(conf, 2), source=source,
                   justification=just, statement_id=sid, origin=index.file.origin)


def merge(static: Sequence[Finding], verified: Iterable[VerifiedCitation],
          indices: Mapping[str, FileIndex], taxonomy: Taxonomy,
          signals: Sequence[Signal] = (), hints: Iterable[BenignHint] = ()) -> Merged:
    """Merge verified citations into the static findings.

    Args:
        static: the static findings (reported ones).
        verified: verified citations of every answer.
        indices: statement index by path.
        taxonomy: the taxonomy.
        signals: every static signal, also those below the reporting threshold; a citation
            that confirms one becomes a ``both`` finding.
        hints: the model's claims that static findings are false positives.

    Returns:
        Findings sorted by file and line, and notes on each disputed static finding.
    """
    out: dict[tuple[str, str], Finding] = {}
    for f in static:
        out.setdefault((f.statement_id, f.indicator), f)
    by_key = {(s.statement_id, s.indicator): s for s in signals}
    for v in verified:
        for sid in v.statement_ids:
            key = (sid, v.indicator)
            cur = out.get(key)
            if cur is None:
                out[key] = _llm_finding(sid, v, indices[file_of(sid)], taxonomy,
                                        by_key.get(key))
            elif cur.source is Source.STATIC:
                out[key] = replace(cur, source=Source.BOTH,
                                   confidence=combine(cur.confidence, v.confidence),
                                   justification=f"{cur.justification}; model: "
                                                 f"{v.justification}")
            elif cur.source is Source.LLM and v.confidence > cur.confidence:
                out[key] = replace(cur, confidence=round(min(v.confidence,
                                                             LLM_CONFIDENCE_CAP), 2))
    notes: list[str] = []
    injected = any(k[1] == INJECTION_INDICATOR for k in out)
    for h in hints:
        key = (h.statement_id, h.indicator)
        disputed = out.get(key)
        if disputed is None or disputed.source is not Source.STATIC:
            continue  # a dispute of nothing, or of what the model itself confirmed
        where = f"{h.indicator} at {disputed.file}:{disputed.start_line}"
        if disputed.severity in PROTECTED_SEVERITIES:
            notes.append(f"model disputed {where} ({h.reason}); kept: {disputed.severity}-"
                         "severity static findings cannot be removed by the model")
        elif injected:
            notes.append(f"model disputed {where} ({h.reason}); kept: the package addresses "
                         "an AI reviewer, so no dispute is honoured")
        else:
            del out[key]
            notes.append(f"model disputed {where} ({h.reason}); removed "
                         f"({disputed.severity} severity)")
    found = sorted(out.values(), key=lambda f: (f.file, f.start_line, f.end_line, f.indicator))
    return Merged(findings=tuple(found), notes=tuple(notes))
