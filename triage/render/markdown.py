"""Markdown report, paste-ready for a ticket or pull-request comment (GitHub-flavoured).

Human format: every package-derived string (code, paths, metadata, justifications, notes) is
defanged (:func:`triage.render.defang.defang`). Package text never escapes its place: code sits in
fences longer than any backtick run inside it, inline values in code spans sized the same way,
``|`` is escaped in table cells, and ``<``/``>``/``&`` in prose become HTML entities so a viewer
never renders package-supplied HTML.
"""

from __future__ import annotations

from triage.model import Finding, Report
from triage.render._common import (
    chain_lines,
    lexer_for,
    llm_lines,
    location,
    longest_run,
    rejected_lines,
    summary_line,
    workflow_lines,
)
from triage.render.defang import defang


def _code_span(text: str) -> str:
    """Inline code span that ``text`` (defanged, one line) cannot close early."""
    text = " ".join(defang(text).splitlines())
    fence = "`" * (longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(text: str) -> str:
    """Defanged text on one line, with HTML-significant characters neutralised."""
    text = " ".join(defang(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    """Table cell content: ``|`` escaped (GFM honours ``\\|`` inside code spans too)."""
    return text.replace("|", "\\|")


def _fence(code: str, lang: str) -> str:
    code = defang(code)
    fence = "`" * max(3, longest_run(code, "`") + 1)
    return f"{fence}{lang}\n{code.rstrip(chr(10))}\n{fence}"


def _finding_row(n: int, f: Finding) -> str:
    cells = (
        str(n),
        _code_span(location(f)),
        _code_span(f.indicator),
        _prose(f.type),
        f.phase.value,
        _prose(f.severity),
        f.source.value,
    )
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _finding_block(n: int, f: Finding) -> list[str]:
    out = [
        f"### {n}. {_code_span(location(f))}: {_code_span(f.indicator)}",
        "",
        f"{_prose(f.severity)} · {f.phase.value} · {f.source.value} · "
        f"confidence {f.confidence:.2f} · statement {_code_span(f.statement_id)}",
        "",
        _fence(f.code, lexer_for(f.file)),
        "",
        f"**Justification:** {_prose(f.justification) or '(none given)'}",
    ]
    if f.origin:
        out += ["", f"Decoded from the literal in statement {_code_span(f.origin)}."]
    return out + [""]


def render(report: Report) -> str:
    """The report as GitHub-flavoured Markdown (trailing newline)."""
    a, v = report.artifact, report.verdict
    title = f"{a.name} {a.version}".strip()
    out = [
        f"# triage: {_prose(title)}: {v.label.upper()} (score {v.score:.1f}/100)",
        "",
        f"- **SHA-256:** {_code_span(a.sha256)}",
        f"- **Artifact:** {_prose(a.kind)} from {_code_span(a.source)}",
        f"- **Engine:** {_code_span(report.engine)} · **Files analysed:** "
        f"{len(report.files_analysed)} · **Elapsed:** {report.elapsed_s:.2f} s",
        "",
        f"**Summary:** {_prose(summary_line(report))}",
        "",
        "## Verdict reasons",
        "",
    ]
    out += [f"- {_prose(r)}" for r in v.reasons] or ["- (none given)"]
    if report.chain:
        out += ["", "## Attack chain", ""]
        out += [f"{i}. {_prose(line)}" for i, line in enumerate(chain_lines(report), start=1)]
        if report.workflows:
            out += [""] + [f"- {_prose(line)}" for line in workflow_lines(report)]
    out += ["", "## Findings", ""]
    if report.findings:
        out += [
            "| # | Location | Indicator | Type | Phase | Severity | Source |",
            "|---|---|---|---|---|---|---|",
        ]
        out += [_finding_row(i, f) for i, f in enumerate(report.findings, start=1)]
        out.append("")
        for i, f in enumerate(report.findings, start=1):
            out += _finding_block(i, f)
    else:
        out += ["No malicious statements found.", ""]
    if report.rejected:
        out += ["## Rejected LLM citations (not findings)", ""]
        out += [f"- {_prose(line)}" for line in rejected_lines(report)] + [""]
    if llm_lines(report):
        out += ["## LLM review", ""]
        out += [f"- {_prose(line)}" for line in llm_lines(report)] + [""]
    out += ["## Skipped / not analysed", ""]
    out += [
        f"- {_code_span(s.path)}: {_prose(s.reason)}" + (" **(evidence)**" if s.evidence else "")
        for s in report.skipped
    ] or ["- nothing skipped"]
    if report.notes:
        out += ["", "## Notes", ""]
        out += [f"- {_prose(n)}" for n in report.notes]
    return "\n".join(out) + "\n"
