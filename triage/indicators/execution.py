"""Detectors of the execution-mechanism family: how a payload is run.

The detectors live in small modules: :mod:`execution_eval` (exec/eval, encoded and decrypted
payloads, dynamic imports), :mod:`execution_shell` (shell commands), :mod:`execution_process`
(executables, scripts, pip, hidden and silent processes) and :mod:`execution_post`
(environment-conditional triggers, judged after the other detectors ran). Shared helpers:
:mod:`execution_common`, :mod:`execution_commands`.
"""

from __future__ import annotations

from triage.indicators import (
    execution_eval,
    execution_post,
    execution_process,
    execution_shell,
)
from triage.indicators.base import Detector

#: Per-file detectors of this family, in the order they run.
DETECTORS: tuple[Detector, ...] = (
    *execution_eval.DETECTORS,
    *execution_shell.DETECTORS,
    *execution_process.DETECTORS,
)
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = ()
#: Post detectors: receive ``(PackageContext, signals)`` after all others ran.
POST_DETECTORS: tuple[Detector, ...] = execution_post.POST_DETECTORS
