"""Fetching name==version from a PyPI-style JSON API served on 127.0.0.1 by the test."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from triage.artifact import open_artifact
from triage.artifact.pypi import IndexFile, choose_file
from triage.errors import FetchError, UsageError


def _wheel() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("demo/__init__.py", "X = 1\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
    return buffer.getvalue()


def _sdist() -> bytes:
    buffer = io.BytesIO()
    setup = b"from setuptools import setup\nsetup(name='demo', version='1.0')\n"
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("demo-1.0/setup.py")
        info.size = len(setup)
        archive.addfile(info, io.BytesIO(setup))
    return buffer.getvalue()


class Index:
    """Routes served by the test server: path -> (status, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        self.base = ""

    def release(self, name: str, version: str, files: list[dict[str, object]]) -> None:
        body = json.dumps({"info": {"name": name, "version": version}, "urls": files}).encode()
        self.routes[f"/pypi/{name}/json"] = (200, body)
        self.routes[f"/pypi/{name}/{version}/json"] = (200, body)

    def file(self, filename: str, data: bytes, packagetype: str, sha256: str = "") -> dict:
        self.routes[f"/files/{filename}"] = (200, data)
        return {
            "filename": filename,
            "url": f"{self.base}/files/{filename}",
            "packagetype": packagetype,
            "digests": {"sha256": sha256 or hashlib.sha256(data).hexdigest()},
        }


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[Index]:
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    state = Index()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state.requests.append(self.path)
            status, body = state.routes.get(self.path, (404, b"Not Found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _demo_release(index: Index, *, wheel_sha: str = "") -> tuple[bytes, bytes]:
    wheel, sdist = _wheel(), _sdist()
    files = [
        index.file("demo-1.0.tar.gz", sdist, "sdist"),
        index.file("demo-1.0-cp311-cp311-manylinux1_x86_64.whl", b"native", "bdist_wheel"),
        index.file("demo-1.0-py3-none-any.whl", wheel, "bdist_wheel", wheel_sha),
    ]
    index.release("demo", "1.0", files)
    return wheel, sdist


def test_pinned_requirement_fetches_and_opens_the_pure_wheel(index: Index) -> None:
    wheel, _ = _demo_release(index)
    artifact = open_artifact("demo==1.0", index_url=index.base)
    assert (artifact.name, artifact.version, artifact.kind) == ("demo", "1.0", "wheel")
    assert artifact.source == "demo==1.0"
    assert artifact.sha256 == hashlib.sha256(wheel).hexdigest()
    assert [f.path for f in artifact.files] == ["demo/__init__.py", "demo-1.0.dist-info/METADATA"]
    assert index.requests == ["/pypi/demo/1.0/json", "/files/demo-1.0-py3-none-any.whl"]


def test_sdist_choice_and_unpinned_name(index: Index) -> None:
    _, sdist = _demo_release(index)
    artifact = open_artifact("demo", artifact="sdist", index_url=index.base + "/")
    assert (artifact.name, artifact.version, artifact.kind) == ("demo", "1.0", "sdist")
    assert artifact.sha256 == hashlib.sha256(sdist).hexdigest()
    assert index.requests == ["/pypi/demo/json", "/files/demo-1.0.tar.gz"]


def test_sha256_mismatch_is_a_fetch_error(index: Index) -> None:
    wheel, _ = _demo_release(index, wheel_sha="0" * 64)
    with pytest.raises(FetchError) as caught:
        open_artifact("demo==1.0", index_url=index.base)
    assert str(caught.value) == (
        f"sha256 mismatch for demo-1.0-py3-none-any.whl: the index says {'0' * 64}, "
        f"the download is {hashlib.sha256(wheel).hexdigest()}"
    )


def test_unknown_project_is_a_clear_404(index: Index) -> None:
    with pytest.raises(FetchError) as caught:
        open_artifact("nope==9.9", index_url=index.base)
    assert str(caught.value) == (
        f"nope==9.9 was not found on {index.base} (HTTP 404 for {index.base}/pypi/nope/9.9/json)"
    )


def test_server_error_and_missing_file_kind(index: Index) -> None:
    index.routes["/pypi/broken/json"] = (500, b"oops")
    with pytest.raises(FetchError, match=r"looking up broken: HTTP 500 .* for http://127\.0\.0\.1"):
        open_artifact("broken", index_url=index.base)
    index.release("onlysdist", "2.0", [index.file("onlysdist-2.0.tar.gz", _sdist(), "sdist")])
    with pytest.raises(FetchError, match="^onlysdist==2.0 has no wheel on the index$"):
        open_artifact("onlysdist==2.0", artifact="wheel", index_url=index.base)
    index.release("empty", "1.0", [])
    with pytest.raises(FetchError, match="^empty has no wheel or sdist on the index$"):
        open_artifact("empty", index_url=index.base)


def test_non_http_download_url_is_refused(index: Index) -> None:
    entry = index.file("demo-1.0.tar.gz", b"x", "sdist")
    entry["url"] = "file:///etc/passwd"
    index.release("demo", "1.0", [entry])
    with pytest.raises(FetchError, match="refusing non-HTTP URL 'file:///etc/passwd'"):
        open_artifact("demo==1.0", index_url=index.base)


def test_download_over_the_size_cap_is_refused(index: Index) -> None:
    from triage.artifact import Limits

    _demo_release(index)
    with pytest.raises(FetchError, match=r"demo-1\.0-py3-none-any\.whl is .* bytes \(limit 10\)"):
        open_artifact("demo==1.0", index_url=index.base, limits=Limits(max_total_bytes=10))


def test_choose_file_prefers_pure_python_wheels() -> None:
    def item(filename: str, packagetype: str) -> IndexFile:
        return IndexFile(filename, f"https://files.example/{filename}", "a" * 64, packagetype)

    native = item("d-1.0-cp311-cp311-win_amd64.whl", "bdist_wheel")
    pure = item("d-1.0-py2.py3-none-any.whl", "bdist_wheel")
    sdist = item("d-1.0.tar.gz", "sdist")
    assert choose_file((sdist, native, pure), "wheel", "d") is pure
    assert choose_file((sdist, native, pure), "all", "d") is pure
    assert choose_file((sdist, native), "all", "d") is native
    assert choose_file((native, sdist), "sdist", "d") is sdist
    assert choose_file((sdist,), "all", "d") is sdist


def test_bad_artifact_choice_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="artifact must be one of all, wheel, sdist, not 'egg'"):
        open_artifact("demo", artifact="egg")


def test_mirror_without_version_documents_falls_back_to_releases(index: Index) -> None:
    wheel = _wheel()
    entry = index.file("demo-0.9-py3-none-any.whl", wheel, "bdist_wheel")
    document = {"info": {"version": "1.0"}, "urls": [], "releases": {"0.9": [entry]}}
    index.routes["/pypi/demo/json"] = (200, json.dumps(document).encode())
    artifact = open_artifact("demo==0.9", index_url=index.base)
    assert artifact.sha256 == hashlib.sha256(wheel).hexdigest()
    assert index.requests == [
        "/pypi/demo/0.9/json",
        "/pypi/demo/json",
        "/files/demo-0.9-py3-none-any.whl",
    ]
    with pytest.raises(FetchError, match=r"^demo==2\.0 was not found on http://127\.0\.0\.1:\d+ "):
        open_artifact("demo==2.0", index_url=index.base)


def test_relative_file_urls_resolve_against_their_document(index: Index) -> None:
    """Some mirrors list files relative to the JSON document (``../../packages/...``)."""
    wheel = _wheel()
    entry = index.file("demo-1.0-py3-none-any.whl", wheel, "bdist_wheel")
    index.routes["/packages/demo-1.0-py3-none-any.whl"] = (200, wheel)
    entry["url"] = "../../packages/demo-1.0-py3-none-any.whl"
    index.routes["/pypi/demo/json"] = (200, json.dumps(
        {"info": {"version": "1.0"}, "urls": [entry]}).encode())
    artifact = open_artifact("demo", index_url=index.base)
    assert artifact.sha256 == hashlib.sha256(wheel).hexdigest()
    assert index.requests == ["/pypi/demo/json", "/packages/demo-1.0-py3-none-any.whl"]
    # from the version document /pypi/demo/1.0/json the same text climbs one level less
    index.requests.clear()
    index.routes["/pypi/packages/demo-1.0-py3-none-any.whl"] = (200, wheel)
    index.routes["/pypi/demo/1.0/json"] = index.routes["/pypi/demo/json"]
    open_artifact("demo==1.0", index_url=index.base)
    assert index.requests == ["/pypi/demo/1.0/json", "/pypi/packages/demo-1.0-py3-none-any.whl"]
