"""Read zip and tar archives held in memory, checking every header before any data is read.

Hostile archives (path traversal, absolute paths, bombs, too many members or bytes) raise
``ArtifactError``; unreadable ones raise ``Corrupt``, which the caller turns into an
``ArtifactError`` (outer archive) or a ``SkippedFile`` (nested archive). Nothing is written.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from triage.artifact.classify import too_large
from triage.artifact.limits import MIB, Budget, Limits
from triage.artifact.streams import STREAM_MAGIC, Corrupt, decompress
from triage.errors import ArtifactError
from triage.model import SkippedFile

_SUFFIXES = (
    (".tar.gz", "gz"),
    (".tgz", "gz"),
    (".tar.bz2", "bz2"),
    (".tbz2", "bz2"),
    (".tbz", "bz2"),
    (".tar.xz", "xz"),
    (".txz", "xz"),
    (".tar", "tar"),
    (".whl", "zip"),
    (".zip", "zip"),
    (".egg", "zip"),
)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


@dataclass(frozen=True)
class RawMember:
    """One archive member: its bytes, or why they were not read."""

    path: str
    """Full member path (``outer.whl!inner/x.py`` inside nested archives)."""
    data: bytes | None = None
    """Member bytes (at most ``max_file_bytes``), None when ``skipped`` is set."""
    skipped: SkippedFile | None = None
    """Why the member was not read (link, device, too large, encrypted)."""
    executable: bool = False
    """The archive marks the member executable."""


def archive_format(name: str) -> str | None:
    """``zip``, ``tar``, ``gz``, ``bz2`` or ``xz`` from a file name, else None."""
    lower = name.lower()
    for suffix, fmt in _SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return fmt
    return None


def sniff_format(data: bytes) -> str | None:
    """The archive format from leading magic bytes, else None."""
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    for fmt, magic in STREAM_MAGIC.items():
        if data.startswith(magic):
            return fmt
    if data[257:262] == b"ustar":
        return "tar"
    return None


def detect_format(name: str, data: bytes, *, sniff: bool = True) -> str | None:
    """The archive format of a member: magic bytes win over a misleading extension.

    Args:
        name: file name (its extension gives the claimed format).
        data: the bytes.
        sniff: also recognise archives whose name has no archive extension.
    """
    claimed = archive_format(name)
    if claimed is None and not sniff:
        return None
    return sniff_format(data) or claimed


def check_path(name: str, where: str) -> None:
    """Reject member names that would escape an extraction directory."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise ArtifactError(f"absolute path: member {name!r} of {where} is an absolute path")
    if ".." in norm.split("/"):
        raise ArtifactError(f"path traversal: member {name!r} of {where} has a '..' component")


def read_members(
    data: bytes, fmt: str, where: str, prefix: str, budget: Budget
) -> Iterator[RawMember]:
    """Check all headers of an archive, then return an iterator that reads its members.

    Args:
        data: the archive bytes.
        fmt: ``zip``, ``tar``, ``gz``, ``bz2`` or ``xz`` (compressed tar).
        where: the archive's name, for messages.
        prefix: prepended to member names (``outer.tar.gz!`` for nested archives).
        budget: running member and byte totals for the whole artifact.

    Raises:
        ArtifactError: the archive is hostile or over a limit.
        Corrupt: the archive cannot be read.
    """
    if fmt == "zip":
        return _zip_members(data, where, prefix, budget)
    raw = data if fmt == "tar" else decompress(data, fmt, where, budget)
    return _tar_members(raw, where, prefix, budget)


