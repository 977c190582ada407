"""Post detectors of the execution family, and the signal index that post detectors share.

Post detectors run after every per-file and package detector and receive their signals, so
they can judge a statement by the behaviour it guards or launches: an ``if os.name == "nt":``
is only an environment-conditional trigger when the block under it does something malicious.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from triage.indicators.base import FileContext, PackageContext, detector
from triage.indicators.execution_common import callee
from triage.model import FileKind, Phase, Signal, Statement

#: Indicators that are not behaviour themselves (stage, evasion, conditions, metadata).
NOT_BEHAVIOUR = frozenset({
    "code_suppressing_error", "code_execution_environment_specific", "code_execution_runtime",
    "code_execution_install", "code_execution_install_hook_override",
    "code_execution_startup_hook", "code_prompt_injection",
})


def is_behaviour(indicator: str) -> bool:
    """True for indicators that show malicious behaviour (execution, network, exfil, impact)."""
    return (indicator.startswith("code_") and indicator not in NOT_BEHAVIOUR
            and not indicator.startswith("code_obfuscation"))


def path_of(statement_id: str) -> str:
    """File path part of a statement ID (``setup.py:12:0`` -> ``setup.py``)."""
    return statement_id.rsplit(":", 2)[0]


@dataclass
class SignalIndex:
    """Behaviour signals by statement, with decoded payloads credited to their origin."""

    pkg: PackageContext
    by_statement: dict[str, list[Signal]] = field(default_factory=dict)
    payload: dict[str, float] = field(default_factory=dict)
    """Origin statement ID -> strongest behaviour found in the payloads decoded from it."""
    _children: dict[str, dict[str | None, list[Statement]]] = field(default_factory=dict)

    @classmethod
    def build(cls, pkg: PackageContext, signals: Iterable[Signal]) -> SignalIndex:
        """Index the behaviour signals of a run."""
        idx = cls(pkg)
        for s in signals:
            if is_behaviour(s.indicator):
                idx.by_statement.setdefault(s.statement_id, []).append(s)
        for fc in reversed(pkg.files):  # decoded files come after their origin file
            src = fc.source
            if src.kind is not FileKind.DECODED or not src.origin:
                continue
            best = max((idx.own(st.id) for st in fc.index.statements), default=0.0)
            if best > idx.payload.get(src.origin, 0.0):
                idx.payload[src.origin] = best
        return idx

    def own(self, statement_id: str) -> float:
        """Strongest behaviour on the statement itself or in payloads decoded from it."""
        conf = max((s.confidence for s in self.by_statement.get(statement_id, ())), default=0.0)
        return max(conf, self.payload.get(statement_id, 0.0))

    def strongest(self, statement_id: str) -> Signal | None:
        """The most confident behaviour signal on a statement (payloads excluded)."""
        sigs = self.by_statement.get(statement_id, ())
        return max(sigs, key=lambda s: s.confidence) if sigs else None

    def children(self, fc: FileContext, parent: str | None) -> list[Statement]:
        """Direct child statements of ``parent`` (None: module level) in ``fc``."""
        table = self._children.get(fc.source.path)
        if table is None:
            table = {}
            for st in fc.index.statements:
                table.setdefault(st.parent, []).append(st)
            self._children[fc.source.path] = table
        return table.get(parent, [])

    def subtree(self, fc: FileContext, statement_id: str) -> list[Statement]:
        """Every statement nested under ``statement_id`` (not itself)."""
        out: list[Statement] = []
        work = list(self.children(fc, statement_id))
        while work:
            st = work.pop()
            out.append(st)
            work.extend(self.children(fc, st.id))
        return out

    def strongest_in(self, statements: Iterable[Statement]) -> tuple[float, Statement | None]:
        """Strongest behaviour among statements, and where it is."""
        best, where = 0.0, None
        for st in statements:
            conf = self.own(st.id)
            # ties go to the earliest statement, whatever order the caller gathered them in
            if conf > best or (conf == best and where is not None and conf > 0
                               and (st.file, st.start_line, st.id) < (where.file,
                                                                       where.start_line,
                                                                       where.id)):
                best, where = conf, st
        return best, where


_PLATFORM = frozenset({
    "os.name", "sys.platform", "platform.system", "platform.platform", "platform.release",
    "platform.version", "platform.machine", "platform.uname", "os.uname", "platform.win32_ver",
    "platform.mac_ver", "sys.getwindowsversion", "platform.architecture", "platform.node",
    "getpass.getuser", "os.getlogin", "socket.gethostname", "socket.getfqdn",
    "locale.getdefaultlocale", "locale.getlocale", "time.tzname", "datetime.datetime.now",
    "datetime.date.today", "datetime.datetime.today", "datetime.now", "date.today",
    "ctypes.windll.kernel32.GetUserDefaultUILanguage", "os.cpu_count", "psutil.virtual_memory",
    "multiprocessing.cpu_count", "shutil.disk_usage", "uuid.getnode",
})
_ENV_KEYS = re.compile(r"(?i)^(USERNAME|USER|COMPUTERNAME|HOSTNAME|USERDOMAIN|LOGNAME|"
                       r"PROCESSOR_ARCHITECTURE|OS|CI|GITHUB_ACTIONS|TRAVIS|JENKINS_URL|LANG)$")
_ANTI = re.compile(r"(?i)(vbox|vmware|virtualbox|qemu|sandbox|xen\b|hyper-?v|kvm|parallels|"
                   r"wireshark|procmon|ollydbg|x64dbg|x32dbg|idaq|fiddler|cuckoo|any\.run|"
                   r"joebox|isdebuggerpresent|debugger|gettrace|wdagutilityaccount|malware)")
_EXITS = ("sys.exit", "exit", "quit", "os._exit")


def env_check(fc: FileContext, node: ast.AST) -> tuple[str, bool]:
    """What an ``if`` test inspects about the host ('' if nothing), and whether it is
    anti-analysis (VM, sandbox, debugger detection)."""
    what = ""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and _ANTI.search(
                sub.value):
            return f"`{sub.value[:40]}` (sandbox/VM check)", True
        name = ""
        if isinstance(sub, ast.Call):
            name = callee(fc, sub)
            if name.split(".")[-1] in ("gettrace", "IsDebuggerPresent"):
                return f"{name}() (debugger check)", True
            if name.endswith(("environ.get", "getenv")) and sub.args:
                key = fc.resolver.fold(sub.args[0])
                if isinstance(key, str) and _ENV_KEYS.match(key):
                    what = what or f"the {key} environment variable"
        elif isinstance(sub, (ast.Attribute, ast.Name)):
            name = fc.resolver.qualname(sub) or ""
        elif isinstance(sub, ast.Subscript):
            key = fc.resolver.fold(sub.slice)
            base = fc.resolver.qualname(sub.value) or ""
            if base.endswith("environ") and isinstance(key, str) and _ENV_KEYS.match(key):
                what = what or f"the {key} environment variable"
        if name in _PLATFORM:
            what = what or name
    return what, False


def _exits_only(fc: FileContext, node: ast.If) -> bool:
    for stmt in node.body:
        if isinstance(stmt, (ast.Return, ast.Pass, ast.Raise)):
            continue
        if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                and callee(fc, stmt.value) in _EXITS):
            continue
        return False
    return True


@detector("environment_specific", "code_execution_environment_specific")
def environment_specific(arg: tuple[PackageContext, tuple[Signal, ...]]) -> Iterator[Signal]:
    """An ``if`` on the OS, user, host, date or a sandbox that gates malicious behaviour."""
    pkg, signals = arg
    idx = SignalIndex.build(pkg, signals)
    for fc in pkg.files:
        for st, node in fc.statements():
            if not isinstance(node, ast.If):
                continue
            what, anti = env_check(fc, node.test)
            if not what:
                continue
            guarded = idx.subtree(fc, st.id)
            if _exits_only(fc, node):
                later = [s for s in idx.children(fc, st.parent)
                         if s.start_line > st.end_line and s.scope == st.scope]
                guarded = later + [x for s in later for x in idx.subtree(fc, s.id)]
            best, where = idx.strongest_in(guarded)
            if anti:
                conf = max(0.6, best) if best else 0.35
            elif best >= (0.5 if st.phase is not Phase.CALL else 0.7):
                conf = best
            else:
                continue
            tail = f"; it guards line {where.start_line}" if where is not None else ""
            yield fc.signal("code_execution_environment_specific", st,
                            f"runs its branch only depending on {what}{tail}",
                            confidence=round(min(conf, 0.9), 2), detector="environment_specific")


POST_DETECTORS = (environment_specific,)
