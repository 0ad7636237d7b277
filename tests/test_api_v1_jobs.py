"""Long REST operations over `promstack serve --workers 2`: a judge pass, an arena and a test run
polled on fresh connections (so either worker answers) until done; a job whose server was
killed reads as failed after a restart; the jobs table's lease and its bound."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from team_server import free_port, serve
from test_evals_fake import SEED_JUDGE, write_config

from promstack import schemas as s
from promstack.client import Client
from store import jobs as rows

pytest_plugins = ("test_evals_fake",)
CASES = 24
SUITE = "input,expected_output\n" + "".join(f'"question {i}?","answer {i}"\n' for i in range(CASES))


@pytest.fixture
def team(spawn, tmp_path, scripted):
    """A workspace routed to the scripted fake LLM, with a prompt and a suite of CASES cases, and
    `start(port=None)`: `promstack serve --workers 2` over it in a process group of its own (a
    killed server takes its workers along); yields (root, start, kill)."""
    from store.workspace import init

    root = tmp_path / "team"
    init(root)
    write_config(root, scripted.base_url)
    groups: list[subprocess.Popen] = []

    def grouped(args, **kwargs):
        proc = spawn(args, start_new_session=True, **kwargs)
        groups.append(proc)
        return proc

    def start(port: int | None = None) -> str:
        return serve(grouped, root, port=port, args=("--workers", "2"))

    def kill(sig: int = signal.SIGKILL) -> None:
        for proc in groups:
            if proc.poll() is None:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=30)
        groups.clear()

    yield root, start, kill
    kill(signal.SIGTERM)


def _get(url: str, path: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1{path}", timeout=30)  # a new connection each time: either worker


def _post(url: str, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/api/v1{path}", timeout=60, **kwargs)


def _setup(url: str) -> None:
    made = _post(url, "/prompts", json={"name": "support/answer", "template": "Q: {{ input }}",
                                        "model_config": {"model": "openai/good"}})
    assert made.status_code == 201, made.text
    suite = httpx.put(f"{url}/api/v1/suites/many?prompt=support/answer", content=SUITE.encode(),
                      headers={"Content-Type": "text/csv"}, timeout=30)
    assert suite.status_code == 201 and suite.json()["cases"] == CASES, suite.text


def _poll(url: str, started: httpx.Response) -> tuple[dict, list[int]]:
    """Poll until done on fresh connections: every poll answers, progress never goes back."""
    assert started.status_code == 202, started.text
    key = started.json()["run_id"]
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while True:
        polled = _get(url, f"/runs/{key}")
        assert polled.status_code == 200, polled.text
        body = polled.json()
        seen.append(body["progress"]["done"])
        assert seen == sorted(seen), seen
        if body["status"] != "running":
            return body, seen
        assert time.monotonic() < deadline, f"{key} did not finish"
        time.sleep(0.02)


def test_judge_arena_and_test_run_polled_over_two_workers(team, scripted):
    root, start, _ = team
    url = start()
    _setup(url)
    tested, _ = _poll(url, _post(url, "/runs", json={"suite": "many", "concurrency": 4}))
    assert tested["status"] == "done" and tested["progress"] == {"done": CASES, "total": CASES}
    run_id = tested["run_id"]

    scripted.latency = 0.03  # long enough for many polls
    judged, seen = _poll(url, _post(url, f"/runs/{run_id}/judge", json={
        "criteria": SEED_JUDGE, "judge_model": "openai/judge", "concurrency": 2}))
    assert judged["status"] == "done", judged
    assert len(seen) > 3 and seen[-1] == CASES
    arena, seen = _poll(url, _post(url, "/arena", json={
        "suite": "many", "models": ["openai/q1", "openai/q3"], "judge_model": "openai/judge", "seed": 4,
        "concurrency": 2}))
    assert arena["status"] == "done", arena
    assert len(seen) > 3

    with Client(root / ".promstack" / "promstack.db") as client:
        made = client.tests.get_run(judged["result"]["run_id"])  # a judge pass makes a run of its own
        assert made["id"] != run_id
        stored = s.GetRunResult(run_id=made["id"], kind="test", test=s.run_result(made))
        assert judged["result"] == stored.model_dump(mode="json")
        assert judged["result"]["test"]["score"] == 100
        scripted.latency = 0
        here = client.tests.judge_run(run_id, SEED_JUDGE, judge_model="openai/judge")  # the same pass, locally
        local = s.GetRunResult(run_id=here["id"], kind="test", test=s.run_result(here)).model_dump(mode="json")
        # the same but its run id, and the note on unpriced calls (the local pass's judge calls
        # come from the gateway's cache)
        same = {**judged["result"]["test"], "run_id": here["id"], "unpriced_note": None}
        assert {**judged["result"], "run_id": here["id"], "test": same} == {**local, "test": {**local["test"], "unpriced_note": None}}
        fought = client.tests.get_run(arena["result"]["run_id"])
        local = s.GetRunResult(run_id=fought["id"], kind="arena", arena=s.arena_result(fought).model_dump())
        assert arena["result"] == local.model_dump(mode="json")
        assert arena["result"]["arena"]["overall"]
        assert client.store.db.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0] == 3


def test_a_killed_servers_job_reads_as_failed_after_restart(team, scripted):
    _, start, kill = team
    port = free_port()
    url = start(port)
    _setup(url)
    tested, _ = _poll(url, _post(url, "/runs", json={"suite": "many", "concurrency": 4}))
    scripted.latency = 0.5  # CASES judge calls one at a time: still running when killed
    started = _post(url, f"/runs/{tested['run_id']}/judge", json={
        "criteria": SEED_JUDGE, "judge_model": "openai/judge", "concurrency": 1})
    assert started.status_code == 202 and started.json()["status"] == "running", started.text
    key = started.json()["run_id"]
    while (before := _get(url, f"/runs/{key}").json())["progress"]["done"] == 0:
        assert before["status"] == "running", before
        time.sleep(0.05)
    assert before["status"] == "running", before
    kill()
    scripted.latency = 0
    url = start(port)
    polled = _get(url, f"/runs/{key}")
    assert polled.status_code == 200, polled.text
    body = polled.json()
    assert body["status"] == "failed" and body["error"] == rows.STOPPED
    assert before["progress"]["done"] <= body["progress"]["done"] < CASES
    finished = _get(url, f"/runs/{tested['run_id']}").json()  # a finished job outlives the restart
    assert (finished["status"], finished["result"]) == ("done", tested["result"])
    # the run itself is still there, and can be judged again
    again, _ = _poll(url, _post(url, f"/runs/{tested['run_id']}/judge", json={
        "criteria": SEED_JUDGE, "judge_model": "openai/judge", "concurrency": 4}))
    assert again["status"] == "done" and again["result"]["test"]["score"] == 100


def test_a_lapsed_lease_reads_as_failed_and_finished_jobs_are_bounded(isolated_store):
    with Client(Path(isolated_store)) as client:
        db = client.store.db
        rows.begin(db, "job_far", "judge", "ana", "elsewhere:1:abcd")  # another host: only the lease counts
        assert rows.find(db, "job_far")["status"] == "running"
        db.execute("UPDATE jobs SET lease_until = ? WHERE id = 'job_far'", [time.time() - 1])
        found = rows.find(db, "job_far")
        assert (found["status"], found["error"]) == ("failed", rows.STOPPED)
        rows.begin(db, "job_here", "arena", "ana", rows.holder())  # this process: alive
        rows.name_run(db, "job_here", "run_x", 7)
        rows.progress(db, "job_here", 5, 7)
        rows.progress(db, "job_here", 3, 7)  # a late write never moves progress back
        by_run = rows.find(db, "run_x")
        assert (by_run["id"], by_run["done"], by_run["total"], by_run["status"]) == ("job_here", 5, 7, "running")
        for i in range(6):
            rows.begin(db, f"job_{i}", "judge", None, rows.holder())
            rows.finish(db, f"job_{i}", "done", result={"n": i})
        rows.prune(db, keep=4)
        kept = {r[0] for r in db.execute("SELECT id FROM jobs").fetchall()}
        # the lapsed job was marked failed, then forgotten with the oldest finished ones
        assert kept == {"job_here", "job_2", "job_3", "job_4", "job_5"}
        assert rows.find(db, "job_5")["result"] == {"n": 5}
