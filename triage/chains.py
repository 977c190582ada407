"""Attack chains: a package's findings in execution order, known workflows, a chain score.

Pure functions of findings, statement indices and mined workflows:

* :func:`build_chain` orders code findings as the attack runs (trigger phase, then static
  call flow, then source order; see :mod:`triage.execution`) and keeps one step per distinct
  indicator, at its first finding, so a chain reads like "install hook -> decode -> exec ->
  exfiltrate".
* :func:`match_workflows` finds the known workflows (``kb/chains.yaml``) whose indicator
  sequence the chain contains in order.
* :func:`chain_score` turns a coherent chain into one more piece of evidence for the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triage.execution import Position, execution_order
from triage.mining import is_subsequence
from triage.model import ChainStep, Finding, Phase, WorkflowMatch
from triage.statements import FileIndex
from triage.verdict import CHAIN_CAP
from triage.workflows import Workflow

MAX_STEPS = 12
"""Longest chain kept; beyond it the weakest steps (severity x confidence) are dropped."""
MAX_MATCHES = 3
"""Most workflow matches reported per chain."""
MIN_STEP_CONFIDENCE = 0.5
"""Findings below this confidence are capabilities, not attack steps (used only when the
package has stronger findings)."""

TYPE_ORDER = {
    "Execution Stage": 0,
    "Defense Evasion": 1,
    "System Impact": 2,
    "Network Operations": 3,
    "Execution Mechanism": 4,
    "Exfiltration": 5,
}
"""Order of several indicators on one statement: the trigger, then decoding, reading and
fetching (the arguments), then running or sending them (the call)."""
_SEVERITY = {"critical": 0.6, "high": 0.4, "medium": 0.15, "low": 0.05}
_UNPLACED = 10**9


def is_code(indicator: str) -> bool:
    """True for behaviour indicators; metadata is not a step of what runs."""
    return not indicator.startswith("metadata_")


def _weight(f: Finding) -> float:
    return _SEVERITY.get(f.severity, 0.05) * f.confidence


def _key(f: Finding, order: Mapping[str, Position]) -> tuple[int, int, str, int, int, str]:
    pos = order.get(f.statement_id)
    if pos is None:  # e.g. an LLM finding in a file the engine did not index
        return (f.phase.order, _UNPLACED, f.file, f.start_line, TYPE_ORDER.get(f.type, 4),
                f.indicator)
    return (pos.phase.order, pos.rank, "", TYPE_ORDER.get(f.type, 4), f.start_line,
            f.indicator)


def ordered_findings(findings: Sequence[Finding],
                     indices: Mapping[str, FileIndex]) -> tuple[tuple[int, Phase], ...]:
    """(finding index, effective phase) of every code finding, in execution order."""
    code = [(i, f) for i, f in enumerate(findings) if is_code(f.indicator)]
    # one statement needs no order (and walking a large package's call flow costs time)
    single = len({f.statement_id for _, f in code}) < 2
    order = execution_order(indices) if indices and not single else {}
    code.sort(key=lambda t: (_key(t[1], order), t[0]))
    out = []
    for i, f in code:
        pos = order.get(f.statement_id)
        out.append((i, pos.phase if pos is not None else f.phase))
    return tuple(out)


def build_chain(findings: Sequence[Finding],
                indices: Mapping[str, FileIndex] | None = None) -> tuple[ChainStep, ...]:
    """The attack chain: one step per distinct behaviour, in execution order.

    Args:
        findings: the report's findings (``ChainStep.finding_index`` indexes this sequence).
        indices: the engine's statement indices by path; without them findings are ordered
            by their own phase, then file, then line.

    Returns:
        Steps in execution order, each at the first finding of its indicator; findings below
        :data:`MIN_STEP_CONFIDENCE` count only when nothing stronger was found, and at most
        :data:`MAX_STEPS` steps are kept (the weakest dropped, the first one never).
    """
    ordered = ordered_findings(findings, indices or {})
    strong = [t for t in ordered if findings[t[0]].confidence >= MIN_STEP_CONFIDENCE]
    steps: list[ChainStep] = []
    seen: set[str] = set()
    for i, phase in strong or ordered:
        f = findings[i]
        if f.indicator in seen:
            continue
        seen.add(f.indicator)
        steps.append(ChainStep(phase=phase, indicator=f.indicator, finding_index=i))
    while len(steps) > MAX_STEPS:
        weakest = min(range(1, len(steps)),
                      key=lambda k: (_weight(findings[steps[k].finding_index]), -k))
        del steps[weakest]
    return tuple(steps)


def match_workflows(chain: Sequence[ChainStep],
                    workflows: Sequence[Workflow]) -> tuple[WorkflowMatch, ...]:
    """Known workflows whose pattern the chain contains in order, strongest first.

    A workflow whose pattern lies inside another matched pattern adds nothing and is left
    out; the rest are sorted by pattern length, then support, then ID, and the first
    :data:`MAX_MATCHES` are kept.
    """
    indicators = [s.indicator for s in chain]
    hits = [w for w in workflows if w.pattern and is_subsequence(w.pattern, indicators)]
    maximal = [
        w for w in hits
        if not any(len(o.pattern) > len(w.pattern) and is_subsequence(w.pattern, o.pattern)
                   for o in hits)
    ]
    maximal.sort(key=lambda w: (-len(w.pattern), -w.support, w.id))
    out: list[WorkflowMatch] = []
    for w in maximal:
        if any(m.pattern == w.pattern for m in out):
            continue
        out.append(WorkflowMatch(name=w.id, pattern=w.pattern, support=w.support))
    return tuple(out[:MAX_MATCHES])


STEP_CONFIDENCE = 0.6
TRIGGER_FACTOR = {Phase.INSTALL: 1.0, Phase.STARTUP: 1.0, Phase.IMPORT: 0.85, Phase.CALL: 0.4}


def chain_score(chain: Sequence[ChainStep], findings: Sequence[Finding],
                matches: Sequence[WorkflowMatch] = ()) -> tuple[float, str]:
    """Evidence weight (0..:data:`CHAIN_CAP`) of the chain as a whole, and why.

    Separate suspicious behaviours that run one after the other, from a trigger that needs
    no user action, are stronger evidence than the same findings scattered through a
    library: each behaviour type beyond the first adds 0.05 (at most 0.15), a matched known
    workflow adds 0.04 per step beyond the first (at most 0.1), and the sum is scaled by
    when the first step runs (install/start-up 1.0, import 0.85, call 0.4). Only steps of
    medium or higher severity with confidence >= 0.6 count; fewer than two such steps of
    different types score 0.

    Returns:
        ``(weight, reason)``; ``(0.0, "")`` when the chain adds nothing.
    """
    steps = [
        s for s in chain
        if 0 <= s.finding_index < len(findings)
        and findings[s.finding_index].confidence >= STEP_CONFIDENCE
        and findings[s.finding_index].severity in ("medium", "high", "critical")
    ]
    types = list(dict.fromkeys(findings[s.finding_index].type for s in steps))
    if len(types) < 2:
        return 0.0, ""
    breadth = min(0.15, 0.05 * (len(types) - 1))
    best = max((len(m.pattern) for m in matches), default=0)
    known = min(0.1, 0.04 * (best - 1)) if best >= 2 else 0.0
    trigger = steps[0].phase
    weight = round(min(CHAIN_CAP, (breadth + known) * TRIGGER_FACTOR[trigger]), 3)
    if weight <= 0:
        return 0.0, ""
    why = (f"attack chain of {len(steps)} steps across {len(types)} behaviour types from "
           f"{trigger.value} time")
    if matches:
        why += f", matches known workflow {matches[0].name} (support {matches[0].support:.2f})"
    return weight, why


@dataclass(frozen=True)
class ChainAnalysis:
    """Everything the chain contributes to a report."""

    chain: tuple[ChainStep, ...]
    workflows: tuple[WorkflowMatch, ...]
    """Known workflows the chain matches, strongest first."""
    bonus: float
    """Evidence weight for :func:`triage.verdict.decide` (``chain_bonus``)."""
    reason: str
    """Why the chain counts (``chain_reason``); empty when ``bonus`` is 0."""


def analyse_chain(findings: Sequence[Finding], indices: Mapping[str, FileIndex] | None = None,
                  workflows: Sequence[Workflow] | None = None) -> ChainAnalysis:
    """Chain, workflow matches and chain score of a package in one call.

    Args:
        findings: the report's findings (static and verified LLM ones), in report order.
        indices: the engine's statement indices (``EngineResult.indices``).
        workflows: known workflows; default ``kb/chains.yaml``.
    """
    if workflows is None:
        from triage.workflows import load_workflows

        workflows = load_workflows()
    chain = build_chain(findings, indices)
    matches = match_workflows(chain, workflows)
    bonus, reason = chain_score(chain, findings, matches)
    return ChainAnalysis(chain=chain, workflows=matches, bonus=bonus, reason=reason)
