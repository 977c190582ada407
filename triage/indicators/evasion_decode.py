"""Defense-evasion detectors for decoding: encoded, encrypted and computed payloads.

Each candidate expression (a decoding call, a chr/xor/join construction, a reversed slice)
is folded statically with :func:`triage.deobfuscate.decode_expression`; the decoding
layers it reports decide the indicator and the decoded content decides the confidence
(code, URLs, commands and dangerous names are suspicious; images and certificates are not).
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from triage.indicators.base import FileContext, detector
from triage.indicators.system_common import defang, facts, is_exec, scaled
from triage.model import Signal, Statement

ENCODING_LAYERS = frozenset("base64 base32 hex base85 ascii85 zlib deflate gzip bz2 lzma rot13 "
                            "marshal pickle".split())
ENCRYPTION_LAYERS = frozenset({"fernet", "aes-cbc", "aes-ecb", "aes", "rc4"})
COMPUTED_LAYERS = frozenset({"chr", "xor", "reverse", "int-list"})
DANGEROUS = frozenset(
    "os sys subprocess system popen exec eval compile __import__ base64 b64decode socket "
    "requests urllib urlopen getattr builtins __builtins__ marshal zlib loads open write http "
    "connect ctypes powershell cmd bash sh chmod curl wget import_module check_output "
    "check_call run call Popen startfile webhook windll kernel32 shell32 ShellExecuteW "
    "VirtualAlloc decode decompress setattr globals locals".split())
_DECODER_SUFFIXES = ("b64decode", "b32decode", "b85decode", "a85decode", "b16decode",
                     "decodebytes", "decodestring", "unhexlify", "a2b_hex", "a2b_base64",
                     "fromhex", "decompress", "decrypt", "loads")
_BUILDERS = ("join", "decode", "bytes", "bytearray", "chr", "reversed")
_URLISH = re.compile(r"(?i)\b(https?|ftp)://|\b(cmd|powershell|bash|/bin/sh)\b|\.exe\b")


@dataclass(frozen=True)
class Decoding:
    """One statically decoded expression of a statement."""

    statement: Statement
    node: ast.AST
    text: str
    layers: tuple[str, ...]
    is_python: bool
    binary: bool

    @property
    def interesting(self) -> bool:
        """Decoded content is code, a URL/command, an executable, or a dangerous name."""
        if self.binary:
            head = self.text.partition("\n")[0].lower()
            return any(k in head for k in ("executable", "marshal", "bytecode", "pickle"))
        stripped = self.text.strip()
        return (self.is_python and len(stripped) > 12) or bool(_URLISH.search(stripped)) or (
            stripped.split(".")[-1] in DANGEROUS or stripped in DANGEROUS)


def _candidate(ctx: FileContext, node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        name = ctx.resolver.qualname(node.func) or ""
        leaf = node.func.attr if isinstance(node.func, ast.Attribute) else name.split(".")[-1]
        return leaf.endswith(_DECODER_SUFFIXES) or leaf in _BUILDERS or name in (
            "codecs.decode", "marshal.loads")
    if isinstance(node, ast.Subscript):
        sl = node.slice
        return isinstance(sl, ast.Slice) and sl.step is not None
    if isinstance(node, ast.BinOp):
        return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "chr"
                   for n in ast.walk(node)) or isinstance(node.op, ast.BitXor)
    return False


_CACHE: dict[int, tuple[FileContext, list[Decoding]]] = {}


def decodings(ctx: FileContext) -> list[Decoding]:
    """Outermost statically decodable expressions of every statement (cached per file)."""
    hit = _CACHE.get(id(ctx))
    if hit is not None and hit[0] is ctx:
        return hit[1]
    from triage.deobfuscate import decode_expression

    out: list[Decoding] = []
    ff = facts(ctx)
    names = dict(ctx.resolver.constants)
    for st, node in ctx.statements():
        if node is None:
            continue
        covered: set[int] = set()
        # own nodes list every parent before its children: outermost candidates come first
        for sub in ff.own(st):
            if id(sub) in covered or not _candidate(ctx, sub):
                continue
            try:
                dec = decode_expression(sub, ctx.resolver.qualname,  # type: ignore[arg-type]
                                        names=names, max_bytes=2**20)
            except (RecursionError, MemoryError, ValueError, TypeError, OverflowError):
                dec = None
            if dec is None or not dec.layers:
                continue
            covered.update(id(n) for n in ast.walk(sub))
            out.append(Decoding(st, sub, dec.text, tuple(dec.layers), dec.is_python, dec.binary))
    if len(_CACHE) > 32:
        _CACHE.clear()
    _CACHE[id(ctx)] = (ctx, out)
    return out


def _preview(d: Decoding) -> str:
    first = d.text.strip().splitlines()[0] if d.text.strip() else ""
    return defang(first, 70).replace("`", "'")


@detector("encoded_payload", "code_obfuscation_encoding")
def encoded_payload(ctx: FileContext) -> Iterator[Signal]:
    """base64/base32/base85/hex/zlib/marshal/rot13 decoding of literal payloads."""
    seen: set[str] = set()
    for d in decodings(ctx):
        layers = [x for x in d.layers if x in ENCODING_LAYERS]
        if not layers or d.statement.id in seen:
            continue
        if d.interesting:
            base = 0.85
        elif d.binary:
            continue  # images, certificates, fonts: data, not hidden intent
        else:
            base = 0.3
        seen.add(d.statement.id)
        yield ctx.signal("code_obfuscation_encoding", d.statement,
                         f"decodes a {'+'.join(layers)} literal to `{_preview(d)}`",
                         confidence=scaled(base, d.statement, ctx.source.path),
                         detector="encoded_payload")


def _literal_args(ctx: FileContext, call: ast.Call) -> bool:
    vals = [ctx.resolver.fold(a) for a in call.args]
    return bool(vals) and all(isinstance(v, (str, bytes)) for v in vals)


@detector("encrypted_payload", "code_obfuscation_encryption")
def encrypted_payload(ctx: FileContext) -> Iterator[Signal]:
    """Fernet/AES/XOR decryption of ciphertext shipped together with its key."""
    seen: set[str] = set()
    for d in decodings(ctx):
        enc = [x for x in d.layers if x in ENCRYPTION_LAYERS]
        if not enc and not ("xor" in d.layers and (d.interesting or len(d.text) > 40)):
            continue
        seen.add(d.statement.id)
        yield ctx.signal("code_obfuscation_encryption", d.statement,
                         f"decrypts an embedded {'/'.join(enc or ['xor'])} payload to "
                         f"`{_preview(d)}`", confidence=scaled(0.9, d.statement,
                                                             ctx.source.path),
                         detector="encrypted_payload")
    for call in ctx.calls():
        st, node = call.statement, call.node
        if st.id in seen or not (isinstance(node.func, ast.Attribute)
                                 and node.func.attr == "decrypt"):
            continue
        recv = node.func.value
        if not isinstance(recv, ast.Call):
            continue
        maker = ctx.resolver.qualname(recv.func) or ""
        if not maker.endswith(("Fernet", "AES.new", "DES.new", "ARC4.new", "Cipher")):
            continue
        if _literal_args(ctx, recv) and _literal_args(ctx, node):
            seen.add(st.id)
            yield ctx.signal("code_obfuscation_encryption", st,
                             f"decrypts an embedded ciphertext with a {maker.split('.')[-1]} "
                             "key shipped in the code", confidence=scaled(0.85, st,
                                                                          ctx.source.path),
                             detector="encrypted_payload")


@detector("computed_strings", "code_obfuscation_computational")
def computed_strings(ctx: FileContext) -> Iterator[Signal]:
    """chr/ord arithmetic, XOR loops, int lists and reversed strings that rebuild text."""
    seen: set[str] = set()
    for d in decodings(ctx):
        comp = [x for x in d.layers if x in COMPUTED_LAYERS]
        if not comp or d.statement.id in seen or d.binary:
            continue
        text = d.text.strip()
        if len(text) < 4 and not d.interesting:
            continue
        base = 0.8 if d.interesting else 0.3
        seen.add(d.statement.id)
        yield ctx.signal("code_obfuscation_computational", d.statement,
                         f"rebuilds `{_preview(d)}` with {'/'.join(comp)} arithmetic",
                         confidence=scaled(base, d.statement, ctx.source.path),
                         detector="computed_strings")


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_CODE_RUNNERS = frozenset({"exec", "eval", "compile", "execfile", "marshal.loads", "pickle.loads",
                           "__pyarmor__", "types.FunctionType", "runpy.run_path"})


def executes(ctx: FileContext, st: Statement, processes: bool = True) -> bool:
    """True when the statement runs Python code (exec/eval/compile/loads), or with
    ``processes`` also a process."""
    if ctx.index.node_of(st.id) is None:
        return bool(re.search(r"\b(exec|eval|compile)\s*\(", st.text))
    for call in facts(ctx).calls(st):
        if call.name in _CODE_RUNNERS or call.name.endswith(".__pyarmor__"):
            return True
        if processes and is_exec(call.name):
            return True
    return False
