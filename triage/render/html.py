"""Self-contained HTML report: one file, inline CSS, no scripts, no external resources.

Human format: every package-derived string is defanged (:func:`triage.render.defang.defang`)
and then HTML-escaped (quotes included), so hostile file names or code such as
``<script>`` show as text. A Content-Security-Policy meta tag forbids scripts and any fetch,
as a second line of defence should a browser ever see unescaped markup.
"""

from __future__ import annotations

from html import escape

from triage.model import Finding, Report
from triage.render._common import (
    chain_lines,
    llm_lines,
    location,
    rejected_lines,
    summary_line,
    workflow_lines,
)
from triage.render.defang import defang

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:70rem;
color:#1d2125;padding:0 1rem;line-height:1.45}
h1{font-size:1.4rem;margin:0}h2{font-size:1.15rem;border-bottom:1px solid #ccd;padding-top:1rem}
.banner{padding:1rem 1.2rem;border-radius:6px;color:#fff;background:#555}
.banner.malicious{background:#b3261e}.banner.suspicious{background:#b26a00}
.banner.needs-review{background:#6a3d9a}.banner.benign{background:#1e7b34}
.banner dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.6rem 0 0}
.banner dt{font-weight:600}.banner dd{margin:0;overflow-wrap:anywhere}
.finding{border:1px solid #ccd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.finding h3{font-size:1rem;margin:.2rem 0}.meta{color:#555;font-size:.9rem}
.sev{font-weight:700;text-transform:uppercase}.sev.critical,.sev.high{color:#b3261e}
.sev.medium{color:#b26a00}.sev.low{color:#2a6f97}
pre.code{background:#f6f8fa;border:1px solid #e1e4e8;padding:.5rem;overflow-x:auto;
font-size:.85rem}
.ln{display:inline-block;min-width:3.5em;color:#888;user-select:none;text-align:right;
padding-right:1em}
code{font-family:ui-monospace,Menlo,Consolas,monospace}.evidence{color:#b3261e;font-weight:700}
"""


def _e(text: str) -> str:
    """Defanged, HTML-escaped package text."""
    return escape(defang(text), quote=True)


def _code(f: Finding) -> str:
    lines = defang(f.code).rstrip("\n").split("\n")
    body = "\n".join(
        f'<span class="ln">{n}</span>{escape(line, quote=True)}'
        for n, line in enumerate(lines, start=f.start_line)
    )
    return f'<pre class="code"><code>{body}</code></pre>'


def _finding(n: int, f: Finding) -> str:
    sev = escape(f.severity, quote=True)
    origin = (
        f'<p class="meta">Decoded from the literal in statement <code>{_e(f.origin)}</code>.</p>'
        if f.origin
        else ""
    )
    return (
        f'<section class="finding" id="finding-{n}">'
        f"<h3>{n}. <code>{_e(location(f))}</code>: <code>{_e(f.indicator)}</code></h3>"
        f'<p class="meta"><span class="sev {sev}">{sev}</span> · {_e(f.type)} · '
        f"{escape(f.phase.value)} · {escape(f.source.value)} · confidence {f.confidence:.2f}"
        f" · statement <code>{_e(f.statement_id)}</code></p>"
        f"{_code(f)}"
        f"<p><strong>Justification:</strong> {_e(f.justification) or '(none given)'}</p>"
        f"{origin}</section>"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _list(items: list[str], empty: str) -> str:
    if not items:
        return f"<p>{empty}</p>"
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def render(report: Report) -> str:
    """The report as one self-contained HTML document."""
    a, v = report.artifact, report.verdict
    name = _e(f"{a.name} {a.version}".strip())
    label = escape(v.label, quote=True)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        '<meta name="referrer" content="no-referrer">',
        f"<title>triage: {name}: {label}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<header class="banner {label}"><h1>{label.upper()} · score {v.score:.1f}/100 · '
        f"{name}</h1><dl>"
        f"<dt>SHA-256</dt><dd><code>{_e(a.sha256)}</code></dd>"
        f"<dt>Source</dt><dd><code>{_e(a.source)}</code> ({_e(a.kind)})</dd>"
        f"<dt>Engine</dt><dd>{_e(report.engine)} · {_count(len(report.files_analysed), 'file')}"
        " analysed"
        f" · {report.elapsed_s:.2f} s</dd>"
        f"<dt>Summary</dt><dd>{_e(summary_line(report))}</dd></dl></header>",
        "<h2>Verdict reasons</h2>",
        _list([_e(r) for r in v.reasons], "(none given)"),
    ]
    if report.chain:
        steps = "".join(f"<li>{_e(line)}</li>" for line in chain_lines(report))
        parts += ["<h2>Attack chain</h2>", f'<ol class="chain">{steps}</ol>']
        parts += [f'<p class="workflow">{_e(line)}</p>' for line in workflow_lines(report)]
    parts.append(f"<h2>Findings ({len(report.findings)})</h2>")
    parts += [_finding(i, f) for i, f in enumerate(report.findings, start=1)]
    if not report.findings:
        parts.append("<p>No malicious statements found.</p>")
    skipped = [
        f"<code>{_e(s.path)}</code>: {_e(s.reason)}"
        + (' <span class="evidence">(evidence)</span>' if s.evidence else "")
        for s in report.skipped
    ]
    if report.rejected:
        parts += ["<h2>Rejected LLM citations (not findings)</h2>",
                  _list([_e(x) for x in rejected_lines(report)], "")]
    if llm_lines(report):
        parts += ["<h2>LLM review</h2>", _list([_e(x) for x in llm_lines(report)], "")]
    parts += ["<h2>Skipped / not analysed</h2>", _list(skipped, "Nothing skipped.")]
    if report.notes:
        parts += ["<h2>Notes</h2>", _list([_e(n) for n in report.notes], "")]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
