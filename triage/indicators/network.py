"""Detectors of the network family: suspicious servers, geolocation, mining, TLS.

Download and reverse-shell detectors live in ``network_download.py`` and
``network_shell.py``; all of them share the per-file facts of ``network_calls.py``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators import network_download, network_shell
from triage.indicators.base import Detector, FileContext, detector, dotted
from triage.indicators.hosts import (
    ALWAYS_MALICIOUS,
    MINING_POOL_HOSTS,
    Endpoint,
    HostKind,
    defang,
    describe,
    find_endpoints,
)
from triage.indicators.network_calls import NetCall, facts, shell_endpoints
from triage.indicators.network_flow import clamp, context_bonus, is_test_path
from triage.indicators.system_common import is_network
from triage.model import FileKind, Phase, Signal, Statement

#: Base confidence per kind of destination, for a plain connection.
_ACCESS = {
    HostKind.RAW_IP: 0.75, HostKind.TUNNEL: 0.8, HostKind.OAST: 0.8, HostKind.DYNAMIC_DNS: 0.7,
    HostKind.PASTE: 0.7, HostKind.SHORTENER: 0.55, HostKind.ODD_TLD: 0.5,
    HostKind.LOOKALIKE: 0.8,
}
_MINERS = re.compile(
    r"(?i)\b(xmrig|cpuminer|minerd|ethminer|nbminer|t-rex|lolminer|phoenixminer|nanominer|"
    r"xmr-stak|ccminer|cgminer|bfgminer|srbminer|gminer|teamredminer)\b"
)
_MINER_FLAGS = re.compile(r"(?i)--donate-level|--coin[= ]+(monero|xmr)|-a\s+rx/0|--algo[= ]rx/0")
_STRATUM = re.compile(r"(?i)stratum\+(tcp|ssl|tls)://")
_POOL_HINT = re.compile("|".join(sorted(
    {re.escape(h.split(".")[-2]) for h in MINING_POOL_HOSTS if "." in h}, key=len, reverse=True)))


def _decoded(ctx: FileContext) -> bool:
    return ctx.source.kind is FileKind.DECODED


def _worst(eps: tuple[Endpoint, ...], table: dict[HostKind, float]) -> tuple[Endpoint, float]:
    best: tuple[Endpoint, float] | None = None
    for ep in eps:
        for kind in ep.kinds:
            score = table.get(kind, 0.0)
            if best is None or score > best[1]:
                best = (ep, score)
    assert best is not None
    return best


def _access_score(nc: NetCall) -> tuple[str, float] | None:
    scored = [ep for ep in nc.endpoints if ep.kinds & _ACCESS.keys()]
    if scored:
        ep, score = _worst(tuple(scored), _ACCESS)
        port = f" port {ep.port}," if ep.port and ep.port not in (80, 443) else ""
        return f"{describe(ep)},{port}", score + (0.05 if port else 0.0)
    if nc.obfuscated and nc.endpoints and HostKind.BENIGN not in nc.endpoints[0].kinds:
        return f"{describe(nc.endpoints[0])} whose address is decoded at run time,", 0.75
    return None


def sends_data(ctx: FileContext, nc: NetCall) -> bool:
    """True when the call sends something beyond a constant URL."""
    flow = facts(ctx).flow
    for role, expr in nc.payload:
        if role == "headers":
            continue
        if role == "url":
            text = flow.text(expr, nc.statement) or "{}"
            if "{}" in text:
                return True
        elif not isinstance(expr, ast.Constant):
            return True
    return False


def host_header(ctx: FileContext, nc: NetCall) -> str | None:
    """The ``Host:`` header value when it names another host than the URL (domain fronting)."""
    for role, expr in nc.payload:
        if role != "headers" or not isinstance(expr, ast.Dict):
            continue
        for key, value in zip(expr.keys, expr.values, strict=True):
            if key is None or str(ctx.resolver.fold(key) or "").lower() != "host":
                continue
            host = ctx.resolver.fold(value)
            if isinstance(host, str) and host.strip():
                host = host.strip().split(":", 1)[0].lower()
                if not any(host == e.host or host.endswith("." + e.host) for e in nc.endpoints):
                    return host
    return None


#: Code-hosting hosts that are not beacons on their own (besides the BENIGN allowlist).
_CODE_HOSTS = ("githubusercontent.com", "github.io", "gitlab.io", "bitbucket.io")


def _fixed_bonus(st: Statement, path: str, decoded: bool) -> float:
    """Context bonus for destinations malicious in any phase (only test files lower it)."""
    return context_bonus(st, path, decoded, any_phase=True)


def _beacon(ctx: FileContext, nc: NetCall) -> Endpoint | None:
    """An unknown, fixed host contacted from module level at install/start-up/import time."""
    st = nc.statement
    if nc.kind not in ("http", "socket") or st.phase is Phase.CALL or not nc.endpoints:
        return None
    # module level, or a method of an install command class (``PostInstall.run``); helper
    # functions of setup.py that a release sub-command reaches are not install-time code
    if st.scope != "<module>" and not (st.phase is Phase.INSTALL and "." in st.scope):
        return None
    if is_test_path(ctx.source.path):
        return None
    ep = nc.endpoints[0]
    if ep.kinds & {HostKind.BENIGN, HostKind.PRIVATE_IP} or ep.host in ("localhost", ""):
        return None
    if any(ep.host == h or ep.host.endswith("." + h) for h in _CODE_HOSTS):
        return None  # data files fetched from code hosting: judged by what is done with them
    if "{}" in ep.host or "." not in ep.host.strip("."):
        return None
    return ep


@detector("network_suspicious_server", "code_accessing_server_with_suspicious_domain")
def suspicious_server(ctx: FileContext) -> Iterator[Signal]:
    """Requests and connections to raw IPs, tunnels, OAST, dynamic DNS, paste sites; any
    unknown host contacted at install/import time; interaction hosts named anywhere."""
    seen: set[str] = set()
    path, decoded = ctx.source.path, _decoded(ctx)
    flow = facts(ctx).flow
    for nc in facts(ctx).calls:
        if nc.kind == "dns" or nc.statement.id in seen:
            continue
        always = any(e.kinds & ALWAYS_MALICIOUS for e in nc.endpoints)
        fronted = host_header(ctx, nc)
        found = _access_score(nc)
        if found is None and fronted:
            found = (f"{describe(nc.endpoints[0])} with a Host header for "
                     f"{defang(fronted)} (domain fronting),", 0.6) if nc.endpoints else None
        beacon = _beacon(ctx, nc) if found is None else None
        if found is None and beacon is not None:
            # host data in the request is exfiltration, reported by that family instead
            if any(flow.source_of(e, nc.statement) for r, e in nc.payload if r != "headers"):
                continue
            found = (f"{describe(beacon)}, a host with no known role,", 0.6)
        if found is None:
            continue
        # sending data there is exfiltration, reported by the exfiltration family instead
        if sends_data(ctx, nc) and not (always or beacon or fronted):
            continue
        what, score = found
        seen.add(nc.statement.id)
        bonus = _fixed_bonus(nc.statement, path, decoded) if always else \
            context_bonus(nc.statement, path, decoded)
        conf = clamp(score + (min(bonus, 0.0) if beacon else bonus))
        yield ctx.signal("code_accessing_server_with_suspicious_domain", nc.statement,
                         f"{nc.api} contacts {what} {_when(nc.statement)}",
                         confidence=conf, detector="network_suspicious_server")
    for sh in facts(ctx).shells:
        if sh.statement.id in seen:
            continue
        eps = tuple(e for e in shell_endpoints(sh.command) if e.kinds & _ACCESS.keys())
        if not eps:
            continue
        ep, score = _worst(eps, _ACCESS)
        seen.add(sh.statement.id)
        bonus = _fixed_bonus(sh.statement, path, decoded) if ep.kinds & ALWAYS_MALICIOUS \
            else context_bonus(sh.statement, path, decoded)
        yield ctx.signal("code_accessing_server_with_suspicious_domain", sh.statement,
                         f"shell command contacts {describe(ep)} {_when(sh.statement)}",
                         confidence=clamp(score + bonus), detector="network_suspicious_server")
    yield from _interaction_hosts(ctx, seen)


def _interaction_hosts(ctx: FileContext, seen: set[str]) -> Iterator[Signal]:
    """Out-of-band interaction (OAST) hosts written anywhere in code, docstrings excepted."""
    reported = {e.host for nc in facts(ctx).calls if nc.statement.id in seen
                for e in nc.endpoints}
    for st, _node, value in ctx.strings():
        if st.id in seen or "." not in value or _is_docstring(ctx.index.node_of(st.id)):
            continue
        ep = next((e for e in find_endpoints(value, bare=True)
                   if HostKind.OAST in e.kinds and e.host not in reported), None)
        if ep is None:
            continue
        seen.add(st.id)
        reported.add(ep.host)
        conf = clamp(0.75 + _fixed_bonus(st, ctx.source.path, _decoded(ctx)))
        yield ctx.signal("code_accessing_server_with_suspicious_domain", st,
                         f"names the {describe(ep)}, which only records that code ran "
                         f"{_when(st)}", confidence=conf, detector="network_suspicious_server")


def _is_docstring(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _when(st: Statement) -> str:
    return {Phase.INSTALL: "at install time", Phase.STARTUP: "at interpreter start-up",
            Phase.IMPORT: "at import time"}.get(st.phase, "when called")


@detector("network_geolocation", "code_geolocation_lookup")
def geolocation(ctx: FileContext) -> Iterator[Signal]:
    """Look-ups of the host's public IP or location (ipinfo.io, ip-api.com, ipify...)."""
    seen: set[str] = set()
    hits: list[tuple[Statement, Endpoint]] = []
    flow = facts(ctx).flow
    for nc in facts(ctx).calls:
        if nc.dest_expr is not None and flow.uses_params(nc.dest_expr, nc.statement):
            continue  # looks up an address the caller supplies, not the host's own
        hits += [(nc.statement, e) for e in nc.endpoints if HostKind.GEOLOCATION in e.kinds]
    for sh in facts(ctx).shells:
        hits += [(sh.statement, e) for e in shell_endpoints(sh.command)
                 if HostKind.GEOLOCATION in e.kinds]
    for st, ep in hits:
        if st.id in seen:
            continue
        seen.add(st.id)
        conf = clamp(0.55 + context_bonus(st, ctx.source.path, _decoded(ctx)))
        yield ctx.signal("code_geolocation_lookup", st,
                         f"queries {describe(ep)} for the host's public IP or location "
                         f"{_when(st)}", confidence=conf, detector="network_geolocation")


