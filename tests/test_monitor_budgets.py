"""Hard budgets: a call that would go over is refused before the provider sees it, and the
refusal is logged as a 'blocked' row; soft budgets only alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promstack import monitoring
from promstack.gateway import budgets
from promstack.gateway.budgets import BudgetExceeded
from store import calls
from store.db import connect

PRICES = {"input_cost_per_token": 1e-3, "output_cost_per_token": 1e-3}  # $0.001 a token


def write_config(isolated_store, text: str) -> None:
    (isolated_store.parent / "config.toml").write_text(text)


def make_prompt(client, fake, name="support/refund", **config):
    model_config = {"model": "openai/fake-model", "api_base": fake.base_url, **PRICES, **config}
    return client.create_prompt(name, "환불 절차를 안내하세요: {{ question }}", model_config=model_config)


def test_gateway_refuses_a_call_over_a_hard_budget_and_logs_it(client, fake_llm, isolated_store):
    budgets.reset_cache()
    write_config(isolated_store, "[budgets]\nmonthly_usd = 0.36\nhard = true\n")
    make_prompt(client, fake_llm)
    fake_llm.usage = (150, 200)          # $0.35 a call at these prices
    first = client.run("support/refund", {"question": "a"}, cache=False)
    assert first.cost_usd == pytest.approx(0.35)
    client.gateway.flush()     # the call log is written behind the call (~50 ms)
    sent = len(fake_llm.requests)
    with pytest.raises(BudgetExceeded, match=r"monthly \$0.36 budget of workspace") as refused:
        client.run("support/refund", {"question": "b"}, cache=False)
    assert "raise the budget" in str(refused.value)
    assert len(fake_llm.requests) == sent          # the provider never saw it
    log = client.call_log(limit=None)
    blocked = [r for r in log if r["status"] == "blocked"]
    assert len(blocked) == 1 and "budget" in blocked[0]["error"] and blocked[0]["cost_usd"] == 0.0
    # the refusal counts in metrics as blocked, not as a provider error
    (m,) = monitoring.metrics(client.store.db)["groups"]
    assert (m["requests"], m["blocked"], m["errors"]) == (2, 1, 0)


def test_per_prompt_budget_refuses_only_that_prompt(client, fake_llm, isolated_store):
    budgets.reset_cache()
    write_config(isolated_store, '[prompts."support/refund".budgets]\ndaily_usd = 0.1\nhard = true\n')
    make_prompt(client, fake_llm)
    make_prompt(client, fake_llm, name="faq")
    fake_llm.usage = (100, 100)         # $0.20: the first call fits (0 + its estimate), then over
    with pytest.raises(BudgetExceeded):
        # the estimate alone (prompt tokens + max_tokens) is over $0.10
        client.run("support/refund", {"question": "x" * 10}, cache=False,
                   model_config={"max_tokens": 200})
    assert client.run("faq", {"question": "x"}, cache=False).cost_usd == pytest.approx(0.2)


def test_soft_budget_never_refuses(client, fake_llm, isolated_store):
    budgets.reset_cache()
    write_config(isolated_store, "[budgets]\nmonthly_usd = 0.01\n")   # hard = false by default
    make_prompt(client, fake_llm)
    fake_llm.usage = (100, 100)
    for q in ("a", "b"):
        client.run("support/refund", {"question": q}, cache=False)
    assert len(client.call_log(limit=None)) == 2


def test_check_budget_tokens_environment_and_incremental_spend(isolated_store):
    budgets.reset_cache()
    db = connect(isolated_store)
    config = {
        "limits": {"daily_tokens": 1000, "hard": True},
        "environments": {"production": {"budgets": {"monthly_usd": 10.0, "hard": True}}},
    }
    now = datetime(2026, 3, 15, 12, tzinfo=UTC)

    def add(**fields):
        base = {"call_id": f"b{add.n}", "timestamp": monitoring.iso(now - timedelta(minutes=1)),
                "model": "m", "status": "ok", "environment": "production"}
        add.n += 1
        calls.insert(db, [({**base, **fields}, None)])
    add.n = 0

    budgets.check_budget(db, config, environment="production", estimate=(1.0, 100), now=now)
    add(input_tokens=900, cost_usd=8.5)
    with pytest.raises(BudgetExceeded, match="1,000 tokens"):
        budgets.check_budget(db, config, environment="staging", estimate=(0.0, 101), now=now)
    budgets.check_budget(db, config, environment="staging", estimate=(5.0, 100), now=now)
    with pytest.raises(BudgetExceeded, match="environment production"):
        budgets.check_budget(db, config, environment="production", estimate=(2.0, 0), now=now)
    # rows after the cached total are added, so the next check sees them
    add(cost_usd=1.5, environment="production")
    with pytest.raises(BudgetExceeded, match=r"\$10.0000 used"):
        budgets.check_budget(db, config, environment="production", estimate=(0.0, 0), now=now)
    assert budgets.spent(db, budgets.hard_budgets(config, prompt_name=None, environment="production")[1],
                         now) == (10.0, 900)
    # last month's spend does not count this month
    calls.insert(db, [({"call_id": "old", "timestamp": "2026-02-20T00:00:00.000000Z", "model": "m",
                        "status": "ok", "environment": "dev", "cost_usd": 100.0}, None)])
    budgets.reset_cache()
    assert budgets.spent(db, budgets.Budget("workspace", "usd", "month", 1.0), now) == (10.0, 900)
    db.close()


def test_calls_in_flight_count_until_their_row_arrives(isolated_store):
    budgets.reset_cache()
    db = connect(isolated_store)
    config = {"budgets": {"daily_usd": 1.0, "hard": True}}
    now = datetime.now(UTC)
    budgets.check_budget(db, config, estimate=(0.4, 0), call_id="c1", now=now)
    budgets.check_budget(db, config, estimate=(0.4, 0), call_id="c2", now=now)
    with pytest.raises(BudgetExceeded, match=r"\$0.8000 in flight"):
        budgets.check_budget(db, config, estimate=(0.4, 0), call_id="c3", now=now)
    # c1 finished and cost less than estimated: its actual cost replaces the reservation
    calls.insert(db, [({"call_id": "c1", "timestamp": monitoring.iso(now - timedelta(seconds=1)),
                        "model": "m", "status": "ok", "cost_usd": 0.1}, None)])
    budgets.check_budget(db, config, estimate=(0.4, 0), call_id="c3", now=now)   # 0.1 + 0.4 + 0.4
    with pytest.raises(BudgetExceeded):
        budgets.check_budget(db, config, estimate=(0.2, 0), call_id="c4", now=now)
    budgets.reset_cache()
    db.close()


def test_concurrent_gateway_calls_do_not_overshoot(client, fake_llm, isolated_store):
    import asyncio

    budgets.reset_cache()
    write_config(isolated_store, "[budgets]\nmonthly_usd = 1.0\nhard = true\n")
    make_prompt(client, fake_llm, max_tokens=300)
    fake_llm.usage = (1, 300)             # each costs $0.301; estimated from its prompt + max_tokens
    fake_llm.latency = 0.05

    async def many():
        return await asyncio.gather(*(client.arun("support/refund", {"question": f"q{i}"}, cache=False)
                                      for i in range(6)), return_exceptions=True)

    from promstack.gateway import run_sync

    estimate, _ = budgets.estimate_call(
        "openai/fake-model", [{"role": "user", "content": "환불 절차를 안내하세요: q0"}],
        {"max_tokens": 300, **PRICES})
    assert 0.301 <= estimate < 1.0 / 3     # so three fit in the budget, a fourth does not
    results = run_sync(many())
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    # without reservations all six would pass: each check would see nothing spent yet
    assert len(done) == 3 and len(refused) == 3
    assert sum(r.cost_usd for r in done) <= 1.0
    budgets.reset_cache()
