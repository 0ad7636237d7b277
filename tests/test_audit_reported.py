"""Reported calls get one audit row per batch (store.calls.insert_batch) that names the rows it
covers and hashes their content: `audit verify` still catches a reported row edited, deleted or
moved in the database, and every row stays attributable to the reporter who sent it."""

from __future__ import annotations

import sqlite3

from promstack.monitoring import reported
from store import calls, integrity


def _tamper(path, sql):
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def _batch(n, start=0, **extra):
    return [{"call_id": f"c{start + i}", "model": "gpt-4o-mini", "input_tokens": 10 + i, "output_tokens": 5,
             "latency_ms": 250, "user_id": f"u{i % 3}", **extra} for i in range(n)]


def _batch_rows(client):
    return [r for r in client.audit_log(limit=1000) if r["action"] == integrity.BATCH_ACTION]


def test_a_batch_gets_one_audit_row_that_covers_its_rows(client):
    report = reported.ingest(client.store.db, _batch(100), actor="app")
    assert report.stored == 100
    [entry] = _batch_rows(client)
    ids = [r["id"] for r in client.call_log(limit=None) if r["source"] == "api"]
    assert entry["actor"] == "app"
    assert entry["detail"]["calls"] == 100 and entry["detail"]["ids"] == [[min(ids), max(ids)]]
    assert entry["input_tokens"] == sum(10 + i for i in range(100)) and entry["output_tokens"] == 500
    assert not [r for r in client.audit_log(limit=1000) if r["action"] == "llm_call"]
    ok, message = client.verify_audit()
    assert ok and "100 reported calls match it" in message, message


def test_a_resent_batch_adds_no_rows_and_no_audit_row(client):
    reported.ingest(client.store.db, _batch(5), actor="app")
    again = reported.ingest(client.store.db, _batch(5) + _batch(2, start=5), actor="app")
    assert (again.stored, again.duplicates) == (2, 5)
    entries = _batch_rows(client)
    assert sorted(e["detail"]["calls"] for e in entries) == [2, 5]
    assert client.verify_audit()[0]


def test_verify_detects_an_edited_reported_row(client, isolated_store):
    reported.ingest(client.store.db, _batch(10), actor="app")
    reported.ingest(client.store.db, _batch(10, start=10), actor="app")
    assert client.verify_audit()[0]
    _tamper(isolated_store, "UPDATE calls SET cost_usd = 0, input_tokens = 1 WHERE call_id = 'api-c13'")
    ok, message = client.verify_audit()
    assert not ok
    second = max(e["id"] for e in _batch_rows(client))
    assert f"reported calls that audit row {second} covers" in message and "edited" in message


def test_verify_detects_a_deleted_reported_row(client, isolated_store):
    reported.ingest(client.store.db, _batch(10), actor="app")
    _tamper(isolated_store, "DELETE FROM calls WHERE call_id = 'api-c4'")
    ok, message = client.verify_audit()
    assert not ok and "covers 10 reported calls" in message and "9 are there" in message


def test_verify_detects_a_row_changed_to_another_reporter(client, isolated_store):
    reported.ingest(client.store.db, _batch(3, user_id="alice"), actor="app")
    _tamper(isolated_store, "UPDATE calls SET user_id = 'bob' WHERE call_id = 'api-c1'")
    assert not client.verify_audit()[0]


def test_a_batch_of_one_prompt_names_it_and_an_unpriced_call_leaves_the_total_unknown(client):
    made = client.create_prompt("p", "hi {{ x }}")
    reported.ingest(client.store.db, _batch(3, prompt_id=made.prompt_id, prompt_version=1), actor="app")
    reported.ingest(client.store.db, [{"call_id": "z", "model": "no-such-model", "input_tokens": 3}], actor="app")
    newest, older = _batch_rows(client)[:2]
    assert (older["prompt_id"], older["version"]) == (made.prompt_id, 1)
    assert older["cost_usd"] > 0 and newest["cost_usd"] is None
    assert client.audit_log(made.prompt_id, limit=1)[0]["id"] == older["id"]


def test_the_hash_reads_the_columns_the_log_writes(client):
    """The hash's fixed columns are the call log's, in the order it writes them (a column added
    later goes after them), and a row reads back as it was given."""
    assert ("id", *calls.COLUMNS[:22]) == integrity.HASHED_CALL_COLUMNS
    row = {"call_id": "x", "model": "m", "latency_ms": 5, "guards": {"input": {"action": "pass"}},
           "flags": ["b", "a"], "cache_hit": True, "status": "ok", "timestamp": "t", "user_id": "u",
           "prompt_id": 3, "prompt_version": 2, "prompt_name": "p", "provider": "openai", "route": "r",
           "operation": "chat", "environment": "prod", "run_id": "run", "cost_usd": 0.25, "error": None,
           "input_tokens": 7, "output_tokens": 8, "source": "api"}
    calls.insert(client.store.db, [(row, None)])
    stored = calls.get(client.store.db, "x")
    assert {k: stored[k] for k in row} == {**row, "flags": ["a", "b"]}
