"""Defense-evasion detectors for hidden code and text: whitespace/homoglyph hiding and
prompt injection aimed at AI reviewers.

Both work on the raw lines (``ctx.index.lines``) as well as on the AST, because what they
look for (padding, comments, look-alike letters) is erased by parsing.
"""

from __future__ import annotations

import bisect
import io
import re
import tokenize
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.system_common import TEST_PATH, defang
from triage.model import Signal, Statement

_PAD = re.compile(r"\S([ \t]{100,})(?=\S)")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\u180e]|(?<!^)\ufeff")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_MAX_PER_FILE = 25


def _hiding_zero_width(line: str) -> re.Match[str] | None:
    """The first zero-width character of ``line`` that is not a joiner between two non-ASCII
    characters (emoji sequences such as 🤷‍♀️ and Persian or Indic text use U+200D/U+200C)."""
    for m in _ZERO_WIDTH.finditer(line):
        i = m.start()
        joiner = m.group(0) in "\u200c\u200d" and 0 < i < len(line) - 1 \
            and not line[i - 1].isascii() and not line[i + 1].isascii()
        if not joiner:
            return m
    return None


def _statements_on(ctx: FileContext, line: int) -> list[tuple[Statement, int | None]]:
    """(statement, column in bytes or None) of statements starting on ``line``."""
    out: list[tuple[Statement, int | None]] = []
    for st, node in ctx.statements():
        if st.start_line == line:
            col = getattr(node, "col_offset", None) if getattr(node, "lineno", None) == line \
                else None
            out.append((st, col))
    return out


def _non_ascii_names(ctx: FileContext) -> dict[int, str]:
    """Line -> first identifier written with non-ASCII look-alike letters."""
    found: dict[int, str] = {}
    if ctx.source.text.isascii():
        return found
    try:
        for tok in tokenize.generate_tokens(io.StringIO(ctx.source.text).readline):
            if tok.type == tokenize.NAME and not tok.string.isascii():
                found.setdefault(tok.start[0], tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError, ValueError):
        pass
    return found


@detector("hidden_code", "code_obfuscation_whitespace")
def hidden_code(ctx: FileContext) -> Iterator[Signal]:
    """Code pushed off-screen by padding, or hidden with invisible or look-alike characters."""
    hits: dict[str, tuple[Statement, str, float]] = {}
    for no, line in enumerate(ctx.index.lines, start=1):
        m = _PAD.search(line)
        if m:
            hidden_at = len(line[: m.end(1)].encode("utf-8"))
            rest = line[m.end(1):].lstrip()
            for st, col in _statements_on(ctx, no):
                if (col is not None and col >= hidden_at) or (
                        col is None and rest[:1] != "#" and re.match(r"[;\w_]", rest)):
                    hits.setdefault(st.id, (st, f"hides `{defang(rest, 50)}` after "
                                    f"{len(m.group(1))} padding characters", 0.9))
        bad = _BIDI.search(line) or _hiding_zero_width(line)
        holder = ctx.index.at_line(no) if bad else None
        if bad and holder is not None:
            kind = "bidirectional-override" if _BIDI.match(bad.group(0)) else "zero-width"
            hits.setdefault(holder.id, (holder, f"contains a {kind} character "
                            f"U+{ord(bad.group(0)):04X}", 0.8 if kind[0] == "b" else 0.6))
    lookalike = [(no, name) for no, name in sorted(_non_ascii_names(ctx).items())
                 if any(0x1D400 <= ord(c) <= 0x1D7FF or 0xFF00 <= ord(c) <= 0xFFEF for c in name)]
    for no, name in lookalike[:_MAX_PER_FILE]:
        holder = ctx.index.at_line(no)
        if holder is not None:
            hits.setdefault(holder.id, (holder, "spells identifiers with look-alike letters "
                                        f"(`{name[:20]}`)", 0.7))
    for st, why, conf in sorted(hits.values(), key=lambda h: h[0].start_line):
        yield ctx.signal("code_obfuscation_whitespace", st, f"statement {why}",
                         confidence=conf, detector="hidden_code")


# --- prompt injection --------------------------------------------------------------------

