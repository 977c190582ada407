"""Detectors of the defense-evasion family (obfuscation, hiding, error suppression).

The detectors live in ``evasion_*.py`` modules; this module lists them for the registry.
"""

from __future__ import annotations

from triage.indicators.base import Detector
from triage.indicators.evasion_decode import computed_strings, encoded_payload, encrypted_payload
from triage.indicators.evasion_hiding import hidden_code, reviewer_injection
from triage.indicators.evasion_obfuscation import obfuscated_code
from triage.indicators.evasion_suppress import error_suppression

#: Per-file detectors of this family, in the order they run.
DETECTORS: tuple[Detector, ...] = (
    obfuscated_code,
    encoded_payload,
    encrypted_payload,
    computed_strings,
    hidden_code,
    reviewer_injection,
)
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = ()
#: Detectors that see every other detector's signals (run after stage's POST detectors).
POST_DETECTORS: tuple[Detector, ...] = (error_suppression,)
