"""The gauges and chart thresholds the dashboard renders, as engine functions (monitoring.gauges):
one gauge per limit with its value, ratio and warning mark, the thresholds of the filter's scope
(its own, else the workspace's), and the wording the CLI and MCP share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promstack import monitoring
from promstack.gateway import budgets
from promstack.monitoring import advice, alerts, costs, gauges
from store import calls

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
_seq = iter(range(10**9))

CONFIG = {
    "alerts": {"latency_p95_ms": 4000, "error_rate": 0.05, "cost_ratio": 0.5},
    "limits": {"daily_tokens": 1000},
    "budgets": {"monthly_usd": 10, "daily_usd": 4},
    "prompts": {"support/answer": {"alerts": {"latency_p95_ms": 800}}},
    "environments": {"staging": {"alerts": {"error_rate": 0.2}}},
}


def row(**fields):
    base = {"call_id": f"g{next(_seq)}", "timestamp": monitoring.iso(NOW - timedelta(hours=1)), "prompt_id": 1,
            "prompt_name": "support/answer", "prompt_version": 1, "model": "gpt-4o",
            "input_tokens": 100, "output_tokens": 50, "latency_ms": 100.0, "user_id": "u1",
            "cost_usd": 1.5, "cache_hit": False, "status": "ok", "environment": "production"}
    base.update(fields)
    return base


@pytest.fixture
def db(client):
    client.create_prompt("support/answer", "답하세요: {{ input }}", model_config={"model": "gpt-4o"})
    calls.insert(client.store.db, [(r, None) for r in (
        row(), row(), row(model="claude-9", cost_usd=None),
        row(timestamp=monitoring.iso(NOW - timedelta(days=3)), cost_usd=2.0),  # this month, not today
    )])
    budgets.reset_cache()
    yield client.store.db
    budgets.reset_cache()


def test_the_scope_of_a_filter_names_the_prompt_even_when_given_its_id(db):
    assert gauges.alert_scope(db) == "workspace"
    assert gauges.alert_scope(db, prompt=1) == "prompt:support/answer"
    assert gauges.alert_scope(db, prompt="support/answer", environment="staging") == "prompt:support/answer"
    assert gauges.alert_scope(db, environment="staging") == "environment:staging"


def test_thresholds_are_the_scopes_own_else_the_workspaces():
    ruleset = alerts.rules_from_config(CONFIG)
    assert gauges.thresholds(ruleset, "workspace") == {"latency": 4000, "error_rate": 0.05}
    assert gauges.thresholds(ruleset, "prompt:support/answer") == {"latency": 800, "error_rate": 0.05}
    assert gauges.thresholds(ruleset, "environment:staging") == {"latency": 4000, "error_rate": 0.2}
    assert gauges.thresholds(alerts.rules_from_config({"alerts": {"enabled": False}}), "workspace") == {
        "latency": None, "error_rate": None}
    shown = gauges.scope_rules(ruleset, "environment:staging")
    assert {r.scope for r in shown} == {"workspace", "environment:staging"}


def test_a_gauge_per_limit_with_its_value_ratio_and_warning_mark(db):
    found = {g["title"]: g for g in gauges.gauges(db, CONFIG, now=NOW)}
    assert set(found) == {"Tokens today", "Cost today", "Cost this month"}
    tokens = found["Tokens today"]
    assert (tokens["value"], tokens["limit"], tokens["kind"]) == (450.0, 1000, "tokens")
    assert tokens["ratio"] == pytest.approx(0.45) and tokens["warn_at"] == 0.8 and not tokens["hard"]
    assert tokens["unpriced"] is None
    today, month = found["Cost today"], found["Cost this month"]
    assert (today["value"], today["ratio"], today["warn_at"]) == (3.0, 0.75, 0.5)
    assert month["value"] == pytest.approx(5.0) and month["ratio"] == pytest.approx(0.5)
    # the unpriced call is counted and named, never taken as $0
    assert month["unpriced"].startswith("1 call unpriced (model claude-9): add a price in config")


def test_hard_budgets_are_gauges_too_with_their_unpriced_calls(db):
    config = {"budgets": {"monthly_usd": 20, "hard": True}, "limits": {"daily_tokens": 300, "hard": True}}
    hard = [g for g in gauges.gauges(db, config, now=NOW) if g["hard"]]
    by_kind = {g["kind"]: g for g in hard}
    assert by_kind["usd"]["value"] == pytest.approx(5.0) and by_kind["usd"]["ratio"] == pytest.approx(0.25)
    assert by_kind["usd"]["title"] == "the monthly $20.00 budget of workspace" and by_kind["usd"]["warn_at"] is None
    assert by_kind["usd"]["unpriced"].startswith("1 call unpriced (model claude-9)")
    assert by_kind["tokens"]["value"] == 450 and by_kind["tokens"]["ratio"] == 1.5
    assert by_kind["tokens"]["unpriced"] is None


def test_limits_view_is_what_the_dashboard_renders(db, client):
    from promstack.web.dashboard import monitoring_page

    view = gauges.limits_view(db, CONFIG, prompt="1", now=NOW)
    assert view["scope"] == "prompt:support/answer" and view["thresholds"]["latency"] == 800
    assert [g["title"] for g in view["gauges"]] == ["Tokens today", "Cost this month", "Cost today"]
    (client.store.path.parent / "config.toml").write_text(
        '[alerts]\nlatency_p95_ms = 4000\n[prompts."support/answer".alerts]\nlatency_p95_ms = 800\n')
    page = monitoring_page(client, "24h", "1", None, None, now=NOW)
    assert (page["scope"], page["thresholds"]["latency"]) == ("prompt:support/answer", 800)


def test_the_cli_and_mcp_share_one_wording_of_a_cost_report():
    report = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-15T00:00:00Z", "total_usd": 3.0,
              "change": 0.5, "unpriced": None,
              "evaluation": {"cost_usd": 70.0, "requests": 3, "unpriced": "1 call unpriced",
                             "by_kind": {"judge": {"cost_usd": 20.0}, "test": {"cost_usd": 50.0}}}}
    assert costs.report_headline(report) == (
        "2026-03-01T00:00:00Z .. 2026-03-15T00:00:00Z: $3.0000 of the prompts' own calls "
        "(+50.0% against the window before)")
    assert costs.report_notes(report) == [
        "evaluation (tests, arena, judge; not in the total above): $70.0000 in 3 calls "
        "(judge $20.0000, test $50.0000)",
        "evaluation: 1 call unpriced"]
    assert [costs.usd(v) for v in (None, 0, 0.002, 1.5, 1234.5)] == ["-", "$0.0000", "$0.002000", "$1.5000",
                                                                     "$1,234.50"]
    assert advice.recommendation_text({"note": "no model within the tolerance"}) == "no model within the tolerance"
    assert advice.recommendation_text({"advice": "keep x", "unpriced": "y has no price"}) == "keep x\ny has no price"
    assert advice.shorter_summary({"tokens_before": 10, "tokens_after": 6, "verdict": "adoptable", "branch": "b",
                                   "version": 3, "reason": "scores 90 vs 90"}) == [
        "10 -> 6 tokens; verdict: adoptable", "saved as v3 on branch b", "scores 90 vs 90"]
    assert alerts.check_lines({"results": []}) == ["No rules to check."]
