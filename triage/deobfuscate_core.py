"""Decoding of literals and of decoding expressions (core of :mod:`triage.deobfuscate`).

Never executes anything; see :mod:`triage.deobfuscate` for the guarantees and limits.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triage import deobfuscate_codecs as dc
from triage import deobfuscate_text as dt
from triage.deobfuscate_calls import DecodeCalls, Resolve
from triage.deobfuscate_fold import Folder
from triage.deobfuscate_ops import MAX_INPUT, NotConstant

MAX_INPUT_BYTES = MAX_INPUT
"""Literals longer than this (20 MiB) are not decoded (bounded work on adversarial input)."""
DEFAULT_MAX_BYTES = 5 * 2**20
"""Default cap on each layer's output."""
_PROBE = 4000


@dataclass(frozen=True)
class Decoded:
    """A payload decoded statically from a literal or a decoding expression."""

    text: str
    """Decoded payload as text (UTF-8, else latin-1); for binary results a short description
    (format, size) plus the printable strings found in the bytes."""
    layers: tuple[str, ...]
    """Decoding layers in the order applied, e.g. ``("base64", "zlib")``."""
    is_python: bool
    """``text`` parses as Python and has a statement that does something."""
    binary: bool
    """The final bytes were not text."""


def _checked(out: bytes, layer: str, max_bytes: int) -> dc.Step | None:
    if not dc.sensible(out[:max_bytes]):
        return None
    return dc.Step(layer, out[:max_bytes], truncated=len(out) > max_bytes)


def _text_steps(text: str, max_bytes: int) -> dc.Step | None:
    """Try the text-to-bytes decoders on ``text`` (hex, base32, base64, base85)."""
    stripped = text.strip()
    if len(stripped) < 16:
        return None
    decoders = (
        ("hex", lambda t: dc.unhex(t, strict=True)),
        ("base32", lambda t: dc.b32(t, strict=True)),
        ("base64", lambda t: dc.b64(t, strict=True, max_bytes=max_bytes + 1)),
        ("base85", lambda t: dc.b85(t, ascii85=False)),
        ("ascii85", lambda t: dc.b85(t, ascii85=True)),
    )
    for layer, decode in decoders:
        try:
            if layer in ("base85", "ascii85") and len(stripped) > _PROBE:
                # the stdlib base85 decoders are pure Python: probe the start first
                if not dc.promising(decode(stripped[:_PROBE])):
                    continue
            out = decode(stripped)
        except dc.DecodeError:
            continue
        step = _checked(out, layer, max_bytes)
        if step is not None:
            return step
    return None


def _keyword_steps(text: str, max_bytes: int) -> dc.Step | None:
    """rot13 / reversal, accepted when the result reads more like code than the input, or
    when the reversed text is base64 of something sensible."""
    before = dt.keyword_score(text)
    for layer, candidate in (("rot13", dc.rot13(text)), ("reverse", text[::-1])):
        if dt.keyword_score(candidate) > before:
            return dc.Step(layer, candidate.encode("utf-8", "surrogatepass"))
    reverse = text.strip()[::-1]
    if len(reverse) < 16:
        return None
    try:
        out = dc.b64(reverse, strict=True, max_bytes=max_bytes)
    except dc.DecodeError:
        return None
    return dc.Step("reverse", reverse.encode("ascii")) if dc.sensible(out) else None


def _literal_step(data: bytes, max_bytes: int) -> dc.Step | None:
    """One layer of literal decoding, or None when nothing meaningful decodes."""
    kind = dt.compression_of(data)
    if kind is not None:
        try:
            return dc.decompress(kind, data, max_bytes)
        except dc.DecodeError:
            pass
    text = dt.as_text(data)
    if text is None:
        if dt.compression_of(data[::-1]) and dc.sensible(data[::-1]):
            return dc.Step("reverse", data[::-1])
        return None
    return _text_steps(text, max_bytes) or _keyword_steps(text, max_bytes)


def _peel(data: bytes, depth: int, max_bytes: int) -> tuple[list[str], bytes, bool]:
    layers: list[str] = []
    truncated = False
    while len(layers) < depth:
        step = _literal_step(data, max_bytes)
        if step is None:
            break
        layers.append(step.layer)
        data, truncated = step.data, truncated or step.truncated
    return layers, data, truncated


