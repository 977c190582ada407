"""Package metadata from PKG-INFO/METADATA, setup.cfg, pyproject.toml and setup.py (never run)."""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable
from email.parser import HeaderParser

from triage.artifact.setup_py import setup_py_fields
from triage.model import MetadataField, PackageMetadata, SourceFile

try:
    import tomllib
except ImportError:  # Python 3.10: pyproject.toml metadata is not read
    tomllib = None  # type: ignore[assignment]

EMAIL_KEYS = {
    "name": "name",
    "version": "version",
    "summary": "summary",
    "description": "description",
    "home-page": "home_page",
    "author": "author",
    "author-email": "author_email",
    "maintainer": "maintainer",
    "maintainer-email": "maintainer_email",
    "license": "license",
    "license-expression": "license",
    "keywords": "keywords",
    "classifier": "classifiers",
    "requires-dist": "requires",
}
CFG_KEYS = {
    "metadata": {
        "name": "name",
        "version": "version",
        "author": "author",
        "author_email": "author_email",
        "summary": "summary",
        "description": "summary",
        "long_description": "description",
        "url": "home_page",
        "home_page": "home_page",
        "license": "license",
        "keywords": "keywords",
        "classifiers": "classifiers",
        "maintainer": "maintainer",
        "maintainer_email": "maintainer_email",
    },
    "options": {"install_requires": "requires", "setup_requires": "setup_requires"},
}
_MULTI = frozenset({"classifiers", "requires"})
_SECTION = re.compile(r"^\[\s*([^\]]+?)\s*\]\s*(?:[#;].*)?$")
_KEY = re.compile(r"^([A-Za-z0-9_.\-\"']+)\s*[=:]")
_HEADER = re.compile(r"^([^\s:]+):")
_Spans = dict[tuple[str, str], list[int]]


def collect_metadata(files: Iterable[SourceFile]) -> PackageMetadata:
    """Gather metadata declarations; outer and shallower files come first."""
    candidates = [(role, f) for f in files if (role := metadata_role(f.path))]
    candidates.sort(key=lambda item: _depth_key(item[1].path))
    fields: list[MetadataField] = []
    for role, source in candidates:
        try:
            fields.extend(_READERS[role](source.path, source.text))
        except (RecursionError, MemoryError, ValueError):
            continue  # hostile or broken declarations yield no metadata, never a crash
    return PackageMetadata(tuple(fields))


def metadata_role(path: str) -> str | None:
    """Which reader applies to a member path, or None."""
    parts = path.rsplit("!", 1)[-1].split("/")
    name = parts[-1]
    if name == "PKG-INFO" or (
        name == "METADATA" and len(parts) > 1 and parts[-2].endswith(".dist-info")
    ):
        return "email"
    if name in ("setup.py", "setup.cfg", "pyproject.toml") and len(parts) <= 2:
        return name
    return None


def _depth_key(path: str) -> tuple[int, int, str]:
    return path.count("!"), path.rsplit("!", 1)[-1].count("/"), path


def email_fields(path: str, text: str) -> tuple[MetadataField, ...]:
    """Fields of a PKG-INFO / METADATA file (RFC 822 headers, description in the body)."""
    message = HeaderParser().parsestr(text)
    spans = _header_spans(text)
    cursor: dict[str, int] = {}
    grouped: dict[str, list[tuple[str, int | None, int | None]]] = {}
    for header, value in message.items():
        lower = header.lower()
        key = EMAIL_KEYS.get(lower)
        found = [s for s in spans if s[0] == lower]
        index = cursor.get(lower, 0)
        cursor[lower] = index + 1
        start, end = (found[index][1], found[index][2]) if index < len(found) else (None, None)
        if key is not None:
            grouped.setdefault(key, []).append((_unfold(str(value), key), start, end))
    fields = []
    for key, values in grouped.items():
        if key in _MULTI:
            joined = "\n".join(v for v, _, _ in values)
            fields.append(MetadataField(key, joined, path, values[0][1], values[-1][2]))
        else:
            fields.extend(MetadataField(key, v, path, s, e) for v, s, e in values)
    body = message.get_payload()
    if "description" not in grouped and isinstance(body, str) and body.strip():
        first = (spans[-1][2] if spans else 0) + 2 + (len(body) - len(body.lstrip("\n")))
        last = text.rstrip().count("\n") + 1
        fields.append(MetadataField("description", body.strip("\n"), path, first, last))
    return tuple(fields)


