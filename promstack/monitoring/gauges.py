"""Gauges and alert lines: how much of each limit is used, and where a chart marks a threshold.

`limits_view` is what a face shows beside the metrics of a filter (prompt or environment): the
alert scope the filter falls in, the latency and error-rate thresholds that apply there (the
scope's own, else the workspace's), the rules of that scope, and one gauge per configured limit:
the alert rules' daily token limit and budgets (`[limits]`, `[budgets]`, warned at their ratio)
and the hard budgets the gateway enforces (`hard = true`). A cost gauge says how many calls it
could not price, as every total does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from ..gateway import budgets, pricing
from .alerts import Rule, RuleSet, measure, rules_from_config
from .call_metrics import UNPRICED_SQL, prompt_names, resolve_prompt_id, split_models, total

if TYPE_CHECKING:
    from ..config import Config

WORKSPACE = "workspace"
# The chart lines: chart name -> the rule whose threshold it draws.
CHART_RULES = {"latency": "latency_p95", "error_rate": "error_rate"}


def alert_scope(db: sqlite_utils.Database, *, prompt: int | str | None = None,
                environment: str | None = None) -> str:
    """The alert scope of a filter: 'prompt:<name>' (an id is named), else
    'environment:<name>', else 'workspace'."""
    if prompt:
        pid = resolve_prompt_id(db, prompt)
        name = prompt_names(db).get(pid) if pid is not None else None
        if name is None and pid is not None:  # known only from the call log
            row = db.execute("SELECT prompt_name FROM calls WHERE prompt_id = ? AND prompt_name IS NOT NULL "
                             "LIMIT 1", [pid]).fetchone()
            name = row[0] if row else None
        return f"prompt:{name or prompt}"
    if environment:
        return f"environment:{environment}"
    return WORKSPACE


def scope_rules(ruleset: RuleSet, scope: str) -> list[Rule]:
    """The rules that watch `scope`: its own and the workspace's."""
    return [r for r in ruleset.rules if r.scope in (scope, WORKSPACE)]


def thresholds(ruleset: RuleSet, scope: str) -> dict[str, float | None]:
    """The threshold each chart marks for `scope` (its own rule, else the workspace's; None
    when no rule is configured)."""
    applied = {r.name: r for r in ruleset.rules if r.scope == WORKSPACE}
    applied.update({r.name: r for r in ruleset.rules if r.scope == scope})
    return {chart: applied[rule].threshold if rule in applied else None for chart, rule in CHART_RULES.items()}


def gauge_title(rule: Rule) -> str:
    """The name of the limit a rule's gauge shows."""
    if rule.name == "token_usage":
        return "Tokens today"
    return "Cost today" if rule.name == "cost_budget_daily" else "Cost this month"


def _gauge(title: str, scope: str, value: float, limit: float, *, warn_at: float | None, kind: str,
           hard: bool, unpriced: str | None) -> dict[str, Any]:
    return {"title": title, "scope": scope, "value": value, "limit": limit,
            "ratio": value / limit if limit else 0.0, "warn_at": warn_at, "kind": kind,
            "hard": hard, "unpriced": unpriced}


def gauges(db: sqlite_utils.Database, config: Config | dict[str, Any], *, ruleset: RuleSet | None = None,
           now: datetime | None = None) -> list[dict[str, Any]]:
    """One gauge per limit: {title, scope, value, limit, ratio, warn_at, kind ('usd' or 'tokens'),
    hard, unpriced}; the alert rules' limits first, then the workspace's hard budgets.
    `config` is a promstack.config.Config or its plain dict. A limit of a prompt named in the
    config that does not exist yet raises NotFound (`alerts.evaluate` reports it per rule)."""
    now = now or datetime.now(UTC)
    ruleset = ruleset or rules_from_config(config)
    out = []
    for rule in ruleset.rules:
        if rule.limit is None:
            continue
        value, context = measure(db, rule, now)
        out.append(_gauge(gauge_title(rule), rule.scope, value or 0.0, rule.limit, warn_at=rule.ratio,
                          kind="tokens" if rule.name == "token_usage" else "usd", hard=False,
                          unpriced=context.get("unpriced")))
    for budget in budgets.hard_budgets(config, prompt_name=None, environment=None):
        cost, tokens = budgets.spent(db, budget, now)
        unpriced = None
        if budget.kind == "usd":
            count, models = total(db, UNPRICED_SQL, budgets.period_start(budget.period, now), now,
                                  **dict(budget.filters))
            unpriced = pricing.unpriced_note(int(count), split_models(models))
        out.append(_gauge(budget.describe(), budget.scope, cost if budget.kind == "usd" else tokens,
                          budget.limit, warn_at=None, kind=budget.kind, hard=True, unpriced=unpriced))
    return out


def limits_view(db: sqlite_utils.Database, config: Config | dict[str, Any], *, prompt: int | str | None = None,
                environment: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The alert scope of a filter, its chart thresholds, its rules, and every gauge:
    {"scope", "thresholds", "rules", "gauges"}."""
    ruleset = rules_from_config(config)
    scope = alert_scope(db, prompt=prompt, environment=environment)
    return {"scope": scope, "thresholds": thresholds(ruleset, scope), "rules": scope_rules(ruleset, scope),
            "gauges": gauges(db, config, ruleset=ruleset, now=now)}
