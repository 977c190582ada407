"""SARIF: validates against the official 2.1.0 schema and points at exact places."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import triage
from tests.render_factory import (
    ENCODED,
    EXFIL,
    HOOK,
    HOSTILE_FILE,
    benign_report,
    hostile_report,
    malicious_report,
)
from triage.model import ChainStep, Phase
from triage.render.sarif import artifact_uri, fingerprint, render

SCHEMA = json.loads(
    Path("/work/shared/reference/sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def sarif(report: object) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render(report))  # type: ignore[arg-type]
    errors = sorted(VALIDATOR.iter_errors(data), key=str)
    assert errors == [], [e.message for e in errors]
    return data


@pytest.mark.parametrize("factory", [malicious_report, benign_report, hostile_report])
def test_validates_against_official_schema(factory: object) -> None:
    data = sarif(factory())  # type: ignore[operator]
    assert data["version"] == "2.1.0"
    assert len(data["runs"]) == 1


def test_driver_and_one_rule_per_indicator() -> None:
    run = sarif(malicious_report())["runs"][0]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("triage", triage.__version__)
    assert driver["informationUri"] == "https://github.com/triage-dev/triage"
    assert [r["id"] for r in driver["rules"]] == [
        "code_execution_install_hook_override",
        "code_execution_encoded_command",
        "code_exfiltration_data",
    ]
    rule = driver["rules"][1]
    assert rule["name"] == "EncodedCommandExecution"
    assert rule["shortDescription"] == {"text": "Encoded command execution"}
    assert rule["fullDescription"] == {"text": "Encoded code or commands are decoded and executed."}
    assert rule["help"]["text"].startswith("Encoded code or commands are decoded and executed.")
    assert rule["properties"] == {
        "tags": ["Execution Mechanism", "security", "CWE-506", "T1027", "T1140", "T1059.006"],
        "security-severity": "9.5",
        "precision": "very-high",
    }
    assert driver["rules"][2]["properties"]["security-severity"] == "8.0"
    assert driver["rules"][2]["properties"]["precision"] == "medium"


def test_results_exact_locations_levels_and_properties() -> None:
    results = sarif(malicious_report())["runs"][0]["results"]
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in results] == [
        ("code_execution_install_hook_override", 0, "error"),
        ("code_execution_encoded_command", 1, "error"),
        ("code_exfiltration_data", 2, "error"),
    ]
    loc = results[1]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "setup.py"}
    assert loc["region"] == {
        "startLine": 12,
        "endLine": 13,
        "snippet": {"text": ENCODED.code},
    }
    assert results[1]["message"] == {"text": ENCODED.justification}
    assert results[1]["properties"] == {
        "phase": "install",
        "confidence": 0.95,
        "source": "both",
        "type": "Execution Mechanism",
        "severity": "critical",
        "statementId": "setup.py:12:0",
    }


def test_decoded_file_uri_is_escaped_with_related_origin() -> None:
    result = sarif(malicious_report())["runs"][0]["results"][2]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "setup.py%23decoded-1"
    assert (loc["region"]["startLine"], loc["region"]["endLine"]) == (3, 3)
    assert result["relatedLocations"] == [
        {
            "id": 1,
            "physicalLocation": {
                "artifactLocation": {"uri": "setup.py"},
                "region": {"startLine": 12, "endLine": 13},
            },
            "message": {"text": "Payload decoded from statement setup.py:12:0."},
        }
    ]
    assert "relatedLocations" not in sarif(malicious_report())["runs"][0]["results"][0]


def test_origin_not_among_findings_points_at_its_line() -> None:
    report = malicious_report(findings=(HOOK, replace(EXFIL, origin="pkg/a b.py:7:1")), chain=())
    related = sarif(report)["runs"][0]["results"][1]["relatedLocations"][0]
    assert related["physicalLocation"] == {
        "artifactLocation": {"uri": "pkg/a%20b.py"},
        "region": {"startLine": 7},
    }


def test_artifact_uri_escaping() -> None:
    assert artifact_uri("setup.py#decoded-1") == "setup.py%23decoded-1"
    assert artifact_uri("pkg/a b?.py") == "pkg/a%20b%3F.py"
    assert artifact_uri("outer.tar.gz!inner/x.py") == "outer.tar.gz!inner/x.py"
    assert artifact_uri("c:evil/é.py") == "c%3Aevil/%C3%A9.py"
    assert artifact_uri(HOSTILE_FILE) == "pkg/%3Cscript%3Ealert(1)%3C/script%3E%7Ca.py"


def test_fingerprint_is_stable_across_line_shifts_only() -> None:
    shifted = replace(ENCODED, start_line=40, end_line=41, statement_id="setup.py:40:0")
    reindented = replace(ENCODED, code='exec(base64.b64decode(\n  "aW1wb3J0IHJlcXVlc3Rz"))')
    assert fingerprint(shifted) == fingerprint(ENCODED)
    assert fingerprint(reindented) == fingerprint(ENCODED)
    assert fingerprint(replace(ENCODED, code="exec(x)")) != fingerprint(ENCODED)
    assert fingerprint(replace(ENCODED, file="other.py")) != fingerprint(ENCODED)
    assert fingerprint(replace(ENCODED, indicator="code_obfuscation")) != fingerprint(ENCODED)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(ENCODED))

    before = sarif(malicious_report())["runs"][0]["results"][1]
    after = sarif(malicious_report(findings=(HOOK, shifted, EXFIL)))["runs"][0]["results"][1]
    assert before["partialFingerprints"] == after["partialFingerprints"]
    assert after["locations"][0]["physicalLocation"]["region"]["startLine"] == 40


def test_code_flow_on_first_chain_step() -> None:
    results = sarif(malicious_report())["runs"][0]["results"]
    assert [("codeFlows" in r) for r in results] == [True, False, False]
    steps = results[0]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [
        (
            s["executionOrder"],
            s["nestingLevel"],
            s["location"]["physicalLocation"]["artifactLocation"]["uri"],
            s["location"]["physicalLocation"]["region"]["startLine"],
            s["location"]["message"]["text"],
        )
        for s in steps
    ] == [
        (1, 0, "setup.py", 10, "1. install: code_execution_install_hook_override"),
        (2, 0, "setup.py", 12, "2. install: code_execution_encoded_command"),
        (3, 0, "setup.py%23decoded-1", 3, "3. install: code_exfiltration_data"),
    ]


def test_chain_starting_at_later_finding() -> None:
    chain = (
        ChainStep(Phase.INSTALL, "code_execution_encoded_command", 1),
        ChainStep(Phase.INSTALL, "code_exfiltration_data", 2),
    )
    results = sarif(malicious_report(chain=chain))["runs"][0]["results"]
    assert [("codeFlows" in r) for r in results] == [False, True, False]


def test_invocation_notifications_and_run_properties() -> None:
    run = sarif(malicious_report())["runs"][0]
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is True
    assert [(n["level"], n["message"]["text"]) for n in inv["toolExecutionNotifications"]] == [
        ("warning", "Not analysed: evilpkg/bin/payload.exe: binary file (PE executable)"),
        ("note", "Not analysed: evilpkg/logo.png: binary file (PNG image)"),
        ("note", "evilpkg/big.py was not reviewed by the LLM (too large)"),
    ]
    assert run["properties"]["verdict"] == "malicious"
    assert run["properties"]["score"] == 96.5


def test_uncatalogued_indicator_gets_a_bare_rule() -> None:
    report = malicious_report(indicators=(), chain=())
    driver = sarif(report)["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == [
        HOOK.indicator,
        ENCODED.indicator,
        EXFIL.indicator,
    ]
    assert driver["rules"][0]["name"] == "CodeExecutionInstallHookOverride"


def test_benign_report_has_no_rules_or_results() -> None:
    run = sarif(benign_report())["runs"][0]
    assert run["tool"]["driver"]["rules"] == []
    assert run["results"] == []
    assert run["invocations"][0]["toolExecutionNotifications"] == []


def test_code_exact_but_no_live_webhook() -> None:
    text = render(malicious_report())
    assert re.search(r"discord(app)?\.com/api/webhooks/\d", text) is None
    assert "https://evil.example.com/collect" in text
    snippet = json.loads(text)["runs"][0]["results"][2]["locations"][0]["physicalLocation"][
        "region"
    ]["snippet"]["text"]
    assert snippet == EXFIL.code.replace("discord.com/api", "discord[.]com/api")


def test_unknown_line_keeps_schema_valid() -> None:
    meta = replace(HOOK, file="PKG-INFO", start_line=0, end_line=0, code="Author: x")
    loc = sarif(malicious_report(findings=(meta,), chain=()))["runs"][0]["results"][0]["locations"][
        0
    ]["physicalLocation"]
    assert loc == {"artifactLocation": {"uri": "PKG-INFO"}}
