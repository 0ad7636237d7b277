"""Whose spend it is and whether it is known: evaluation spend (test and arena runs, the judge's
prompts) is reported apart from the prompts' own; unpriced calls are counted and named by budgets,
cost alerts and the dashboard; cost recommend and compare project from the prompts' own traffic
and start from the configured model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from promstack import monitoring
from promstack.cli import cli
from promstack.gateway import budgets
from promstack.monitoring import advice, alerts, costs
from store import calls

NOW = datetime.now(UTC).replace(microsecond=0)
_seq = iter(range(10**9))
NOTE = "add a price in config"


def row(at: datetime = NOW - timedelta(hours=1), **fields):
    base = {"call_id": f"s{next(_seq)}", "timestamp": monitoring.iso(at), "prompt_id": 1,
            "prompt_name": "support/answer", "prompt_version": 1, "model": "gpt-4o",
            "input_tokens": 100, "output_tokens": 100, "latency_ms": 100.0, "user_id": "u1",
            "cost_usd": 1.0, "cache_hit": False, "status": "ok", "environment": "production"}
    base.update(fields)
    return base


def add(db, rows):
    calls.insert(db, [(r, None) for r in rows])


def add_run(db, run_id, kind="test", models=("gpt-4o",), scores=(90,)):
    db.execute(
        "INSERT INTO runs (id, kind, suite_name, prompt_id, prompt_version, models, status, total, "
        "started_at, actor) VALUES (?, ?, 'regression', 1, 1, ?, 'done', 0, '2026-01-01T00:00:00Z', 't')",
        [run_id, kind, json.dumps(list(models))])
    if kind == "test":
        for model, score in zip(models, scores, strict=True):
            db.execute("INSERT INTO results (run_id, case_key, model, status, score, input_tokens, output_tokens, "
                       "finished_at) VALUES (?, 'c', ?, 'pass', ?, 100, 100, '2026-01-01T00:00:00Z')",
                       [run_id, model, score])


@pytest.fixture
def answer(client):
    return client.create_prompt("support/answer", "답하세요: {{ input }}", model_config={"model": "gpt-4o-mini"})


@pytest.fixture
def mixed(client, answer):
    """$3 of the prompt's own calls; $10 of a test run, $20 of the judge, $40 of an arena run; a
    call grouped with --run-id (no test or arena run) is the prompt's own."""
    db = client.store.db
    add_run(db, "t1")
    add_run(db, "a1", kind="arena")
    add(db, [row(cost_usd=1.0), row(cost_usd=1.0), row(cost_usd=1.0, run_id="my-batch")])
    add(db, [row(run_id="t1", cost_usd=10.0),
             row(run_id="t1", prompt_id=2, prompt_name="promstack/judge", cost_usd=20.0),
             row(run_id="a1", cost_usd=40.0)])
    return db


def test_cost_report_counts_the_prompts_own_spend_and_evaluation_apart(client, mixed):
    report = costs.cost_report(mixed, since="1d", now=NOW)
    assert report["total_usd"] == pytest.approx(3.0)
    assert [(g["prompt_name"], g["requests"]) for g in report["groups"]] == [("support/answer", 3)]
    evaluation = report["evaluation"]
    assert evaluation["cost_usd"] == pytest.approx(70.0) and evaluation["requests"] == 3
    assert {k: v["cost_usd"] for k, v in evaluation["by_kind"].items()} == {
        "test": pytest.approx(10.0), "judge": pytest.approx(20.0), "arena": pytest.approx(40.0)}
    assert report["daily"][0]["cost_usd"] == pytest.approx(3.0)
    assert report["daily"][0]["evaluation_cost_usd"] == pytest.approx(70.0)
    (total,) = monitoring.metrics(mixed, since="1d", now=NOW)["groups"]
    assert total["cost_usd"] == pytest.approx(73.0)
    assert total["own_cost_usd"] == pytest.approx(3.0) and total["evaluation_cost_usd"] == pytest.approx(70.0)
    out = CliRunner().invoke(cli, ["cost", "--since", "1d"])
    assert out.exit_code == 0 and "evaluation (tests, arena, judge; not in the total above): $70.00" in out.stdout


def test_the_dashboard_charts_own_and_evaluation_cost_apart(client, mixed):
    from promstack.web.dashboard import monitoring_page

    page = monitoring_page(client, "24h", None, None, None, now=NOW)
    assert sum(page["series"]["cost"]) == pytest.approx(3.0)
    assert sum(page["series"]["evaluation_cost"]) == pytest.approx(70.0)
    assert page["totals"]["own_cost_usd"] == pytest.approx(3.0)


