"""Alert rules over the call log, their state, and notifications.

The guide's four rules are the defaults:

| rule          | fires when                                                     |
|---------------|----------------------------------------------------------------|
| latency_p95   | p95 latency over the window (default 1 h) > 5000 ms             |
| error_rate    | errors / served calls over the window > 1%                     |
| token_usage   | tokens used today (UTC) > 80% of `[limits] daily_tokens`       |
| cost_budget   | cost this month (or day) > 90% of `[budgets] monthly_usd` (`daily_usd`) |

Thresholds, windows, limits and budgets come from `.promstack/config.toml`, for the workspace
(`[alerts]`, `[limits]`, `[budgets]`), per prompt (`[prompts."support/refund".alerts]`...) and
per environment (`[environments.production.alerts]`...). A prompt or environment scope takes the
workspace's `[alerts]` thresholds unless it sets its own; limits and budgets are never inherited
(a workspace budget of $500 is not also a budget of $500 for each prompt). A rule whose limit or
budget is not configured is not evaluated. Cost rules count every paid call (the prompts' own and
evaluation alike: both are billed); a call whose model has no price adds nothing it could be proven
to cost, so the value is a lower bound and the result says "N calls unpriced (model X): add a
price in config" (`unpriced_calls`, `unpriced_models`, `unpriced`). With `per_prompt = true` in `[alerts]`, the latency
and error rules are also evaluated for every prompt that had traffic in the window.

`evaluate()` records each firing and each resolution (store.monitoring: one open alert per rule
and scope, so a rule that stays over its threshold never fires twice) and notifies only on those
changes: to the `promstack.alerts` logger, to stderr, and as a JSON POST to each webhook. A
webhook that is down, slow or wrong is recorded as `notify_failed` and never breaks anything.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from store import monitoring
from store.errors import InvalidInput, NotFound

from .call_metrics import (
    UNPRICED_SQL,
    iso,
    latency_percentiles,
    parse_duration,
    split_models,
    total,
    unpriced_fields,
)

log = logging.getLogger("promstack.alerts")
# Applications that configure logging get the alerts there; without it, Python's last-resort
# handler would print each one a second time next to our own stderr line.
log.addHandler(logging.NullHandler())

DEFAULTS: dict[str, Any] = {
    "window": "1h",
    "latency_p95_ms": 5000.0,
    "error_rate": 0.01,
    "min_calls": 1,
    "token_usage_ratio": 0.8,
    "cost_ratio": 0.9,
    "enabled": True,
}
WEBHOOK_TIMEOUT_S = 5.0
RULES = ("latency_p95", "error_rate", "token_usage", "cost_budget", "cost_budget_daily")


@dataclass
class Rule:
    """One rule for one scope. `scope` is 'workspace', 'prompt:<name>' or 'environment:<name>'."""

    name: str
    scope: str
    threshold: float
    window: str | None = None
    min_calls: int = 1
    limit: float | None = None
    ratio: float | None = None
    filters: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.name == "latency_p95":
            return f"latency p95 over {self.window} > {self.threshold:g} ms"
        if self.name == "error_rate":
            return f"error rate over {self.window} > {self.threshold:.2%}"
        if self.name == "token_usage":
            return f"tokens today > {self.ratio:.0%} of the daily limit {self.limit:,.0f}"
        period = "today" if self.name == "cost_budget_daily" else "this month"
        return f"cost {period} > {self.ratio:.0%} of the budget ${self.limit:,.2f}"


@dataclass
class RuleSet:
    rules: list[Rule]
    webhooks: list[str] = field(default_factory=list)
    webhook_timeout: float = WEBHOOK_TIMEOUT_S
    # `[alerts] per_prompt = true`: latency and error rules also for every prompt with traffic
    per_prompt: list[Rule] = field(default_factory=list)


# ---- configuration --------------------------------------------------------------------------


def _table(data: Any, *path: str) -> dict[str, Any]:
    for key in path:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    if not isinstance(data, dict):
        raise InvalidInput(f"[{'.'.join(path)}] in config.toml must be a table of settings")
    return data


def _number(table: dict[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInput(f"{key} in [{where}] must be a non-negative number, not {value!r}")
    return float(value)


def _scope_rules(
    scope: str, filters: dict[str, Any], alerts: dict[str, Any], limits: dict[str, Any],
    budgets: dict[str, Any], where: str,
) -> list[Rule]:
    settings = {**DEFAULTS, **alerts}
    if not settings.get("enabled", True):
        return []
    window = str(settings["window"])
    try:
        parse_duration(window)  # a bad window is an error now, not at 3 a.m.
    except InvalidInput as exc:
        raise InvalidInput(f"window in [{where}alerts]: {exc}") from None
    min_calls = int(settings.get("min_calls") or 1)
    rules = []
    latency = _number(settings, "latency_p95_ms", f"{where}alerts")
    if latency is not None:
        rules.append(Rule("latency_p95", scope, latency, window, min_calls, filters=filters))
    errors = _number(settings, "error_rate", f"{where}alerts")
    if errors is not None:
        if errors > 1:
            raise InvalidInput(f"error_rate in [{where}alerts] is a fraction (0.01 is 1%), not {errors}")
        rules.append(Rule("error_rate", scope, errors, window, min_calls, filters=filters))
    daily_tokens = _number(limits, "daily_tokens", f"{where}limits")
    if daily_tokens:
        ratio = _number(settings, "token_usage_ratio", f"{where}alerts")
        rules.append(Rule("token_usage", scope, daily_tokens * ratio, limit=daily_tokens,
                          ratio=ratio, filters=filters))
    for key, name in (("monthly_usd", "cost_budget"), ("daily_usd", "cost_budget_daily")):
        budget = _number(budgets, key, f"{where}budgets")
        if budget:
            ratio = _number(settings, "cost_ratio", f"{where}alerts")
            rules.append(Rule(name, scope, budget * ratio, limit=budget, ratio=ratio, filters=filters))
    return rules


def rules_from_config(config: Any) -> RuleSet:
    """The rules a config defines: a promstack.config.Config or its plain dict."""
    data = getattr(config, "data", config) or {}
    alerts = _table(data, "alerts")
    rules = _scope_rules("workspace", {}, alerts, _table(data, "limits"), _table(data, "budgets"), "")
    for name, table in _table(data, "prompts").items():
        if not isinstance(table, dict) or not ({"alerts", "limits", "budgets"} & table.keys()):
            continue
        rules += _scope_rules(
            f"prompt:{name}", {"prompt": name}, {**alerts, **_table(table, "alerts")},
            _table(table, "limits"), _table(table, "budgets"), f'prompts."{name}".',
        )
    for name, table in _table(data, "environments").items():
        if not isinstance(table, dict):
            continue
        rules += _scope_rules(
            f"environment:{name}", {"environment": name}, {**alerts, **_table(table, "alerts")},
            _table(table, "limits"), _table(table, "budgets"), f"environments.{name}.",
        )
    webhooks = alerts.get("webhooks", [])
    if isinstance(webhooks, str):
        webhooks = [webhooks]
    for url in webhooks:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput(f"webhook {url!r} in [alerts] must be an http:// or https:// URL")
    timeout = _number(alerts, "webhook_timeout", "alerts") or WEBHOOK_TIMEOUT_S
    per_prompt = []
    if alerts.get("per_prompt"):
        per_prompt = [r for r in rules if r.scope == "workspace" and r.name in ("latency_p95", "error_rate")]
    return RuleSet(rules, list(webhooks), min(timeout, 30.0), per_prompt)


def load_rules(db_path: Any = None) -> RuleSet:
    """The workspace's rules from its `.promstack/config.toml` (defaults when there is none)."""
    from store.workspace import find_db, workspace_root

    from .. import config

    path = db_path or find_db()
    root = workspace_root(path) if path else None
    return rules_from_config(config.load(root))


