"""Find the network operations of one file: HTTP requests, sockets, mail/FTP, DNS look-ups,
shell commands, and local helper functions that wrap a request.

The result (:class:`NetFacts`) is computed once per file and shared by the network and
exfiltration detectors through :func:`facts`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from triage.indicators.base import FileContext, dotted
from triage.indicators.hosts import Endpoint, find_endpoints
from triage.indicators.network_flow import Flow
from triage.model import Statement

_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request",
                         "stream", "send"})
_HTTP_MODULES = ("requests", "requests.api", "httpx", "aiohttp", "urllib3", "treq", "grequests",
                 "cloudscraper", "niquests")
_URLOPEN = {
    "urllib.request.urlopen": "open", "urllib2.urlopen": "open", "urllib.urlopen": "open",
    "six.moves.urllib.request.urlopen": "open", "urllib.request.urlretrieve": "retrieve",
    "urllib.urlretrieve": "retrieve", "six.moves.urllib.request.urlretrieve": "retrieve",
    "wget.download": "retrieve", "aiohttp.request": "request", "pycurl.Curl": "open",
    # the user's browser fetches the URL: a ping-back that needs no HTTP library
    "webbrowser.open": "browse", "webbrowser.open_new": "browse",
    "webbrowser.open_new_tab": "browse",
}
_REQUEST_CTORS = frozenset({"urllib.request.Request", "urllib2.Request",
                            "six.moves.urllib.request.Request", "requests.Request"})
#: Constructors whose result is a handle used for later network calls -> handle kind.
CONSTRUCTORS = {
    "requests.Session": "session", "requests.session": "session", "httpx.Client": "session",
    "httpx.AsyncClient": "session", "aiohttp.ClientSession": "session",
    "cloudscraper.create_scraper": "session", "urllib3.PoolManager": "pool",
    "urllib3.ProxyManager": "pool", "urllib.request.build_opener": "opener",
    "urllib2.build_opener": "opener", "socket.socket": "socket",
    "socket.create_connection": "socket", "http.client.HTTPConnection": "httpconn",
    "http.client.HTTPSConnection": "httpconn", "httplib.HTTPConnection": "httpconn",
    "httplib.HTTPSConnection": "httpconn", "smtplib.SMTP": "smtp", "smtplib.SMTP_SSL": "smtp",
    "ftplib.FTP": "ftp", "ftplib.FTP_TLS": "ftp", "telnetlib.Telnet": "socket",
    "dns.resolver.Resolver": "resolver",
}
_CONNECTING = frozenset({"socket.create_connection", "http.client.HTTPConnection",
                         "http.client.HTTPSConnection", "httplib.HTTPConnection",
                         "httplib.HTTPSConnection", "smtplib.SMTP", "smtplib.SMTP_SSL",
                         "ftplib.FTP", "ftplib.FTP_TLS", "telnetlib.Telnet"})
DNS_APIS = frozenset({"socket.gethostbyname", "socket.gethostbyname_ex", "socket.getaddrinfo",
                      "dns.resolver.resolve", "dns.resolver.query", "dns.resolver.Resolver"})
SHELL_APIS = frozenset({
    "os.system", "os.popen", "subprocess.call", "subprocess.run", "subprocess.Popen",
    "subprocess.check_call", "subprocess.check_output", "subprocess.getoutput",
    "subprocess.getstatusoutput", "commands.getoutput", "commands.getstatusoutput",
    "os.startfile", "pty.spawn", "asyncio.create_subprocess_shell",
    "asyncio.create_subprocess_exec", "os.execv", "os.execvp", "os.execl", "os.execlp",
    "os.spawnl", "os.spawnv", "os.spawnlp", "os.spawnvp", "win32api.ShellExecute",
    "ctypes.windll.shell32.ShellExecuteW", "os.popen2", "os.popen3",
})
_PAYLOAD_KEYWORDS = ("data", "json", "params", "files", "content", "body", "headers", "cookies")


@dataclass(frozen=True)
class NetCall:
    """One network operation."""

    statement: Statement
    node: ast.Call
    api: str
    """Resolved API (``requests.post``, ``socket.connect``) or ``helper()`` for wrappers."""
    kind: str
    """http, socket, smtp, ftp, dns or wrapper."""
    dest: str | None
    """Best-effort destination text (URL, ``host:port``); None when unknown."""
    endpoints: tuple[Endpoint, ...]
    obfuscated: bool
    """The destination was decoded or assembled by obfuscation."""
    payload: tuple[tuple[str, ast.expr], ...]
    """(role, expression) pairs of what is sent (``data``, ``url``, ``files``, ``body``...)."""
    saves_to: str | None = None
    """Output path when the API itself writes the response to disk (urlretrieve)."""
    extra: tuple[Statement, ...] = ()
    """Helper statements that belong to the operation (``req = Request(url, data)``)."""
    dest_expr: ast.expr | None = None

    @property
    def suspicious(self) -> bool:
        """True when the destination alone is suspicious."""
        return self.obfuscated or any(e.suspicious for e in self.endpoints)


@dataclass(frozen=True)
class ShellCall:
    """A shell or process command (or a fallback line that reads like one)."""

    statement: Statement
    node: ast.Call | None
    api: str
    command: str


@dataclass
class NetFacts:
    """Network operations of one file."""

    flow: Flow
    calls: list[NetCall] = field(default_factory=list)
    shells: list[ShellCall] = field(default_factory=list)


def _arg(call: ast.Call, index: int, *names: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg in names:
            return kw.value
    if index < len(call.args) and not isinstance(call.args[index], ast.Starred):
        return call.args[index]
    return None


class _Builder:
    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.flow = Flow(ctx)
        self.out = NetFacts(self.flow)
        self.sock_dest: dict[tuple[str, str], tuple[str | None, tuple[Endpoint, ...]]] = {}

    def handle_kind(self, receiver: ast.expr, st: Statement) -> str | None:
        if isinstance(receiver, ast.Call):
            return CONSTRUCTORS.get(self.flow.call_name(receiver))
        name = dotted(receiver)
        if not name:
            return None
        for a in self.flow.assignments(name, st):
            if isinstance(a.value, ast.Call):
                kind = CONSTRUCTORS.get(self.flow.call_name(a.value))
                if kind:
                    return kind
            if isinstance(a.value, ast.Call) and isinstance(a.value.func, ast.Attribute) \
                    and a.value.func.attr in ("wrap_socket", "accept"):
                return "socket"
        return None

    def dest_info(self, expr: ast.expr | None, st: Statement
                  ) -> tuple[str | None, tuple[Endpoint, ...], bool]:
        if expr is None:
            return None, (), False
        if isinstance(expr, ast.Tuple) and expr.elts:
            host = self.flow.text(expr.elts[0], st)
            port = self.flow.text(expr.elts[1], st) if len(expr.elts) > 1 else None
            if port is None and len(expr.elts) > 1:
                folded = expr.elts[1]
                port = str(folded.value) if isinstance(folded, ast.Constant) else None
            text = f"{host}:{port}" if host and port else host
            obf = self.flow.obfuscated(expr.elts[0], st)
        else:
            text = self.flow.text(expr, st)
            obf = self.flow.obfuscated(expr, st)
        eps = find_endpoints(text, bare=True) if text else ()
        return text, eps, obf and bool(eps)

    def add(self, st: Statement, node: ast.Call, api: str, kind: str, dest: ast.expr | None,
            payload: list[tuple[str, ast.expr]], saves: ast.expr | None = None,
            extra: tuple[Statement, ...] = ()) -> None:
        # a Request(...) object or a name bound to one carries the real URL and data
        if isinstance(dest, ast.Name):
            hit = self.flow.reaching(dest.id, st)
            if hit and isinstance(hit.value, ast.Call) and \
                    self.flow.call_name(hit.value) in _REQUEST_CTORS:
                extra += (hit.statement,)
                payload += self._http_payload(hit.value, 0)
                dest = _arg(hit.value, 0, "url")
        elif isinstance(dest, ast.Call) and self.flow.call_name(dest) in _REQUEST_CTORS:
            payload += self._http_payload(dest, 0)
            dest = _arg(dest, 0, "url")
        text, eps, obf = self.dest_info(dest, st)
        if dest is not None and kind == "http":
            payload.append(("url", dest))
        save_text = self.flow.text(saves, st) if saves is not None else None
        self.out.calls.append(NetCall(st, node, api, kind, text, eps, obf, tuple(payload),
                                      save_text, extra, dest))

    @staticmethod
    def _http_payload(call: ast.Call, url_index: int) -> list[tuple[str, ast.expr]]:
        out = [(kw.arg, kw.value) for kw in call.keywords if kw.arg in _PAYLOAD_KEYWORDS]
        if len(call.args) > url_index + 1:
            out.append(("data", call.args[url_index + 1]))
        return out

    def visit(self, st: Statement, call: ast.Call, name: str) -> None:
        head, _, verb = name.rpartition(".")
        if head in _HTTP_MODULES and verb in _HTTP_VERBS:
            idx = 1 if verb == "request" else 0
            self.add(st, call, name, "http", _arg(call, idx, "url"),
                     self._http_payload(call, idx))
        elif name in _URLOPEN:
            idx = 1 if _URLOPEN[name] == "request" else 0
            saves = _arg(call, 1, "filename", "out") if _URLOPEN[name] == "retrieve" else None
            self.add(st, call, name, "http", _arg(call, idx, "url"),
                     self._http_payload(call, idx) if _URLOPEN[name] == "open" else [], saves)
        elif name in _CONNECTING:
            kind = CONSTRUCTORS[name]
            self.add(st, call, name, "socket" if kind == "httpconn" else kind,
                     _arg(call, 0, "host", "address"), [])
        elif name in DNS_APIS and name != "dns.resolver.Resolver":
            self.add(st, call, name, "dns", _arg(call, 0, "host", "qname", "hostname"), [])
        elif isinstance(call.func, ast.Attribute):
            self.visit_method(st, call, call.func)

    def visit_method(self, st: Statement, call: ast.Call, func: ast.Attribute) -> None:
        kind = self.handle_kind(func.value, st)
        attr = func.attr
        recv = dotted(func.value) or ""
        if kind == "session" and attr in _HTTP_VERBS:
            idx = 1 if attr == "request" else 0
            self.add(st, call, f"session.{attr}", "http", _arg(call, idx, "url"),
                     self._http_payload(call, idx))
        elif kind == "pool" and attr in ("request", "urlopen"):
            self.add(st, call, f"pool.{attr}", "http", _arg(call, 1, "url"),
                     self._http_payload(call, 1))
        elif kind == "opener" and attr == "open":
            self.add(st, call, "opener.open", "http", _arg(call, 0, "fullurl"),
                     self._http_payload(call, 0))
        elif kind == "socket" and attr in ("connect", "connect_ex"):
            self.add(st, call, f"socket.{attr}", "socket", _arg(call, 0, "address"), [])
            last = self.out.calls[-1]
            self.sock_dest[(st.scope, recv)] = (last.dest, last.endpoints)
            self.sock_dest.setdefault(("*", recv), (last.dest, last.endpoints))
        elif kind == "socket" and attr in ("send", "sendall", "sendto", "sendfile", "write"):
            dest_expr = _arg(call, 1, "address") if attr == "sendto" else None
            payload = [("file" if attr == "sendfile" else "data", call.args[0])] \
                if call.args else []
            self.add(st, call, f"socket.{attr}", "socket", dest_expr, payload)
            if dest_expr is None:
                known = self.sock_dest.get((st.scope, recv)) or self.sock_dest.get(("*", recv))
                if known:
                    last = self.out.calls.pop()
                    self.out.calls.append(NetCall(last.statement, last.node, last.api,
                                                  last.kind, known[0], known[1], False,
                                                  last.payload))
        elif kind == "httpconn" and attr in ("request", "putrequest"):
            body = _arg(call, 2, "body")
            self.add(st, call, f"http.{attr}", "http", None,
                     [("body", body)] if body is not None else [])
        elif kind == "smtp" and attr in ("sendmail", "send_message"):
            msg = _arg(call, 2 if attr == "sendmail" else 0, "msg")
            self.add(st, call, f"smtp.{attr}", "smtp", None, [("data", msg)] if msg else [])
        elif kind == "ftp" and attr in ("storbinary", "storlines"):
            fobj = _arg(call, 1, "fp")
            self.add(st, call, f"ftp.{attr}", "ftp", None, [("file", fobj)] if fobj else [])
        elif kind == "resolver" and attr in ("resolve", "query"):
            self.add(st, call, f"resolver.{attr}", "dns", _arg(call, 0, "qname"), [])

    def shell(self, st: Statement, call: ast.Call, name: str) -> None:
        if not call.args and not call.keywords:
            return
        first = _arg(call, 0, "args", "command", "cmd", "path")
        if name in ("win32api.ShellExecute", "ctypes.windll.shell32.ShellExecuteW"):
            first = _arg(call, 2, "file")
        text = self.flow.text(first, st) if first is not None else None
        if name.startswith(("os.exec", "os.spawn")):
            text = " ".join(self.flow.text(a, st) or "{}" for a in call.args[1:])
        if text:
            self.out.shells.append(ShellCall(st, call, name, text))

    def wrappers(self) -> None:
        """Calls of local functions whose request URL or data come from their parameters."""
        found: dict[str, tuple[str, tuple[str, ...], NetCall]] = {}
        for nc in list(self.out.calls):
            scope = nc.statement.scope
            if scope == "<module>" or nc.endpoints:
                continue
            dest_params = self.flow.uses_params(nc.dest_expr, nc.statement) \
                if nc.dest_expr is not None else set()
            if dest_params:
                found[scope.rsplit(".", 1)[-1]] = (scope, self.flow.params[scope], nc)
        if not found:
            return
        for cs in self.ctx.calls():
            func = cs.node.func
            if isinstance(func, ast.Name):
                fname = func.id
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id in ("self", "cls"):
                fname = func.attr
            else:
                continue
            if fname not in found or cs.statement.scope == found[fname][0]:
                continue
            scope, params, inner = found[fname]
            if params and params[0] == "self":
                params = params[1:]
            bound = {p: a for p, a in zip(params, cs.node.args, strict=False)}
            bound.update({kw.arg: kw.value for kw in cs.node.keywords if kw.arg})
            dest_params = self.flow.uses_params(inner.dest_expr, inner.statement) \
                if inner.dest_expr is not None else set()
            # in parameter order (a set's order changes with the hash seed), preferring the
            # argument that names an endpoint: send(ip, port, msg) sends to ip, not port
            candidates = [bound[p] for p in params if p in dest_params and p in bound]
            dest = candidates[0] if candidates else None
            text, eps, obf = self.dest_info(dest, cs.statement)
            for cand in candidates[1:]:
                if eps:
                    break
                c_text, c_eps, c_obf = self.dest_info(cand, cs.statement)
                if c_eps:
                    dest, text, eps, obf = cand, c_text, c_eps, c_obf
            payload = [("data", v) for p, v in bound.items() if p not in dest_params]
            if dest is not None:
                payload.append(("url", dest))
            self.out.calls.append(NetCall(
                cs.statement, cs.node, f"{fname}()", "wrapper", text, eps, obf, tuple(payload),
                None, (inner.statement, *inner.extra), dest))


def _build(ctx: FileContext) -> NetFacts:
    b = _Builder(ctx)
    for cs in ctx.calls():
        if cs.name in SHELL_APIS:
            b.shell(cs.statement, cs.node, cs.name)
        else:
            b.visit(cs.statement, cs.node, cs.name)
    b.wrappers()
    for st, node in ctx.statements():
        if node is None and st.text.strip():
            b.out.shells.append(ShellCall(st, None, "line", st.text))
    return b.out


_CACHE: list[tuple[FileContext, NetFacts]] = []


def facts(ctx: FileContext) -> NetFacts:
    """Network facts of a file, computed once (the last few files are cached)."""
    for cached_ctx, result in _CACHE:
        if cached_ctx is ctx:
            return result
    result = _build(ctx)
    _CACHE.append((ctx, result))
    del _CACHE[:-4]
    return result


NET_TOOL = re.compile(
    r"(?i)\b(curl|wget|invoke-webrequest|iwr|invoke-restmethod|irm|certutil|bitsadmin|"
    r"start-bitstransfer|downloadfile|downloadstring|downloaddata|webclient|nc|ncat|netcat|"
    r"telnet|socat|tftp|ftp|scp|nslookup|dig|urlopen|urlretrieve|requests\.(?:get|post))\b"
)
_NC_HOST = re.compile(
    r"(?i)\b(?:nc|ncat|netcat|telnet)(?:\s+-[a-z]+(?:\s+/\S+)?)*\s+([\w.-]+)\s+(\d{1,5})"
)


def shell_endpoints(command: str) -> tuple[Endpoint, ...]:
    """Destinations of a shell command that uses a network tool ("" commands give none)."""
    if not NET_TOOL.search(command) and "/dev/tcp/" not in command:
        return ()
    eps = list(find_endpoints(command))
    for m in _NC_HOST.finditer(command):
        eps += find_endpoints(f"{m.group(1)}:{m.group(2)}", bare=True)
    tcp = re.search(r"/dev/tcp/([\w.-]+)/(\d+)", command)
    if tcp:
        eps += find_endpoints(f"{tcp.group(1)}:{tcp.group(2)}", bare=True)
    return tuple(eps)
