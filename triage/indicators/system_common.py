"""Shared helpers of the system-impact and defense-evasion detectors.

Strings are gathered per statement with one level of local data flow (a name used in a
statement brings the strings assigned to it anywhere in the file), so that
``os.remove(path)`` sees ``path = os.getenv("TEMP") + "\\\\ss.png"``. Caches are keyed
by the context object and hold a reference to it, so an ID is never reused wrongly.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from triage.indicators.base import CallSite, FileContext
from triage.model import Phase, Statement
from triage.statements import own_nodes

#: Confidence multiplier by phase: code that runs on install/start-up/import is riskier.
PHASE_WEIGHT = {Phase.INSTALL: 1.0, Phase.STARTUP: 1.0, Phase.IMPORT: 0.9, Phase.CALL: 0.75}

NETWORK_PREFIXES = (
    "requests.", "urllib.request.", "urllib2.", "urllib3.", "httpx.", "http.client.",
    "aiohttp.", "socket.", "pycurl.", "dns.resolver.", "smtplib.", "ftplib.", "telnetlib.",
    "websocket.", "discord_webhook.", "dhooks.",
)
NETWORK_SUFFIXES = (
    ".urlopen", ".urlretrieve", ".post", ".sendall", ".sendto", ".send_message",
    ".sendmail", ".put", ".request",
)
EXEC_CALLS = frozenset({
    "exec", "eval", "compile", "os.system", "os.popen", "os.startfile", "os.execv", "os.execl",
    "os.execvp", "os.spawnl", "os.spawnv", "subprocess.Popen", "subprocess.call",
    "subprocess.run", "subprocess.check_call", "subprocess.check_output",
    "subprocess.getoutput", "subprocess.getstatusoutput", "pty.spawn", "commands.getoutput",
    "ctypes.windll.shell32.ShellExecuteW", "win32api.ShellExecute", "runpy.run_path",
})
TEST_PATH = re.compile(r"(^|/)(tests?|testing|docs?|examples?)/|"
                       r"(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")
_URL = re.compile(r"(?i)\b(https?|ftp)://")


def defang(text: str, limit: int = 160) -> str:
    """Shorten ``text`` and make URLs and domains in it non-clickable."""
    out = text if len(text) <= limit else text[: limit - 3] + "..."
    out = _URL.sub(lambda m: m.group(0).lower().replace("http", "hxxp").replace("ftp", "fxp"),
                   out)
    return re.sub(r"\.(com|net|org|io|ru|xyz|top|me|pw|cc|tk|gg|app|site)\b", r"[.]\1", out)


def scaled(base: float, st: Statement, path: str = "") -> float:
    """``base`` weighted by the statement's phase (and lowered in test/doc/example files)."""
    conf = base * PHASE_WEIGHT.get(st.phase, 0.75)
    if path and TEST_PATH.search(path):
        conf *= 0.4
    return round(min(conf, 0.95), 2)


def is_network(name: str) -> bool:
    """True for calls that talk to the network."""
    return name.startswith(NETWORK_PREFIXES) or (
        name.endswith(NETWORK_SUFFIXES) and not name.startswith(("os.", "str.", "dict."))
    )


def is_exec(name: str) -> bool:
    """True for calls that run code or commands."""
    return name in EXEC_CALLS or name.startswith("subprocess.")


@dataclass
class FileFacts:
    """Per-file facts computed once and shared by the detectors of these families."""

    ctx: FileContext
    assigned: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """(scope, name) -> strings assigned to the name in that scope; attributes
    (``self.x``) are stored as ``("*", ".x")``."""
    calls_by_stmt: dict[str, list[CallSite]] = field(default_factory=dict)
    strings_by_stmt: dict[str, list[str]] = field(default_factory=dict)
    scope_calls: dict[str, set[str]] = field(default_factory=dict)
    """Scope -> resolved call names used in it (nested scopes included in their parents)."""
    local_functions: dict[str, str] = field(default_factory=dict)
    """Bare function name -> its scope name."""
    own_nodes: dict[str, list[ast.AST]] = field(default_factory=dict)
    """Statement ID -> its own AST nodes (empty for unparsed fallback lines)."""

    def own(self, st: Statement) -> list[ast.AST]:
        """The statement's own AST nodes (cached ``ctx.own``)."""
        return self.own_nodes.get(st.id, [])

    def assign(self, scope: str, keys: list[str], values: list[str]) -> None:
        """Record that ``keys`` were assigned ``values`` in ``scope``."""
        for k in keys:
            self.assigned.setdefault(("*" if k.startswith(".") else scope, k), []).extend(values)

    def strings(self, st: Statement) -> list[str]:
        """Strings of the statement itself."""
        return self.strings_by_stmt.get(st.id, [])

    def strings_deep(self, st: Statement) -> list[str]:
        """Strings of the statement plus strings assigned to the names it uses."""
        out = list(self.strings(st))
        for name in self.names_used(st):
            if name.startswith("."):
                out += self.assigned.get(("*", name), [])
                continue
            local = self.assigned.get((st.scope, name))
            out += local if local is not None else self.assigned.get(("<module>", name), [])
        return out

    def names_used(self, st: Statement) -> set[str]:
        """Names and attribute names (``self.x`` -> ``x``) loaded by the statement."""
        names: set[str] = set()
        for sub in self.own(st):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Load):
                names.add("." + sub.attr)
        return names

    def calls(self, st: Statement) -> list[CallSite]:
        """Calls of the statement itself."""
        return self.calls_by_stmt.get(st.id, [])

    def scope_sends(self, scope: str, depth: int = 2) -> bool:
        """True when the scope (or a local function it calls) talks to the network."""
        names = self.scope_calls.get(scope, set())
        if any(is_network(n) for n in names):
            return True
        if depth <= 0:
            return False
        for n in names:
            callee = self.local_functions.get(n.split(".")[-1])
            if callee and callee != scope and self.scope_sends(callee, depth - 1):
                return True
        return False

    def file_sends(self) -> bool:
        """True when any scope of the file talks to the network."""
        return any(self.scope_sends(s, 0) for s in self.scope_calls)


