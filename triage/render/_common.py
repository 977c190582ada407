"""Small pure helpers shared by the renderers (wording, ordering, locations)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from triage.model import Finding, IndicatorInfo, Report

SEVERITIES = ("critical", "high", "medium", "low")
"""Severity names, most severe first."""


def lines_of(finding: Finding) -> str:
    """``10`` for a one-line span, ``10-12`` otherwise."""
    if finding.end_line == finding.start_line:
        return str(finding.start_line)
    return f"{finding.start_line}-{finding.end_line}"


def location(finding: Finding) -> str:
    """``file:10`` or ``file:10-12``."""
    return f"{finding.file}:{lines_of(finding)}"


def lexer_for(path: str) -> str:
    """Pygments lexer / Markdown fence language for a package file (default python)."""
    name = path.split("#", 1)[0].rsplit("/", 1)[-1].lower()
    if name.endswith(".toml"):
        return "toml"
    if name.endswith((".cfg", ".ini")):
        return "ini"
    if name in ("pkg-info", "metadata") or name.endswith((".txt", ".md", ".rst", ".json")):
        return "text"
    return "python"


def chain_lines(report: Report) -> tuple[str, ...]:
    """One line per chain step: ``install → <indicator> (file:line)`` (undefanged)."""
    out = []
    for step in report.chain:
        where = "finding missing"
        if 0 <= step.finding_index < len(report.findings):
            f = report.findings[step.finding_index]
            where = f"{f.file}:{f.start_line}"
        out.append(f"{step.phase.value} → {step.indicator} ({where})")
    return tuple(out)


def workflow_lines(report: Report) -> tuple[str, ...]:
    """One line per known workflow the chain matches (``Matches known workflow W01 ...``)."""
    return tuple(
        f"Matches known workflow {w.name} (support {w.support:.2f}): {' → '.join(w.pattern)}"
        for w in report.workflows
    )


def summary_line(report: Report) -> str:
    """One sentence summing up findings, chain and skipped members (undefanged)."""
    files = len(report.files_analysed)
    if not report.findings:
        head = f"No malicious statements found in {files} analysed file{_s(files)}."
    else:
        n = len(report.findings)
        in_files = len({f.file for f in report.findings})
        counts = Counter(f.severity for f in report.findings)
        sev = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
        earliest = min(report.findings, key=lambda f: f.phase.order).phase.value
        head = (
            f"{n} finding{_s(n)} in {in_files} file{_s(in_files)} ({sev}); "
            f"earliest phase: {earliest}"
        )
        if report.chain:
            head += f"; {len(report.chain)}-step attack chain"
        head += "."
    if report.skipped:
        k = len(report.skipped)
        ev = sum(1 for s in report.skipped if s.evidence)
        head += f" {k} member{_s(k)} skipped"
        head += f" ({ev} flagged as evidence)." if ev else "."
    return head


def indicator_map(report: Report) -> Mapping[str, IndicatorInfo]:
    """Indicator ID -> taxonomy entry (first entry wins on duplicates)."""
    out: dict[str, IndicatorInfo] = {}
    for info in report.indicators:
        out.setdefault(info.id, info)
    return out


def camel_case(name: str) -> str:
    """``"Install hook override"`` -> ``"InstallHookOverride"``."""
    words = re.split(r"[^0-9A-Za-z]+", name)
    return "".join(w[0].upper() + w[1:] for w in words if w)


def longest_run(text: str, char: str) -> int:
    """Length of the longest run of ``char`` in ``text``."""
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(r) for r in runs), default=0)


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def llm_lines(report: Report) -> list[str]:
    """Plain lines about the LLM pass: usage, then every file the model did not read."""
    if report.llm is None and not report.not_reviewed:
        return []
    out: list[str] = []
    if report.llm is not None:
        u = report.llm
        out.append(
            f"model {u.model}: {u.calls} call(s) ({u.cached_calls} cached), "
            f"{u.prompt_tokens} prompt + {u.completion_tokens} completion tokens, "
            f"${u.cost_usd:.4f}, {u.latency_s:.1f} s"
        )
    out += [f"not reviewed by the model: {s.path}: {s.reason}" for s in report.not_reviewed]
    return out


def rejected_lines(report: Report) -> list[str]:
    """Plain lines, one per LLM citation that failed verification."""
    return [
        f"{r.statement_id} {r.indicator}: {r.reason} (quoted: {r.quote[:120]!r})"
        for r in report.rejected
    ]
