"""System-impact detectors that gather facts or secrets: host/user reconnaissance,
credential stores, crypto wallets and directory sweeps.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import CallSite, FileContext, detector
from triage.indicators.system_common import (
    any_match,
    defang,
    facts,
    is_exec,
    is_network,
    scaled,
)
from triage.indicators.system_common import sends as scope_sends
from triage.model import Phase, Signal, Statement
from triage.statements import own_nodes

_STRONG_ID = {
    "getpass.getuser": "the user name", "os.getlogin": "the login name",
    "platform.node": "the host name", "platform.uname": "host and OS details",
    "socket.gethostname": "the host name", "socket.getfqdn": "the host name",
    "uuid.getnode": "the MAC address", "os.uname": "host and OS details",
    "pwd.getpwuid": "the user account", "win32api.GetUserName": "the user name",
    "win32api.GetComputerName": "the computer name", "psutil.users": "logged-in users",
    "platform.platform": "the OS version",
}
_WEAK_ID = {
    "os.getcwd": "the working directory", "platform.system": "the OS name",
    "platform.version": "the OS version", "platform.release": "the OS release",
    "platform.processor": "the processor", "platform.machine": "the machine type",
    "os.getuid": "the user id",
}
_ID_VARS = re.compile(r"^(USERNAME|USER|LOGNAME|COMPUTERNAME|HOSTNAME|USERDOMAIN|"
                      r"USERDOMAIN_ROAMINGPROFILE|LOGONSERVER)$")
_RECON_CMD = re.compile(
    r"(?i)^\s*(whoami|hostname|systeminfo|ipconfig|ifconfig|uname\s+-a|id|"
    r"getmac|ver)\s*($|[|&>;/ ])|\bnet\s+(session|user|localgroup|config|view)\b|"
    r"\bwmic\s+(csproduct|os|computersystem|bios|useraccount|nic)\b|"
    r"\bGet-(ComputerInfo|WmiObject|CimInstance)\b|/etc/(passwd|shadow|hostname|machine-id)"
    r"|\bquery\s+user\b|\bcat\s+/proc/version\b"
)
_METADATA = re.compile(r"(?i)\b169\.254\.169\.254\b|\bmetadata\.google\.internal\b|"
                       r"\b100\.100\.100\.200\b|\b169\.254\.170\.2\b|\bfd00:ec2::254\b")
_CRED_URL = re.compile(r"(?i)security-credentials|/token\b|/identity\b|/credentials\b")
_RECON_FILE = re.compile(r"^/etc/(passwd|shadow|hostname|machine-id|issue)$|^/proc/version$")
def _metadata_url(ctx: FileContext, call: CallSite, st: Statement) -> bool:
    """True when a network call fetches a cloud instance-metadata URL (not a credential one,
    which the credential detector reports)."""
    ff = facts(ctx)
    texts = list(ff.strings(st))
    first = call.node.args[0] if call.node.args else None
    if isinstance(first, ast.Name):
        local = ff.assigned.get((st.scope, first.id))
        texts += local if local is not None else ff.assigned.get(("<module>", first.id), [])
    return any(_METADATA.search(t) and not _CRED_URL.search(t) for t in texts)


def _environ_dump(node: ast.AST, parents: dict[int, ast.AST], ctx: FileContext) -> str | None:
    """How ``os.environ`` is used as a whole (dumped/copied), or None for single lookups."""
    if not (isinstance(node, ast.Attribute) and node.attr == "environ") and not (
            isinstance(node, ast.Name) and node.id == "environ"):
        return None
    if ctx.resolver.qualname(node) != "os.environ":
        return None
    parent = parents.get(id(node))
    if isinstance(parent, ast.Subscript) or isinstance(parent, ast.Compare):
        return None
    if isinstance(parent, ast.Attribute):
        return "copies the whole environment" if parent.attr in ("copy", "items") else None
    if isinstance(parent, ast.keyword) and parent.arg == "env":
        return None
    return "reads the whole environment"


@detector("system_reconnaissance", "code_read_system_and_user_info")
def system_reconnaissance(ctx: FileContext) -> Iterator[Signal]:
    """Host/user facts (user, host, MAC, environment dumps, recon commands)."""
    ff = facts(ctx)
    path = ctx.source.path
    strong_scopes = {c.statement.scope for c in ctx.calls() if c.name in _STRONG_ID}
    for st, node in ctx.statements():
        what: str | None = None
        base = 0.0
        sends = None
        for call in ff.calls(st):
            if call.name in _STRONG_ID:
                what, base = _STRONG_ID[call.name], 0.85
            elif call.name in _WEAK_ID and st.scope in strong_scopes and base < 0.7:
                what, base = _WEAK_ID[call.name], 0.7
            elif call.name in ("os.getenv", "os.environ.get") and call.node.args:
                var = ctx.resolver.fold(call.node.args[0])
                if isinstance(var, str) and _ID_VARS.match(var) and base < 0.75:
                    what, base = f"the {var} variable", 0.75
            elif is_exec(call.name) and base < 0.8:
                m = any_match(_RECON_CMD, ff.strings_deep(st))
                if m:
                    what, base = f"`{m.group(0).strip()}` output", 0.8
            elif is_network(call.name) and base < 0.6 and _metadata_url(ctx, call, st):
                what, base = "cloud instance metadata", 0.6
            elif call.name in ("open", "io.open", "pathlib.Path") and call.node.args:
                target = ctx.resolver.fold(call.node.args[0])
                if isinstance(target, str) and _RECON_FILE.match(target):
                    what, base = f"`{target}`", 0.8
        if node is not None and base < 0.85 and "environ" in st.text:
            own = list(own_nodes(node))
            parents = {id(c): p for p in own for c in ast.iter_child_nodes(p)}
            for sub in own:
                if isinstance(sub, ast.Subscript) and ctx.resolver.qualname(sub.value) == (
                        "os.environ"):
                    var = ctx.resolver.fold(sub.slice)
                    if isinstance(var, str) and _ID_VARS.match(var) and base < 0.75:
                        what, base = f"the {var} variable", 0.75
                if isinstance(sub, (ast.Attribute, ast.Name)):
                    dump = _environ_dump(sub, parents, ctx)
                    if dump:
                        sends = scope_sends(ff, st) if sends is None else sends
                        if sends or st.phase in (Phase.INSTALL, Phase.STARTUP):
                            what, base = "the whole environment (os.environ)", 0.85
        if not what:
            continue
        sends = scope_sends(ff, st) if sends is None else sends
        if sends:
            conf = scaled(base, st, path)
            tail = " in code that sends data out"
        elif st.phase in (Phase.INSTALL, Phase.STARTUP):
            conf, tail = scaled(base * 0.6, st, path), " at install/start-up time"
        elif st.phase is Phase.IMPORT:
            conf, tail = scaled(base * 0.45, st, path), " at import time"
        else:
            conf, tail = scaled(base * 0.25, st, path), ""
        yield ctx.signal("code_read_system_and_user_info", st,
                         f"collects {defang(what, 80)}{tail}", confidence=conf,
                         detector="system_reconnaissance")