def _target_keys(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Attribute):
        return ["." + target.attr]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [k for e in target.elts for k in _target_keys(e)]
    return []


def _rhs_strings(value: ast.AST, constants: dict[str, object] | None = None) -> list[str]:
    """String constants inside an expression, plus module-level string constants it names."""
    out: list[str] = []
    for sub in ast.walk(value):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value:
            out.append(sub.value)
        elif constants and isinstance(sub, ast.Name) and isinstance(constants.get(sub.id), str):
            out.append(str(constants[sub.id]))
    return out


_FACTS: dict[int, FileFacts] = {}


def facts(ctx: FileContext) -> FileFacts:
    """The (cached) facts of one file context."""
    cached = _FACTS.get(id(ctx))
    if cached is not None and cached.ctx is ctx:
        return cached
    ff = FileFacts(ctx=ctx)
    for call in ctx.calls():
        ff.calls_by_stmt.setdefault(call.statement.id, []).append(call)
        scope = call.statement.scope
        while True:
            ff.scope_calls.setdefault(scope, set()).add(call.name)
            if "." not in scope or scope == "<module>":
                break
            scope = scope.rsplit(".", 1)[0]
    for st, _node, value in ctx.strings():
        ff.strings_by_stmt.setdefault(st.id, []).append(value)
    for st, node in ctx.statements():
        ff.scope_calls.setdefault(st.scope, set())
        if node is None:
            if st.text:
                ff.strings_by_stmt.setdefault(st.id, []).extend(
                    re.findall(r"""["']([^"'\n]{2,})["']""", st.text))
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            qual = node.name if st.scope == "<module>" else f"{st.scope}.{node.name}"
            ff.local_functions.setdefault(node.name, qual)
        own = own_nodes(node)
        ff.own_nodes[st.id] = own
        for sub in own:
            if isinstance(sub, ast.Assign):
                keys = [k for t in sub.targets for k in _target_keys(t)]
                vals = _rhs_strings(sub.value, ctx.resolver.constants)
                fold = ctx.resolver.fold(sub.value)
                if isinstance(fold, str) and fold:
                    vals.append(fold)
                ff.assign(st.scope, keys, vals)
            elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)) and sub.value is not None:
                ff.assign(st.scope, _target_keys(sub.target), _rhs_strings(sub.value))
            elif isinstance(sub, ast.withitem) and sub.optional_vars is not None:
                ff.assign(st.scope, _target_keys(sub.optional_vars),
                          _rhs_strings(sub.context_expr))
    if len(_FACTS) > 64:
        _FACTS.clear()
    _FACTS[id(ctx)] = ff
    return ff


HTTP_PREFIXES = ("requests.", "urllib.request.", "urllib2.", "httpx.", "http.client.", "aiohttp.",
         "pycurl.", "smtplib.", "discord_webhook.", "dhooks.", "urllib3.")


def is_http(name: str) -> bool:
    """True for calls that send over HTTP/SMTP (the usual ways to ship stolen data)."""
    return name.startswith(HTTP_PREFIXES) or name.endswith((".urlopen", ".post", ".urlretrieve"))


def sends(ff: FileFacts, st: Statement) -> bool:
    """True when the statement's scope (or a local function it calls) sends over HTTP/SMTP."""
    seen: set[str] = set()
    todo = [st.scope]
    while todo:
        scope = todo.pop()
        if scope in seen or len(seen) > 8:
            continue
        seen.add(scope)
        names = sorted(ff.scope_calls.get(scope, ()))  # a set: sorted, so the capped walk
        if any(is_http(n) for n in names):             # is the same under any hash seed
            return True
        for name in names:
            callee = ff.local_functions.get(name.split(".")[-1])
            if callee:
                todo.append(callee)
    if st.scope == "<module>":
        return any(is_http(n) for names in ff.scope_calls.values() for n in names)
    return False


def any_match(pattern: re.Pattern[str], texts: Iterable[str]) -> re.Match[str] | None:
    """First match of ``pattern`` in any of ``texts``."""
    for t in texts:
        m = pattern.search(t)
        if m:
            return m
    return None
