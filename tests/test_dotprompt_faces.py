"""A Dotprompt prompt through the faces: its media parts as MCP prompt messages."""

from __future__ import annotations

import pytest
from mcp import Client

from mcp_server.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def mcp(isolated_store):
    server = build_server(isolated_store)
    async with Client(server) as client:
        yield client
    server.engine.close()


async def test_media_reaches_an_mcp_prompt_as_a_resource_link(mcp, client):
    client.create_prompt("look", '{{role "user"}}Describe {{media url=photo contentType="image/png"}}',
                         model_config={"template_format": "handlebars"})
    result = await mcp.get_prompt("look", {"photo": "http://example.com/a.png"})
    assert [(m.role, m.content.type) for m in result.messages] == [("user", "text"), ("user", "resource_link")]
    assert result.messages[0].content.text == "Describe "
    link = result.messages[1].content
    assert str(link.uri) == "http://example.com/a.png" and link.mime_type == "image/png"
