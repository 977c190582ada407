"""The run directory: config, transcript, package list, cached truth, one record per package.

Layout::

    RUN/config.json                         dataset spec, systems, settings
    RUN/transcript.jsonl                    one event per line (start, skip, done, error)
    RUN/packages.json                       archive, cluster, malicious of every package
    RUN/truth.json                          statement-level ground truth (cached)
    RUN/systems/<system>/<archive>.json     one RunRecord (with the report) per package

Every record is written atomically (temporary file, then rename) as soon as its package
finishes, so an interrupted run loses at most the packages in flight, and a resumed run
skips every package that has a record.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from triage.evaluation.datasets import Package
from triage.evaluation.runner import OK, RunRecord
from triage.evaluation.stmt_metrics import PackageTruth
from triage.evaluation.truth import truth_from_json, truth_to_json

CONFIG, TRANSCRIPT = "config.json", "transcript.jsonl"
PACKAGES, TRUTH = "packages.json", "truth.json"
SCHEMA = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str, hashed: bool = False) -> str:
    """File-name-safe form of ``text``; with ``hashed``, a short digest keeps it unique."""
    base = _UNSAFE.sub("_", text.replace("/", "__")).strip("._")[:150] or "x"
    if not hashed:
        return base
    return f"{base}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """Read and write one run directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def system_dir(self, system: str) -> Path:
        """Directory of one system's records."""
        return self.root / "systems" / slug(system)

    def record_path(self, system: str, archive: str) -> Path:
        """File of one package's record for one system."""
        return self.system_dir(system) / f"{slug(archive, hashed=True)}.json"

    def is_done(self, system: str, archive: str, retry_errors: bool = False) -> bool:
        """True when a record exists (an ``ok`` one, with ``retry_errors``)."""
        path = self.record_path(system, archive)
        if not path.is_file():
            return False
        if not retry_errors:
            return True
        try:
            return json.loads(path.read_text(encoding="utf-8")).get("status") == OK
        except (OSError, ValueError):
            return False

    def save_record(self, system: str, record: RunRecord) -> None:
        """Store one finished package (atomically)."""
        write_json_atomic(self.record_path(system, record.archive),
                          {"system": system, **record.to_json()})

    def load_records(self, system: str) -> dict[str, RunRecord]:
        """Every stored record of one system, by archive."""
        out: dict[str, RunRecord] = {}
        directory = self.system_dir(system)
        if not directory.is_dir():
            return out
        for path in sorted(directory.glob("*.json")):
            try:
                record = RunRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError):
                continue  # a foreign or damaged file is not a result
            out[record.archive] = record
        return out

    def log(self, event: str, **fields: Any) -> None:
        """Append one event to the transcript."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"t": round(time.time(), 3), "event": event, **fields},
                          ensure_ascii=False)
        with open(self.root / TRANSCRIPT, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def read_config(self) -> dict[str, Any]:
        """The run config ({} when there is none yet)."""
        path = self.root / CONFIG
        if not path.is_file():
            return {}
        return json.loads(path.read_text(encoding="utf-8"))

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Replace the run config."""
        write_json_atomic(self.root / CONFIG, {"schema": SCHEMA, **config})

    def write_packages(self, packages: Sequence[Package]) -> None:
        """Store the dataset's package list."""
        write_json_atomic(self.root / PACKAGES, [
            {"archive": p.archive, "cluster": p.cluster, "malicious": p.malicious}
            for p in packages
        ])

    def read_packages(self) -> tuple[Package, ...]:
        """The stored package list."""
        rows = json.loads((self.root / PACKAGES).read_text(encoding="utf-8"))
        return tuple(Package(str(r["archive"]), str(r["cluster"]), bool(r["malicious"]))
                     for r in rows)

    def write_truth(self, digest: str, truths: Iterable[PackageTruth]) -> None:
        """Cache the statement-level truth with the digest of the files it came from."""
        write_json_atomic(self.root / TRUTH,
                          {"digest": digest, "packages": [truth_to_json(t) for t in truths]})

    def read_truth(self, digest: str | None = None) -> tuple[PackageTruth, ...] | None:
        """Cached truth; ``None`` when absent or (with ``digest``) built from other files."""
        path = self.root / TRUTH
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        if digest is not None and data.get("digest") != digest:
            return None
        return tuple(truth_from_json(p) for p in data["packages"])
