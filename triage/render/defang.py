"""Defang network indicators so reports can be pasted anywhere without live links.

:func:`defang` is for human-readable formats (terminal, Markdown, HTML). It rewrites:

* URL schemes: ``http://`` -> ``hxxp://``, ``https://`` -> ``hxxps://``, ``ftp://`` -> ``fxp://``;
  the host of any ``scheme://host`` has its dots bracketed whatever its TLD
  (``tcp://10.0.0.1`` -> ``tcp://10[.]0[.]0[.]1``);
* e-mail addresses: ``user@mail.example.com`` -> ``user[@]mail[.]example[.]com``;
* bare host names whose last label is in :data:`TLDS` (``evil.example.com``), and bare IPv4
  addresses (``1[.]2[.]3[.]4``);
* Discord/Telegram webhook URLs, always (see :func:`defang_webhooks`).

Ordinary Python must survive: ``os.path.join`` and ``self.run`` do not end in a TLD, and dotted
names that do (``logging.info``, ``self.app``) are left alone when they are called (followed by
``(``), assigned to, imported, or start with a common Python receiver name (``self``, ``os``...).
This is a heuristic: a bare ``x.info`` attribute may still be bracketed, which only costs looks.

Every rewrite is idempotent: ``defang(defang(s)) == defang(s)``.

:func:`defang_webhooks` is the minimal rewrite that machine formats (JSON, SARIF) apply to every
string: they keep code exact, but never carry a live Discord/Telegram webhook URL.
"""

from __future__ import annotations

import re
from typing import Any

TLDS = frozenset(
    "com net org io ru cn xyz top info biz co me app dev gg cc tk ml pw su ws site online club "
    "live link to ly sh icu invalid onion".split()
)
"""Last labels that make a bare dotted name a host (``invalid`` and ``onion`` are reserved and
never Python attributes, so they are safe extras)."""

_PY_RECEIVERS = frozenset(
    "self cls os sys re io json math time logging logger log app request response req resp "
    "args kwargs ctx config settings super socket subprocess shutil builtins np pd parser obj "
    "data result module string pathlib path base64 codecs zlib".split()
)
"""First labels that mark a dotted name as Python attribute access, not a host."""

_SEP = r"(?:\.|\[\.\])"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_BARE_DOT = re.compile(r"(?<!\[)\.(?!\])")

_URL = re.compile(
    r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://"
    r"(?P<user>[^\s/@'\"<>\\]*@)?"
    r"(?P<host>(?:[\w-]+|\[\.\]|\.)+)"
)
_EMAIL = re.compile(
    rf"(?<![\w.+%-])(?P<local>[\w.+%-]+)@(?P<host>(?:{_LABEL}{_SEP})+[A-Za-z]{{2,24}})(?![\w-])"
)
_BARE_HOST = re.compile(
    rf"(?<![\w.@/\[\]-])(?P<host>(?:{_LABEL}{_SEP})+(?P<tld>[A-Za-z]{{2,24}}))"
    r"(?![\w-]|\.[A-Za-z0-9]|\[\.\])"
)
_IPV4 = re.compile(
    rf"(?<![\w.\[\]-])(?P<ip>\d{{1,3}}{_SEP}\d{{1,3}}{_SEP}\d{{1,3}}{_SEP}\d{{1,3}})"
    r"(?![\w-]|\.\d|\[\.\])"
)
_IMPORT_BEFORE = re.compile(r"\b(?:from|import)\s+$")
_CALL_OR_ASSIGN_AFTER = re.compile(r"\s*(?:\(|=(?!=))")

_WEBHOOKS = re.compile(
    r"(?i)(?P<name>discord(?:app)?|telegram)\.(?P<tld>com|org)"
    r"(?P<path>/(?:api/(?:v\d+/)?webhooks/\d|bot\d))"
)
"""``discord.com/api/webhooks/<digits>``, ``discordapp.com/api/v9/webhooks/<digits>`` and
``api.telegram.org/bot<digits>``: live exfiltration endpoints."""


def _bracket_dots(host: str) -> str:
    return _BARE_DOT.sub("[.]", host)


def _scheme(scheme: str) -> str:
    lower = scheme.lower()
    if lower in ("http", "https"):
        return scheme[0] + ("XX" if scheme[1:3].isupper() else "xx") + scheme[3:]
    if lower == "ftp":
        return scheme[0] + ("X" if scheme[1].isupper() else "x") + scheme[2:]
    return scheme


def _url(m: re.Match[str]) -> str:
    user = m.group("user") or ""
    return f"{_scheme(m.group('scheme'))}://{user}{_bracket_dots(m.group('host'))}"


def _email(m: re.Match[str]) -> str:
    return f"{m.group('local')}[@]{_bracket_dots(m.group('host'))}"


def _looks_like_python(text: str, m: re.Match[str]) -> bool:
    first = re.split(r"\.|\[\.\]", m.group("host"), maxsplit=1)[0]
    return (
        first.lower() in _PY_RECEIVERS
        or _CALL_OR_ASSIGN_AFTER.match(text, m.end()) is not None
        or _IMPORT_BEFORE.search(text, 0, m.start()) is not None
    )


def _bare_hosts(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group("tld").lower() not in TLDS or _looks_like_python(text, m):
            return m.group(0)
        return _bracket_dots(m.group("host"))

    return _BARE_HOST.sub(repl, text)


def _ipv4(m: re.Match[str]) -> str:
    octets = re.split(r"\.|\[\.\]", m.group("ip"))
    if any(int(o) > 255 for o in octets):
        return m.group(0)
    return "[.]".join(octets)


def defang_webhooks(text: str) -> str:
    """Break live Discord/Telegram webhook URLs only (``discord[.]com/api/webhooks/...``).

    Args:
        text: any text.

    Returns:
        ``text`` with the dot of every webhook host bracketed; idempotent.
    """
    return _WEBHOOKS.sub(lambda m: f"{m.group('name')}[.]{m.group('tld')}{m.group('path')}", text)


def defang(text: str) -> str:
    """Defang URLs, e-mail addresses, bare hosts and IPv4 addresses in ``text``.

    Args:
        text: package-derived text (code, metadata, justifications).

    Returns:
        The defanged text; ``defang(defang(t)) == defang(t)``.
    """
    text = _URL.sub(_url, text)
    text = _EMAIL.sub(_email, text)
    text = _bare_hosts(text)
    text = _IPV4.sub(_ipv4, text)
    return defang_webhooks(text)


def defang_webhooks_deep(value: Any) -> Any:
    """Apply :func:`defang_webhooks` to every string (keys included) of a JSON-ready value."""
    if isinstance(value, str):
        return defang_webhooks(value)
    if isinstance(value, dict):
        return {defang_webhooks_deep(k): defang_webhooks_deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [defang_webhooks_deep(v) for v in value]
    return value
