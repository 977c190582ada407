"""Metadata detectors about what the package says it is: name, dependencies, description,
version. Signals go on setup() keyword lines (see ``metadata_common.py``).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator

from triage.indicators.base import Detector, PackageContext, detector
from triage.indicators.hosts import SUSPICIOUS, describe, find_endpoints
from triage.indicators.metadata_common import (
    behaviour,
    code_statements,
    emit,
    setup_fields,
)
from triage.indicators.metadata_names import combosquat_target, normalise, typosquat_target
from triage.indicators.metadata_text import gibberish_ratio
from triage.model import Phase, Signal

#: Build helpers that legitimately appear in setup_requires.
BUILD_TOOLS = frozenset({
    "setuptools", "wheel", "setuptools-scm", "cython", "cffi", "numpy", "pybind11", "pbr",
    "pytest-runner", "setuptools-rust", "cmake", "ninja", "scikit-build", "versioneer",
    "babel", "pkgconfig", "packaging", "incremental", "hatchling", "flit-core", "pip",
    "setuptools-git", "setuptools-git-versioning", "vcversioner", "nose", "pytest", "six",
    "d2to1", "sphinx", "milksnake", "cppy", "pythran", "meson", "extension-helpers",
    "setuptools-golang", "maturin", "build", "twine", "mypy", "numpy-financial", "torch",
})
#: Small packages droppers pull in at install time to decrypt or fetch their payload.
DROPPER_HELPERS = frozenset({"fernet", "cryptography", "pycryptodome", "pycryptodomex",
                             "requests", "pyarmor", "discord-webhook", "browser-cookie3"})
#: Libraries of an info-stealer kit, by role; several roles together are a stealer's shape.
STEALER_KIT: dict[str, frozenset[str]] = {
    "webhook": frozenset({"discord", "discord-py", "dhooks", "discord-webhook", "discordwebhook",
                          "pydiscord", "python-telegram-bot", "telebot", "pytelegrambotapi"}),
    "secrets": frozenset({"pycryptodome", "pycryptodomex", "browser-cookie3", "pywin32",
                          "pypiwin32", "win32crypt", "pyaes", "browser-history", "robloxpy"}),
    "capture": frozenset({"mss", "pillow", "pyautogui", "pynput", "pyscreenshot", "opencv-python",
                          "pyperclip", "sounddevice"}),
    "host": frozenset({"psutil", "gputil", "wmi", "getmac", "py-cpuinfo", "uuid"}),
}
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
MIN_CODE = 10
"""Packages with fewer statements of their own than this are 'essentially no code'."""
_PLACEHOLDER_TEXT = re.compile(
    r"(?i)^(?:add a short description here|a small example package|my first (?:python )?package"
    r"|test|testing|description|todo|none|unknown|(?:your |a |my )?(?:short |package |project )?"
    r"description(?: here)?|x+)\.?!?$")


def _bonus(pkg: PackageContext) -> float:
    return 0.15 if behaviour(pkg)[0] >= 0.6 else 0.0


def _requirement_name(spec: str) -> str:
    spec = spec.strip().strip("'\"[]() ")
    m = re.search(r"#egg=([\w.-]+)", spec)
    if m:
        return normalise(m.group(1))
    head = re.split(r"[\s<>=!~;\[@(]", spec, maxsplit=1)[0]
    return normalise(re.sub(r"[^A-Za-z0-9._-]", "", head))


def _install_imports(pkg: PackageContext, path: str) -> set[str]:
    """Top-level modules setup.py imports in code that runs at install time."""
    fc = pkg.file(path)
    out: set[str] = set()
    if fc is None:
        return out
    for st, node in fc.statements():
        if node is None or st.phase is not Phase.INSTALL:
            continue
        for sub in fc.own(st):
            if isinstance(sub, ast.Import):
                out |= {normalise(a.name.split(".")[0]) for a in sub.names}
            elif isinstance(sub, ast.ImportFrom) and sub.module:
                out.add(normalise(sub.module.split(".")[0]))
    return out


@detector("metadata_dependency", "metadata_dependency_suspicious")
def dependency(pkg: PackageContext) -> Iterator[Signal]:
    """Typosquatted, URL-pinned or install-time dropper dependencies."""
    for sf in setup_fields(pkg, "requires", "setup_requires"):
        reasons: list[tuple[str, float]] = []
        specs = [s for s in re.split(r"[\n,]", sf.field.value) if s.strip()]
        imported = _install_imports(pkg, sf.field.file or "") \
            if sf.field.key == "setup_requires" else set()
        for spec in specs[:50]:
            name = _requirement_name(spec)
            bad = [e for e in find_endpoints(spec, bare=False) if e.kinds & SUSPICIOUS]
            if bad:
                reasons.append((f"{name} is fetched from {describe(bad[0])}", 0.7))
            elif "://" in spec and not re.search(r"(?i)github\.com|gitlab\.com|pypi", spec):
                reasons.append((f"{name} is fetched from a direct URL", 0.4))
            squat = typosquat_target(name) \
                if len(name) >= 6 and name.replace("-", "_") not in _STDLIB else None
            if squat is not None and combosquat_target(name) is None:
                reasons.append((f"{name} is a near-copy of the popular {squat[0]}", 0.6))
            if sf.field.key == "setup_requires" and name not in BUILD_TOOLS and \
                    name.replace("-", "_") in {i.replace("-", "_") for i in imported}:
                base = 0.55 if name in DROPPER_HELPERS else 0.4
                reasons.append((f"setup_requires pulls in {name}, which setup.py imports in "
                                "code that runs at install time", base))
        kit = _stealer_kit([_requirement_name(spec) for spec in specs[:50]])
        if kit and sf.field.key == "requires":
            reasons.append((f"install_requires combines the libraries of an info-stealer kit "
                            f"({', '.join(kit)})", 0.4))
        if reasons:
            why, conf = max(reasons, key=lambda r: r[1])
            yield from emit("metadata_dependency_suspicious", sf, f"{why}", conf + _bonus(pkg),
                            "metadata_dependency")


def _stealer_kit(names: list[str]) -> list[str]:
    """The stealer-kit libraries among ``names`` when a webhook library comes with at least
    two other kit roles (credential decryption, screen capture, host facts); else []."""
    roles = {role: sorted(set(names) & libs) for role, libs in STEALER_KIT.items()}
    if not roles["webhook"] or sum(1 for r in ("secrets", "capture", "host") if roles[r]) < 2:
        return []
    return [n for libs in roles.values() for n in libs]


def _described(pkg: PackageContext) -> bool:
    for key in ("summary", "description"):
        for f in pkg.metadata.all(key):
            if f.value.strip() and f.value.strip().upper() not in ("UNKNOWN", "NONE"):
                return True
    return False


@detector("metadata_description", "metadata_description_anomaly", "metadata_description_none",
          "metadata_description_purpose_mismatch")
def description(pkg: PackageContext) -> Iterator[Signal]:
    """Gibberish or placeholder descriptions, missing ones, and claims the code never backs."""
    fields = setup_fields(pkg, "summary", "description")
    for sf in fields:
        text = sf.field.value.strip()
        ratio = gibberish_ratio(text)
        if ratio >= 0.5:
            yield from emit("metadata_description_anomaly", sf,
                            f"{sf.keyword} is random letters ({text[:40]!r}...)",
                            0.55 + 0.1 * ratio + _bonus(pkg), "metadata_description")
        elif _PLACEHOLDER_TEXT.match(text) and sf.field.key == "summary":
            yield from emit("metadata_description_anomaly", sf,
                            f"description is the placeholder {text!r}", 0.25,
                            "metadata_description")
    if not _described(pkg):
        anchors = fields or setup_fields(pkg, "name", "version", "author", "packages")
        if anchors:
            sf = anchors[0]
            line = sf.statement.start_line
            lines = sf.lines if fields else (line, line)
            yield from emit("metadata_description_none", sf,
                            "the package declares no description or summary", 0.15,
                            "metadata_description", lines=lines)
    claims = [sf for sf in fields if sf.field.key == "summary"] or fields
    if not claims:
        return
    claim = claims[0]
    words = re.findall(r"[A-Za-z]{2,}", claim.field.value)
    if len(words) < 3 or gibberish_ratio(claim.field.value) >= 0.5 or \
            _PLACEHOLDER_TEXT.match(claim.field.value.strip()):
        return
    size = code_statements(pkg)
    if size >= MIN_CODE:
        return
    score, evidence = behaviour(pkg)
    if score < 0.6:
        return
    yield from emit("metadata_description_purpose_mismatch", claim,
                    f"claims {claim.field.value.strip()[:60]!r} but ships {size} statements of "
                    f"its own code, while it {evidence[:80]}", 0.5 + 0.1 * (score >= 0.8),
                    "metadata_description")


@detector("metadata_name", "metadata_typosquatting", "metadata_combosquatting")
def package_name(pkg: PackageContext) -> Iterator[Signal]:
    """Names that copy a popular package with a typo or a generic affix."""
    for sf in setup_fields(pkg, "name")[:1]:
        name = sf.field.value.strip()
        if not name or "{" in name or " " in name:
            continue
        combo = combosquat_target(name)
        if combo is not None:
            core, rank, affix = combo
            conf = (0.4 if rank <= 1000 else 0.3) + _bonus(pkg)
            yield from emit("metadata_combosquatting", sf,
                            f"name {name!r} is the popular {core!r} (rank {rank}) plus "
                            f"{affix!r}", conf, "metadata_name")
            continue
        squat = typosquat_target(name)
        if squat is not None:
            target, rank, how = squat
            conf = 0.3 if how == "two characters changed" else 0.45
            conf += (0.05 if rank <= 500 else 0.0) + _bonus(pkg)
            yield from emit("metadata_typosquatting", sf,
                            f"name {name!r} imitates the popular {target!r} (rank {rank}): "
                            f"{how}", conf, "metadata_name")


_PRIVATE_HINT = re.compile(r"(?i)(internal|private|corp|-dev-|company|intranet|-sdk$|-int$)")


@detector("metadata_version", "metadata_version_suspicious")
def version(pkg: PackageContext) -> Iterator[Signal]:
    """Implausibly high versions used by dependency-confusion probes (99.x, 9999)."""
    for sf in setup_fields(pkg, "version")[:1]:
        m = re.match(r"\s*v?(\d+)", sf.field.value)
        if not m:
            continue
        major = int(m.group(1))
        if major < 99 or 1900 <= major <= 2100 or 19000101 <= major <= 21001231:
            continue
        names = setup_fields(pkg, "name")
        name = names[0].field.value if names else ""
        conf = (0.55 if major >= 999 else 0.45) + _bonus(pkg)
        conf += 0.1 if _PRIVATE_HINT.search(name) else 0.0
        yield from emit("metadata_version_suspicious", sf,
                        f"version {sf.field.value.strip()!r} is implausibly high, as used to win "
                        "dependency-confusion races", conf, "metadata_version")


PACKAGE_DETECTORS: tuple[Detector, ...] = (
    dependency, description, package_name, version,
)
