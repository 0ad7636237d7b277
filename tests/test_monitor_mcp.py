"""The monitoring MCP tools through the SDK's in-memory client: structured results, and the
engine's sentence when something is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from promstack import monitoring
from store import calls
from store.db import connect

pytestmark = pytest.mark.anyio


@pytest.fixture
def traffic(client):
    client.create_prompt("support/refund", "환불: {{ question }}", model_config={"model": "gpt-4o"})
    now = datetime.now(UTC)
    db = connect(client.store.path)
    rows = [{"call_id": f"m{i}", "timestamp": monitoring.iso(now - timedelta(minutes=1 + i)), "prompt_id": 1,
             "prompt_name": "support/refund", "prompt_version": 1, "model": "gpt-4o",
             "input_tokens": 150, "output_tokens": 200, "latency_ms": 1000.0 * (i + 1),
             "cost_usd": 0.01, "status": "ok", "environment": "production"} for i in range(10)]
    calls.insert(db, [(r, None) for r in rows])
    db.close()


async def test_get_metrics_and_cost_report(mcp, traffic):
    result = await mcp.call_tool("get_metrics", {"since": "1h", "by": ["prompt", "model"]})
    assert not result.is_error, result.content[0].text
    (group,) = result.structured_content["groups"]
    assert group["prompt_name"] == "support/refund" and group["requests"] == 10
    assert group["latency_p95_ms"] == 10000.0 and group["latency_p50_ms"] == 5000.0
    assert "support/refund" in result.content[0].text
    report = await mcp.call_tool("cost_report", {"since": "7d", "by": ["model"]})
    assert not report.is_error
    assert report.structured_content["total_usd"] == pytest.approx(0.1)
    assert report.structured_content["groups"][0]["model"] == "gpt-4o"


async def test_check_alerts_fires_once(mcp, traffic):
    first = await mcp.call_tool("check_alerts", {"notify": False})
    assert not first.is_error
    data = first.structured_content
    latency = next(r for r in data["results"] if r["rule"] == "latency_p95")
    assert data["firing"] and latency["change"] == "fired" and latency["value"] == 10000.0
    again = (await mcp.call_tool("check_alerts", {"notify": False})).structured_content
    assert next(r for r in again["results"] if r["rule"] == "latency_p95")["change"] is None
    assert "[FIRING] latency_p95" in first.content[0].text


async def test_recommend_model_says_what_to_run(mcp, traffic):
    result = await mcp.call_tool("recommend_model", {"prompt": "support/refund"})
    text = result.content[0].text
    assert result.is_error and "two or more models first: run_tests with 'models'" in text and "promstack" not in text
