"""Hostile and broken inputs: traversal, links, devices, bombs, huge counts, odd encodings."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest

from triage.artifact import Limits, open_artifact, open_bytes
from triage.errors import ArtifactError
from triage.model import FileKind, SkippedFile, SourceFile

MIB = 2**20


def zip_bytes(members: Mapping[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tar_bytes(
    infos: list[tuple[tarfile.TarInfo, bytes]], mode: Literal["w:gz", "w"] = "w:gz"
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for info, data in infos:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.py", "path traversal: member '../evil.py' of pkg.zip has a '..' component"),
        ("pkg/../../evil.py", "path traversal: member 'pkg/../../evil.py' of pkg.zip"),
        ("..\\evil.py", "path traversal: member '..\\\\evil.py' of pkg.zip"),
        ("/etc/x.py", "absolute path: member '/etc/x.py' of pkg.zip is an absolute path"),
        ("C:/Windows/x.py", "absolute path: member 'C:/Windows/x.py' of pkg.zip"),
    ],
)
def test_zip_with_escaping_member_is_rejected(name: str, reason: str) -> None:
    data = zip_bytes({"pkg/ok.py": "x = 1\n", name: "import os\n"})
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data, "pkg.zip")
    assert type(caught.value) is ArtifactError
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.py", "path traversal: member '../evil.py' of pkg-1.0.tar.gz"),
        ("/etc/x.py", "absolute path: member '/etc/x.py' of pkg-1.0.tar.gz"),
    ],
)
def test_tar_with_escaping_member_is_rejected(name: str, reason: str) -> None:
    data = tar_bytes([(member("pkg-1.0/ok.py"), b"x = 1\n"), (member(name), b"import os\n")])
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data, "pkg-1.0.tar.gz")
    assert reason in str(caught.value)


def test_tar_links_devices_and_fifos_are_skipped_not_followed() -> None:
    data = tar_bytes(
        [
            (member("pkg-1.0/real.py"), b"A = 1\n"),
            (member("pkg-1.0/sym.py", tarfile.SYMTYPE, "/etc/passwd"), b""),
            (member("pkg-1.0/hard.py", tarfile.LNKTYPE, "pkg-1.0/real.py"), b""),
            (member("pkg-1.0/null", tarfile.CHRTYPE), b""),
            (member("pkg-1.0/disk", tarfile.BLKTYPE), b""),
            (member("pkg-1.0/pipe", tarfile.FIFOTYPE), b""),
        ]
    )
    artifact = open_bytes(data, "pkg-1.0.tar.gz")
    assert artifact.files == (SourceFile("pkg-1.0/real.py", "A = 1\n", FileKind.PYTHON),)
    assert artifact.skipped == (
        SkippedFile("pkg-1.0/sym.py", "symlink, not followed", False),
        SkippedFile("pkg-1.0/hard.py", "hardlink, not followed", False),
        SkippedFile("pkg-1.0/null", "device file", False),
        SkippedFile("pkg-1.0/disk", "device file", False),
        SkippedFile("pkg-1.0/pipe", "fifo (named pipe), not read", False),
    )


def test_symlink_inside_a_zip_is_skipped() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("pkg/link.py")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    artifact = open_bytes(buffer.getvalue(), "pkg.zip")
    assert artifact.files == ()
    assert artifact.skipped == (SkippedFile("pkg/link.py", "symlink, not followed"),)


def test_fifo_and_symlink_in_a_directory_never_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    os.symlink(tmp_path / "pipe.py", tmp_path / "link.py")
    (tmp_path / "ok.py").write_text("B = 2\n")
    artifact = open_artifact(str(tmp_path))
    assert artifact.files == (SourceFile("ok.py", "B = 2\n", FileKind.PYTHON),)
    assert artifact.skipped == (
        SkippedFile("link.py", "symlink, not followed"),
        SkippedFile("pipe.py", "fifo (named pipe), not read"),
    )
    with pytest.raises(ArtifactError, match="is not a regular file"):
        open_artifact(str(tmp_path / "pipe.py"))


def _zeros_zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb.bin", "w") as stream:
            chunk = bytes(MIB)
            for _ in range(size // MIB):
                stream.write(chunk)
    return buffer.getvalue()


def test_zip_bomb_is_rejected_from_headers_without_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _zeros_zip(200 * MIB)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data, "bomb.zip")
    assert "decompression bomb: member 'bomb.bin' of bomb.zip expands from" in str(caught.value)
    assert "to 209,715,200 bytes (ratio above 200)" in str(caught.value)


def _set_zip_sizes(data: bytes, uncompressed: int) -> bytes:
    """Rewrite the uncompressed size in the local and central headers of a one-member zip."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, local + 22, uncompressed)
    struct.pack_into("<I", patched, central + 24, uncompressed)
    return bytes(patched)


