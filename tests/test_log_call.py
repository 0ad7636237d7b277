"""`client.log_call(...)`: calls an app reports; over a real `promstack serve` (queued, batched,
retried while the server is away, dropped with a count past the queue's bound) and on a local
store (written at once, the same rows)."""

from __future__ import annotations

import threading

import httpx
import pytest
from team_server import free_port, serve

from promstack import Client
from promstack.reporting import CallReporter, Transient


@pytest.fixture
def senders(monkeypatch):
    """The threads that posted reported calls: `log_call` must never post on the app's own."""
    threads: list[int] = []
    post = httpx.Client.post

    def recorded(self, url, *args, **kwargs):
        if str(url).endswith("/calls"):
            threads.append(threading.get_ident())
        return post(self, url, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "post", recorded)
    return threads


def api_rows(isolated_store):
    with Client(isolated_store) as local:
        return [r for r in local.call_log(limit=None) if r["source"] == "api"]


def start(spawn, isolated_store, port=None):
    Client(isolated_store).close()  # the store exists (migrated) before the server opens it
    procs = []

    def tracked(args, **kwargs):
        procs.append(spawn(args, **kwargs))
        return procs[-1]

    return serve(tracked, isolated_store.parent.parent, port=port), procs[0]


def test_reported_calls_arrive_in_batches(spawn, isolated_store, senders):
    url, _proc = start(spawn, isolated_store)
    with Client(isolated_store) as local:
        local.create_prompt("support/refund", "Refund {{ order }}", model_config={"model": "gpt-4o-mini"})
    client = Client(url=url)
    assert client.remote
    ids = [client.log_call("gpt-4o-mini", prompt_id="support/refund", prompt_version=1, input_tokens=100 + i,
                           output_tokens=20, latency_ms=300, user_id=f"u{i % 3}") for i in range(250)]
    client.log_call("gpt-4o-mini", prompt_id="nobody/here")
    assert client.flush(timeout=20)
    assert senders and threading.get_ident() not in senders  # queued; sent in batches by the reporter's thread
    assert len(senders) < 251
    assert (client.reporter.sent, client.reporter.dropped, client.reporter.rejected) == (251, 0, 0)
    rows = {r["call_id"]: r for r in api_rows(isolated_store)}
    assert len(rows) == 251 and {f"api-{i}" for i in ids} <= set(rows)
    row = rows[f"api-{ids[7]}"]
    assert (row["prompt_name"], row["prompt_version"], row["input_tokens"], row["user_id"]) == (
        "support/refund", 1, 107, "u1")
    assert row["cost_usd"] > 0  # priced by the server
    assert sum(1 for r in rows.values() if r["flags"] == ["unknown_prompt"]) == 1
    client.close()


def test_a_batch_sent_twice_is_stored_once_and_a_bad_row_is_reported_by_index(spawn, isolated_store):
    url, _proc = start(spawn, isolated_store)
    batch = {"calls": [{"model": "m", "call_id": "one"}, {"model": "m", "input_tokens": "lots"},
                       {"model": "m", "call_id": "two"}]}
    first = httpx.post(f"{url}/api/v1/calls", json=batch).json()
    again = httpx.post(f"{url}/api/v1/calls", json=batch).json()
    assert (first["stored"], again["stored"], again["duplicates"]) == (2, 0, 2)
    assert [r["index"] for r in first["rejected"]] == [1] and "input_tokens" in first["rejected"][0]["reason"]
    assert sorted(r["call_id"] for r in api_rows(isolated_store)) == ["api-one", "api-two"]
    client = Client(url=url)
    client.log_call("m", call_id="one")  # already stored: not twice
    client.log_call("m", latency_ms=-1)  # refused by the server: counted, not raised
    assert client.flush(timeout=20)
    assert (client.reporter.sent, client.reporter.rejected) == (1, 1)
    assert len(api_rows(isolated_store)) == 2
    client.close()


def test_the_server_down_then_up(spawn, isolated_store, senders):
    port = free_port()
    url, proc = start(spawn, isolated_store, port=port)
    proc.kill()
    proc.wait()
    client = Client(url=url)
    client.reporter_options = {"backoff": 0.05, "max_backoff": 0.3, "give_up": 60}
    for i in range(30):
        client.log_call("gpt-4o-mini", call_id=f"while-down-{i}", input_tokens=10)
    assert not client.flush(timeout=1)  # the server is away: the rows wait in memory
    assert senders and threading.get_ident() not in senders  # tried, but never on the app's thread
    start(spawn, isolated_store, port=port)
    assert client.flush(timeout=30)
    assert (client.reporter.sent, client.reporter.dropped) == (30, 0)
    assert sorted(r["call_id"] for r in api_rows(isolated_store)) == sorted(f"api-while-down-{i}" for i in range(30))
    client.close()


def test_a_tiny_queue_drops_and_counts_while_the_server_is_away(spawn, isolated_store, senders):
    port = free_port()
    url = f"http://127.0.0.1:{port}"  # nobody there yet
    client = Client(url=url)
    client.reporter_options = {"max_queue": 5, "batch": 5, "backoff": 0.05, "max_backoff": 0.2, "give_up": 60}
    for i in range(50):
        client.log_call("m", call_id=f"c{i}")
    assert client.reporter.dropped >= 40  # bounded memory: at most the queue and one batch in flight
    assert client.reporter.pending() <= 10
    start(spawn, isolated_store, port=port)
    assert client.flush(timeout=30)
    stored = len(api_rows(isolated_store))
    assert stored + client.reporter.dropped == 50 and stored == client.reporter.sent > 0
    assert senders and threading.get_ident() not in senders  # dropping, never blocking the app
    client.close()


def test_a_batch_is_dropped_with_a_count_when_the_server_stays_away():
    def send(batch):
        raise Transient("down")

    reporter = CallReporter(send, give_up=0.3, backoff=0.01, max_backoff=0.05)
    for i in range(3):
        reporter.put({"model": "m", "call_id": str(i)})
    assert reporter.flush(timeout=10)
    assert (reporter.dropped, reporter.sent) == (3, 0)
    reporter.close()


def test_log_call_on_a_local_store(isolated_store):
    with Client(isolated_store) as client:
        client.create_prompt("support/refund", "Refund {{ order }}", model_config={"model": "gpt-4o-mini"})
        call_id = client.log_call("gpt-4o-mini", prompt_id="support/refund", prompt_version=1, input_tokens=1000,
                                  output_tokens=10, latency_ms=12.5, status="error", error="timeout")
        again = client.log_call("gpt-4o-mini", call_id=call_id)  # the same call: stored once
        assert again == call_id
        with pytest.raises(Exception, match="no model"):
            client.log_call("")
    rows = api_rows(isolated_store)
    assert len(rows) == 1 and rows[0]["call_id"] == f"api-{call_id}"
    assert (rows[0]["status"], rows[0]["error"], rows[0]["prompt_version"]) == ("error", "timeout", 1)
    assert rows[0]["cost_usd"] > 0
