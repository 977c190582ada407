"""Text and binary heuristics for :mod:`triage.deobfuscate`: is it text, is it Python,
what binary format is it, which printable strings does it hold.

Nothing here executes, compiles, imports or unpickles anything: marshal and pickle data is
only scanned for printable strings; Python is recognised with ``ast.parse`` alone.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

SAMPLE = 256 * 1024
"""Bytes examined by the text heuristics (the rest of a large output is not scanned)."""
MAX_STRINGS = 200
"""At most this many printable strings are listed for a binary result."""

MARSHAL_CODE = "marshal-serialised code object (not loaded)"
MARSHAL_DATA = "marshal-serialised data (not loaded)"
PICKLE_DATA = "pickle-serialised data (not loaded)"
PYC = "Python bytecode file (.pyc, not loaded)"
EXECUTABLE_KINDS = frozenset(
    {
        "ELF executable",
        "PE executable (Windows)",
        "Mach-O executable",
        MARSHAL_CODE,
        PYC,
        PICKLE_DATA,
    }
)
"""Binary formats that are code (worth reporting when found in a long literal)."""


@dataclass(frozen=True)
class Opaque:
    """Serialised bytes that an explicit ``marshal.loads``/``pickle.loads`` would load."""

    kind: str
    """Description such as :data:`MARSHAL_CODE`."""
    data: bytes
    """The serialised bytes (never deserialised)."""


def to_bytes(value: str | bytes) -> bytes:
    """Bytes of a literal: latin-1 when every character fits (Python 2 style binary strings),
    else UTF-8 (lone surrogates kept)."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


# --- text heuristics ---------------------------------------------------------------------

_CTRL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_NON_ASCII = re.compile(r"[^\t\n\r\x20-\x7e]")
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r\x0c"
_KEYWORD_PATTERNS = (
    r"\bimport\s+[\w.]+",
    r"\bfrom\s+[\w.]+\s+import\b",
    r"\bexec\s*\(",
    r"\beval\s*\(",
    r"\bdef\s+\w+\s*\(",
    r"\bclass\s+\w+\s*[(:]",
    r"\bhttps?://",
    r"\b__import__\b",
    r"\bos\.system\b",
    r"\bsubprocess\b",
    r"\bsocket\b",
    r"\bbase64\b",
    r"\burllib\b",
    r"\brequests\.\w+",
    r"\bprint\s*\(",
    r"\breturn\b",
    r"\blambda\b",
    r"(?i:\bpowershell\b)",
    r"\bcurl\s",
    r"\bwget\s",
    r"/bin/(?:ba)?sh\b",
    r"(?i:\bcmd(?:\.exe)?\s+/c\b)",
    r"\bopen\s*\(",
)
_KEYWORDS = re.compile("|".join(f"(?P<k{i}>{p})" for i, p in enumerate(_KEYWORD_PATTERNS)))
_URL_OR_COMMAND = re.compile(
    r"(?i)\b(?:https?|ftp)://|\bpowershell\b|\bcmd(?:\.exe)?\s+/[ck]\b|/bin/(?:ba)?sh\b"
    r"|\bbash\s+-c\b|\bcurl\s|\bwget\s|\bchmod\s|\bnc\s+-e\b|\bcertutil\b|\bmshta\b"
    r"|\brundll32\b|\bschtasks\b|\bcrontab\b|\binvoke-webrequest\b|\biex\b|\bos\.system\b"
    r"|\bsubprocess\b|\brm\s+-rf\b"
)


