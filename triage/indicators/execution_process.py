"""Process-launch detectors: shell commands, executables, scripts, pip installs, hiding, silence.

Every detector here reads the :class:`~triage.indicators.execution_commands.Launch` records of
a file. Confidence follows the phase (install/start-up/import time versus a function nobody
is known to call) and the content (download tools, encoded payloads, files the package itself
wrote or downloaded, hidden windows); plain tool calls in library functions stay below 0.3.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.execution_commands import (
    SHELLS,
    Launch,
    launches,
    program_expr,
    tokens,
)
from triage.indicators.execution_common import (
    defang,
    early,
    facts,
    origin,
    top_level,
    traits,
)
from triage.indicators.execution_text import text_of
from triage.model import Signal

#: Well-known tools whose plain use is ordinary (build, VCS, terminal housekeeping).
BENIGN_TOOLS = frozenset({
    "git", "hg", "svn", "make", "cmake", "gcc", "g++", "cc", "clang", "ld", "ar", "twine",
    "pandoc", "sphinx-build", "echo", "cls", "clear", "which", "where", "uname", "ver", "tput",
    "stty", "less", "more", "open", "xdg-open", "xclip", "xsel", "pbcopy", "pbpaste", "wl-copy",
    "wl-paste", "ls", "dir", "cat", "pkg-config", "ldconfig", "nvcc", "rustc", "cargo", "go",
    "npm", "node", "java", "javac", "tar", "unzip", "zip", "sysctl", "getconf", "lsb_release",
    "sw_vers", "xset", "notepad", "notepad.exe", "explorer", "explorer.exe", "klist", "ssh",
    "ssh-agent", "ssh-add", "gpg", "clip", "clip.exe", "powershell.exe -noprofile -command",
    "nproc", "lscpu", "id", "ps", "tasklist", "wmic", "reg", "vswhere.exe", "xcrun", "brew",
    "apt-get", "dpkg", "rpm", "yum", "sudo", "mkdir", "cp", "mv", "rm", "touch", "chmod",
})
_TEMP = re.compile(r"(?i)(%temp%|%appdata%|%localappdata%|\$env:temp|\$env:appdata|/tmp/|"
                   r"gettempdir|tempfile|appdata|\\temp\\|NamedTemporaryFile|_ttmp|mkstemp)")
_HIDE_FLAGS = re.compile(r"CREATE_NO_WINDOW|DETACHED_PROCESS|SW_HIDE|CREATE_BREAKAWAY_FROM_JOB")
_NO_WINDOW_BITS = (0x08000000, 0x00000008)


def phase_name(launch: Launch) -> str:
    """The phase of a launch's statement (``install``, ``import``...)."""
    return launch.site.statement.phase.value


def first_tool(launch: Launch) -> str:
    """The first program a launch starts, lower case, without its directory."""
    progs = launch.command.programs
    if not progs:
        return ""
    return progs[0].lower().replace("\\", "/").split("/")[-1]


def _refs_written(ctx: FileContext, items: tuple[str, ...]) -> str:
    """The first target that this file wrote/downloaded or that lives in a temp dir."""
    fx = facts(ctx)
    for item in items:
        if _TEMP.search(item):
            return item
        keys = set(re.findall(r"[\w.-]+", item))
        base = re.split(r"[\\/]", item.strip("{}'\""))[-1]
        if base in fx.written or keys & fx.written or base in fx.downloaded:
            return item
    return ""


def risky_content(ctx: FileContext, launch: Launch) -> str:
    """Why a launch's content is dangerous ('' when nothing stands out)."""
    cmd = launch.command
    if cmd.encoded:
        return "an encoded command"
    source = command_source(ctx, launch)
    if source:
        return source
    if cmd.danger:
        return f"`{cmd.danger[0]}`"
    written = _refs_written(ctx, cmd.executables + cmd.scripts)
    if written:
        return f"`{defang(written, 60)}`, a file the package writes or downloads"
    if cmd.pip:
        return "a pip install"
    if cmd.programs and cmd.programs[0].lower() in SHELLS and len(tokens(cmd.text)) <= 2:
        return "an interactive shell"
    return ""


def command_source(ctx: FileContext, launch: Launch) -> str:
    """'a command decoded with X' / 'a command fetched with X' when the command (not just an
    argument) is decoded or downloaded at run time ('' otherwise)."""
    target = program_expr(launch)
    if target is None:
        return ""
    tr = traits(ctx, origin(ctx, target, launch.site.statement).nodes)
    if tr.network:
        return f"a command fetched with {tr.network}"
    if tr.decode or tr.decrypt:
        return f"a command decoded with {tr.decode or tr.decrypt}"
    return ""


def launch_signal(ctx: FileContext, indicator: str, launch: Launch, evidence: str,
                  conf: float, name: str) -> Signal:
    """A signal on the statement of a launch."""
    return ctx.signal(indicator, launch.site.statement, evidence, confidence=round(conf, 2),
                      detector=name)


