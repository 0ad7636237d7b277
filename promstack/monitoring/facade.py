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
