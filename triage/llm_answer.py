"""The model's answer: its JSON schema, and tolerant parsing into frozen records. Pure.

LLM output is untrusted text, validated here at the boundary with pydantic. Parsing is
tolerant of what providers without a JSON mode do (code fences, prose around the object,
a single ID instead of a list, confidence as a percentage) and strict about the rest: an
answer that is not one JSON object with a ``findings`` list is unusable, never "benign".
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_TEXT = 600
"""Longest justification or reason kept from an answer (characters)."""

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["findings", "benign_hints", "summary"],
    "properties": {
        "findings": {
            "type": "array",
            "description": "Every malicious statement, one entry per (statements, indicator).",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["statement_ids", "quote", "indicator", "justification",
                             "confidence"],
                "properties": {
                    "statement_ids": {"type": "array", "items": {"type": "string"},
                                      "description": "Full statement IDs <file>:<line>:<n>."},
                    "quote": {"type": "string",
                              "description": "The malicious code, copied verbatim."},
                    "indicator": {"type": "string", "description": "A taxonomy indicator ID."},
                    "justification": {"type": "string",
                                      "description": "One or two sentences: what it does."},
                    "confidence": {"type": "number", "description": "0 to 1."},
                },
            },
        },
        "benign_hints": {
            "type": "array",
            "description": "Static hints that are false positives, with the reason.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["statement_id", "indicator", "reason"],
                "properties": {
                    "statement_id": {"type": "string"},
                    "indicator": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
        },
        "summary": {"type": "string", "description": "One sentence about this code."},
    },
}
"""JSON schema of an answer (OpenAI strict structured-output compatible)."""


ID_PATTERN = "^([A-Za-z0-9_./#-]{1,120}:)?[0-9]{1,6}:[0-9]{1,3}$"
"""Shape of a statement ID when the caller cannot list the IDs themselves."""


def grammar_schema(indicators: Sequence[str], statement_ids: Sequence[str] = (),
                   max_findings: int = 8) -> dict[str, Any]:
    """The answer schema, tightened for grammar-constrained decoding (llama.cpp).

    Small models left free fill ``statement_ids`` with indicator names, copy the schema's
    descriptions as values and list the taxonomy until the token limit. Here a statement ID
    must be one of ``statement_ids`` (the statements the prompt shows; any ID-shaped string
    when empty), indicators come from the taxonomy, and lists and texts are bounded, so every
    answer ends and parses. llama.cpp takes it as
    ``response_format={"type": "json_object", "schema": ...}``; verification still checks
    every citation.
    """
    schema = copy.deepcopy(ANSWER_SCHEMA)
    props = schema["properties"]
    findings = props["findings"]
    findings["maxItems"] = max_findings
    item = findings["items"]["properties"]
    ids: dict[str, Any] = ({"type": "string", "enum": list(dict.fromkeys(statement_ids))}
                           if statement_ids else {"type": "string", "pattern": ID_PATTERN})
    item["statement_ids"].update(minItems=1, maxItems=4, items=ids)
    item["indicator"] = {"type": "string", "enum": sorted(indicators)}
    item["quote"].update(minLength=2, maxLength=300)
    item["justification"]["maxLength"] = 300
    hints = props["benign_hints"]
    hints["maxItems"] = 4
    hints["items"]["properties"]["statement_id"] = dict(ids)
    hints["items"]["properties"]["indicator"] = {"type": "string", "enum": sorted(indicators)}
    hints["items"]["properties"]["reason"]["maxLength"] = 200
    props["summary"]["maxLength"] = 200
    return schema


class AnswerError(ValueError):
    """The answer is not usable (not JSON, wrong shape, or a refusal)."""

    def __init__(self, message: str, refusal: bool = False) -> None:
        super().__init__(message)
        self.refusal = refusal


@dataclass(frozen=True)
class Citation:
    """One malicious-statement claim of the model, not yet verified."""

    statement_ids: tuple[str, ...]
    quote: str
    indicator: str
    justification: str
    confidence: float


@dataclass(frozen=True)
class BenignHint:
    """The model's claim that a static hint is a false positive."""

    statement_id: str
    indicator: str
    reason: str