@detector("network_mining", "code_connect_mining_pool")
def mining(ctx: FileContext) -> Iterator[Signal]:
    """Stratum URLs, mining-pool hosts and miner command lines."""
    seen: set[str] = set()
    texts: list[tuple[Statement, str, bool]] = [(st, v, False) for st, _, v in ctx.strings()]
    texts += [(sh.statement, sh.command, True) for sh in facts(ctx).shells]
    for st, value, command in texts:
        if st.id in seen:
            continue
        miner = _MINERS.search(value)
        if _STRATUM.search(value):
            why, conf = "a stratum mining-pool URL", 0.85
        elif _POOL_HINT.search(value) and any(
                HostKind.MINING_POOL in e.kinds for e in find_endpoints(value, bare=True)):
            why, conf = "a known mining-pool host", 0.75
        elif miner and (command or _MINER_FLAGS.search(value)):
            why, conf = f"the miner `{miner.group(1)}`", 0.7
        else:
            continue
        seen.add(st.id)
        yield ctx.signal("code_connect_mining_pool", st, f"uses {why} {_when(st)}",
                         confidence=clamp(conf + context_bonus(st, ctx.source.path)),
                         detector="network_mining")


_HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options",
                           "request", "send", "urlopen", "stream", "fetch", "Session", "Client",
                           "AsyncClient", "ClientSession", "TCPConnector", "PoolManager",
                           "ProxyManager", "HTTPSConnectionPool", "create_connection",
                           "wrap_socket", "connect", "WebSocketApp", "create_default_context"})


