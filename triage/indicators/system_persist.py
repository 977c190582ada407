"""System-impact detectors for lasting changes: start-up persistence, environment edits."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.system_common import any_match, defang, facts, is_exec, scaled
from triage.model import Phase, Signal, Statement
from triage.statements import own_nodes

_PERSIST = re.compile(
    r"(?i)CurrentVersion\\+Run(Once|Services)?\b|Start Menu[\\/]+Programs[\\/]+Startup|"
    r"Programs[\\/]+Startup\b|@reboot\b|\bcrontab\b|\bschtasks(\.exe)?\b|/etc/cron|"
    r"/etc/systemd/system|\.config/systemd/user|systemctl\s+(--user\s+)?enable|"
    r"\.config/autostart|Library/Launch(Agents|Daemons)|/etc/rc\.local|/etc/init\.d/|"
    r"(^|[\\/~])\.(bashrc|bash_profile|zshrc|zprofile|bash_login|profile)$|"
    r"Winlogon\\+(Userinit|Shell)\b|\bsc(\.exe)?\s+create\b|New-ScheduledTask|"
    r"Register-ScheduledTask")
_ACTIONS = ("open", "io.open", "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.move",
            "os.rename", "os.replace", "os.symlink", "winreg.SetValueEx", "winreg.SetValue",
            "winreg.CreateKey", "winreg.CreateKeyEx", "_winreg.SetValueEx", "copy2",
            "win32api.RegSetValueEx", "shutil.copytree", "plistlib.dump")
_RUN_KEY_SETTERS = ("SetValueEx", "SetValue", "RegSetValueEx")


def _is_docstring(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _acts(ctx: FileContext, st: Statement) -> str | None:
    """Name of the writing/registering call of the statement, if any."""
    for c in facts(ctx).calls(st):
        if c.name in _ACTIONS or is_exec(c.name) or c.name.endswith(
                (".write", ".write_text", ".writelines", *_RUN_KEY_SETTERS)):
            return c.name
    return None


_TABLE_ITEMS = 8


def _data_table(node: ast.AST | None) -> bool:
    """``X = {...}`` / ``[...]`` / ``(...)`` holding more than a handful of items."""
    value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    if isinstance(value, ast.Dict):
        return len(value.keys) > _TABLE_ITEMS
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return len(value.elts) > _TABLE_ITEMS
    return False


@detector("startup_persistence", "code_persistence_startup")
def startup_persistence(ctx: FileContext) -> Iterator[Signal]:
    """Run keys, Startup folder, cron, shell rc files, services, launch agents, tasks."""
    ff = facts(ctx)
    for st, node in ctx.statements():
        if _is_docstring(node):
            continue
        action = _acts(ctx, st)
        if not action and _data_table(node):
            continue  # a path among many in a lookup table (a lexer's file patterns)
        texts = ff.strings_deep(st) if action else ff.strings(st)
        m = any_match(_PERSIST, texts)
        if not m:
            continue
        base = 0.85 if action else 0.65
        how = f" with {action}" if action else ""
        yield ctx.signal("code_persistence_startup", st,
                         f"sets up autostart through `{defang(m.group(0), 60)}`{how}",
                         confidence=scaled(base, st, ctx.source.path),
                         detector="startup_persistence")


_RISKY_VARS = re.compile(r"^(PATH|PYTHONPATH|PYTHONSTARTUP|PYTHONHOME|LD_PRELOAD|LD_LIBRARY_PATH|"
                         r"DYLD_INSERT_LIBRARIES|https?_proxy|HTTPS?_PROXY|ALL_PROXY|"
                         r"PIP_INDEX_URL|PIP_EXTRA_INDEX_URL|REQUESTS_CA_BUNDLE|"
                         r"SSL_CERT_FILE|NODE_OPTIONS)$")
_ENV_CMD = re.compile(
    r"(?i)\bsetx\b|\breg(\.exe)?\s+add\b|\bSet-MpPreference\b|\bAdd-MpPreference\b|"
    r"\bnetsh\s+(advfirewall|firewall|winhttp)\b|\bSet-ItemProperty\b.*HK(LM|CU)|"
    r"\[Environment\]::SetEnvironmentVariable|\bbcdedit\b|\bvssadmin\b")


def _env_write(ctx: FileContext, node: ast.AST) -> tuple[str, str] | None:
    """(variable, how) when ``node`` writes to ``os.environ``."""
    if isinstance(node, ast.Assign):
        for tgt in node.targets:
            if isinstance(tgt, ast.Subscript) and ctx.resolver.qualname(tgt.value) == (
                    "os.environ"):
                var = ctx.resolver.fold(tgt.slice)
                return (var if isinstance(var, str) else "?"), "os.environ[...] ="
    if isinstance(node, ast.Call):
        name = ctx.resolver.qualname(node.func) or ""
        if name in ("os.environ.update", "os.environ.setdefault", "os.putenv"):
            var = ctx.resolver.fold(node.args[0]) if node.args else None
            return (var if isinstance(var, str) else "?"), name
    return None


@detector("environment_change", "code_modify_environment")
def environment_change(ctx: FileContext) -> Iterator[Signal]:
    """PATH/proxy/preload variables, persistent variables, registry and defender edits."""
    ff = facts(ctx)
    for st, node in ctx.statements():
        if node is None:
            continue
        what, base = "", 0.0
        for call in ff.calls(st):
            if is_exec(call.name):
                m = any_match(_ENV_CMD, ff.strings_deep(st))
                if m and not any_match(re.compile(r"(?i)CurrentVersion\\+Run"),
                                       ff.strings_deep(st)):
                    what, base = f"runs `{defang(m.group(0), 50)}`", 0.75
            elif call.name.split(".")[-1] in ("SetValueEx", "CreateKeyEx", "CreateKey",
                                               "RegSetValueEx") and call.name.startswith(
                    ("winreg", "_winreg", "win32api")):
                if not any_match(re.compile(r"(?i)CurrentVersion\\+Run"), ff.strings_deep(st)):
                    what, base = f"edits the registry with {call.name}", 0.6
        if not what:
            for sub in own_nodes(node):
                hit = _env_write(ctx, sub)
                if hit is None:
                    continue
                var, how = hit
                if _RISKY_VARS.match(var):
                    base = 0.35 if st.phase is Phase.CALL else 0.6
                    what = f"changes {var} through {how}"
                elif st.phase in (Phase.INSTALL, Phase.STARTUP):
                    what, base = f"sets {var} through {how}", 0.3
                break
        if what:
            yield ctx.signal("code_modify_environment", st, what,
                             confidence=scaled(base, st, ctx.source.path),
                             detector="environment_change")