def test_zip_whose_header_understates_its_size_is_caught_while_reading() -> None:
    data = _set_zip_sizes(_zeros_zip(50 * MIB), 5 * MIB)  # claims ratio ~100, under the limit
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data, "liar.zip")
    message = str(caught.value)
    assert message.startswith("cannot read liar.zip: member 'bomb.bin' of liar.zip")
    assert "its size or checksum headers do not match its data" in message


def test_tar_gz_bomb_fails_fast_while_decompressing() -> None:
    chunk = bytes(50 * MIB)
    data = tar_bytes([(member("bomb-1.0/zeros.txt"), chunk)])
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data, "bomb-1.0.tar.gz")
    assert str(caught.value).startswith(
        f"decompression bomb: bomb-1.0.tar.gz expands from {len(data):,} bytes to more than"
    )


def test_100k_member_zip_is_rejected_before_its_directory_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("f")
        for index in range(100_000):
            info.filename = f"f{index}"
            archive.writestr(info, b"")
    data = buffer.getvalue()

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", never)
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data, "many.zip")
    assert str(caught.value) == (
        "too many members: many.zip brings the artifact to 100,000 members (limit 20,000)"
    )


def test_tar_member_count_and_total_size_limits() -> None:
    many = tar_bytes([(member(f"m/{i}.py"), b"") for i in range(11)], mode="w")
    with pytest.raises(ArtifactError, match=r"too many members: m\.tar brings the artifact to 11"):
        open_bytes(many, "m.tar", limits=Limits(max_members=10))
    big = tar_bytes([(member("b/a.py"), b"a" * 600), (member("b/b.py"), b"b" * 600)])
    with pytest.raises(ArtifactError) as caught:
        open_bytes(big, "b.tar.gz", limits=Limits(max_total_bytes=1000))
    assert str(caught.value) == (
        "too much data: b.tar.gz brings the uncompressed total to 1,200 bytes (limit 1,000)"
    )


def test_non_utf8_text_latin1_and_coding_cookie() -> None:
    data = zip_bytes(
        {
            "pkg/latin.py": "# caf\xe9\nNAME = 'Jos\xe9'\n".encode("latin-1"),
            "pkg/cp1252.py": b"# -*- coding: cp1252 -*-\nPRICE = '\x80 5'\n",
            "pkg/utf7.py": b"# coding: utf-7\n+AGkAbQBwAG8AcgB0ACAAbwBz-\n",
            "pkg/bom.py": b"\xef\xbb\xbfX = '\xc3\xa9'\n",
        }
    )
    texts = {f.path: f.text for f in open_bytes(data, "enc.zip").files}
    assert texts == {
        "pkg/latin.py": "# caf\xe9\nNAME = 'Jos\xe9'\n",
        "pkg/cp1252.py": "# -*- coding: cp1252 -*-\nPRICE = '\u20ac 5'\n",
        "pkg/utf7.py": "# coding: utf-7\nimport os\n",  # what the interpreter would run
        "pkg/bom.py": "X = '\xe9'\n",
    }


def test_50mb_single_line_py_is_skipped_without_reading(tmp_path: Path) -> None:
    line = b"x = '" + b"A" * (50 * MIB) + b"'\n"
    huge = tmp_path / "huge.py"
    huge.write_bytes(line)
    reason = f"too large ({len(line):,} bytes, limit 20,971,520), not read"

    single = open_artifact(str(huge))
    stored = open_bytes(zip_bytes({"pkg/huge.py": line}, zipfile.ZIP_STORED), "pkg.zip")
    directory = open_artifact(str(tmp_path))

    assert single.files == stored.files == directory.files == ()
    assert single.skipped == (SkippedFile("huge.py", reason),)
    assert stored.skipped == (SkippedFile("pkg/huge.py", reason),)
    assert directory.skipped == (SkippedFile("huge.py", reason),)


