"""Download detectors: executables/binaries, scripts, and payloads that are then run.

A download is an HTTP fetch (requests, urllib, httpx, wget...) or a shell download command
(curl, wget, Invoke-WebRequest, certutil, bitsadmin, DownloadFile/DownloadString). What
happens to the response decides the indicator: a binary or script by its URL or saved file
extension; a payload when the content is executed in memory, or saved and then run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import Detector, FileContext, detector
from triage.indicators.hosts import SUSPICIOUS, defang, describe
from triage.indicators.network_calls import NetCall, ShellCall, facts, shell_endpoints
from triage.indicators.network_flow import clamp, context_bonus
from triage.model import FileKind, Phase, Signal, Statement

BINARY_EXT = frozenset({".exe", ".dll", ".so", ".bin", ".msi", ".scr", ".jar", ".apk", ".dylib",
                        ".elf", ".sys", ".pif", ".deb", ".rpm", ".dmg", ".pkg", ".appimage",
                        ".cpl", ".ocx", ".run", ".com"})
ARCHIVE_EXT = frozenset({".zip", ".7z", ".rar", ".tar.gz", ".tgz", ".gz", ".xz", ".cab", ".iso"})
SCRIPT_EXT = frozenset({".py", ".pyw", ".ps1", ".psm1", ".bat", ".cmd", ".vbs", ".vbe", ".js",
                        ".jse", ".sh", ".bash", ".hta", ".wsf", ".pl", ".rb"})
EXEC_APIS = frozenset({"exec", "eval", "compile", "execfile", "marshal.loads", "pickle.loads",
                       "runpy.run_path", "runpy.run_module", "imp.load_source"})
#: Process launchers that run their (command) argument: downloaded text run as a command.
RUN_APIS = frozenset({"os.system", "os.popen", "subprocess.Popen", "subprocess.run",
                      "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                      "subprocess.getoutput", "subprocess.getstatusoutput", "commands.getoutput",
                      "asyncio.create_subprocess_shell", "pty.spawn"})
#: Saved-file extensions that make a download an executable wherever the code runs.
WINDOWS_EXEC = frozenset({".exe", ".scr", ".pif", ".com", ".msi", ".dll", ".cpl"})
_DOWNLOAD_TOOL = re.compile(
    r"(?i)\b(curl|wget|invoke-webrequest|iwr|invoke-restmethod|irm|certutil|bitsadmin|"
    r"start-bitstransfer|downloadfile|downloadstring|downloaddata|tftp)\b"
)
_OUT_PATH = re.compile(
    r"(?i)(?:-outfile|-destination|--output|-o|-O)\s+['\"]?([^'\";|&\s]+)"
    r"|downloadfile\(\s*['\"][^'\"]+['\"]\s*,\s*['\"]([^'\"]+)"
    r"|-urlcache\s+(?:-\w+\s+)*\S+\s+([^\s;|&]+)"
    r"|/transfer\s+\S+\s+\S+\s+([^\s;|&]+)"
)
_PIPE_RUN = re.compile(
    r"(?is)\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b|\|\s*python[\d.]*\b|\|\s*(?:iex|invoke-expression)\b"
    r"|\b(?:iex|invoke-expression)\b\s*\(?[^;]{0,120}(?:downloadstring|iwr|invoke-webrequest|irm"
    r"|invoke-restmethod)"
)
_RUN_WORDS = re.compile(r"(?i)\b(start|start-process|invoke-item|invoke-expression|iex|chmod|"
                        r"cmd\s*/c|bash|sh|python[\d.]*|\./)\b")
_CODE_FETCH = re.compile(
    r"(?s)\b(?:exec|eval)\s*\((?:(?!\n\n).){0,200}?"
    r"(?:urlopen|urlretrieve|requests\.get|urllib\d?\.|httpx\.get|\.read\(\))"
)


def ext_of(path: str | None) -> str:
    """Lower-case extension of a URL path or file name (``.tar.gz`` kept whole)."""
    if not path:
        return ""
    base = re.split(r"[?#]", path)[0].rstrip("/").rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    if base.endswith(".tar.gz"):
        return ".tar.gz"
    return "." + base.rsplit(".", 1)[-1] if "." in base else ""


def _contains(expr: ast.AST, target: ast.AST) -> bool:
    return any(sub is target for sub in ast.walk(expr))


def _names(expr: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}


def _dotted_tail(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _program(call: ast.Call) -> ast.expr:
    """The command of a launch: the string, or the first item of an argv list."""
    first = call.args[0]
    if isinstance(first, (ast.List, ast.Tuple)) and first.elts:
        return first.elts[0]
    return first


class _Usage:
    """What the code does with one HTTP response, within the call's scope."""

    def __init__(self, ctx: FileContext, nc: NetCall) -> None:
        flow = facts(ctx).flow
        scope, line = nc.statement.scope, nc.statement.start_line
        derived: set[str] = set()
        binds = [(name, a) for (sc, name), items in flow.by_scope.items() if sc == scope
                 for a in items]
        for _ in range(3):
            for name, a in binds:
                if _contains(a.value, nc.node) or _names(a.value) & derived:
                    derived.add(name)
        self.executed_in_memory: Statement | None = None
        self.as_command = False
        self.saved: str | None = nc.saves_to
        saved_at = line if nc.saves_to else None
        for cs in ctx.calls():
            st = cs.statement
            if st.scope != scope or st.start_line < line:
                continue
            args = [*cs.node.args, *(k.value for k in cs.node.keywords)]
            if cs.name in ("pickle.loads", "marshal.loads") and cs.node.args and isinstance(
                    cs.node.args[0], ast.Call) and _dotted_tail(cs.node.args[0]) == "dumps":
                continue  # a pickle round-trip of a local object, not remote code
            if cs.name in RUN_APIS:  # only when the response is the command, not an argument
                prog = _program(cs.node) if cs.node.args else None
                if prog is None or isinstance(prog, (ast.JoinedStr, ast.BinOp, ast.Constant)):
                    continue
                if isinstance(prog, ast.Name):
                    hit = flow.reaching(prog.id, st)  # the value it holds here, not any value
                    if hit is None or not (_contains(hit.value, nc.node)
                                           or _names(hit.value) & derived):
                        continue
                args = [prog]
            uses = bool(args) and any(_contains(a, nc.node) for a in args) or bool(
                {n for a in args for n in _names(a)} & derived)
            if not uses:
                continue
            if cs.name in EXEC_APIS or cs.name in RUN_APIS:
                self.executed_in_memory = st
                self.as_command = cs.name in RUN_APIS
            elif isinstance(cs.node.func, ast.Attribute) and cs.node.func.attr in (
                    "write", "write_bytes", "write_text"):
                self.saved = self._path(ctx, cs.node.func.value, st) or self.saved or "a file"
                saved_at = st.start_line
        self.run_after: Statement | None = None
        if self.saved and saved_at is not None:
            base = ext_of(self.saved) and self.saved.replace("\\", "/").rsplit("/", 1)[-1]
            for sh in facts(ctx).shells:
                s = sh.statement
                if s.scope == scope and s.start_line >= saved_at and (
                        (base and base in sh.command) or sh.api == "os.startfile"):
                    self.run_after = s
                    break

    @staticmethod
    def _path(ctx: FileContext, recv: ast.AST, st: Statement) -> str | None:
        flow = facts(ctx).flow
        if isinstance(recv, ast.Call) and recv.args:
            return flow.text(recv.args[0], st)
        if isinstance(recv, ast.Name):
            hit = flow.reaching(recv.id, st)
            if hit and isinstance(hit.value, ast.Call) and hit.value.args:
                return flow.text(hit.value.args[0], hit.statement)
        return None


