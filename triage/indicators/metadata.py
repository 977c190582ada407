"""Detectors of the metadata family: who published the package (author, email, reputation).

Name, dependency, description and version detectors live in ``metadata_content.py``.
All of them signal setup() keyword lines only; see ``metadata_common.py`` for the limit.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from triage.indicators import metadata_content
from triage.indicators.base import Detector, PackageContext, detector
from triage.indicators.metadata_common import (
    SetupField,
    behaviour,
    emit,
    keyword_value,
    setup_fields,
)
from triage.indicators.metadata_names import kb_path
from triage.indicators.metadata_text import (
    PLACEHOLDER_NAMES,
    emails,
    is_random,
    mail_problem,
    randomness,
)
from triage.model import Signal

NOTORIOUS_FILE = "notorious-authors.yaml"


def _local(address: str) -> str:
    return address.rpartition("@")[0].split("+")[0]


def _bonus(pkg: PackageContext) -> float:
    """Extra confidence when the package's code also misbehaves."""
    return 0.15 if behaviour(pkg)[0] >= 0.6 else 0.0


@detector("metadata_author_email", "metadata_author_email_suspicious")
def author_email(pkg: PackageContext) -> Iterator[Signal]:
    """Disposable or anonymous mail domains, random local parts, placeholder addresses."""
    for sf in setup_fields(pkg, "author_email", "maintainer_email"):
        for address in emails(sf.field.value)[:3]:
            problem = mail_problem(address)
            if problem is None:
                continue
            why, base = problem
            yield from emit("metadata_author_email_suspicious", sf,
                            f"{sf.keyword} {address} {why}", base + _bonus(pkg),
                            "metadata_author_email")
            break


def _names(value: str) -> list[str]:
    return [t for t in re.split(r"[\s,;<>()\[\]'\"]+", value) if t]


@detector("metadata_author_info", "metadata_author_info_suspicious")
def author_info(pkg: PackageContext) -> Iterator[Signal]:
    """Random-string or placeholder author names, fake identities, odd author values."""
    mails = {sf.field.file: sf for sf in setup_fields(pkg, "author_email")}
    for sf in setup_fields(pkg, "author", "maintainer"):
        value = sf.field.value.strip()
        tokens = _names(value)
        score = max((randomness(t) for t in tokens), default=0.0)
        mail_sf = mails.get(sf.field.file) if sf.field.key == "author" else None
        addresses = emails(mail_sf.field.value) if mail_sf else []
        local = _local(addresses[0]) if addresses else ""
        mail_score = randomness(local) if local else 0.0
        unrelated = bool(local) and value.lower().replace(" ", "") not in local.lower() \
            and local.lower() not in value.lower()
        fake = is_random(value.replace(" ", "")) or any(is_random(t) for t in tokens) or (
            unrelated and score >= 0.3 and mail_score >= 0.3)
        if fake:
            why = f"{sf.keyword} {value!r} looks like a random string"
            if mail_score >= 0.3 and local:
                why += f", like the email's local part {local!r}"
            conf = 0.55 + _bonus(pkg)
            yield from emit("metadata_author_info_suspicious", sf, why, conf,
                            "metadata_author_info")
            if mail_sf is not None and unrelated:  # the address belongs to the fake identity
                yield from emit("metadata_author_info_suspicious", mail_sf, why,
                                conf if mail_score >= 0.3 else conf - 0.1, "metadata_author_info")
        elif isinstance(keyword_value(sf), (ast.List, ast.Tuple)):
            yield from emit("metadata_author_info_suspicious", sf,
                            f"{sf.keyword} is given as a list instead of a name", 0.3,
                            "metadata_author_info")
        elif value.lower() in PLACEHOLDER_NAMES:
            yield from emit("metadata_author_info_suspicious", sf,
                            f"{sf.keyword} is the placeholder {value!r}",
                            0.25 + _bonus(pkg) / 2, "metadata_author_info")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str
    kind: str
    reports: list[str]


class _NotoriousFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entries: list[_Entry]


@functools.lru_cache(maxsize=1)
def notorious() -> dict[tuple[str, str], str]:
    """(kind, lower-case identity) -> first cited report, from kb/notorious-authors.yaml.

    A missing or invalid file yields no entries (the indicator is then left to the LLM).
    """
    try:
        raw = yaml.safe_load((kb_path() / NOTORIOUS_FILE).read_text(encoding="utf-8"))
        data = _NotoriousFile.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError):
        return {}
    return {(e.kind, e.identity.strip().lower()): " ".join(e.reports[0].split())
            for e in data.entries if e.reports and e.kind in ("author", "email")}


@detector("metadata_notorious", "metadata_author_reputation_notorious")
def notorious_author(pkg: PackageContext) -> Iterator[Signal]:
    """Authors and emails publicly reported as behind malicious uploads."""
    known = notorious()
    if not known:
        return
    fields: list[tuple[SetupField, str, str]] = []
    for sf in setup_fields(pkg, "author", "maintainer"):
        fields.append((sf, "author", sf.field.value.strip().lower()))
    for sf in setup_fields(pkg, "author_email", "maintainer_email"):
        fields += [(sf, "email", a.lower()) for a in emails(sf.field.value)]
    for sf, kind, ident in fields:
        report = known.get((kind, ident))
        if report:
            yield from emit("metadata_author_reputation_notorious", sf,
                            f"{sf.keyword} {ident!r} was publicly reported as the publisher of "
                            f"malicious packages ({report[:160]})", 0.8,
                            "metadata_notorious")


#: Per-file detectors of this family.
DETECTORS: tuple[Detector, ...] = ()
#: Package-level detectors of this family.
PACKAGE_DETECTORS: tuple[Detector, ...] = (
    author_email, author_info, notorious_author,
    *metadata_content.PACKAGE_DETECTORS,
)
