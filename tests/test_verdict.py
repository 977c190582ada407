"""Verdict: exact labels and scores on hand-made findings."""

from __future__ import annotations

from triage.model import Finding, Phase, SkippedFile, Source
from triage.verdict import decide


def f(indicator: str, severity: str, conf: float, phase: Phase = Phase.INSTALL) -> Finding:
    return Finding(file="setup.py", start_line=1, end_line=1, code="x", indicator=indicator,
                   type="t", phase=phase, severity=severity, confidence=conf,
                   source=Source.STATIC, justification="j", statement_id="setup.py:1:0")


def test_no_findings_is_benign_with_reason() -> None:
    v = decide(())
    assert (v.label, v.score) == ("benign", 0.0)
    assert v.reasons == ("no indicator of malicious behaviour found by the static engine",)


def test_strong_install_time_exec_is_malicious() -> None:
    v = decide((f("code_execution_encoded_command", "critical", 0.95),
                f("code_execution_subprocess_hidden", "high", 0.9)))
    assert v.label == "malicious" and v.score == 72.5
    assert v.reasons[0].startswith("code_execution_encoded_command at setup.py:1 (critical")


def test_metadata_alone_never_malicious() -> None:
    many = tuple(f("metadata_author_email_suspicious", "high", 1.0) for _ in range(10))
    v = decide(many)
    assert v.label == "suspicious" and v.score >= 70


def test_low_confidence_call_time_capabilities_stay_benign() -> None:
    v = decide((f("code_execution_shell_command", "high", 0.3, Phase.CALL),
                f("code_disable_tls_verification", "medium", 0.3, Phase.CALL)))
    assert v.label == "benign" and v.score == 8.9


def test_packed_import_time_code_is_suspicious() -> None:
    v = decide((f("code_obfuscation", "medium", 0.63, Phase.IMPORT),))
    assert v.label == "suspicious"


def test_embedded_executables_count_once_and_extension_modules_in_platform_wheels_not() -> None:
    exes = tuple(SkippedFile(f"pkg/t{i}.exe", "binary file (PE executable), not analysed", True)
                 for i in range(3))
    v = decide((), exes, pure=True)
    assert (v.label, v.score) == ("suspicious", 35.0)
    so = (SkippedFile("pkg/_core.cpython-311-x86_64-linux-gnu.so", "binary file (ELF executable)",
                      True),)
    assert decide((), so, pure=False).label == "benign"
    assert decide((), so, pure=True).label == "suspicious"


def test_chain_bonus_is_capped_extra_evidence_never_malicious_without_a_strong_finding() -> None:
    weak = (f("code_read_system_and_user_info", "medium", 0.6, Phase.CALL),
            f("code_download_payload", "high", 0.5, Phase.CALL))
    base = decide(weak)
    assert (base.label, base.score) == ("benign", 15.4)
    v = decide(weak, chain_bonus=0.9, chain_reason="attack chain of 2 steps")
    assert (v.label, v.score) == ("suspicious", 36.6)  # capped at CHAIN_CAP = 0.25
    assert v.reasons[-1] == "attack chain of 2 steps (+0.25 evidence)"
    medium = tuple(f("code_write_to_disk", "medium", 0.9) for _ in range(8))
    v = decide(medium, chain_bonus=0.25, chain_reason="chain")
    assert (v.label, v.score) == ("suspicious", 76.5)  # no strong finding: never malicious
    assert decide((), chain_bonus=0.25) == decide(())  # no findings: a chain means nothing
