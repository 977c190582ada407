"""Detectors of the exfiltration family: data, files, webhooks, suspicious hosts, DNS.

A network operation (see ``network_calls.py``) exfiltrates when what it sends carries host
or user facts (a simple intra-file taint by variable name, ``network_flow.py``), a file's
content, or anything at all to a webhook, paste site, tunnel, interaction server or raw IP.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators import exfiltration_dns
from triage.indicators.base import Detector, FileContext, detector
from triage.indicators.hosts import (
    MALICIOUS_SINKS,
    HostKind,
    defang,
    describe,
    find_endpoints,
)
from triage.indicators.network import host_header, sends_data
from triage.indicators.network_calls import NetCall, facts, shell_endpoints
from triage.indicators.network_flow import SENSITIVE_PATHS, clamp, context_bonus
from triage.model import FileKind, Signal, Statement

_REAL_WEBHOOK = re.compile(
    r"(?i)webhooks/\d{15,}/[\w-]{20,}|api\.telegram\.org/bot\d{6,}:[\w-]{20,}"
    r"|hooks\.slack\.com/services/T\w+/B\w+/\w+"
)
_WEBHOOK_CLASSES = ("DiscordWebhook", "SyncWebhook", "AsyncWebhook", "Webhook", "TeleBot",
                    "telegram.Bot", "dhooks.Webhook", "WebhookClient")
_SEND_METHODS = frozenset({"execute", "send", "send_message", "send_document", "send_photo",
                           "post", "edit", "sendMessage", "sendDocument"})
_CURL_FILE = re.compile(r"(?i)(?:-F\s*['\"]?[\w-]+=@|--form\s+['\"]?[\w-]+=@|-T\s+|--upload-file)"
                        r"\s*['\"]?([^'\"\s]+)")
_CURL_DATA = re.compile(r"(?i)\s(?:-d|--data(?:-binary|-raw|-urlencode)?|-X\s*POST)\b")
_SHELL_FACTS = re.compile(r"(?i)\$\((?:whoami|hostname|id|uname[^)]*|cat [^)]+|env)\)|`whoami`|"
                          r"%username%|%computername%|\$env:(?:username|computername)|\$USER\b|"
                          r"\$HOME\b|\$HOSTNAME\b")


def _file_read(ctx: FileContext, nc: NetCall) -> tuple[str, Statement | None] | None:
    """(path description, statement that opens it) when the call sends a file's content."""
    flow = facts(ctx).flow
    for role, expr in nc.payload:
        if role in ("url", "headers"):
            continue
        targets: list[tuple[ast.AST, Statement]] = [(expr, nc.statement)]
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Name):
                hit = flow.reaching(sub.id, nc.statement)
                if hit is not None:
                    targets.append((hit.value, hit.statement))
        for node, st in targets:
            for sub in ast.walk(node):
                if not isinstance(sub, ast.Call):
                    continue
                name = flow.call_name(sub)
                if name in ("open", "io.open", "codecs.open") or name.endswith(
                        (".read_bytes", ".read_text", "Path.open")):
                    arg = sub.args[0] if sub.args else (
                        sub.func.value if isinstance(sub.func, ast.Attribute) else None)
                    path = flow.text(arg, st) if arg is not None else None
                    return path or "a local file", (st if st is not nc.statement else None)
        if role in ("files", "file") and not isinstance(expr, ast.Constant):
            return "a local file", None
    return None


def _secret(taint: str) -> bool:
    """True when the data sent is a secret (credential file, cloud metadata)."""
    return "credentials" in taint or (taint.startswith("the file ") and _sensitive(taint))


def _sensitive(path: str) -> bool:
    low = path.lower()
    return any(p in low for p in SENSITIVE_PATHS)


def _from_call(ctx: FileContext, nc: NetCall, fixed: set[tuple[str, str]]
               ) -> Iterator[tuple[str, Statement, str, float]]:
    """Exfiltration hits of one network call; ``fixed`` collects the (statement, indicator)
    keys that are malicious in any phase (their confidence is not lowered in functions)."""
    flow = facts(ctx).flow
    # a URL built from host data leaks it only when the host itself is fixed
    taint = next((t for role, e in nc.payload
                  if role != "headers" and (role != "url" or nc.endpoints)
                  for t in [flow.source_of(e, nc.statement)] if t), None)
    read = _file_read(ctx, nc)
    hooks = [e for e in nc.endpoints if HostKind.WEBHOOK in e.kinds]
    bad = [e for e in nc.endpoints if e.kinds & MALICIOUS_SINKS]
    fronted = host_header(ctx, nc)
    benign = bool(nc.endpoints) and all(HostKind.BENIGN in e.kinds for e in nc.endpoints) \
        and not fronted
    where = describe(nc.endpoints[0]) if nc.endpoints else "a computed destination"
    if fronted:
        where += f" with a Host header for {fronted} (domain fronting)"
    sts = (nc.statement, *nc.extra)
    if hooks:
        real = bool(_REAL_WEBHOOK.search(hooks[0].text))
        for st in sts:
            yield ("code_exfiltration_webhook", st, f"{nc.api} posts to the hard-coded "
                   f"{describe(hooks[0])}", 0.8 if real else 0.35)
    if bad and (taint or read or sends_data(ctx, nc)):
        what = taint or (f"the file {read[0]}" if read else "data")
        odd_only = all(e.kinds & MALICIOUS_SINKS == {HostKind.ODD_TLD} for e in bad)
        for st in sts:
            yield ("code_exfiltration_to_malicious_domain", st,
                   f"{nc.api} sends {what} to {describe(bad[0])}", 0.6 if odd_only else 0.8)
    if taint:
        base = 0.25 if benign else 0.75
        if _secret(taint) and not benign:
            base = 0.85  # credentials sent out: malicious in any phase
            fixed.update((st.id, "code_exfiltration_data") for st in sts)
        elif fronted:
            base += 0.1
        for st in sts:
            yield ("code_exfiltration_data", st, f"{nc.api} sends {taint} to {where}", base)
    if read:
        path, opener = read
        base = 0.25 if benign else 0.55 + (0.2 if _sensitive(path) else 0.0) + (
            0.1 if hooks or bad else 0.0)
        if not nc.endpoints and (path == "a local file" or path.strip("{}/") == ""):
            base = min(base, 0.3)  # a file the caller chose, sent where the caller says
        for st in (*sts, *((opener,) if opener else ())):
            yield ("code_exfiltration_file", st, f"{nc.api} uploads {path} to {where}", base)


