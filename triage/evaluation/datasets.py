"""Evaluation datasets: which packages, their bytes (in memory), labels and clusters.

A dataset is described by a :class:`DatasetSpec` (saved in a run's ``config.json``) and
loaded into a :class:`Dataset`. Malicious archives come from an encrypted zip (read member
by member in memory, never extracted) or from a directory of archives; benign packages from
a pinned list downloaded from PyPI as wheels and checked against a hash lock.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from triage.errors import ArtifactError
from triage.evaluation import benign_wheels
from triage.evaluation.clusters import cluster_key
from triage.evaluation.corpus import (
    CORPUS_PASSWORD,
    MEMBER_PREFIX,
    Label,
    load_clusters,
    load_labels,
    read_members,
)
from triage.evaluation.labels import DEFAULT_ALIASES_PATH, load_aliases

ROOT = Path(__file__).resolve().parents[2]
DEV_CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_BENIGN_DIR = Path.home() / ".cache" / "triage-eval" / "benign"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".whl", ".zip", ".egg")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's pieces live (paths as text, so the spec saves as JSON)."""

    name: str
    malicious: str = ""
    """Encrypted zip of archives, or a directory of archives; "" for none."""
    labels: str = ""
    """Ground truth JSON Lines; "" for none."""
    clusters: str = ""
    """Cluster CSV (``archive,cluster,...``); "" to compute clusters from the code."""
    benign: str = ""
    """Pinned benign list (``name==version`` per line); "" for none."""
    benign_lock: str = ""
    """Hash lock of the benign wheels (written on first download)."""
    benign_dir: str = ""
    """Wheel cache directory."""
    aliases: str = str(DEFAULT_ALIASES_PATH)
    """Label alias file."""
    limit: int = 0
    """Use only the first N malicious and the first N benign packages (0: all)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetSpec:
        """Inverse of :meth:`to_json` (unknown keys are rejected)."""
        return cls(**dict(data))


def resolve_dataset(text: str, limit: int = 0, benign: bool = True) -> DatasetSpec:
    """A spec from ``--dataset``: ``dev``, a corpus directory, an encrypted zip or a directory.

    A *corpus directory* holds ``malicious-*.zip`` with optional ``labels-*.jsonl``,
    ``packages-*.csv`` and ``benign-*.txt`` beside it (the layout of ``shared/corpus``).

    Raises:
        ArtifactError: the path does not exist.
    """
    path = DEV_CORPUS if text == "dev" else Path(text)
    name = "dev" if text == "dev" else path.name
    if not path.exists():
        raise ArtifactError(f"dataset not found: {path}")
    if path.is_file():
        return DatasetSpec(name=name, malicious=str(path.resolve()), limit=limit)
    zips = sorted(path.glob("malicious-*.zip"))
    if not zips:
        return DatasetSpec(name=name, malicious=str(path.resolve()), limit=limit)
    suffix = zips[0].stem.removeprefix("malicious")

    def pick(pattern: str) -> str:
        hit = path / pattern.format(suffix)
        return str(hit.resolve()) if hit.is_file() else ""

    benign_list = pick("benign{}.txt") if benign else ""
    lock = ROOT / "eval" / f"benign{suffix}.lock" if benign_list else None
    return DatasetSpec(
        name=name, malicious=str(zips[0].resolve()), labels=pick("labels{}.jsonl"),
        clusters=pick("packages{}.csv"), benign=benign_list,
        benign_lock=str(lock) if lock else "",
        benign_dir=str(DEFAULT_BENIGN_DIR) if benign_list else "", limit=limit,
    )


@dataclass(frozen=True)
class Package:
    """One package of a dataset."""

    archive: str
    """Key: path relative to the corpus root, or ``benign/<wheel>``."""
    cluster: str
    malicious: bool


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: packages, labels and in-memory readers."""

    spec: DatasetSpec
    packages: tuple[Package, ...]
    labels: tuple[Label, ...]
    read: Callable[[str], bytes]
    """Bytes of one archive, by key."""
    notes: tuple[str, ...] = field(default=())
    """What is missing (benign wheels not downloaded...), for the results page."""

    def read_sources(self, archive: str, wanted: frozenset[str]) -> Mapping[str, str]:
        """Decoded text of some members of one archive; {} when unreadable."""
        try:
            return read_members(self.read(archive), archive, wanted)
        except (ArtifactError, KeyError, OSError):
            return {}


