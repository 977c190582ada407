"""Reverse-shell detector: a socket to a remote host with a shell attached to it.

Three shapes: (1) socket connect + ``os.dup2(s.fileno(), 0..2)`` + a shell spawn;
(2) a shell process whose stdin/stdout are the socket; (3) a receive-execute loop
(``s.recv`` output passed to a shell or ``exec``). Shell one-liners (``bash -i >&
/dev/tcp/...``, ``nc -e``, ``mkfifo ... | nc``, PowerShell TCPClient) are matched in strings.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import CallSite, Detector, FileContext, detector, dotted
from triage.indicators.hosts import defang
from triage.indicators.network_calls import SHELL_APIS, facts
from triage.indicators.network_flow import clamp, context_bonus
from triage.model import Signal, Statement

_ONE_LINERS = re.compile(
    r"(?i)(?:bash|sh)\s+-i\s*[<>&0-9 ]*/dev/(?:tcp|udp)/"
    r"|/dev/tcp/[\w.-]+/\d+\s*0?[<>]&"
    r"|\bnc(?:at)?\b[^|;&\n]*\s-[a-z]*[ec]\s+(?:/bin/|cmd|powershell)"
    r"|mkfifo[^\n]*\|\s*(?:/bin/)?(?:ba)?sh[^\n]*\|\s*nc(?:at)?\b"
    r"|\bsocat\b[^\n]*exec:[^\n]*(?:sh|bash|cmd)"
    r"|new-object\s+(?:system\.)?net\.sockets\.tcpclient"
    r"|\bpty\.spawn\(\s*['\"](?:/bin/)?(?:ba)?sh['\"]\s*\)[^\n]*"
    r"|os\.dup2\(\s*\w+\.fileno\(\)\s*,\s*[0-2]\s*\)"
)
_SHELLS = re.compile(r"(?i)(?:^|[/\\\s'\"])(?:ba|z|da|k)?sh(?:\.exe)?\b|cmd(?:\.exe)?\b|"
                     r"powershell(?:\.exe)?\b")
_EXEC = frozenset({"exec", "eval"})


def _is_socket_expr(ctx: FileContext, expr: ast.AST, sockets: set[str]) -> bool:
    """``s``, ``s.fileno()``, ``self.sock.fileno()`` where s is a socket handle."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and \
            expr.func.attr == "fileno":
        expr = expr.func.value
    return bool(isinstance(expr, (ast.Name, ast.Attribute)) and
                (ctx.resolver.qualname(expr) in sockets or _dotted(expr) in sockets))


def _dotted(expr: ast.AST) -> str:
    return dotted(expr) or ""


def _spawns_shell(ctx: FileContext, cs: CallSite) -> bool:
    if cs.name not in SHELL_APIS:
        return False
    if cs.name == "pty.spawn":
        return True
    flow = facts(ctx).flow
    text = flow.text(cs.node.args[0], cs.statement) if cs.node.args else None
    return bool(text and _SHELLS.search(text))


def _structural(ctx: FileContext) -> Iterator[tuple[Statement, str]]:
    nf = facts(ctx)
    connects: dict[str, list[tuple[Statement, str]]] = {}
    sockets: dict[str, set[str]] = {}
    for nc in nf.calls:
        if nc.api in ("socket.connect", "socket.connect_ex", "socket.create_connection"):
            recv = _dotted(nc.node.func.value) if isinstance(nc.node.func, ast.Attribute) \
                else ""
            connects.setdefault(nc.statement.scope, []).append((nc.statement, nc.dest or "?"))
            sockets.setdefault(nc.statement.scope, set()).add(recv)
    for (scope, name), items in nf.flow.by_scope.items():
        if any(isinstance(a.value, ast.Call) and
               nf.flow.call_name(a.value) in ("socket.create_connection", "socket.socket")
               for a in items):
            sockets.setdefault(scope, set()).add(name)
    for scope, conns in connects.items():
        socks = sockets.get(scope, set()) | sockets.get("<module>", set())
        attach: list[tuple[Statement, str]] = []
        dup2 = 0
        spawn: Statement | None = None
        for cs in ctx.calls():
            if cs.statement.scope != scope:
                continue
            if cs.name == "os.dup2" and cs.node.args and \
                    _is_socket_expr(ctx, cs.node.args[0], socks):
                dup2 += 1
                attach.append((cs.statement, "duplicates the socket onto standard I/O"))
            elif _spawns_shell(ctx, cs):
                spawn = cs.statement
                io = [k.value for k in cs.node.keywords if k.arg in ("stdin", "stdout",
                                                                       "stderr")]
                if any(_is_socket_expr(ctx, v, socks) for v in io):
                    dup2 += 3
                attach.append((cs.statement, "starts a shell bound to the socket"))
            elif cs.name in _EXEC | SHELL_APIS and _recv_feeds(ctx, cs, socks):
                dup2 += 3
                spawn = cs.statement
                attach.append((cs.statement, "runs commands received from the socket"))
        if dup2 >= 2 and spawn is not None:
            for st, dest in conns:
                yield st, f"connects a socket to {dest} and attaches a shell to it"
            yield from attach


def _recv_feeds(ctx: FileContext, cs: CallSite, sockets: set[str]) -> bool:
    """True when a call's arguments come from ``sock.recv(...)`` in the same scope."""
    flow = facts(ctx).flow
    for arg in cs.node.args:
        for sub in ast.walk(arg):
            node: ast.AST | None = sub
            if isinstance(sub, ast.Name):
                hit = flow.reaching(sub.id, cs.statement)
                node = hit.value if hit else None
            for inner in ast.walk(node) if node is not None else ():
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                        inner.func.attr in ("recv", "recvfrom", "makefile") and \
                        _is_socket_expr(ctx, inner.func.value, sockets):
                    return True
    return False


@detector("network_reverse_shell", "code_establishing_reverse_shell")
def reverse_shell(ctx: FileContext) -> Iterator[Signal]:
    """Socket + shell wiring, receive-execute loops and shell one-liners."""
    seen: set[str] = set()
    found = list(_structural(ctx))
    for st, _, value in ctx.strings():
        m = _ONE_LINERS.search(value)
        if m:
            found.append((st, f"holds the reverse-shell command `{m.group(0)[:60]}`"))
    for sh in facts(ctx).shells:
        m = _ONE_LINERS.search(sh.command)
        if m:
            found.append((sh.statement, f"runs the reverse-shell command `{m.group(0)[:60]}`"))
    for st, why in found:
        if st.id in seen:
            continue
        seen.add(st.id)
        yield ctx.signal("code_establishing_reverse_shell", st, defang(why),
                         confidence=clamp(0.85 + context_bonus(st, ctx.source.path) / 2),
                         detector="network_reverse_shell")


DETECTORS: tuple[Detector, ...] = (reverse_shell,)