def _classify(url_ext: str, saved_ext: str) -> str | None:
    if url_ext in BINARY_EXT or saved_ext in BINARY_EXT:
        return "binary"
    if url_ext in SCRIPT_EXT or saved_ext in SCRIPT_EXT:
        return "script"
    if url_ext in ARCHIVE_EXT or saved_ext in ARCHIVE_EXT:
        return "archive"
    return None


_IDS = {"binary": "code_download_executable_or_binary_file",
        "archive": "code_download_executable_or_binary_file",
        "script": "code_download_script_file", "payload": "code_download_payload"}


def _signal(ctx: FileContext, st: Statement, what: str, evidence: str, base: float,
            run: bool, suspicious_host: bool, any_phase: bool = False) -> Signal:
    """``any_phase``: malicious wherever it runs, so a function body does not lower it."""
    decoded = ctx.source.kind is FileKind.DECODED
    conf = base + (0.2 if run else 0.0) + (0.1 if suspicious_host else 0.0)
    conf += context_bonus(st, ctx.source.path, decoded, any_phase)
    when = {Phase.INSTALL: " at install time", Phase.STARTUP: " at start-up",
            Phase.IMPORT: " at import time"}.get(st.phase, "")
    return ctx.signal(_IDS[what], st, defang(evidence + when), confidence=clamp(conf),
                      detector="network_download")


