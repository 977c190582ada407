"""Decoding calls applied to constants (helper of :mod:`triage.deobfuscate`).

Plans ``base64.b64decode``, ``zlib.decompress``, ``codecs.decode(x, 'rot13')``,
``marshal.loads`` (reported, never loaded), ``Fernet(k).decrypt(t)`` and
``AES.new(k, mode, iv).decrypt(d)`` for the constant folder. Decryption uses the
``cryptography`` package, imported lazily; decrypting is not executing.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from triage import deobfuscate_codecs as dc
from triage import deobfuscate_text as dt
from triage.deobfuscate_fold import Folder
from triage.deobfuscate_ops import NotConstant, Plan, norm_encoding, slots, text_encoding

Resolve = Callable[[ast.expr], object | None]

DECODER_LAYERS = frozenset(
    "base64 base32 hex base85 ascii85 zlib deflate gzip bz2 lzma rot13 marshal pickle fernet "
    "aes-cbc aes-ecb".split()
)
"""Layers that only an explicit decoding call (or a literal decoder) produces."""

_EXACT = {
    "codecs.decode": "codec",
    "codecs.encode": "codec-encode",
    "marshal.loads": "marshal",
    "bytes.fromhex": "hex",
    "bytearray.fromhex": "hex",
}
_SUFFIX = {
    "b64decode": "base64",
    "standard_b64decode": "base64",
    "urlsafe_b64decode": "base64",
    "decodebytes": "base64",
    "decodestring": "base64",
    "a2b_base64": "base64",
    "b32decode": "base32",
    "b16decode": "hex",
    "unhexlify": "hex",
    "a2b_hex": "hex",
    "b85decode": "base85",
    "a85decode": "ascii85",
    "unpad": "unpad",
}
_PICKLERS = frozenset({"pickle", "cPickle", "_pickle", "dill", "cloudpickle"})
_BYTE_CODECS = {
    "base64": "base64",
    "base_64": "base64",
    "base64_codec": "base64",
    "hex": "hex",
    "hex_codec": "hex",
    "zlib": "zlib",
    "zip": "zlib",
    "zlib_codec": "zlib",
    "bz2": "bz2",
    "bz2_codec": "bz2",
    "rot13": "rot13",
    "rot_13": "rot13",
}
_DATA_KEYWORDS = ("data", "s", "b", "obj", "hexstr", "string", "bytes", "padded_data")
_EXTRA_KEYWORDS = ("wbits", "encoding")


def dotted_name(node: ast.expr) -> str | None:
    """Plain dotted text of a callee (``base64.b64decode``), also through ``__import__('m')``,
    ``importlib.import_module('m')`` and ``getattr(m, 'name')``; None when not a name."""
    parts: list[str] = []
    cur: ast.expr = node
    for _ in range(64):
        if isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        elif isinstance(cur, ast.Name):
            parts.append(cur.id)
            return ".".join(reversed(parts))
        elif isinstance(cur, ast.Call) and cur.args and not cur.keywords:
            fn = cur.func
            fname = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
            arg = cur.args[-1]
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                return None
            if fname in ("__import__", "import_module") and len(cur.args) == 1:
                parts.append(arg.value)
                return ".".join(reversed(parts))
            if fname == "getattr" and len(cur.args) == 2:
                parts.append(arg.value)
                cur = cur.args[0]
            else:
                return None
        else:
            return None
    return None


def callee_names(func: ast.expr, resolve: Resolve | None) -> tuple[str, ...]:
    """Candidate dotted names of a callee: the resolver's answer first, then the plain text."""
    names: list[str] = []
    if resolve is not None:
        resolved = resolve(func)
        if isinstance(resolved, str) and resolved:
            names.append(resolved)
    plain = dotted_name(func)
    if plain and plain not in names:
        names.append(plain)
    return tuple(names)


def decoder_for(name: str) -> str | None:
    """Decoder kind for a dotted callee name, or None."""
    if name in _EXACT:
        return _EXACT[name]
    head, _, last = name.rpartition(".")
    module = head.rpartition(".")[2]
    if last in _SUFFIX:
        return _SUFFIX[last]
    if last == "decompress":
        return module if module in ("zlib", "gzip", "bz2", "lzma") else "auto"
    if last == "loads" and module == "marshal":
        return "marshal"
    if last == "loads" and module in _PICKLERS:
        return "pickle"
    if last in ("decode", "encode") and module in ("codecs", ""):
        return "codec" if last == "decode" else "codec-encode"
    return None


