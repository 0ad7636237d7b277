"""`promstack serve`'s app over real HTTP (uvicorn on a free 127.0.0.1 port): an MCP client on
/mcp, /healthz, refusal of foreign Origins and Hosts (DNS rebinding), and the token."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import uvicorn
from click.testing import CliRunner
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from promstack.cli import cli
from promstack.web.app import create_app, is_local_origin, is_loopback

TOKEN = "s3cret-token"
INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def local(isolated_store, client) -> Iterator[str]:
    client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ question }}")
    with serving(create_app(isolated_store, host="127.0.0.1")) as url:
        yield url


@pytest.fixture
def networked(isolated_store, client) -> Iterator[str]:
    """The app as `promstack serve --host 0.0.0.0 --token ...` builds it (served on loopback here:
    tests never open a port to the network)."""
    client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ question }}")
    with serving(create_app(isolated_store, host="0.0.0.0", token=TOKEN)) as url:
        yield url


@pytest.mark.anyio
async def test_an_mcp_client_is_answered_on_mcp(local):
    async with Client(f"{local}/mcp") as mcp:
        tools = {t.name for t in (await mcp.list_tools()).tools}
        assert {"get_prompt", "update_prompt", "set_label"} <= tools
        got = await mcp.call_tool("get_prompt", {"prompt": "support/refund"})
        assert not got.is_error and got.structured_content["version"] == 1
        bad = await mcp.call_tool("get_prompt", {"prompt": "support/refund", "version": 5})
        assert bad.is_error and "has no version 5" in bad.content[0].text
        saved = await mcp.call_tool("update_prompt", {"prompt": "support/refund", "template": "환불: {{ question }}"})
        assert saved.structured_content["author"] == "tester"
        prompts = await mcp.list_prompts()
        assert [p.name for p in prompts.prompts] == ["support/refund"]


@pytest.mark.anyio
async def test_a_handshake_era_client_is_answered_on_mcp(local):
    async with Client(f"{local}/mcp", mode="legacy") as mcp:
        assert mcp.server_capabilities.prompts.list_changed is True
        assert not (await mcp.call_tool("list_prompts", {})).is_error


def test_healthz(local):
    response = httpx.get(f"{local}/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1.evil.example", "null",
                                    "http://localhost.evil.example:8787"])
def test_a_foreign_origin_is_refused(local, origin):
    for method, path in (("POST", "/mcp"), ("GET", "/healthz")):
        response = httpx.request(method, f"{local}{path}", headers={**MCP_HEADERS, "Origin": origin},
                                 json=INIT if method == "POST" else None)
        assert response.status_code == 403, (path, response.text)
        assert "Origin not allowed" in response.text


def test_a_local_origin_is_served(local):
    port = local.rsplit(":", 1)[1]
    response = httpx.post(f"{local}/mcp", headers={**MCP_HEADERS, "Origin": f"http://localhost:{port}"}, json=INIT)
    assert response.status_code == 200, response.text


def test_a_rebound_host_is_refused(local):
    response = httpx.get(f"{local}/healthz", headers={"Host": "attacker.example:8787"})
    assert response.status_code == 421


def test_a_network_bind_needs_the_token_on_every_request(networked):
    assert httpx.get(f"{networked}/healthz").status_code == 401
    assert httpx.get(f"{networked}/healthz", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(f"{networked}/mcp", headers=MCP_HEADERS, json=INIT).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{networked}/healthz", headers=auth).status_code == 200
    # Any Host may reach a networked server, but a foreign Origin is still refused.
    assert httpx.get(f"{networked}/healthz", headers={**auth, "Host": "promstack.internal:8787"}).status_code == 200
    assert httpx.get(f"{networked}/healthz", headers={**auth, "Origin": "http://evil.example"}).status_code == 403


@pytest.mark.anyio
async def test_an_mcp_client_with_the_token_is_served(networked):
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        Client(streamable_http_client(f"{networked}/mcp", http_client=http)) as mcp,
    ):
        assert not (await mcp.call_tool("get_prompt", {"prompt": "support/refund"})).is_error


def test_no_token_no_network_bind(isolated_store, monkeypatch):
    monkeypatch.delenv("PROMSTACK_TOKEN", raising=False)
    monkeypatch.delenv("PROMSTACK_SERVE_TOKEN", raising=False)
    # The app bound to the network without a token refuses everything (tests/test_auth.py);
    # the command will not start a server nobody could use.
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "promstack token create NAME --role admin" in result.stderr


def test_what_counts_as_local():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", ""))
    assert is_local_origin("http://localhost:3000") and is_local_origin("https://127.0.0.1")
    assert not any(is_local_origin(o) for o in ("null", "file://", "http://localhost:bad", "vscode-webview://x"))
