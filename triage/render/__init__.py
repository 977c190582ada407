"""Pure renderers: each is ``render(report) -> str`` with no I/O, clock or global state.

Human formats (terminal, markdown, html) defang package text; machine formats (json, sarif)
keep code exact except for live webhook URLs. The CLI picks a renderer from
:data:`RENDERERS` and owns files, colour detection and exit codes.
"""

from __future__ import annotations

from collections.abc import Callable

from triage.model import Report
from triage.render import html, json_report, markdown, sarif, terminal
from triage.render.defang import defang, defang_webhooks
from triage.render.json_report import render_jsonl, report_from_dict, report_to_dict
from triage.render.terminal import render_batch_summary

RENDERERS: dict[str, Callable[[Report], str]] = {
    "terminal": terminal.render,
    "markdown": markdown.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "html": html.render,
}
"""Format name -> renderer."""

__all__ = [
    "RENDERERS",
    "defang",
    "defang_webhooks",
    "render_batch_summary",
    "render_jsonl",
    "report_from_dict",
    "report_to_dict",
]
