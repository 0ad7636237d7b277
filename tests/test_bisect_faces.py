"""Bisect and the behaviour diff through every face: the MCP tools (in memory), the REST API with
its roles, and a remote client (and the CLI) over a real `promstack serve`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mcp import Client as MCPClient
from mcp_types import Implementation
from starlette.testclient import TestClient
from team_server import serve
from test_behaviour import CASES as BEHAVIOUR_CASES
from test_behaviour import MODEL, V1, V2
from test_bisect import make_prompt
from test_evals_fake import write_config

from mcp_server.server import build_server
from promstack import Client
from promstack.cli import cli
from promstack.web.app import create_app

pytest_plugins = ("test_evals_fake",)
API = "/api/v1"
TOKEN = "bisect-token-of-sixteen-or-more"


def two_versions(client, root):
    client.create_prompt("support/two", V1, model_config={"model": MODEL})
    client.save("support/two", V2, model_config={"model": MODEL}, message="reword")
    folder = root / "tests" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "two.json").write_text(json.dumps(BEHAVIOUR_CASES), encoding="utf-8")
    (folder / "two.yml").write_text("prompt: support/two\njudge_model: openai/judge\n", encoding="utf-8")


# ---- MCP ----------------------------------------------------------------------------------------


@pytest.fixture
async def mcp(isolated_store):
    server = build_server(isolated_store)
    async with MCPClient(server, client_info=Implementation(name="pytest-client", version="1")) as found:
        yield found
    server.engine.close()


@pytest.mark.anyio
async def test_mcp_bisect_prompt_and_diff_with_behaviour(mcp, client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=11)
    two_versions(client, tmp_path)
    result = await mcp.call_tool("bisect_prompt", {"prompt": "support/bot", "case": "refund"})
    assert not result.is_error, result.content[0].text
    found = result.structured_content
    assert (found["culprit"], found["parent"], found["found"]) == (11, 10, True)
    assert len(found["tested"]) <= 5 and found["model_calls"] == len(found["tested"])
    text = result.content[0].text
    assert text.startswith("v11 of 'support/bot' (main) broke case 0") and "Why: contains" in text
    assert "+Support answer, revision 11." in text
    narrowed = await mcp.call_tool("bisect_prompt", {"prompt": "support/bot", "case": "0", "good": 12})
    assert narrowed.structured_content["found"] is False
    assert "already fails at v12" in narrowed.content[0].text
    diffed = await mcp.call_tool("diff_versions", {"prompt": "support/two", "from_version": 1, "to_version": 2,
                                                   "behaviour": True})
    assert not diffed.is_error, diffed.content[0].text
    behaviour = diffed.structured_content["behaviour"]
    assert behaviour["verdict"] == "B better" and behaviour["cases"][0]["margin"] == 1.0
    assert diffed.structured_content["unified"]  # the text diff is still there
    assert "B (v2) is better on suite 'two'" in diffed.content[0].text
    assert "- case 0 [v1 better, changed 1.00] 'refund me': Quality 3 vs 1." in diffed.content[0].text
    plain = await mcp.call_tool("diff_versions", {"prompt": "support/two", "from_version": 1})
    assert plain.structured_content.get("behaviour") is None


# ---- REST ---------------------------------------------------------------------------------------


def as_role(isolated_store, role: str) -> TestClient:
    from store import tokens
    from store.db import connect

    db = connect(isolated_store)
    try:
        token = tokens.create(db, f"a-{role}", role, actor="admin")
    finally:
        db.conn.close()
    return TestClient(create_app(isolated_store), base_url="http://127.0.0.1",
                      headers={"Authorization": f"Bearer {token}"})


def test_rest_bisect_and_behaviour_diff_with_their_roles(client, scripted, tmp_path, isolated_store):
    make_prompt(client, tmp_path, 8, broke_at=4)
    two_versions(client, tmp_path)
    with as_role(isolated_store, "runner") as http:
        found = http.post(f"{API}/prompts/support/bot/-/bisect", json={"case": "refund"})
        assert found.status_code == 200, found.text
        assert (found.json()["culprit"], found.json()["parent"]) == (4, 3)
        assert found.json()["diff"].startswith("--- ")
        bad = http.post(f"{API}/prompts/support/bot/-/bisect", json={})
        assert bad.status_code == 400 and "not both" in bad.json()["error"]["message"]
        diffed = http.get(f"{API}/prompts/support/two/-/diff", params={"from_version": 1, "behaviour": "true"})
        assert diffed.status_code == 200, diffed.text
        assert diffed.json()["behaviour"]["b_better"] == 2 and diffed.json()["words"]
        other = http.get(f"{API}/prompts/support/bot/-/diff", params={"from_version": 1, "behaviour": "true",
                                                                      "suite": "two"})
        assert other.status_code == 200 and other.json()["behaviour"]["suite"] == "two"  # any suite whose columns fit
        none = http.get(f"{API}/prompts/support/two/-/diff", params={"from_version": 1, "behaviour": "true",
                                                                    "suite": "nope"})
        assert none.status_code == 404 and none.json()["error"]["message"].startswith("there is no test suite 'nope'")
    with as_role(isolated_store, "viewer") as http:
        assert http.get(f"{API}/prompts/support/two/-/diff", params={"from_version": 1}).status_code == 200
        refused = http.get(f"{API}/prompts/support/two/-/diff", params={"from_version": 1, "behaviour": "true"})
        assert refused.status_code == 403 and "needs the runner role" in refused.json()["error"]["message"]
        refused = http.post(f"{API}/prompts/support/bot/-/bisect", json={"case": "refund"})
        assert refused.status_code == 403


# ---- a remote client and the CLI over a real server --------------------------------------------------


@pytest.fixture
def served(spawn, tmp_path, monkeypatch, _scripted_server):
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    _scripted_server.reset()
    write_config(root, _scripted_server.base_url)
    with Client(db) as local:
        make_prompt(local, root, 16, broke_at=7)
        two_versions(local, root)
    url = serve(spawn, root, token=TOKEN)
    monkeypatch.chdir(tmp_path)
    return url, db, _scripted_server


def test_remote_client_and_cli_over_a_server(served, monkeypatch):
    from promstack.evals.behaviour import behaviour_diff
    from promstack.evals.bisect import bisect

    url, db, scripted = served
    with Client(url=url, token=TOKEN) as remote:
        found = bisect(remote, "support/bot", case="refund")
        assert (found["culprit"], found["parent"], found["found"]) == (7, 6, True)
        diffed = behaviour_diff(remote, "support/two", 1, 2)
        assert diffed["verdict"] == "B better" and len(diffed["cases"]) == 5
    with Client(db) as local:  # the server's store kept the runs the diff made
        assert {r["prompt_version"] for r in local.list_runs(suite="two")} == {1, 2}
    before = sum(scripted.counts.values())
    monkeypatch.delenv("PROMSTACK_DB", raising=False)
    env = {"PROMSTACK_URL": url, "PROMSTACK_TOKEN": TOKEN}
    out = CliRunner().invoke(cli, ["bisect", "support/bot", "--case", "refund", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["model_calls"] == 0 and sum(scripted.counts.values()) == before
    shown = CliRunner().invoke(cli, ["diff", "support/two", "1", "2", "--behaviour"], env=env)
    assert shown.exit_code == 0 and shown.output.startswith("B (v2) is better on suite 'two'")


# ---- the dashboard's Behaviour tab ---------------------------------------------------------------


def test_dashboard_diff_page_has_a_behaviour_tab(client, scripted, tmp_path, isolated_store):
    import re

    two_versions(client, tmp_path)
    client.create_prompt("untested", "Hi {{ input }}", model_config={"model": MODEL})
    client.save("untested", "Hello {{ input }}", model_config={"model": MODEL})
    two = client.get_prompt("support/two").prompt_id
    lonely = client.get_prompt("untested").prompt_id
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as browser:
        text_tab = browser.get(f"/prompts/{two}/diff?a=1&b=2")
        assert text_tab.status_code == 200 and 'id="behaviour-tab"' in text_tab.text and 'id="diff-left"' in text_tab.text
        tab = browser.get(f"/prompts/{two}/diff?a=1&b=2&tab=behaviour")
        assert tab.status_code == 200 and 'id="behaviour-form"' in tab.text and 'id="behaviour-table"' not in tab.text
        assert '<option value="two"' in tab.text and sum(scripted.counts.values()) == 0  # showing it runs nothing
        csrf = re.search(r'name="csrf" value="([^"]+)"', tab.text).group(1)
        forged = browser.post(f"/prompts/{two}/diff/behaviour", data={"a": "1", "b": "2", "csrf": "forged"})
        assert forged.status_code == 403 and sum(scripted.counts.values()) == 0
        shown = browser.post(f"/prompts/{two}/diff/behaviour", data={"a": "1", "b": "2", "suite": "", "csrf": csrf})
        assert shown.status_code == 200, shown.text
        assert "B (v2) is better on suite &#39;two&#39;" in shown.text
        rows = re.findall(r'<tr class="case behaviour-(\w+)">', shown.text)
        assert rows[:3] in (["a", "b", "b"], ["b", "a", "b"], ["b", "b", "a"]) and rows[3:] == ["tie", "tie"]
        assert "A first: a, B first: a" in shown.text and "Quality 3 vs 1." in shown.text
        none = browser.post(f"/prompts/{lonely}/diff/behaviour", data={"a": "1", "b": "2", "csrf": csrf})
        assert none.status_code == 200 and 'id="behaviour-error"' in none.text
        assert "no test suite is tied to prompt" in none.text


@pytest.mark.anyio
async def test_mcp_bisect_reports_progress_per_version(mcp, client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=3)
    seen = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    result = await mcp.call_tool("bisect_prompt", {"prompt": "support/bot", "case": "refund"},
                                 progress_callback=on_progress)
    assert result.structured_content["culprit"] == 3
    assert [d for d, _, _ in seen] == list(range(1, len(result.structured_content["tested"]) + 1))
    assert all(total == 5 for _, total, _ in seen)
    assert seen[-1][2].startswith(f"versions tested: {len(seen)} of at most 5 (v")
