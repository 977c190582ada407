"""The renderer registry: every format is a pure function of the report."""

from __future__ import annotations

import json
import re

import pytest

from tests.render_factory import benign_report, hostile_report, malicious_report
from triage.render import RENDERERS, render_batch_summary, render_jsonl, report_from_dict

LIVE_WEBHOOK = re.compile(r"discord(app)?\.com/api/webhooks/\d")
LIVE_URL = re.compile(r"\b(?:https?|ftp)://")


def test_registry_keys() -> None:
    assert list(RENDERERS) == ["terminal", "markdown", "json", "sarif", "html"]


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "json", "sarif", "html"])
@pytest.mark.parametrize("factory", [malicious_report, benign_report, hostile_report])
def test_every_format_is_deterministic_and_webhook_free(fmt: str, factory: object) -> None:
    report = factory()  # type: ignore[operator]
    first = RENDERERS[fmt](report)
    assert first == RENDERERS[fmt](report)
    assert report == factory()  # type: ignore[operator]
    assert first.endswith("\n")
    assert LIVE_WEBHOOK.search(first) is None


@pytest.mark.parametrize("fmt", ["terminal", "markdown", "html"])
def test_human_formats_have_no_live_urls(fmt: str) -> None:
    text = RENDERERS[fmt](malicious_report())
    assert LIVE_URL.search(text) is None
    assert "hxxps://evil[.]example[.]com/collect" in text


def test_jsonl_lines_for_batches() -> None:
    lines = [render_jsonl(r) for r in (malicious_report(), benign_report())]
    assert all("\n" not in line for line in lines)
    assert report_from_dict(json.loads(lines[1])) == benign_report()
    assert json.loads(lines[0])["verdict"]["label"] == "malicious"


def test_batch_summary_is_exported() -> None:
    assert "goodpkg==2.0" in render_batch_summary([benign_report()])
