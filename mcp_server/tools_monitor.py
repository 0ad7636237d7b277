"""The monitoring and cost tools: each a few lines over promstack.monitoring / alerts / costs / advice.

Groups and reports are open-ended tables (the grouping decides their keys), so results carry
them as lists of objects; the fixed parts (window, totals, what fired) are typed fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from promstack.schemas import (
    AlertsResult,
    CostReportResult,
    MetricsResult,
    RecommendModelResult,
    SuggestShorterResult,
)

from .engine import Call
from .models import Args, Options, PromptRef
from .registry import tool

Duration = Annotated[str, Field(min_length=1, max_length=40)]
GroupName = Literal["prompt", "version", "model", "environment", "user", "day", "hour", "status", "source"]


SINCE = "A duration back ('1h', '7d') or an ISO time."


class MetricsOptions(Options):
    until: Duration | None = Field(default=None, description="Window end, like since; default now.")
    model: str | None = Field(default=None, max_length=200, description="Only this model's calls.")
    user_id: str | None = Field(default=None, max_length=200, description="Only this user's calls.")


class GetMetricsArgs(Args):
    FOLDED = frozenset(MetricsOptions.model_fields)

    since: Duration = Field(default="24h", description=SINCE)
    by: list[GroupName] = Field(default_factory=list, max_length=4)
    prompt: PromptRef | None = None
    version: int | None = Field(default=None, ge=1)
    environment: str | None = Field(default=None, max_length=100)
    options: MetricsOptions = Field(default_factory=MetricsOptions)


class CheckAlertsArgs(Args):
    notify: bool = Field(default=True, description="Send notifications (webhooks) for changes.")


class CostReportArgs(Args):
    since: Duration = Field(default="30d", description=SINCE)
    by: list[Literal["prompt", "model", "environment", "user", "version", "day"]] = Field(
        default_factory=lambda: ["prompt"], max_length=3)
    prompt: PromptRef | None = None
    environment: str | None = Field(default=None, max_length=100)


class RecommendModelArgs(Args):
    prompt: PromptRef
    tolerance: float = Field(default=2.0, ge=0, le=100, description="Score points (0-100) it may lose.")


class SuggestShorterArgs(Args):
    prompt: PromptRef
    model: str | None = Field(default=None, max_length=200, description="Writes it; default the prompt's model.")
    version: int | None = Field(default=None, ge=1)
    suite: str | None = Field(default=None, max_length=200, description="Default: the prompt's suite.")
    run_suite: bool = Field(default=True, description="Test both versions.")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


@tool(title="Call metrics", read_only=True, idempotent=True)
def get_metrics(call: Call, args: GetMetricsArgs) -> tuple[MetricsResult, str]:
    """Requests, errors, latency percentiles, tokens, cost and cache hits of logged model calls,
    optionally grouped."""
    found = call.client.monitoring.metrics(  # the server's call log, over a team server
        since=args.since, until=args.options.until, by=list(args.by), prompt=args.prompt, version=args.version,
        model=args.options.model, environment=args.environment, user_id=args.options.user_id,
    )
    lines = [f"{found['since'] or 'start'} .. {found['until']}"]
    for g in found["groups"][:20]:
        key = ", ".join(f"{k}={g.get('prompt_name') or g[k] if k == 'prompt_id' else g[k]}"
                        for k in g if k in ("prompt_id", "prompt_version", "model", "environment",
                                            "user_id", "day", "hour", "status", "source"))
        lines.append(f"{key or 'all'}: {g['requests']} calls, errors {g['error_rate']:.1%}, "
                     f"p95 {_ms(g['latency_p95_ms'])}, ${g['own_cost_usd']:.4f} own + "
                     f"${g['evaluation_cost_usd']:.4f} evaluation, cache {g['cache_hit_rate']:.0%}")
    if found["unpriced"]:
        lines.append(found["unpriced"])
    return MetricsResult.model_validate(found), "\n".join(lines)


@tool(title="Check alerts", idempotent=True, open_world=True)  # posts to the webhooks
def check_alerts(call: Call, args: CheckAlertsArgs) -> tuple[AlertsResult, str]:
    """Evaluate the alert rules (latency, errors, tokens, budget) now and notify what fired or
    resolved."""
    from promstack.monitoring import alerts

    found = call.client.monitoring.check_alerts(notify=args.notify)
    text = "\n".join(alerts.check_lines(found))
    return AlertsResult.model_validate(found), text


@tool(title="Cost report", read_only=True, idempotent=True)
def cost_report(call: Call, args: CostReportArgs) -> tuple[CostReportResult, str]:
    """Model spend over a window, grouped, with its trend."""
    from promstack.monitoring import costs

    filters = {"prompt": args.prompt} if args.prompt is not None else {}
    if args.environment:
        filters["environment"] = args.environment
    found = call.client.monitoring.cost_report(since=args.since, by=list(args.by), **filters)
    lines = [costs.report_headline(found)]
    for g in found["groups"][:20]:
        key = g.get("prompt_name") or ", ".join(str(g[k]) for k in g if k in (
            "prompt_id", "prompt_version", "model", "environment", "user_id", "day"))
        lines.append(f"{key}: ${g['cost_usd']:,.4f} ({g['share']:.0%}), {g['trend']}")
    lines += costs.report_notes(found)
    return CostReportResult.model_validate(found), "\n".join(lines)


@tool(title="Recommend a cheaper model", read_only=True, idempotent=True)
def recommend_model(call: Call, args: RecommendModelArgs) -> tuple[RecommendModelResult, str]:
    """Name the cheapest model scoring close to the best on a prompt's tests, with the monthly
    saving."""
    from promstack.monitoring import advice

    found = call.client.monitoring.recommend_model(args.prompt, tolerance=args.tolerance)
    return RecommendModelResult.model_validate(found), advice.recommendation_text(found)


@tool(title="Suggest a shorter prompt", long=True, changes_prompts=True, open_world=True)  # the writer and the suite
def suggest_shorter(call: Call, args: SuggestShorterArgs) -> tuple[SuggestShorterResult, str]:
    """Have a model write a shorter version of a prompt on a branch, tested against the current
    one."""
    from promstack.monitoring import advice

    call.progress(0, 3, "asking for a shorter rewrite")
    found = call.client.monitoring.suggest_shorter(args.prompt, model=args.model, version=args.version,
                                                   suite=args.suite, run_suite=args.run_suite)
    call.progress(3, 3, found["verdict"])
    return SuggestShorterResult.model_validate(found), "\n".join(advice.shorter_summary(found))
