"""JSON report: the saved, versioned form of a :class:`~triage.model.Report`.

Machine format: code, paths and metadata are kept exactly as found (not defanged), so a saved
report can be re-scored or diffed. The one exception: live Discord/Telegram webhook URLs are
broken in every string (``discord[.]com/api/webhooks/...``, see
:func:`triage.render.defang.defang_webhooks`), so a saved report never carries a working
exfiltration endpoint. :func:`report_to_dict` / :func:`report_from_dict` are an exact round trip;
only the text written by :func:`render` / :func:`render_jsonl` loses live webhook URLs.

Schema (``schema_version`` "1.0"; keys always in this order)::

    {
      "schema_version": "1.0",
      "artifact": {"name": str, "version": str, "sha256": str, "kind": str, "source": str},
      "verdict": {"label": "malicious|suspicious|benign|needs-review", "score": float 0..100,
                  "reasons": [str]},
      "findings": [{
          "file": str,              # path in the package; "setup.py#decoded-1" for payloads
          "start_line": int, "end_line": int,   # 1-based, inclusive
          "code": str,              # exact quoted source of the span
          "indicator": str,         # taxonomy ID
          "type": str,              # taxonomy type name
          "phase": "install|startup|import|call",
          "severity": "critical|high|medium|low",
          "confidence": float 0..1,
          "source": "static|llm|both",
          "justification": str,
          "statement_id": str,      # "<file>:<start_line>:<ordinal>"
          "origin": str | null      # statement ID holding a decoded payload
      }],
      "chain": [{"phase": str, "indicator": str, "finding_index": int}],  # execution order
      "indicators": [{"id": str, "name": str, "type": str, "severity": str, "cwe": str,
                      "attack": [str], "definition": str}],
      "skipped": [{"path": str, "reason": str, "evidence": bool}],
      "files_analysed": [str],
      "engine": str,                # "static" or the LLM model string
      "notes": [str],
      "elapsed_s": float
    }

:func:`render` writes it with ``indent=2`` and ``ensure_ascii=False``; :func:`render_jsonl`
writes the same object on one compact line (no trailing newline) for batches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from triage.model import (
    ArtifactInfo,
    ChainStep,
    Finding,
    IndicatorInfo,
    LlmUsage,
    Phase,
    RejectedCitation,
    Report,
    SkippedFile,
    Source,
    Verdict,
    WorkflowMatch,
)
from triage.render.defang import defang_webhooks_deep


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "file": f.file,
        "start_line": f.start_line,
        "end_line": f.end_line,
        "code": f.code,
        "indicator": f.indicator,
        "type": f.type,
        "phase": f.phase.value,
        "severity": f.severity,
        "confidence": f.confidence,
        "source": f.source.value,
        "justification": f.justification,
        "statement_id": f.statement_id,
        "origin": f.origin,
    }


def report_to_dict(report: Report) -> dict[str, Any]:
    """The JSON-ready form of ``report`` (exact: nothing defanged), keys in schema order."""
    a, v = report.artifact, report.verdict
    return {
        "schema_version": report.schema_version,
        "artifact": {
            "name": a.name,
            "version": a.version,
            "sha256": a.sha256,
            "kind": a.kind,
            "source": a.source,
        },
        "verdict": {"label": v.label, "score": v.score, "reasons": list(v.reasons)},
        "findings": [_finding(f) for f in report.findings],
        "chain": [
            {"phase": c.phase.value, "indicator": c.indicator, "finding_index": c.finding_index}
            for c in report.chain
        ],
        "indicators": [
            {
                "id": i.id,
                "name": i.name,
                "type": i.type,
                "severity": i.severity,
                "cwe": i.cwe,
                "attack": list(i.attack),
                "definition": i.definition,
            }
            for i in report.indicators
        ],
        "skipped": [
            {"path": s.path, "reason": s.reason, "evidence": s.evidence} for s in report.skipped
        ],
        "files_analysed": list(report.files_analysed),
        "engine": report.engine,
        "notes": list(report.notes),
        "rejected": [
            {"statement_id": r.statement_id, "indicator": r.indicator, "quote": r.quote,
             "reason": r.reason, "model": r.model}
            for r in report.rejected
        ],
        "not_reviewed": [
            {"path": s.path, "reason": s.reason, "evidence": s.evidence}
            for s in report.not_reviewed
        ],
        "workflows": [
            {"name": w.name, "pattern": list(w.pattern), "support": w.support}
            for w in report.workflows
        ],
        "llm": None if report.llm is None else {
            "model": report.llm.model, "calls": report.llm.calls,
            "cached_calls": report.llm.cached_calls,
            "prompt_tokens": report.llm.prompt_tokens,
            "completion_tokens": report.llm.completion_tokens,
            "cost_usd": report.llm.cost_usd, "latency_s": report.llm.latency_s,
        },
        "elapsed_s": report.elapsed_s,
    }


def report_from_dict(d: Mapping[str, Any]) -> Report:
    """Rebuild a :class:`Report` from :func:`report_to_dict` output (or a loaded JSON report).

    Args:
        d: the decoded JSON object.

    Returns:
        The report, equal to the one that was saved.

    Raises:
        ValueError: a required key is missing or a value has the wrong type or enum value.
    """
    try:
        return _from_dict(d)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a triage JSON report: {type(exc).__name__}: {exc}") from exc


def _from_dict(d: Mapping[str, Any]) -> Report:
    a, v = d["artifact"], d["verdict"]
    return Report(
        artifact=ArtifactInfo(
            name=_str(a["name"]),
            version=_str(a["version"]),
            sha256=_str(a["sha256"]),
            kind=_str(a["kind"]),
            source=_str(a["source"]),
        ),
        verdict=Verdict(
            label=_str(v["label"]),
            score=float(v["score"]),
            reasons=tuple(_str(r) for r in v["reasons"]),
        ),
        findings=tuple(
            Finding(
                file=_str(f["file"]),
                start_line=_int(f["start_line"]),
                end_line=_int(f["end_line"]),
                code=_str(f["code"]),
                indicator=_str(f["indicator"]),
                type=_str(f["type"]),
                phase=Phase(f["phase"]),
                severity=_str(f["severity"]),
                confidence=float(f["confidence"]),
                source=Source(f["source"]),
                justification=_str(f["justification"]),
                statement_id=_str(f["statement_id"]),
                origin=None if f.get("origin") is None else _str(f["origin"]),
            )
            for f in d["findings"]
        ),
        skipped=tuple(
            SkippedFile(
                path=_str(s["path"]), reason=_str(s["reason"]), evidence=bool(s["evidence"])
            )
            for s in d["skipped"]
        ),
        chain=tuple(
            ChainStep(
                phase=Phase(c["phase"]),
                indicator=_str(c["indicator"]),
                finding_index=_int(c["finding_index"]),
            )
            for c in d.get("chain", ())
        ),
        indicators=tuple(
            IndicatorInfo(
                id=_str(i["id"]),
                name=_str(i["name"]),
                type=_str(i["type"]),
                severity=_str(i["severity"]),
                cwe=_str(i["cwe"]),
                attack=tuple(_str(t) for t in i["attack"]),
                definition=_str(i["definition"]),
            )
            for i in d.get("indicators", ())
        ),
        files_analysed=tuple(_str(p) for p in d.get("files_analysed", ())),
        elapsed_s=float(d.get("elapsed_s", 0.0)),
        schema_version=_str(d["schema_version"]),
        engine=_str(d.get("engine", "static")),
        notes=tuple(_str(n) for n in d.get("notes", ())),
        rejected=tuple(
            RejectedCitation(statement_id=_str(r["statement_id"]), indicator=_str(r["indicator"]),
                             quote=_str(r["quote"]), reason=_str(r["reason"]),
                             model=_str(r.get("model", "")))
            for r in d.get("rejected", ())
        ),
        not_reviewed=tuple(
            SkippedFile(path=_str(s["path"]), reason=_str(s["reason"]),
                        evidence=bool(s.get("evidence", False)))
            for s in d.get("not_reviewed", ())
        ),
        workflows=tuple(
            WorkflowMatch(name=_str(w["name"]), pattern=tuple(_str(x) for x in w["pattern"]),
                          support=float(w["support"]))
            for w in d.get("workflows", ())
        ),
        llm=_llm(d.get("llm")),
    )


def _llm(d: Mapping[str, Any] | None) -> LlmUsage | None:
    if d is None:
        return None
    return LlmUsage(model=_str(d["model"]), calls=_int(d["calls"]),
                    cached_calls=_int(d["cached_calls"]), prompt_tokens=_int(d["prompt_tokens"]),
                    completion_tokens=_int(d["completion_tokens"]),
                    cost_usd=float(d["cost_usd"]), latency_s=float(d["latency_s"]))


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}: {value!r}")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}: {value!r}")
    return value


def render(report: Report) -> str:
    """The report as indented JSON text (trailing newline)."""
    return (
        json.dumps(defang_webhooks_deep(report_to_dict(report)), indent=2, ensure_ascii=False)
        + "\n"
    )


def render_jsonl(report: Report) -> str:
    """The report as one compact JSON line (no trailing newline), for batch output."""
    return json.dumps(
        defang_webhooks_deep(report_to_dict(report)), ensure_ascii=False, separators=(",", ":")
    )
