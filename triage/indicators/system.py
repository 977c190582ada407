"""Detectors of the system-impact family (reconnaissance, secrets, files, persistence).

The detectors live in ``system_*.py`` modules; this module lists them for the registry.
"""

from __future__ import annotations

from triage.indicators.base import Detector
from triage.indicators.system_fileops import extension_change, file_relocation, file_removal
from triage.indicators.system_persist import environment_change, startup_persistence
from triage.indicators.system_recon import system_reconnaissance
from triage.indicators.system_secrets import credential_stores, crypto_wallets, directory_sweep
from triage.indicators.system_writes import payload_write, sensitive_write

#: Per-file detectors of this family, in the order they run.
DETECTORS: tuple[Detector, ...] = (
    system_reconnaissance,
    credential_stores,
    crypto_wallets,
    directory_sweep,
    payload_write,
    sensitive_write,
    file_removal,
    extension_change,
    file_relocation,
    startup_persistence,
    environment_change,
)
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = ()
