"""Near-duplicate cluster keys computed from code with literals normalised.

Used when a dataset has no cluster file. Two archives share a key when their Python files,
with the top directory (``name-version/``) stripped from paths, have the same token stream
once every string literal becomes ``S`` and every number ``0``, comments and layout dropped:
the same code modulo literals, as the corpus CSV defines its clusters. Archives are read in
memory; nothing is extracted or executed.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tokenize
import zipfile
from collections.abc import Iterator

from triage.evaluation.corpus import MAX_MEMBER_BYTES, decode_text, is_zip_bytes

KEY_LENGTH = 12
_SKIP = frozenset(
    {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
     tokenize.ENDMARKER, tokenize.ENCODING}
)


def normalise_code(text: str) -> str:
    """Token stream of ``text`` with literals replaced (stripped lines if it won't tokenize)."""
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in _SKIP:
                continue
            if tok.type == tokenize.STRING or tok.type in _FSTRING_TYPES:
                if not out or out[-1] != "S":
                    out.append("S")  # adjacent literals and f-string parts collapse to one
            elif tok.type == tokenize.NUMBER:
                out.append("0")
            else:
                out.append(tok.string)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return " ".join(out)


_FSTRING_TYPES = frozenset(
    getattr(tokenize, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
)


def _strip_top(path: str) -> str:
    return path.split("/", 1)[1] if "/" in path else path


def python_members(data: bytes, filename: str) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every ``.py`` member of an archive given as bytes (in memory)."""
    if is_zip_bytes(data, filename):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if info.filename.endswith(".py") and info.file_size <= MAX_MEMBER_BYTES:
                    yield info.filename, decode_text(zf.read(info))
        return
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for member in tf:
            if member.isfile() and member.name.endswith(".py") and member.size <= MAX_MEMBER_BYTES:
                fh = tf.extractfile(member)
                if fh is not None:
                    yield member.name, decode_text(fh.read())


def cluster_key(data: bytes, filename: str) -> str:
    """Cluster key of one archive (12 hex digits); the file name's hash when unreadable."""
    h = hashlib.sha256()
    try:
        members = python_members(data, filename)
        files = sorted((_strip_top(p), normalise_code(t)) for p, t in members)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return hashlib.sha256(filename.encode()).hexdigest()[:KEY_LENGTH]
    for path, code in files:
        h.update(path.encode() + b"\0" + code.encode("utf-8", "replace") + b"\0")
    return h.hexdigest()[:KEY_LENGTH]