@detector("executable_file", "code_execution_executable_file")
def executable_file(ctx: FileContext) -> Iterator[Signal]:
    """A native executable started (x.exe, ``start x``, Start-Process, os.startfile)."""
    for launch in launches(ctx):
        exes = launch.command.executables
        if not exes:
            continue
        st = launch.site.statement
        target = exes[0]
        written = _refs_written(ctx, exes)
        low = target.lower().replace("\\", "/").split("/")[-1]
        if written:
            conf, why = (0.9 if early(st) else 0.8), " that the package writes or downloads"
        elif early(st):
            conf, why = 0.8, ""
        elif low in BENIGN_TOOLS or target.startswith("{"):
            conf, why = 0.15, ""
        else:
            conf, why = 0.5, ""
        yield launch_signal(ctx, "code_execution_executable_file", launch,
                   f"starts the executable `{defang(target, 80)}`{why} via {launch.site.name} "
                   f"at {phase_name(launch)} time", conf, "executable_file")


_BUILD_SCRIPTS = re.compile(r"(?i)(^|[\\/])(setup|manage|configure|conftest|build|docs?)\.py$")


@detector("script_file", "code_execution_script_file")
def script_file(ctx: FileContext) -> Iterator[Signal]:
    """A script file run through an interpreter (python x.py, powershell -File, runpy)."""
    for launch in launches(ctx):
        scripts = launch.command.scripts
        if not scripts:
            continue
        st = launch.site.statement
        written = _refs_written(ctx, scripts)
        if written:
            conf, why = (0.9 if early(st) else 0.8), " that the package writes or downloads"
        elif all(_BUILD_SCRIPTS.search(s) for s in scripts):
            conf, why = 0.1, ""
        elif early(st):
            conf, why = 0.65, ""
        else:
            conf, why = 0.25, ""
        target = written or scripts[0]
        yield launch_signal(ctx, "code_execution_script_file", launch,
                   f"runs the script `{defang(target, 80)}`{why} via {launch.site.name} at "
                   f"{phase_name(launch)} time", conf, "script_file")
    for site in ctx.calls():
        if site.name in ("runpy.run_path", "execfile") and site.node.args:
            st = site.statement
            path = text_of(ctx, site.node.args[0], st)
            written = _refs_written(ctx, (path,))
            conf = 0.85 if written else (0.5 if top_level(st) else 0.2)
            yield ctx.signal("code_execution_script_file", st,
                             f"runs the Python file `{defang(path, 80)}` via {site.name} at "
                             f"{st.phase.value} time", confidence=conf, detector="script_file")


_PIP_MAIN = re.compile(r"^pip(\._internal)?(\.cli\.main)?\.main$|^pip\._internal\.main$")


@detector("install_dynamic_package", "code_execution_install_dynamic_package")
def install_dynamic_package(ctx: FileContext) -> Iterator[Signal]:
    """``pip install`` run by the package itself (subprocess, os.system, pip.main, runpy)."""
    for launch in launches(ctx):
        cmd = launch.command
        if not cmd.pip:
            continue
        st = launch.site.statement
        quiet = cmd.silent or cmd.hidden
        conf = (0.85 if quiet else 0.75) if early(st) else (0.45 if quiet else 0.35)
        if _local_only(cmd.pip):
            conf = 0.4 if early(st) else 0.2
        yield launch_signal(ctx, "code_execution_install_dynamic_package", launch,
                   f"installs packages at {phase_name(launch)} time: `{defang(cmd.pip, 100)}` via "
                   f"{launch.site.name}", conf, "install_dynamic_package")
    for site in ctx.calls():
        st = site.statement
        args = site.node.args
        pip_main = bool(_PIP_MAIN.match(site.name)) and args
        run_mod = site.name == "runpy.run_module" and args and ctx.resolver.fold(args[0]) == \
            "pip" and _INSTALL_ARG.search(ctx.source.text) is not None
        if not (pip_main or run_mod):
            continue
        text = text_of(ctx, args[0], st) if pip_main else "pip"
        if pip_main and "install" not in tokens(text):
            continue
        conf = 0.75 if early(st) else 0.35
        yield ctx.signal("code_execution_install_dynamic_package", st,
                         f"installs packages at {st.phase.value} time through {site.name} "
                         f"(`{defang(text, 80)}`)", confidence=conf,
                         detector="install_dynamic_package")


_INSTALL_ARG = re.compile(r"""['"]install['"]""")
"""``runpy.run_module("pip")`` runs pip's CLI with ``sys.argv``: it installs only where the
file also spells an ``"install"`` argument (pip's own runner script does not)."""