def keyword_score(text: str) -> int:
    """Number of distinct code/URL/command keyword patterns found in ``text``."""
    return len({m.lastgroup for m in _KEYWORDS.finditer(text[: SAMPLE // 4])})


def mentions_url_or_command(text: str) -> bool:
    """True when ``text`` contains a URL or a shell/system command."""
    return _URL_OR_COMMAND.search(text[: 4 * SAMPLE]) is not None


def mostly_ascii(text: str) -> bool:
    """At least three quarters of ``text`` is printable ASCII or whitespace (code, commands,
    URLs); decoded junk that happens to be valid UTF-8 is not."""
    sample = text[:SAMPLE]
    return bool(sample) and len(_NON_ASCII.findall(sample)) * 4 <= len(sample)


def _printable(text: str) -> bool:
    sample = text[:SAMPLE]
    return bool(sample) and len(_CTRL.findall(sample)) * 100 <= len(sample)


def as_text(data: bytes) -> str | None:
    """Decode ``data`` as readable text (UTF-8, UTF-16LE, or mostly-ASCII latin-1), else None."""
    if not data:
        return None
    head = data[:SAMPLE]
    if (
        len(head) >= 8
        and head[1::2].count(0) * 10 >= len(head) // 2 * 9
        and head[0::2].count(0) == 0
    ):
        text = data[: len(data) // 2 * 2].decode("utf-16-le", errors="replace").lstrip("\ufeff")
        return text if _printable(text) else None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            text = data[: exc.start].decode("utf-8", errors="replace")
        elif len(head.translate(None, _PRINTABLE_ASCII)) * 100 <= len(head):
            text = data.decode("latin-1")
        else:
            return None
    return text if _printable(text) else None


def is_python(text: str) -> bool:
    """True when ``text`` parses as Python with a statement that does something.

    A statement counts unless it is a bare expression other than a call (so a lone word, a
    dotted host name or a docstring does not), or an annotation without a value
    (``Note: text``). Parsing is ``ast.parse`` only; nothing is compiled to bytecode.
    """
    if not text.strip():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and not isinstance(stmt.value, ast.Call):
            continue
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            continue
        return True
    return False


# --- binary identification ---------------------------------------------------------------


def _small_ints(data: bytes, offset: int, count: int) -> bool:
    if len(data) < offset + 4 * count:
        return False
    return all(
        int.from_bytes(data[offset + 4 * i : offset + 4 * i + 4], "little") < 256
        for i in range(count)
    )


def is_marshal_code(data: bytes, offset: int = 0) -> bool:
    return (
        len(data) > offset + 20 and data[offset] & 0x7F == 0x63 and _small_ints(data, offset + 1, 2)
    )


def binary_kind(data: bytes) -> str | None:
    """Name of a known binary format at the start of ``data`` (executables, bytecode...)."""
    if data[:4] == b"\x7fELF":
        return "ELF executable"
    if data[:2] == b"MZ" and len(data) >= 0x40:
        pe = int.from_bytes(data[0x3C:0x40], "little")
        if data[pe : pe + 4] == b"PE\x00\x00" or b"This program cannot be run in DOS" in data[:512]:
            return "PE executable (Windows)"
    if data[:4] in (
        b"\xcf\xfa\xed\xfe",
        b"\xce\xfa\xed\xfe",
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
    ):
        return "Mach-O executable"
    if data[2:4] == b"\r\n" and (is_marshal_code(data, 16) or is_marshal_code(data, 8)):
        return PYC
    if is_marshal_code(data):
        return MARSHAL_CODE
    if data[:4] == b"PK\x03\x04":
        return "zip archive"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG image"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF image"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG image"
    if len(data) > 2 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[-1:] == b".":
        return PICKLE_DATA
    return None


def _zlib_header(data: bytes) -> bool:
    return (
        len(data) > 2
        and data[0] & 0x0F == 8
        and data[0] >> 4 <= 7
        and ((data[0] << 8) | data[1]) % 31 == 0
    )


def compression_of(data: bytes) -> str | None:
    """Compression format announced by the magic bytes of ``data``, if any."""
    if data[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        return "bz2"
    if data[:6] == b"\xfd7zXZ\x00" or data[:3] == b"\x5d\x00\x00":
        return "lzma"
    if _zlib_header(data):
        return "zlib"
    return None


def _marshal_strings(data: bytes) -> list[str]:
    """Strings stored in marshal data, found by their type/length prefixes (not loaded)."""
    out: list[str] = []
    i, n = 0, len(data)
    while i < n and len(out) < 4 * MAX_STRINGS:
        kind = data[i] & 0x7F
        if kind in (0x7A, 0x5A) and i + 1 < n:  # z, Z: short ASCII, 1-byte length
            size, start = data[i + 1], i + 2
        elif kind in (0x61, 0x41, 0x75, 0x74, 0x73) and i + 5 <= n:  # a A u t s: 4-byte length
            size, start = int.from_bytes(data[i + 1 : i + 5], "little"), i + 5
        else:
            i += 1
            continue
        body = data[start : start + size]
        text = body.decode("utf-8", errors="replace") if len(body) == size >= 6 else ""
        if text and text.isprintable():
            out.append(text)
            i = start + size
        else:
            i += 1
    return out


def printable_strings(data: bytes, *, marshal_aware: bool = False) -> tuple[str, ...]:
    """Distinct printable strings of at least 6 characters, in order of appearance."""
    if marshal_aware:
        found = _marshal_strings(data)
    else:
        found = [
            m.group().decode("ascii")
            for _, m in zip(
                range(4 * MAX_STRINGS), re.finditer(rb"[\x20-\x7e]{6,}", data), strict=False
            )
        ]
    seen: dict[str, None] = {}
    for s in found:
        seen.setdefault(s[:200], None)
    return tuple(seen)[:MAX_STRINGS]


def describe_binary(data: bytes, kind: str | None, *, capped_at: int | None = None) -> str:
    """Short description of binary bytes plus the printable strings in them."""
    compressed = compression_of(data)
    kind = kind or binary_kind(data) or (f"{compressed}-compressed data" if compressed else None)
    kind = kind or "binary data"
    size = f"size: {len(data)} bytes"
    if capped_at is not None:
        size += f" (output capped at {capped_at} bytes)"
    marshal_aware = kind in (MARSHAL_CODE, MARSHAL_DATA, PYC)
    strings = printable_strings(data, marshal_aware=marshal_aware)
    lines = [kind, size, "strings:" if strings else "strings: none"]
    lines.extend(f"  {s}" for s in strings)
    return "\n".join(lines)
