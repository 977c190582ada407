"""``--dry-run``: the tokens and estimated cost of the LLM pass, per model, without calling it.

The estimate renders exactly the prompts the real pass would send (same split, retrieval,
ranking and budget) and counts them offline. Answer tokens are an assumption
(:attr:`PlanSettings.est_answer_tokens` per call); prices and context sizes come from the
model map bundled with litellm (``LITELLM_LOCAL_MODEL_COST_MAP=True``, nothing fetched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from triage.budget import counter, counting_method
from triage.localize_plan import PlanSettings, Retriever, build_plan
from triage.model import Artifact, SkippedFile
from triage.taxonomy import Taxonomy, load_taxonomy


@dataclass(frozen=True)
class Estimate:
    """What one package would cost with one model."""

    model: str
    package: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    """Estimated: calls x the assumed answer size."""
    cost_usd: float
    priced: bool
    """False when litellm has no price for the model (cost shown as 0)."""
    context_tokens: int
    counting: str
    """How tokens were counted (tiktoken encoding, or an estimate)."""
    parts: int
    files: int
    not_reviewed: tuple[SkippedFile, ...] = ()


def estimate(artifact: Artifact, result: Any, settings: PlanSettings, models: Sequence[str],
             retriever: Retriever | None = None,
             taxonomy: Taxonomy | None = None) -> tuple[Estimate, ...]:
    """Plan the LLM pass for each model and price it, calling nothing.

    Raises:
        LlmConfigError: litellm (which holds the price map) is not installed.
    """
    from triage.llm import model_limits, normalise_model

    tax = taxonomy or load_taxonomy()
    out: list[Estimate] = []
    for raw in models:
        model = normalise_model(raw)
        limits = model_limits(model, settings.context_tokens)
        plan = build_plan(artifact, result, replace(settings, context_tokens=limits.context_tokens),
                          tax, counter(model), retriever)
        calls = len(plan.parts) * (2 if settings.review else 1)
        completion = calls * settings.est_answer_tokens
        cost = (plan.prompt_tokens * limits.input_cost_per_token
                + completion * limits.output_cost_per_token)
        out.append(Estimate(model=model, package=f"{artifact.name} {artifact.version}".strip(),
                            calls=calls, prompt_tokens=plan.prompt_tokens,
                            completion_tokens=completion, cost_usd=round(cost, 6),
                            priced=limits.known and limits.input_cost_per_token > 0,
                            context_tokens=limits.context_tokens,
                            counting=counting_method(model), parts=len(plan.parts),
                            files=len({p.segment.file for p in plan.parts}),
                            not_reviewed=plan.not_reviewed))
    return tuple(out)


def _money(e_cost: float, priced: bool) -> str:
    return f"${e_cost:.4f}" if priced else "no price"


def format_estimates(estimates: Sequence[Estimate], settings: PlanSettings,
                     details: bool = True) -> str:
    """Plain-text dry-run report: one block per package, then totals per model."""
    lines = ["dry run: no model was called; completion tokens assume "
             f"{settings.est_answer_tokens} per call; budget {settings.max_tokens_per_package} "
             f"prompt tokens per package; review pass {'on' if settings.review else 'off'}"]
    packages: dict[str, list[Estimate]] = {}
    for e in estimates:
        packages.setdefault(e.package, []).append(e)
    if details:
        for pkg, rows in packages.items():
            lines.append("")
            lines.append(f"{pkg}: {rows[0].parts} part(s) in {rows[0].files} file(s)")
            for e in rows:
                lines.append(f"  {e.model:<36} {e.calls:>5} calls {e.prompt_tokens:>10,} prompt "
                             f"+ {e.completion_tokens:>8,} completion tokens  "
                             f"{_money(e.cost_usd, e.priced)}")
            for s in rows[0].not_reviewed:
                lines.append(f"  not reviewed: {s.path}: {s.reason}")
    lines.append("")
    lines.append(f"total for {len(packages)} package(s):")
    models = dict.fromkeys(e.model for e in estimates)
    for model in models:
        rows = [e for e in estimates if e.model == model]
        priced = all(e.priced for e in rows)
        lines.append(f"  {model:<36} {sum(e.calls for e in rows):>6} calls "
                     f"{sum(e.prompt_tokens for e in rows):>12,} prompt + "
                     f"{sum(e.completion_tokens for e in rows):>10,} completion tokens  "
                     f"{_money(sum(e.cost_usd for e in rows), priced)}  "
                     f"(context {rows[0].context_tokens:,}; {rows[0].counting})")
    return "\n".join(lines) + "\n"