def test_a_hard_dollar_budget_refuses_a_call_it_cannot_price(client, fake_llm, tmp_path):
    budgets.reset_cache()
    config = tmp_path / ".promstack" / "config.toml"
    config.write_text(config.read_text() + "[budgets]\nmonthly_usd = 100\nhard = true\n", encoding="utf-8")
    client.create_prompt("p", "hi {{ x }}", model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url})
    with pytest.raises(budgets.BudgetExceeded, match="model openai/fake-model has no price") as caught:
        client.run("p", {"x": "1"})
    assert NOTE in str(caught.value) and "monthly $100.00 budget of workspace" in str(caught.value)
    assert fake_llm.requests == []
    client.gateway.flush()
    (logged,) = client.call_log(limit=None)
    assert logged["status"] == "blocked" and logged["cost_usd"] == 0.0
    # a priced call under the same budget goes through
    client.create_prompt("q", "hi {{ x }}", model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url,
                                                         "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6})
    assert client.run("q", {"x": "1"}).priced
    budgets.reset_cache()


def test_a_token_budget_still_counts_an_unpriced_calls_tokens(client, fake_llm, tmp_path):
    budgets.reset_cache()
    config = tmp_path / ".promstack" / "config.toml"
    config.write_text(config.read_text() + "[limits]\ndaily_tokens = 15\nhard = true\n", encoding="utf-8")
    client.create_prompt("p", "hi {{ x }}", model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url})
    first = client.run("p", {"x": "1"})
    assert first.cost_usd is None and first.input_tokens + first.output_tokens > 5  # 15 left room for one call, not two
    client.gateway.flush()
    budgets.reset_cache()
    # no price, but its tokens count: the token budget is spent and the next call is refused
    with pytest.raises(budgets.BudgetExceeded):
        client.run("p", {"x": "2"})
    budgets.reset_cache()


def test_cost_alerts_and_budget_gauges_say_how_many_calls_they_could_not_price(client, answer, tmp_path):
    db = client.store.db
    (tmp_path / ".promstack").mkdir(exist_ok=True)
    (tmp_path / ".promstack" / "config.toml").write_text(
        "[budgets]\nmonthly_usd = 10\nhard = true\n",
        encoding="utf-8")
    add(db, [row(at=NOW - timedelta(seconds=1), cost_usd=2.0),
             row(at=NOW - timedelta(seconds=1), model="claude-9", cost_usd=None),
             row(at=NOW - timedelta(seconds=1), model="claude-9", cost_usd=None)])
    result = alerts.evaluate(db, alerts.load_rules(client.store.path), now=NOW, notify=False)
    (cost,) = [r for r in result["results"] if r["rule"] == "cost_budget"]
    assert cost["value"] == pytest.approx(2.0) and not cost["firing"]
    assert cost["unpriced_calls"] == 2 and cost["unpriced_models"] == ["claude-9"]
    assert "2 calls unpriced (model claude-9): add a price in config" in cost["message"]
    from promstack.web.dashboard import monitoring_page

    page = monitoring_page(client, "24h", None, None, None, now=NOW)
    notes = {g["title"]: g["unpriced"] for g in page["gauges"]}
    assert notes["Cost this month"].startswith("2 calls unpriced (model claude-9)")
    hard = [g for g in page["gauges"] if g["hard"]]
    assert hard and hard[0]["unpriced"].startswith("2 calls unpriced (model claude-9)")
    assert page["totals"]["unpriced"].startswith("2 calls unpriced (model claude-9)")
    checked = CliRunner().invoke(cli, ["alerts", "check", "--no-notify"])
    assert "2 calls unpriced (model claude-9)" in checked.stdout
    from starlette.testclient import TestClient

    from promstack.web.app import create_app

    with TestClient(create_app(client.store.path), base_url="http://127.0.0.1") as http:
        html = http.get("/monitoring?since=24h").text
    assert html.count("2 calls unpriced (model claude-9): add a price in config") >= 3  # total, 2 gauges
    assert "evaluation cost" in html


def test_recommend_counts_production_traffic_and_starts_from_the_configured_model(client, answer):
    """The prompt now names gpt-4o-mini; the log still holds gpt-4o calls of an older version,
    and a test run's and the judge's calls must not count as the prompt's traffic."""
    db = client.store.db
    add_run(db, "t1", models=("gpt-4o", "gpt-4o-mini"), scores=(90, 89))
    add(db, [row(at=NOW - timedelta(hours=i + 1), model="gpt-4o-mini", cost_usd=0.0001) for i in range(10)])
    add(db, [row(at=NOW - timedelta(hours=i + 1), model="gpt-4o", cost_usd=0.002) for i in range(20)])
    add(db, [row(at=NOW - timedelta(hours=i + 1), model="gpt-4o", run_id="t1", input_tokens=5000) for i in range(100)])
    add(db, [row(at=NOW - timedelta(hours=i + 1), prompt_name="promstack/judge", input_tokens=5000)
             for i in range(100)])  # as if the judge's calls were tagged with this prompt id
    rec = advice.recommend_model(client, "support/answer", tolerance=2, now=NOW)
    assert rec["current_model"] == "gpt-4o-mini"
    assert rec["traffic"]["calls"] == 30 and rec["traffic"]["avg_input_tokens"] == pytest.approx(100)
    assert rec["recommended"] == "gpt-4o-mini" and rec["advice"].startswith("keep gpt-4o-mini")
    cmp = advice.compare_versions(client, "support/answer", 1, 1, now=NOW)
    assert cmp["model"] == "gpt-4o-mini" and cmp["traffic"]["calls"] == 30


def test_recommend_and_compare_name_models_without_a_price(client):
    client.create_prompt("support/answer", "답하세요: {{ input }}", model_config={"model": "my-model"})
    add_run(client.store.db, "t1", models=("my-model", "gpt-4o-mini"), scores=(90, 90))
    rec = advice.recommend_model(client, "support/answer", now=NOW)
    assert rec["recommended"] == "gpt-4o-mini"
    assert rec["unpriced"].startswith("no price for model my-model: add a price in config")
    cmp = advice.compare_versions(client, "support/answer", 1, 1)
    assert cmp["price_known"] is False and cmp["unpriced"].startswith("no price for model my-model")
    out = CliRunner().invoke(cli, ["cost", "compare", "--prompt", "support/answer", "1", "1"])
    assert "no price for model my-model: add a price in config" in out.stdout
