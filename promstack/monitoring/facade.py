"""What the faces call with a `Client`: metrics, alerts and the cost report of its store, or,
over a team server (a remote client), the server's, through its REST API. Either way the result
is the same dict, so a face words it one way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Client


def metrics(client: Client, **filters: Any) -> dict[str, Any]:
    """`monitoring.metrics` over the client's call log (the server's, when it is remote)."""
    if client.remote:
        return client.metrics(**filters)
    from .call_metrics import metrics as local

    return local(client.store.db, **filters)


def check_alerts(client: Client, *, notify: bool = True) -> dict[str, Any]:
    """The alert rules evaluated now (`alerts.check`), on the server when the client is remote."""
    if client.remote:
        return client.check_alerts(notify=notify)
    from . import alerts

    return alerts.check(client.store.db, client.store.path, notify=notify)


def alert_history(client: Client, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Alerts, newest first (`alerts.history`)."""
    if client.remote:
        return client.alert_history(state=state, limit=limit)
    from . import alerts

    return alerts.history(client.store.db, state=state, limit=limit)


def cost_report(client: Client, **options: Any) -> dict[str, Any]:
    """`costs.cost_report` over the client's call log (the server's, when it is remote)."""
    if client.remote:
        return client.cost_report(**options)
    from .costs import cost_report as local

    return local(client.store.db, **options)


def recommend_model(client: Client, prompt: Any, **options: Any) -> dict[str, Any]:
    """`advice.recommend_model`: the cheapest tested model within tolerance (the server's scores and traffic)."""
    if client.remote:
        return client.recommend_model(prompt, **options)
    from .advice import recommend_model as local

    return local(client, prompt, **options)


def compare_versions(client: Client, prompt: Any, a: int, b: int, **options: Any) -> dict[str, Any]:
    """`advice.compare_versions`: version b's cost against a's at current traffic."""
    if client.remote:
        return client.compare_versions(prompt, a, b, **options)
    from .advice import compare_versions as local

    return local(client, prompt, a, b, **options)


def price_table(client: Client, models: list[str] | None = None) -> dict[str, Any]:
    """The price of each model and where it comes from (`pricing.price_table` with the
    workspace's config: the server's, when the client is remote)."""
    if client.remote:
        return client.price_table(models)
    from promstack import config
    from promstack.gateway import pricing

    conf = config.of_client(client)
    return {"shipped_file": str(pricing.SHIPPED_FILE), "workspace_file": str(conf.path or ""),
            "prices": pricing.price_table(conf, models or None)}


def suggest_shorter(client: Client, prompt: Any, **options: Any) -> dict[str, Any]:
    """`advice.suggest_shorter`: a shorter rewrite saved on a branch and tested (on the server,
    with its models and keys, when the client is remote)."""
    if client.remote:
        return client.suggest_shorter(prompt, **options)
    from .advice import suggest_shorter as local

    return local(client, prompt, **options)
