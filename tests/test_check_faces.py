"""The quick check of a save, end to end through each face: the watcher (a real `promstack
watch` process), MCP (get_history and get_prompt carry it; a finished check is announced), the
REST API and the dashboard, and a real `promstack serve` with the remote client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient
from team_server import serve
from test_check import BAD, CSV, GOOD, WAIT_S, wait_for, write_check_config
from test_evals_fake import write_config

from promstack import Client
from promstack.evals import check
from promstack.evals.catalog import import_suite

pytest_plugins = ("test_evals_fake",)  # the scripted fake model


def tie_suite(client: Client, prompt_id: int) -> None:
    import_suite(client, text=CSV, fmt="csv", name="regression", prompt=prompt_id,
                 config={"judge_model": "openai/judge"})


def test_the_watcher_checks_a_saved_file_and_says_so(scripted, isolated_store, tmp_path, prompts_dir, spawn):
    write_check_config(tmp_path, "[check]\ndebounce_s = 0\n")
    with Client(isolated_store) as client:
        client.check_mode = "none"
        made = client.create_prompt("answer", "Answer: {{ input }}", model_config=GOOD)
        tie_suite(client, made.prompt_id)
    (prompts_dir / "answer.txt").write_text("Answer well: {{ input }}")
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store)}
    proc = spawn([sys.executable, "-c", "from promstack.cli import main; main()", "watch", "--debounce", "0.05"],
                 cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Client(isolated_store) as client:
            client.check_mode = "none"
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline and client.get_prompt("answer").version < 2:
                time.sleep(0.05)
            saved = client.get_prompt("answer")
            assert saved.template == "Answer well: {{ input }}"
            found = wait_for(client, "answer", saved.version)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert found.status == "checked" and found.parent_version == 1 and found.sample == 6
    assert f"checked  answer v{saved.version}  {found.text}" in out


@pytest.mark.anyio
async def test_mcp_get_history_and_get_prompt_carry_the_check(scripted, isolated_store, tmp_path):
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    write_check_config(tmp_path, "[check]\ndebounce_s = 0\n")
    with Client(isolated_store) as client:
        client.check_mode = "none"
        made = client.create_prompt("answer", "Answer: {{ input }}", model_config=GOOD)
        tie_suite(client, made.prompt_id)
    server = build_server(isolated_store, poll_seconds=3600)
    try:
        async with MCPClient(server, client_info=Implementation(name="pytest", version="1")) as mcp:
            saved = await mcp.call_tool("update_prompt", {"prompt": "answer", "model_config": BAD})
            assert not saved.is_error, saved.content[0].text
            number = saved.structured_content["version"]
            # The save's own answer says its check is under way (or, on a fast machine, done).
            queued = saved.structured_content["check"]
            assert queued["status"] in ("pending", "checked") and f"Check: {queued['text']}" in saved.content[0].text
            history = await _checked_history(mcp, number)
            newest = history["versions"][0]
            assert newest["version"] == number and newest["check"]["status"] == "checked"
            assert len(newest["check"]["broke"]) == 6 and newest["check"]["text"].endswith("6 broke)")
            assert history["versions"][-1]["check"]["text"] == "no suite"
            got = await mcp.call_tool("get_prompt", {"prompt": "answer"})
            assert got.structured_content["check"] == newest["check"]
            assert f"Check: {newest['check']['text']}" in got.content[0].text
            # A finished check is news for clients: the next look at the store announces it.
            await server.watch.poll_once()  # takes in the check above (announced, if not already)
            assert await server.watch.poll_once() is False  # nothing new
            assert (await anyio.to_thread.run_sync(save_elsewhere, isolated_store)).status == "checked"
            assert await server.watch.poll_once() is True
    finally:
        server.engine.close()


def save_elsewhere(db) -> check.VersionCheck:
    """A save by another process's client, which the MCP server's own checker finds and checks."""
    with Client(db) as client:
        client.check_mode = "none"
        again = client.save("answer", model_config=GOOD)
        return wait_for(client, "answer", again.version)


async def _checked_history(mcp: Any, number: int) -> dict[str, Any]:
    with anyio.fail_after(WAIT_S):
        while True:
            result = await mcp.call_tool("get_history", {"prompt": "answer"})
            assert not result.is_error, result.content[0].text
            found = result.structured_content
            if found["versions"][0]["check"]["status"] != "pending":
                return found
            await anyio.sleep(0.05)


def test_rest_history_version_checks_and_the_dashboard(scripted, isolated_store, tmp_path):
    from promstack.web.app import create_app

    write_check_config(tmp_path, "[check]\ndebounce_s = 0\n")
    with Client(isolated_store) as client:
        client.check_mode = "none"
        made = client.create_prompt("answer", "Answer: {{ input }}", model_config=GOOD)
        tie_suite(client, made.prompt_id)
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        saved = http.post("/api/v1/prompts/answer/-/versions", json={"model_config": BAD})
        assert saved.status_code == 201, saved.text
        number = saved.json()["version"]
        deadline = time.monotonic() + WAIT_S
        while True:  # the server's own checker (beside its scheduled checks) picks the save up
            history = http.get("/api/v1/prompts/answer/-/history").json()
            if history["versions"][0]["check"]["status"] != "pending" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        newest = history["versions"][0]["check"]
        assert newest["status"] == "checked" and len(newest["broke"]) == 6
        version = http.get(f"/api/v1/prompts/answer?version={number}").json()
        assert version["check"] == newest
        checks = http.get(f"/api/v1/prompts/answer/-/checks?versions={number},1").json()
        assert checks["checks"][str(number)] == newest and checks["checks"]["1"]["status"] == "no_suite"
        bad = http.get("/api/v1/prompts/answer/-/checks?versions=two")
        assert bad.status_code == 400 and "comma-separated" in bad.json()["error"]["message"]
        page = http.get(f"/prompts/{made.prompt_id}")
        assert page.status_code == 200 and newest["text"] in page.text and "broke: " in page.text


def test_a_team_server_checks_a_remote_save(scripted, spawn, tmp_path, monkeypatch):
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    write_config(root, scripted.base_url)
    write_check_config(root, "[check]\ndebounce_s = 0\n")
    with Client(db) as client:
        client.check_mode = "none"
        made = client.create_prompt("answer", "Answer: {{ input }}", model_config=GOOD)
        tie_suite(client, made.prompt_id)
    url = serve(spawn, root)
    remote = Client(url=url)
    saved = remote.save("answer", model_config=BAD)
    deadline = time.monotonic() + WAIT_S
    while True:
        found = remote.version_checks("answer", [saved.version])[saved.version]
        if found.status != "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert found.status == "checked" and len(found.broke) == 6
    assert found.text == check.wording(found)
    assert remote.version_checks("answer", []) == {}