def _finish(value: Any, layers: tuple[str, ...], truncated: bool, max_bytes: int) -> Decoded:
    capped = max_bytes if truncated else None
    if isinstance(value, dt.Opaque):
        text = dt.describe_binary(value.data, value.kind, capped_at=capped)
        return Decoded(text=text, layers=layers, is_python=False, binary=True)
    if isinstance(value, str):
        return Decoded(text=value, layers=layers, is_python=dt.is_python(value), binary=False)
    readable = dt.as_text(value)
    if readable is None:
        about = dt.describe_binary(value, None, capped_at=capped)
        return Decoded(text=about, layers=layers, is_python=False, binary=True)
    return Decoded(text=readable, layers=layers, is_python=dt.is_python(readable), binary=False)


def decode_literal(
    value: str | bytes, *, max_depth: int = 8, max_bytes: int = DEFAULT_MAX_BYTES
) -> Decoded | None:
    """Decode a literal through layers of base64/base32/base85/hex/compression/rot13/reversal.

    Each layer's output feeds the next, up to ``max_depth`` layers, each capped at
    ``max_bytes``. A layer is accepted only when its output is text, a known binary format
    (executable, bytecode, marshal, image) or a valid compressed stream.

    Args:
        value: The literal (str or bytes). Inputs over 20 MiB are not considered.
        max_depth: Most layers applied.
        max_bytes: Cap on each layer's output.

    Returns:
        The decoded payload, or None when nothing meaningful decodes.
    """
    data = dt.to_bytes(value)
    if len(data) > MAX_INPUT_BYTES:
        return None
    layers, data, truncated = _peel(data, max_depth, max_bytes)
    if not layers:
        return None
    return _finish(data, tuple(layers), truncated, max_bytes)


def decode_node(
    folder: Folder, node: ast.AST, max_depth: int, max_bytes: int, min_literal: int = 0
) -> tuple[Decoded | None, bool]:
    """Fold ``node`` with decoding calls; returns (payload or None, whether it folded)."""
    folder.layers, folder.truncated = [], False
    try:
        # a module-level assignment's value was already folded by the scan's flow pass
        value = folder.remember(node) if id(node) in folder.memo else folder.evaluate(node)
    except (NotConstant, RecursionError):
        return None, False
    if not isinstance(value, (str, bytes, dt.Opaque)):
        return None, False
    if not folder.layers and not isinstance(value, dt.Opaque):
        if not min_literal <= len(value) <= MAX_INPUT_BYTES:
            return None, True
        return decode_literal(value, max_depth=max_depth, max_bytes=max_bytes), True
    layers, truncated = list(folder.layers), folder.truncated
    if not isinstance(value, dt.Opaque):
        more, data, more_truncated = _peel(dt.to_bytes(value), max_depth - len(layers), max_bytes)
        if more:
            layers += more
            value, truncated = data, truncated or more_truncated
    return _finish(value, tuple(layers), truncated, max_bytes), True


def decode_expression(
    node: ast.expr,
    resolve: Resolve | None = None,
    *,
    max_depth: int = 8,
    max_bytes: int = DEFAULT_MAX_BYTES,
    names: Mapping[str, object] | None = None,
) -> Decoded | None:
    """Decode a decoding expression applied to constants, e.g. ``zlib.decompress(b64decode('..'))``.

    Understands base64/base32/base85/hex/zlib/gzip/bz2/lzma/codecs calls, ``[::-1]``,
    ``__import__('m').f``, ``marshal.loads``/``pickle.loads`` (reported as binary, never
    loaded), ``Fernet(k).decrypt(t)``, ``AES.new(k, mode, iv).decrypt(d)``, XOR and chr/join
    comprehensions, then keeps peeling literal layers off the result.

    Args:
        node: The expression.
        resolve: Maps a callee expression to a dotted name (``base64.b64decode``) through the
            module's imports; when None or when it returns None, the plain dotted text is used.
        max_depth: Most layers applied.
        max_bytes: Cap on each layer's output.
        names: Module-level constants (values or AST expressions) for names in ``node``.

    Returns:
        The decoded payload, or None when ``node`` is not a constant decoding expression.
    """
    folder = Folder(names, max_bytes=max_bytes, hook=DecodeCalls(resolve, max_depth))
    return decode_node(folder, node, max_depth, max_bytes)[0]
