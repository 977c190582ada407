"""Tiny intra-file data flow for the network and exfiltration detectors.

Assignments are indexed per scope so a name can be followed to the value it was last given
before a use (``remote_url = '...'; requests.get(remote_url)``), values are rendered as
best-effort text (unknown parts become ``{}``), and a simple taint check says whether an
expression carries host or user facts (user name, host name, environment, clipboard...).
Everything is static and bounded; nothing is executed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from triage.indicators.base import FileContext, dotted
from triage.model import Phase, Statement

MAX_DEPTH = 6
"""How many assignments a value or taint check follows."""

#: Calls/attributes that yield identifying host or user facts -> what they yield.
SOURCES: dict[str, str] = {
    "getpass.getuser": "the user name", "os.getlogin": "the login name",
    "socket.gethostname": "the host name", "platform.node": "the host name",
    "socket.getfqdn": "the host name", "platform.uname": "system details",
    "os.uname": "system details", "uuid.getnode": "the MAC address",
    "os.getcwd": "the working directory", "os.environ": "environment variables",
    "os.getenv": "an environment variable", "os.environ.get": "an environment variable",
    "os.environ.copy": "environment variables", "os.environ.items": "environment variables",
    "pyperclip.paste": "the clipboard", "win32clipboard.GetClipboardData": "the clipboard",
    "PIL.ImageGrab.grab": "a screenshot", "ImageGrab.grab": "a screenshot",
    "pyautogui.screenshot": "a screenshot", "socket.gethostbyname": "the IP address",
    "pwd.getpwuid": "the user account", "os.path.expanduser": "the home directory",
    "platform.platform": "platform details", "browser_cookie3.load": "browser cookies",
    "browser_cookie3.chrome": "browser cookies",
}
#: Commands whose output is host reconnaissance.
RECON_COMMANDS = ("whoami", "hostname", "ipconfig", "ifconfig", "systeminfo", "uname",
                  "net user", "ps -e", "id", "tasklist", "wmic", "env", "printenv", "ls ")
#: Path fragments of files whose content is sensitive.
SENSITIVE_PATHS = (".ssh", "id_rsa", "id_ed25519", ".aws", "credentials", "login data",
                   "local state", "cookies", "tdata", ".bash_history", "/etc/passwd",
                   "/etc/shadow", "wallet", "leveldb", ".git-credentials", ".npmrc", ".pypirc",
                   ".netrc", ".kube", ".docker/config", "keychain", "exodus", "electrum",
                   "/var/run/secrets/", "serviceaccount/token", "/proc/self/environ",
                   "/run/secrets/", ".config/gcloud", ".azure/")
#: Cloud instance-metadata endpoints: fetching them yields the machine's cloud credentials.
METADATA_HOSTS = ("169.254.169.254", "metadata.google.internal", "100.100.100.200",
                  "fd00:ec2::254", "169.254.170.2")
_PATH_WRAPPERS = frozenset({"os.path.expanduser", "os.path.expandvars", "os.path.abspath",
                            "os.path.normpath", "os.path.realpath", "pathlib.Path", "Path"})
DECODERS = frozenset({
    "b64decode", "b32decode", "b16decode", "a85decode", "b85decode", "urlsafe_b64decode",
    "decodebytes", "decodestring", "fromhex", "unhexlify", "decompress", "decrypt", "rot13",
})


@dataclass(frozen=True)
class Assignment:
    """``target = value`` (or ``with value as target`` / ``for target in value``)."""

    target: str
    value: ast.expr
    statement: Statement


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    name = dotted(target)
    return [name] if name else []


class Flow:
    """Per-file assignment index, value rendering and taint."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.by_scope: dict[tuple[str, str], list[Assignment]] = {}
        self.params: dict[str, tuple[str, ...]] = {}
        for st, node in ctx.statements():
            if node is None:
                continue
            for target, value in self._bindings(node):
                for name in _target_names(target):
                    self.by_scope.setdefault((st.scope, name), []).append(
                        Assignment(name, value, st))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope = node.name if st.scope == "<module>" else f"{st.scope}.{node.name}"
                a = node.args
                self.params[scope] = tuple(
                    p.arg for p in a.posonlyargs + a.args + a.kwonlyargs)
        self._taint_memo: dict[tuple[str, str], str | None] = {}

    @staticmethod
    def _bindings(node: ast.AST) -> list[tuple[ast.AST, ast.expr]]:
        if isinstance(node, ast.Assign):
            return [(t, node.value) for t in node.targets]
        if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            return [(node.target, node.value)]
        if isinstance(node, (ast.With, ast.AsyncWith)):
            return [(i.optional_vars, i.context_expr) for i in node.items if i.optional_vars]
        if isinstance(node, (ast.For, ast.AsyncFor)):
            return [(node.target, node.iter)]
        return []

    def assignments(self, name: str, st: Statement) -> list[Assignment]:
        """Every assignment to ``name`` in the statement's scope, else at module level."""
        found = self.by_scope.get((st.scope, name))
        if found or name in self.params.get(st.scope, ()):
            return found or []
        return self.by_scope.get(("<module>", name), [])

    def reaching(self, name: str, st: Statement) -> Assignment | None:
        """The last assignment to ``name`` before ``st`` in its scope (or module level)."""
        found = self.assignments(name, st)
        before = [a for a in found if a.statement.start_line < st.start_line]
        if before:
            return before[-1]
        if found and found[0].statement.scope == st.scope and found[0].statement is not st:
            return found[0]  # assigned later in a loop body, or a module constant
        return None

    # ------------------------------------------------------------------ values
    def text(self, expr: ast.AST | None, st: Statement, depth: int = 0) -> str | None:
        """Best-effort text of a string expression; unknown parts become ``{}``."""
        if expr is None or depth > MAX_DEPTH:
            return None
        folded = None if self._has_locals(expr, st) else self.ctx.resolver.fold(expr)
        if isinstance(folded, str):
            return folded
        if isinstance(folded, bytes):
            return folded.decode("latin-1")
        name = dotted(expr) if isinstance(expr, (ast.Name, ast.Attribute)) else None
        if name is not None:
            hit = self.reaching(name, st)
            return self.text(hit.value, hit.statement, depth + 1) if hit else None
        if isinstance(expr, ast.Call) and self._decodes(expr):
            decoded = self._decode(expr)
            if decoded is not None:
                return decoded
        if isinstance(expr, ast.JoinedStr):
            return "".join(
                str(v.value) if isinstance(v, ast.Constant)
                else (self.text(v.value, st, depth + 1) or "{}")
                if isinstance(v, ast.FormattedValue) else "{}"
                for v in expr.values)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Mod)):
            left = self.text(expr.left, st, depth + 1)
            if isinstance(expr.op, ast.Mod):
                return left.replace("%s", "{}").replace("%d", "{}") if left else None
            right = self.text(expr.right, st, depth + 1)
            if left is None and right is None:
                return None
            return (left or "{}") + (right or "{}")
        if isinstance(expr, (ast.List, ast.Tuple)):
            parts = [self.text(e, st, depth + 1) for e in expr.elts]
            return None if all(p is None for p in parts) else " ".join(p or "{}" for p in parts)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            attr = expr.func.attr
            if attr == "format":
                return self.text(expr.func.value, st, depth + 1)
            if attr in ("encode", "decode", "strip", "lower", "upper", "replace"):
                return self.text(expr.func.value, st, depth + 1)
            if attr == "join" and expr.args:
                sep = self.text(expr.func.value, st, depth + 1)
                inner = expr.args[0]
                if sep is not None and isinstance(inner, (ast.List, ast.Tuple)):
                    return sep.join(self.text(e, st, depth + 1) or "{}" for e in inner.elts)
        if isinstance(expr, ast.Call) and self.call_name(expr) in _PATH_WRAPPERS and expr.args:
            return self.text(expr.args[0], st, depth + 1)
        if isinstance(expr, ast.Call) and self.call_name(expr) in ("os.path.join", "str"):
            parts = [self.text(a, st, depth + 1) for a in expr.args]
            if any(p is not None for p in parts):
                return "/".join(p or "{}" for p in parts)
        return None

    def _has_locals(self, expr: ast.AST, st: Statement) -> bool:
        """True when ``expr`` uses a function-local name (the resolver folds file-wide)."""
        if st.scope == "<module>":
            return False
        params = self.params.get(st.scope, ())
        return any(isinstance(n, ast.Name) and (n.id in params or (st.scope, n.id)
                                                in self.by_scope) for n in ast.walk(expr))

    def _decodes(self, expr: ast.AST) -> bool:
        return any(isinstance(n, ast.Call) and self.call_name(n).rsplit(".", 1)[-1] in DECODERS
                   for n in ast.walk(expr))

    def _decode(self, expr: ast.expr) -> str | None:
        """Statically decode ``b64decode('...')``-style expressions (never executes)."""
        from triage.deobfuscate import decode_expression

        try:
            found = decode_expression(expr, resolve=self.ctx.resolver.qualname,
                                      names=self.ctx.resolver.constants, max_bytes=65536)
        except (RecursionError, MemoryError, ValueError, TypeError, OverflowError):
            return None
        if found is None or found.binary or len(found.text) > 4096:
            return None
        return found.text

    def call_name(self, call: ast.Call) -> str:
        """Resolved callee name of a call node ("" when unknown)."""
        return self.ctx.resolver.qualname(call.func) or dotted(call.func) or ""

    def obfuscated(self, expr: ast.AST, st: Statement, depth: int = 0) -> bool:
        """True when the value passes through a decoder (base64, hex, reversal, chr joins)."""
        if depth > MAX_DEPTH:
            return False
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Call):
                name = self.call_name(sub)
                tail = name.rsplit(".", 1)[-1]
                if tail in DECODERS or name in ("chr", "bytes.fromhex", "codecs.decode"):
                    return True
            if isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Slice):
                step = sub.slice.step
                if isinstance(step, ast.UnaryOp) and isinstance(step.op, ast.USub):
                    return True
            if isinstance(sub, ast.Name):
                hit = self.reaching(sub.id, st)
                if hit and hit.value is not expr and self.obfuscated(hit.value, hit.statement,
                                                                     depth + 1):
                    return True
        return False

    # ------------------------------------------------------------------ taint
    def source_of(self, expr: ast.AST, st: Statement, depth: int = 0) -> str | None:
        """What host/user fact ``expr`` carries (e.g. ``the user name``), or None."""
        if depth > MAX_DEPTH:
            return None
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Call):
                name = self.call_name(sub)
                if name in SOURCES:
                    return SOURCES[name]
                if name.endswith(("check_output", "getoutput", "popen")) and sub.args:
                    cmd = (self.text(sub.args[0], st) or "").lower()
                    if any(cmd.startswith(c) or f" {c}" in cmd for c in RECON_COMMANDS):
                        return f"the output of `{cmd[:40]}`"
                if name in ("open", "io.open", "builtins.open") and sub.args:
                    path = (self.text(sub.args[0], st) or "").lower()
                    if any(p in path for p in SENSITIVE_PATHS):
                        return f"the file {path[:60]}"
                if name.rsplit(".", 1)[-1] in ("get", "urlopen", "request") and any(
                        h in (self.text(a, st) or "") for a in sub.args[:2]
                        for h in METADATA_HOSTS):
                    return "cloud instance metadata (credentials)"
            elif isinstance(sub, (ast.Attribute, ast.Name)):
                q = self.ctx.resolver.qualname(sub) or ""
                if q in SOURCES and (q == "os.environ" or isinstance(sub, ast.Attribute)):
                    return SOURCES[q]
                if isinstance(sub, ast.Name):
                    found = self._name_source(sub.id, st, depth)
                    if found:
                        return found
        return None

    def _name_source(self, name: str, st: Statement, depth: int) -> str | None:
        key = (st.scope, name)
        if key in self._taint_memo:
            return self._taint_memo[key]
        self._taint_memo[key] = None  # break cycles
        result = None
        for a in self.assignments(name, st):
            result = self.source_of(a.value, a.statement, depth + 1)
            if result:
                break
        self._taint_memo[key] = result
        return result

    def uses_params(self, expr: ast.AST, st: Statement, depth: int = 0) -> set[str]:
        """Parameters of the enclosing function that ``expr`` is built from."""
        params = set(self.params.get(st.scope, ()))
        if not params or depth > MAX_DEPTH:
            return set()
        out: set[str] = set()
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Name):
                if sub.id in params:
                    out.add(sub.id)
                else:
                    for a in self.assignments(sub.id, st):
                        if a.statement.scope == st.scope and a.value is not expr:
                            out |= self.uses_params(a.value, a.statement, depth + 1)
        return out


def is_test_path(path: str) -> bool:
    """True for test suites and examples, where risky-looking calls are expected."""
    low = path.lower().split("#")[0]
    parts = low.split("/")
    base = parts[-1]
    return any(p in ("tests", "test", "testing", "examples", "docs") for p in parts[:-1]) or \
        base.startswith("test_") or base.endswith("_test.py") or base == "conftest.py"


def context_bonus(st: Statement, path: str, decoded: bool = False,
                  any_phase: bool = False) -> float:
    """Confidence adjustment for when and where a statement runs.

    ``any_phase``: the behaviour is malicious wherever it runs (executing downloaded code,
    contacting an interaction server), so a function body does not lower it; test and example
    files still do.
    """
    bonus = {Phase.INSTALL: 0.1, Phase.STARTUP: 0.1, Phase.IMPORT: 0.05}.get(
        st.phase, 0.0 if any_phase else -0.15)
    if is_test_path(path):
        bonus -= 0.2
    if decoded:
        bonus += 0.05
    return bonus


def clamp(value: float) -> float:
    """Confidence rounded into [0.05, 0.95]."""
    return round(max(0.05, min(0.95, value)), 2)
