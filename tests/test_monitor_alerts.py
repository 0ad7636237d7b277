"""Alert rules: each default fires and resolves, never twice while open; notifications reach a
local webhook; a failing webhook breaks nothing; `promstack alerts check` exits 1 while firing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from promstack import monitoring
from promstack.cli import cli
from promstack.monitoring import alerts
from store import calls
from store import monitoring as alert_rows
from store.db import connect
from store.errors import InvalidInput

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
_seq = iter(range(10**9))


def row(at: datetime = NOW - timedelta(minutes=5), **fields):
    base = {
        "call_id": f"a{next(_seq)}", "timestamp": monitoring.iso(at), "prompt_id": 42,
        "prompt_name": "support/refund", "prompt_version": 3, "model": "gpt-4o",
        "input_tokens": 0, "output_tokens": 0, "latency_ms": 100.0, "user_id": "user_123",
        "cost_usd": 0.0, "cache_hit": False, "status": "ok", "environment": "production",
    }
    base.update(fields)
    return base


def add(db, rows):
    calls.insert(db, [(r, None) for r in rows])


@pytest.fixture
def db(isolated_store):
    database = connect(isolated_store)
    database.execute("INSERT INTO prompts (id, name, created_at, created_by) VALUES "
                     "(42, 'support/refund', '2026-01-01T00:00:00Z', 't')")
    yield database
    database.close()


def by_rule(result, rule, scope="workspace"):
    return next(r for r in result["results"] if r["rule"] == rule and r["scope"] == scope)


def test_defaults_are_the_seeds_four():
    rules = alerts.rules_from_config({"limits": {"daily_tokens": 1000}, "budgets": {"monthly_usd": 100}})
    got = {r.name: r.threshold for r in rules.rules}
    assert got == {"latency_p95": 5000.0, "error_rate": 0.01, "token_usage": 800.0, "cost_budget": 90.0}
    # without a limit or a budget those two rules are not evaluated
    assert {r.name for r in alerts.rules_from_config({}).rules} == {"latency_p95", "error_rate"}


def test_latency_p95_fires_once_and_resolves(db):
    # 20 calls: 18 fast, 2 at 6 s -> nearest-rank p95 (rank 19) is 6000 ms > 5000
    add(db, [row(latency_ms=200.0) for _ in range(18)] + [row(latency_ms=6000.0) for _ in range(2)])
    first = alerts.evaluate(db, {}, now=NOW, notify=False)
    lat = by_rule(first, "latency_p95")
    assert first["firing"] and lat["firing"] and lat["value"] == 6000.0 and lat["change"] == "fired"
    again = alerts.evaluate(db, {}, now=NOW + timedelta(minutes=1), notify=False)
    assert by_rule(again, "latency_p95")["firing"] and by_rule(again, "latency_p95")["change"] is None
    assert len(alert_rows.list_alerts(db)) == 1
    assert [e["kind"] for e in alert_rows.events(db)] == ["fired"]
    # an hour later the slow calls are out of the window, fast ones came in
    later = NOW + timedelta(hours=2)
    add(db, [row(at=later - timedelta(minutes=1), latency_ms=300.0) for _ in range(5)])
    resolved = alerts.evaluate(db, {}, now=later, notify=False)
    assert by_rule(resolved, "latency_p95")["change"] == "resolved"
    assert not resolved["firing"]
    alerts.evaluate(db, {}, now=later + timedelta(minutes=1), notify=False)
    assert [e["kind"] for e in alert_rows.events(db)] == ["fired", "resolved"]
    (alert,) = alert_rows.list_alerts(db)
    assert alert["state"] == "resolved" and alert["value"] == 6000.0 and alert["last_value"] == 300.0
    # a new episode is a new alert
    add(db, [row(at=later + timedelta(minutes=2), latency_ms=9000.0) for _ in range(10)])
    assert by_rule(alerts.evaluate(db, {}, now=later + timedelta(minutes=3), notify=False),
                   "latency_p95")["change"] == "fired"
    assert len(alert_rows.list_alerts(db)) == 2


def test_latency_exactly_at_threshold_does_not_fire(db):
    add(db, [row(latency_ms=5000.0) for _ in range(10)])
    assert not by_rule(alerts.evaluate(db, {}, now=NOW, notify=False), "latency_p95")["firing"]


def test_error_rate_above_one_percent(db):
    add(db, [row() for _ in range(99)] + [row(status="error", error="500")])
    one = by_rule(alerts.evaluate(db, {}, now=NOW, notify=False), "error_rate")
    assert one["value"] == 0.01 and not one["firing"]          # 1% is not > 1%
    add(db, [row(status="blocked") for _ in range(50)])         # blocked: not in the denominator
    assert by_rule(alerts.evaluate(db, {}, now=NOW, notify=False), "error_rate")["value"] == 0.01
    add(db, [row(status="error", error="500")])
    two = by_rule(alerts.evaluate(db, {}, now=NOW, notify=False), "error_rate")
    assert two["value"] == pytest.approx(2 / 101) and two["firing"] and two["change"] == "fired"


def test_token_usage_over_80_percent_of_the_daily_limit(db):
    config = {"limits": {"daily_tokens": 1000}}
    yesterday = NOW - timedelta(days=1)
    add(db, [row(at=yesterday, input_tokens=5000)])             # yesterday's tokens don't count
    add(db, [row(input_tokens=400, output_tokens=400)])         # 800: exactly 80%
    assert not by_rule(alerts.evaluate(db, config, now=NOW, notify=False), "token_usage")["firing"]
    add(db, [row(input_tokens=1)])
    fired = by_rule(alerts.evaluate(db, config, now=NOW, notify=False), "token_usage")
    assert fired["firing"] and fired["value"] == 801 and fired["threshold"] == 800
    # the next day the count starts again: resolved
    tomorrow = NOW.replace(hour=0, minute=5) + timedelta(days=1)
    assert by_rule(alerts.evaluate(db, config, now=tomorrow, notify=False), "token_usage")["change"] == "resolved"


def test_cost_over_90_percent_of_the_budget(db):
    config = {"budgets": {"monthly_usd": 10.0, "daily_usd": 100.0}}
    add(db, [row(at=NOW - timedelta(days=25), cost_usd=50.0)])  # last month
    add(db, [row(at=NOW - timedelta(days=3), cost_usd=4.5), row(cost_usd=4.5)])
    res = alerts.evaluate(db, config, now=NOW, notify=False)
    assert by_rule(res, "cost_budget")["value"] == 9.0 and not by_rule(res, "cost_budget")["firing"]
    add(db, [row(cost_usd=0.01)])
    res = alerts.evaluate(db, config, now=NOW, notify=False)
    assert by_rule(res, "cost_budget")["firing"]
    assert not by_rule(res, "cost_budget_daily")["firing"]


def test_scopes_per_prompt_and_environment(db):
    config = {
        "alerts": {"latency_p95_ms": 10_000},
        "prompts": {"support/refund": {"alerts": {"latency_p95_ms": 1000}}},
        "environments": {"staging": {"budgets": {"monthly_usd": 1.0}}},
    }
    add(db, [row(latency_ms=2000.0) for _ in range(5)])
    add(db, [row(environment="staging", prompt_id=None, prompt_name=None, cost_usd=0.95)])
    res = alerts.evaluate(db, config, now=NOW, notify=False)
    assert not by_rule(res, "latency_p95")["firing"]
    assert by_rule(res, "latency_p95", "prompt:support/refund")["firing"]
    assert by_rule(res, "cost_budget", "environment:staging")["firing"]
    # limits and budgets are not inherited by the prompt scope
    assert not any(r["rule"] == "cost_budget" and r["scope"] == "prompt:support/refund" for r in res["results"])


def test_bad_config_is_a_clear_error():
    with pytest.raises(InvalidInput, match="fraction"):
        alerts.rules_from_config({"alerts": {"error_rate": 5}})
    with pytest.raises(InvalidInput, match="window"):
        alerts.rules_from_config({"alerts": {"window": "soon"}})
    with pytest.raises(InvalidInput, match="http"):
        alerts.rules_from_config({"alerts": {"webhooks": ["file:///etc/passwd"]}})


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((self.headers["content-type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def receiver():
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_receives_firing_and_resolution(db, receiver, capsys):
    handler, url = receiver
    config = {"alerts": {"webhooks": [url]}}
    add(db, [row(latency_ms=7000.0) for _ in range(3)])
    alerts.evaluate(db, config, now=NOW)
    alerts.evaluate(db, config, now=NOW + timedelta(minutes=1))     # still firing: no new POST
    assert len(handler.received) == 1
    content_type, body = handler.received[0]
    assert content_type == "application/json"
    assert body["event"] == "fired" and body["rule"] == "latency_p95" and body["scope"] == "workspace"
    assert body["value"] == 7000.0 and body["threshold"] == 5000.0 and "FIRING" in body["text"]
    assert "FIRING" in capsys.readouterr().err
    alerts.evaluate(db, config, now=NOW + timedelta(hours=3))
    assert [b["event"] for _, b in handler.received] == ["fired", "resolved"]
    kinds = [e["kind"] for e in alert_rows.events(db)]
    assert kinds == ["fired", "notified", "resolved", "notified"]


def test_failing_webhooks_break_nothing(db, receiver):
    handler, url = receiver
    handler.status = 500
    dead = f"http://127.0.0.1:{_closed_port()}/hook"
    config = {"alerts": {"webhooks": [dead, url], "webhook_timeout": 2}}
    add(db, [row(status="error", error="boom") for _ in range(5)])
    result = alerts.evaluate(db, config, now=NOW)
    assert by_rule(result, "error_rate")["firing"]
    assert len(handler.received) == 1       # the second hook still got it after the first failed
    failed = [e for e in alert_rows.events(db) if e["kind"] == "notify_failed"]
    assert {e["detail"]["url"] for e in failed} == {dead, url}
    assert any("error" in e["detail"] for e in failed) and any(e["detail"].get("status") == 500 for e in failed)
    assert alert_rows.open_alert(db, "error_rate", "workspace") is not None


def test_cli_alerts_check_exit_codes_and_list(db, isolated_store):
    runner = CliRunner()
    ok = runner.invoke(cli, ["alerts", "check"])
    assert ok.exit_code == 0, ok.output
    now = datetime.now(UTC)
    add(db, [row(at=now - timedelta(minutes=2), latency_ms=8000.0) for _ in range(4)])
    firing = runner.invoke(cli, ["alerts", "check", "--json"])
    assert firing.exit_code == 1
    data = json.loads(firing.stdout)
    assert data["firing"] and by_rule(data, "latency_p95")["change"] == "fired"
    again = runner.invoke(cli, ["alerts", "check", "--no-notify"])
    assert again.exit_code == 1 and "[FIRING] latency_p95" in again.output
    listed = json.loads(runner.invoke(cli, ["alerts", "list", "--state", "firing", "--json"]).output)
    assert [(a["rule"], a["state"]) for a in listed] == [("latency_p95", "firing")]
    config = isolated_store.parent / "config.toml"
    config.write_text('[alerts]\nlatency_p95_ms = 10000\n')
    assert runner.invoke(cli, ["alerts", "check"]).exit_code == 0
    assert runner.invoke(cli, ["alerts", "list", "--state", "resolved", "--json"]).exit_code == 0


def test_a_scope_for_an_unknown_prompt_does_not_stop_the_others(db):
    config = {"prompts": {"typo/name": {"alerts": {"latency_p95_ms": 1}}}}
    add(db, [row(latency_ms=9000.0)])
    result = alerts.evaluate(db, config, now=NOW, notify=False)
    assert by_rule(result, "latency_p95")["firing"]
    broken = by_rule(result, "latency_p95", "prompt:typo/name")
    assert not broken["firing"] and "no prompt named 'typo/name'" in broken["error"]


def test_firing_and_resolution_are_audited(db):
    from store import audit

    add(db, [row(latency_ms=9000.0)])
    alerts.evaluate(db, {}, now=NOW, notify=False)
    alerts.evaluate(db, {}, now=NOW + timedelta(minutes=1), notify=False)
    alerts.evaluate(db, {}, now=NOW + timedelta(hours=3), notify=False)
    actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id").fetchall()]
    assert actions == ["alert_fired", "alert_resolved"]
    assert audit.verify(db)[0] is True


def test_per_prompt_rules_find_the_slow_prompt(db):
    db.execute("INSERT INTO prompts (id, name, created_at, created_by) VALUES (7, 'faq', '2026-01-01T00:00:00Z', 't')")
    config = {"alerts": {"per_prompt": True}}
    add(db, [row(latency_ms=100.0) for _ in range(95)])                      # support/refund: fast
    add(db, [row(latency_ms=8000.0, prompt_id=7, prompt_name="faq") for _ in range(5)])  # faq: slow
    result = alerts.evaluate(db, config, now=NOW, notify=False)
    assert not by_rule(result, "latency_p95")["firing"]                      # 95% of all calls are fast
    assert by_rule(result, "latency_p95", "prompt:faq")["firing"]
    assert not by_rule(result, "latency_p95", "prompt:support/refund")["firing"]
    # no more faq traffic: its open alert is still evaluated, and resolves
    later = alerts.evaluate(db, config, now=NOW + timedelta(hours=2), notify=False)
    assert by_rule(later, "latency_p95", "prompt:faq")["change"] == "resolved"
