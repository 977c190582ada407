"""triage: explainable, statement-level triage of suspect Python packages."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from triage.model import Report


def explain(target: str, **options: object) -> Report:
    """Analyse ``target`` (path, archive, ``name==version``) without running it.

    Args:
        target: a .whl/.tar.gz/.zip/.egg, a directory, a .py/.pth file, or ``name[==version]``.
        **options: fields of :class:`triage.pipeline.Options` (``min_confidence``,
            ``artifact``, ``index_url``).

    Returns:
        The report: findings, verdict, chain and skipped members.

    Raises:
        triage.errors.ArtifactError: the target is unreadable or rejected as hostile.
    """
    from triage.pipeline import Options
    from triage.pipeline import explain as _explain

    return _explain(target, Options(**options))  # type: ignore[arg-type]
