"""Open local files and directories without following links or writing anything."""

from __future__ import annotations

import hashlib
import os
import stat

from triage.artifact.classify import too_large
from triage.artifact.collect import Collector
from triage.errors import ArtifactError
from triage.model import SkippedFile

SKIP_DIRS = frozenset({".git", "__pycache__", ".venv"})
"""Directory names that are never walked (version control, caches, virtual environments)."""
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_HASH_CHUNK = 2**20


def read_regular_file(path: str, cap: int) -> bytes:
    """Read at most ``cap + 1`` bytes of a regular file, refusing links, fifos and devices.

    Raises:
        ArtifactError: the path is not a readable regular file.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ArtifactError(f"cannot open {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactError(f"{path} is not a regular file")
        return handle.read(cap + 1)


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with os.fdopen(os.open(path, _OPEN_FLAGS), "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _special_reason(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISFIFO(mode):
        return "fifo (named pipe), not read"
    return "socket or other special file, not read"


def walk_directory(root: str, collector: Collector) -> str:
    """Add every file under ``root`` to ``collector``; return the directory's sha256.

    The digest covers a sorted listing of ``<file sha256>  <relative path>`` lines.
    Symlinks are recorded as skipped and never followed; nothing is written.
    """
    found: list[tuple[str, str, int]] = []  # (relative path, full path, lstat mode)
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, relative_dir)))
        except OSError as exc:
            raise ArtifactError(f"cannot list {relative_dir or root}: {exc.strerror}") from None
        for entry in entries:
            rel = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    stack.append(rel)
                continue
            collector.budget.add_members(1, root)  # fails fast on huge trees
            found.append((rel, entry.path, entry.stat(follow_symlinks=False).st_mode))
    listing: list[str] = []
    for rel, path, mode in sorted(found):
        if stat.S_ISLNK(mode):
            collector.skip(SkippedFile(rel, "symlink, not followed"))
        elif not stat.S_ISREG(mode):
            collector.skip(SkippedFile(rel, _special_reason(mode)))
        else:
            listing.append(f"{_add_file(path, rel, collector)}  {rel}\n")
    return hashlib.sha256("".join(listing).encode()).hexdigest()


def _add_file(path: str, rel: str, collector: Collector) -> str:
    limits = collector.limits
    size = os.stat(path, follow_symlinks=False).st_size
    collector.budget.add_bytes(size, rel)
    if size > limits.max_file_bytes:
        collector.skip(too_large(rel, size, limits))
        return _hash_file(path)
    data = read_regular_file(path, limits.max_file_bytes)
    if len(data) > limits.max_file_bytes:  # the file grew after it was measured
        collector.skip(too_large(rel, len(data), limits))
        return _hash_file(path)
    executable = bool(os.stat(path, follow_symlinks=False).st_mode & 0o111)
    collector.add(rel, data, level=0, executable=executable)
    return hashlib.sha256(data).hexdigest()