# ---- evaluation -----------------------------------------------------------------------------


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _month_start(now: datetime) -> datetime:
    return _day_start(now).replace(day=1)


def measure(db: sqlite_utils.Database, rule: Rule, now: datetime) -> tuple[float | None, dict[str, Any]]:
    """The rule's current value (None when there is too little traffic to judge) and context."""
    if rule.name in ("latency_p95", "error_rate"):
        since = now - parse_duration(rule.window or "1h")
        if rule.name == "error_rate":
            # Blocked calls never reached a model: they are out of the denominator.
            served, errors = total(
                db, "COALESCE(SUM(status != 'blocked'), 0), COALESCE(SUM(status = 'error'), 0)",
                since, now, **rule.filters,
            )
            if served < rule.min_calls or served == 0:
                return None, {"served": served}
            return errors / served, {"served": served, "errors": errors}
        found = latency_percentiles(
            db, since=since, until=now, now=now, percentiles=(95,), **rule.filters
        )
        served = found[0]["served"] if found else 0
        if served < rule.min_calls or not served:
            return None, {"served": served}
        return found[0]["latency_p95_ms"], {"served": served}
    if rule.name == "token_usage":
        (tokens,) = total(
            db, "COALESCE(SUM(input_tokens + output_tokens), 0)", _day_start(now), now, **rule.filters
        )
        return float(tokens), {"limit": rule.limit, "used_ratio": tokens / rule.limit}
    start = _day_start(now) if rule.name == "cost_budget_daily" else _month_start(now)
    cost, unpriced, models = total(
        db, f"COALESCE(SUM(cost_usd), 0), {UNPRICED_SQL}", start, now, **rule.filters)
    # Unpriced calls add nothing they could be proven to cost: the value is a lower bound, and
    # the result (and its message) says how many calls it could not price.
    return float(cost), {"budget": rule.limit, "used_ratio": cost / rule.limit,
                         **unpriced_fields(int(unpriced), split_models(models))}


