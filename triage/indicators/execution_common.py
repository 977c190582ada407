"""Shared facts for the execution and stage detectors: callee classes, data origins, defanging.

Nothing here raises signals. :func:`facts` computes, once per file, where local names are
assigned and which paths the file writes; :func:`origin` follows a value back through those
assignments so ``code = b64decode(x); exec(code)`` is seen as executing decoded data.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from triage.indicators.base import FileContext
from triage.model import Phase, Statement

EXEC_FUNCS = frozenset({"exec", "eval", "execfile", "builtins.exec", "builtins.eval"})
DECODE_FUNCS = frozenset({
    "base64.b64decode", "base64.b32decode", "base64.b16decode", "base64.b85decode",
    "base64.a85decode", "base64.decodebytes", "base64.decodestring", "base64.urlsafe_b64decode",
    "base64.standard_b64decode", "base64.b32hexdecode", "codecs.decode", "binascii.a2b_base64",
    "binascii.unhexlify", "binascii.a2b_hex", "bytes.fromhex", "bytearray.fromhex",
    "zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress", "marshal.loads",
    "pybase64.b64decode",
})
#: ``x.decode('base64')`` and friends (Python 2 codecs).
_PY2_CODECS = frozenset({"base64", "base_64", "hex", "zlib", "zip", "rot13", "rot_13", "bz2",
                         "base64_codec", "hex_codec", "zlib_codec", "uu"})
NETWORK_SUFFIXES = (
    "requests.get", "requests.post", "requests.request", "requests.Session", "urlopen",
    "urllib.request.Request", "urlretrieve", "httpx.get", "httpx.post", "urllib3.request",
    "http.client.HTTPConnection", "http.client.HTTPSConnection", "pycurl.Curl",
    "aiohttp.ClientSession", "requests.api.get",
)
_MAX_DEPTH = 4
_TLDS = ("com|net|org|io|ru|cn|xyz|top|info|biz|me|co|app|dev|gg|sh|cc|tk|ml|ga|cf|pw|su|in|us|"
         "uk|de|fr|site|online|club|pro|live|link|tech|store|icu|space|fun|win|vip|shop|cloud|"
         "host|rip|invalid|example|onion|ngrok|workers|pages|repl|glitch|tr|ir|kz|ua|br|jp|kr|"
         "eu|nl|pl|ws|to|ly|gd|is|lol|zip|mov|xxx|site|website|today|world|network|zone")
_DOMAIN_DOT = re.compile(r"(?i)(?<=[a-z0-9-])\.(?=(?:" + _TLDS + r")\b(?![(]))")


def defang(text: str, limit: int = 160) -> str:
    """Shorten ``text`` and make URLs and domains unclickable (hxxp://, example[.]com)."""
    out = re.sub(r"(?i)\bhttp(s?)://", r"hxxp\1://", text)
    out = re.sub(r"(?i)\bftp://", "fxp://", out)
    out = _DOMAIN_DOT.sub("[.]", out)
    out = re.sub(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3})\.(\d{1,3})\b", r"\1[.]\2", out)
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 3] + "..."


def early(st: Statement) -> bool:
    """True when the statement runs without a user call (install, start-up or import time)."""
    return st.phase is not Phase.CALL


def top_level(st: Statement) -> bool:
    """True for module-level code that runs at install/start-up/import time, and for code of
    install hooks (the phase inference inside import-time functions is only a heuristic)."""
    return st.phase is not Phase.CALL and (st.scope == "<module>" or st.phase is Phase.INSTALL)


def callee(ctx: FileContext, call: ast.Call) -> str:
    """Resolved dotted name of a call's callee ('' when unknown)."""
    from triage.indicators.base import dotted

    return ctx.resolver.qualname(call.func) or dotted(call.func) or ""


def is_network(name: str) -> bool:
    """True for callees that fetch data over the network."""
    if name.split(".")[-1] in ("urlopen", "urlretrieve", "recv", "recv_into"):
        return True
    return any(name == s or name.endswith("." + s) for s in NETWORK_SUFFIXES)


