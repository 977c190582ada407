"""Bounded byte-level decoders for :mod:`triage.deobfuscate`.

Decompression uses decompressor objects with ``max_length``, so a bomb never produces more
than the cap; base64/base32/base85/hex decoders validate their charset when ``strict``.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import codecs
import lzma
import re
import zlib
from dataclasses import dataclass

from triage.deobfuscate_text import as_text, binary_kind, compression_of, mostly_ascii

MAX_BASE85_INPUT = 2**20
"""base85/ascii85 decoding is pure Python in the stdlib: longer inputs are not tried."""


class DecodeError(ValueError):
    """A decoder rejected its input."""


@dataclass(frozen=True)
class Step:
    """One decoding layer applied to some bytes."""

    layer: str
    """Layer name (``base64``, ``zlib``...)."""
    data: bytes
    """Output of the layer, at most ``max_bytes`` long."""
    truncated: bool = False
    """True when the output was cut at ``max_bytes``."""


# --- bounded decompression -----------------------------------------------------------------


def inflate(data: bytes, wbits: int, max_bytes: int) -> Step:
    """zlib/gzip/raw-deflate decompression with the output capped at ``max_bytes``."""
    layer = "gzip" if wbits > 15 else "zlib"
    try:
        d = zlib.decompressobj(wbits)
        out = d.decompress(data, max_bytes)
    except zlib.error as exc:
        raise DecodeError(str(exc)) from exc
    if d.eof:
        return Step(layer, out)
    if len(out) >= max_bytes:
        return Step(layer, out, truncated=True)
    raise DecodeError("incomplete or truncated stream")


def _stream(
    dec: bz2.BZ2Decompressor | lzma.LZMADecompressor, layer: str, data: bytes, cap: int
) -> Step:
    try:
        out = dec.decompress(data, max_length=cap)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise DecodeError(str(exc)) from exc
    if dec.eof:
        return Step(layer, out)
    if len(out) >= cap:
        return Step(layer, out, truncated=True)
    raise DecodeError("incomplete or truncated stream")


def decompress(layer: str, data: bytes, max_bytes: int) -> Step:
    """Decompress ``data`` as ``layer`` (zlib, gzip, bz2, lzma, or auto by magic)."""
    if layer == "auto":
        layer = compression_of(data) or "zlib"
    if layer == "zlib":
        return inflate(data, 15, max_bytes)
    if layer == "gzip":
        return inflate(data, 31, max_bytes)
    if layer == "bz2":
        return _stream(bz2.BZ2Decompressor(), "bz2", data, max_bytes)
    if layer == "lzma":
        return _stream(lzma.LZMADecompressor(), "lzma", data, max_bytes)
    raise DecodeError(f"unknown compression {layer}")


def _decompresses(data: bytes) -> bool:
    kind = compression_of(data)
    if kind is None:
        return False
    try:
        decompress(kind, data, 64 * 1024)
    except DecodeError:
        return False
    return True


def sensible(data: bytes) -> bool:
    """True when decoded bytes are mostly-ASCII text, a known binary format, or a valid
    compressed stream."""
    if not data:
        return False
    text = as_text(data)
    if text is not None and mostly_ascii(text):
        return True
    return binary_kind(data) is not None or _decompresses(data)


def promising(data: bytes) -> bool:
    """Cheap check on the decoded start of a long input: text or a known magic."""
    text = as_text(data)
    return (text is not None and mostly_ascii(text)) or bool(
        binary_kind(data) or compression_of(data)
    )


# --- text-to-bytes codecs ------------------------------------------------------------------

_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_B64_WRAPPED = re.compile(r"[A-Za-z0-9+/=_\r\n-]+")
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_B32 = re.compile(r"[A-Z2-7]+={0,6}")
_URLSAFE = str.maketrans("-_", "+/")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_B85 = re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+")
_A85 = re.compile(r"(?:<~)?[!-uz\n]+(?:~>)?")


def b64(text: str, *, strict: bool, max_bytes: int) -> bytes:
    """base64, standard or urlsafe.

    ``strict`` (literals): the whole text must be base64, padding optional. Otherwise (explicit
    calls) Python's lenient rules: other characters are dropped, padding must be right.
    """
    if strict:
        if not _B64_WRAPPED.fullmatch(text):  # cheap reject before copying anything
            raise DecodeError("not base64")
        text = text.replace("\r", "").replace("\n", "")
    else:
        text = re.sub(r"\s+", "", text)
    urlsafe = ("-" in text or "_" in text) and "+" not in text and "/" not in text
    if strict:
        if not (_B64URL if urlsafe else _B64).fullmatch(text):
            raise DecodeError("not base64")
        body = text.rstrip("=")
        if len(body) % 4 == 1:
            raise DecodeError("bad base64 length")
        text = body + "=" * (-len(body) % 4)
    if urlsafe:
        text = text.translate(_URLSAFE)
    if not strict:
        text = re.sub(r"[^A-Za-z0-9+/=]+", "", text)
    limit = (max_bytes + 2) // 3 * 4
    try:
        out = base64.b64decode(text[:limit] if len(text) > limit else text, validate=strict)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(str(exc)) from exc
    return out[:max_bytes]


def b32(text: str, *, strict: bool) -> bytes:
    """base32; padding optional (a literal must be upper case)."""
    if strict and not _B32.fullmatch(text):
        raise DecodeError("not base32")
    text = re.sub(r"\s+", "", text)
    body = text.upper().rstrip("=")
    body += "=" * (-len(body) % 8)
    try:
        return base64.b32decode(body)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(str(exc)) from exc


def unhex(text: str, *, strict: bool) -> bytes:
    """Hex digits (whitespace allowed unless strict)."""
    text = text.strip() if strict else re.sub(r"\s+", "", text)
    if strict and not _HEX.fullmatch(text):
        raise DecodeError("not hex")
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(str(exc)) from exc


def b85(text: str, *, ascii85: bool) -> bytes:
    """base85 (``b85decode``) or ascii85 (``a85decode``, ``<~ ~>`` framing allowed)."""
    if len(text) > MAX_BASE85_INPUT:
        raise DecodeError("base85 input too long")
    if not (_A85 if ascii85 else _B85).fullmatch(text.replace("\r", "")):
        raise DecodeError("not base85")
    try:
        if ascii85:
            framed = text.startswith("<~") and text.endswith("~>")
            return base64.a85decode(text, adobe=framed)
        return base64.b85decode(text)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(str(exc)) from exc


def rot13(text: str) -> str:
    """ROT13 of ``text``."""
    return codecs.decode(text, "rot_13")
