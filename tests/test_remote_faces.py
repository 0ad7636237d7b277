"""The faces on a laptop whose store is a team server's (PROMSTACK_URL): the MCP server's tools
read and write the server's prompts, and the file watcher saves prompt files to the server."""

from __future__ import annotations

import time

import pytest
from team_server import serve

from promstack import Client

TOKEN = "laptop-token-of-sixteen-or-more"


@pytest.fixture
def team(spawn, tmp_path):
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    with Client(db) as client:
        client.create_prompt("support/refund", "Refunds: {{ question }}")
    url = serve(spawn, root, token=TOKEN)
    return url


@pytest.fixture
def laptop(team, monkeypatch, tmp_path):
    """No store of its own: PROMSTACK_URL and PROMSTACK_TOKEN name the team's."""
    monkeypatch.delenv("PROMSTACK_DB", raising=False)
    monkeypatch.setenv("PROMSTACK_URL", team)
    monkeypatch.setenv("PROMSTACK_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    return team


@pytest.mark.anyio
async def test_mcp_tools_work_on_the_servers_store(laptop):
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    server = build_server()
    async with MCPClient(server, client_info=Implementation(name="pytest-client", version="1")) as mcp:
        listed = (await mcp.call_tool("list_prompts", {})).structured_content
        assert [p["name"] for p in listed["prompts"]] == ["support/refund"]
        saved = await mcp.call_tool("update_prompt", {"prompt": "support/refund",
                                                      "template": "Refunds, kindly: {{ question }}"})
        assert saved.is_error is False, saved.content
        missing = await mcp.call_tool("get_prompt", {"prompt": "nothing/here"})
        assert missing.is_error and "nothing/here" in missing.content[0].text
        names = [p.name for p in (await mcp.list_prompts()).prompts]
        assert "support/refund" in names
    server.engine.close()
    with Client(url=laptop, token=TOKEN) as client:
        assert client.get_prompt("support/refund").template == "Refunds, kindly: {{ question }}"


def test_file_saves_become_versions_on_the_server(laptop, tmp_path):
    from promstack.remote import FileSaver

    folder = tmp_path / "prompts" / "support"
    folder.mkdir(parents=True)
    (folder / "refund.txt").write_text("Refunds from a file: {{ question }}\n", encoding="utf-8")
    client = Client()
    saver = FileSaver(client, tmp_path / "prompts", interval=0.05)
    made = saver.start()
    try:
        assert [(v.name, v.version) for v in made] == [("support/refund", 2)]
        time.sleep(0.05)
        (folder / "refund.txt").write_text("Refunds, edited: {{ question }}\n", encoding="utf-8")
        deadline = time.monotonic() + 10
        while client.get_prompt("support/refund").version < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        saver.stop()
    assert client.get_prompt("support/refund").template == "Refunds, edited: {{ question }}\n"
    client.close()
