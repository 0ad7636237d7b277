"""/api/v1 against a real `promstack serve` subprocess over HTTP: create, read by label, a test
run started and polled to completion against the fake LLM, the OpenAPI document, the error
envelope, and the token the server asks for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from test_evals_fake import SEED_CSV, write_config

pytest_plugins = ("test_evals_fake",)
TOKEN = "a-token-of-thirty-two-characters"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(spawn, tmp_path, _scripted_server, isolated_store):
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    write_config(root, _scripted_server.base_url)
    port = _free_port()
    env = {**os.environ, "PROMSTACK_DB": str(db), "PROMSTACK_TOKEN": TOKEN}
    proc = spawn([sys.executable, "-c", "from promstack.cli import main; main()", "serve", "--port", str(port),
                  "--no-watch"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"{base}/healthz", timeout=1, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        yield http
    proc.terminate()


def test_over_a_real_server(server, _scripted_server):
    _scripted_server.reset()
    made = server.post("/prompts", json={"name": "support/answer", "template": "Q: {{ input }}",
                                         "model_config": {"model": "openai/good"}})
    assert made.status_code == 201, made.text
    moved = server.put("/prompts/support/answer/-/labels/production", json={"version": 1, "force": True,
                                                                             "reason": "first"})
    assert moved.status_code == 200, moved.text
    served = server.get("/prompts/support/answer", params={"label": "production"})
    assert served.status_code == 200 and served.json()["version"] == 1
    assert int(served.headers["content-length"]) > 0
    suite = server.put("/suites/regression?prompt=support/answer", content=SEED_CSV.encode(),
                       headers={"Content-Type": "text/csv"})
    assert suite.status_code == 201 and suite.json()["cases"] == 3
    started = server.post("/runs", json={"suite": "regression"})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 30
    while (body := server.get(f"/runs/{run_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert body["status"] == "done" and body["progress"] == {"done": 3, "total": 3}
    assert body["result"]["test"]["results"] == 3
    missing = server.get("/prompts/nothing/-/history")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    spec = server.get("/openapi.json").json()
    assert "/prompts/{prompt}/-/history" in spec["paths"]
    refused = httpx.get(str(server.base_url) + "/prompts")  # no token
    assert refused.status_code == 401
