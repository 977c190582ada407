"""Decide what each member is: kept source, a skipped (possibly suspicious) file, or ignored.

Pure functions over a member's path and bytes. Nothing is executed; text is only decoded.
"""

from __future__ import annotations

import codecs
import re

from triage.artifact.limits import MIB, Limits
from triage.model import FileKind, SkippedFile, SourceFile

SNIFF_BYTES = 8192
"""A NUL byte in this many leading bytes marks a member as binary."""
DOC_LIMIT = 2 * MIB
"""README-like text (.txt/.md/.rst) larger than this is not kept."""
SMALL_FILE = 256 * 1024
"""Files without a known extension up to this size are read to look for a ``#!`` line."""

PYTHON_EXT = frozenset({".py", ".pyw"})
METADATA_NAMES = frozenset(
    {"setup.cfg", "pyproject.toml", "PKG-INFO", "METADATA", "entry_points.txt"}
)
SCRIPT_EXT = frozenset(
    {".sh", ".bash", ".zsh", ".bat", ".cmd", ".ps1", ".psm1", ".js", ".mjs", ".cjs", ".vbs"}
)
DOC_EXT = frozenset({".txt", ".md", ".rst"})
NATIVE_EXT = frozenset({".exe", ".dll", ".so", ".dylib", ".pyd", ".scr", ".com", ".sys", ".elf"})
BYTECODE_EXT = frozenset({".pyc", ".pyo"})
RISKY_EXT = frozenset(
    {".msi", ".jar", ".lnk", ".hta", ".vbe", ".jse", ".wsf", ".wsh", ".apk", ".deb", ".rpm", ".dmg"}
)
OTHER_SCRIPT_EXT = frozenset({".pl", ".rb", ".php", ".lua", ".tcl", ".applescript", ".command"})
IMAGE_EXT = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif"})
FONT_EXT = frozenset({".ttf", ".otf", ".woff", ".woff2", ".eot"})