def _zip_reader(path: Path) -> tuple[list[str], Callable[[str], bytes]]:
    with zipfile.ZipFile(path) as zf:
        names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
    keys = [n[len(MEMBER_PREFIX):] if n.startswith(MEMBER_PREFIX) else n for n in names]
    members = dict(zip(keys, names, strict=True))

    def read(key: str) -> bytes:
        with zipfile.ZipFile(path) as zf:
            return zf.read(members[key], pwd=CORPUS_PASSWORD)

    return keys, read


def _dir_reader(path: Path) -> tuple[list[str], Callable[[str], bytes]]:
    keys = sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*")
        if p.is_file() and p.name.endswith(ARCHIVE_SUFFIXES)
    )
    return keys, lambda key: (path / key).read_bytes()


def _file_reader(path: Path) -> Callable[[str], bytes]:
    return lambda _key: path.read_bytes()


def _benign(spec: DatasetSpec, download: bool) -> tuple[dict[str, Path], list[str]]:
    pins = benign_wheels.read_pins(Path(spec.benign))
    directory = Path(spec.benign_dir or DEFAULT_BENIGN_DIR)
    lock_path = Path(spec.benign_lock) if spec.benign_lock else directory / "benign.lock"
    notes: list[str] = []
    lock = benign_wheels.read_lock(lock_path)
    found, missing = benign_wheels.verified_wheels(pins, lock, directory)
    if missing and download:
        try:
            benign_wheels.download(Path(spec.benign), lock_path, directory)
        except ArtifactError as exc:
            notes.append(str(exc))
        lock = benign_wheels.read_lock(lock_path)
        found, missing = benign_wheels.verified_wheels(pins, lock, directory)
    if found and not lock_path.is_file():  # first use: pin what was downloaded
        benign_wheels.write_lock(lock_path, pins, directory)
    notes += [f"benign {req} not used: {why}" for req, why in sorted(missing.items())]
    return found, notes


def load_dataset(spec: DatasetSpec, download: bool = True) -> Dataset:
    """Load a dataset: list its packages, read labels and clusters, fetch benign wheels.

    Clusters come from the cluster CSV when given, else from :func:`cluster_key` (which
    reads every archive once, in memory). Each benign package is a cluster of its own.

    Raises:
        ArtifactError: the malicious archive source is unreadable.
        TaxonomyError: a label has no alias.
    """
    readers: dict[str, Callable[[str], bytes]] = {}
    keys: list[str] = []
    if spec.malicious:
        src = Path(spec.malicious)
        try:
            keys, reader = _zip_reader(src) if src.is_file() else _dir_reader(src)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"cannot read {src}: {exc}") from exc
        keys = keys[: spec.limit] if spec.limit > 0 else keys
        readers.update(dict.fromkeys(keys, reader))
    clusters = load_clusters(spec.clusters) if spec.clusters else {}
    packages = [
        Package(k, clusters.get(k) or cluster_key(readers[k](k), k), True) for k in keys
    ]
    notes: list[str] = []
    if spec.benign:
        wheels, notes = _benign(spec, download)
        names = sorted(wheels)[: spec.limit] if spec.limit > 0 else sorted(wheels)
        for key in names:
            readers[key] = _file_reader(wheels[key])
            packages.append(Package(key, key, False))
    labels: tuple[Label, ...] = ()
    if spec.labels:
        labels = tuple(
            lb for lb in load_labels(spec.labels, load_aliases(Path(spec.aliases)))
            if lb.archive in readers
        )
    return Dataset(
        spec=spec, packages=tuple(packages), labels=labels,
        read=lambda key: readers[key](key), notes=tuple(notes),
    )

