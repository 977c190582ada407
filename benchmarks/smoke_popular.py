"""Smoke check against the real PyPI (network; not run in CI): popular packages stay benign.

Fetches the wheels of 42 of the most downloaded PyPI projects (pinned below, as of
2026-11-25) through triage's own intake, analyses them statically and prints one line per
package. Exits 1 when any is judged malicious; "suspicious" is printed with its first reason
(dual-use code such as distlib's ~/.pypirc reader is expected there)::

    .venv/bin/python benchmarks/smoke_popular.py [requirement ...]
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from triage.errors import TriageError
from triage.pipeline import Options, explain

POPULAR = (
    "boto3==1.44.8 botocore==1.44.8 urllib3==2.8.0 setuptools==84.2.1 "
    "typing_extensions==4.16.0 certifi==2026.10.19.post1 charset-normalizer==3.5.3 idna==3.20 "
    "requests==2.34.2 python-dateutil==4.0.0 packaging==26.4 s3transfer==0.19.3 six==1.17.0 "
    "aiobotocore==3.10.0 PyYAML==6.0.4 numpy==2.5.5 grpcio-status==1.85.3 fsspec==2026.9.0 "
    "pip==26.3 cryptography==50.0.2 wheel==0.48.0 pydantic==2.14.4 cffi==2.1.1 protobuf==7.36.2 "
    "attrs==26.1.0 platformdirs==4.14.8 pyasn1==0.6.5 importlib_metadata==10.2.0 zipp==4.1.2 "
    "jmespath==1.1.0 rsa==4.9.1 click==8.5.1 pandas==3.1.1 MarkupSafe==3.0.4 filelock==4.3.1 "
    "Jinja2==3.1.6 tomli==2.5.0 pluggy==1.7.0 pytest==9.2.0 colorama==0.4.6 "
    "virtualenv==21.15.11 SQLAlchemy==2.1.9"
).split()


def main(argv: list[str]) -> int:
    """Analyse each requirement; 1 when one of them is judged malicious."""
    wanted = argv or list(POPULAR)
    labels: Counter[str] = Counter()
    started = time.perf_counter()
    for req in wanted:
        try:
            report = explain(req, Options(artifact="wheel"))
        except TriageError as exc:
            labels["error"] += 1
            print(f"{req:40} error: {exc}")
            continue
        verdict = report.verdict
        labels[verdict.label] += 1
        why = f"  ({verdict.reasons[0]})" if verdict.label != "benign" and verdict.reasons else ""
        print(f"{req:40} {verdict.label:11} {verdict.score:5.1f}  {report.elapsed_s:6.2f}s{why}")
    print(f"{len(wanted)} packages in {time.perf_counter() - started:.0f}s: "
          + ", ".join(f"{n} {label}" for label, n in labels.most_common()))
    return 1 if labels["malicious"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
