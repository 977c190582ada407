"""Token budgeting: count tokens offline, split big files at statement boundaries, rank, select.

Tokens are counted with tiktoken using the encoding files litellm ships in its package
(``litellm/litellm_core_utils/tokenizers``): ``TIKTOKEN_CACHE_DIR`` points there before
tiktoken loads, so counting never touches the network. OpenAI's newer models use o200k_base;
other models are counted with cl100k_base, an approximation of their own tokenizers.

A file larger than the per-call budget is split at statement boundaries, preferring the
shallowest (top-level blocks first, then the statements inside a big function); each part
carries the file's imports and its enclosing definitions as context. Parts are ranked by
static suspicion, so a package budget is spent where the static engine saw the most.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from triage.model import Phase, Signal, Statement
from triage.prompting import numbered_display
from triage.statements import FileIndex
from triage.taxonomy import Taxonomy
from triage.verdict import SEVERITY_WEIGHT

VENDORED = re.compile(r"(^|/)(_?vendor(ed)?|third_party|site-packages|node_modules)/", re.I)
_O200K = re.compile(r"(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|(^|/)o[134](-|$)|gpt-oss|chatgpt-4o)")
MAX_CONTEXT_STATEMENTS = 30
PHASE_BONUS = {Phase.INSTALL: 0.05, Phase.STARTUP: 0.05, Phase.IMPORT: 0.02, Phase.CALL: 0.0}

Counter = Callable[[str], int]


def tiktoken_dir() -> Path | None:
    """The tokenizer files bundled in the installed litellm package (not imported)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
    return path if path.is_dir() else None


def encoding_name(model: str) -> str:
    """tiktoken encoding used to count tokens for ``model``."""
    return "o200k_base" if _O200K.search(model.lower()) else "cl100k_base"


@functools.lru_cache(maxsize=4)
def _encoding(name: str) -> object | None:
    bundled = tiktoken_dir()
    if bundled is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception:  # tiktoken missing, or no bundled file: fall back to an estimate
        return None


def counter(model: str) -> Counter:
    """A token counter for ``model`` (characters / 3.5 when tiktoken is unavailable)."""
    enc = _encoding(encoding_name(model))
    if enc is None:
        return lambda text: (len(text) * 2 + 6) // 7
    encode = enc.encode  # type: ignore[attr-defined]
    return lambda text: len(encode(text, disallowed_special=()))


def counting_method(model: str) -> str:
    """How tokens are counted for ``model`` (for reports)."""
    name = encoding_name(model)
    return f"tiktoken {name}" if _encoding(name) is not None else "estimate (chars / 3.5)"


def messages_tokens(msgs: Iterable[Mapping[str, str]], count: Counter) -> int:
    """Tokens of chat messages, with OpenAI's per-message overhead."""
    return sum(count(m["content"]) + 4 for m in msgs) + 3


# ---------------------------------------------------------------- splitting


@dataclass(frozen=True)
class Segment:
    """A part of one file that one prompt shows."""

    file: str
    start_line: int
    end_line: int
    statement_ids: tuple[str, ...]
    """Statements starting inside the part."""
    context_ids: tuple[str, ...] = ()
    """Imports and enclosing definitions outside the part, shown as context."""
    part: int = 1
    parts: int = 1
    code_tokens: int = 0


def _units(stmts: Sequence[Statement], start: int, end: int) -> list[tuple[int, int]]:
    """Cut ``start..end`` at the starts of its shallowest statements that give two pieces."""
    inside = [s for s in stmts if start <= s.start_line <= end]
    for depth in sorted({s.depth for s in inside}):
        cuts = sorted({s.start_line for s in inside if s.depth == depth and s.start_line > start})
        if cuts:
            bounds = [start, *cuts, end + 1]
            return [(bounds[i], bounds[i + 1] - 1) for i in range(len(bounds) - 1)]
    return [(start, end)]


def _pieces(index: FileIndex, start: int, end: int, limit: int,
            tokens: Callable[[int, int], int]) -> list[tuple[int, int, int]]:
    """(start, end, tokens) pieces of ``start..end``, each within ``limit`` where possible."""
    out: list[tuple[int, int, int]] = []
    cur: tuple[int, int, int] | None = None
    for a, b in _units(index.statements, start, end):
        n = tokens(a, b)
        if n > limit and (a, b) != (start, end):
            if cur:
                out.append(cur)
                cur = None
            out += _pieces(index, a, b, limit, tokens)
            continue
        if cur and cur[2] + n <= limit:
            cur = (cur[0], b, cur[2] + n)
        else:
            if cur:
                out.append(cur)
            cur = (a, b, n)
    if cur:
        out.append(cur)
    return out


