"""Read the encrypted dev corpus, its clusters and its labels, in memory only.

The corpus zip holds live malware: members are read into memory and never written to disk,
imported or executed. See ``shared/corpus/README.md``.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from triage.errors import ArtifactError
from triage.evaluation.labels import resolve_indicator

CORPUS_PASSWORD = b"infected"
MEMBER_PREFIX = "malregistry/"
MAX_MEMBER_BYTES = 50 * 1024 * 1024
"""Refuse to inflate a single source member larger than this (decompression bombs)."""


@dataclass(frozen=True)
class Label:
    """One ground-truth row: an indicator on some lines of one file of one archive."""

    package: str
    """Package name."""
    archive: str
    """Archive path relative to the corpus root (``name/version/file``)."""
    file: str
    """Member path inside the archive."""
    lines: tuple[int, ...]
    """1-based labelled lines."""
    indicator: str
    """Taxonomy ID (after alias mapping)."""
    raw_indicator: str
    """The ``indicator`` value as written in the label file."""
    is_metadata: bool
    """True for ``metadata_*`` IDs; scored separately from ``code_*``."""


def iter_archives(zip_path: Path | str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(archive_relpath, bytes)`` for every archive in the encrypted corpus zip.

    ``archive_relpath`` is the member name without the ``malregistry/`` prefix, e.g.
    ``py-crd/1.0.0/py-crd-1.0.0.tar.gz``. Members are yielded in name order.
    """
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
        for name in names:
            rel = name[len(MEMBER_PREFIX) :] if name.startswith(MEMBER_PREFIX) else name
            yield rel, zf.read(name, pwd=CORPUS_PASSWORD)


def read_archive(zip_path: Path | str, archive: str) -> bytes:
    """Bytes of one archive of the corpus zip, by relative path."""
    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(MEMBER_PREFIX + archive, pwd=CORPUS_PASSWORD)


def load_clusters(csv_path: Path | str) -> dict[str, str]:
    """Map archive relative path -> near-duplicate cluster key, from ``packages-dev.csv``."""
    with open(csv_path, encoding="utf-8", newline="") as fh:
        return {row["archive"]: row["cluster"] for row in csv.DictReader(fh)}


def load_labels(
    jsonl_path: Path | str, aliases: Mapping[str, tuple[str, ...]]
) -> tuple[Label, ...]:
    """Read ``labels-dev.jsonl``, mapping free-text indicators through ``aliases``.

    A row whose free text maps to several IDs becomes one label per ID. Duplicate
    (archive, file, lines, indicator) labels are kept once.

    Raises:
        TaxonomyError: a free-text indicator has no alias.
        ValueError: a row is not valid JSON or lacks a field.
    """
    out: dict[tuple[str, str, tuple[int, ...], str], Label] = {}
    with open(jsonl_path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                raw = str(row["indicator"])
                lines = tuple(int(n) for n in row["lines"])
                archive, file, package = str(row["archive"]), str(row["file"]), str(row["package"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{jsonl_path}:{number}: bad label row: {exc}") from exc
            for indicator in resolve_indicator(raw, aliases):
                key = (archive, file, lines, indicator)
                out.setdefault(
                    key,
                    Label(
                        package=package,
                        archive=archive,
                        file=file,
                        lines=lines,
                        indicator=indicator,
                        raw_indicator=raw,
                        is_metadata=indicator.startswith("metadata_"),
                    ),
                )
    return tuple(out.values())


def decode_text(raw: bytes) -> str:
    """UTF-8 (with BOM) else latin-1, like the artifact reader."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def is_zip_bytes(data: bytes, filename: str) -> bool:
    """True for zip containers: by magic number, since some corpus ``.tar.gz`` are zips."""
    if data[:4] == b"PK\x03\x04":
        return True
    return filename.endswith((".whl", ".zip", ".egg")) and data[:2] != b"\x1f\x8b"


def read_members(data: bytes, filename: str, wanted: Collection[str]) -> dict[str, str]:
    """Decoded text of the ``wanted`` members of an sdist/wheel/zip given as bytes.

    Reads in memory; members that are missing, not regular files or too large are left out.

    Raises:
        ArtifactError: the bytes are not a readable tar or zip archive.
    """
    want = set(wanted)
    out: dict[str, str] = {}
    if not want:
        return out
    try:
        if is_zip_bytes(data, filename):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for info in zf.infolist():
                    if info.filename in want and info.file_size <= MAX_MEMBER_BYTES:
                        out[info.filename] = decode_text(zf.read(info))
        else:
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                for member in tf:
                    if member.name in want and member.isfile() and member.size <= MAX_MEMBER_BYTES:
                        fh = tf.extractfile(member)
                        if fh is not None:
                            out[member.name] = decode_text(fh.read())
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArtifactError(f"cannot read {filename}: {exc}") from exc
    return out
