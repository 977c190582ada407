"""Fetch one distribution file from a PyPI-compatible JSON API (never pip), verified by sha256."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from triage.errors import FetchError

TIMEOUT_S = 30
"""Network timeout for each request, in seconds."""
MAX_JSON_BYTES = 64 * 2**20
"""Largest index JSON document accepted."""
CHOICES = ("all", "wheel", "sdist")
"""Accepted values of ``artifact``."""

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class IndexFile:
    """One downloadable file listed by the index."""

    filename: str
    """Base file name (``demo-1.0-py3-none-any.whl``)."""
    url: str
    """Download URL (http or https)."""
    sha256: str
    """Expected lower-case hex digest."""
    packagetype: str
    """``bdist_wheel``, ``sdist``, ``bdist_egg``..."""


def _opener() -> urllib.request.OpenerDirector:
    """HTTP(S) only: no file:// or ftp:// even through redirects."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class _NotFound(Exception):
    """HTTP 404 (internal: turned into a FetchError with a clear message)."""


def http_get(url: str, cap: int, what: str) -> bytes:
    """GET ``url``, reading at most ``cap`` bytes.

    Args:
        url: http(s) URL.
        cap: most bytes accepted.
        what: what is being done, for messages.

    Raises:
        FetchError: bad scheme, HTTP error, network failure, or a body over ``cap``.
    """
    try:
        return _get(url, cap, what)
    except _NotFound:
        raise FetchError(f"{what}: HTTP 404 Not Found for {url}") from None


def _get(url: str, cap: int, what: str) -> bytes:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"{what}: refusing non-HTTP URL {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "triage/0.1"})
    try:
        with _opener().open(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > cap:
                raise FetchError(f"{what}: {url} is {int(length):,} bytes (limit {cap:,})")
            data: bytes = response.read(cap + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        if exc.code == 404:
            raise _NotFound from None
        raise FetchError(f"{what}: HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"{what}: could not download {url}: {reason}") from None
    if len(data) > cap:
        raise FetchError(f"{what}: {url} is larger than the limit of {cap:,} bytes")
    return data


def _get_json(url: str, what: str) -> dict[str, Any]:
    raw = _get(url, MAX_JSON_BYTES, what)
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise FetchError(f"{what}: {url} did not return JSON ({exc})") from None
    if not isinstance(document, dict):
        raise FetchError(f"{what}: {url} did not return a JSON object")
    return document


def release_files(name: str, version: str | None, index_url: str) -> tuple[IndexFile, ...]:
    """Files of ``name`` (at ``version``, else the latest) from ``{index}/pypi/.../json``.

    When the per-version document is missing (some mirrors serve only the project one),
    the version's files are taken from the project document's ``releases``.

    Raises:
        FetchError: the project or version is unknown, or the answer is not usable JSON.
    """
    project_url = f"{index_url.rstrip('/')}/pypi/{urllib.parse.quote(name, safe='')}/json"
    spec = f"{name}=={version}" if version else name
    what = f"looking up {spec}"
    url = project_url
    if version:
        url = f"{project_url[: -len('/json')]}/{urllib.parse.quote(version, safe='')}/json"
    try:
        entries = _get_json(url, what).get("urls")
    except _NotFound:
        entries = None
        if version:
            entries = _release_from_project(project_url, version, what)
        if entries is None:
            raise FetchError(f"{spec} was not found on {index_url} (HTTP 404 for {url})") from None
        url = project_url  # the entries came from the project document
    if not isinstance(entries, list):
        raise FetchError(f"{what}: {url} has no 'urls' list")
    return tuple(f for f in (_index_file(e, url) for e in entries) if f is not None)


def _release_from_project(project_url: str, version: str, what: str) -> list[Any] | None:
    try:
        releases = _get_json(project_url, what).get("releases")
    except _NotFound:
        return None
    files = releases.get(version) if isinstance(releases, dict) else None
    return files if isinstance(files, list) and files else None


def _index_file(entry: Any, base: str) -> IndexFile | None:
    """One file entry; a relative ``url`` (some mirrors serve them) is resolved against the
    document it came from, ``base``."""
    if not isinstance(entry, dict):
        return None
    filename, url = entry.get("filename"), entry.get("url")
    digests = entry.get("digests")
    sha256 = digests.get("sha256") if isinstance(digests, dict) else None
    if not (isinstance(filename, str) and isinstance(url, str) and isinstance(sha256, str)):
        return None
    filename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if not filename or not _SHA256.match(sha256.lower()):
        return None
    return IndexFile(filename, urllib.parse.urljoin(base, url), sha256.lower(),
                     str(entry.get("packagetype", "")))


def _is_wheel(item: IndexFile) -> bool:
    return item.packagetype == "bdist_wheel" or item.filename.lower().endswith(".whl")


def _pure_py3(item: IndexFile) -> bool:
    tags = item.filename[:-4].split("-")[-3:]
    return len(tags) == 3 and "py3" in tags[0].split(".") and tags[1:] == ["none", "any"]


def choose_file(files: tuple[IndexFile, ...], artifact: str, spec: str) -> IndexFile:
    """Pick the file to analyse.

    Args:
        files: the release's files.
        artifact: ``wheel`` (a py3-none-any wheel, else any wheel), ``sdist``, or ``all``
            (a wheel as for ``wheel`` when there is one, else the sdist).
        spec: the requirement, for messages.

    Raises:
        FetchError: no file of the requested kind.
    """
    wheels = [f for f in files if _is_wheel(f)]
    wheel = next((f for f in wheels if _pure_py3(f)), wheels[0] if wheels else None)
    sdist = next((f for f in files if f.packagetype == "sdist"), None)
    choice = {"wheel": wheel, "sdist": sdist, "all": wheel or sdist}[artifact]
    if choice is None:
        wanted = {"wheel": "wheel", "sdist": "sdist", "all": "wheel or sdist"}[artifact]
        raise FetchError(f"{spec} has no {wanted} on the index")
    return choice


def download(item: IndexFile, cap: int) -> bytes:
    """Download one file and check its sha256.

    Raises:
        FetchError: download failure, over ``cap`` bytes, or digest mismatch.
    """
    data = http_get(item.url, cap, f"downloading {item.filename}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != item.sha256:
        raise FetchError(
            f"sha256 mismatch for {item.filename}: the index says {item.sha256}, "
            f"the download is {actual}"
        )
    return data


def fetch(
    name: str, version: str | None, *, artifact: str, index_url: str, cap: int
) -> tuple[bytes, str]:
    """Find, download and verify one file of ``name[==version]``; return (bytes, filename)."""
    spec = f"{name}=={version}" if version else name
    item = choose_file(release_files(name, version, index_url), artifact, spec)
    return download(item, cap), item.filename
