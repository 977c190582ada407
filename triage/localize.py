"""LLM localization pass: choose what to show, build prompts, call, verify, merge, decide.

Fail closed: a part whose answer is a refusal, a timeout or unusable after retries makes the
verdict ``needs-review`` (unless it is already ``malicious``) with the reason, and the part is
listed as not reviewed. The pass adds evidence; it never lowers the static verdict, and it
never removes high-severity static findings.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from triage.budget import counter
from triage.llm import ChatModel, ClientSettings, LlmError, Reply
from triage.llm_answer import Answer, AnswerError, BenignHint, parse_answer
from triage.localize_plan import Part, PlanSettings, Retriever, build_plan
from triage.model import (
    Artifact,
    Finding,
    LlmUsage,
    RejectedCitation,
    SkippedFile,
    Verdict,
)
from triage.prompting import repair_prompt, review_prompt
from triage.statements import FileIndex
from triage.taxonomy import Taxonomy, load_taxonomy
from triage.verify import VerifiedCitation, merge, resolve_id, verify

HOSTED_TIMEOUT_S = 120.0
LOCAL_TIMEOUT_S = 900.0
"""Default seconds per call (``--llm-timeout`` overrides): a 1.5B model on two CPU cores
reads a 7,000-token prompt in several minutes."""
_RANK = {"benign": 0, "suspicious": 1, "needs-review": 1, "malicious": 2}


@dataclass(frozen=True)
class LlmSettings:
    """Everything the LLM pass needs to know (built from pipeline options)."""

    model: str
    api_base: str | None = None
    plan: PlanSettings = PlanSettings()
    review: bool = True
    """Second pass: the model re-checks its own answer, with verification feedback."""
    concurrency: int = 4
    timeout_s: float = 120.0
    retries: int = 3
    backoff_s: float = 1.0
    parse_retries: int = 1
    """Follow-ups asking for valid JSON after an unusable answer."""
    use_cache: bool = True
    db_path: Path | None = None
    """Cache + transcript database (default ``$TRIAGE_HOME/llm.sqlite3``)."""
    stream: bool = False
    json_mode: str = "auto"
    indicators: tuple[str, ...] = ()
    """Indicator IDs a grammar-constrained answer may use (grammar mode)."""
    local: str = ""
    """The ``--model`` text when it named a local model (``local`` / ``local:<name>``)."""

    def client_settings(self) -> ClientSettings:
        """Settings of the litellm client."""
        return ClientSettings(model=self.model, api_base=self.api_base, timeout_s=self.timeout_s,
                              retries=self.retries, backoff_s=self.backoff_s, stream=self.stream,
                              json_mode=self.json_mode, indicators=self.indicators,
                              max_output_tokens=self.plan.max_output_tokens)


@dataclass(frozen=True)
class LlmOutcome:
    """What the LLM pass adds to a report."""

    findings: tuple[Finding, ...]
    verdict: Verdict
    notes: tuple[str, ...]
    rejected: tuple[RejectedCitation, ...]
    not_reviewed: tuple[SkippedFile, ...]
    usage: LlmUsage


@dataclass(frozen=True)
class _PartResult:
    part: Part
    answer: Answer | None
    failure: str | None
    replies: tuple[Reply, ...]
    notes: tuple[str, ...] = ()


_CLIENTS: dict[LlmSettings, ChatModel] = {}


def make_client(settings: LlmSettings) -> ChatModel:
    """The litellm client with its cache/transcript database (one per settings, reused
    across the packages of a batch)."""
    if settings not in _CLIENTS:
        from triage.llm import LiteLlmChat, check_credentials, model_limits
        from triage.llm_cache import DB_NAME, LlmStore
        from triage.retrieval_store import triage_home

        check_credentials(settings.model, settings.api_base)
        if settings.local and settings.api_base:
            _check_local_server(settings.local, settings.api_base)
        store = LlmStore(settings.db_path or triage_home() / DB_NAME)
        limits = model_limits(settings.model, settings.plan.context_tokens)
        _CLIENTS[settings] = LiteLlmChat(settings.client_settings(), store=store,
                                         use_cache=settings.use_cache, limits=limits)
    return _CLIENTS[settings]


def _check_local_server(model: str, api_base: str) -> None:
    """A local model with no server is a setup error, said once, not a retried failure per
    part of every package."""
    from triage.llm import LlmConfigError
    from triage.local_server import unreachable

    why = unreachable(api_base)
    if why:
        name = model.partition(":")[2] or "NAME"
        raise LlmConfigError(f"model {model}: no server answers at {api_base} ({why}); start "
                             f"one with `triage model serve {name}` or pass --api-base URL")


def _parses(text: str) -> bool:
    try:
        parse_answer(text)
    except AnswerError:
        return False
    return True


class _Asker:
    """Runs the calls of one part (first answer, repairs, review) and keeps the replies."""

    def __init__(self, client: ChatModel, settings: LlmSettings, label: str,
                 statement_ids: Sequence[str] = ()) -> None:
        self.client, self.settings, self.label = client, settings, label
        self.statement_ids = tuple(statement_ids)
        self.replies: list[Reply] = []

    def ask(self, msgs: tuple[dict[str, str], ...], purpose: str) -> tuple[Answer, str]:
        last: AnswerError | None = None
        for attempt in range(self.settings.parse_retries + 1):
            reply = self.client.chat(msgs, purpose=purpose if attempt == 0 else "repair",
                                     label=self.label, accept=_parses,
                                     statement_ids=self.statement_ids)
            self.replies.append(reply)
            try:
                return parse_answer(reply.content), reply.content
            except AnswerError as exc:
                last = exc
                msgs = (*msgs, {"role": "assistant", "content": reply.content},
                        {"role": "user", "content": repair_prompt(str(exc))})
        assert last is not None
        n = self.settings.parse_retries + 1
        if last.refusal:
            raise LlmError("refusal", f"{last} (after {n} attempt(s))", n)
        raise LlmError("unparseable", f"unusable answer after {n} attempt(s): {last}", n)


def _run_part(part: Part, client: ChatModel, settings: LlmSettings, taxonomy: Taxonomy,
              indices: Mapping[str, FileIndex], package: str) -> _PartResult:
    asker = _Asker(client, settings, f"{package} {part.where}", part.segment.statement_ids)
    try:
        answer, raw = asker.ask(part.messages, "localize")
    except LlmError as exc:
        return _PartResult(part, None, f"{exc.kind}: {exc}" if not str(exc).startswith(
            exc.kind) else str(exc), tuple(asker.replies))
    if not settings.review:
        return _PartResult(part, answer, None, tuple(asker.replies))
    first = verify(answer.citations, indices, taxonomy, settings.model, part.segment.file)
    problems = [f"{r.statement_id} {r.indicator}: {r.reason}" for r in first.rejected]
    history = (*part.messages, {"role": "assistant", "content": raw},
               {"role": "user", "content": review_prompt(problems)})
    try:
        reviewed, _ = asker.ask(history, "review")
    except LlmError as exc:
        return _PartResult(part, answer, None, tuple(asker.replies),
                           notes=(f"review pass failed for {part.where} ({exc}); first answer "
                                  "kept",))
    return _PartResult(part, reviewed, None, tuple(asker.replies))


def _usage(model: str, results: Sequence[_PartResult]) -> LlmUsage:
    replies = [r for res in results for r in res.replies]
    live = [r for r in replies if not r.cached]
    return LlmUsage(model=model, calls=len(replies), cached_calls=len(replies) - len(live),
                    prompt_tokens=sum(r.prompt_tokens for r in live),
                    completion_tokens=sum(r.completion_tokens for r in live),
                    cost_usd=round(sum(r.cost_usd for r in live), 6),
                    latency_s=round(sum(r.latency_s for r in live), 3))


def final_verdict(merged: Verdict, static: Verdict, failures: Sequence[str]) -> Verdict:
    """The merged verdict, never below the static one (label and score), ``needs-review`` on
    LLM failure unless it is ``malicious``."""
    label, score = merged.label, max(merged.score, static.score)
    reasons = [r.replace("found by the static engine", "found by the static engine or the "
                         "model") for r in merged.reasons]
    if _RANK[label] < _RANK[static.label]:
        label = static.label
        reasons.append(f"the LLM pass cannot lower the static verdict ({static.label})")
    if failures:
        lead = [f"LLM review incomplete: {f}" for f in failures[:3]]
        if len(failures) > 3:
            lead.append(f"LLM review incomplete: {len(failures) - 3} more part(s) failed")
        reasons = lead + reasons
        if label != "malicious":
            label = "needs-review"
    return Verdict(label=label, score=score, reasons=tuple(reasons))


def settings_from(options: Any) -> LlmSettings:
    """LLM settings from :class:`triage.pipeline.Options`."""
    from triage.llm import normalise_model

    raw = (options.model or "").strip()
    local = raw == "local" or raw.startswith("local:")
    if local:
        # a llama.cpp server started by `triage model serve` (or any OpenAI-compatible one)
        from triage.local_server import resolve_local

        model, api_base = resolve_local(raw, options.api_base)
    else:
        model = normalise_model(raw)
        api_base = options.api_base
    # llama.cpp answers one request at a time on a CPU: calls queue (concurrency 1) and take
    # minutes; its grammar keeps small models to the statements shown and the taxonomy
    json_mode = "grammar" if local and options.json_mode == "auto" else options.json_mode
    timeout = options.llm_timeout_s or (LOCAL_TIMEOUT_S if local else HOSTED_TIMEOUT_S)
    indicators = (tuple(i.id for i in load_taxonomy().indicators) if json_mode == "grammar"
                  else ())
    plan = PlanSettings(max_tokens_per_package=options.max_tokens_per_package,
                        chunk_tokens=options.chunk_tokens, context_tokens=options.context_tokens,
                        review=options.review_pass)
    return LlmSettings(model=model, api_base=api_base, plan=plan, review=options.review_pass,
                       concurrency=1 if local else options.concurrency, timeout_s=timeout,
                       retries=options.llm_retries, backoff_s=options.llm_backoff_s,
                       use_cache=options.llm_cache,
                       db_path=Path(options.llm_db) if options.llm_db else None,
                       stream=options.stream, json_mode=json_mode, indicators=indicators,
                       local=raw if local else "")


def localize(artifact: Artifact, result: Any, static: tuple[Finding, ...],
             settings: LlmSettings, decide_fn: Callable[[tuple[Finding, ...]], Verdict],
             client: ChatModel | None = None, retriever: Retriever | None = None,
             taxonomy: Taxonomy | None = None) -> LlmOutcome:
    """Run the LLM pass over one analysed artifact.

    Args:
        artifact: the opened artifact.
        result: the static engine's :class:`~triage.indicators.engine.EngineResult`.
        static: reported static findings.
        settings: LLM settings.
        decide_fn: verdict from findings (``triage.verdict.decide`` bound to the artifact).
        client: chat model (default: litellm with cache and transcript).
        retriever: knowledge-base retriever (default: the Chroma store, else definitions).
        taxonomy: the taxonomy (default: kb/).

    Raises:
        LlmConfigError: the model cannot be used at all (litellm missing, bad key).
    """
    tax = taxonomy or load_taxonomy()
    static_verdict = decide_fn(static)
    chat = client or make_client(settings)
    limits = getattr(chat, "limits", None)
    context = settings.plan.context_tokens or getattr(limits, "context_tokens", 0)
    plan = build_plan(artifact, result, replace(settings.plan, context_tokens=context,
                                                review=settings.review),
                      tax, counter(settings.model), retriever)
    indices = result.indices
    package = f"{artifact.name} {artifact.version}".strip()

    def run(part: Part) -> _PartResult:
        return _run_part(part, chat, settings, tax, indices, package)

    if settings.concurrency <= 1 or len(plan.parts) <= 1:
        results = [run(p) for p in plan.parts]
    else:
        with concurrent.futures.ThreadPoolExecutor(settings.concurrency) as pool:
            results = list(pool.map(run, plan.parts))
    verified: list[VerifiedCitation] = []
    rejected: list[RejectedCitation] = []
    hints: list[BenignHint] = []
    failures: list[str] = []
    not_reviewed = list(plan.not_reviewed)
    notes = list(plan.notes)
    for res in results:
        notes += res.notes
        if res.answer is None:
            failures.append(f"{res.part.where}: {res.failure}")
            not_reviewed.append(SkippedFile(res.part.segment.file,
                                            f"{res.part.lines}LLM review failed: {res.failure}"))
            continue
        ver = verify(res.answer.citations, indices, tax, settings.model, res.part.segment.file)
        verified += ver.verified
        rejected += ver.rejected
        hints += [replace(h, statement_id=resolve_id(h.statement_id, res.part.segment.file))
                  for h in res.answer.benign_hints]
    merged = merge(static, verified, indices, tax, signals=result.signals, hints=hints)
    reviewed = len(plan.parts) - len(failures)
    notes.insert(0, f"LLM {settings.model} reviewed {reviewed} of {len(plan.parts)} part(s) "
                    f"in {len({p.segment.file for p in plan.parts})} file(s); "
                    f"{len(verified)} citation(s) verified, {len(rejected)} rejected"
                    + ("; review pass on" if settings.review else ""))
    notes += merged.notes
    verdict = final_verdict(decide_fn(merged.findings), static_verdict, failures)
    return LlmOutcome(findings=merged.findings, verdict=verdict, notes=tuple(notes),
                      rejected=tuple(rejected), not_reviewed=tuple(not_reviewed),
                      usage=_usage(settings.model, results))
