"""Regenerate kb/popular-packages.txt from a PyPI package listing with download ranks.

Usage: python kb/build_popular.py PATH/TO/pypi.tsv [OUT] [--top N]

The listing is tab-separated with a header line naming the columns; the column
``rank_among_15000_most_downloaded`` holds a project's download rank (1 = most downloaded,
0 = not among the 15,000). Names are PEP 503-normalised and written most popular first.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

RANK_COLUMN = "rank_among_15000_most_downloaded"
DEFAULT_TOP = 5000
DEFAULT_OUT = Path(__file__).resolve().parent / "popular-packages.txt"


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def ranked_names(tsv: Path, top: int) -> list[str]:
    """The ``top`` best-ranked distinct normalised names, best first."""
    ranked: list[tuple[int, str]] = []
    with tsv.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            rank = (row.get(RANK_COLUMN) or "").strip()
            if rank.isdigit() and int(rank) > 0:
                ranked.append((int(rank), normalize(row["name"])))
    names: list[str] = []
    seen: set[str] = set()
    for _, name in sorted(ranked):
        if name not in seen:
            seen.add(name)
            names.append(name)
        if len(names) == top:
            break
    return names


def render(names: list[str], source: str) -> str:
    """The file text: a comment header citing the source, then one name per line."""
    header = [
        f"# The {len(names):,} most-downloaded PyPI projects, most downloaded first.",
        f"# Source: column {RANK_COLUMN} of a PyPI project listing ({source}),",
        "# a snapshot of PyPI download ranks of the 15,000 most-downloaded projects;",
        "# names are PEP 503-normalised (lowercase, runs of -_. replaced by -).",
        "# Used to flag typosquatting and combosquatting names.",
        "# Regenerate: python kb/build_popular.py PATH/TO/pypi.tsv",
    ]
    return "\n".join(header + names) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tsv", type=Path, help="tab-separated listing with a rank column")
    parser.add_argument("out", type=Path, nargs="?", default=DEFAULT_OUT)
    parser.add_argument("--top", type=int, default=DEFAULT_TOP)
    args = parser.parse_args(argv)
    names = ranked_names(args.tsv, args.top)
    args.out.write_text(render(names, args.tsv.name), encoding="utf-8")
    print(f"wrote {len(names)} names to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
