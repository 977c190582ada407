"""Render the taxonomy as Markdown (docs/taxonomy.md).

``render_taxonomy_markdown`` is pure; ``python -m triage.taxonomy_docs [OUT]`` writes the file
(default ``docs/taxonomy.md`` in the current directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

from triage.taxonomy import IndicatorDef, Taxonomy, load_taxonomy

_HEADER = (
    "| ID | Name | Severity | ATT&CK | CWE | Definition | Benign contrast |",
    "|---|---|---|---|---|---|---|",
)


def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell (one line, escaped pipes)."""
    return " ".join(text.split()).replace("|", "\\|")


def _row(ind: IndicatorDef) -> str:
    ident = f"`{ind.id}`" + (" (ext.)" if ind.extension else "")
    cells = (
        ident,
        _cell(ind.name),
        ind.severity,
        ", ".join(ind.attack),
        ind.cwe,
        _cell(ind.definition),
        _cell(ind.benign_contrast),
    )
    return "| " + " | ".join(cells) + " |"


def render_taxonomy_markdown(tax: Taxonomy) -> str:
    """Render the taxonomy: a summary, then one table per type.

    Args:
        tax: the validated taxonomy.

    Returns:
        Markdown text ending with a newline.
    """
    core = tax.core()
    ext = len(tax.indicators) - len(core)
    observed = sum(1 for ind in tax.indicators if ind.observed)
    out = [
        "# Indicator taxonomy",
        "",
        "<!-- Generated from kb/taxonomy.yaml by `python -m triage.taxonomy_docs`;"
        " do not edit by hand. -->",
        "",
        f"Version {tax.version}: {len(tax.types)} types, {len(core)} core indicators and"
        f" {ext} extensions (marked *ext.*). {observed} core IDs are used verbatim in the"
        " public statement-level annotations; the others complete the paper's 47.",
        "",
        "| # | Type | Core | Extensions | Description |",
        "|---|---|---|---|---|",
    ]
    for t in tax.types:
        members = [ind for ind in tax.indicators if ind.type == t.id]
        n_ext = sum(1 for ind in members if ind.extension)
        out.append(
            f"| {t.order} | {t.name} (`{t.id}`) | {len(members) - n_ext} | {n_ext} |"
            f" {_cell(t.description)} |"
        )
    for t in tax.types:
        out += ["", f"## {t.order}. {t.name} (`{t.id}`)", "", _cell(t.description), ""]
        out += list(_HEADER)
        out += [_row(ind) for ind in tax.indicators if ind.type == t.id]
    if tax.sources:
        out += ["", "## Sources", ""]
        out += [
            f"- {_cell(s.name)} ({_cell(s.reference)}): {_cell(s.used_for)}" for s in tax.sources
        ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the rendered taxonomy to ``argv[0]`` (default ``docs/taxonomy.md``)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path("docs") / "taxonomy.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_taxonomy_markdown(load_taxonomy()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
