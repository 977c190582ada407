"""Shared test helpers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from triage.indicators.engine import EngineResult, analyse
from triage.model import Artifact, FileKind, MetadataField, PackageMetadata, SourceFile

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def make_artifact(files: dict[str, str], metadata: tuple[MetadataField, ...] = (),
                  name: str = "demo", version: str = "1.0") -> Artifact:
    """An in-memory artifact from {path: source} (``.pth`` paths become PTH files)."""
    srcs = tuple(
        SourceFile(path=p, text=textwrap.dedent(t),
                   kind=FileKind.PTH if p.endswith(".pth") else FileKind.PYTHON)
        for p, t in files.items()
    )
    return Artifact(name=name, version=version, sha256="0" * 64, kind="directory",
                    source="test", files=srcs, metadata=PackageMetadata(fields=metadata))


def run_engine(files: dict[str, str], **kw: object) -> EngineResult:
    """Run every registered detector on an in-memory artifact."""
    return analyse(make_artifact(files, **kw))  # type: ignore[arg-type]


def pairs(result: EngineResult, indicator: str | None = None,
          file: str | None = None) -> set[tuple[str, int]]:
    """{(indicator, start_line)} of the signals, optionally for one indicator / file."""
    out: set[tuple[str, int]] = set()
    for s in result.signals:
        if indicator and s.indicator != indicator:
            continue
        path = s.statement_id.rsplit(":", 2)[0]
        if file and path != file:
            continue
        line = s.start_line or result.indices[path].get(s.statement_id).start_line
        out.add((s.indicator, line))
    return out


@pytest.fixture
def engine():
    """The run_engine helper as a fixture."""
    return run_engine
