"""A pinned list of benign packages, downloaded from PyPI as wheels and checked by hash.

Wheels only (``--only-binary :all:``): downloading an sdist with pip runs its build backend.
The first download writes a lock file (``name==version --hash=sha256:...`` per wheel, the
format pip's ``--require-hashes`` reads); later downloads go through the lock with
``--require-hashes``, and every cached wheel is checked against it before it is read.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from triage.errors import ArtifactError


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of the benign list."""

    name: str
    version: str

    @property
    def requirement(self) -> str:
        """``name==version``."""
        return f"{self.name}=={self.version}"


def read_pins(path: Path) -> tuple[Pin, ...]:
    """Pins of a requirements-style list (comments, blanks and ``--hash`` options ignored)."""
    pins = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].split(" --", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append(Pin(name.strip(), version.strip()))
    return tuple(pins)


def read_lock(path: Path) -> dict[str, frozenset[str]]:
    """``name==version`` -> allowed sha256 digests, from a lock file."""
    out: dict[str, frozenset[str]] = {}
    if not Path(path).is_file():
        return out
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req, *opts = line.split()
        out[req] = frozenset(o.split("sha256:", 1)[1] for o in opts if "sha256:" in o)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(directory: Path, pin: Pin) -> Path | None:
    """The cached wheel of ``pin`` in ``directory``, if present."""
    prefix = f"{_norm(pin.name)}-{pin.version}-".lower()
    for wheel in sorted(Path(directory).glob("*.whl")):
        if wheel.name.lower().startswith(prefix):
            return wheel
    return None


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_lock(path: Path, pins: Sequence[Pin], directory: Path) -> None:
    """Write the lock file from the wheels now in ``directory``."""
    lines = ["# sha256 of the benign wheels; pip download --require-hashes -r this-file"]
    for pin in pins:
        wheel = find_wheel(directory, pin)
        if wheel is not None:
            lines.append(f"{pin.requirement} --hash=sha256:{sha256_file(wheel)}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def download(pins_file: Path, lock_file: Path, directory: Path) -> None:
    """Download the pinned wheels (no dependencies, wheels only) into ``directory``.

    Uses the lock with ``--require-hashes`` when it exists, else the pin list, then writes
    the lock.

    Raises:
        ArtifactError: pip failed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    locked = Path(lock_file).is_file()
    source = lock_file if locked else pins_file
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "-q", "-r", str(source), "-d", str(directory)]
    if locked:
        cmd.insert(-4, "--require-hashes")
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ArtifactError(f"pip download of benign wheels failed: {detail[-500:]}") from exc
    if not locked:
        write_lock(lock_file, read_pins(pins_file), directory)


def verified_wheels(
    pins: Sequence[Pin], lock: dict[str, frozenset[str]], directory: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """Wheels that are present and match the lock, and the reason for every other pin.

    Returns:
        (``archive name -> wheel path``, ``requirement -> why it is missing``). The archive
        name is ``benign/<wheel file name>``.
    """
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for pin in pins:
        wheel = find_wheel(directory, pin)
        if wheel is None:
            missing[pin.requirement] = "no wheel downloaded"
            continue
        allowed = lock.get(pin.requirement)
        if allowed is not None and sha256_file(wheel) not in allowed:
            missing[pin.requirement] = f"sha256 of {wheel.name} does not match the lock"
            continue
        found[f"benign/{wheel.name}"] = wheel
    return found, missing
