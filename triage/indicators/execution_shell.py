"""The shell-command detector: command strings handed to a system shell, and inline code
handed to an interpreter (``python -c``) at install/import time.

Confidence follows what runs and when: risky content (download tools, decoded or downloaded
commands, executables) is high in any phase; any other command a module runs just by being
installed or imported is medium; terminal housekeeping, release scripts and setup.py build
steps stay low.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.execution_commands import Launch, launches
from triage.indicators.execution_common import defang, early
from triage.indicators.execution_process import (
    BENIGN_TOOLS,
    first_tool,
    launch_signal,
    phase_name,
    risky_content,
)
from triage.model import Phase, Signal

#: Build and release tools that setup.py legitimately runs through a shell.
BUILD_TOOLS = frozenset({
    "git", "hg", "svn", "make", "cmake", "gcc", "g++", "cc", "clang", "ld", "ar", "twine",
    "pandoc", "sphinx-build", "pkg-config", "nvcc", "rustc", "cargo", "go", "npm", "javac",
    "xcrun", "ldconfig", "swig", "protoc", "f2py", "gfortran", "cython", "meson", "ninja",
})
_TRIVIAL = re.compile(r"(?i)^\s*(?:cls|clear|reset|pause|color(?:\s+\w+)?|title\b.*|"
                      r"chcp\s+\d+(?:\s*>\s*nul)?)?\s*$")
_OPERATORS = re.compile(r"[|&;<>`]|\$\(")
_RELEASE = re.compile(r"(?i)\bsetup\.py\b|\btwine\b|\bsdist\b|\bbdist_wheel\b|"
                      r"\bgit\s+(?:tag|push)\b|\brm\s+-r?f?\s*(?:build|dist)\b")


def _shell_confidence(ctx: FileContext, launch: Launch, risky: str) -> float:
    """How malicious a shell command is, by what it runs and when."""
    cmd, st = launch.command, launch.site.statement
    if risky or cmd.executables or cmd.hidden:
        return 0.85 if early(st) else 0.7
    if _TRIVIAL.match(cmd.text) or "setup.py" in cmd.scripts or _RELEASE.search(cmd.text):
        return 0.15  # terminal housekeeping and release scripts (``python setup.py sdist``)
    if not cmd.shell:  # inline interpreter code (python -c) at install/import time; setup.py
        # probing its build environment (``-c "import numpy; print(...)"``) is ordinary
        return 0.7 if st.phase is not Phase.INSTALL else 0.2
    if not early(st):
        return 0.15 if first_tool(launch) in BENIGN_TOOLS else 0.25
    if st.phase is Phase.INSTALL and (first_tool(launch) in BUILD_TOOLS or (
            first_tool(launch) in BENIGN_TOOLS and not _OPERATORS.search(cmd.text))):
        return 0.15  # setup.py build steps and plain queries (``echo %temp%``)
    return 0.55  # any other command a module runs just by being installed or imported


@detector("shell_command", "code_execution_shell_command")
def shell_command(ctx: FileContext) -> Iterator[Signal]:
    """A command string handed to a system shell (os.system, shell=True, cmd /c, sh -c), or
    inline code handed to an interpreter (``python -c``) at install/import time."""
    for launch in launches(ctx):
        cmd = launch.command
        st = launch.site.statement
        if not cmd.shell and not (cmd.inline and early(st)):
            continue
        risky = risky_content(ctx, launch)
        if risky == "a pip install":  # judged by install_dynamic_package
            risky = ""
        conf = _shell_confidence(ctx, launch, risky)
        why = f" ({risky})" if risky else ""
        how = "through a shell" if cmd.shell else \
            f"as inline interpreter code (`{defang(cmd.inline[0], 60)}`)"
        yield launch_signal(ctx, "code_execution_shell_command", launch,
                   f"runs `{defang(cmd.text, 100)}` {how} via {launch.site.name} at "
                   f"{phase_name(launch)} time{why}", conf, "shell_command")


DETECTORS = (shell_command,)
