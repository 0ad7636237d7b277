"""`promstack mcp` as a real subprocess over stdio, as Claude Desktop and VS Code start it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import Implementation

pytestmark = pytest.mark.anyio

PROMSTACK = str(Path(sys.executable).with_name("promstack"))


def stdio(db: Path | None, cwd: Path, **env: str) -> StdioServerParameters:
    environment = {"PROMSTACK_USER": "stdio-tester", **env}
    if db is not None:
        environment["PROMSTACK_DB"] = str(db)
    return StdioServerParameters(command=PROMSTACK, args=["mcp"], env=environment, cwd=str(cwd))


async def call(mcp: Client, tool: str, **arguments):
    result = await mcp.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_every_tool_resource_and_prompt_over_stdio(isolated_store, tmp_path):
    params = stdio(isolated_store, tmp_path)
    async with Client(params, mode="legacy", client_info=Implementation(name="stdio-client", version="1")) as mcp:
        assert mcp.server_info.name == "promstack"
        assert len((await mcp.list_tools()).tools) >= 12

        v1 = await call(mcp, "create_prompt", prompt="support/refund", template="환불 절차를 안내하세요: {{ question }}",
                        model_config={"model": "gpt-4o-mini"})
        assert v1["author"] == "stdio-tester" and v1["source"] == "mcp"
        await call(mcp, "update_prompt", prompt="support/refund", template="환불을 친절하게: {{ question }}", message="kinder")
        assert (await call(mcp, "get_prompt", prompt="support/refund"))["version"] == 2
        assert len((await call(mcp, "list_prompts"))["prompts"]) == 1
        assert [v["version"] for v in (await call(mcp, "get_history", prompt="support/refund"))["versions"]] == [2, 1]
        assert (await call(mcp, "diff_versions", prompt="support/refund", from_version=1))["added"] == 1
        await call(mcp, "create_branch", prompt="support/refund", branch="exp")
        await call(mcp, "update_prompt", prompt="support/refund", branch="exp", template="환불: {{ question }}")
        assert (await call(mcp, "merge_branch", prompt="support/refund", branch="exp"))["version"] == 4
        assert (await call(mcp, "set_label", prompt="support/refund", label="production", version=2,
                           force=True, reason="ship it"))["to_version"] == 2
        assert (await call(mcp, "rollback_prompt", prompt="support/refund", version=2))["version"] == 5
        await call(mcp, "delete_prompt", prompt="support/refund")
        await call(mcp, "restore_prompt", prompt="support/refund")

        listing = await mcp.read_resource("promstack://prompts")
        assert json.loads(listing.contents[0].text)[0]["name"] == "support/refund"
        head = await mcp.read_resource("promstack://prompts/support/refund")
        assert json.loads(head.contents[0].text)["version"] == 5
        old = await mcp.read_resource("promstack://prompts/support%2Frefund/versions/1")
        assert json.loads(old.contents[0].text)["model_config"] == {"model": "gpt-4o-mini"}

        rendered = await mcp.get_prompt("support/refund", {"question": "환불 언제 돼요?"})
        assert rendered.messages[0].content.text == "환불을 친절하게: 환불 언제 돼요?"

        bad = await mcp.call_tool("update_prompt", {"prompt": "support/refund", "template": "{{ ''.__class__.__mro__ }}"})
        assert bad.is_error and "private attribute" in bad.content[0].text
        bad = await mcp.call_tool("get_prompt", {"prompt": "support/refund", "version": 77})
        assert bad.is_error and "has no version 77; its newest is 5" in bad.content[0].text
        assert (await call(mcp, "get_prompt", prompt="support/refund"))["version"] == 5  # still serving


async def test_the_modern_protocol_over_stdio(isolated_store, tmp_path, client):
    client.create_prompt("a/b", "hi {{ who }}")
    async with Client(stdio(isolated_store, tmp_path)) as mcp:
        assert mcp.protocol_version == "2026-07-28"
        assert (await call(mcp, "get_prompt", prompt="a/b"))["template"] == "hi {{ who }}"
        assert (await mcp.get_prompt("a/b", {"who": "you"})).messages[0].content.text == "hi you"


async def test_outside_a_workspace_the_tools_say_what_to_do(tmp_path):
    async with Client(stdio(None, tmp_path), mode="legacy") as mcp:
        result = await mcp.call_tool("list_prompts", {})
        assert result.is_error and "promstack init" in result.content[0].text
        # The listings that clients fetch on connect still answer.
        assert [str(r.uri) for r in (await mcp.list_resources()).resources] == ["promstack://prompts"]
