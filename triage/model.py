"""Frozen records that cross stage boundaries.

Stdlib only. Every record is immutable; sequences are tuples. "Could not" is a value
with a reason (`SkippedFile`), never a silent ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

SCHEMA_VERSION = "1.0"


class Phase(str, Enum):
    """When a statement runs if the package is installed and used."""

    INSTALL = "install"  # setup.py module level, overridden install/develop/egg_info commands
    STARTUP = "startup"  # .pth files, sitecustomize/usercustomize: every interpreter start
    IMPORT = "import"  # module top level of any other module
    CALL = "call"  # inside a function that nothing above is known to call

    @property
    def order(self) -> int:
        """Execution order: lower runs earlier."""
        return _PHASE_ORDER[self]


_PHASE_ORDER = {Phase.INSTALL: 0, Phase.STARTUP: 1, Phase.IMPORT: 2, Phase.CALL: 3}


class FileKind(str, Enum):
    """What a member of the artifact holds."""

    PYTHON = "python"  # .py source (possibly Python 2, possibly broken)
    PTH = "pth"  # site-packages .pth file: lines starting with `import` run at start-up
    TEXT = "text"  # other readable text (setup.cfg, PKG-INFO, README, scripts)
    DECODED = "decoded"  # a payload decoded statically from a literal in another file


@dataclass(frozen=True)
class SourceFile:
    """A readable text member of an artifact (or a decoded virtual file)."""

    path: str
    """Path inside the package, as in the archive (e.g. ``pkg-1.0/setup.py``)."""
    text: str
    """Decoded text (UTF-8, or latin-1 fallback); never executed."""
    kind: FileKind = FileKind.PYTHON
    """What the file holds; decides how it is indexed."""
    origin: str | None = None
    """For decoded virtual files: the statement ID whose literal held this payload."""
    origin_phase: Phase | None = None
    """For decoded virtual files: the phase of the origin statement (the payload runs there)."""


@dataclass(frozen=True)
class SkippedFile:
    """A member that was not analysed as source, and why."""

    path: str
    """Path inside the package (``outer.tar.gz!inner/file`` for nested archives)."""
    reason: str
    """Human-readable reason, e.g. ``binary file (ELF executable)``."""
    evidence: bool = False
    """True when the skipped member is itself suspicious (embedded executable, .so, .dll)."""


@dataclass(frozen=True)
class MetadataField:
    """One package metadata value with where it was declared."""

    key: str
    """Normalised key: name, version, author, author_email, summary, description, home_page,
    license, requires, keywords, classifiers, maintainer, maintainer_email."""
    value: str
    """The value as text (lists are joined with newlines)."""
    file: str | None = None
    """Where it was declared (setup.py, setup.cfg, PKG-INFO, METADATA, pyproject.toml)."""
    line: int | None = None
    """1-based line of the declaration, when known (setup() keyword lines)."""
    end_line: int | None = None
    """Last line of the declaration, when known."""


@dataclass(frozen=True)
class PackageMetadata:
    """Package metadata gathered from every declaration found (never by running setup.py)."""

    fields: tuple[MetadataField, ...] = ()
    """All declarations found; the same key may appear in several files."""

    def get(self, key: str) -> str | None:
        """First declared value for ``key``, or None when nothing declared it."""
        for f in self.fields:
            if f.key == key and f.value:
                return f.value
        return None

    def all(self, key: str) -> tuple[MetadataField, ...]:
        """Every declaration of ``key``."""
        return tuple(f for f in self.fields if f.key == key)


@dataclass(frozen=True)
class Artifact:
    """A package opened safely, in memory. Nothing in it has been executed."""

    name: str
    """Distribution name (from metadata, else the file name)."""
    version: str
    """Version (from metadata, else the file name), or ``""``."""
    sha256: str
    """sha256 of the artifact file (of a canonical listing for directories)."""
    kind: str
    """wheel, sdist, zip, egg, directory, file."""
    source: str
    """What the user asked for (path or ``name==version``)."""
    files: tuple[SourceFile, ...]
    """Readable text members."""
    skipped: tuple[SkippedFile, ...] = ()
    """Members not analysed, with reasons."""
    metadata: PackageMetadata = field(default_factory=PackageMetadata)
    """Metadata from PKG-INFO/METADATA/setup.cfg/pyproject/setup() keywords."""


@dataclass(frozen=True)
class Statement:
    """One statement of one file, with its location fixed once, here.

    For compound statements (if/for/while/try/with/def/class/except) the span is the
    header only (through the line before the body), so a finding never covers a whole
    block; simple statements span all their lines.
    """

    id: str
    """Stable ID: ``<file>:<start_line>:<ordinal>`` where ordinal counts statements starting
    on that line (``setup.py:12:0``)."""
    file: str
    """Path inside the package."""
    start_line: int
    """1-based first line."""
    end_line: int
    """1-based last line (inclusive)."""
    text: str
    """Source text of the span."""
    kind: str
    """AST node class name (``Expr``, ``If``, ``ExceptHandler``...) or ``Line`` in fallback mode."""
    phase: Phase
    """When it runs."""
    depth: int = 0
    """Nesting depth of compound statements around it."""
    parent: str | None = None
    """ID of the enclosing compound statement, if any."""
    scope: str = "<module>"
    """Qualified name of the enclosing function/class (``Cls.run``) or ``<module>``."""


@dataclass(frozen=True)
class Signal:
    """A static detector's claim that a statement shows an indicator."""

    indicator: str
    """Taxonomy ID."""
    statement_id: str
    """Statement that shows it."""
    evidence: str
    """One-sentence justification with the concrete fact (e.g. resolved call name)."""
    confidence: float = 0.8
    """0..1, how sure the detector is."""
    detector: str = ""
    """Detector module that raised it."""
    start_line: int | None = None
    """Narrower span inside the statement (e.g. one ``setup()`` keyword), if any."""
    end_line: int | None = None
    """End of the narrower span."""


