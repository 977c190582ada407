"""``triage kb``: build, search and browse the knowledge base (taxonomy + labelled examples).

A typer sub-app mounted by triage/cli.py (``app.add_typer(kb_app, name="kb")``). Heavy
modules (chromadb, onnxruntime) are imported inside the commands that need them; ``show``
and ``list`` read kb/ only and never open the store.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from triage.retrieval import BuildReport
    from triage.retrieval_kb import Example
    from triage.retrieval_rank import ExampleHit, SearchResult
    from triage.taxonomy import IndicatorDef

kb_app = typer.Typer(
    name="kb",
    help="The indicator knowledge base: taxonomy and labelled examples in a local Chroma "
    "store (TRIAGE_HOME, default the user cache directory). Works offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class SearchMode(str, Enum):
    hybrid = "hybrid"
    dense = "dense"
    lexical = "lexical"


def _fail(exc: Exception) -> typer.Exit:
    from triage.errors import TriageError

    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(exc.exit_code if isinstance(exc, TriageError) else 3)


def _describe_build(report: BuildReport) -> str:
    if not report.rebuilt:
        return f"knowledge base up to date at {report.path} ({report.documents} documents)"
    return (f"built knowledge base at {report.path}: {report.indicators} indicators, "
            f"{report.examples} examples ({report.documents} documents) in "
            f"{report.seconds:.1f} s; reason: {report.reason}")


@kb_app.command("build")
def build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when up to date.")] = False,
) -> None:
    """Build (or refresh) the store from kb/taxonomy.yaml and kb/examples/."""
    from triage.errors import TriageError
    from triage.retrieval import KnowledgeBase

    try:
        report = KnowledgeBase().build(force=force)
    except TriageError as exc:
        raise _fail(exc) from None
    typer.echo(_describe_build(report))


@kb_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Code or words; '-' reads standard input.",
                                         show_default=False)],
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=100,
                                   help="How many indicators to show.")] = 5,
    signal: Annotated[list[str] | None, typer.Option(
        "--signal", "-s", help="Indicator ID a static detector raised (repeatable).")] = None,
    mode: Annotated[SearchMode, typer.Option(help="Embedding spaces to rank with.")] = (
        SearchMode.hybrid),
    examples: Annotated[int, typer.Option(min=0, max=10,
                                          help="Examples shown per indicator.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank the indicators closest to a statement, with their nearest labelled examples."""
    from triage.errors import TriageError
    from triage.retrieval import KnowledgeBase
    from triage.retrieval_rank import RankOptions

    text = sys.stdin.read() if query == "-" else query
    if not text.strip():
        typer.echo("error: empty query", err=True)
        raise typer.Exit(2)
    kb = KnowledgeBase()
    try:
        report = kb.build()  # says why on stderr, instead of a log warning
        if report.rebuilt:
            typer.echo(f"note: {_describe_build(report)}", err=True)
        result = kb.search(text, signals=tuple(signal or ()), k=k, per_indicator=examples,
                           options=RankOptions(mode=mode.value))
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    except TriageError as exc:
        raise _fail(exc) from None
    typer.echo(_search_json(result) if as_json else _search_text(result), nl=False)


def _search_text(result: SearchResult) -> str:
    lines = []
    for rank, hit in enumerate(result.hits, start=1):
        tag = "  [signal]" if hit.from_signal else ""
        lines.append(f"{rank}. {hit.indicator.id}  {hit.score:.3f}  "
                     f"({hit.indicator.name}; {hit.indicator.severity}){tag}")
        for ex in hit.examples:
            first = ex.example.code.splitlines()[0] if ex.example.code else ""
            lines.append(f"     e.g. {ex.example.id} ({ex.score:.3f}): {first[:100]}")
        for ex in hit.contrasts:
            first = ex.example.code.splitlines()[0] if ex.example.code else ""
            lines.append(f"     not: {ex.example.id} ({ex.score:.3f}): {first[:100]}")
    return "\n".join(lines) + "\n"


def _search_json(result: SearchResult) -> str:
    def ex(hit: ExampleHit) -> dict[str, object]:
        return {"id": hit.example.id, "label": hit.example.label, "score": hit.score,
                "code": hit.example.code, "why": hit.example.why}

    data = {
        "mode": result.mode,
        "signals": list(result.signals),
        "hits": [{"indicator": h.indicator.id, "name": h.indicator.name, "score": h.score,
                  "dense": h.dense, "lexical": h.lexical, "from_signal": h.from_signal,
                  "examples": [ex(e) for e in h.examples],
                  "contrasts": [ex(e) for e in h.contrasts]} for h in result.hits],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _load() -> tuple[tuple[IndicatorDef, ...], tuple[Example, ...]]:
    from triage.retrieval_kb import load_examples
    from triage.taxonomy import TAXONOMY_FILE, kb_dir, load_taxonomy

    kb = kb_dir()
    taxonomy = load_taxonomy(kb / TAXONOMY_FILE)
    return taxonomy.indicators, load_examples(kb, taxonomy)


@kb_app.command("show")
def show(
    item_id: Annotated[str, typer.Argument(metavar="ID", help="Indicator or example ID.",
                                           show_default=False)],
) -> None:
    """Print an indicator's definition and its examples (or one example)."""
    from triage.errors import TriageError

    try:
        indicators, examples = _load()
    except TriageError as exc:
        raise _fail(exc) from None
    by_id = {i.id: i for i in indicators}
    if item_id in by_id:
        ind = by_id[item_id]
        own = [e for e in examples if e.indicator == ind.id]
        out = [f"{ind.id}: {ind.name}",
               f"type: {ind.type_name}   severity: {ind.severity}   cwe: {ind.cwe}   "
               f"att&ck: {', '.join(ind.attack)}"
               + ("   (extension)" if ind.extension else ""),
               "", ind.definition, "", f"benign contrast: {ind.benign_contrast}"]
        for e in own:
            out += ["", *_example_lines(e)]
        typer.echo("\n".join(out))
        return
    match = [e for e in examples if e.id == item_id]
    if match:
        typer.echo("\n".join(_example_lines(match[0])))
        return
    typer.echo(f"error: no indicator or example with ID {item_id!r} (see `triage kb list`)",
               err=True)
    raise typer.Exit(2)


def _example_lines(e: Example) -> list[str]:
    return [f"[{e.label}] {e.id}  ({e.file})",
            *("    " + line for line in e.code.splitlines()), f"  why: {e.why}"]


@kb_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List every indicator with its type and number of malicious / benign examples."""
    from triage.errors import TriageError

    try:
        indicators, examples = _load()
    except TriageError as exc:
        raise _fail(exc) from None
    rows = []
    for ind in indicators:
        mal = sum(1 for e in examples if e.indicator == ind.id and e.label == "malicious")
        ben = sum(1 for e in examples if e.indicator == ind.id and e.label == "benign")
        rows.append((ind, mal, ben))
    if as_json:
        typer.echo(json.dumps([{"id": i.id, "type": i.type, "name": i.name,
                                "severity": i.severity, "extension": i.extension,
                                "malicious_examples": m, "benign_examples": b}
                               for i, m, b in rows], indent=2))
        return
    width = max(len(i.id) for i, _, _ in rows)
    for ind, mal, ben in rows:
        ext = " (ext)" if ind.extension else ""
        typer.echo(f"{ind.id:<{width}}  {ind.type:<21} {mal}m/{ben}b  {ind.name}{ext}")
    typer.echo(f"{len(rows)} indicators, {len(examples)} examples")