_MACHO_MAGIC = (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_SO_VERSIONED = re.compile(r"\.so(\.\d+)+$")
_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:#.*)?\r?$")
_EXECUTABLE_REASON = "an embedded executable is suspicious"


def basename(path: str) -> str:
    """Last component of a member path (after any ``!`` and ``/``)."""
    return path.rsplit("!", 1)[-1].rstrip("/").rsplit("/", 1)[-1]


def extension(name: str) -> str:
    """Lower-case extension with its dot, ``""`` for none (dot-files have none)."""
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def too_large(path: str, size: int, limits: Limits) -> SkippedFile:
    """The record for a member over ``max_file_bytes`` (decided from its header, before reading)."""
    ext = extension(basename(path))
    suspicious = ext in NATIVE_EXT or ext in BYTECODE_EXT or ext in RISKY_EXT
    return SkippedFile(
        path,
        f"too large ({size:,} bytes, limit {limits.max_file_bytes:,}), not read",
        evidence=suspicious,
    )


def _binary_kind(name: str, ext: str, head: bytes) -> tuple[str, bool, str] | None:
    """(description, evidence, why) for a binary member, or None for text."""
    has_nul = b"\0" in head
    if head.startswith(b"\x7fELF"):
        return "ELF executable", True, _EXECUTABLE_REASON
    if head.startswith(b"MZ") and has_nul:
        return "PE executable", True, _EXECUTABLE_REASON
    if head[:4] in _MACHO_MAGIC or (head.startswith(b"\xca\xfe\xba\xbe") and ext != ".class"):
        return "Mach-O executable", True, _EXECUTABLE_REASON
    if ext in RISKY_EXT:
        return None  # reported by extension, whatever its bytes
    if ext in BYTECODE_EXT:
        return "compiled Python bytecode", True, "shipped bytecode hides its source"
    if ext in NATIVE_EXT or _SO_VERSIONED.search(name):
        return f"native code {ext or '.so'}", True, _EXECUTABLE_REASON
    if ext in IMAGE_EXT:
        return "image", False, ""
    if ext in FONT_EXT:
        return "font", False, ""
    if has_nul:
        if ext in PYTHON_EXT or ext == ".pth":
            return f"NUL bytes in a {ext} file", True, "source files never contain NUL bytes"
        return "data", False, ""
    return None


def coding_cookie(data: bytes) -> str | None:
    """The PEP 263 encoding declared on line 1 or 2, or None."""
    lines = data[:4096].split(b"\n", 2)[:2]
    for index, line in enumerate(lines):
        match = _COOKIE.match(line)
        if match:
            return match.group(1).decode("ascii")
        if index == 0 and not _BLANK_OR_COMMENT.match(line):
            return None
    return None


def _decode_with(data: bytes, encoding: str | None) -> str | None:
    if not encoding:
        return None
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def decode_text(data: bytes, *, python: bool = False) -> str:
    """Decode member bytes: UTF-8 (BOM stripped), else the PEP 263 cookie, else latin-1.

    For Python sources a cookie naming another codec wins over UTF-8, as it does for the
    interpreter, so the text is exactly what would run (``# coding: utf-7`` tricks included).
    """
    if data.startswith(codecs.BOM_UTF8):
        text = _decode_with(data[3:], "utf-8")
        if text is not None:
            return text
    cookie = coding_cookie(data)
    if cookie is not None and not _known(cookie):
        cookie = None
    if python and cookie and codecs.lookup(cookie).name != "utf-8":
        text = _decode_with(data, cookie)
        if text is not None:
            return text
    text = _decode_with(data, "utf-8")
    if text is None:
        text = _decode_with(data, cookie)
    return text if text is not None else data.decode("latin-1")


def _known(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def _keep_kind(name: str, ext: str, size: int) -> FileKind | None:
    if ext in PYTHON_EXT:
        return FileKind.PYTHON
    if ext == ".pth":
        return FileKind.PTH
    if name in METADATA_NAMES or ext in SCRIPT_EXT:
        return FileKind.TEXT
    if ext in DOC_EXT and size <= DOC_LIMIT:
        return FileKind.TEXT
    return None


def _shebang_kind(data: bytes) -> FileKind | None:
    if not data.startswith(b"#!"):
        return None
    first = data[:256].split(b"\n", 1)[0]
    return FileKind.PYTHON if b"python" in first else FileKind.TEXT


def _long_line(path: str, text: str, limits: Limits) -> tuple[SkippedFile, ...]:
    if len(text) <= limits.max_line_chars:
        return ()
    longest = max((len(line) for line in text.splitlines()), default=0)
    if longest <= limits.max_line_chars:
        return ()
    reason = (
        f"kept, but has a {longest:,}-character line (limit {limits.max_line_chars:,}): "
        "lines this long usually hide an obfuscated payload"
    )
    return (SkippedFile(path, reason, evidence=True),)


def classify(
    path: str, data: bytes, limits: Limits, *, executable: bool = False, single: bool = False
) -> tuple[SourceFile | SkippedFile, ...]:
    """Classify one member's bytes.

    Args:
        path: member path, as it will appear in the artifact.
        data: the member's bytes (already size-capped by the reader).
        limits: the limits in force (``max_line_chars``).
        executable: the archive or file system marks the member executable.
        single: the member is the whole artifact (any text file is then kept).

    Returns:
        The kept ``SourceFile`` and/or ``SkippedFile`` records; empty when the member is
        ordinary documentation or data that is neither analysed nor worth listing.
    """
    name = basename(path)
    ext = extension(name)
    binary = _binary_kind(name, ext, data[:SNIFF_BYTES])
    if binary is not None:
        description, evidence, why = binary
        reason = f"binary file ({description}), not analysed" + (f": {why}" if why else "")
        return (SkippedFile(path, reason, evidence=evidence),)
    kind = _keep_kind(name, ext, len(data))
    if kind is None and (single or (len(data) <= SMALL_FILE and (not ext or executable))):
        kind = _shebang_kind(data) or (FileKind.TEXT if single else None)
    if kind is None:
        return _not_kept(path, name, ext, len(data), executable)
    text = decode_text(data, python=kind is not FileKind.TEXT)
    return (SourceFile(path, text, kind), *_long_line(path, text, limits))


def _not_kept(
    path: str, name: str, ext: str, size: int, executable: bool
) -> tuple[SkippedFile, ...]:
    if ext in RISKY_EXT:
        reason = f"{ext} file, not analysed: a packaged executable or script host is suspicious"
        return (SkippedFile(path, reason, evidence=True),)
    if ext in OTHER_SCRIPT_EXT:
        return (SkippedFile(path, f"script in another language ({ext}), not analysed"),)
    if ext in DOC_EXT:
        return (SkippedFile(path, f"text over {DOC_LIMIT:,} bytes ({size:,}), not analysed"),)
    if executable:
        return (SkippedFile(path, "file marked executable, without a #! line, not analysed"),)
    return ()
