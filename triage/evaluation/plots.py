"""PNG plots of a leaderboard (matplotlib, imported lazily, Agg backend, no display).

matplotlib is an optional extra (``triage[eval]``); without it :func:`write_plots` returns
no images and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from triage.evaluation.evaluate import Leaderboard, SystemRow, most_labelled

PR_PLOT, HEATMAP = "precision_recall.png", "indicator_f1.png"


def _scored(board: Leaderboard) -> list[SystemRow]:
    return [r for r in board.rows if r.scores is not None]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_precision_recall(board: Leaderboard, path: Path) -> None:
    """Code statement precision vs recall per system, with 95% interval whiskers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for row in _scored(board):
        assert row.scores is not None
        p = row.scores.code.metrics["precision"].weighted
        r = row.scores.code.metrics["recall"].weighted
        if p.value is None or r.value is None:
            continue
        xerr = [[r.value - (r.low or r.value)], [(r.high or r.value) - r.value]]
        yerr = [[p.value - (p.low or p.value)], [(p.high or p.value) - p.value]]
        ax.errorbar([r.value], [p.value], xerr=xerr, yerr=yerr, fmt="o", capsize=3,
                    label=row.system)
        ax.annotate(row.system, (r.value, p.value), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall (code statements, cluster-weighted)")
    ax.set_ylabel("precision")
    ax.set_title(f"Statement-level precision/recall, {board.dataset}")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def indicator_matrix(
    board: Leaderboard, top: int = 20
) -> tuple[list[str], list[str], list[list[float]]]:
    """(indicators, systems, F1 rows) of the most labelled indicators; missing F1 is 0."""
    rows = _scored(board)
    indicators = list(most_labelled(rows, top))
    matrix = []
    for ind in indicators:
        line = []
        for row in rows:
            assert row.scores is not None
            hit = [x.f1 for x in row.scores.per_indicator if x.indicator == ind]
            line.append(float(hit[0] or 0.0) if hit else 0.0)
        matrix.append(line)
    return indicators, [r.system for r in rows], matrix


def plot_indicator_heatmap(board: Leaderboard, path: Path) -> None:
    """Heatmap of per-indicator statement F1 (rows: indicators, columns: systems)."""
    plt = _pyplot()
    indicators, systems, matrix = indicator_matrix(board)
    height = max(3.0, 0.32 * len(indicators) + 1.5)
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * max(1, len(systems)), height), dpi=100)
    if indicators and systems:
        im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, line in enumerate(matrix):
            for j, value in enumerate(line):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_xticks(range(len(systems)), systems, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(indicators)), indicators, fontsize=7)
    ax.set_title("Per-indicator statement F1 (exact indicator)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_plots(board: Leaderboard, directory: Path) -> tuple[list[tuple[str, Path]], str]:
    """Write both plots into ``directory``; return (caption, path) pairs and a note."""
    try:
        _pyplot()
    except ImportError as exc:
        return [], f"plots not written: matplotlib unavailable ({exc})"
    directory.mkdir(parents=True, exist_ok=True)
    out: list[tuple[str, Path]] = []
    for caption, name, draw in (
        ("Precision/recall per system", PR_PLOT, plot_precision_recall),
        ("Per-indicator F1 heatmap", HEATMAP, plot_indicator_heatmap),
    ):
        draw(board, directory / name)
        out.append((caption, directory / name))
    return out, ""


def relative(paths: Sequence[tuple[str, Path]], base: Path) -> list[tuple[str, str]]:
    """Image paths relative to the Markdown file's directory."""
    return [(c, p.resolve().relative_to(base.resolve()).as_posix()) for c, p in paths]
