"""kill -9 in the middle of writes: a label-move loop, a deploy loop, a batch run killed at
several points. Afterwards `PRAGMA integrity_check` is ok, nothing half-written is visible
(every label points where its last recorded move says, every move has its audit row, every
deployment is finished or taken over), the store keeps working, and the run resumes to
exactly N results.

Already covered, and referenced rather than repeated: kill -9 mid save loop
(tests/test_concurrency.py), kill -9 of a deploy held inside its gate
(tests/test_deploy_concurrency.py), kill -9 mid run then `promstack test --resume`
(tests/test_evals_runner.py, which does not check integrity or kill more than once)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from promstack import Client, deploy
from promstack.cli import cli
from promstack.evals import engine
from store import deploy as deploy_rows

from .helpers import integrity_ok, version_invariants

LOOP = textwrap.dedent(
    """
    import itertools, sys
    from promstack import Client, deploy

    kind = sys.argv[1]
    client = Client()
    for i in itertools.count():
        version = 1 + i % 3
        if kind == "label":
            client.set_label("p", "production", version, reason=f"move {i}", force=True)
        else:
            deploy.deploy(client, "p", version=version, env="development", force=True, reason=f"deploy {i}")
        print(i, flush=True)
    """
)
KILLS = 3


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def _kill_after(spawn, db: Path, kind: str, sql: str, at_least: int) -> None:
    proc = spawn([sys.executable, "-c", LOOP, kind], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 env=dict(os.environ))
    deadline = time.monotonic() + 60
    while _count(db, sql) < at_least and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    assert _count(db, sql) >= at_least, "the loop was too slow"
    time.sleep(0.003 * at_least % 0.05)  # a different point in the loop each time
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _labels_consistent(client: Client, db: Path) -> None:
    integrity_ok(db)
    version_invariants(db)
    conn = sqlite3.connect(db, timeout=30)
    try:
        for pid, label, version in conn.execute("SELECT prompt_id, name, version FROM labels"):
            moves = conn.execute("SELECT from_version, to_version FROM label_history WHERE prompt_id = ? "
                                 "AND label = ? ORDER BY id", [pid, label]).fetchall()
            assert moves and moves[-1][1] == version, (label, version, moves[-3:])
            for (_, before), (after_from, _) in zip(moves, moves[1:], strict=False):
                assert after_from == before  # each move starts where the last one ended
        moves = conn.execute("SELECT count(*) FROM label_history").fetchone()[0]
        audited = conn.execute("SELECT count(*) FROM audit WHERE action LIKE '%label%'").fetchone()[0]
        assert audited == moves
    finally:
        conn.close()
    ok, *detail = client.verify_audit()
    assert ok, detail


@pytest.fixture
def three_versions(client):
    client.create_prompt("p", "one {{ x }}")
    client.save("p", "two {{ x }}")
    client.save("p", "three {{ x }}")
    return client


def test_kill_9_mid_label_move(three_versions, isolated_store, spawn):
    client = three_versions
    for k in range(KILLS):
        _kill_after(spawn, isolated_store, "label", "SELECT count(*) FROM label_history", 30 * (k + 1))
        _labels_consistent(client, isolated_store)
    # and the store keeps working
    before = client.labels("p")["production"]
    after = 1 + before % 3
    client.set_label("p", "production", after, reason="after the crashes", force=True)
    assert client.labels("p")["production"] == after
    _labels_consistent(client, isolated_store)


def test_kill_9_mid_deploy_loop(three_versions, isolated_store, spawn):
    client = three_versions
    for k in range(KILLS):
        _kill_after(spawn, isolated_store, "deploy", "SELECT count(*) FROM deployments", 10 * (k + 1))
        _labels_consistent(client, isolated_store)
    # the killed deploy's lock does not block the next one (its process is gone), and every
    # deployment is finished one way or the other once the next deploy has run
    other = 1 + client.labels("p")["development"] % 3
    result = deploy.deploy(client, "p", version=other, env="development", force=True, reason="after the crashes")
    assert result["status"] == "deployed" and client.labels("p")["development"] == other
    statuses = {d["status"] for d in deploy.list_deployments(client, "p")}
    assert statuses <= {"deployed", "abandoned", "failed", "rolled_back"}, statuses
    assert deploy_rows.lock_holder(client.store.db, client.get_prompt("p").prompt_id) is None
    _labels_consistent(client, isolated_store)


def test_a_run_killed_three_times_resumes_to_exactly_n(client, fake_llm, isolated_store, tmp_path, spawn):
    n = 150
    fake_llm.latency = 0.02
    (isolated_store.parent / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{fake_llm.base_url}"\n\n[gateway]\nretry_initial = 0.01\n', encoding="utf-8")
    client.create_prompt("p", "Q: {{ input }}", model_config={"model": "openai/fake-model"})
    rows = "input,expected_output\n" + "".join(f"q{i},contains:echo\n" for i in range(n))
    engine.import_suite(client, text=rows, fmt="csv", name="big", prompt="p")
    promstack = str(Path(sys.executable).with_name("promstack"))
    run_id = None
    for k in range(KILLS):
        args = ["test", "--resume", run_id] if run_id else ["test", "--suite", "big"]
        proc = spawn([promstack, *args, "--concurrency", "4"], cwd=tmp_path, env=dict(os.environ),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        target = 20 * (k + 1)
        deadline = time.monotonic() + 60
        while _count(isolated_store, "SELECT count(*) FROM results") < target and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        integrity_ok(isolated_store)
        conn = sqlite3.connect(isolated_store, timeout=30)
        run_id, status = conn.execute("SELECT id, status FROM runs").fetchone()
        keys = conn.execute("SELECT case_key, model, repeat FROM results").fetchall()
        conn.close()
        assert status == "running" and len(keys) == len(set(keys)) < n
    result = CliRunner().invoke(cli, ["test", "--resume", run_id], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = engine.get_run(client, run_id)
    assert run["status"] == "done" and run["summary"]["results"] == n and run["summary"]["passed"] == n
    assert _count(isolated_store, "SELECT count(*) FROM results") == n
    assert _count(isolated_store, "SELECT count(DISTINCT case_key) FROM results") == n
    integrity_ok(isolated_store)
