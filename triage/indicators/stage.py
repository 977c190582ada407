"""Detectors of the execution-stage family: when malicious code gets control.

All of them are post detectors: they judge a statement by the behaviour the other
detectors found in what it launches or guards. ``code_execution_runtime`` marks the
module-level statement that starts behaviour at install/start-up/import time;
the hook, install-gate and start-up detectors live in :mod:`stage_hooks`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import Detector, FileContext, PackageContext, detector
from triage.indicators.execution_post import SignalIndex
from triage.indicators.stage_hooks import install_gate, install_hook_override, startup_hook
from triage.model import Phase, Signal, Statement

_MAIN_GUARD = re.compile(r"""__name__\s*==\s*['"]__main__['"]|['"]__main__['"]\s*==\s*__name__""")
_CALLBACK_SINKS = ("Thread", "Process", "register", "Timer", "start_new_thread", "submit")
_REPORT_FLOOR = 0.35


def _under_main_guard(fc: FileContext, st: Statement,
                      memo: dict[str, bool] | None = None) -> bool:
    """True when an enclosing ``if __name__ == "__main__":`` guards ``st``.

    ``memo`` caches the answer per statement ID: walking every parent chain again made
    5,000-deep nesting quadratic.
    """
    memo = {} if memo is None else memo
    chain: list[str] = []
    parent = st.parent
    result = False
    while parent is not None and parent in fc.index:
        if parent in memo:
            result = memo[parent]
            break
        chain.append(parent)
        pst = fc.index.get(parent)
        if pst.kind == "If" and _MAIN_GUARD.search(pst.text.split("\n")[0]):
            result = True
            break
        parent = pst.parent
    for sid in chain:
        memo[sid] = result
    return result


def _called_names(nodes: list[ast.AST]) -> set[str]:
    """Local names a statement calls: ``f()``, ``self.f()``, ``Thread(target=f)``."""
    out: set[str] = set()
    for sub in nodes:
        if not isinstance(sub, ast.Call):
            continue
        if isinstance(sub.func, ast.Name):
            out.add(sub.func.id)
        elif isinstance(sub.func, ast.Attribute):
            if isinstance(sub.func.value, ast.Name) and sub.func.value.id in ("self", "cls"):
                out.add(sub.func.attr)
            elif isinstance(sub.func.value, ast.Call) and isinstance(sub.func.value.func,
                                                                     ast.Name):
                out.add(f"{sub.func.value.func.id}.{sub.func.attr}")  # Cls().method()
        last = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(
            sub.func, "id", "")
        if last in _CALLBACK_SINKS:
            for a in list(sub.args) + [k.value for k in sub.keywords]:
                if isinstance(a, ast.Name):
                    out.add(a.id)
    return out


_CONSTRUCTORS = ("__new__", "__init__", "__post_init__")
"""What instantiating a class runs (its other methods run only when something calls them)."""


class _Reach:
    """Which statements run when a module-level statement calls local functions/classes."""

    def __init__(self, fc: FileContext) -> None:
        self.fc = fc
        self.defs: dict[str, str] = {}  # local name -> scope prefix
        self.classes: set[str] = set()  # scopes of classes
        for st, node in fc.statements():
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                scope = node.name if st.scope == "<module>" else f"{st.scope}.{node.name}"
                if isinstance(node, ast.ClassDef):
                    self.classes.add(scope)
                if st.scope == "<module>" or isinstance(node, (ast.FunctionDef,
                                                               ast.AsyncFunctionDef)):
                    self.defs.setdefault(node.name, scope)
        self.by_scope: dict[str, list[Statement]] = {}
        self.calls: dict[str, set[str]] = {}
        for st, node in fc.statements():
            if st.scope == "<module>":
                continue
            self.by_scope.setdefault(st.scope, []).append(st)
            if node is not None:
                self.calls.setdefault(st.scope, set()).update(_called_names(fc.own(st)))

    def _targets(self, name: str) -> list[str]:
        """Scope prefixes a call of ``name`` runs: a function, a class's constructors, or
        ``Cls.method`` of an instance made on the spot."""
        head, _, method = name.partition(".")
        scope = self.defs.get(head)
        if scope is None:
            return []
        if scope not in self.classes:
            return [scope]
        return [f"{scope}.{m}" for m in ((method,) if method else _CONSTRUCTORS)]

    def statements(self, names: set[str]) -> list[Statement]:
        """Statements of the local functions ``names`` and of everything they call."""
        seen: set[str] = set()
        work = [t for n in sorted(names) for t in self._targets(n)]
        out: list[Statement] = []
        while work:
            prefix = work.pop()
            if prefix in seen:
                continue
            seen.add(prefix)
            for scope, sts in self.by_scope.items():
                if scope == prefix or scope.startswith(prefix + "."):
                    out.extend(sts)
                    for callee_name in sorted(self.calls.get(scope, ())):
                        work.extend(self._targets(callee_name))
        return out


@detector("runtime", "code_execution_runtime")
def runtime(arg: tuple[PackageContext, tuple[Signal, ...]]) -> Iterator[Signal]:
    """A module-level statement that launches malicious behaviour at install/import time."""
    pkg, signals = arg
    idx = SignalIndex.build(pkg, signals)
    for fc in pkg.files:
        reach: _Reach | None = None
        guard_memo: dict[str, bool] = {}
        for st, node in fc.statements():
            if st.scope != "<module>" or st.phase is Phase.CALL or node is None:
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if st.phase is Phase.IMPORT and _under_main_guard(fc, st, guard_memo):
                continue
            own_nodes = fc.own(st)
            if not any(isinstance(n, ast.Call) for n in own_nodes):
                continue  # only a statement that calls something can launch behaviour
            best, where = _own(idx, st, own_nodes), None
            names = _called_names(own_nodes)
            if names:
                reach = reach or _Reach(fc)
                far, far_st = idx.strongest_in(reach.statements(names))
                if far > best:
                    best, where = far, far_st
            if best < _REPORT_FLOOR:
                continue
            yield fc.signal("code_execution_runtime", st, _evidence(idx, st, where),
                            confidence=round(min(best, 0.95), 2), detector="runtime")


def _own(idx: SignalIndex, st: Statement, nodes: list[ast.AST]) -> float:
    """Behaviour of the statement itself; a decoded payload counts only when the statement
    runs code (a payload that is merely decoded or stored is not launched here)."""
    sig = idx.strongest(st.id)
    own = sig.confidence if sig else 0.0
    runs = sig is not None or any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        and n.func.id in ("exec", "eval", "compile") for n in nodes)
    return max(own, idx.payload.get(st.id, 0.0)) if runs else own


def _evidence(idx: SignalIndex, st: Statement, where: Statement | None) -> str:
    when = f"at {st.phase.value} time"
    if where is not None:
        sig = idx.strongest(where.id)
        what = sig.indicator if sig else "decoded payload behaviour"
        return (f"runs {when} from module level and reaches `{what}` in {where.scope}() "
                f"(line {where.start_line})")
    sig = idx.strongest(st.id)
    what = sig.indicator if sig else "a decoded payload with malicious behaviour"
    return f"runs {when} from module level, with no call by the user: {what}"


#: Per-file detectors of this family (none: stage findings need the other signals).
DETECTORS: tuple[Detector, ...] = ()
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = ()
#: Post detectors: receive ``(PackageContext, signals)``.
POST_DETECTORS: tuple[Detector, ...] = (
    runtime, install_hook_override, install_gate, startup_hook,
)