def _unfold(value: str, key: str) -> str:
    if key == "description":
        return re.sub(r"\n {7,8}\|?", "\n", value)
    return " ".join(value.split()) if key != "requires" else value.strip()


def _header_spans(text: str) -> list[tuple[str, int, int]]:
    spans: list[tuple[str, int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            break
        if line[0] in " \t" and spans:
            spans[-1] = (spans[-1][0], spans[-1][1], number)
            continue
        match = _HEADER.match(line)
        if match is None:
            break
        spans.append((match.group(1).lower(), number, number))
    return spans


def ini_spans(text: str) -> _Spans:
    """(section, key) -> [first line, last line] for INI and simple TOML files."""
    spans: _Spans = {}
    section = ""
    current: tuple[str, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _SECTION.match(line)
        if header:
            section, current = header.group(1).strip(), None
            continue
        key = _KEY.match(line)
        if key:
            current = (section, key.group(1).strip("\"'").lower().replace("-", "_"))
            spans.setdefault(current, [number, number])
        elif current is not None and line.strip() and not line.lstrip().startswith(("#", ";")):
            spans[current][1] = number
    return spans


def setup_cfg_fields(path: str, text: str) -> tuple[MetadataField, ...]:
    """Fields of setup.cfg ``[metadata]`` and ``[options]`` (read raw, never interpolated)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return ()
    spans = ini_spans(text)
    fields = []
    for section, keys in CFG_KEYS.items():
        if not parser.has_section(section):
            continue
        for option, value in parser.items(section, raw=True):
            option = option.replace("-", "_")
            if option in keys:
                start, end = spans.get((section, option), (None, None))
                fields.append(MetadataField(keys[option], value.strip(), path, start, end))
    return tuple(fields)


def pyproject_fields(path: str, text: str) -> tuple[MetadataField, ...]:
    """Fields of pyproject.toml ``[project]``."""
    if tomllib is None:
        return ()
    try:
        project = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError:
        return ()
    if not isinstance(project, dict):
        return ()
    spans = ini_spans(text)
    values: list[tuple[str, str, str]] = []  # (key, value, toml key whose lines apply)
    for toml_key, key in (("name", "name"), ("version", "version"), ("description", "summary")):
        if isinstance(project.get(toml_key), str):
            values.append((key, project[toml_key], toml_key))
    license_ = project.get("license")
    if isinstance(license_, dict):
        license_ = license_.get("text") or license_.get("file")
    if isinstance(license_, str):
        values.append(("license", license_, "license"))
    for toml_key, key in (
        ("keywords", "keywords"),
        ("classifiers", "classifiers"),
        ("dependencies", "requires"),
    ):
        items = project.get(toml_key)
        if isinstance(items, list):
            values.append((key, "\n".join(str(i) for i in items), toml_key))
    for toml_key, prefix in (("authors", "author"), ("maintainers", "maintainer")):
        people = [p for p in project.get(toml_key) or () if isinstance(p, dict)]
        names = ", ".join(str(p["name"]) for p in people if p.get("name"))
        emails = ", ".join(str(p["email"]) for p in people if p.get("email"))
        values.extend(
            (k, v, toml_key) for k, v in ((prefix, names), (f"{prefix}_email", emails)) if v
        )
    fields = [
        MetadataField(key, value, path, *spans.get(("project", span_key), (None, None)))
        for key, value, span_key in values
    ]
    urls = project.get("urls")
    if isinstance(urls, dict):
        for name, url in urls.items():
            if name.lower().replace("-", "").replace("_", "") in ("homepage", "home"):
                span_key = name.lower().replace("-", "_")
                start, end = spans.get(("project.urls", span_key), (None, None))
                fields.append(MetadataField("home_page", str(url), path, start, end))
    return tuple(fields)


_READERS = {
    "email": email_fields,
    "setup.cfg": setup_cfg_fields,
    "pyproject.toml": pyproject_fields,
    "setup.py": setup_py_fields,
}
