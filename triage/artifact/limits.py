"""Resource limits for opening untrusted artifacts, and the running budget that enforces them."""

from __future__ import annotations

from dataclasses import dataclass

from triage.errors import ArtifactError

MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """Caps applied while opening an artifact; every one is checked before data is read."""

    max_members: int = 20_000
    """Most members (files, directories, links) in the artifact, nested archives included;
    more rejects the whole artifact."""
    max_total_bytes: int = 512 * MIB
    """Most uncompressed bytes in all members together (and the largest download); more
    rejects the whole artifact."""
    max_file_bytes: int = 20 * MIB
    """Largest single member that is read; a larger one becomes a ``SkippedFile`` ("too large")."""
    max_ratio: float = 200.0
    """Highest compression ratio (uncompressed / compressed) of a zip member, or of a whole
    compressed tar stream, once it expands past 1 MiB; above it the artifact is rejected as a
    decompression bomb."""
    max_depth: int = 2
    """Deepest nesting of archives inside the artifact that is opened; deeper archives become a
    ``SkippedFile``."""
    max_line_chars: int = 1_000_000
    """Longest line expected in a text file. A file with a longer line is still kept (such a line
    is usually the obfuscated payload itself), and a ``SkippedFile`` with ``evidence=True`` notes
    the line so a reader knows why the file is unusual."""


class Budget:
    """Running totals for one artifact, shared by every nested archive inside it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.members = 0
        self.total_bytes = 0

    def add_members(self, count: int, where: str) -> None:
        """Count ``count`` more members; reject the artifact past ``max_members``."""
        self.members += count
        if self.members > self.limits.max_members:
            raise ArtifactError(
                f"too many members: {where} brings the artifact to {self.members:,} members "
                f"(limit {self.limits.max_members:,})"
            )

    def add_bytes(self, count: int, where: str) -> None:
        """Count ``count`` more uncompressed bytes; reject the artifact past ``max_total_bytes``."""
        self.total_bytes += count
        if self.total_bytes > self.limits.max_total_bytes:
            raise ArtifactError(
                f"too much data: {where} brings the uncompressed total to {self.total_bytes:,} "
                f"bytes (limit {self.limits.max_total_bytes:,})"
            )
