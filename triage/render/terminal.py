"""Terminal report rendered with rich, returned as a string (the CLI prints it).

Human format: package-derived text is defanged and always wrapped in :class:`rich.text.Text`
or :class:`rich.syntax.Syntax`, never parsed as console markup, so ``[bold]`` in a package is
shown as typed. The console is private to each call (in-memory file, empty environment), so
the output depends only on the report, ``color`` and ``width``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from triage.model import Finding, Report
from triage.render._common import (
    chain_lines,
    lexer_for,
    llm_lines,
    location,
    rejected_lines,
    summary_line,
    workflow_lines,
)
from triage.render.defang import defang

VERDICT_STYLE = {
    "malicious": "bold white on red",
    "suspicious": "bold black on yellow",
    "needs-review": "bold white on magenta",
    "benign": "bold white on green",
}
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def _console(color: bool, width: int) -> Console:
    return Console(
        file=io.StringIO(),
        record=True,
        width=width,
        force_terminal=color,
        color_system="truecolor" if color else None,
        no_color=not color,
        force_jupyter=False,
        force_interactive=False,
        legacy_windows=False,
        highlight=False,
        emoji=False,
        markup=False,
        _environ={},
    )


def _t(text: str, style: str = "") -> Text:
    """Defanged package text as a literal Text (no markup, no emoji)."""
    return Text(defang(text), style=style)


def _header(report: Report) -> Panel:
    a, v = report.artifact, report.verdict
    style = VERDICT_STYLE.get(v.label, "bold")
    title = Text.assemble(
        (f" {v.label.upper()} ", style), f"  score {v.score:.1f}/100  ", _t(f"{a.name} {a.version}")
    )
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("sha256", Text(a.sha256))
    grid.add_row("source", Text.assemble(_t(a.source), f" ({a.kind})"))
    grid.add_row(
        "engine",
        Text.assemble(
            _t(report.engine),
            f", {_files(len(report.files_analysed))} analysed, {report.elapsed_s:.2f} s",
        ),
    )
    grid.add_row("summary", _t(summary_line(report)))
    for i, reason in enumerate(report.verdict.reasons):
        grid.add_row("reasons" if i == 0 else "", Text.assemble("• ", _t(reason)))
    border = SEVERITY_STYLE["critical"] if v.label == "malicious" else "yellow"
    if v.label == "benign":
        border = "green"
    return Panel(grid, title=title, title_align="left", border_style=border)


def _finding(n: int, f: Finding) -> Panel:
    sev = SEVERITY_STYLE.get(f.severity, "bold")
    title = Text.assemble(
        f"#{n} ",
        _t(location(f), "bold"),
        "  ",
        _t(f.indicator, "bold"),
        "  ",
        (f.severity, sev),
        f" · {f.phase.value} · {f.source.value} · {f.confidence:.2f}",
    )
    syntax = Syntax(
        defang(f.code).rstrip("\n"),
        lexer_for(f.file),
        line_numbers=True,
        start_line=f.start_line,
        word_wrap=True,
        theme="ansi_dark",
        background_color="default",
    )
    parts: list[RenderableType] = [
        syntax,
        Text.assemble(("why: ", "bold"), _t(f.justification or "(none given)")),
        Text.assemble(
            ("type: ", "bold"), _t(f.type), ("  statement: ", "bold"), _t(f.statement_id)
        ),
    ]
    if f.origin:
        parts.append(Text.assemble(("decoded from: ", "bold"), _t(f.origin)))
    return Panel(Group(*parts), title=title, title_align="left", border_style=sev)


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _section(title: str) -> Text:
    return Text("\n" + title, style="bold underline")


def render(report: Report, *, color: bool = False, width: int = 100) -> str:
    """The report as terminal text.

    Args:
        report: the report.
        color: emit ANSI colours (the CLI passes True when stdout is a TTY).
        width: console width in columns.

    Returns:
        The rendered text, ending with a newline.
    """
    console = _console(color, width)
    console.print(_header(report))
    if report.chain:
        console.print(_section("Attack chain"))
        for i, line in enumerate(chain_lines(report), start=1):
            console.print(Text.assemble(f"  {i}. ", _t(line)))
        for line in workflow_lines(report):
            console.print(Text.assemble("  ↳ ", _t(line, "bold")))
    console.print(_section(f"Findings ({len(report.findings)})"))
    if not report.findings:
        console.print(Text("  No malicious statements found."))
    for i, f in enumerate(report.findings, start=1):
        console.print(_finding(i, f))
    if report.rejected:
        console.print(_section(f"Rejected LLM citations, not findings ({len(report.rejected)})"))
        for line in rejected_lines(report):
            console.print(Text.assemble("  • ", _t(line)))
    if llm_lines(report):
        console.print(_section("LLM review"))
        for line in llm_lines(report):
            console.print(Text.assemble("  • ", _t(line)))
    if report.skipped:
        console.print(_section(f"Skipped / not analysed ({len(report.skipped)})"))
        for s in report.skipped:
            flag = ("  [evidence]", "bold red") if s.evidence else ""
            console.print(Text.assemble("  • ", _t(s.path, "bold"), ": ", _t(s.reason), flag))
    if report.notes:
        console.print(_section("Notes"))
        for note in report.notes:
            console.print(Text.assemble("  • ", _t(note)))
    return console.export_text(styles=color)


def render_batch_summary(
    reports: Sequence[Report], *, color: bool = False, width: int = 100
) -> str:
    """A table of several analysed targets: target, verdict, score, findings count.

    Args:
        reports: one report per target, in the order analysed.
        color: emit ANSI colours.
        width: console width in columns.

    Returns:
        The rendered table and a one-line tally, ending with a newline.
    """
    noun = "target" if len(reports) == 1 else "targets"
    table = Table(title=f"triage: {len(reports)} {noun}", title_justify="left")
    table.add_column("Target", overflow="fold")
    table.add_column("Package", overflow="fold")
    table.add_column("Verdict")
    table.add_column("Score", justify="right")
    table.add_column("Findings", justify="right")
    tally: dict[str, int] = {}
    for r in reports:
        label = r.verdict.label
        tally[label] = tally.get(label, 0) + 1
        table.add_row(
            _t(r.artifact.source),
            _t(f"{r.artifact.name} {r.artifact.version}".strip()),
            Text(label, style=VERDICT_STYLE.get(label, "")),
            f"{r.verdict.score:.1f}",
            str(len(r.findings)),
        )
    console = _console(color, width)
    console.print(table)
    order = ("malicious", "suspicious", "needs-review", "benign")
    labels = [k for k in order if k in tally] + sorted(k for k in tally if k not in order)
    console.print(Text(", ".join(f"{tally[k]} {k}" for k in labels) or "no targets"))
    return console.export_text(styles=color)
