"""Static decoding of literal payloads found in Python source. Never executes anything.

No ``eval``/``exec``/``compile`` of payloads, no ``marshal.loads``/``pickle.loads``, no imports
of package code: decoders are pure functions of constant bytes, Python is recognised with
``ast.parse`` alone, and ``eval('<constant>')`` is parsed and folded, never run. Decryption
(Fernet, AES) uses the ``cryptography`` package and is not execution.

Limits: at most ``max_depth`` layers; every layer's output is capped at ``max_bytes`` (a
decompression bomb stops there, and a binary result says so); inputs longer than
:data:`MAX_INPUT_BYTES` (20 MiB) are not considered at all (``decode_literal`` returns None);
``find_payloads`` reports at most :data:`MAX_PAYLOADS` payloads and folds at most
:data:`FIND_BUDGET` nodes per module.

Layout: ``deobfuscate_core`` (literal layers, expressions), ``deobfuscate_scan`` (modules),
``deobfuscate_fold``/``_ops``/``_builtins`` (iterative constant folding),
``deobfuscate_calls`` (decoding calls, Fernet, AES), ``deobfuscate_codecs`` (bounded
decoders) and ``deobfuscate_text`` (text/binary heuristics).
"""

from __future__ import annotations

from triage.deobfuscate_core import (
    DEFAULT_MAX_BYTES,
    MAX_INPUT_BYTES,
    Decoded,
    decode_expression,
    decode_literal,
)
from triage.deobfuscate_fold import fold_constant
from triage.deobfuscate_scan import FIND_BUDGET, MAX_PAYLOADS, find_payloads

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FIND_BUDGET",
    "MAX_INPUT_BYTES",
    "MAX_PAYLOADS",
    "Decoded",
    "decode_expression",
    "decode_literal",
    "find_payloads",
    "fold_constant",
]