def test_very_long_line_is_kept_and_flagged(tmp_path: Path) -> None:
    text = "exec('" + "B" * 1_500_000 + "')\n"
    (tmp_path / "payload.py").write_text(text)
    artifact = open_artifact(str(tmp_path))
    assert artifact.files == (SourceFile("payload.py", text, FileKind.PYTHON),)
    assert artifact.skipped == (
        SkippedFile(
            "payload.py",
            "kept, but has a 1,500,008-character line (limit 1,000,000): lines this long "
            "usually hide an obfuscated payload",
            True,
        ),
    )


def test_truncated_tar_gz_is_rejected_with_the_reason() -> None:
    data = tar_bytes([(member("t-1.0/setup.py"), os.urandom(4096))])
    with pytest.raises(ArtifactError) as caught:
        open_bytes(data[: len(data) // 2], "t-1.0.tar.gz")
    assert str(caught.value) == (
        "cannot read t-1.0.tar.gz: truncated gzip stream: the data ends before the "
        "end-of-stream marker"
    )


def test_truncated_plain_tar_is_rejected() -> None:
    data = tar_bytes([(member("t-1.0/setup.py"), b"s" * 4096)], mode="w")
    with pytest.raises(ArtifactError, match=r"truncated tar archive t-1\.0\.tar: member "):
        open_bytes(data[:2048], "t-1.0.tar")


def test_files_that_are_not_archives(tmp_path: Path) -> None:
    fake_wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    fake_wheel.write_text("just text\n")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ArtifactError, match="not a readable zip archive: File is not a zip file"):
        open_artifact(str(fake_wheel))
    with pytest.raises(
        ArtifactError,
        match=r"blob\.bin is not an archive, a directory or a text file: binary file \(data\)",
    ):
        open_artifact(str(blob))
    with pytest.raises(ArtifactError, match="not a valid gzip stream"):
        open_bytes(b"\x1f\x8bnot really gzip", "x-1.0.tar.gz")
    with pytest.raises(ArtifactError, match="no such file or directory, and not a requirement"):
        open_artifact(str(tmp_path / "missing-1.0.tar.gz"))


def test_nested_archives_stop_at_depth_two() -> None:
    level3 = zip_bytes({"deep.py": "D = 3\n"})
    level2 = zip_bytes({"l3.zip": level3, "two.py": "T = 2\n"})
    level1 = zip_bytes({"l2.zip": level2})
    outer = zip_bytes({"pkg/l1.zip": level1, "pkg/top.py": "O = 0\n"})
    artifact = open_bytes(outer, "outer.zip")
    assert [f.path for f in artifact.files] == ["pkg/l1.zip!l2.zip!two.py", "pkg/top.py"]
    assert artifact.skipped == (
        SkippedFile("pkg/l1.zip!l2.zip!l3.zip", "nested archive deeper than 2 levels"),
    )


def test_broken_nested_archive_is_skipped_but_hostile_one_rejects_all() -> None:
    broken = zip_bytes({"pkg/inner-1.0-py3-none-any.whl": "not a zip"})
    artifact = open_bytes(broken, "outer.zip")
    assert artifact.skipped == (
        SkippedFile(
            "pkg/inner-1.0-py3-none-any.whl",
            "nested archive could not be read: not a readable zip archive: File is not a zip file",
        ),
    )
    hostile = zip_bytes({"pkg/inner.zip": zip_bytes({"../../evil.py": "x"})})
    with pytest.raises(ArtifactError, match=r"path traversal: member '../../evil.py' of pkg/inner"):
        open_bytes(hostile, "outer.zip")


def test_encrypted_zip_member_is_flagged() -> None:
    data = bytearray(zip_bytes({"pkg/secret.py": "x = 1\n"}))
    data[data.find(b"PK\x03\x04") + 6] |= 0x1  # general purpose flag: encrypted
    data[data.find(b"PK\x01\x02") + 8] |= 0x1
    artifact = open_bytes(bytes(data), "enc.zip")
    assert artifact.files == ()
    assert artifact.skipped == (
        SkippedFile(
            "pkg/secret.py",
            "encrypted member, not read: encryption hides the content from review",
            True,
        ),
    )
