"""Host and URL classification shared by the network and exfiltration detectors.

Pure functions over strings: find URLs, host names and IP addresses in text, and say what
kind of service a host is (raw IP, webhook, paste site, tunnel, out-of-band interaction
server, dynamic DNS, geolocation API, mining pool, file sharing, URL shortener, odd TLD,
well-known benign host). Nothing here resolves or contacts a host.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum


class HostKind(str, Enum):
    """What a destination is, as far as its name tells."""

    RAW_IP = "raw IP address"
    PRIVATE_IP = "private or loopback IP address"
    WEBHOOK = "chat webhook"
    PASTE = "paste site"
    TUNNEL = "tunnelling service"
    OAST = "out-of-band interaction server"
    DYNAMIC_DNS = "dynamic DNS host"
    GEOLOCATION = "IP geolocation service"
    MINING_POOL = "cryptocurrency mining pool"
    FILE_SHARING = "file-sharing host"
    SHORTENER = "URL shortener"
    ODD_TLD = "throwaway top-level domain"
    LOOKALIKE = "look-alike of a vendor's domain"
    BENIGN = "well-known benign host"


#: Kinds that make a hard-coded destination suspicious on their own.
SUSPICIOUS = frozenset({
    HostKind.RAW_IP, HostKind.WEBHOOK, HostKind.PASTE, HostKind.TUNNEL, HostKind.OAST,
    HostKind.DYNAMIC_DNS, HostKind.FILE_SHARING, HostKind.SHORTENER, HostKind.MINING_POOL,
    HostKind.ODD_TLD, HostKind.LOOKALIKE,
})
#: Kinds where receiving data is exfiltration to a malicious domain.
MALICIOUS_SINKS = frozenset({
    HostKind.RAW_IP, HostKind.PASTE, HostKind.TUNNEL, HostKind.OAST, HostKind.DYNAMIC_DNS,
    HostKind.FILE_SHARING, HostKind.ODD_TLD, HostKind.LOOKALIKE,
})
#: Kinds whose mere presence in code is malicious in any phase: interaction (OAST) servers
#: exist to record that a payload ran, and a vendor look-alike on a throwaway TLD is bait.
ALWAYS_MALICIOUS = frozenset({HostKind.OAST, HostKind.LOOKALIKE})

# Suffix lists: a host matches when it equals an entry or ends with "." + entry.
_SUFFIXES: dict[HostKind, frozenset[str]] = {
    HostKind.PASTE: frozenset({
        "pastebin.com", "pastebin.pl", "paste.ee", "hastebin.com", "hastebin.skyra.pw",
        "ghostbin.co", "ghostbin.com", "rentry.co", "rentry.org", "pastie.org", "dpaste.com",
        "dpaste.org", "controlc.com", "justpaste.it", "textbin.net", "termbin.com", "ix.io",
        "sprunge.us", "pastes.io", "katb.in", "paste.rs", "privatebin.net", "pastefy.app",
        "paste2.org", "codepad.org", "jsfiddle.net", "bpa.st", "paste.debian.net",
        "paste.centos.org", "snippet.host", "pastelink.net", "throwbin.io",
    }),
    HostKind.TUNNEL: frozenset({
        "ngrok.io", "ngrok.app", "ngrok-free.app", "ngrok.dev", "ngrok-free.dev",
        "trycloudflare.com", "serveo.net", "localtunnel.me", "loca.lt", "localhost.run",
        "lhr.life", "lhr.rocks", "pagekite.me", "bore.pub", "playit.gg", "ply.gg",
        "portmap.io", "portmap.host", "tunnelto.dev", "pinggy.io", "pinggy.link",
        "telebit.cloud", "localxpose.io", "loclx.io", "devtunnels.ms", "tunnelmole.net",
        "zrok.io", "expose.dev", "sharedwithexpose.com",
    }),
    HostKind.OAST: frozenset({
        "interact.sh", "interactsh.com", "oast.fun", "oast.live", "oast.site", "oast.online",
        "oast.pro", "oast.me", "oastify.com", "burpcollaborator.net", "requestbin.net",
        "requestbin.com", "pipedream.net", "webhook.site", "beeceptor.com", "canarytokens.com",
        "canarytokens.org", "dnslog.cn", "dnslog.link", "ceye.io", "requestcatcher.com",
        "hookbin.com", "requestinspector.com", "postb.in", "ptsv2.com", "ptsv3.com",
        "eyes.sh", "bxss.me", "xss.ht", "mockbin.org", "putsreq.com", "webhook.cool",
        "run.webtask.io", "requestrepo.com", "interactsh.pro", "dnslog.pw", "oast.cz",
        "oastify.net", "burpcollaborator.com", "canarytokens.net", "requestbin.io",
        "ceye.me", "dnslog.io", "webhook.app", "pipedream.com",
    }),
    HostKind.DYNAMIC_DNS: frozenset({
        "duckdns.org", "no-ip.com", "no-ip.org", "no-ip.biz", "no-ip.info", "noip.com",
        "ddns.net", "hopto.org", "zapto.org", "sytes.net", "myftp.biz", "myftp.org",
        "servehttp.com", "serveftp.com", "servebeer.com", "serveblog.net", "redirectme.net",
        "bounceme.net", "freedynamicdns.net", "dynu.com", "dynu.net", "afraid.org",
        "mooo.com", "chickenkiller.com", "dyndns.org", "dyndns.info", "dynv6.net", "ydns.eu",
        "3utilities.com", "ddnsking.com", "gotdns.ch", "myvnc.com", "onthewifi.com",
        "publicvm.com", "kozow.com", "ddns.me", "dnsalias.com", "dnsalias.net", "dynalias.com",
        "homeip.net", "strangled.net", "crabdance.com", "ignorelist.com", "jumpingcrab.com",
    }),
    HostKind.GEOLOCATION: frozenset({
        "ipinfo.io", "ip-api.com", "ipapi.co", "ipapi.com", "geolocation-db.com", "ipify.org",
        "ifconfig.me", "ifconfig.co", "icanhazip.com", "checkip.amazonaws.com",
        "checkip.dyndns.org", "checkip.dyndns.com", "ipwho.is", "ipwhois.app", "ipwhois.io",
        "myip.com", "ident.me", "tnedi.me", "wtfismyip.com", "ip.42.pl", "freegeoip.app",
        "extreme-ip-lookup.com", "ipgeolocation.io", "ip-api.io", "ipecho.net", "my-ip.io",
        "db-ip.com", "geojs.io", "ipapi.is", "ipdata.co", "iplocation.net", "myexternalip.com",
        "ipinfo.me", "api64.ipify.org", "seeip.org", "ip.sb", "ipregistry.co",
        "geoplugin.net", "keycdn.com/tools/geo", "whatismyipaddress.com", "enabledns.com",
    }),
    HostKind.MINING_POOL: frozenset({
        "minexmr.com", "supportxmr.com", "nanopool.org", "2miners.com", "f2pool.com",
        "nicehash.com", "moneroocean.stream", "minergate.com", "hashvault.pro",
        "herominers.com", "c3pool.com", "xmrpool.eu", "ethermine.org", "unmineable.com",
        "viabtc.com", "antpool.com", "slushpool.com", "braiins.com", "miningpoolhub.com",
        "kryptex.network", "p2pool.io", "xmrfast.com", "monerohash.com", "dwarfpool.com",
        "hiveon.net", "flexpool.io", "zergpool.com", "zpool.ca", "prohashing.com",
        "minexmr.fr", "xmr.pool.gntl.co.uk", "pool.xmr.pt", "gulf.moneroocean.stream",
    }),
    HostKind.FILE_SHARING: frozenset({
        "transfer.sh", "anonfiles.com", "anonfile.com", "gofile.io", "mediafire.com",
        "dl.dropbox.com", "dl.dropboxusercontent.com", "file.io", "0x0.st", "catbox.moe",
        "uguu.se", "bashupload.com", "filebin.net", "send.cm", "mega.nz", "mega.co.nz",
        "we.tl", "wetransfer.com", "temp.sh", "tmpfiles.org", "bayfiles.com", "oshi.at",
        "pixeldrain.com", "krakenfiles.com", "ufile.io", "anonymfile.com", "filetransfer.io",
        "qu.ax", "files.catbox.moe", "litterbox.catbox.moe", "sendspace.com", "zippyshare.com",
        "workupload.com", "1fichier.com", "filedropper.com", "easyupload.io", "upload.ee",
    }),
    HostKind.SHORTENER: frozenset({
        "bit.ly", "tinyurl.com", "is.gd", "t.ly", "cutt.ly", "rb.gy", "shorturl.at", "ow.ly",
        "goo.gl", "tiny.cc", "buff.ly", "rebrand.ly", "bl.ink", "v.gd", "shorturl.com",
        "s.id", "t.co", "clck.ru", "u.to", "tinyurl.is", "urlz.fr", "gg.gg",
    }),
    HostKind.BENIGN: frozenset({
        "pypi.org", "pythonhosted.org", "python.org", "readthedocs.io", "readthedocs.org",
        "github.com", "gitlab.com", "bitbucket.org", "sourceforge.net", "anaconda.org",
        "conda.io", "anaconda.com",
        "opensource.org", "apache.org", "w3.org", "creativecommons.org", "mozilla.org",
        "stackoverflow.com", "wikipedia.org", "gnu.org", "jupyter.org", "pytorch.org",
        "tensorflow.org", "huggingface.co", "pydata.org", "scipy.org", "numpy.org",
        "sphinx-doc.org", "json-schema.org", "ietf.org", "rfc-editor.org", "unicode.org",
        "iana.org", "microsoft.com", "apple.com", "google.com", "googleapis.com",
        "shields.io", "codecov.io", "travis-ci.org", "travis-ci.com", "circleci.com",
        "docker.com", "docker.io", "npmjs.org", "npmjs.com", "mit.edu", "kernel.org",
        "debian.org", "ubuntu.com", "fedoraproject.org", "xmlsoap.org", "openssl.org",
        "httpbin.org", "palletsprojects.com", "djangoproject.com",
        "readthedocs.com", "pyup.io", "python-requests.org", "urllib3.readthedocs.io",
        "tox.wiki", "pytest.org", "pre-commit.com", "typeshed.readthedocs.io",
    }),
}
#: Host suffixes of known mining pools (used for quick pre-filtering too).
MINING_POOL_HOSTS = _SUFFIXES[HostKind.MINING_POOL]
_ODD_TLDS = frozenset({
    "tk", "ml", "ga", "cf", "gq", "pw", "top", "xyz", "club", "icu", "buzz", "cyou", "rest",
    "monster", "sbs", "cfd", "click", "link", "loan", "work", "zip", "mov", "lol", "su", "onion",
    "bar", "quest", "rip", "live", "fun", "space", "site", "online", "uno", "bond", "best",
    "shop", "store", "win", "bid", "kim", "party", "review", "stream", "download", "racing",
})
#: Vendor names that look-alike domains borrow (matched as a whole hyphen/dot-separated token
#: of a host on a throwaway TLD, e.g. ``tg.aliyun-sdk-requests.xyz``).
_BRANDS = frozenset({
    "aliyun", "alibaba", "alicdn", "google", "googleapis", "microsoft", "windows", "azure",
    "amazon", "aws", "amazonaws", "github", "githubusercontent", "gitlab", "pypi", "python",
    "pythonhosted", "telegram", "discord", "discordapp", "apple", "icloud", "paypal",
    "binance", "metamask", "cloudflare", "npm", "npmjs", "docker", "huggingface", "openai",
    "nvidia", "tencent", "baidu", "facebook", "instagram", "steam", "steampowered", "roblox",
    "requests", "pip", "setuptools", "urllib3", "conda", "anaconda", "pytorch", "tensorflow",
})
#: Common TLDs accepted when a whole string is a bare host name (``evil.example.com``).
_KNOWN_TLDS = _ODD_TLDS | frozenset({
    "com", "net", "org", "io", "me", "co", "info", "biz", "us", "uk", "de", "ru", "cn", "fr",
    "nl", "eu", "in", "br", "jp", "it", "es", "pl", "ca", "au", "ch", "se", "no", "app", "dev",
    "sh", "st", "ai", "gg", "moe", "cloud", "so", "to", "ly", "is", "at", "be", "cc", "tv",
    "ws", "ms", "pro", "network", "tech", "page", "ir", "ua", "kr", "tw", "hk", "vn", "id",
})

_URL = re.compile(
    r"(?i)\b((?:https?|ftp|wss?|stratum\+(?:tcp|ssl|tls)|tcp|udp)://"
    r"[^\s'\"<>(){}\[\]\\`|;,]+)"
)
_HOSTPART = re.compile(r"^(?:[^@/]*@)?(\[[0-9a-f:.]+\]|[^:/?#]+)(?::(\d{1,5}))?", re.I)
_BARE_HOST = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,23}(?::\d{1,5})?(?:/\S*)?$",
    re.I,
)
_IPV4 = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}"
                   r"(?![\d.])")
_WEBHOOK_PATH = re.compile(
    r"(?i)(?:(?:canary\.|ptb\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/"
    r"|api\.telegram\.org/bot|hooks\.slack\.com/(?:services|workflows|triggers)/"
    r"|outlook\.office\.com/webhook|webhook\.office\.com/)"
)
_DISCORD_CDN = re.compile(r"(?i)(?:cdn\.discordapp\.com|media\.discordapp\.net)/attachments/")
_PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
_SECRET = re.compile(r"(?i)(webhooks/\d+/|/bot\d+:|hooks\.slack\.com/services/)[\w/-]+")
_DROPBOX_DL = re.compile(r"(?i)dropbox\.com/s/\S*[?&]dl=1|dropbox\.com/scl/")


@dataclass(frozen=True)
class Endpoint:
    """One destination found in text."""

    text: str
    """The URL or host as written."""
    host: str
    """Lower-cased host name or IP address."""
    port: int | None
    """Explicit port, if any."""
    path: str
    """Path and query after the host ("" if none)."""
    kinds: frozenset[HostKind]
    """What the host is."""

    @property
    def suspicious(self) -> bool:
        """True when the destination alone is suspicious."""
        return bool(self.kinds & SUSPICIOUS)


def _matches(host: str, suffixes: frozenset[str]) -> bool:
    parts = host.split(".")
    return any(".".join(parts[i:]) in suffixes for i in range(len(parts)))


def classify(host: str, path: str = "") -> frozenset[HostKind]:
    """Kinds of a host (and of its path, for webhooks and file links).

    Args:
        host: host name or IP address (any case, optional ``[ ]`` around IPv6).
        path: the URL path and query, when known.

    Returns:
        The set of kinds; empty when nothing is known about the host.
    """
    host = host.strip("[]").rstrip(".").lower()
    kinds: set[HostKind] = set()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        # documentation ranges (TEST-NET) count as raw public addresses, like any literal IP
        private = ip.is_loopback or ip.is_unspecified or ip.is_link_local or any(
            ip in net for net in _PRIVATE_NETS if net.version == ip.version)
        kinds.add(HostKind.PRIVATE_IP if private else HostKind.RAW_IP)
        return frozenset(kinds)
    full = f"{host}{path}"
    if _WEBHOOK_PATH.search(full):
        kinds.add(HostKind.WEBHOOK)
    if _DISCORD_CDN.search(full) or _DROPBOX_DL.search(full):
        kinds.add(HostKind.FILE_SHARING)
    for kind, suffixes in _SUFFIXES.items():
        if _matches(host, suffixes):
            kinds.add(kind)
    if host.startswith(("paste.", "pastebin.")):
        kinds.add(HostKind.PASTE)
    if host.rsplit(".", 1)[-1] in _ODD_TLDS and HostKind.BENIGN not in kinds:
        kinds.add(HostKind.ODD_TLD)
        if _BRANDS & set(re.split(r"[.-]", host.rsplit(".", 1)[0])):
            kinds.add(HostKind.LOOKALIKE)
    if kinds - {HostKind.BENIGN}:
        kinds.discard(HostKind.BENIGN)
    return frozenset(kinds)


def parse_url(url: str) -> Endpoint | None:
    """Split a URL (``scheme://host[:port]/path``) into an :class:`Endpoint`."""
    rest = url.split("://", 1)[1] if "://" in url else url
    m = _HOSTPART.match(rest)
    if not m or not m.group(1):
        return None
    host = m.group(1).strip("[]").rstrip(".").lower()
    if not host or not re.search(r"[a-z0-9]", host):
        return None
    port = int(m.group(2)) if m.group(2) else None
    path = rest[m.end():]
    return Endpoint(text=url, host=host, port=port, path=path, kinds=classify(host, path))


def find_endpoints(text: str, bare: bool = False) -> tuple[Endpoint, ...]:
    """Destinations written in ``text``.

    Args:
        text: any string (a URL, a shell command, source text).
        bare: also accept the whole string as a bare host (``evil.example.com``,
            ``203.0.113.5:4444``) and IPv4 addresses inside it; use this only for strings
            known to be destinations (network call arguments, socket addresses), since
            version numbers look like IP addresses.

    Returns:
        Endpoints in order of appearance, without duplicates.
    """
    out: list[Endpoint] = []
    seen: set[str] = set()
    for m in _URL.finditer(text[:200_000]):
        ep = parse_url(m.group(1).rstrip(".,"))
        if ep is not None and ep.text not in seen:
            seen.add(ep.text)
            out.append(ep)
    if not bare or out:
        return tuple(out)
    stripped = text.strip()
    if re.match(_IPV4.pattern + r"(?::\d{1,5})?(?:/\S*)?$", stripped):
        ep = parse_url(stripped)
        return (ep,) if ep is not None else ()
    if _BARE_HOST.match(stripped):
        tld = stripped.split("/", 1)[0].split(":", 1)[0].rsplit(".", 1)[-1].lower()
        if tld in _KNOWN_TLDS:
            ep = parse_url(stripped)
            if ep is not None:
                return (ep,)
    for m in _IPV4.finditer(text[:20_000]):
        ep = parse_url(m.group(0))
        if ep is not None and ep.text not in seen:
            seen.add(ep.text)
            out.append(ep)
    return tuple(out)


def host_kinds_in(text: str) -> frozenset[HostKind]:
    """Union of the kinds of every URL in ``text`` (handy for quick checks)."""
    kinds: set[HostKind] = set()
    for ep in find_endpoints(text):
        kinds |= ep.kinds
    return frozenset(kinds)


def describe(ep: Endpoint) -> str:
    """Short defanged description: ``hxxp://203.0.113[.]5:8080 (raw IP address)``."""
    kinds = sorted(k.value for k in ep.kinds if k is not HostKind.BENIGN)
    text = _SECRET.sub(r"\1<token>", ep.text)
    where = defang(text if len(text) <= 80 else text[:77] + "...")
    return f"{where} ({', '.join(kinds)})" if kinds else where


def defang(text: str) -> str:
    """Make URLs, host names and IPs in evidence text non-clickable (``hxxp://``, ``[.]``)."""
    text = re.sub(r"(?i)\bh(tt)(ps?)://", lambda m: f"hxx{m.group(2)}://", text)
    text = re.sub(r"(?i)\b(ftp|wss?|tcp|udp)://", r"\1[:]//", text)
    text = _IPV4.sub(lambda m: m.group(0)[::-1].replace(".", "].[", 1)[::-1], text)
    return _DEFANG_HOST.sub(lambda m: f"{m.group(1)}[.]{m.group(2)}", text)


_DEFANG_HOST = re.compile(
    r"(?i)\b((?:[a-z0-9-]+\.)*[a-z0-9-]+)\.(" + "|".join(sorted(_KNOWN_TLDS, key=len, reverse=True))
    + r")\b(?![\w(])"
)