def _line_tokens(index: FileIndex, end: int, count: Counter) -> Callable[[int, int], int]:
    """Tokens of the displayed lines ``a..b``, from prefix sums over one display pass."""
    rows = numbered_display(index, 1, end)
    lines = [no for no, _ in rows]
    prefix = [0]
    for _, text in rows:
        prefix.append(prefix[-1] + count(text) + 1)

    def tokens(a: int, b: int) -> int:
        return prefix[bisect.bisect_right(lines, b)] - prefix[bisect.bisect_left(lines, a)]

    return tokens


def _context(index: FileIndex, ids: Sequence[str]) -> tuple[str, ...]:
    inside = set(ids)
    out: list[str] = [s.id for s in index.statements if s.depth == 0 and s.id not in inside
                      and s.kind in ("Import", "ImportFrom")][:MAX_CONTEXT_STATEMENTS]
    parent = index.get(ids[0]).parent if ids else None
    chain: list[str] = []
    while parent is not None and parent not in inside:
        chain.append(parent)
        parent = index.get(parent).parent
    return tuple(sorted(set(out + chain), key=lambda sid: index.get(sid).start_line))


def split_file(index: FileIndex, limit: int, count: Counter) -> tuple[Segment, ...]:
    """Split a file into parts of at most ``limit`` code tokens, at statement boundaries.

    A single statement larger than the limit stays whole (its display is shortened).
    """
    if not index.statements:
        return ()
    end = max(len(index.lines), max(s.end_line for s in index.statements))
    pieces: list[tuple[int, int, int]] = []
    for a, b, n in _pieces(index, 1, end, limit, _line_tokens(index, end, count)):
        if pieces and pieces[-1][2] + n <= limit:  # e.g. a class header before its split body
            pieces[-1] = (pieces[-1][0], b, pieces[-1][2] + n)
        else:
            pieces.append((a, b, n))
    segs: list[Segment] = []
    for i, (a, b, tokens) in enumerate(pieces, start=1):
        ids = tuple(s.id for s in index.statements if a <= s.start_line <= b)
        if not ids:
            continue
        segs.append(Segment(file=index.file.path, start_line=a, end_line=b, statement_ids=ids,
                            context_ids=_context(index, ids) if len(pieces) > 1 else (),
                            part=i, parts=len(pieces), code_tokens=tokens))
    return tuple(Segment(s.file, s.start_line, s.end_line, s.statement_ids, s.context_ids,
                         part=n, parts=len(segs), code_tokens=s.code_tokens)
                 for n, s in enumerate(segs, start=1))


# ---------------------------------------------------------------- ranking and selection


def signal_weight(sig: Signal, taxonomy: Taxonomy) -> float:
    """How much one static signal says about its statement."""
    if sig.indicator not in taxonomy:
        return 0.0
    return SEVERITY_WEIGHT.get(taxonomy.get(sig.indicator).severity, 0.05) * sig.confidence


def suspicion(seg: Segment, index: FileIndex, by_statement: Mapping[str, Sequence[Signal]],
              taxonomy: Taxonomy) -> float:
    """Static suspicion of a part: signal weights plus a bonus for install/start-up code."""
    score = sum(signal_weight(s, taxonomy) for sid in seg.statement_ids
                for s in by_statement.get(sid, ()))
    phases = {index.get(sid).phase for sid in seg.statement_ids}
    return round(score + max(PHASE_BONUS[p] for p in phases), 4)


@dataclass(frozen=True)
class Candidate:
    """A part with its rendered prompt size, ready to be selected."""

    segment: Segment
    suspicion: float
    prompt_tokens: int
    """Tokens of the first call (system + user message)."""
    total_tokens: int
    """Prompt tokens of every call this part costs (with the review pass, if on)."""


def rank(cands: Iterable[Candidate]) -> list[Candidate]:
    """Most suspicious first; then file and line order."""
    return sorted(cands, key=lambda c: (-c.suspicion, c.segment.file, c.segment.start_line))


def select(cands: Iterable[Candidate], budget: int) -> tuple[list[Candidate], list[Candidate]]:
    """Greedy selection by rank within ``budget`` prompt tokens: (chosen, left out)."""
    chosen: list[Candidate] = []
    left: list[Candidate] = []
    used = 0
    for c in rank(cands):
        if used + c.total_tokens <= budget:
            chosen.append(c)
            used += c.total_tokens
        else:
            left.append(c)
    return chosen, left


def vendored(path: str) -> bool:
    """True for third-party code copied into the package."""
    return bool(VENDORED.search(path))