def _http_call(ctx: FileContext, call: ast.Call) -> bool:
    """A call where ``verify=False`` means certificate checks: an HTTP/TLS client or one of
    its request methods (numpy's ``array_function_dispatch(..., verify=False)`` is not)."""
    name = ctx.resolver.qualname(call.func) or dotted(call.func) or ""
    if is_network(name) or name.split(".")[0] in _TLS_MODULES:
        return True
    return name.rsplit(".", 1)[-1] in _HTTP_METHODS


_TLS_MODULES = frozenset({"requests", "httpx", "urllib3", "aiohttp", "pycurl", "ssl",
                          "websocket", "websockets", "http", "urllib", "tornado", "grpc",
                          "treq", "niquests", "httplib2", "socket"})


def _tls_off(ctx: FileContext, node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg in ("verify", "verify_ssl", "ssl") and isinstance(kw.value, ast.Constant) \
                    and kw.value.value is False and _http_call(ctx, node):
                return f"{kw.arg}=False"
        return None
    if isinstance(node, ast.keyword) and node.arg == "cert_reqs":
        q = ctx.resolver.qualname(node.value) or ""
        if q.endswith("CERT_NONE") or (isinstance(node.value, ast.Constant)
                                       and node.value.value == "CERT_NONE"):
            return "cert_reqs=CERT_NONE"
    if isinstance(node, ast.Attribute):
        q = ctx.resolver.qualname(node) or ""
        if q == "ssl._create_unverified_context":
            return "ssl._create_unverified_context"
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        tgt = node.targets[0]
        if isinstance(tgt, ast.Attribute) and tgt.attr in ("check_hostname", "verify") and \
                isinstance(node.value, ast.Constant) and node.value.value is False:
            return f".{tgt.attr} = False"
        if isinstance(tgt, ast.Attribute) and tgt.attr == "verify_mode" and \
                (ctx.resolver.qualname(node.value) or "").endswith("CERT_NONE"):
            return ".verify_mode = CERT_NONE"
    return None


@detector("network_tls", "code_disable_tls_verification")
def tls_disabled(ctx: FileContext) -> Iterator[Signal]:
    """verify=False, unverified SSL contexts, CERT_NONE, check_hostname=False."""
    risky = {nc.statement.id for nc in facts(ctx).calls if nc.suspicious}
    for st, node in ctx.statements():
        if node is None:
            continue
        for sub in ctx.own(st):
            what = _tls_off(ctx, sub)
            if what is None:
                continue
            conf = 0.3 + (0.3 if st.id in risky else 0.0) + (
                0.1 if st.phase in (Phase.INSTALL, Phase.STARTUP) else 0.0)
            if st.phase is Phase.CALL and st.id not in risky:
                conf = 0.2
            yield ctx.signal("code_disable_tls_verification", st,
                             f"turns off certificate checks ({what}) {_when(st)}",
                             confidence=clamp(conf), detector="network_tls")
            break


#: Per-file detectors of this family, in the order they run.
DETECTORS: tuple[Detector, ...] = (
    suspicious_server, geolocation, mining, tls_disabled,
    *network_download.DETECTORS, *network_shell.DETECTORS,
)
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = ()
