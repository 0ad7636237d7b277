"""Metrics over the call log, alerts, cost reports: the get_metrics, check_alerts and cost_report
tools' engine calls and results."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from promstack import schemas as s

from . import Caller, needs, ref
from .prompts import Body, P

router = APIRouter(tags=["monitoring"])
Groups = Literal["prompt", "version", "model", "environment", "user", "day", "hour", "status", "source"]
CostGroups = Literal["prompt", "model", "environment", "user", "version", "day"]


class Shorter(Body):
    model: str | None = Field(default=None, max_length=200, description="The model that writes the rewrite.")
    version: int | None = Field(default=None, ge=1, description="Rewrite this version (default: main's head).")
    suite: str | None = Field(default=None, max_length=100, description="Test with this suite (default: the prompt's).")
    run_suite: bool = Field(default=True, description="False: save the rewrite on a branch without testing it.")


class CheckAlerts(Body):
    notify: bool = Field(default=True, description="Send notifications (webhooks) for changes.")


@router.get("/metrics", response_model=s.MetricsResult)
def get_metrics(since: str = "24h", until: str | None = None, by: Annotated[list[Groups], Query()] = (),
                prompt: str | None = None, version: Annotated[int | None, Query(ge=1)] = None,
                environment: str | None = None, model: str | None = None, user_id: str | None = None,
                caller: Caller = needs("get_metrics")) -> Any:
    """Requests, errors, latency percentiles, tokens, cost and cache hits of logged calls
    (`by` repeats: ?by=model&by=day)."""
    from promstack import monitoring

    with caller.client() as client:
        return monitoring.metrics(client.store.db, since=since, until=until, by=list(by),
                                  prompt=None if prompt is None else ref(prompt), version=version, model=model,
                                  environment=environment, user_id=user_id)


@router.get("/calls")
def call_log(prompt: str | None = None, prompt_version: Annotated[int | None, Query(ge=1)] = None,
             model: str | None = None, status: str | None = None, user_id: str | None = None,
             run_id: str | None = None, environment: str | None = None, cache_hit: bool | None = None,
             since: str | None = None, until: str | None = None,
             limit: Annotated[int, Query(ge=0)] = 100, oldest_first: bool = False,
             caller: Caller = needs("call_log")) -> list[dict[str, Any]]:
    """Rows of the call log, newest first (`oldest_first`), as the SDK's `call_log` returns them;
    `since`/`until` as `24h` or an ISO time; `limit=0`: every row."""
    filters = {"prompt_version": prompt_version, "model": model, "status": status, "user_id": user_id,
               "run_id": run_id, "environment": environment, "cache_hit": cache_hit, "since": since,
               "until": until, "oldest_first": oldest_first}
    if prompt is not None:
        filters["prompt"] = ref(prompt)
    with caller.client() as client:
        return client.call_log(limit=limit or None, **{k: v for k, v in filters.items() if v is not None})


class ReportCalls(Body):
    calls: list[Any] = Field(max_length=1000, description=(
        "The calls, each an object with the call log's fields: model (required), prompt_id (an id or a name), "
        "prompt_version, input_tokens, output_tokens, latency_ms, user_id, status ('ok' or 'error'), error, "
        "timestamp (ISO 8601 or epoch seconds; default now), cost_usd (default: the server's price), "
        "provider, operation, environment, call_id (the app's id for the call: a resent call is stored once)."))
    idempotency_key: str | None = Field(default=None, max_length=200, description=(
        "The batch's key: a row without its own call_id is keyed by it and its index, so a resent batch "
        "is stored once."))


@router.post("/calls")
def report_calls(body: ReportCalls, caller: Caller = needs("report_calls")) -> dict[str, Any]:
    """Store calls an app made itself (`source='api'`); a bad row is rejected by its index, with a
    sentence, and the others are stored; a row already stored (a resent batch) counts as a duplicate."""
    return store_reported(caller, body.calls, body.idempotency_key)


def store_reported(caller: Caller, calls: list[Any], idempotency_key: str | None) -> dict[str, Any]:
    """The answer to `POST /calls`, from the route or its fast path (`ReportFastPath`)."""
    from promstack import config
    from promstack.monitoring import reported

    with caller.client() as client:
        report = reported.ingest(client.store.db, calls, actor=client.actor, config=config.of_client(client),
                                 idempotency_key=idempotency_key)
    return {**report.as_dict(), "message": report.message("call")}


@router.get("/alerts", response_model=s.AlertsResult)
def get_alerts(caller: Caller = needs("check_alerts")) -> Any:
    """The alert rules evaluated now, without notifying anyone."""
    from promstack.monitoring import alerts

    with caller.client() as client:
        return alerts.check(client.store.db, client.store.path, notify=False)


@router.post("/alerts/check", response_model=s.AlertsResult)
def check_alerts(body: CheckAlerts, caller: Caller = needs("check_alerts")) -> Any:
    """Evaluate the alert rules now and notify what fired or resolved."""
    from promstack.monitoring import alerts

    with caller.client() as client:
        return alerts.check(client.store.db, client.store.path, notify=body.notify)


@router.get("/alerts/history")
def alert_history(state: Literal["firing", "resolved"] | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                  caller: Caller = needs("check_alerts")) -> list[dict[str, Any]]:
    """Alerts, newest first: when each fired and resolved, and its value."""
    from promstack.monitoring import alerts

    with caller.client() as client:
        return alerts.history(client.store.db, state=state, limit=limit)


@router.get("/costs", response_model=s.CostReportResult)
def cost_report(since: str = "30d", until: str | None = None, by: Annotated[list[CostGroups], Query()] = ("prompt",),
                prompt: str | None = None, environment: str | None = None,
                caller: Caller = needs("cost_report")) -> Any:
    """Model spend over a window, grouped, with its trend (`by` repeats)."""
    from promstack.monitoring import costs

    filters: dict[str, Any] = {"prompt": ref(prompt)} if prompt is not None else {}
    if environment:
        filters["environment"] = environment
    with caller.client() as client:
        return costs.cost_report(client.store.db, since=since, until=until, by=list(by), **filters)


@router.get(P + "/cost/recommend")
def recommend_model(prompt: str, tolerance: Annotated[float, Query(ge=0)] = 2.0,
                    days: Annotated[int, Query(ge=1, le=3650)] = 30,
                    caller: Caller = needs("recommend_model")) -> dict[str, Any]:
    """The cheapest tested model scoring within `tolerance` points of the best, and the monthly saving."""
    with caller.client() as client:
        return client.monitoring.recommend_model(ref(prompt), tolerance=tolerance, days=days)


@router.get(P + "/cost/compare")
def compare_versions(prompt: str, a: Annotated[int, Query(ge=1)], b: Annotated[int, Query(ge=1)],
                     model: str | None = None, caller: Caller = needs("cost_report")) -> dict[str, Any]:
    """What version `b` costs against version `a` at current traffic."""
    with caller.client() as client:
        return client.monitoring.compare_versions(ref(prompt), a, b, model=model)


@router.get("/prices")
def prices(model: Annotated[list[str], Query()] = (), caller: Caller = needs("cost_report")) -> dict[str, Any]:
    """The price of each model (USD per million tokens) and where it comes from (`model` repeats)."""
    with caller.client() as client:
        return client.monitoring.price_table(list(model))


@router.post(P + "/cost/shorter")
def suggest_shorter(prompt: str, body: Shorter, caller: Caller = needs("suggest_shorter")) -> dict[str, Any]:
    """Ask a model for a shorter rewrite, save it on a branch and test it against the current
    version (the suite runs twice: this answers when both runs are done). Nothing reaches main."""
    with caller.client() as client:
        return client.monitoring.suggest_shorter(ref(prompt), model=body.model, version=body.version, suite=body.suite,
                                      run_suite=body.run_suite)
