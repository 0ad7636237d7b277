"""`POST /api/v1/calls`: calls an app made itself, reported in batches (promstack.monitoring.reported)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient
from test_api_v1 import V1, as_role, create, error

from promstack import Client
from promstack.web.app import create_app


@pytest.fixture
def http(isolated_store):
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def rows(client, **filters):
    return [r for r in client.call_log(limit=None, **filters) if r["source"] == "api"]


def test_a_batch_is_stored_priced_and_flagged(http, isolated_store):
    made = create(http)
    now = datetime.now(UTC)
    batch = [
        {"call_id": "a1", "prompt_id": made["prompt_id"], "prompt_version": 1, "model": "gpt-4o-mini",
         "input_tokens": 1000, "output_tokens": 200, "latency_ms": 420, "user_id": "u1",
         "timestamp": now.isoformat()},
        {"call_id": "a2", "prompt_id": "support/refund", "model": "gpt-4o-mini", "cost_usd": 0.5,
         "status": "error", "error": "rate limited"},
        {"call_id": "a3", "prompt_id": 999, "model": "gpt-4o-mini"},
        {"call_id": "a4", "prompt_id": "nobody/here", "model": "no-such-model", "input_tokens": 5},
    ]
    answer = http.post(f"{V1}/calls", json={"calls": batch})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["stored"], body["duplicates"], body["flagged"], body["rejected"]) == (4, 0, 2, [])
    assert "flagged" in body["message"]
    with Client(isolated_store) as client:
        got = {r["call_id"]: r for r in rows(client)}
    assert set(got) == {"api-a1", "api-a2", "api-a3", "api-a4"}
    a1 = got["api-a1"]
    assert (a1["prompt_name"], a1["prompt_version"], a1["input_tokens"], a1["user_id"], a1["status"]) == (
        "support/refund", 1, 1000, "u1", "ok")
    assert a1["cost_usd"] > 0 and a1["flags"] == []
    assert got["api-a2"]["cost_usd"] == 0.5 and got["api-a2"]["error"] == "rate limited"
    assert got["api-a2"]["prompt_id"] == made["prompt_id"]
    assert got["api-a3"]["flags"] == ["unknown_prompt"]
    assert got["api-a4"]["flags"] == ["unknown_prompt"] and got["api-a4"]["cost_usd"] is None


def test_a_batch_sent_twice_is_stored_once(http, isolated_store):
    batch = {"idempotency_key": "batch-7", "calls": [{"model": "gpt-4o-mini"}, {"model": "gpt-4o"}]}
    first = http.post(f"{V1}/calls", json=batch).json()
    again = http.post(f"{V1}/calls", json=batch).json()
    assert (first["stored"], again["stored"], again["duplicates"]) == (2, 0, 2)
    with Client(isolated_store) as client:
        assert sorted(r["call_id"] for r in rows(client)) == ["api-batch-7:0", "api-batch-7:1"]


def test_one_bad_row_is_reported_by_index_and_the_rest_stored(http, isolated_store):
    ahead = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    batch = [{"model": "m", "call_id": "ok1"}, {"call_id": "x"}, {"model": "m", "input_tokens": -3},
             {"model": "m", "timestamp": ahead}, "nonsense", {"model": "m", "colour": "red"},
             {"model": "m", "call_id": "ok2", "timestamp": 1_700_000_000}]
    body = http.post(f"{V1}/calls", json={"calls": batch}).json()
    assert body["stored"] == 2
    reasons = dict((r["index"], r["reason"]) for r in body["rejected"])
    assert set(reasons) == {1, 2, 3, 4, 5}
    assert "no model" in reasons[1] and "input_tokens" in reasons[2] and "ahead" in reasons[3]
    assert "colour" in reasons[5] and "call 1: no model" in body["message"]
    with Client(isolated_store) as client:
        assert sorted(r["call_id"] for r in rows(client)) == ["api-ok1", "api-ok2"]


def test_reporting_needs_a_runner(isolated_store):
    with as_role(isolated_store, "viewer") as viewer:
        assert "runner" in error(viewer.post(f"{V1}/calls", json={"calls": [{"model": "m"}]}), 403, "Forbidden")
    with as_role(isolated_store, "runner", name="app") as runner:
        assert runner.post(f"{V1}/calls", json={"calls": [{"model": "m"}]}).json()["stored"] == 1
    with Client(isolated_store) as client:
        assert client.audit_log(limit=1)[0]["actor"] == "app"


def test_a_batch_too_large_or_not_a_list_is_refused(http):
    error(http.post(f"{V1}/calls", json={"calls": [{"model": "m"}] * 1001}), 422, "ValidationError")
    error(http.post(f"{V1}/calls", json={"calls": {"model": "m"}}), 422, "ValidationError")


def test_a_body_the_fast_path_does_not_take_is_validated_by_the_route(http, isolated_store):
    """Plain envelopes are stored in front of the framework (ReportFastPath); anything else reaches
    the route, which words the 422, and nothing is stored."""
    assert "colour" in error(http.post(f"{V1}/calls", json={"calls": [{"model": "m"}], "colour": 1}),
                             422, "ValidationError")
    answer = http.post(f"{V1}/calls", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["error"]["type"] == "ValidationError"
    error(http.post(f"{V1}/calls", json={"calls": [], "idempotency_key": "k" * 201}), 422, "ValidationError")
    error(http.post(f"{V1}/calls", content=b'{"calls": [{"model": "m"}]}', headers={"content-type": "text/plain"}),
          422, "ValidationError")
    fast = http.post(f"{V1}/calls", json={"calls": [{"model": "m", "call_id": "f1"}], "idempotency_key": "k"})
    assert fast.status_code == 200 and fast.json()["stored"] == 1
    with Client(isolated_store) as client:
        assert [r["call_id"] for r in rows(client)] == ["api-f1"]


def test_killing_the_server_mid_batch_loses_no_acknowledged_row(isolated_store):
    """Batches of 100 reported calls posted one after another to a real `promstack serve`,
    killed with SIGKILL while they flow: every call of every batch the server answered 200 for
    is in the call log, by its id."""
    import httpx
    from test_watchdog import kill_while_posting, promstack_serve

    sent: dict[int, list[str]] = {}
    with promstack_serve(isolated_store) as (server, base):
        def post(acknowledged):
            with httpx.Client(timeout=10) as http:
                for n in range(10_000):
                    batch = [{"call_id": f"b{n}-{i}", "model": "gpt-4o-mini", "input_tokens": 10 + i,
                              "output_tokens": 5, "latency_ms": 300} for i in range(100)]
                    try:
                        answer = http.post(f"{base}{V1}/calls", json={"idempotency_key": f"b{n}", "calls": batch})
                    except httpx.HTTPError:
                        return
                    if answer.status_code == 200:
                        sent[n] = [f"api-{row['call_id']}" for row in batch]
                        acknowledged.append(answer.json()["stored"])

        acknowledged = kill_while_posting(server, post, at_least=500)
    assert sum(acknowledged) == 100 * len(sent)  # each acknowledged batch stored whole
    with Client(isolated_store) as client:
        stored = {r["call_id"] for r in rows(client)}
    missing = [call_id for ids in sent.values() for call_id in ids if call_id not in stored]
    assert missing == []