class Source(str, Enum):
    """Which engine produced a finding."""

    STATIC = "static"
    LLM = "llm"
    BOTH = "both"


@dataclass(frozen=True)
class Finding:
    """A malicious statement with its indicator and justification, ready for reports."""

    file: str
    """Path inside the package (for decoded payloads, ``file#decoded-N``)."""
    start_line: int
    """1-based first line."""
    end_line: int
    """1-based last line."""
    code: str
    """Quoted source of the span."""
    indicator: str
    """Taxonomy ID."""
    type: str
    """Taxonomy type name."""
    phase: Phase
    """When it runs."""
    severity: str
    """low, medium, high, critical."""
    confidence: float
    """0..1."""
    source: Source
    """static, llm or both."""
    justification: str
    """One or two sentences."""
    statement_id: str
    """Statement in the index."""
    origin: str | None = None
    """For findings in decoded payloads: the statement ID that held the payload."""


@dataclass(frozen=True)
class Verdict:
    """Package-level judgement."""

    label: str
    """malicious, suspicious, benign, or needs-review."""
    score: float
    """0..100."""
    reasons: tuple[str, ...] = ()
    """Why, most important first."""


@dataclass(frozen=True)
class ChainStep:
    """One step of the attack chain, in execution order."""

    phase: Phase
    """When the step runs."""
    indicator: str
    """Taxonomy ID."""
    finding_index: int
    """Index into ``Report.findings``."""


@dataclass(frozen=True)
class RejectedCitation:
    """An LLM citation that failed verification against the source, with the reason."""

    statement_id: str
    """The statement ID the model cited (may not exist)."""
    indicator: str
    """The indicator the model claimed (may not be in the taxonomy)."""
    quote: str
    """The code the model quoted."""
    reason: str
    """Why it was rejected (unknown statement, quote mismatch, unknown indicator...)."""
    model: str = ""
    """Model that produced it."""


@dataclass(frozen=True)
class WorkflowMatch:
    """A known attack workflow (mined indicator sequence) that the chain contains in order."""

    name: str
    """Workflow ID from kb/chains.yaml."""
    pattern: tuple[str, ...]
    """Indicator sequence of the workflow."""
    support: float
    """Share of labelled packages that show it (0..1)."""


@dataclass(frozen=True)
class LlmUsage:
    """What the LLM pass cost."""

    model: str
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0


@dataclass(frozen=True)
class IndicatorInfo:
    """Taxonomy facts about one indicator used in a report (so renderers need no taxonomy)."""

    id: str
    name: str
    type: str
    severity: str
    cwe: str
    attack: tuple[str, ...]
    definition: str


@dataclass(frozen=True)
class ArtifactInfo:
    """Identity of the analysed artifact."""

    name: str
    version: str
    sha256: str
    kind: str
    source: str


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs; renderers are pure functions of this."""

    artifact: ArtifactInfo
    verdict: Verdict
    findings: tuple[Finding, ...]
    skipped: tuple[SkippedFile, ...]
    chain: tuple[ChainStep, ...] = ()
    indicators: tuple[IndicatorInfo, ...] = ()
    """Taxonomy entries for every indicator cited in ``findings``."""
    files_analysed: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    schema_version: str = SCHEMA_VERSION
    engine: str = "static"
    """static, or the LLM model string when one was used."""
    notes: tuple[str, ...] = ()
    """Run notes an analyst should see (e.g. files not reviewed by the LLM)."""
    rejected: tuple[RejectedCitation, ...] = ()
    """LLM citations that failed verification (never findings)."""
    not_reviewed: tuple[SkippedFile, ...] = ()
    """Files the LLM did not read (over budget, vendored, binary), with reasons."""
    workflows: tuple[WorkflowMatch, ...] = ()
    """Known attack workflows the chain matches, strongest first."""
    llm: LlmUsage | None = None
    """Usage of the LLM pass, when one ran."""
