"""SARIF 2.1.0 report (for GitHub code scanning and other SARIF viewers).

Machine format: code snippets, paths and messages are kept exactly as found (not defanged), so
viewers can match them against the package; the one exception is that live Discord/Telegram
webhook URLs are broken everywhere (``discord[.]com/api/webhooks/...``).

Layout: one run; ``tool.driver.rules`` holds one rule per indicator of ``report.indicators``
(plus a bare rule for any cited indicator missing from it); one result per finding, located at
the finding's file inside the package (URI-escaped, so ``setup.py#decoded-1`` becomes
``setup.py%23decoded-1``; decoded payloads get a ``relatedLocations`` entry at their origin
statement). ``partialFingerprints["triage/v1"]`` hashes the indicator, file and
whitespace-normalised code, so it survives line shifts. The attack chain becomes a ``codeFlows``
entry on the result of its first step. Skipped members and run notes are
``invocations[0].toolExecutionNotifications``; the verdict is in ``runs[0].properties``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

import triage
from triage.model import Finding, IndicatorInfo, Report
from triage.render._common import camel_case, indicator_map, workflow_lines
from triage.render.defang import defang_webhooks_deep

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/triage-dev/triage"

SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


def artifact_uri(path: str) -> str:
    """Relative URI reference for a package path (``#``, ``%``, ``?``, ``:``, spaces escaped)."""
    return quote(path, safe="/!$&'()*+,;=@-._~")


def fingerprint(finding: Finding) -> str:
    """sha256 hex of (indicator, file, whitespace-normalised code): stable across line shifts."""
    lines = (" ".join(line.split()) for line in finding.code.splitlines())
    code = "\n".join(line for line in lines if line)
    data = "\x00".join((finding.indicator, finding.file, code))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _precision(report: Report, indicator: str) -> str:
    """SARIF rule precision from the best confidence of its findings (``medium`` if none)."""
    best = max((f.confidence for f in report.findings if f.indicator == indicator), default=0.5)
    if best >= 0.9:
        return "very-high"
    if best >= 0.75:
        return "high"
    if best >= 0.5:
        return "medium"
    return "low"


def _rule(report: Report, info: IndicatorInfo) -> dict[str, Any]:
    tags: list[str] = []
    for tag in (info.type, "security", info.cwe, *info.attack):
        if tag and tag not in tags:
            tags.append(tag)
    attack = ", ".join(info.attack) or "none"
    help_text = (
        f"{info.definition}\n\nType: {info.type}. Severity: {info.severity}. "
        f"CWE: {info.cwe or 'none'}. ATT&CK: {attack}."
    )
    return {
        "id": info.id,
        "name": camel_case(info.name) or camel_case(info.id),
        "shortDescription": {"text": info.name or info.id},
        "fullDescription": {"text": info.definition or info.name or info.id},
        "defaultConfiguration": {"level": LEVEL.get(info.severity, "warning")},
        "help": {"text": help_text},
        "properties": {
            "tags": tags,
            "security-severity": SECURITY_SEVERITY.get(info.severity, "5.5"),
            "precision": _precision(report, info.id),
        },
    }


def _rule_infos(report: Report) -> list[IndicatorInfo]:
    """``report.indicators`` (deduplicated), then a bare entry for any uncatalogued indicator."""
    infos = dict(indicator_map(report))
    for f in report.findings:
        if f.indicator not in infos:
            infos[f.indicator] = IndicatorInfo(
                id=f.indicator,
                name="",
                type=f.type,
                severity=f.severity,
                cwe="",
                attack=(),
                definition="",
            )
    return list(infos.values())


def _location(finding: Finding) -> dict[str, Any]:
    """Physical location of a finding; no region when the line is unknown (below 1), since a
    SARIF region must have a start line."""
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(finding.file)}}
    if finding.start_line >= 1:
        region: dict[str, Any] = {"startLine": finding.start_line}
        if finding.end_line >= finding.start_line:
            region["endLine"] = finding.end_line
        region["snippet"] = {"text": finding.code}
        physical["region"] = region
    return {"physicalLocation": physical}


