"""Happy paths of triage.artifact: wheels, sdists, zips, directories, single files, nesting."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest

from triage.artifact import Limits, open_artifact, open_bytes
from triage.artifact.naming import name_version_from_filename
from triage.model import FileKind, MetadataField, SkippedFile, SourceFile


def zip_bytes(members: Mapping[str, bytes | str]) -> bytes:
    """A deflated zip of ``{name: content}``, in order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tar_bytes(members: Mapping[str, bytes | str], mode: Literal["w:gz", "w"] = "w:gz") -> bytes:
    """A tar (gzip by default) of regular files ``{name: content}``, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, content in members.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def kinds(artifact_files: tuple[SourceFile, ...]) -> list[tuple[str, str]]:
    return [(f.path, f.kind.value) for f in artifact_files]


WHEEL_METADATA = """\
Metadata-Version: 2.1
Name: demo
Version: 1.0
Summary: A demo package
Home-page: https://example.org/demo
Author: Ann Author
Author-email: ann@example.org
License: MIT
Classifier: Programming Language :: Python :: 3
Classifier: License :: OSI Approved :: MIT License
Requires-Dist: requests (>=2)
Requires-Dist: rich

Long description
over two lines.
"""


def test_wheel_members_kinds_and_metadata(tmp_path: Path) -> None:
    data = zip_bytes(
        {
            "demo/__init__.py": "VERSION = '1.0'\n",
            "demo/data.bin": b"\x00\x01\x02",
            "demo.pth": "import demo\n",
            "demo-1.0.dist-info/METADATA": WHEEL_METADATA,
            "demo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\n",
            "demo-1.0.dist-info/entry_points.txt": "[console_scripts]\ndemo = demo:main\n",
            "demo-1.0.dist-info/RECORD": "demo/__init__.py,,\n",
        }
    )
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    path.write_bytes(data)

    artifact = open_artifact(str(path))

    assert (artifact.name, artifact.version, artifact.kind) == ("demo", "1.0", "wheel")
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.source == str(path)
    assert kinds(artifact.files) == [
        ("demo/__init__.py", "python"),
        ("demo.pth", "pth"),
        ("demo-1.0.dist-info/METADATA", "text"),
        ("demo-1.0.dist-info/entry_points.txt", "text"),
    ]
    assert artifact.files[0].text == "VERSION = '1.0'\n"
    assert artifact.skipped == (
        SkippedFile("demo/data.bin", "binary file (data), not analysed", evidence=False),
    )
    meta = "demo-1.0.dist-info/METADATA"
    assert artifact.metadata.all("author_email") == (
        MetadataField("author_email", "ann@example.org", meta, 7, 7),
    )
    assert artifact.metadata.all("requires") == (
        MetadataField("requires", "requests (>=2)\nrich", meta, 11, 12),
    )
    assert artifact.metadata.get("classifiers") == (
        "Programming Language :: Python :: 3\nLicense :: OSI Approved :: MIT License"
    )
    assert artifact.metadata.get("home_page") == "https://example.org/demo"
    assert artifact.metadata.all("description") == (
        MetadataField("description", "Long description\nover two lines.", meta, 14, 15),
    )


SETUP_PY = """\
from setuptools import setup, find_packages
DESCRIPTION = 'Colour helpers'
REQS = ['requests', 'fernet']

setup(
    name='py-crd',
    version='1.0.0',
    author_email='crd@example.org',
    description=DESCRIPTION,
    long_description=open('README.md').read(),
    install_requires=REQS + [
        'rich',
    ],
    url=f"https://example.org/{DESCRIPTION}",
    cmdclass={'install': PostInstall},
    packages=find_packages(),
)
"""

PKG_INFO = """\
Metadata-Version: 1.1
Name: py-crd
Version: 1.0.0
Summary: Colour helpers
Author-email: crd@example.org
"""

SETUP_CFG = """\
[metadata]
name = py-crd
long_description = file: README.md
home-page = https://example.org/cfg

[options]
install_requires =
    requests
    rich

