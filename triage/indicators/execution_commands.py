"""Process launches of a file and what their command lines do (static, best effort).

:func:`launches` finds every call that starts a process (os.system, subprocess.*, os.exec*,
os.startfile, ShellExecute...) and renders its command as text, following local names and
f-strings; :func:`analyse_command` reads that text: the programs it starts, scripts it runs,
packages it installs, PowerShell ``-EncodedCommand`` payloads (decoded as UTF-16LE), and the
flags that hide or silence it.
"""

from __future__ import annotations

import ast
import base64
import binascii
import re
from dataclasses import dataclass, field

from triage.indicators.base import CallSite, FileContext
from triage.indicators.execution_common import per_file
from triage.indicators.execution_text import text_of
from triage.model import Statement

SHELL_FUNCS = frozenset({
    "os.system", "os.popen", "os.popen2", "os.popen3", "os.popen4", "popen2.popen2",
    "popen2.popen3", "popen2.popen4", "commands.getoutput", "commands.getstatusoutput",
    "subprocess.getoutput", "subprocess.getstatusoutput", "platform.popen",
    "asyncio.create_subprocess_shell", "os.system.__call__",
})
_SUBPROCESS = frozenset({"Popen", "call", "run", "check_call", "check_output"})
_SPAWN = re.compile(r"^os\.(spawn[lv]p?e?|exec[lv]p?e?|posix_spawnp?)$")
_WIN = frozenset({"ShellExecuteW", "ShellExecuteA", "ShellExecute", "ShellExecuteEx",
                  "WinExec", "CreateProcess", "CreateProcessW", "CreateProcessA"})
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "cmd", "cmd.exe", "/bin/sh", "/bin/bash",
                    "powershell", "powershell.exe", "pwsh", "pwsh.exe"})
PYTHONS = re.compile(r"^(?:\{sys\.executable\}|pythonw?(?:\d(?:\.\d+)?)?(?:\.exe)?|py(?:\.exe)?|"
                     r"pythonw\.exe)$", re.I)
SCRIPT_EXT = re.compile(r"\.(?:py|pyw|bat|cmd|ps1|vbs|vbe|js|jse|wsf|sh|hta)$", re.I)
EXE_EXT = re.compile(r"\.(?:exe|scr|com|msi|pif|bin|elf|dll|jar|app)$", re.I)
INTERPRETERS = re.compile(r"^(?:bash|sh|zsh|dash|cscript|wscript|mshta|node|perl|ruby|"
                          r"powershell|pwsh)(?:\.exe)?$", re.I)
DANGER = re.compile(
    r"(?i)\b(?:curl|wget|invoke-webrequest|iwr|invoke-expression|iex|certutil|bitsadmin|mshta|"
    r"rundll32|regsvr32|downloadstring|downloadfile|net\.webclient|start-process|schtasks|"
    r"reg\s+add|vssadmin|attrib\s+\+h|nc\s+-e|ncat|/dev/tcp|base64\s+-d|chmod\s+\+x|"
    r"frombase64string|add-mppreference|set-mppreference|crontab|taskkill|"
    r"__compact_layer|runasinvoker)\b|/dev/tcp|\|\s*(?:ba)?sh\b")
_HIDDEN = re.compile(
    r"(?i)(-w(?:indowstyle|in)?\s+['\"]?(?:hidden|h)\b|\bpythonw(?:\.exe)?\b|\bstart\s+/b\b|"
    r"\bstart\s+/min\b|\bnohup\b|&\s*$|\bsetsid\b|\bdisown\b)")
_SILENT = re.compile(
    r"(?i)(>\s*nul\b|>\s*/dev/null|2>&1|\s-q\b|\s--quiet\b|-noprofile\b.*-noninteractive\b|"
    r"-noninteractive\b|\s-s\s)")
_ENC = re.compile(r"(?i)(?:^|\s)-(?:e|ec|en|enc|enco|encod|encode|encoded|encodedc\w*)\s+"
                  r"['\"]?([A-Za-z0-9+/=]{16,})")