def _per_prompt_rules(db: sqlite_utils.Database, ruleset: RuleSet, now: datetime) -> list[Rule]:
    """The workspace's latency and error rules for each prompt with traffic in their window, or
    with such an alert open (so it resolves when the traffic stops); configured scopes win."""
    if not ruleset.per_prompt:
        return []
    configured = {r.scope for r in ruleset.rules}
    longest = max(parse_duration(r.window or "1h") for r in ruleset.per_prompt)
    names = {row[0] for row in db.execute(
        "SELECT DISTINCT prompt_name FROM calls WHERE timestamp >= ? AND timestamp < ? "
        "AND prompt_name IS NOT NULL", [iso(now - longest), iso(now)]).fetchall()}
    names |= {a["scope"].split(":", 1)[1] for a in monitoring.open_alerts(db)
              if a["scope"].startswith("prompt:")}
    out = []
    for name in sorted(names):
        scope = f"prompt:{name}"
        if scope in configured:
            continue
        out += [Rule(r.name, scope, r.threshold, r.window, r.min_calls, filters={"prompt": name})
                for r in ruleset.per_prompt]
    return out


def _message(rule: Rule, value: float | None, state: str, context: dict[str, Any] | None = None) -> str:
    if value is None:
        shown = "no traffic"
    elif rule.name == "latency_p95":
        shown = f"p95 {value:,.0f} ms"
    elif rule.name == "error_rate":
        shown = f"error rate {value:.2%}"
    elif rule.name == "token_usage":
        shown = f"{value:,.0f} tokens today ({value / rule.limit:.0%} of {rule.limit:,.0f})"
    else:
        shown = f"${value:,.4f} spent ({value / rule.limit:.0%} of ${rule.limit:,.2f})"
    unpriced = (context or {}).get("unpriced")
    if unpriced:
        shown += f", and {unpriced}"
    return f"[{state}] {rule.name} for {rule.scope}: {shown}; fires when {rule.describe()}"