def _from_shells(ctx: FileContext) -> Iterator[tuple[str, Statement, str, float]]:
    for sh in facts(ctx).shells:
        eps = shell_endpoints(sh.command)
        if not eps or not re.search(r"(?i)\b(curl|wget|invoke-webrequest|iwr|invoke-restmethod|"
                                    r"irm)\b", sh.command):
            continue
        where = describe(eps[0])
        up = _CURL_FILE.search(sh.command)
        fact = _SHELL_FACTS.search(sh.command)
        if any(HostKind.WEBHOOK in e.kinds for e in eps):
            yield ("code_exfiltration_webhook", sh.statement,
                   f"shell command posts to the hard-coded {where}", 0.75)
        if up:
            yield ("code_exfiltration_file", sh.statement,
                   f"shell command uploads {up.group(1)[:60]} to {where}",
                   0.65 + (0.2 if _sensitive(up.group(1)) else 0.0))
        if fact:
            yield ("code_exfiltration_data", sh.statement,
                   f"shell command sends `{fact.group(0)}` to {where}", 0.75)
        bad = [e for e in eps if e.kinds & MALICIOUS_SINKS]
        if bad and (up or fact or _CURL_DATA.search(sh.command)):
            yield ("code_exfiltration_to_malicious_domain", sh.statement,
                   f"shell command sends data to {describe(bad[0])}", 0.75)


def _webhook_objects(ctx: FileContext) -> Iterator[tuple[str, Statement, str, float]]:
    """DiscordWebhook(url=...), SyncWebhook.from_url(...), TeleBot(token) and their sends."""
    flow = facts(ctx).flow
    handles: set[str] = set()
    for cs in ctx.calls():
        if not cs.name.endswith(_WEBHOOK_CLASSES) and not cs.name.endswith(".from_url"):
            continue
        args = [*cs.node.args, *(k.value for k in cs.node.keywords)]
        text = " ".join(flow.text(a, cs.statement) or "" for a in args)
        eps = [e for e in find_endpoints(text) if HostKind.WEBHOOK in e.kinds]
        token = re.search(r"\b\d{6,}:[\w-]{30,}\b", text)
        if not eps and not token:
            continue
        for (_scope, name), items in flow.by_scope.items():
            if any(a.statement is cs.statement for a in items):
                handles.add(name)
        what = describe(eps[0]) if eps else "Telegram bot token"
        yield ("code_exfiltration_webhook", cs.statement,
               f"{cs.name} is set up with the hard-coded {what}", 0.7)
    for cs in ctx.calls():
        func = cs.node.func
        if isinstance(func, ast.Attribute) and func.attr in _SEND_METHODS and \
                (flow.call_name(cs.node).rsplit(".", 1)[0] in handles):
            yield ("code_exfiltration_webhook", cs.statement,
                   f"{cs.name} sends a message through the hard-coded webhook", 0.8)


@detector("exfiltration", "code_exfiltration_data", "code_exfiltration_file",
          "code_exfiltration_webhook", "code_exfiltration_to_malicious_domain")
def exfiltration(ctx: FileContext) -> Iterator[Signal]:
    """Host data, files and anything at all sent to webhooks or suspicious hosts."""
    decoded = ctx.source.kind is FileKind.DECODED
    best: dict[tuple[str, str], tuple[Statement, str, float]] = {}
    found: list[tuple[str, Statement, str, float]] = []
    fixed: set[tuple[str, str]] = set()
    for nc in facts(ctx).calls:
        if nc.kind != "dns":
            found += _from_call(ctx, nc, fixed)
    found += _from_shells(ctx)
    found += _webhook_objects(ctx)
    for indicator, st, why, base in found:
        bonus = context_bonus(st, ctx.source.path, decoded, (st.id, indicator) in fixed)
        conf = clamp(base + bonus)
        key = (st.id, indicator)
        if key not in best or best[key][2] < conf:
            best[key] = (st, why, conf)
    for (_, indicator), (st, why, conf) in best.items():
        yield ctx.signal(indicator, st, defang(why), confidence=conf, detector="exfiltration")


#: Per-file detectors of this family, in the order they run.
DETECTORS: tuple[Detector, ...] = (
    exfiltration, *exfiltration_dns.DETECTORS,
)
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = ()