@dataclass(frozen=True)
class Answer:
    """A parsed answer."""

    citations: tuple[Citation, ...]
    benign_hints: tuple[BenignHint, ...] = ()
    summary: str = ""


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class _CitationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    statement_ids: list[str] = Field(default_factory=list)
    quote: str = ""
    indicator: str = ""
    justification: str = ""
    confidence: float = 0.5

    @field_validator("statement_ids", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        if isinstance(v, list):
            return [str(x) for x in v if isinstance(x, (str, int))]
        return v

    @field_validator("quote", "indicator", "justification", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return "" if v is None else str(v) if isinstance(v, (int, float)) else v

    @field_validator("confidence", mode="before")
    @classmethod
    def _conf(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().rstrip("%")
            try:
                v = float(v)
            except ValueError:
                return 0.5
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = float(v) / 100.0 if 1.0 < v <= 100.0 else float(v)
            return min(max(v, 0.0), 1.0)
        return 0.5


class _HintIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    statement_id: str = ""
    indicator: str = ""
    reason: str = ""


class _AnswerIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    findings: list[_CitationIn]
    benign_hints: list[_HintIn] = Field(default_factory=list)
    summary: str = ""


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?```", re.S)
_REFUSAL = re.compile(
    r"(?i)\b(I(?:'m| am) (?:sorry|unable|not able)|I can(?:'|no)t (?:help|assist|comply|"
    r"analy[sz]e|do that|provide)|I cannot (?:help|assist|comply|analy[sz]e|provide)|"
    r"I won't|I will not|against (?:my|our) (?:policy|policies|guidelines))"
)


def _first_object(text: str) -> str | None:
    """The first balanced ``{...}`` in ``text`` (string-aware), or None."""
    start = text.find("{")
    while start != -1:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[start : i + 1]
        start = text.find("{", start + 1)
    return None


def _load(text: str) -> Any:
    stripped = text.strip()
    candidates = [stripped]
    candidates += [m.group(1) for m in _FENCE.finditer(stripped)]
    obj = _first_object(stripped)
    if obj is not None:
        candidates.append(obj)
    error = "no JSON object in the answer"
    for cand in candidates:
        try:
            data = json.loads(cand)
        except json.JSONDecodeError as exc:
            error = f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            continue
        if isinstance(data, dict):
            return data
        error = f"the answer is JSON but not an object ({type(data).__name__})"
    raise AnswerError(error)


def looks_like_refusal(text: str) -> bool:
    """True when a non-JSON answer reads like a refusal."""
    return "{" not in text and bool(_REFUSAL.search(text[:2000]))


def parse_answer(text: str) -> Answer:
    """Parse a model's answer text.

    Raises:
        AnswerError: not one JSON object with a ``findings`` list (``refusal`` set when the
            text reads like a refusal).
    """
    if not text.strip():
        raise AnswerError("empty answer")
    if looks_like_refusal(text):
        raise AnswerError(f"the model refused: {_clip(text)[:200]}", refusal=True)
    data = _load(text)
    if "findings" not in data:
        for alias in ("citations", "malicious_statements", "results"):
            if isinstance(data.get(alias), list):
                data["findings"] = data[alias]
                break
    try:
        parsed = _AnswerIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AnswerError(f"answer does not match the schema: {where}: {first['msg']}") from exc
    return Answer(
        citations=tuple(
            Citation(statement_ids=tuple(s.strip() for s in c.statement_ids if s.strip()),
                     quote=c.quote, indicator=c.indicator.strip(),
                     justification=_clip(c.justification), confidence=round(c.confidence, 2))
            for c in parsed.findings
        ),
        benign_hints=tuple(BenignHint(h.statement_id.strip(), h.indicator.strip(),
                                      _clip(h.reason)) for h in parsed.benign_hints),
        summary=_clip(parsed.summary),
    )


def answer_to_json(answer: Answer) -> str:
    """An answer as compact JSON in the schema's shape (for the review prompt)."""
    return json.dumps({
        "findings": [{"statement_ids": list(c.statement_ids), "quote": c.quote,
                      "indicator": c.indicator, "justification": c.justification,
                      "confidence": c.confidence} for c in answer.citations],
        "benign_hints": [{"statement_id": h.statement_id, "indicator": h.indicator,
                          "reason": h.reason} for h in answer.benign_hints],
        "summary": answer.summary,
    }, ensure_ascii=False)
