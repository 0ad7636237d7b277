"""What the faces call for metrics, alerts and costs: `client.monitoring`, the same methods
whichever store the client has. This one reads the client's own store; over a team server the
remote client hands out `promstack.remote_facades.RemoteMonitoring`, which asks the server's REST API.
Either way the result is the same dict, so a face words it one way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import Client


class Monitoring:
    """Metrics, alerts and costs over the client's call log."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def metrics(self, **filters: Any) -> dict[str, Any]:
        """`call_metrics.metrics` over the call log."""
        from .call_metrics import metrics

        return metrics(self.client.store.db, **filters)

    def check_alerts(self, *, notify: bool = True) -> dict[str, Any]:
        """The alert rules evaluated now (`alerts.check`)."""
        from . import alerts

        return alerts.check(self.client.store.db, self.client.store.path, notify=notify)

    def alert_history(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Alerts, newest first (`alerts.history`)."""
        from . import alerts

        return alerts.history(self.client.store.db, state=state, limit=limit)

    def cost_report(self, **options: Any) -> dict[str, Any]:
        """`costs.cost_report` over the call log."""
        from .costs import cost_report

        return cost_report(self.client.store.db, **options)

    def recommend_model(self, prompt: Any, **options: Any) -> dict[str, Any]:
        """`advice.recommend_model`: the cheapest tested model within tolerance."""
        from .advice import recommend_model

        return recommend_model(self.client, prompt, **options)

    def compare_versions(self, prompt: Any, a: int, b: int, **options: Any) -> dict[str, Any]:
        """`advice.compare_versions`: version b's cost against a's at current traffic."""
        from .advice import compare_versions

        return compare_versions(self.client, prompt, a, b, **options)

    def price_table(self, models: list[str] | None = None) -> dict[str, Any]:
        """The price of each model and where it comes from (`pricing.price_table` with the
        workspace's config)."""
        from promstack import config
        from promstack.gateway import pricing

        conf = config.of_client(self.client)
        return {"shipped_file": str(pricing.SHIPPED_FILE), "workspace_file": str(conf.path or ""),
                "prices": pricing.price_table(conf, models or None)}

    def suggest_shorter(self, prompt: Any, **options: Any) -> dict[str, Any]:
        """`advice.suggest_shorter`: a shorter rewrite saved on a branch and tested."""
        from .advice import suggest_shorter

        return suggest_shorter(self.client, prompt, **options)