def _local_only(pip_args: str) -> bool:
    """True when a pip install only installs local paths (``pip install .``), not packages."""
    toks = tokens(pip_args)
    targets = [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")] \
        if "install" in toks else []
    return bool(targets) and all(t in (".", "..") or t.startswith(("./", "/", "{os.path"))
                                 for t in targets)


def _flag_bits(ctx: FileContext, expr: ast.AST) -> str:
    """Names/bits of window-hiding creation flags in an expression ('' when none)."""
    for sub in ast.walk(expr):
        if isinstance(sub, (ast.Name, ast.Attribute)):
            name = sub.id if isinstance(sub, ast.Name) else sub.attr
            if _HIDE_FLAGS.search(name):
                return name
        if isinstance(sub, ast.Constant) and isinstance(sub.value, int):
            if any(sub.value & bit for bit in _NO_WINDOW_BITS) and sub.value not in (1,):
                return hex(sub.value)
    return ""


def _hiding(ctx: FileContext, launch: Launch) -> str:
    """How a launch hides its process ('' when it does not)."""
    kw = launch.keywords
    if "creationflags" in kw:
        flag = _flag_bits(ctx, kw["creationflags"])
        if flag:
            return f"creationflags={flag}"
    if "startupinfo" in kw and "SW_HIDE" in _file_text(ctx):
        return "a STARTUPINFO with SW_HIDE"
    nss = kw.get("start_new_session")
    if isinstance(nss, ast.Constant) and nss.value is True:
        return "start_new_session=True"
    pre = kw.get("preexec_fn")
    if pre is not None and "setsid" in ast.dump(pre):
        return "preexec_fn=os.setsid"
    name = launch.site.name.split(".")[-1]
    args = launch.site.node.args
    if name.startswith("ShellExecute") and len(args) > 5 and _zero(args[5]):
        return "ShellExecute with SW_HIDE"
    if name == "WinExec" and len(args) > 1 and _zero(args[1]):
        return "WinExec with SW_HIDE"
    if launch.command.hidden:
        return f"`{launch.command.hidden[0]}`"
    return ""


def _zero(expr: ast.AST) -> bool:
    return (isinstance(expr, ast.Constant) and expr.value == 0) or "SW_HIDE" in ast.dump(expr)


def _file_text(ctx: FileContext) -> str:
    return "\n".join(ctx.index.lines) if ctx.index.lines else ctx.source.text


@detector("subprocess_hidden", "code_execution_subprocess_hidden")
def subprocess_hidden(ctx: FileContext) -> Iterator[Signal]:
    """A process started so the user cannot see it (no window, detached, pythonw, nohup)."""
    for launch in launches(ctx):
        how = _hiding(ctx, launch)
        if not how:
            continue
        st = launch.site.statement
        risky = risky_content(ctx, launch)
        if early(st):
            conf = 0.9 if risky else 0.8
        else:
            conf = 0.75 if risky else 0.25
        yield launch_signal(ctx, "code_execution_subprocess_hidden", launch,
                   f"starts `{defang(launch.command.text, 80)}` hidden ({how}) via "
                   f"{launch.site.name} at {phase_name(launch)} time", conf, "subprocess_hidden")
    for site in ctx.calls():
        st = site.statement
        if site.name in ("os.fork", "os.setsid", "os.daemon") and early(st):
            yield ctx.signal("code_execution_subprocess_hidden", st,
                             f"detaches a background process with {site.name} at "
                             f"{st.phase.value} time", confidence=0.6,
                             detector="subprocess_hidden")


_DISCARD = ("DEVNULL", "PIPE", "devnull")


def _discarded(launch: Launch) -> str:
    """Output swallowed: both streams to DEVNULL, or piped and the result thrown away."""
    kw = launch.keywords
    out, err = (ast.dump(kw[k]) if k in kw else "" for k in ("stdout", "stderr"))
    if "DEVNULL" in out and ("DEVNULL" in err or "STDOUT" in err):
        return "stdout/stderr sent to DEVNULL"
    if any(d in out for d in _DISCARD) and any(d in err for d in _DISCARD + ("STDOUT",)):
        node = launch.site.statement
        if node.kind == "Expr" or node.text.lstrip().startswith(("subprocess", "Popen")):
            return "stdout/stderr piped and never read"
    return ""


@detector("silent", "code_execution_silent")
def silent(ctx: FileContext) -> Iterator[Signal]:
    """A run that swallows every visible trace (quiet flags, output discarded, pythonw)."""
    for launch in launches(ctx):
        cmd = launch.command
        how = (f"`{cmd.silent[0]}`" if cmd.silent else "") or _discarded(launch)
        if not how and any("pythonw" in h.lower() for h in cmd.hidden):
            how = "a windowless pythonw interpreter"
        if not how:
            continue
        st = launch.site.statement
        risky = risky_content(ctx, launch) or (cmd.executables and "an executable")
        if early(st):
            conf = 0.8 if risky else 0.5
        else:
            conf = 0.55 if risky else 0.15
        yield launch_signal(ctx, "code_execution_silent", launch,
                   f"runs `{defang(cmd.text, 80)}` silently ({how}) via {launch.site.name} at "
                   f"{phase_name(launch)} time", conf, "silent")


DETECTORS = (executable_file, script_file, install_dynamic_package,
             subprocess_hidden, silent)