_PS_TARGET = re.compile(
    r"(?i)(?:start-process|invoke-expression|invoke-item|iex|saps|start)\s+(?:-filepath\s+)?"
    r"['\"]?([^'\";|&\s]+)")
_MAX = 4
_TEMP_EXEC = re.compile(r"(?i)^(?:\./|/tmp/|/var/tmp/|/dev/shm/|%temp%|%appdata%|\$env:temp)")


@dataclass(frozen=True)
class Command:
    """What a command line does, read statically."""

    text: str
    shell: bool = False
    """Runs through a system shell (shell=True, os.system, cmd /c, sh -c, powershell -Command)."""
    programs: tuple[str, ...] = ()
    """Programs started (first token of each sub-command, quotes removed)."""
    executables: tuple[str, ...] = ()
    """Native executables started (``x.exe``, ``start x``, ``Start-Process x``, os.startfile)."""
    scripts: tuple[str, ...] = ()
    """Script files run through an interpreter (``python x.py``, ``powershell -File x.ps1``)."""
    pip: str = ""
    """The ``pip install`` part, if the command installs packages."""
    hidden: tuple[str, ...] = ()
    """Flags that hide the process (``-WindowStyle Hidden``, pythonw, ``start /b``, nohup)."""
    silent: tuple[str, ...] = ()
    """Flags that swallow output (``>nul 2>&1``, ``-q``, ``-NonInteractive``)."""
    encoded: tuple[str, ...] = ()
    """Decoded payloads of encoded commands (PowerShell -EncodedCommand, python -c b64)."""
    danger: tuple[str, ...] = ()
    """Download/execute/tamper keywords found (curl, certutil, Start-Process...)."""
    inline: tuple[str, ...] = ()
    """Inline code handed to an interpreter (``python -c CODE``, ``node -e CODE``)."""


@dataclass(frozen=True)
class Launch:
    """One call that starts a process."""

    site: CallSite
    command: Command
    keywords: dict[str, ast.expr] = field(default_factory=dict)
    """Keyword arguments of the call, by name."""
    target: ast.AST | None = None
    """The command/program argument expression."""


def _strip_quotes(tok: str) -> str:
    return tok.strip().strip("'\"")


def tokens(text: str) -> list[str]:
    """Split a command line into tokens (quotes removed, backslashes kept)."""
    return [_strip_quotes(t) for t in re.findall(r'"[^"]*"|\'[^\']*\'|\S+', text)]


def _decode_ps(blob: str) -> str:
    try:
        raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
    except (binascii.Error, ValueError):
        return ""
    text = raw.decode("utf-16le", "replace") if raw[1:2] == b"\x00" else raw.decode("latin-1")
    return text if sum(c.isprintable() for c in text) > 0.9 * max(1, len(text)) else ""


def _sub_commands(text: str) -> list[list[str]]:
    parts = re.split(r"\s*(?:&&|\|\||;|\||(?<=\s)&(?=\s))\s*", text)
    return [tokens(p) for p in parts if p.strip()]


_PREFIX = {"cmd", "cmd.exe", "/c", "/k", "/q", "/d", "/s", "call", "nohup", "sudo", "exec",
           "start", "/b", "/min", "/wait", "", "-c", "sh", "bash", "zsh", "dash", "ksh",
           "/bin/sh", "/bin/bash", "/usr/bin/env", "env"}
_POWERSHELL = ("powershell", "powershell.exe", "pwsh", "pwsh.exe")


@dataclass
class _Acc:
    shell: bool = False
    progs: list[str] = field(default_factory=list)
    exes: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    encoded: list[str] = field(default_factory=list)
    inner: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)
    pip: str = ""


def _powershell(rest: list[str], acc: _Acc) -> None:
    ps = " ".join(rest)
    for m in _ENC.finditer(" " + ps):
        decoded = _decode_ps(m.group(1))
        if decoded:
            acc.encoded.append(decoded)
            acc.inner.append(decoded)
    fm = re.search(r"(?i)(?:^|\s)-f(?:ile)?\s+['\"]?([^'\"\s]+)", " " + ps)
    if fm:
        acc.scripts.append(fm.group(1))
    if re.search(r"(?i)(?:^|\s)-c(?:ommand)?\s", " " + ps):
        acc.shell = True
        acc.inner.append(ps)


