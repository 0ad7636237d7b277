"""Two `promstack deploy` processes of the same prompt: exactly one wins, the other is told who
holds the prompt, and the label moves once. A deploy killed mid-gate moves nothing, and the next
one takes its lock over. The first process is held inside its gate by the scripted model
(it answers only when the test says so), so the overlap is certain, not a matter of timing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from test_deploy_fixtures import _scripted_server, respond, scripted, workspace  # noqa: F401 - fixtures

from promstack import Client, deploy
from store import deploy as deploy_rows

CLI = [sys.executable, "-c", "from promstack.cli import main; main()"]


@pytest.fixture
def held(workspace, scripted, client):  # noqa: F811
    """v2 exists; the model answers only once `release` is set."""
    client.save(42, "다른 버전: {{ input }}", message="v2")
    release = threading.Event()

    def blocking(request):
        release.wait(60)
        return respond(request)

    scripted.responder = blocking
    yield release
    release.set()


def wait_for_lock(db_path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(db_path, timeout=5)
        try:
            row = conn.execute("SELECT deployment_id, pid FROM deploy_locks WHERE prompt_id = 42").fetchone()
        except sqlite3.OperationalError:
            row = None
        finally:
            conn.close()
        if row:
            return row
        time.sleep(0.05)
    raise AssertionError("the first deploy never took the lock")


def run(*args, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ), **kwargs)


def test_two_processes_exactly_one_wins(held, isolated_store, spawn):
    first = spawn([*CLI, "deploy", "--prompt", "42", "--version", "1", "--env", "staging", "--json", "-q"],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        wait_for_lock(isolated_store)
        # The second skips the gate: without the lock it would be done long before the first.
        second = run("deploy", "--prompt", "42", "--version", "2", "--env", "staging", "--force")
        assert second.returncode == 1, second.stderr
        assert "is being deployed by tester" in second.stderr and "wait for it to finish" in second.stderr
    finally:
        held.set()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out)["status"] == "deployed"
    with Client(isolated_store) as client:
        assert client.labels(42)["staging"] == 1
        assert len(client.label_history(42, "staging")) == 1
        assert [d["status"] for d in deploy.list_deployments(client, 42)] == ["deployed"]
        assert deploy_rows.lock_holder(client.store.db, 42) is None
        assert client.verify_audit()[0]


def test_a_deploy_killed_mid_gate_moves_nothing(held, isolated_store, spawn):
    first = spawn([*CLI, "deploy", "--prompt", "42", "--version", "2", "--env", "staging", "-q"],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    deployment_id, pid = wait_for_lock(isolated_store)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    held.set()
    with Client(isolated_store) as client:
        assert "staging" not in client.labels(42)
        result = deploy.deploy(client, 42, version=1, env="staging")
        assert result["status"] == "deployed" and client.labels(42)["staging"] == 1
        assert deploy.get_deployment(client, deployment_id)["status"] == "abandoned"
        assert len(client.label_history(42, "staging")) == 1