[egg_info]
tag_build = %(not)s interpolated
"""


def test_sdist_tar_gz_members_and_setup_keywords(tmp_path: Path) -> None:
    data = tar_bytes(
        {
            "py-crd-1.0.0/PKG-INFO": PKG_INFO,
            "py-crd-1.0.0/setup.py": SETUP_PY,
            "py-crd-1.0.0/setup.cfg": SETUP_CFG,
            "py-crd-1.0.0/README.md": "# py-crd\n",
            "py-crd-1.0.0/LICENSE": "MIT\n",
            "py-crd-1.0.0/data/colours.json": "{}\n",
            "py-crd-1.0.0/src/crd/__init__.py": "",
        }
    )
    path = tmp_path / "py-crd-1.0.0.tar.gz"
    path.write_bytes(data)

    artifact = open_artifact(str(path))

    assert (artifact.name, artifact.version, artifact.kind) == ("py-crd", "1.0.0", "sdist")
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert kinds(artifact.files) == [
        ("py-crd-1.0.0/PKG-INFO", "text"),
        ("py-crd-1.0.0/setup.py", "python"),
        ("py-crd-1.0.0/setup.cfg", "text"),
        ("py-crd-1.0.0/README.md", "text"),
        ("py-crd-1.0.0/src/crd/__init__.py", "python"),
    ]
    assert artifact.skipped == ()
    setup = "py-crd-1.0.0/setup.py"
    fields = [f for f in artifact.metadata.fields if f.file == setup]
    assert fields == [
        MetadataField("name", "py-crd", setup, 6, 6),
        MetadataField("version", "1.0.0", setup, 7, 7),
        MetadataField("author_email", "crd@example.org", setup, 8, 8),
        MetadataField("summary", "Colour helpers", setup, 9, 9),
        MetadataField("description", "open('README.md').read()", setup, 10, 10),
        MetadataField("requires", "requests\nfernet\nrich", setup, 11, 13),
        MetadataField("home_page", "https://example.org/Colour helpers", setup, 14, 14),
        MetadataField("cmdclass", "{'install': PostInstall}", setup, 15, 15),
    ]
    cfg = "py-crd-1.0.0/setup.cfg"
    assert [f for f in artifact.metadata.fields if f.file == cfg] == [
        MetadataField("name", "py-crd", cfg, 2, 2),
        MetadataField("description", "file: README.md", cfg, 3, 3),
        MetadataField("home_page", "https://example.org/cfg", cfg, 4, 4),
        MetadataField("requires", "requests\nrich", cfg, 7, 9),
    ]
    # PKG-INFO sorts first among root files, so its declarations win .get()
    assert artifact.metadata.all("author_email")[0].file == "py-crd-1.0.0/PKG-INFO"


def test_setup_py_variants_aliases_kwargs_and_python2_fallback() -> None:
    aliased = textwrap.dedent(
        """\
        import setuptools
        from distutils.core import setup as do_setup
        ARGS = dict(
            name='alias',
            author='Eve',
        )
        do_setup(**ARGS)
        setuptools.setup(version='2.0')
        """
    )
    python2 = textwrap.dedent(
        """\
        from distutils.core import setup
        print "installing"
        setup(name='old',
              version="0.9",
              author_email=u'old@example.org')
        """
    )
    data = zip_bytes({"alias/setup.py": aliased, "old/setup.py": python2})
    artifact = open_bytes(data, "both.zip")
    assert artifact.metadata.fields == (
        MetadataField("name", "alias", "alias/setup.py", 4, 4),
        MetadataField("author", "Eve", "alias/setup.py", 5, 5),
        MetadataField("version", "2.0", "alias/setup.py", 8, 8),
        MetadataField("name", "old", "old/setup.py", 3, 3),
        MetadataField("version", "0.9", "old/setup.py", 4, 4),
        MetadataField("author_email", "old@example.org", "old/setup.py", 5, 5),
    )
    assert artifact.kind == "sdist"
    assert (artifact.name, artifact.version) == ("alias", "2.0")


def test_pyproject_metadata_with_lines() -> None:
    pyproject = textwrap.dedent(
        """\
        [build-system]
        requires = ["setuptools"]

        [project]
        name = "tomlpkg"
        version = "3.1"
        description = "From TOML"
        authors = [{name = "Tom", email = "tom@example.org"}]
        dependencies = [
            "requests",
        ]

        [project.urls]
        Homepage = "https://example.org/toml"
        """
    )
    artifact = open_bytes(zip_bytes({"tomlpkg-3.1/pyproject.toml": pyproject}), "tomlpkg-3.1.zip")
    path = "tomlpkg-3.1/pyproject.toml"
    assert artifact.metadata.fields == (
        MetadataField("name", "tomlpkg", path, 5, 5),
        MetadataField("version", "3.1", path, 6, 6),
        MetadataField("summary", "From TOML", path, 7, 7),
        MetadataField("requires", "requests", path, 9, 11),
        MetadataField("author", "Tom", path, 8, 8),
        MetadataField("author_email", "tom@example.org", path, 8, 8),
        MetadataField("home_page", "https://example.org/toml", path, 14, 14),
    )
    assert (artifact.name, artifact.version, artifact.kind) == ("tomlpkg", "3.1", "sdist")


def test_plain_zip_takes_name_from_file_name(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(zip_bytes({"tool/run.py": "print('hi')\n", "tool/notes.yaml": "a: 1\n"}))
    artifact = open_artifact(str(path))
    assert (artifact.name, artifact.version, artifact.kind) == ("bundle", "", "zip")
    assert kinds(artifact.files) == [("tool/run.py", "python")]
    assert artifact.skipped == ()


def test_directory_walk_skips_vcs_caches_and_links(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='proj', version='0.3')\n"
    )
    (root / "pkg" / "__init__.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    for ignored in (".git", "__pycache__", ".venv"):
        (root / ignored).mkdir()
        (root / ignored / "hidden.py").write_text("import os\n")
    os.symlink("/etc/passwd", root / "pkg" / "link.py")

    artifact = open_artifact(str(root))

    assert (artifact.name, artifact.version, artifact.kind) == ("proj", "0.3", "directory")
    assert kinds(artifact.files) == [
        ("pkg/__init__.py", "python"),
        ("run.sh", "text"),
        ("setup.py", "python"),
    ]
    assert artifact.skipped == (SkippedFile("pkg/link.py", "symlink, not followed"),)
    listing = "".join(
        f"{hashlib.sha256((root / rel).read_bytes()).hexdigest()}  {rel}\n"
        for rel in ("pkg/__init__.py", "run.sh", "setup.py")
    )
    assert artifact.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert artifact.metadata.all("version") == (MetadataField("version", "0.3", "setup.py", 2, 2),)


def test_single_py_and_pth_files(tmp_path: Path) -> None:
    script = tmp_path / "tool.py"
    script.write_bytes(b"\xef\xbb\xbfimport os\n")
    pth = tmp_path / "evil.pth"
    pth.write_text("import os; os.getcwd()\n")

    py_artifact = open_artifact(str(script))
    pth_artifact = open_artifact(str(pth))

    assert py_artifact.files == (SourceFile("tool.py", "import os\n", FileKind.PYTHON),)
    assert (py_artifact.name, py_artifact.version, py_artifact.kind) == ("tool", "", "file")
    assert py_artifact.sha256 == hashlib.sha256(script.read_bytes()).hexdigest()
    assert pth_artifact.files == (SourceFile("evil.pth", "import os; os.getcwd()\n", FileKind.PTH),)
    assert pth_artifact.kind == "file"


def test_sdist_containing_a_wheel_is_opened_recursively() -> None:
    wheel = zip_bytes(
        {"inner/__init__.py": "Y = 2\n", "inner-0.1.dist-info/METADATA": "Name: inner\n"}
    )
    sdist = tar_bytes(
        {
            "outer-1.0/setup.py": "from setuptools import setup\nsetup(name='outer')\n",
            "outer-1.0/dist/inner-0.1-py3-none-any.whl": wheel,
        }
    )
    artifact = open_bytes(sdist, "outer-1.0.tar.gz")
    assert kinds(artifact.files) == [
        ("outer-1.0/setup.py", "python"),
        ("outer-1.0/dist/inner-0.1-py3-none-any.whl!inner/__init__.py", "python"),
        ("outer-1.0/dist/inner-0.1-py3-none-any.whl!inner-0.1.dist-info/METADATA", "text"),
    ]
    assert (artifact.name, artifact.version) == ("outer", "1.0")
    assert artifact.metadata.all("name") == (
        MetadataField("name", "outer", "outer-1.0/setup.py", 2, 2),
        MetadataField(
            "name",
            "inner",
            "outer-1.0/dist/inner-0.1-py3-none-any.whl!inner-0.1.dist-info/METADATA",
            1,
            1,
        ),
    )


def test_binaries_are_skipped_and_executables_flagged() -> None:
    data = zip_bytes(
        {
            "pkg/a.elf": b"\x7fELF\x02\x01\x01\x00" + bytes(64),
            "pkg/b.exe": b"MZ\x90\x00" + bytes(64),
            "pkg/c.cpython-311.pyc": b"\xa7\x0d\x0d\x0a" + bytes(12),
            "pkg/_speed.so": b"\x7fELF" + bytes(8),
            "pkg/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(16),
            "pkg/helper.jar": b"PK\x03\x04" + bytes(16),
            "pkg/run.vbs": "WScript.Echo 1\n",
            "pkg/tool": "#!/usr/bin/env python3\nprint(1)\n",
            "pkg/deploy.pl": "print 1;\n",
        }
    )
    artifact = open_bytes(data, "bins.zip")
    assert kinds(artifact.files) == [("pkg/run.vbs", "text"), ("pkg/tool", "python")]
    exe = ": an embedded executable is suspicious"
    assert artifact.skipped == (
        SkippedFile("pkg/a.elf", f"binary file (ELF executable), not analysed{exe}", True),
        SkippedFile("pkg/b.exe", f"binary file (PE executable), not analysed{exe}", True),
        SkippedFile(
            "pkg/c.cpython-311.pyc",
            "binary file (compiled Python bytecode), not analysed: "
            "shipped bytecode hides its source",
            True,
        ),
        SkippedFile("pkg/_speed.so", f"binary file (ELF executable), not analysed{exe}", True),
        SkippedFile("pkg/logo.png", "binary file (image), not analysed", False),
        SkippedFile(
            "pkg/helper.jar",
            ".jar file, not analysed: a packaged executable or script host is suspicious",
            True,
        ),
        SkippedFile("pkg/deploy.pl", "script in another language (.pl), not analysed", False),
    )


def test_duplicate_member_keeps_the_last_copy() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pkg/mod.py", "A = 1\n")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("pkg/mod.py", "B = 2\n")
    artifact = open_bytes(buffer.getvalue(), "dup.zip")
    assert artifact.files == (SourceFile("pkg/mod.py", "B = 2\n", FileKind.PYTHON),)
    assert artifact.skipped == (
        SkippedFile(
            "pkg/mod.py",
            "duplicate member name: an earlier copy was replaced by this later one, which an "
            "installer would keep",
            True,
        ),
    )


def test_wheel_under_a_tar_gz_name_is_read_by_its_magic_bytes() -> None:
    wheel = zip_bytes({"x/__init__.py": "", "x-1.0.dist-info/METADATA": "Name: x\nVersion: 1.0\n"})
    artifact = open_bytes(wheel, "x-1.0-py3-none-any.tar.gz")
    assert (artifact.name, artifact.version, artifact.kind) == ("x", "1.0", "wheel")
    assert kinds(artifact.files) == [
        ("x/__init__.py", "python"),
        ("x-1.0.dist-info/METADATA", "text"),
    ]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("demo-1.0-py3-none-any.whl", ("demo", "1.0")),
        ("demo-1.0-1-py2.py3-none-any.whl", ("demo", "1.0")),
        ("py-crd-1.0.0.tar.gz", ("py-crd", "1.0.0")),
        ("demo-2.0.zip", ("demo", "2.0")),
        ("demo-0.1-py3.8.egg", ("demo", "0.1")),
        ("notes.txt", ("notes", "")),
        ("tarball.tar.gz", ("tarball", "")),
    ],
)
def test_name_version_from_filename(filename: str, expected: tuple[str, str]) -> None:
    assert name_version_from_filename(filename) == expected


MARKER_CODE = "open({marker!r}, 'w').write('ran')\n"


def test_nothing_in_the_package_is_executed_or_imported(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    code = MARKER_CODE.format(marker=str(marker))
    sources = {
        "victimpkg-1.0/setup.py": f"{code}from setuptools import setup\nsetup(name='victimpkg')\n",
        "victimpkg-1.0/victimpkg/__init__.py": code,
        "victimpkg-1.0/victimpkg.pth": f"import os; {code}",
        "victimpkg-1.0/sitecustomize.py": code,
    }
    root = tmp_path / "victimpkg-1.0"
    for rel, text in sources.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    archive = tmp_path / "victimpkg-1.0.tar.gz"
    archive.write_bytes(tar_bytes(sources))
    before = sorted(p.name for p in tmp_path.iterdir())

    from_dir = open_artifact(str(root))
    from_archive = open_artifact(str(archive), limits=Limits(max_depth=0))

    assert not marker.exists()
    assert "victimpkg" not in sys.modules
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert from_dir.name == from_archive.name == "victimpkg"
    assert len(from_archive.files) == len(from_dir.files) == 4


@pytest.mark.parametrize(("mode", "suffix"), [("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz")])
def test_bzip2_and_xz_sdists(mode: Literal["w:bz2", "w:xz"], suffix: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        info = tarfile.TarInfo("z-0.2/z.py")
        info.size = 6
        archive.addfile(info, io.BytesIO(b"Z = 1\n"))
    artifact = open_bytes(buffer.getvalue(), f"z-0.2{suffix}")
    assert (artifact.name, artifact.version, artifact.kind) == ("z", "0.2", "sdist")
    assert artifact.files == (SourceFile("z-0.2/z.py", "Z = 1\n", FileKind.PYTHON),)
