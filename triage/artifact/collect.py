"""Gather members into kept sources and skipped records, opening nested archives."""

from __future__ import annotations

from triage.artifact.archives import Corrupt, RawMember, detect_format, read_members
from triage.artifact.classify import basename, classify
from triage.artifact.limits import Budget, Limits
from triage.model import SkippedFile, SourceFile

_DUPLICATE = (
    "duplicate member name: an earlier copy was replaced by this later one, which an "
    "installer would keep"
)


class Collector:
    """Accumulates the members of one artifact (mutable while building, then frozen out)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.budget = Budget(limits)
        self._files: dict[str, SourceFile] = {}
        self._skipped: list[SkippedFile] = []

    @property
    def files(self) -> tuple[SourceFile, ...]:
        """Kept sources, in archive order."""
        return tuple(self._files.values())

    @property
    def skipped(self) -> tuple[SkippedFile, ...]:
        """Skipped members, in archive order."""
        return tuple(self._skipped)

    def skip(self, record: SkippedFile) -> None:
        """Record a member that is not analysed."""
        self._skipped.append(record)

    def add_archive(self, data: bytes, fmt: str, where: str, prefix: str, level: int) -> None:
        """Add every member of an archive whose members sit at nesting ``level``.

        Raises:
            ArtifactError: hostile archive or a limit exceeded.
            Corrupt: unreadable archive.
        """
        for member in read_members(data, fmt, where, prefix, self.budget):
            self.add_raw(member, level)

    def add_raw(self, member: RawMember, level: int) -> None:
        """Add one member produced by an archive reader or a directory walk."""
        if member.skipped is not None:
            self.skip(member.skipped)
        elif member.data is not None:
            self.add(member.path, member.data, level=level, executable=member.executable)

    def add(self, path: str, data: bytes, *, level: int, executable: bool = False) -> None:
        """Classify one member; archives inside are opened one level deeper."""
        fmt = detect_format(basename(path), data, sniff=False)
        if fmt is not None:
            self._add_nested(path, data, fmt, level + 1)
            return
        self.accept(classify(path, data, self.limits, executable=executable))

    def accept(self, records: tuple[SourceFile | SkippedFile, ...]) -> None:
        """Record classified members (kept sources and skipped records)."""
        for record in records:
            if isinstance(record, SkippedFile):
                self.skip(record)
            else:
                self._keep(record)

    def _keep(self, source: SourceFile) -> None:
        if source.path in self._files:
            self.skip(SkippedFile(source.path, _DUPLICATE, evidence=True))
        self._files[source.path] = source

    def _add_nested(self, path: str, data: bytes, fmt: str, level: int) -> None:
        if level > self.limits.max_depth:
            self.skip(
                SkippedFile(path, f"nested archive deeper than {self.limits.max_depth} levels")
            )
            return
        try:
            self.add_archive(data, fmt, path, f"{path}!", level)
        except Corrupt as exc:
            self.skip(SkippedFile(path, f"nested archive could not be read: {exc}"))
