"""Package-name squatting checks against the popular-package list (kb/popular-packages.txt).

Typosquatting: a name within Damerau-Levenshtein distance 1-2 of a popular name (after
homoglyph folding: ``0->o``, ``1->l``, ``rn->m``...), found through a symmetric-deletion
index so a check costs a few dictionary look-ups. Combosquatting: a popular name with a
generic affix (``-py``, ``python-``, ``-utils``, ``2``...). Names in the list are never
flagged.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

POPULAR_FILE = "popular-packages.txt"
_DEEP_RANK = 1500
_AFFIX_WORDS = ("py", "python", "python3", "lib", "dev", "sdk", "utils", "util", "tool", "tools",
                "api", "client", "cli", "core", "plus", "pro", "extra", "fix", "fixed", "fast",
                "new", "update", "updated", "helper", "helpers", "official", "ng", "lite", "mod",
                "module", "pkg", "package", "free", "latest", "secure", "v2", "v3", "x")
_HOMOGLYPHS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("3", "e"), ("5", "s"),
               ("4", "a"), ("7", "t"), ("8", "b"), ("9", "g"), ("_", "-"), (".", "-"))


def normalise(name: str) -> str:
    """PEP 503 form: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower().strip("-")


def kb_path() -> Path:
    try:
        from triage.taxonomy import kb_dir

        return kb_dir()
    except Exception:  # taxonomy missing or invalid: fall back to the source checkout
        import triage

        return Path(triage.__file__).resolve().parents[1] / "kb"


@dataclass(frozen=True)
class Popular:
    """The popular names, ranked, with a deletion index for fast near-match search."""

    rank: dict[str, int]
    deletes: dict[str, tuple[str, ...]]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def build_popular(names: list[str]) -> Popular:
    """Index ranked names (first = most popular)."""
    rank: dict[str, int] = {}
    for name in names:
        rank.setdefault(normalise(name), len(rank) + 1)
    deletes: dict[str, list[str]] = {}
    for name, r in rank.items():
        key = name.replace("-", "")
        keys = {key} | _deletions(key)
        if r <= _DEEP_RANK and len(key) >= 7:  # two-edit squats target the best-known names
            keys |= {d2 for d in _deletions(key) for d2 in _deletions(d)}
        for d in keys:
            deletes.setdefault(d, []).append(name)
    return Popular(rank, {k: tuple(v) for k, v in deletes.items()})


@functools.lru_cache(maxsize=1)
def popular() -> Popular:
    """The popular list from kb/ (empty when the file is missing)."""
    path = kb_path() / POPULAR_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    return build_popular([ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")])


def distance(a: str, b: str, limit: int = 3) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance, capped at ``limit``."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) >= limit:
            return limit
        prev2, prev = prev, cur
    return min(prev[-1], limit)


def _fold(name: str) -> str:
    for old, new in _HOMOGLYPHS:
        name = name.replace(old, new)
    return name


def typosquat_target(name: str, pop: Popular | None = None) -> tuple[str, int, str] | None:
    """(popular name, its rank, how) when ``name`` is a near-copy of a popular name.

    Returns None for popular names themselves and for names shorter than 4 characters.
    """
    pop = pop or popular()
    norm = normalise(name)
    if norm in pop.rank or len(norm) < 4:
        return None
    folded = _fold(norm)
    if folded != norm and folded in pop.rank:
        return folded, pop.rank[folded], "look-alike characters"
    key = norm.replace("-", "")
    keys = {key} | _deletions(key)
    if len(key) >= 7:
        keys |= {d2 for d in _deletions(key) for d2 in _deletions(d)}
    candidates: set[str] = set()
    for d in keys:
        candidates.update(pop.deletes.get(d, ()))
    best: tuple[str, int, str] | None = None
    for cand in candidates:
        if cand == norm:
            continue
        dist = distance(norm, cand)
        if dist == 0 or norm.replace("-", "") == cand.replace("-", ""):
            how = "different separators"
        elif dist == 1 and len(norm) >= 4:
            how = "one character changed, added, dropped or swapped"
        elif dist == 2 and len(norm) >= 8:
            how = "two characters changed"
        else:
            continue
        if best is None or pop.rank[cand] < best[1]:
            best = (cand, pop.rank[cand], how)
    return best


def combosquat_target(name: str, pop: Popular | None = None) -> tuple[str, int, str] | None:
    """(popular name, its rank, affix) when ``name`` is a popular name plus a generic affix."""
    pop = pop or popular()
    norm = normalise(name)
    if norm in pop.rank:
        return None
    parts = norm.split("-")
    for i in range(len(parts)):
        for j in range(i + 1, len(parts) + 1):
            core = "-".join(parts[i:j])
            rest = parts[:i] + parts[j:]
            if core in pop.rank and len(core) >= 4 and rest and \
                    all(r in _AFFIX_WORDS or r.isdigit() for r in rest):
                return core, pop.rank[core], "-".join(rest)
    for affix in sorted(_AFFIX_WORDS, key=len, reverse=True):
        for core in (norm.removeprefix(affix), norm.removesuffix(affix)):
            if core != norm and len(core) >= 4 and core in pop.rank:
                return core, pop.rank[core], affix
    m = re.match(r"^(.{4,}?)(\d+)$", norm)
    if m and m.group(1) in pop.rank:
        return m.group(1), pop.rank[m.group(1)], m.group(2)
    return None