def is_decode(ctx: FileContext, call: ast.Call, name: str) -> bool:
    """True for calls that decode encoded data (base64, hex, zlib, marshal, rot13...)."""
    if name in DECODE_FUNCS or name.split(".")[-1] in ("b64decode", "decompress", "unhexlify"):
        return True
    if isinstance(call.func, ast.Attribute) and call.func.attr == "decode" and call.args:
        codec = ctx.resolver.fold(call.args[0])
        return isinstance(codec, str) and codec.lower().replace("-", "_") in _PY2_CODECS
    return False


def is_decrypt(name: str) -> bool:
    """True for decryption calls (Fernet/AES/ARC4 ``decrypt``, custom ``*decrypt*`` helpers)."""
    last = name.split(".")[-1].lower()
    return "decrypt" in last or last in ("fernet", "xor", "rc4", "arc4")


@dataclass
class Facts:
    """Per-file facts shared by detectors (computed once per file)."""

    assigns: dict[tuple[str, str], list[tuple[int, ast.AST, Statement]]] = field(
        default_factory=dict)
    """(scope, name) -> [(line, value expression, statement)] in source order."""
    written: set[str] = field(default_factory=set)
    """Paths (folded strings, basenames) and local names of files this file writes."""
    downloaded: set[str] = field(default_factory=set)
    """Paths and local names of files downloaded straight to disk (urlretrieve)."""


_CACHE: dict[tuple[int, str], tuple[FileContext, object]] = {}
T = TypeVar("T")


def per_file(ctx: FileContext, key: str, compute: Callable[[FileContext], T]) -> T:
    """``compute(ctx)``, cached per file context (detectors share the work)."""
    hit = _CACHE.get((id(ctx), key))
    if hit is not None and hit[0] is ctx:
        return hit[1]  # type: ignore[return-value]
    if len(_CACHE) > 256:
        _CACHE.clear()
    value = compute(ctx)
    _CACHE[(id(ctx), key)] = (ctx, value)
    return value


def facts(ctx: FileContext) -> Facts:
    """The :class:`Facts` of a file (cached)."""
    return per_file(ctx, "facts", _compute)


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _target_names(e)]
    return []


_WRITE_MODE = re.compile(r"[wax+]")
_CMD_WRITE = re.compile(
    r"(?i)(?:-outfile|-o|--output|>)\s*['\"]?([^'\"\s]+)|"
    r"\b(?:move|copy|ren|rename|mv|cp)\s+\S+\s+['\"]?([^'\"\s&|;]+)")


def _path_keys(value: str) -> set[str]:
    value = value.strip().strip("'\"")
    if not value:
        return set()
    base = re.split(r"[\\/]", value)[-1]
    keys = {value, base} if base else {value}
    return {k for k in keys if len(k) > 1 and re.search(r"[A-Za-z0-9]", k)}


def _compute(ctx: FileContext) -> Facts:
    f = Facts()
    for st, node in ctx.statements():
        if node is None:
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for name in _target_names(t):
                    f.assigns.setdefault((st.scope, name), []).append((st.start_line, node.value,
                                                                       st))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                for name in _target_names(item.optional_vars) if item.optional_vars else []:
                    f.assigns.setdefault((st.scope, name), []).append(
                        (st.start_line, item.context_expr, st))
    for site in ctx.calls():
        _note_write(ctx, f, site.node, site.name)
    for _st, _node, value in ctx.strings():
        for m in _CMD_WRITE.finditer(value):
            f.written |= _path_keys(m.group(1) or m.group(2) or "")
    return f


