"""Metrics over call-log rows with known distributions: every figure and percentile, exactly."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from promstack import monitoring
from promstack.cli import cli
from store import calls
from store.db import connect
from store.errors import InvalidInput, NotFound

NOW = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)
_seq = iter(range(10**9))


def row(minutes_ago: float = 1.0, **fields):
    base = {
        "call_id": f"c{next(_seq)}", "timestamp": monitoring.iso(NOW - timedelta(minutes=minutes_ago)),
        "prompt_id": 42, "prompt_name": "support/refund", "prompt_version": 3, "model": "gpt-4o",
        "input_tokens": 150, "output_tokens": 200, "latency_ms": 1200.0, "user_id": "user_123",
        "cost_usd": 0.0, "cache_hit": False, "status": "ok", "environment": "production",
    }
    base.update(fields)
    return base


def add(db, rows):
    calls.insert(db, [(r, None) for r in rows])


@pytest.fixture
def db(isolated_store):
    database = connect(isolated_store)
    database.execute(
        "INSERT INTO prompts (id, name, created_at, created_by) VALUES "
        "(42, 'support/refund', '2026-01-01T00:00:00Z', 't'), (7, 'faq', '2026-01-01T00:00:00Z', 't')"
    )
    yield database
    database.close()


def test_nearest_rank_exact():
    values = list(range(1, 101))
    assert [monitoring.nearest_rank(values, p) for p in (50, 95, 99)] == [50, 95, 99]
    assert monitoring.nearest_rank([1, 2, 3, 4, 5, 6, 7], 50) == 4       # ceil(3.5) = 4
    assert monitoring.nearest_rank([1, 2, 3, 4, 5, 6, 7], 95) == 7       # ceil(6.65) = 7
    assert monitoring.nearest_rank([10.0 * i for i in range(1, 21)], 95) == 190.0  # rank 19 exactly
    assert monitoring.nearest_rank([5.0], 99) == 5.0
    assert monitoring.nearest_rank([], 95) is None


def test_every_metric_exactly(db):
    # 100 served calls with latencies 1..100 ms, shuffled; 3 errors, 10 cache hits; 5 blocked
    # calls with huge latencies that must not count in latency, error rate or cache rate.
    latencies = list(range(1, 101))
    random.Random(3).shuffle(latencies)
    rows = []
    for i, latency in enumerate(latencies):
        rows.append(row(
            minutes_ago=1 + i % 50, latency_ms=float(latency), input_tokens=10 + i, output_tokens=2 * i,
            cost_usd=0.001 * (i + 1), cache_hit=i < 10, status="error" if i in (20, 40, 60) else "ok",
        ))
    rows += [row(latency_ms=99999.0, status="blocked", cache_hit=True, input_tokens=0,
                 output_tokens=0) for _ in range(5)]
    add(db, rows)
    result = monitoring.metrics(db, since="24h", now=NOW)
    assert result["percentile_method"] == "nearest-rank"
    (m,) = result["groups"]
    assert m["requests"] == 105
    assert m["served"] == 100
    assert m["blocked"] == 5
    assert m["errors"] == 3
    assert m["error_rate"] == 0.03
    assert (m["latency_p50_ms"], m["latency_p95_ms"], m["latency_p99_ms"]) == (50.0, 95.0, 99.0)
    assert m["latency_max_ms"] == 100.0
    assert m["latency_mean_ms"] == pytest.approx(50.5)
    assert m["input_tokens"] == sum(10 + i for i in range(100))
    assert m["output_tokens"] == sum(2 * i for i in range(100))
    assert m["total_tokens"] == m["input_tokens"] + m["output_tokens"]
    assert m["cost_usd"] == pytest.approx(0.001 * 5050)
    assert m["cache_hits"] == 10
    assert m["cache_hit_rate"] == 0.10


def test_grouping_by_prompt_version_model_environment_user(db):
    add(db, [row(latency_ms=float(v), model="gpt-4o") for v in (100, 200, 300, 400)])
    add(db, [row(latency_ms=float(v), model="gpt-4o-mini", prompt_id=7, prompt_name="faq",
                 prompt_version=1, environment="staging", user_id="user_9") for v in (10, 20)])
    add(db, [row(latency_ms=1000.0, prompt_version=4)])
    by_prompt = {g["prompt_name"]: g for g in monitoring.metrics(db, by="prompt", now=NOW)["groups"]}
    assert by_prompt["support/refund"]["requests"] == 5
    assert by_prompt["support/refund"]["latency_p50_ms"] == 300.0   # of 100,200,300,400,1000
    assert by_prompt["support/refund"]["latency_p95_ms"] == 1000.0
    assert by_prompt["faq"]["requests"] == 2
    assert by_prompt["faq"]["latency_p50_ms"] == 10.0
    assert by_prompt["faq"]["prompt_id"] == 7

    versions = {(g["prompt_id"], g["prompt_version"]): g["requests"]
                for g in monitoring.metrics(db, by="version", now=NOW)["groups"]}
    assert versions == {(42, 3): 4, (42, 4): 1, (7, 1): 2}

    models = {g["model"]: g["latency_p99_ms"] for g in monitoring.metrics(db, by="model", now=NOW)["groups"]}
    assert models == {"gpt-4o": 1000.0, "gpt-4o-mini": 20.0}

    two = monitoring.metrics(db, by="environment,user", now=NOW)["groups"]
    assert {(g["environment"], g["user_id"]): g["requests"] for g in two} == {
        ("production", "user_123"): 5, ("staging", "user_9"): 2}

    only = monitoring.metrics(db, prompt="faq", now=NOW)["groups"]
    assert only[0]["requests"] == 2
    assert monitoring.metrics(db, prompt=42, model="gpt-4o", version=3, now=NOW)["groups"][0]["requests"] == 4
    assert monitoring.metrics(db, user_id="user_9", now=NOW)["groups"][0]["requests"] == 2


def test_day_and_hour_buckets_and_the_window(db):
    add(db, [
        row(minutes_ago=30, latency_ms=1.0),                 # 2026-01-09 11:30
        row(minutes_ago=90, latency_ms=2.0),                 # 2026-01-09 10:30
        row(minutes_ago=60 * 13, latency_ms=3.0),            # 2026-01-08 23:00
        row(minutes_ago=60 * 24 * 3, latency_ms=4.0),        # 3 days ago: outside 24h
    ])
    days = {g["day"]: g["requests"] for g in monitoring.metrics(db, by="day", now=NOW)["groups"]}
    assert days == {"2026-01-09": 2, "2026-01-08": 1}
    hours = {g["hour"]: g["requests"] for g in monitoring.metrics(db, by="hour", now=NOW)["groups"]}
    assert hours == {"2026-01-09T11:00Z": 1, "2026-01-09T10:00Z": 1, "2026-01-08T23:00Z": 1}
    assert monitoring.metrics(db, since="1h", now=NOW)["groups"][0]["requests"] == 1
    assert monitoring.metrics(db, since="7d", now=NOW)["groups"][0]["requests"] == 4
    # [since, until): a row exactly at `since` is in, one exactly at `until` is out.
    exact = monitoring.metrics(db, since=monitoring.iso(NOW - timedelta(minutes=90)),
                            until=monitoring.iso(NOW - timedelta(minutes=30)), now=NOW)
    assert exact["groups"][0]["requests"] == 1
    assert exact["groups"][0]["latency_p50_ms"] == 2.0


def test_empty_window_and_lean_percentiles(db):
    empty = monitoring.metrics(db, now=NOW)["groups"]
    assert empty[0]["requests"] == 0 and empty[0]["latency_p95_ms"] is None
    assert monitoring.metrics(db, by="prompt", now=NOW)["groups"] == []
    add(db, [row(latency_ms=float(v), prompt_id=1 + v % 2) for v in range(1, 41)])
    lean = {g["prompt_id"]: g for g in monitoring.latency_percentiles(db, by="prompt", now=NOW)}
    full = {g["prompt_id"]: g for g in monitoring.metrics(db, by="prompt", now=NOW)["groups"]}
    for pid in (1, 2):
        for p in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            assert lean[pid][p] == full[pid][p]
    assert lean[2]["latency_p95_ms"] == 37.0   # odds 1..39, n=20: rank 19
    assert lean[1]["latency_p95_ms"] == 38.0   # evens 2..40


def test_bad_arguments_say_what_to_do(db):
    with pytest.raises(InvalidInput, match="cannot group by 'color'"):
        monitoring.metrics(db, by="prompt,color", now=NOW)
    with pytest.raises(InvalidInput, match="24h"):
        monitoring.metrics(db, since="yesterday-ish", now=NOW)
    with pytest.raises(NotFound, match="no prompt named"):
        monitoring.metrics(db, prompt="nope", now=NOW)
    with pytest.raises(InvalidInput, match="empty"):
        monitoring.metrics(db, since="1h", until="2h", now=NOW)


def test_cli_metrics_table_and_json(db, isolated_store):
    recent = datetime.now(UTC)
    add(db, [row(latency_ms=float(v), timestamp=monitoring.iso(recent - timedelta(minutes=5)),
                 cost_usd=0.5) for v in (100, 200, 300)])
    runner = CliRunner()
    out = runner.invoke(cli, ["metrics", "--by", "prompt,model", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["by"] == ["prompt", "model"]
    (group,) = data["groups"]
    assert group["prompt_name"] == "support/refund" and group["model"] == "gpt-4o"
    assert group["latency_p95_ms"] == 300.0 and group["cost_usd"] == 1.5
    table = runner.invoke(cli, ["metrics", "--since", "1h", "--by", "prompt"])
    assert table.exit_code == 0
    assert "support/refund" in table.output and "$1.5000" in table.output
    bad = runner.invoke(cli, ["metrics", "--by", "colour"])
    assert bad.exit_code == 2 and "cannot group by" in bad.output


@pytest.mark.parametrize("filters", [{"prompt": 2**63}, {"prompt": str(2**63)}, {"version": 2**63}])
def test_an_id_past_64_bits_is_a_sentence_not_an_overflow(db, filters):
    # Found by the MCP fuzz: SQLite cannot take such an int as a parameter at all.
    with pytest.raises(InvalidInput, match="2\\*\\*63-1"):
        monitoring.metrics(db, now=NOW, **filters)
