"""Decompress gzip, bzip2 and xz streams in memory, failing fast on bombs and truncation."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any

from triage.artifact.limits import MIB, Budget
from triage.errors import ArtifactError

STREAM_MAGIC = {"gz": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00"}
"""Leading bytes of each compressed stream format."""
_STREAM_NAME = {"gz": "gzip", "bz2": "bzip2", "xz": "xz"}
_CHUNK = 64 * 1024
_STEP = MIB


class Corrupt(Exception):
    """The bytes are not a readable archive (truncated, bad checksum, wrong format)."""


def decompress(data: bytes, fmt: str, where: str, budget: Budget) -> bytes:
    """Decompress a gzip/bzip2/xz stream in memory, failing fast on bombs and truncation.

    The output may not exceed the artifact's remaining byte budget (plus room for tar
    headers), nor ``max_ratio`` times the input once past 1 MiB.
    """
    name = _STREAM_NAME[fmt]
    limits = budget.limits
    remaining = limits.max_total_bytes - budget.total_bytes
    cap = remaining + 1024 * (limits.max_members - budget.members) + 10240
    chunks: list[bytes] = []
    total = 0

    def emit(out: bytes) -> None:
        nonlocal total
        total += len(out)
        chunks.append(out)
        if total > MIB and total > limits.max_ratio * len(data):
            raise ArtifactError(
                f"decompression bomb: {where} expands from {len(data):,} bytes to more than "
                f"{total:,} (ratio above {limits.max_ratio:g})"
            )
        if total > cap:
            raise ArtifactError(f"too much data: {where} decompresses to more than {cap:,} bytes")

    decoder = _new_decoder(fmt)
    pos = 0
    try:
        while pos < len(data):
            chunk = data[pos : pos + _CHUNK]
            pos += len(chunk)
            _drain(decoder, chunk, emit)
            if decoder.eof:
                pos -= len(decoder.unused_data)
                if not data.startswith(STREAM_MAGIC[fmt], pos):
                    break  # trailing padding after the last stream, as gzip(1) accepts
                decoder = _new_decoder(fmt)
    except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
        raise Corrupt(f"not a valid {name} stream: {exc}") from None
    if not decoder.eof:
        raise Corrupt(f"truncated {name} stream: the data ends before the end-of-stream marker")
    return b"".join(chunks)


def _new_decoder(fmt: str) -> Any:
    if fmt == "gz":
        return zlib.decompressobj(wbits=31)
    return bz2.BZ2Decompressor() if fmt == "bz2" else lzma.LZMADecompressor()


def _drain(decoder: Any, chunk: bytes, emit: Callable[[bytes], None]) -> None:
    """Feed one input chunk, taking output at most ``_STEP`` bytes at a time."""
    emit(decoder.decompress(chunk, _STEP))
    if hasattr(decoder, "unconsumed_tail"):  # zlib
        while decoder.unconsumed_tail and not decoder.eof:
            emit(decoder.decompress(decoder.unconsumed_tail, _STEP))
    else:  # bz2, lzma
        while not decoder.eof and not decoder.needs_input:
            emit(decoder.decompress(b"", _STEP))
