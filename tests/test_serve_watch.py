"""The watcher runs inside `promstack serve` (when prompts/ exists) and `promstack mcp --watch`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from promstack import Client
from store.workspace import init


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_prompt(db: Path, name: str, proc: subprocess.Popen, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        with Client(db) as client:
            found = [p for p in client.list_prompts() if p.name == name]
        if found:
            return found[0].head
        time.sleep(0.1)
    raise AssertionError(f"{name} was not versioned within {seconds} s")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    root = tmp_path / "project"
    db = init(root)
    (root / "prompts" / "support").mkdir(parents=True)
    monkeypatch.setenv("PROMSTACK_DB", str(db))
    return root, db


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from promstack.cli import main; main()", *args],
        cwd=cwd, env=os.environ.copy(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("command", [["serve", "--port", "PORT"], ["mcp", "--watch"]], ids=["serve", "mcp"])
def test_a_saved_file_is_versioned_while_the_server_runs(workspace, command):
    root, db = workspace
    args = [str(_free_port()) if a == "PORT" else a for a in command]
    proc = _start(args, root)
    try:
        # Saves after start-up and the reconcile pass: retry the write until the watcher is up.
        target = root / "prompts" / "support" / "refund.prompt.md"
        deadline = time.monotonic() + 20
        head = None
        while head is None and time.monotonic() < deadline:
            target.write_text("---\nmodel: gpt-4o-mini\n---\n환불 절차를 안내하세요: {{ question }}\n", encoding="utf-8")
            try:
                head = _wait_for_prompt(db, "support/refund", proc, seconds=2)
            except AssertionError as exc:
                if "exited" in str(exc) or proc.poll() is not None:
                    raise
        assert head == 1
        target.write_text("---\nmodel: gpt-4o-mini\n---\n환불 절차를 친절히 안내하세요: {{ question }}\n", encoding="utf-8")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with Client(db) as client:
                if client.get_prompt("support/refund").version == 2:
                    break
            time.sleep(0.1)
        with Client(db) as client:
            found = client.get_prompt("support/refund")
        assert found.version == 2 and found.source == "file:prompts/support/refund.prompt.md"
        assert found.model_config == {"model": "gpt-4o-mini"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_without_a_prompts_folder_serves_without_watching(tmp_path, monkeypatch):
    root = tmp_path / "bare"
    db = init(root)
    monkeypatch.setenv("PROMSTACK_DB", str(db))
    port = _free_port()
    proc = _start(["serve", "--port", str(port)], root)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"watching" not in err and b"serving" in err


def test_mcp_watch_of_a_missing_folder_is_a_clear_error(workspace):
    root, _ = workspace
    proc = _start(["mcp", "--watch", "nowhere"], root)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert b"there is no folder" in err and b"Traceback" not in err