def _from_calls(ctx: FileContext) -> Iterator[Signal]:
    for nc in facts(ctx).calls:
        if nc.kind != "http" or nc.api.startswith(("requests.post", "session.post")):
            continue
        where = describe(nc.endpoints[0]) if nc.endpoints else "a computed URL"
        url_ext = ext_of(nc.endpoints[0].path) if nc.endpoints else ext_of(nc.dest)
        use = _Usage(ctx, nc)
        kind = _classify(url_ext, ext_of(use.saved))
        run = use.run_after is not None or use.executed_in_memory is not None
        bad_host = any(e.kinds & SUSPICIOUS for e in nc.endpoints) or nc.obfuscated
        if kind == "archive" and not (run or bad_host):
            kind = None
        if kind is not None:
            saved = f" and saves it as {use.saved}" if use.saved and use.saved != "a file" else ""
            ran = " then runs it" if run else ""
            # the response itself written under a Windows executable name is a dropper
            exe = ext_of(use.saved) in WINDOWS_EXEC
            yield _signal(ctx, nc.statement, kind, f"{nc.api} downloads a {kind} from "
                          f"{where}{saved}{ran}", 0.8 if exe else 0.55, run, bad_host,
                          any_phase=exe)
        if use.executed_in_memory is not None:
            how = "run as a command" if use.as_command else "executed"
            yield _signal(ctx, nc.statement, "payload", f"{nc.api} fetches code from {where} "
                          f"that is {how} on line {use.executed_in_memory.start_line}",
                          0.75, False, bad_host, any_phase=True)
        elif use.run_after is not None and kind is None:
            yield _signal(ctx, nc.statement, "payload", f"{nc.api} fetches {where}, saves it "
                          f"and runs it on line {use.run_after.start_line}", 0.55, True,
                          bad_host, any_phase=True)


def _from_shell(ctx: FileContext, sh: ShellCall) -> Iterator[Signal]:
    cmd = sh.command
    if not _DOWNLOAD_TOOL.search(cmd):
        return
    eps = shell_endpoints(cmd)
    if not eps:
        return
    out = next((g for m in _OUT_PATH.finditer(cmd) for g in m.groups() if g), None)
    url_ext = ext_of(eps[0].path)
    kind = _classify(url_ext, ext_of(out))
    piped = bool(_PIPE_RUN.search(cmd))
    base_out = out.replace("\\", "/").rsplit("/", 1)[-1] if out else None
    tail = cmd.split(base_out, 1)[1] if base_out and base_out in cmd else ""
    run = piped or bool(base_out and base_out in tail and _RUN_WORDS.search(cmd))
    bad_host = any(e.kinds & SUSPICIOUS for e in eps)
    where = describe(eps[0])
    if kind == "archive" and not (run or bad_host):
        kind = None
    if kind is not None:
        yield _signal(ctx, sh.statement, kind, f"shell command downloads a {kind} from {where}"
                      + (" and runs it" if run else ""), 0.55, run, bad_host)
    if piped or (run and kind is None):
        yield _signal(ctx, sh.statement, "payload", f"shell command fetches {where} and "
                      "runs it", 0.7, False, bad_host)


@detector("network_download", "code_download_executable_or_binary_file",
          "code_download_script_file", "code_download_payload")
def downloads(ctx: FileContext) -> Iterator[Signal]:
    """Binary, script and payload downloads."""
    seen: set[tuple[str, str]] = set()
    shell_statements = {sh.statement.id for sh in facts(ctx).shells}
    found = list(_from_calls(ctx))
    for sh in facts(ctx).shells:
        found += _from_shell(ctx, sh)
    for st, _, value in ctx.strings():
        if st.id in shell_statements or len(value) < 20:
            continue
        if _CODE_FETCH.search(value) or (_PIPE_RUN.search(value) and _DOWNLOAD_TOOL.search(value)):
            found.append(_signal(ctx, st, "payload", "holds code that downloads and executes "
                                 "a remote payload", 0.65, True, False))
    for sig in found:
        key = (sig.statement_id, sig.indicator)
        if key not in seen:
            seen.add(key)
            yield sig


DETECTORS: tuple[Detector, ...] = (downloads,)
