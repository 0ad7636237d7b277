"""Prompts that never fail to load, with real processes: a `promstack serve`, a slow-able TCP proxy
in front of it (tests/slow_proxy.py), and an app process reading prompts in a loop
(tests/prompt_app.py) while the server is killed, restarted, and made slow. Zero failed
`get_prompt` calls; after the first fetch no call waits on the network (none takes a tenth of the
proxy's delay: a structural bound, not a timing figure; bench/bench_prompt_cache.py measures)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gates_off import gates_off
from slow_proxy import SlowProxy
from team_server import free_port, serve

from promstack import Client
from promstack.deploy import abtest

HERE = Path(__file__).resolve().parent
DELAY = 5.0  # the slow server: every chunk held this long, so a call that waited on it shows


@pytest.fixture
def workspace(tmp_path):
    """'support/answer' v1-v3: production -> 2; staging -> 3 with an A/B test serving 1 to 40 %."""
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    gates_off(db)
    with Client(db) as client:
        client.create_prompt("support/answer", "v1 {{ input }}")
        client.save("support/answer", "v2 {{ input }}")
        client.save("support/answer", "v3 {{ input }}")
        client.set_label("support/answer", "production", 2)
        client.set_label("support/answer", "staging", 3)
        abtest.start(client, "support/answer", a=3, b=1, split=40, env="staging")
        expected = {f"user-{i}": [client.get_prompt("support/answer", label="staging", user_id=f"user-{i}").version]
                    for i in range(50)}
    return root, expected


APPS = {"python": [sys.executable, str(HERE / "prompt_app.py")], "typescript": ["node", str(HERE / "prompt_app.mjs")]}


def start_app(spawn, command: list[str], url: str, tmp_path: Path) -> subprocess.Popen:
    app = spawn([*command, url, "--ttl", "0.2", "--retry", "0.5"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PROMSTACK_CACHE_DIR": str(tmp_path / "app-cache")})
    assert app.stdout.readline().strip() == "ready", app.stderr.read()
    return app


def say(app: subprocess.Popen, line: str) -> None:
    app.stdin.write(line + "\n")
    app.stdin.flush()


@pytest.mark.parametrize("sdk", ["python", "typescript"])
def test_an_app_never_fails_to_load_a_prompt_while_the_server_dies_restarts_and_crawls(sdk, spawn, workspace, tmp_path):
    if sdk == "typescript" and shutil.which("node") is None:
        pytest.skip("the TypeScript app needs node")
    root, expected = workspace
    servers: list[subprocess.Popen] = []

    def tracked(*args, **kwargs):
        servers.append(spawn(*args, **kwargs))
        return servers[-1]

    port = free_port()
    serve(tracked, root, port=port)
    with SlowProxy(port) as proxy:
        app = start_app(spawn, APPS[sdk], proxy.url, tmp_path)
        time.sleep(1.0)
        say(app, "phase down")
        servers[-1].kill()
        servers[-1].wait()
        time.sleep(2.5)
        serve(tracked, root, port=port)  # restarted where it was
        say(app, "phase restarted")
        time.sleep(2.0)
        say(app, "phase slow")
        proxy.delay = DELAY
        time.sleep(DELAY + 1.5)
        proxy.delay = 0.0
        say(app, "phase recovered")
        time.sleep(DELAY + 2.0)  # a refresh sent while it crawled may still be on its way back
        say(app, "stop")
        out, err = app.communicate(timeout=30)
    report = json.loads(out.strip().splitlines()[-1])
    phases = report["phases"]
    assert set(phases) == {"start", "down", "restarted", "slow", "recovered"}, phases
    assert report["errors"] == [] and sum(p["failed"] for p in phases.values()) == 0, report["errors"]
    assert all(p["calls"] > 50 for p in phases.values()), phases
    # no call after the first fetch waited on the network: none took a tenth of the proxy's delay
    assert max(p["max"] for p in phases.values()) < DELAY / 10, phases
    # while the server was away or crawling, the cached copy was served (stale), then fresh again
    assert phases["down"]["served"].get("stale", 0) > 0 and phases["slow"]["served"].get("stale", 0) > 0, phases
    assert phases["recovered"]["served"].get("fresh", 0) > 0, phases
    # each user kept their A/B arm through it all, the arm the server itself gives them
    assert report["versions"] == expected
    assert "serving the copy fetched" in err and "answers again" in err
