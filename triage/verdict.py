"""Package verdict from findings: a score with the reasons behind it. Pure.

Each code finding contributes ``weight(severity) * confidence * phase factor`` and the
contributions combine like independent evidence: ``score = 100 * (1 - prod(1 - w_i))``.
Metadata findings can raise suspicion but never make a package malicious on their own,
and neither can low-confidence capability findings.
"""

from __future__ import annotations

import re

from triage.model import Finding, Phase, SkippedFile, Verdict

SEVERITY_WEIGHT = {"critical": 0.6, "high": 0.4, "medium": 0.15, "low": 0.05}
PHASE_FACTOR = {Phase.INSTALL: 1.0, Phase.STARTUP: 1.0, Phase.IMPORT: 0.85, Phase.CALL: 0.55}
METADATA_CAP = 0.35  # metadata alone can reach "suspicious", never "malicious"
CHAIN_CAP = 0.25  # an attack chain is one more piece of evidence, below "suspicious" alone
MALICIOUS_AT = 70.0
SUSPICIOUS_AT = 30.0
STRONG_CONFIDENCE = 0.7


def _weight(f: Finding) -> float:
    w = SEVERITY_WEIGHT.get(f.severity, 0.05) * f.confidence
    if f.indicator.startswith("metadata_"):
        return min(w, METADATA_CAP)
    return w * PHASE_FACTOR.get(f.phase, 0.55)


_EXT_MODULE = re.compile(r"\.(so|pyd|dylib)(\.\d+)*$")
#: A binary the engine could not read: an executable is evidence, an extension module in a
#: platform wheel is normal, one in an sdist or a pure-Python wheel is odd.
BINARY_WEIGHT = {"executable": 0.35, "odd-extension": 0.3, "bytecode": 0.1}


def binary_evidence(skipped: tuple[SkippedFile, ...], pure: bool) -> list[tuple[str, float]]:
    """(reason, weight) for each skipped member that is itself evidence.

    Args:
        skipped: skipped members of the artifact.
        pure: the artifact should hold no native code (sdist, ``none-any`` wheel, directory).
    """
    out: list[tuple[str, float]] = []
    for s in skipped:
        if not s.evidence:
            continue
        name = s.path.rsplit("/", 1)[-1]
        if "bytecode" in s.reason:
            kind = "bytecode"
        elif _EXT_MODULE.search(name):
            if not pure:
                continue
            kind = "odd-extension"
        elif "executable" in s.reason or name.lower().endswith((".exe", ".dll", ".scr")):
            kind = "executable"
        else:
            continue
        out.append((f"{s.path}: {s.reason}", BINARY_WEIGHT[kind]))
    return out


def _strong(f: Finding) -> bool:
    return (
        not f.indicator.startswith("metadata_")
        and f.severity in ("high", "critical")
        and f.confidence >= STRONG_CONFIDENCE
    )


def _hidden(f: Finding) -> bool:
    """Packed or encoded code that runs on install/import: hidden, so worth a human look."""
    return (
        f.indicator.startswith("code_obfuscation")
        and f.confidence >= 0.6
        and f.phase is not Phase.CALL
    )


def decide(findings: tuple[Finding, ...], skipped: tuple[SkippedFile, ...] = (),
           pure: bool = True, chain_bonus: float = 0.0, chain_reason: str = "") -> Verdict:
    """Verdict for a package from its findings.

    Args:
        findings: every finding of the package (static and verified LLM ones).
        skipped: members not analysed; embedded executables among them count as evidence
            (enough for "suspicious", never for "malicious" on their own).
        pure: the artifact should hold no native code (see :func:`binary_evidence`).
        chain_bonus: weight of the attack chain as a whole (:func:`triage.chains.chain_score`),
            one more independent piece of evidence, capped at :data:`CHAIN_CAP`: it can lift
            weak findings to "suspicious" but never makes a package malicious without a
            strong finding.
        chain_reason: why the chain counts (added to the reasons when the bonus is used).

    Returns:
        ``malicious`` when the score is at least 70 and a strong (high/critical severity,
        confidence >= 0.7) code finding backs it; ``suspicious`` from 30; else ``benign``.
    """
    remaining = 1.0
    for f in findings:
        remaining *= 1.0 - min(_weight(f), 0.95)
    binaries = binary_evidence(skipped, pure)
    if binaries:  # several launchers in one wheel are one fact, not independent evidence
        remaining *= 1.0 - max(w for _, w in binaries)
    bonus = min(max(chain_bonus, 0.0), CHAIN_CAP) if findings else 0.0
    remaining *= 1.0 - bonus
    score = round(100.0 * (1.0 - remaining), 1)
    strong = [f for f in findings if _strong(f)]
    if score >= MALICIOUS_AT and strong:
        label = "malicious"
    elif score >= SUSPICIOUS_AT or strong or any(_hidden(f) for f in findings):
        label = "suspicious"
    else:
        label = "benign"
    ranked = sorted(findings, key=_weight, reverse=True)
    reasons: list[str] = []
    seen: set[str] = set()
    for f in ranked:
        if f.indicator in seen or len(reasons) >= 5:
            continue
        seen.add(f.indicator)
        reasons.append(
            f"{f.indicator} at {f.file}:{f.start_line} ({f.severity}, {f.phase.value} time, "
            f"confidence {f.confidence:.2f})"
        )
    if bonus and chain_reason:
        reasons.append(f"{chain_reason} (+{bonus:.2f} evidence)")
    reasons += [f"embedded binary not analysed: {r}" for r, _ in binaries[:3]]
    if not findings and not binaries:
        reasons.append("no indicator of malicious behaviour found by the static engine")
    return Verdict(label=label, score=score, reasons=tuple(reasons))