_W = r"[\s\w,'\"-]"
_OVERRIDE = re.compile(
    rf"\b(ignore|disregard|forget|do\s+not\s+follow|don't\s+follow|stop\s+following)\b"
    rf"{_W}{{0,40}}?\b(previous|prior|above|earlier|preceding|all|any|your|those|these|"
    rf"original|system)\b{_W}{{0,30}}?\b(instructions?|prompts?|rules|directives?|guidelines|"
    r"guardrails|programming)\b|\bnew\s+instructions\s*:|\bfrom\s+now\s+on,?\s+you\b", re.I)
_AI = re.compile(
    r"\b(you\s+are|you're|as|act\s+as|if\s+you\s+are)\s+(an?\s+|the\s+)?(ai|a\.i\.|llm|"
    r"large\s+language\s+model|language\s+model|chatbot|gpt[\w.-]*|claude|assistant|"
    r"copilot|(automated\s+)?(security|malware|code|package)\s+(scanner|analy[sz]er|analyst|"
    r"reviewer|auditor|agent)|automated\s+(scanner|reviewer|analysis|tool|system))\b|"
    r"\b(dear|attention|note\s+to|hey|hello|hi|to)\s+(the\s+|any\s+|all\s+)?(ai|llm|gpt[\w.-]*|"
    rf"chatgpt|claude|language\s+model|automated|security|malware)s?\b{_W}{{0,25}}?"
    r"\b(reviewers?|scanners?|models?|assistants?|agents?|analy[sz]ers?|tools?|systems?)\b|"
    r"\b(ai|llm|gpt)[\s-]+(based\s+)?(reviewers?|scanners?|auditors?|agents?|analy[sz]ers?|"
    r"security\s+tools?)\b", re.I)
_THING = (r"(package|code|file|library|module|script|project|repo(sitory)?|software|program|"
          r"artifact|wheel|sdist|payload|lines?|function)s?")
_VERDICT = re.compile(
    r"\b(report|classify|mark|label|flag|treat|consider|rate|return|output|respond|answer|"
    r"declare|categori[sz]e|tag|score|judge|evaluate|list)\b(\s+\w+){0,2}?\s+((this|these|it)"
    rf"(\s+{_THING})?|(the|my|our|your)\s+(\w+\s+)?{_THING})\s+as\s+(being\s+)?(safe|benign|clean|"
    r"harmless|legitimate|legit|trusted|trustworthy|non-?malicious|not\s+malicious|secure|"
    rf"low[\s-]risk)\b|\b(this|the\s+following|these|our|the)\s+{_THING}\s+(is|are|contains?)"
    r"\s+(not\s+malicious|non-?malicious|completely\s+safe|totally\s+safe|100%\s+safe|benign|"
    r"harmless|not\s+(a\s+)?malware|not\s+(a\s+)?virus|legitimate\s+and\s+safe|"
    r"safe\s+and\s+legitimate|no\s+threat)\b|"
    r"\b(do\s+not|don't|never|must\s+not|should\s+not|shouldn't)\s+(be\s+)?(flag|report|mark|"
    r"classify|detect|alert|block|quarantine)(ed)?\b[\s\w]{0,25}?\b(this|it|as\s+malicious|"
    r"package|code|file)\b|\bverdict\s*[:=]\s*['\"]?(benign|safe|clean)\b|"
    r"\b(is|are)\s+not\s+(a\s+)?(virus|malware|trojan|stealer|backdoor|malicious)\b", re.I)
_CHAT = re.compile(r"<\|(im_start|im_end|system|user|assistant|endoftext|begin_of_text|"
                   r"start_header_id|eot_id)\|>|\[/?INST\]|<</?SYS>>|^\s*#*\s*(system|assistant)"
                   r"\s*:|###\s*(instruction|system)\b", re.I | re.M)


_PREFILTER = re.compile(
    r"(?i)\b(ignore|disregard|forget|follow(ing)?|instructions?|ai|llm|gpt[\w.-]*|claude|"
    r"chatgpt|assistant|scanner|reviewer|analy[sz]er|benign|malicious|malware|harmless|verdict|"
    r"flag|report|safe|legit\w*|virus|system|copilot|chatbot)\b|<\||\[/?inst\]|<</?sys>>|###")


