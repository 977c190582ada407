"""Rejected citations, unreviewed files and LLM usage appear in every human format."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.conftest import SHARED
from tests.render_factory import malicious_report
from triage.model import LlmUsage, RejectedCitation, SkippedFile
from triage.render import RENDERERS
from triage.render.terminal import render as render_terminal


def _report():  # type: ignore[no-untyped-def]
    return malicious_report(
        rejected=(RejectedCitation("setup.py:99:0", "code_execution_runtime", "evil()",
                                   "statement setup.py:99:0 does not exist", "openai/m"),),
        not_reviewed=(SkippedFile("pkg/vendored/big.py", "over the token budget (9000 > 4000)"),),
        llm=LlmUsage(model="openai/m", calls=2, cached_calls=1, prompt_tokens=1200,
                     completion_tokens=80, cost_usd=0.0012, latency_s=1.5),
    )


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_sections_in_markdown_and_html(fmt: str) -> None:
    out = RENDERERS[fmt](_report())
    assert "Rejected LLM citations (not findings)" in out
    assert "statement setup.py:99:0 does not exist" in out
    assert "not reviewed by the model: pkg/vendored/big.py: over the token budget" in out
    assert "model openai/m: 2 call(s) (1 cached), 1200 prompt + 80 completion tokens" in out


def test_sections_in_terminal() -> None:
    out = render_terminal(_report(), width=200)
    assert "Rejected LLM citations, not findings (1)" in out
    assert "setup.py:99:0 code_execution_runtime: statement setup.py:99:0 does not exist" in out


def test_json_and_sarif_stay_valid() -> None:
    rep = _report()
    d = json.loads(RENDERERS["json"](rep))
    assert d["rejected"][0]["reason"] == "statement setup.py:99:0 does not exist"
    assert d["llm"]["prompt_tokens"] == 1200
    schema = json.loads((SHARED / "reference" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(json.loads(RENDERERS["sarif"](rep)))