def _declared_zip_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, read without parsing entries."""
    tail_start = max(0, len(data) - (65535 + 22))
    end = data.rfind(b"PK\x05\x06", tail_start)
    if end < 0 or len(data) - end < 22:
        return None
    (entries,) = struct.unpack("<H", data[end + 10 : end + 12])
    locator = end - 20
    if entries == 0xFFFF and locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack("<Q", data[locator + 8 : locator + 16])
        if data[offset : offset + 4] == b"PK\x06\x06":
            (entries,) = struct.unpack("<Q", data[offset + 32 : offset + 40])
    return int(entries)


def _zip_members(data: bytes, where: str, prefix: str, budget: Budget) -> Iterator[RawMember]:
    limits = budget.limits
    declared = _declared_zip_entries(data)
    if declared is not None and budget.members + declared > limits.max_members:
        budget.add_members(declared, where)  # raises before the directory is parsed
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (*_READ_ERRORS, struct.error, NotImplementedError) as exc:
        raise Corrupt(f"not a readable zip archive: {exc}") from None
    budget.add_members(len(infos), where)
    for info in infos:
        check_path(info.filename, where)
        if info.is_dir():
            continue
        if info.file_size > MIB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ArtifactError(
                f"decompression bomb: member {info.filename!r} of {where} expands from "
                f"{info.compress_size:,} to {info.file_size:,} bytes "
                f"(ratio above {limits.max_ratio:g})"
            )
        budget.add_bytes(info.file_size, where)
    return _read_zip(archive, infos, where, prefix, limits)


def _read_zip(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], where: str, prefix: str, limits: Limits
) -> Iterator[RawMember]:
    for info in infos:
        if info.is_dir():
            continue
        path = prefix + info.filename
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        if stat.S_ISLNK(mode):
            yield RawMember(path, skipped=SkippedFile(path, "symlink, not followed"))
        elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            yield RawMember(path, skipped=SkippedFile(path, "device file"))
        elif info.flag_bits & 0x1:
            reason = "encrypted member, not read: encryption hides the content from review"
            yield RawMember(path, skipped=SkippedFile(path, reason, evidence=True))
        elif info.compress_type not in _ZIP_METHODS:
            reason = f"unsupported zip compression method {info.compress_type}, not read"
            yield RawMember(path, skipped=SkippedFile(path, reason))
        elif info.file_size > limits.max_file_bytes:
            yield RawMember(path, skipped=too_large(path, info.file_size, limits))
        else:
            data = _read_zip_member(archive, info, where, limits)
            yield RawMember(path, data=data, executable=bool(mode & 0o111))


def _read_zip_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limits: Limits
) -> bytes:
    try:
        with archive.open(info) as stream:
            data = stream.read(limits.max_file_bytes + 1)  # headers can lie: cap the read too
    except (*_READ_ERRORS, NotImplementedError, RuntimeError) as exc:
        raise Corrupt(
            f"member {info.filename!r} of {where} could not be read ({exc}): "
            "its size or checksum headers do not match its data"
        ) from None
    if len(data) > info.file_size:
        raise ArtifactError(
            f"lying header: member {info.filename!r} of {where} holds more than the "
            f"{info.file_size:,} bytes its header declares"
        )
    return data


def _tar_members(raw: bytes, where: str, prefix: str, budget: Budget) -> Iterator[RawMember]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except (tarfile.TarError, ValueError, EOFError) as exc:
        raise Corrupt(f"not a readable tar archive: {exc}") from None
    infos: list[tarfile.TarInfo] = []
    while True:
        try:
            info = archive.next()
        except (tarfile.TarError, ValueError, EOFError, UnicodeError) as exc:
            raise Corrupt(f"corrupt tar archive {where}: {exc}") from None
        if info is None:
            break
        budget.add_members(1, where)
        check_path(info.name, where)
        if info.isfile():
            if info.offset_data + info.size > len(raw):
                raise Corrupt(
                    f"truncated tar archive {where}: member {info.name!r} ends past the end "
                    "of the data"
                )
            budget.add_bytes(info.size, where)
        infos.append(info)
    return _read_tar(raw, infos, prefix, budget.limits)


def _tar_skip_reason(info: tarfile.TarInfo) -> str | None:
    if info.issym():
        return "symlink, not followed"
    if info.islnk():
        return "hardlink, not followed"
    if info.ischr() or info.isblk():
        return "device file"
    if info.isfifo():
        return "fifo (named pipe), not read"
    if info.issparse():
        return "sparse file, not read"
    if not info.isfile():
        return f"unsupported tar member type {info.type!r}, not read"
    return None


def _read_tar(
    raw: bytes, infos: list[tarfile.TarInfo], prefix: str, limits: Limits
) -> Iterator[RawMember]:
    for info in infos:
        if info.isdir():
            continue
        path = prefix + info.name
        reason = _tar_skip_reason(info)
        if reason is not None:
            yield RawMember(path, skipped=SkippedFile(path, reason))
        elif info.size > limits.max_file_bytes:
            yield RawMember(path, skipped=too_large(path, info.size, limits))
        else:
            data = raw[info.offset_data : info.offset_data + info.size]
            yield RawMember(path, data=data, executable=bool(info.mode & 0o111))