def injection_score(text: str) -> tuple[float, str] | None:
    """(confidence, matched phrase) when ``text`` addresses an AI reviewer, else None."""
    raw = text[:20000]
    if not _PREFILTER.search(raw):
        return None
    sample = " ".join(raw.split())
    over = _OVERRIDE.search(sample)
    ai = _AI.search(sample)
    verdict = _VERDICT.search(sample)
    chat = _CHAT.search(raw)
    if over:
        return 0.9, over.group(0)
    if verdict and (ai or chat):
        return 0.9, verdict.group(0)
    if ai and chat:
        return 0.6, chat.group(0)
    if verdict:
        strong = re.search(r"(?i)\bas\s+(being\s+)?(safe|benign|clean|harmless|legit|"
                           r"non-?malicious|not\s+malicious)|not\s+malicious|do\s+not|don't|"
                           r"never|must\s+not|verdict", verdict.group(0))
        return (0.5 if strong else 0.3), verdict.group(0)
    if ai:
        return 0.2, ai.group(0)
    if chat:
        return 0.15, chat.group(0)
    return None


def _comment_text(line: str) -> str | None:
    """Text after the first ``#`` outside single-line quotes, or None."""
    quote = ""
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif line.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
        elif c in "'\"":
            quote = line[i:i + 3] if line[i:i + 3] in ("'''", '"""') else c
            i += len(quote) - 1
        elif c == "#":
            return line[i + 1:].strip()
        i += 1
    return None


def _comment_blocks(ctx: FileContext) -> list[tuple[int, int, str]]:
    """(first line, last line, text) of runs of consecutive comment lines.

    Only lines whose ``#`` tail mentions a trigger word are examined closely, which keeps
    this cheap on large files; a ``#`` inside a string can yield a spurious "comment", whose
    text is then judged like any other string.
    """
    comments: list[tuple[int, str]] = []
    for no, line in enumerate(ctx.index.lines, start=1):
        at = line.find("#")
        if at < 0 or not _PREFILTER.search(line, at):
            continue
        text = _comment_text(line)
        if text:
            comments.append((no, text))
    blocks: list[tuple[int, int, str]] = []
    for line_no, text in comments:
        if blocks and blocks[-1][1] == line_no - 1:
            first, _, prev = blocks[-1]
            blocks[-1] = (first, line_no, f"{prev}\n{text}")
        else:
            blocks.append((line_no, line_no, text))
    return blocks


class _Lines:
    """Line -> innermost statement, and the first statement starting after a line."""

    def __init__(self, ctx: FileContext) -> None:
        self.statements = ctx.index.statements
        self.starts = [s.start_line for s in self.statements]
        self.cover: dict[int, Statement] = {}
        for st in self.statements:
            for no in range(st.start_line, min(st.end_line, st.start_line + 2000) + 1):
                cur = self.cover.get(no)
                if cur is None or st.depth >= cur.depth:
                    self.cover[no] = st

    def anchor(self, first: int, last: int) -> Statement | None:
        """The statement a comment belongs to: on its lines, else the next, else the last."""
        for no in range(first, last + 1):
            if no in self.cover:
                return self.cover[no]
        i = bisect.bisect_right(self.starts, last)
        if i < len(self.statements):
            return self.statements[i]
        return self.statements[-1] if self.statements else None


@detector("reviewer_injection", "code_prompt_injection")
def reviewer_injection(ctx: FileContext) -> Iterator[Signal]:
    """Comments, strings and docstrings that try to steer an AI/LLM reviewer's verdict."""
    best: dict[str, tuple[Statement, float, str]] = {}

    def note(st: Statement | None, hit: tuple[float, str] | None) -> None:
        if st is not None and hit is not None and hit[0] > best.get(st.id, (st, 0.0, ""))[1]:
            best[st.id] = (st, hit[0], hit[1])

    lines = _Lines(ctx)
    for first, last, text in _comment_blocks(ctx):
        note(lines.anchor(first, last), injection_score(text))
    for st, _node, value in ctx.strings():
        note(st, injection_score(value))
    for st, node in ctx.statements():
        if node is None:
            note(st, injection_score(st.text))
    factor = 0.5 if TEST_PATH.search(ctx.source.path) else 1.0
    for st, conf, phrase in sorted(best.values(), key=lambda b: b[0].start_line):
        yield ctx.signal("code_prompt_injection", st,
                         f"text addressed to an AI reviewer: \"{defang(phrase, 90)}\"",
                         confidence=round(conf * factor, 2), detector="reviewer_injection")
