"""Smoke check against the real PyPI (network; not run in CI).

Fetches ``six==1.17.0`` through triage.artifact and prints its identity::

    .venv/bin/python benchmarks/smoke_pypi.py [requirement] [--sdist]
"""

from __future__ import annotations

import sys
import time

from triage.artifact import open_artifact


def main(argv: list[str]) -> int:
    """Fetch one requirement and print name, version, sha256 and file counts."""
    args = [a for a in argv if not a.startswith("--")]
    requirement = args[0] if args else "six==1.17.0"
    choice = "sdist" if "--sdist" in argv else "all"
    started = time.perf_counter()
    artifact = open_artifact(requirement, artifact=choice)
    elapsed = time.perf_counter() - started
    print(f"name:    {artifact.name}")
    print(f"version: {artifact.version}")
    print(f"kind:    {artifact.kind}")
    print(f"sha256:  {artifact.sha256}")
    print(f"files:   {len(artifact.files)} kept, {len(artifact.skipped)} skipped")
    print(f"elapsed: {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
