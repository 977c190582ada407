"""LLM client: any litellm model string, with retries, timeouts, a response cache and a transcript.

The only module that imports litellm, and only inside functions, so ``triage --help`` and the
static path never load it. Hosted models take their keys from the environment as litellm
reads them (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``...). With ``--api-base`` (vLLM,
llama.cpp, Ollama's OpenAI endpoint...) the key is ``TRIAGE_LLM_API_KEY`` if set, so a hosted
key is never sent to a local server by accident. ``local`` is short for ``openai/local``.

Every attempt is written to the transcript; answers the caller accepts are cached, keyed on
(model, messages, parameters), so a re-run costs nothing.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from triage.errors import UsageError
from triage.llm_answer import ANSWER_SCHEMA, grammar_schema
from triage.llm_cache import CachedResponse, ExchangeLog, LlmStore, cache_key

DEFAULT_CONTEXT = 8192
"""Context assumed for a model litellm does not know (local servers), unless overridden."""
LOCAL_ALIAS = "local"
LOCAL_API_BASE = "http://127.0.0.1:8080/v1"
"""Default for ``--model local`` (llama.cpp's server); any OpenAI-compatible URL works."""
JSON_MODES = ("auto", "schema", "object", "grammar", "off")
RETRYABLE = frozenset({"timeout", "rate_limit", "server", "connection"})

Message = Mapping[str, str]


class LlmError(Exception):
    """A call that gave no usable answer (after retries, where retrying made sense)."""

    def __init__(self, kind: str, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        """timeout, rate_limit, server, connection, refusal, context, bad_request, error."""
        self.attempts = attempts


class LlmConfigError(UsageError):
    """The model cannot be used at all (litellm missing, bad key, unknown model)."""


@dataclass(frozen=True)
class ClientSettings:
    """How to call the model."""

    model: str
    api_base: str | None = None
    timeout_s: float = 120.0
    """Per call."""
    retries: int = 3
    """Retries after the first attempt, on 429, 5xx, timeouts and connection errors."""
    backoff_s: float = 1.0
    """First wait; doubles each retry (with jitter), capped by ``max_backoff_s``."""
    max_backoff_s: float = 30.0
    temperature: float = 0.0
    max_output_tokens: int = 2048
    json_mode: str = "auto"
    """auto (schema where supported, else JSON object mode), schema, object, grammar or off.

    grammar: llama.cpp's ``json_object`` + ``schema`` extension with the schema of
    :func:`triage.llm_answer.grammar_schema`, narrowed per call to the statements shown."""
    indicators: tuple[str, ...] = ()
    """Indicator IDs the grammar allows (grammar mode)."""
    stream: bool = False
    """Ask for a streamed answer (some local servers prefer it)."""


@dataclass(frozen=True)
class ModelLimits:
    """What litellm's (local) model map says about a model."""

    model: str
    context_tokens: int
    max_output_tokens: int
    input_cost_per_token: float
    output_cost_per_token: float
    known: bool
    """False when the model is not in litellm's map (limits are defaults, cost 0)."""
    supports_schema: bool = False
    supports_json_object: bool = False


@dataclass(frozen=True)
class Reply:
    """One answer from the model (or from the cache)."""

    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    cached: bool
    attempts: int


class ChatModel(Protocol):
    """What the localization pass needs from a model (tests may script it)."""

    settings: ClientSettings

    def chat(self, messages: Sequence[Message], *, purpose: str = "", label: str = "",
             accept: Callable[[str], bool] | None = None,
             statement_ids: Sequence[str] = ()) -> Reply:
        """Send messages, return the answer, or raise :class:`LlmError`.

        ``statement_ids`` are the statements the prompt shows; a client that constrains
        decoding may restrict citations to them."""
        ...


def normalise_model(model: str) -> str:
    """``local`` means ``openai/local`` (an OpenAI-compatible server)."""
    return "openai/local" if model.strip() == LOCAL_ALIAS else model.strip()


def _litellm() -> Any:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the price map
    try:
        import litellm
    except ImportError as exc:
        raise LlmConfigError("the LLM pass needs litellm: pip install 'triage[llm]'") from exc
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def model_limits(model: str, context_tokens: int = 0) -> ModelLimits:
    """Context size, output limit and prices of ``model`` from litellm's bundled map.

    Args:
        model: litellm model string.
        context_tokens: override of the context size (0: from the map, else
            :data:`DEFAULT_CONTEXT`).
    """
    litellm = _litellm()
    model = normalise_model(model)
    try:
        info: Mapping[str, Any] = litellm.get_model_info(model)
        known = True
    except Exception:  # litellm raises a bare Exception for unmapped models
        info, known = {}, False
    context = context_tokens or int(info.get("max_input_tokens") or info.get("max_tokens")
                                    or DEFAULT_CONTEXT)
    out = int(info.get("max_output_tokens") or min(4096, max(context // 4, 256)))
    try:
        schema = bool(known and litellm.supports_response_schema(model=model))
    except Exception:
        schema = False
    try:
        params = litellm.get_supported_openai_params(model=model) or []
    except Exception:
        params = []
    return ModelLimits(model=model, context_tokens=context, max_output_tokens=out,
                       input_cost_per_token=float(info.get("input_cost_per_token") or 0.0),
                       output_cost_per_token=float(info.get("output_cost_per_token") or 0.0),
                       known=known, supports_schema=schema,
                       supports_json_object="response_format" in params)


def check_credentials(model: str, api_base: str | None) -> None:
    """Fail fast when a hosted model's API key is not in the environment.

    Raises:
        LlmConfigError: litellm lists keys for the provider and none is set.
    """
    if api_base:
        return  # a custom server: its key (if any) is TRIAGE_LLM_API_KEY
    litellm = _litellm()
    try:
        missing = litellm.validate_environment(model=normalise_model(model)).get(
            "missing_keys") or []
    except Exception:  # unknown providers: let the call report what is wrong
        return
    keys = [k for k in missing if str(k).endswith("_KEY")]
    if keys and len(keys) == len(missing):
        raise LlmConfigError(f"model {model}: set {' or '.join(keys)} in the environment "
                             "(or use --api-base for an OpenAI-compatible server)")


def response_format(mode: str, limits: ModelLimits, indicators: Sequence[str] = (),
                    statement_ids: Sequence[str] = ()) -> dict[str, Any] | None:
    """The ``response_format`` parameter for a JSON mode and what the model supports
    (grammar mode: narrowed to ``indicators`` and ``statement_ids``)."""
    if mode not in JSON_MODES:
        raise UsageError(f"unknown JSON mode {mode!r}; expected one of {JSON_MODES}")
    if mode == "schema" or (mode == "auto" and limits.supports_schema):
        return {"type": "json_schema", "json_schema": {
            "name": "triage_answer", "strict": True, "schema": ANSWER_SCHEMA}}
    if mode == "grammar":
        return {"type": "json_object", "schema": grammar_schema(indicators, statement_ids)}
    if mode == "object" or (mode == "auto" and limits.supports_json_object):
        return {"type": "json_object"}
    return None


def _classify(exc: Exception, litellm: Any) -> tuple[str, str]:
    """(kind, message) of a litellm exception."""
    text = str(exc).replace("\n", " ")[:300]
    order = [("ContextWindowExceededError", "context"), ("ContentPolicyViolationError",
             "refusal"), ("Timeout", "timeout"), ("RateLimitError", "rate_limit"),
             ("AuthenticationError", "config"), ("PermissionDeniedError", "config"),
             ("NotFoundError", "config"), ("APIConnectionError", "connection"),
             ("InternalServerError", "server"), ("ServiceUnavailableError", "server"),
             ("BadGatewayError", "server"), ("BadRequestError", "bad_request")]
    for name, kind in order:
        cls = getattr(litellm, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return kind, text
    if "missing credentials" in text.lower() or "api_key client option" in text.lower():
        return "config", text
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 500:
        return "server", text
    if isinstance(status, int) and status == 429:
        return "rate_limit", text
    return "error", f"{type(exc).__name__}: {text}"


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers",
                                                            None)
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


class LiteLlmChat:
    """:class:`ChatModel` over litellm, with cache, transcript, retries and backoff."""

    def __init__(self, settings: ClientSettings, store: LlmStore | None = None,
                 use_cache: bool = True, limits: ModelLimits | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.store = store
        self.use_cache = use_cache and store is not None
        self.limits = limits or model_limits(settings.model)
        self._sleep = sleep
        fmt = (None if settings.json_mode == "grammar"
               else response_format(settings.json_mode, self.limits))
        self.params: dict[str, Any] = {"temperature": settings.temperature,
                                       "max_tokens": settings.max_output_tokens}
        if fmt is not None:
            self.params["response_format"] = fmt

    def call_params(self, statement_ids: Sequence[str] = ()) -> dict[str, Any]:
        """Parameters of one call (grammar mode adds its per-call schema)."""
        s = self.settings
        if s.json_mode != "grammar":
            return self.params
        fmt = response_format("grammar", self.limits, s.indicators, statement_ids)
        return {**self.params, "response_format": fmt}

    def _kwargs(self, messages: Sequence[Message], params: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        kw: dict[str, Any] = {"model": s.model, "messages": [dict(m) for m in messages],
                              "timeout": s.timeout_s, "num_retries": 0, "max_retries": 0,
                              "drop_params": True, **params}
        if s.api_base:
            kw["api_base"] = s.api_base
            kw["api_key"] = os.environ.get("TRIAGE_LLM_API_KEY") or "no-key"
        if s.stream:
            kw["stream"] = True
            kw["stream_options"] = {"include_usage": True}
        return kw

    def _once(self, litellm: Any, messages: Sequence[Message],
              params: Mapping[str, Any]) -> tuple[str, str, int, int, float]:
        kw = self._kwargs(messages, params)
        resp = litellm.completion(**kw)
        if self.settings.stream:
            resp = litellm.stream_chunk_builder(list(resp), messages=kw["messages"])
        choice = resp.choices[0]
        msg = choice.message
        extra = getattr(msg, "provider_specific_fields", None) or {}
        refusal = getattr(msg, "refusal", None) or extra.get("refusal")
        finish = str(choice.finish_reason or "")
        if refusal or finish == "content_filter":
            raise LlmError("refusal", f"the model refused: {str(refusal or finish)[:200]}")
        usage = getattr(resp, "usage", None)
        pt = int(getattr(usage, "prompt_tokens", 0) or 0)
        ct = int(getattr(usage, "completion_tokens", 0) or 0)
        try:
            cost = float(litellm.completion_cost(completion_response=resp, model=kw["model"]))
        except Exception:  # unmapped (local) models have no price
            cost = pt * self.limits.input_cost_per_token + ct * self.limits.output_cost_per_token
        return str(msg.content or ""), finish, pt, ct, cost

    def chat(self, messages: Sequence[Message], *, purpose: str = "", label: str = "",
             accept: Callable[[str], bool] | None = None,
             statement_ids: Sequence[str] = ()) -> Reply:
        """Answer for ``messages``; cached answers come back with ``cached=True``.

        Args:
            messages: chat messages.
            statement_ids: the statements the prompt shows (grammar mode cites only these).
            purpose: localize, review or repair (transcript).
            label: what is being reviewed (transcript).
            accept: only answers it returns True for are cached (e.g. parseable JSON).

        Raises:
            LlmError: no answer after the allowed retries, or a refusal.
            LlmConfigError: litellm missing, authentication failed or model unknown.
        """
        s = self.settings
        params = self.call_params(statement_ids)
        key = cache_key(s.model, messages, params)
        base: dict[str, Any] = {"model": s.model, "api_base": s.api_base or "", "cache_key": key,
                "messages": tuple(messages), "params": params, "purpose": purpose,
                "label": label}
        if self.use_cache and self.store is not None:
            hit = self.store.get(key)
            if hit is not None:
                self.store.log(ExchangeLog(**base, content=hit.content,
                                           finish_reason=hit.finish_reason, cached=True))
                return Reply(hit.content, hit.finish_reason, hit.prompt_tokens,
                             hit.completion_tokens, hit.cost_usd, 0.0, True, 0)
        litellm = _litellm()
        attempt = 0
        while True:
            attempt += 1
            t0 = time.perf_counter()
            try:
                content, finish, pt, ct, cost = self._once(litellm, messages, params)
            except LlmError as exc:
                self._log(base, attempt, t0, error=f"{exc.kind}: {exc}")
                exc.attempts = attempt
                raise
            except Exception as exc:
                kind, text = _classify(exc, litellm)
                self._log(base, attempt, t0, error=f"{kind}: {text}")
                if kind == "config":
                    raise LlmConfigError(f"model {s.model}: {text}") from exc
                if kind not in RETRYABLE or attempt > s.retries:
                    tries = f" after {attempt} attempt(s)" if kind in RETRYABLE else ""
                    raise LlmError(kind, f"{kind}{tries}: {text}", attempt) from exc
                wait = _retry_after(exc)
                if wait is None:
                    wait = s.backoff_s * (2 ** (attempt - 1)) * (1 + random.random() / 4)
                self._sleep(min(max(wait, 0.0), s.max_backoff_s))
                continue
            latency = time.perf_counter() - t0
            if self.store is not None:
                self.store.log(ExchangeLog(**base, content=content, finish_reason=finish,
                                           prompt_tokens=pt, completion_tokens=ct,
                                           cost_usd=cost, latency_s=latency, attempt=attempt))
                if self.use_cache and (accept is None or accept(content)):
                    self.store.put(key, s.model, CachedResponse(content, finish, pt, ct, cost))
            return Reply(content, finish, pt, ct, cost, latency, False, attempt)

    def _log(self, base: dict[str, Any], attempt: int, t0: float, error: str) -> None:
        if self.store is not None:
            self.store.log(ExchangeLog(**base, latency_s=time.perf_counter() - t0,
                                       attempt=attempt, error=error))