def _note_write(ctx: FileContext, f: Facts, call: ast.Call, name: str) -> None:
    last = name.split(".")[-1]
    if last == "open" and call.args:
        mode = call.args[1] if len(call.args) > 1 else next(
            (k.value for k in call.keywords if k.arg == "mode"), None)
        mode_s = ctx.resolver.fold(mode) if mode is not None else None
        if isinstance(mode_s, str) and _WRITE_MODE.search(mode_s):
            _add_path(ctx, f, call.args[0])
    elif last in ("urlretrieve", "copy", "copyfile", "copy2", "move", "rename", "replace"):
        if len(call.args) >= 2:
            _add_path(ctx, f, call.args[1])
            if last == "urlretrieve":
                _add_path(ctx, f, call.args[1], downloaded=True)
    elif last in ("write_bytes", "write_text") and isinstance(call.func, ast.Attribute):
        _add_path(ctx, f, call.func.value)
    elif last in ("write", "writelines") and isinstance(call.func, ast.Attribute):
        for n in _target_names(call.func.value):
            f.written.add(n)


def _add_path(ctx: FileContext, f: Facts, expr: ast.AST, downloaded: bool = False) -> None:
    value = ctx.resolver.fold(expr)
    keys: set[str] = set()
    if isinstance(value, str):
        keys |= _path_keys(value)
    if isinstance(expr, ast.Name):
        keys.add(expr.id)
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            keys |= _path_keys(sub.value)
    keys.discard("")
    (f.downloaded if downloaded else f.written).update(keys)
    if downloaded:
        f.written.update(keys)


def assigned(ctx: FileContext, name: str, st: Statement) -> tuple[ast.AST, Statement] | None:
    """The value last assigned to ``name`` before ``st`` in its scope (else module scope)."""
    fx = facts(ctx)
    for scope in (st.scope, "<module>"):
        rows = fx.assigns.get((scope, name))
        if not rows:
            continue
        before = [r for r in rows if r[0] < st.start_line or r[2].id == st.id]
        pick = before[-1] if before else (rows[-1] if scope == "<module>" else None)
        if pick is not None and pick[2].id != st.id:
            return pick[1], pick[2]
    return None


@dataclass(frozen=True)
class Origin:
    """What a value is made of, following local names through their assignments."""

    nodes: tuple[ast.AST, ...]
    """Every AST node of the expression and of the assignments it came from."""
    statements: tuple[Statement, ...]
    """The assignment statements followed (closest first)."""


def origin(ctx: FileContext, expr: ast.AST, st: Statement) -> Origin:
    """Nodes and assignment statements a value is built from (bounded depth)."""
    nodes: list[ast.AST] = []
    stmts: list[Statement] = []
    seen: set[str] = set()
    work: list[tuple[ast.AST, Statement, int]] = [(expr, st, 0)]
    while work:
        cur, where, depth = work.pop()
        for sub in ast.walk(cur):
            nodes.append(sub)
            if (isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)
                    and depth < _MAX_DEPTH and sub.id not in seen):
                seen.add(sub.id)
                hit = assigned(ctx, sub.id, where)
                if hit is not None:
                    stmts.append(hit[1])
                    work.append((hit[0], hit[1], depth + 1))
    return Origin(tuple(nodes), tuple(stmts))


@dataclass(frozen=True)
class Traits:
    """Kinds of calls found in an origin."""

    decode: str = ""
    decrypt: str = ""
    network: str = ""
    file_read: bool = False
    exec_: bool = False


def traits(ctx: FileContext, nodes: tuple[ast.AST, ...]) -> Traits:
    """Classify the calls among ``nodes`` (decode, decrypt, network fetch, file read)."""
    decode = decrypt = network = ""
    file_read = exec_ = False
    for sub in nodes:
        if not isinstance(sub, ast.Call):
            continue
        name = callee(ctx, sub)
        if not decode and is_decode(ctx, sub, name):
            decode = name or "decode"
        elif not decrypt and is_decrypt(name):
            decrypt = name
        elif not network and is_network(name):
            network = name
        elif name.split(".")[-1] in ("open", "read_text", "read_bytes"):
            file_read = True
        elif name in EXEC_FUNCS or name == "compile":
            exec_ = True
    return Traits(decode, decrypt, network, file_read, exec_)