def _bytes(value: Any) -> bytes:
    if isinstance(value, (str, bytes)):
        return dt.to_bytes(value)
    raise NotConstant("decoder input is not text or bytes")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return _bytes(value).decode("latin-1")


class DecodeCalls:
    """Folder hook planning decoding calls; records each as a layer on the folder."""

    def __init__(self, resolve: Resolve | None, max_depth: int) -> None:
        self.resolve = resolve
        self.max_depth = max_depth

    def __call__(self, folder: Folder, node: ast.Call) -> Plan | None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "decrypt":
            plan = self._plan_decrypt(folder, func, node)
            if plan is not None:
                return plan
        kinds = [k for k in map(decoder_for, callee_names(func, self.resolve)) if k is not None]
        if kinds:
            return self._plan_decoder(folder, kinds[0], node)
        if isinstance(func, ast.Attribute) and func.attr in ("decode", "encode") and node.args:
            arg = node.args[0]  # Python 2: payload.decode('base64'), .encode('rot13')
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                codec = _BYTE_CODECS.get(norm_encoding(arg.value))
                if codec is not None and (func.attr == "decode" or codec == "rot13"):
                    return Plan((func.value,), lambda v, env: self.apply(folder, codec, v[0]))
        return None

    def _plan_decoder(self, folder: Folder, kind: str, node: ast.Call) -> Plan:
        keywords = {k.arg: k.value for k in node.keywords}
        data = (
            node.args[0]
            if node.args
            else next((keywords[k] for k in _DATA_KEYWORDS if k in keywords), None)
        )
        extra = (
            node.args[1]
            if len(node.args) > 1
            else next((keywords[k] for k in _EXTRA_KEYWORDS if k in keywords), None)
        )
        if data is None:
            raise NotConstant("decoder without input")
        return Plan((data, extra), lambda v, env: self._dispatch(folder, kind, v))

    def _dispatch(self, folder: Folder, kind: str, vals: list[Any]) -> Any:
        if kind in ("codec", "codec-encode"):
            codec = norm_encoding(vals[1])
            if codec in _BYTE_CODECS and (kind == "codec" or _BYTE_CODECS[codec] == "rot13"):
                return self.apply(folder, _BYTE_CODECS[codec], vals[0])
            if kind == "codec" and isinstance(vals[0], bytes):
                return vals[0].decode(*text_encoding(codec))
            raise NotConstant(f"unsupported codec {codec}")
        return self.apply(folder, kind, vals[0], vals[1])

    def note(self, folder: Folder, layer: str) -> None:
        """Record a decoding layer, enforcing ``max_depth``."""
        folder.note(layer, once=False)
        if len(folder.layers) > self.max_depth:
            raise NotConstant("too many layers")

    def apply(self, folder: Folder, kind: str, value: Any, extra: Any = None) -> Any:
        """Apply decoder ``kind`` to a folded value (bytes, text, or an Opaque record)."""
        if kind == "rot13":
            self.note(folder, "rot13")
            return dc.rot13(_text(value))
        data = _bytes(value)
        if kind == "unpad":
            return _unpad(data)
        if kind in ("marshal", "pickle"):
            self.note(folder, kind)
            if kind == "pickle":
                return dt.Opaque(dt.PICKLE_DATA, data)
            code = dt.binary_kind(data) == dt.MARSHAL_CODE
            return dt.Opaque(dt.MARSHAL_CODE if code else dt.MARSHAL_DATA, data)
        try:
            step = self._decode(kind, data, extra, folder.max_bytes)
        except dc.DecodeError as exc:
            raise NotConstant(str(exc)) from exc
        folder.truncated = folder.truncated or step.truncated
        self.note(folder, step.layer)
        return step.data

    @staticmethod
    def _decode(kind: str, data: bytes, extra: Any, cap: int) -> dc.Step:
        text = data.decode("latin-1")
        if kind == "base64":
            return dc.Step("base64", dc.b64(text, strict=False, max_bytes=cap))
        if kind == "base32":
            return dc.Step("base32", dc.b32(text, strict=False)[:cap])
        if kind == "hex":
            return dc.Step("hex", dc.unhex(text, strict=False)[:cap])
        if kind in ("base85", "ascii85"):
            return dc.Step(kind, dc.b85(text, ascii85=kind == "ascii85")[:cap])
        if kind == "zlib" and isinstance(extra, int) and not isinstance(extra, bool):
            return dc.inflate(data, extra, cap)
        return dc.decompress(kind, data, cap)

    def _plan_decrypt(self, folder: Folder, func: ast.Attribute, node: ast.Call) -> Plan | None:
        ctor = func.value
        named = folder.names.get(ctor.id) if isinstance(ctor, ast.Name) else None
        if isinstance(named, ast.Call):
            ctor = named  # cipher = Fernet(KEY) at module level
        if not isinstance(ctor, ast.Call):
            return None
        for name in callee_names(ctor.func, self.resolve):
            parts = name.split(".")
            if parts[-1] in ("Fernet",):
                key = slots(ctor, ("key",))[0]
                token = slots(node, ("token", "ttl"))[0]
                return Plan((key, token), lambda v, env: self._fernet(folder, *v))
            if parts[-2:] == ["AES", "new"]:
                return self._plan_aes(folder, ctor, node)
        return None

    def _fernet(self, folder: Folder, key: Any, token: Any) -> Any:
        from cryptography.fernet import Fernet, InvalidToken

        token_bytes = _bytes(token)
        if len(token_bytes) > 2 * folder.max_bytes:
            raise NotConstant("token too large")
        try:
            plain = Fernet(_bytes(key)).decrypt(token_bytes)
        except (InvalidToken, ValueError, TypeError) as exc:
            raise NotConstant("fernet decryption failed") from exc
        self.note(folder, "fernet")
        return plain

    def _plan_aes(self, folder: Folder, ctor: ast.Call, node: ast.Call) -> Plan:
        args = list(ctor.args)
        keywords = {k.arg: k.value for k in ctor.keywords}
        key = keywords.get("key", args[0] if args else None)
        mode_node = keywords.get("mode", args[1] if len(args) > 1 else None)
        iv = keywords.get("iv", keywords.get("IV", args[2] if len(args) > 2 else None))
        mode = _aes_mode(mode_node)
        data = slots(node, ("ciphertext", "output"))[0]
        if key is None or data is None or (mode == "cbc") != (iv is not None):
            raise NotConstant("unsupported AES call")
        return Plan((key, iv, data), lambda v, env: self._aes(folder, mode, *v))

    def _aes(self, folder: Folder, mode: str, key: Any, iv: Any, data: Any) -> bytes:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        key_b, blob = _bytes(key), _bytes(data)
        if (
            len(key_b) not in (16, 24, 32)
            or not blob
            or len(blob) % 16
            or len(blob) > folder.max_bytes
        ):
            raise NotConstant("bad AES key or data length")
        iv_b = _bytes(iv) if iv is not None else b""
        if mode == "cbc" and len(iv_b) != 16:
            raise NotConstant("bad AES IV")
        cipher = Cipher(algorithms.AES(key_b), modes.CBC(iv_b) if mode == "cbc" else modes.ECB())
        dec = cipher.decryptor()
        plain = dec.update(blob) + dec.finalize()
        self.note(folder, f"aes-{mode}")
        return _unpad(plain)


def _aes_mode(node: ast.AST | None) -> str:
    name = getattr(node, "attr", None) or getattr(node, "id", None)
    value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
    if name == "MODE_CBC" or value == 2:
        return "cbc"
    if name == "MODE_ECB" or value == 1:
        return "ecb"
    raise NotConstant("unsupported AES mode")


def _unpad(data: bytes) -> bytes:
    """Strip PKCS#7 padding when it is valid; otherwise return ``data`` unchanged."""
    n = data[-1] if data else 0
    if 1 <= n <= 16 and len(data) >= n and data[-n:] == bytes([n]) * n:
        return data[:-n]
    return data
