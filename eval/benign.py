"""False-positive check: run the static engine on popular benign wheels.

Usage (from the repository root)::

    python eval/benign.py [--list ../shared/corpus/benign-dev.txt] \\
        [--dir ~/.cache/triage-eval/benign]

Downloads the pinned wheels with ``pip download --no-deps --only-binary :all:`` (wheels
only: downloading an sdist would run its build backend), unless every pinned wheel is
already in the cache directory. Then analyses each wheel with ``triage.pipeline.explain``,
prints the verdicts, lists every suspicious (or worse) package with its verdict reasons and
top findings, and exits 1 if any package is judged malicious or cannot be analysed (2 on
setup errors).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from triage.model import Report
from triage.render.defang import defang

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIST = ROOT.parent / "shared" / "corpus" / "benign-dev.txt"
DEFAULT_DIR = Path.home() / ".cache" / "triage-eval" / "benign"
TOP_FINDINGS = 5
_SEVERITY = {"critical": 3, "high": 2, "medium": 1, "low": 0}


def read_pins(path: Path) -> list[tuple[str, str]]:
    """``(name, version)`` of each ``name==version`` line (comments and blanks ignored)."""
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins.append((name.strip(), version.strip()))
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(directory: Path, name: str, version: str) -> Path | None:
    """The cached wheel of ``name==version``, if present."""
    prefix = f"{_norm(name)}-{version}-"
    for wheel in sorted(directory.glob("*.whl")):
        if wheel.name.lower().startswith(prefix.lower()):
            return wheel
    return None


def download(pin_file: Path, directory: Path) -> None:
    """Download every pinned wheel (no sdists, no dependencies) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "-r", str(pin_file), "-d", str(directory),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)


def _top_findings(report: Report) -> list[str]:
    ranked = sorted(
        report.findings, key=lambda f: (-_SEVERITY.get(f.severity, 0), -f.confidence, f.file)
    )
    return [
        f"    - {f.indicator} ({f.severity}, {f.confidence:.2f}) {f.file}:{f.start_line}:"
        f" {defang(f.code.strip().splitlines()[0][:120]) if f.code.strip() else ''}"
        for f in ranked[:TOP_FINDINGS]
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Download, analyse, report; return the exit code."""
    p = argparse.ArgumentParser(description="False-positive check on benign wheels.")
    p.add_argument("--list", type=Path, default=DEFAULT_LIST, help="pinned requirements file")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="wheel cache directory")
    args = p.parse_args(argv)
    if not args.list.is_file():
        print(f"benign list not found: {args.list}", file=sys.stderr)
        return 2
    pins = read_pins(args.list)
    if any(find_wheel(args.dir, n, v) is None for n, v in pins):
        try:
            download(args.list, args.dir)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"pip download failed: {exc}", file=sys.stderr)
            return 2
    missing = [f"{n}=={v}" for n, v in pins if find_wheel(args.dir, n, v) is None]
    if missing:
        print(f"no wheel for: {', '.join(missing)}", file=sys.stderr)
        return 2

    from triage.pipeline import explain

    flagged: list[tuple[str, Report]] = []
    errors: list[str] = []
    malicious = 0
    print("| package | verdict | score | findings |")
    print("|---|---|---|---|")
    for name, version in pins:
        pin = f"{name}=={version}"
        wheel = find_wheel(args.dir, name, version)
        assert wheel is not None
        try:
            report = explain(str(wheel))
        except Exception as exc:  # report it and go on with the other wheels
            errors.append(f"{pin}: {type(exc).__name__}: {exc}")
            print(f"| {pin} | error | - | - |")
            continue
        verdict = report.verdict
        print(f"| {pin} | {verdict.label} | {verdict.score:.0f} | {len(report.findings)} |")
        if verdict.label != "benign":
            flagged.append((pin, report))
        malicious += verdict.label == "malicious"
    for pin, report in flagged:
        print(f"\n{pin}: {report.verdict.label} ({report.verdict.score:.0f})")
        for reason in report.verdict.reasons:
            print(f"  reason: {defang(reason)}")
        print("\n".join(_top_findings(report)))
    for line in errors:
        print(f"error: {defang(line)}")
    print(
        f"\n{len(pins)} packages, {len(flagged)} not benign, {malicious} malicious,"
        f" {len(errors)} errors"
    )
    return 1 if malicious or errors else 0


if __name__ == "__main__":
    sys.exit(main())
