"""Artifact identity from file names and member layout."""

from __future__ import annotations

import re
from collections.abc import Iterable

from triage.artifact.classify import extension

_SDIST_SUFFIXES = (
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tar",
    ".zip",
)
_ROOT_MARKERS = re.compile(r"^(?:[^/]+/)?(?:PKG-INFO|setup\.py|pyproject\.toml)$")
_WHEEL_MARKER = re.compile(r"^[^/]+\.dist-info/(?:WHEEL|METADATA)$")


def name_version_from_filename(filename: str) -> tuple[str, str]:
    """``(name, version)`` parsed from a wheel, egg or sdist file name; else ``(stem, "")``.

    Examples: ``demo-1.0-py3-none-any.whl`` and ``demo-1.0.tar.gz`` give ``("demo", "1.0")``.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    if lower.endswith((".whl", ".egg")):
        parts = base[:-4].split("-")
        if len(parts) >= 2 and parts[0] and parts[1][:1].isdigit():
            return parts[0], parts[1]
        return base[:-4], ""
    for suffix in _SDIST_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            stem = base[: -len(suffix)]
            name, dash, version = stem.rpartition("-")
            if dash and name and version[:1].isdigit():
                return name, version
            return stem, ""
    ext = extension(base)
    return (base[: -len(ext)] if ext else base), ""


def archive_kind(filename: str, fmt: str, member_paths: Iterable[str]) -> str:
    """wheel, egg, sdist or zip, from the file name and (for other zips) the layout."""
    lower = filename.lower()
    if fmt != "zip":
        return "sdist"
    if lower.endswith(".whl"):
        return "wheel"
    if lower.endswith(".egg"):
        return "egg"
    paths = list(member_paths)
    if any(_WHEEL_MARKER.match(path) for path in paths):
        return "wheel"  # a wheel under another name
    if any(_ROOT_MARKERS.match(path) for path in paths):
        return "sdist"
    return "zip"