def _python(rest: list[str], acc: _Acc) -> None:
    low = [t.lower() for t in rest]
    if "-m" in low and "pip" in low and "install" in low:
        acc.pip = " ".join(rest)
    elif "-m" in low:
        return  # runs an installed module, not a script file
    elif "-c" in low:
        code = " ".join(rest[low.index("-c") + 1:])
        acc.inline.append(code)
        if re.search(r"b64decode|decompress|fromhex|decode\(['\"](?:base64|hex)", code):
            acc.encoded.append(code)
    else:
        arg = next((t for t in rest if not t.startswith("-")), "")
        if arg and (SCRIPT_EXT.search(arg) or "{" in arg or "/" in arg or "\\" in arg):
            acc.scripts.append(arg)


def _one(toks: list[str], acc: _Acc, depth: int) -> None:
    """Classify one sub-command (tokens)."""
    low = [t.lower() for t in toks]
    if not toks or low[0] == "set":
        return
    if low[0] in ("cmd", "cmd.exe") or (low[0] in SHELLS and "-c" in low[1:3]):
        acc.shell = True
    started = "start" in low[:3]
    i = 0
    while i < len(toks) - 1 and low[i] in _PREFIX:
        if low[i] in ("-c", "/c", "/k") and depth < _MAX and " " in " ".join(toks[i + 1:]):
            for sub in _sub_commands(" ".join(toks[i + 1:])):
                _one(sub, acc, depth + 1)
            return
        i += 1
    prog, rest = toks[i], toks[i + 1:]
    lprog = prog.lower().replace("\\", "/").split("/")[-1]
    acc.progs.append(prog)
    if prog.lower() in SHELLS and prog.lower() not in _POWERSHELL and not any(
            SCRIPT_EXT.search(t) for t in rest):
        acc.shell = True  # an interactive shell (pty.spawn("/bin/sh"), os.execv of bash)
    is_url = bool(re.match(r"(?i)^(?:https?|ftp|mailto):", prog))
    if started and not is_url:
        acc.exes.append(prog)
    if lprog in _POWERSHELL:
        _powershell(rest, acc)
    elif PYTHONS.match(lprog) or lprog.startswith("{sys.executable"):
        _python(rest, acc)
    elif re.match(r"^pip\d?(\.\d+)?(\.exe)?$", lprog) and "install" in [t.lower() for t in rest]:
        acc.pip = " ".join(rest)
    elif INTERPRETERS.match(lprog):
        lrest = [t.lower() for t in rest]
        if re.match(r"^(?:node|perl|ruby)", lprog) and "-e" in lrest[:2]:
            acc.inline.append(" ".join(rest[lrest.index("-e") + 1:]))
        arg = next((t for t in rest if not t.startswith(("-", "/"))), "")
        if arg and (SCRIPT_EXT.search(arg) or "{" in arg):
            acc.scripts.append(arg)
    elif SCRIPT_EXT.search(prog):
        acc.scripts.append(prog)
    elif (EXE_EXT.search(prog) or _TEMP_EXEC.match(prog)) and not is_url:
        acc.exes.append(prog)


def analyse_command(text: str, argv: list[str] | None = None) -> Command:
    """Read a command line (or argv list) and say what it runs and how it hides."""
    acc = _Acc(shell=argv is None and bool(re.search(r"[|&;<>]", text)))
    for toks in [argv] if argv is not None else _sub_commands(text):
        _one(toks, acc, 0)
    for inner in acc.inner:
        for m in _PS_TARGET.finditer(inner):
            target = m.group(1)
            (acc.scripts if SCRIPT_EXT.search(target) else acc.exes).append(target)
        if re.search(r"(?i)\bpip\d?\s+install\b", inner) and not acc.pip:
            acc.pip = inner
    full = " ".join([text, *acc.inner])
    return Command(
        text=text, shell=acc.shell, programs=tuple(acc.progs),
        executables=tuple(dict.fromkeys(acc.exes)), scripts=tuple(dict.fromkeys(acc.scripts)),
        pip=acc.pip, hidden=tuple(m.group(0).strip() for m in _HIDDEN.finditer(full)),
        silent=tuple(m.group(0).strip() for m in _SILENT.finditer(full)),
        encoded=tuple(acc.encoded), inline=tuple(acc.inline), danger=tuple(dict.fromkeys(
            m.group(0).lower() for m in DANGER.finditer(full))),
    )