def evaluate(
    db: sqlite_utils.Database,
    config: RuleSet | Any = None,
    *,
    now: datetime | None = None,
    notify: bool = True,
) -> dict[str, Any]:
    """Evaluate every rule, record firings and resolutions, notify on changes.

    Returns {"firing": bool, "checked_at", "results": [...]} where each result has the rule,
    scope, value, threshold, firing, change ('fired', 'resolved' or None) and alert_id.
    """
    ruleset = config if isinstance(config, RuleSet) else rules_from_config(config or {})
    now = now or datetime.now(UTC)
    at = iso(now)
    results = []
    changes = []
    for rule in ruleset.rules + _per_prompt_rules(db, ruleset, now):
        try:
            value, context = measure(db, rule, now)
        except NotFound as exc:  # a prompt named in config.toml that does not exist (yet)
            results.append({
                "rule": rule.name, "scope": rule.scope, "description": rule.describe(),
                "value": None, "threshold": rule.threshold, "limit": rule.limit, "firing": False,
                "change": None, "alert_id": None, "error": str(exc),
                "message": f"[error] {rule.name} for {rule.scope}: {exc}",
            })
            continue
        firing = value is not None and value > rule.threshold
        change = None
        alert_id = None
        detail = {"rule": asdict(rule), **context}
        if firing:
            message = _message(rule, value, "FIRING", context)
            alert, opened = monitoring.fire(
                db, rule.name, rule.scope, value=value, threshold=rule.threshold,
                message=message, detail=detail, at=at,
            )
            alert_id = alert.get("id")
            change = "fired" if opened else None
        else:
            closed = monitoring.resolve(db, rule.name, rule.scope, value=value, at=at)
            if closed is not None:
                alert_id, change = closed["id"], "resolved"
            message = _message(rule, value, "resolved" if closed is not None else "ok", context)
        result = {
            "rule": rule.name, "scope": rule.scope, "description": rule.describe(),
            "value": value, "threshold": rule.threshold, "limit": rule.limit,
            "firing": firing, "change": change, "alert_id": alert_id, "message": message,
            **{k: v for k, v in context.items() if k in ("served", "errors", "used_ratio", "unpriced_calls",
                                                         "unpriced_models", "unpriced")},
        }
        results.append(result)
        if change:
            changes.append(result)
    if notify:
        for result in changes:
            deliver(db, result, ruleset)
    return {
        "checked_at": at,
        "firing": any(r["firing"] for r in results),
        "rules": len(results),
        "results": results,
    }


# ---- notifications --------------------------------------------------------------------------


def payload(result: dict[str, Any]) -> dict[str, Any]:
    """What a webhook receives. `text` makes it readable as-is by Slack-style incoming hooks."""
    return {
        "source": "promstack",
        "event": result["change"],
        "alert_id": result["alert_id"],
        "rule": result["rule"],
        "scope": result["scope"],
        "value": result["value"],
        "threshold": result["threshold"],
        "limit": result.get("limit"),
        "description": result["description"],
        "text": result["message"],
    }


def deliver(db: sqlite_utils.Database, result: dict[str, Any], ruleset: RuleSet) -> list[dict[str, Any]]:
    """Log, print to stderr and POST to each webhook; every outcome is an alert event.
    Nothing here raises: a broken notification must not hide the alert itself."""
    message = result["message"]
    if result["change"] == "fired":
        log.warning(message)
    else:
        log.info(message)
    with contextlib.suppress(Exception):  # a closed stderr (a daemon) is no reason to fail
        print(f"promstack: {message}", file=sys.stderr)
    outcomes = [post_webhook(url, payload(result), ruleset.webhook_timeout) for url in ruleset.webhooks]
    if result.get("alert_id") is not None:
        for outcome in outcomes:
            try:
                monitoring.record_event(
                    db, result["alert_id"], "notified" if outcome["ok"] else "notify_failed", outcome
                )
            except Exception as exc:
                log.error("could not record a notification outcome: %s", exc)
    return outcomes


def post_webhook(url: str, body: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT_S) -> dict[str, Any]:
    """POST `body` as JSON; returns {"url", "ok", "status" | "error"} and never raises."""
    try:
        import httpx

        response = httpx.post(url, json=body, timeout=httpx.Timeout(timeout), follow_redirects=False)
        ok = 200 <= response.status_code < 300
        if not ok:
            log.error("webhook %s answered %s", url, response.status_code)
        return {"url": url, "ok": ok, "status": response.status_code}
    except Exception as exc:
        log.error("webhook %s failed: %s", url, exc)
        return {"url": url, "ok": False, "error": f"{exc.__class__.__name__}: {exc}"}


def check(db: sqlite_utils.Database, db_path: Any = None, *, notify: bool = True) -> dict[str, Any]:
    """The workspace's rules evaluated now: what `promstack alerts check` and `check_alerts` run."""
    return evaluate(db, load_rules(db_path), notify=notify)


def check_lines(result: dict[str, Any]) -> list[str]:
    """An `evaluate` result in lines: each rule's message, or that there was nothing to check."""
    return [r["message"] for r in result["results"]] or ["No rules to check."]


def history(db: sqlite_utils.Database, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    return monitoring.list_alerts(db, state=state, limit=limit)
