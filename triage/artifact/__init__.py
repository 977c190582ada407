"""Open a package safely, in memory: archives, directories, single files, or ``name==version``.

Nothing in a package is executed, imported, built or written to disk. Every archive header is
checked against :class:`Limits` before data is read, and reads are capped again in case the
headers lie. Hostile archives raise :class:`~triage.errors.ArtifactError`; suspicious members
that can be reported (links, devices, binaries) become ``SkippedFile`` records.
"""

from __future__ import annotations

import hashlib
import os
import re

from triage.artifact.archives import Corrupt, archive_format, detect_format
from triage.artifact.classify import basename, classify, extension, too_large
from triage.artifact.collect import Collector
from triage.artifact.limits import Limits
from triage.artifact.local import read_regular_file, walk_directory
from triage.artifact.metadata import collect_metadata
from triage.artifact.naming import archive_kind, name_version_from_filename
from triage.artifact.pypi import CHOICES, fetch
from triage.errors import ArtifactError, UsageError
from triage.model import Artifact, SkippedFile, SourceFile

__all__ = ["Limits", "open_artifact", "open_bytes"]

_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
    r"(?:==(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*))?$"
)
_VALID_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VALID_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
_FILE_LIKE_EXT = frozenset({".py", ".pyw", ".pth", ".txt", ".cfg", ".toml", ".md", ".rst"})
_NO_SNIFF_EXT = frozenset({".py", ".pyw", ".pth"})


def open_artifact(
    target: str,
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, so a shared default is safe
    artifact: str = "all",
    index_url: str = "https://pypi.org",
) -> Artifact:
    """Open a local archive, directory or file, or fetch ``name[==version]`` from an index.

    Args:
        target: a .whl/.zip/.egg/.tar.gz/.tgz/.tar.bz2/.tar.xz/.tar file, a directory, a
            single text file (.py, .pth...), or a requirement ``name`` / ``name==version``.
        limits: resource limits.
        artifact: for requirements: ``wheel``, ``sdist`` or ``all`` (wheel, else sdist).
        index_url: base URL of a PyPI-compatible JSON API.

    Returns:
        The artifact, read in memory.

    Raises:
        UsageError: ``artifact`` is not one of all/wheel/sdist.
        FetchError: the requirement could not be fetched or verified.
        ArtifactError: the target is missing, unreadable, over a limit or hostile.
    """
    if artifact not in CHOICES:
        raise UsageError(f"artifact must be one of {', '.join(CHOICES)}, not {artifact!r}")
    if os.path.lexists(target):
        if os.path.isdir(target):
            return _open_directory(target, limits)
        data = read_regular_file(os.path.realpath(target), limits.max_total_bytes)
        if len(data) > limits.max_total_bytes:
            raise ArtifactError(f"{target} is larger than {limits.max_total_bytes:,} bytes")
        return open_bytes(data, os.path.basename(target), limits=limits, source=target)
    requirement = _REQUIREMENT.match("".join(target.split()))
    looks_like_file = archive_format(target) is not None or extension(target) in _FILE_LIKE_EXT
    if requirement is None or looks_like_file:
        raise ArtifactError(f"no such file or directory, and not a requirement: {target}")
    name, version = requirement.group("name"), requirement.group("version")
    data, filename = fetch(
        name, version, artifact=artifact, index_url=index_url, cap=limits.max_total_bytes
    )
    return open_bytes(data, filename, limits=limits, source=target)


def open_bytes(
    data: bytes,
    filename: str,
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, so a shared default is safe
    source: str | None = None,
) -> Artifact:
    """Open an archive or single file held in memory.

    Args:
        data: the file's bytes.
        filename: its name; the extension picks the format (magic bytes when it does not).
        limits: resource limits.
        source: what the user asked for (defaults to ``filename``).

    Returns:
        The artifact; its sha256 is that of ``data``.

    Raises:
        ArtifactError: corrupt, hostile, over a limit, or neither an archive nor text.
    """
    if len(data) > limits.max_total_bytes:
        raise ArtifactError(f"{filename} is larger than {limits.max_total_bytes:,} bytes")
    fmt = detect_format(filename, data, sniff=extension(filename) not in _NO_SNIFF_EXT)
    collector = Collector(limits)
    if fmt is None:
        _open_single(collector, filename, data)
        kind = "file"
    else:
        try:
            collector.add_archive(data, fmt, filename, "", level=0)
        except Corrupt as exc:
            raise ArtifactError(f"cannot read {filename}: {exc}") from None
        kind = archive_kind(filename, fmt, (f.path for f in collector.files))
    fallback = name_version_from_filename(filename)
    digest = hashlib.sha256(data).hexdigest()
    return _build(collector, fallback, digest, kind, source or filename)


def _open_single(collector: Collector, filename: str, data: bytes) -> None:
    limits = collector.limits
    name = basename(filename)
    collector.budget.add_members(1, filename)
    collector.budget.add_bytes(len(data), filename)
    if len(data) > limits.max_file_bytes:
        collector.skip(too_large(name, len(data), limits))
        return
    records = classify(name, data, limits, single=True)
    reasons = [r.reason for r in records if isinstance(r, SkippedFile)]
    if not any(isinstance(r, SourceFile) for r in records):
        raise ArtifactError(
            f"{filename} is not an archive, a directory or a text file: {'; '.join(reasons)}"
        )
    collector.accept(records)


def _open_directory(root: str, limits: Limits) -> Artifact:
    collector = Collector(limits)
    digest = walk_directory(root, collector)
    fallback = (os.path.basename(os.path.abspath(root)), "")
    return _build(collector, fallback, digest, "directory", root)


def _build(
    collector: Collector, fallback: tuple[str, str], sha256: str, kind: str, source: str
) -> Artifact:
    files = collector.files
    metadata = collect_metadata(files)
    names = (f.value for f in metadata.all("name") if _VALID_NAME.match(f.value))
    versions = (f.value for f in metadata.all("version") if _VALID_VERSION.match(f.value))
    return Artifact(
        name=next(names, fallback[0]),
        version=next(versions, fallback[1]),
        sha256=sha256,
        kind=kind,
        source=source,
        files=files,
        skipped=collector.skipped,
        metadata=metadata,
    )