def program_expr(launch: Launch) -> ast.AST | None:
    """The expression that is the whole command (a string, or argv[0]), or None when it is a
    constant or a template that mixes literal text with values (``f"netsh ... {name}"``):
    then run-time data is only an argument, not the command."""
    target = launch.target
    if isinstance(target, (ast.List, ast.Tuple)):
        target = target.elts[0] if target.elts else None
    if target is None or isinstance(target, (ast.Constant, ast.JoinedStr, ast.BinOp)):
        return None
    if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute) and \
            target.func.attr == "format":
        return None
    return target


def _kw(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg}


def launches(ctx: FileContext) -> list[Launch]:
    """Every process-starting call of the file with its analysed command (cached)."""
    return per_file(ctx, "launches", _launches)


def _launches(ctx: FileContext) -> list[Launch]:
    out: list[Launch] = []
    for site in ctx.calls():
        launch = _launch(ctx, site)
        if launch is not None:
            out.append(launch)
    return out


def _launch(ctx: FileContext, site: CallSite) -> Launch | None:
    name, call, st = site.name, site.node, site.statement
    kws = _kw(call)
    last = name.split(".")[-1]
    args = list(call.args)
    if name in SHELL_FUNCS:
        target = args[0] if args else kws.get("cmd") or kws.get("command")
        if target is None:
            return None
        cmd = analyse_command(text_of(ctx, target, st))
        return Launch(site, _with_shell(cmd), kws, target)
    is_sub = last in _SUBPROCESS and (name.startswith(("subprocess.", "sp.")) or name == "Popen")
    if is_sub or name in ("asyncio.create_subprocess_exec", "pexpect.spawn", "pexpect.run",
                          "pty.spawn"):
        target = args[0] if args else kws.get("args")
        if target is None:
            return None
        shell_kw = kws.get("shell")
        shell = shell_kw is not None and not (isinstance(shell_kw, ast.Constant)
                                              and not shell_kw.value)
        if name == "asyncio.create_subprocess_exec":
            target = ast.List(elts=args, ctx=ast.Load())
        return Launch(site, _command(ctx, target, st, shell), kws, target)
    if _SPAWN.match(name):
        rest = args[1:] if name.startswith("os.spawn") else args
        if not rest:
            return None
        return Launch(site, _command(ctx, rest[0], st, False), kws, rest[0])
    if name == "os.startfile" or last in _WIN:
        idx = {"os.startfile": 0, "WinExec": 0}.get(name if name == "os.startfile" else last, 2)
        if last.startswith("CreateProcess"):
            idx = 1 if len(args) > 1 and not _is_none(args[0]) else 0
        if len(args) <= idx:
            return None
        text = text_of(ctx, args[idx], st)
        if last.startswith("ShellExecute") and len(args) > 3 and not _is_none(args[3]):
            text = f"{text} {text_of(ctx, args[3], st)}"
        cmd = analyse_command(text)
        if name == "os.startfile" or last.startswith("ShellExecute"):
            cmd = Command(**{**cmd.__dict__, "executables": (tokens(text) or [text])[:1]})
        return Launch(site, cmd, kws, args[idx])
    return None


def _is_none(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Constant) and expr.value in (None, 0, "")


def _with_shell(cmd: Command) -> Command:
    return Command(**{**cmd.__dict__, "shell": True})


def _command(ctx: FileContext, target: ast.AST, st: Statement, shell: bool) -> Command:
    if isinstance(target, (ast.List, ast.Tuple)):
        argv = [text_of(ctx, e, st) for e in target.elts]
        cmd = analyse_command(" ".join(argv), argv=argv)
    else:
        cmd = analyse_command(text_of(ctx, target, st))
    return _with_shell(cmd) if shell else cmd
