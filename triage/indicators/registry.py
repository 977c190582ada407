"""The explicit detector registry: every detector that runs is listed here, by family."""

from __future__ import annotations

from triage.indicators import (
    evasion,
    execution,
    exfiltration,
    metadata,
    network,
    stage,
    system,
)
from triage.indicators.base import Detector

_FAMILIES = (stage, execution, evasion, network, exfiltration, system, metadata)

#: Per-file detectors, run on every Python/.pth/decoded file.
FILE_DETECTORS: tuple[Detector, ...] = tuple(d for f in _FAMILIES for d in f.DETECTORS)
#: Package-level detectors, run once per artifact (metadata, cross-file facts).
PACKAGE_DETECTORS: tuple[Detector, ...] = tuple(
    d for f in _FAMILIES for d in f.PACKAGE_DETECTORS
)
#: Post detectors see the signals of all others (e.g. code_execution_runtime).
POST_DETECTORS: tuple[Detector, ...] = (
    *getattr(stage, "POST_DETECTORS", ()),
    *getattr(execution, "POST_DETECTORS", ()),
    *getattr(evasion, "POST_DETECTORS", ()),
)


def covered_indicators() -> frozenset[str]:
    """Every indicator ID some registered detector can raise."""
    return frozenset(
        i for d in FILE_DETECTORS + PACKAGE_DETECTORS + POST_DETECTORS for i in d.indicators
    )