def _origin_location(report: Report, origin: str) -> dict[str, Any]:
    message = {"text": f"Payload decoded from statement {origin}."}
    parts = origin.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < 1:
        return {"id": 1, "message": message}
    start = int(parts[1])
    region: dict[str, Any] = {"startLine": start}
    for f in report.findings:
        if f.statement_id == origin:
            region = {"startLine": f.start_line, "endLine": f.end_line}
            break
    return {
        "id": 1,
        "physicalLocation": {"artifactLocation": {"uri": artifact_uri(parts[0])}, "region": region},
        "message": message,
    }


def _result(report: Report, index: int, rule_index: dict[str, int]) -> dict[str, Any]:
    f = report.findings[index]
    result: dict[str, Any] = {
        "ruleId": f.indicator,
        "ruleIndex": rule_index[f.indicator],
        "level": LEVEL.get(f.severity, "warning"),
        "message": {"text": f.justification or f.indicator},
        "locations": [_location(f)],
        "partialFingerprints": {"triage/v1": fingerprint(f)},
        "properties": {
            "phase": f.phase.value,
            "confidence": f.confidence,
            "source": f.source.value,
            "type": f.type,
            "severity": f.severity,
            "statementId": f.statement_id,
        },
    }
    if f.origin:
        result["relatedLocations"] = [_origin_location(report, f.origin)]
    return result


def _code_flow(report: Report) -> dict[str, Any]:
    locations = []
    for order, step in enumerate(report.chain, start=1):
        if not 0 <= step.finding_index < len(report.findings):
            continue
        loc = _location(report.findings[step.finding_index])
        loc["message"] = {"text": f"{order}. {step.phase.value}: {step.indicator}"}
        locations.append({"location": loc, "nestingLevel": 0, "executionOrder": order})
    text = "Attack chain in execution order."
    text += "".join(f" {line}." for line in workflow_lines(report))
    return {
        "message": {"text": text},
        "threadFlows": [{"locations": locations}],
    }


def _notifications(report: Report) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in report.skipped:
        out.append(
            {
                "level": "warning" if s.evidence else "note",
                "message": {"text": f"Not analysed: {s.path}: {s.reason}"},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": artifact_uri(s.path)}}}
                ],
                "descriptor": {"id": "skipped-file"},
                "properties": {"path": s.path, "reason": s.reason, "evidence": s.evidence},
            }
        )
    for note in report.notes:
        out.append({"level": "note", "message": {"text": note}, "descriptor": {"id": "run-note"}})
    return out


def report_to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict (webhook URLs not yet broken)."""
    infos = _rule_infos(report)
    rule_index = {info.id: i for i, info in enumerate(infos)}
    results = [_result(report, i, rule_index) for i in range(len(report.findings))]
    if report.chain and 0 <= report.chain[0].finding_index < len(results):
        results[report.chain[0].finding_index]["codeFlows"] = [_code_flow(report)]
    a, v = report.artifact, report.verdict
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "triage",
                        "version": triage.__version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(report, info) for info in infos],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": _notifications(report),
                    }
                ],
                "results": results,
                "properties": {
                    "verdict": v.label,
                    "score": v.score,
                    "reasons": list(v.reasons),
                    "artifact": {
                        "name": a.name,
                        "version": a.version,
                        "sha256": a.sha256,
                        "kind": a.kind,
                        "source": a.source,
                    },
                    "engine": report.engine,
                    "schemaVersion": report.schema_version,
                },
            }
        ],
    }


def render(report: Report) -> str:
    """The report as SARIF 2.1.0 JSON text (indent 2, trailing newline)."""
    return (
        json.dumps(defang_webhooks_deep(report_to_sarif(report)), indent=2, ensure_ascii=False)
        + "\n"
    )
