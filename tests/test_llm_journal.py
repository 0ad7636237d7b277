"""A process killed with kill -9 loses no call-log row: the rows it had queued are in its
journal, and the next gateway that opens on the store replays them, each with its audit row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from promstack import Client
from store import audit

CHILD = textwrap.dedent("""
    import sys, time
    from store import calls
    # A store write that never finishes: every row is still queued when the process is killed.
    calls.insert = lambda db, rows: time.sleep(3600)
    from promstack import Client
    client = Client(sys.argv[1])
    for i in range(int(sys.argv[2])):
        client.run("support/refund", {"question": f"q{i}"}, user_id=f"user_{i}", cache=False)
    print("done", flush=True)
    time.sleep(60)
""")


def test_rows_queued_at_a_kill_are_recovered_once(client, fake_llm, isolated_store):
    client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ question }}",
                         model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url})
    client.close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(isolated_store), "25"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done", child.stderr.read()
        with Client(isolated_store) as look:
            assert look.call_log(limit=None) == []  # nothing reached the store before the kill
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    journals = list((isolated_store.parent / "journal").glob("*.jsonl"))
    assert len(journals) == 1 and journals[0].stat().st_size > 0
    with Client(isolated_store) as after:
        assert after.gateway is not None  # a gateway opening on the store replays the journal
        rows = after.call_log(limit=None)
        assert sorted(r["user_id"] for r in rows) == sorted(f"user_{i}" for i in range(25))
        assert all(r["status"] == "ok" and r["prompt_version"] == 1 for r in rows)
        calls_audited = [e for e in after.audit_log(limit=1000) if e["action"] != "create_prompt"]
        assert len(calls_audited) == 25
        assert audit.verify(after.store.db)[0]
    assert not (isolated_store.parent / "journal" / journals[0].name).exists()
    with Client(isolated_store) as again:  # replayed once: a second opening adds nothing
        assert again.gateway is not None
        assert len(again.call_log(limit=None)) == 25


def test_a_drained_writer_leaves_an_empty_journal_and_removes_it_on_close(client, fake_llm, isolated_store):
    client.create_prompt("p", "hi {{ x }}", model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url})
    client.run("p", {"x": "1"})
    client.gateway.flush()
    [journal] = list((isolated_store.parent / "journal").glob("*.jsonl"))
    assert journal.stat().st_size == 0
    client.close()
    assert not journal.exists()


def test_the_lines_of_one_turn_of_a_loop_are_written_together_at_its_end(isolated_store, monkeypatch, tmp_path):
    """Calls that finish in the same turn of the event loop share one journal write, made before
    the loop runs anything else; `flush_journal` (a batch run calls it before committing
    results) writes what is pending at once. Either way a row is journalled before its call's
    result can be stored."""
    import asyncio
    import threading

    from store import calls
    from store.db import connect

    release = threading.Event()
    real_insert = calls.insert
    monkeypatch.setattr(calls, "insert", lambda db, rows: (release.wait(30), real_insert(db, rows))[1])
    writer = calls.CallLogWriter(lambda: connect(isolated_store), journal=tmp_path / "journal")

    def size() -> int:
        return sum(p.stat().st_size for p in (tmp_path / "journal").glob("*.jsonl"))

    def row(i: int) -> dict:
        return {"timestamp": "2026-01-01T00:00:00Z", "model": "m", "input_tokens": 1, "output_tokens": 1,
                "latency_ms": 1.0, "cost_usd": 0.0, "cache_hit": False, "status": "ok", "call_id": f"c{i}",
                "guards": {}}

    async def go() -> None:
        for i in range(3):
            writer.submit(row(i))
        assert size() == 0  # held for the end of this turn
        await asyncio.sleep(0)
        first = size()
        assert first > 0
        writer.submit(row(3))
        writer.flush_journal()  # a results writer's call, from any thread
        assert size() > first

    try:
        asyncio.run(go())
        writer.submit(row(4))  # no loop running: written at once
        assert len([line for p in (tmp_path / "journal").glob("*.jsonl")
                    for line in p.read_text().splitlines()]) == 5
    finally:
        release.set()
        writer.close()
