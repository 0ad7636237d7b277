"""Tokens and roles on `promstack serve` (served here on 127.0.0.1 with tokens made; the rule for
any other address is checked on the app, whose bind address is a setting): 401 with a sentence,
403 naming the role, the token's name as the actor, MCP's tools by role, the dashboard's sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from click.testing import CliRunner
from mcp import Client as MCPClient
from mcp.client.streamable_http import streamable_http_client
from starlette.testclient import TestClient
from test_mcp_http import serving

from promstack import Client, access, deploy
from promstack.cli import cli
from promstack.web.app import create_app
from store import tokens
from store.secrets import redact


def make(client: Client, name: str, role: str, **kw) -> str:
    return tokens.create(client.store.db, name, role, actor="admin", **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def team(isolated_store, client) -> dict[str, str]:
    client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ question }}")
    return {name: make(client, name, role) for name, role in (
        ("vic", "viewer"), ("rita", "runner"), ("alice", "editor"), ("bob", "editor"),
        ("dana", "deployer"), ("carl", "deployer"))}


@pytest.fixture
def server(team, isolated_store) -> Iterator[str]:
    with serving(create_app(isolated_store, host="127.0.0.1")) as url:
        yield url


# ---- the store --------------------------------------------------------------------------------


def test_a_token_is_kept_as_a_hash_and_its_audit_rows_never_hold_it(client):
    token = make(client, "alice", "editor")
    assert token.startswith("ps_") and len(token) > 40
    stored = client.store.db.execute("SELECT * FROM tokens").fetchall()
    assert token not in repr(stored) and tokens.digest(token) in repr(stored)
    tokens.revoke(client.store.db, "alice", actor="admin")
    rows = client.store.db.execute("SELECT action, actor, detail FROM audit").fetchall()
    assert [r[0] for r in rows][-2:] == ["token_create", "token_revoke"]
    assert token not in repr(rows)
    # The name of a revoked token may be given to its replacement (the same person).
    assert make(client, "alice", "viewer") != token
    assert [r["state"] for r in tokens.rows(client.store.db)] == ["active", "revoked"]


def test_a_token_is_redacted_from_any_text():
    token = "ps_" + "A" * 43
    assert redact(f"sent {token} and Bearer {token}") == "sent *** and ***"
    assert redact("groups_" + "a" * 40) == "groups_" + "a" * 40  # a word that happens to contain ps_


def test_the_cli_makes_lists_and_revokes_tokens(isolated_store):
    runner = CliRunner()
    made = runner.invoke(cli, ["token", "create", "ci", "--role", "deployer", "--expires", "90d"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("ps_") and "shown this once" in made.stderr
    listed = runner.invoke(cli, ["token", "list"])
    assert "ci" in listed.stdout and "deployer" in listed.stdout and token not in listed.output
    for args, words in ((["create", "ci", "--role", "deployer"], "already a token named 'ci'"),
                        (["create", "x", "--role", "boss"], "unknown role 'boss'"),
                        (["create", "x", "--role", "viewer", "--expires", "soon"], "not a duration"),
                        (["revoke", "nobody"], "no live token named 'nobody'")):
        refused = runner.invoke(cli, ["token", *args])
        assert refused.exit_code == 2 and words in refused.stderr, refused.output
    assert runner.invoke(cli, ["token", "revoke", "ci"]).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["token", "list"]).stdout


# ---- who may come in ------------------------------------------------------------------------------


def test_loopback_without_tokens_is_the_local_person_and_a_token_ends_that(isolated_store, client):
    client.create_prompt("a", "hi")
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        assert http.get("/api/prompts").status_code == 200
        token = make(client, "alice", "viewer")
        refused = http.get("/api/prompts")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "Unauthorized"
        assert "promstack token create" in refused.json()["error"]["message"]
        assert http.get("/api/prompts", headers=bearer(token)).status_code == 200
        tokens.revoke(client.store.db, "alice", actor="admin")
        assert http.get("/api/prompts").status_code == 200  # no live token: one person again


def test_any_other_address_needs_a_token_always(isolated_store, client):
    app = create_app(isolated_store, host="10.1.2.3")  # the bind address is the app's setting
    with TestClient(app, base_url="http://promstack.internal") as http:
        for path in ("/healthz", "/api/prompts", "/prompts", "/mcp"):
            assert http.get(path).status_code == 401, path  # no tokens at all: still nobody
        token = make(client, "vic", "viewer")
        assert http.get("/healthz").status_code == 401
        assert http.get("/healthz", headers=bearer(token)).status_code == 200
        assert http.get("/api/prompts", headers=bearer(token)).status_code == 200


def test_a_wrong_expired_or_revoked_token_gets_401_with_a_sentence(server, client):
    expired = make(client, "old", "admin", expires_at="2020-01-01T00:00:00.000000Z")
    revoked = make(client, "gone", "admin")
    tokens.revoke(client.store.db, "gone", actor="admin")
    for sent, words in ((None, "this server needs a token"),
                        ("ps_" + "x" * 43, "not one this server knows"),
                        ("s3cret-but-not-ours", "not one this server knows"),
                        (expired, "the token 'old' expired"),
                        (revoked, "the token 'gone' was revoked")):
        response = httpx.get(f"{server}/api/prompts", headers=bearer(sent) if sent else {})
        assert response.status_code == 401, sent
        assert response.headers["www-authenticate"].startswith("Bearer")
        error = response.json()["error"]
        assert error["type"] == "Unauthorized" and words in error["message"], error


def test_last_use_is_recorded(server, team, client):
    assert httpx.get(f"{server}/api/prompts", headers=bearer(team["vic"])).status_code == 200
    assert tokens.live(client.store.db, "vic")["last_used_at"] is not None


# ---- MCP over HTTP ----------------------------------------------------------------------------------


def mcp_as(url: str, token: str, *, extra: dict[str, str] | None = None):
    http = httpx.AsyncClient(headers={**bearer(token), **(extra or {})})
    return http, MCPClient(streamable_http_client(f"{url}/mcp", http_client=http))


@pytest.mark.anyio
async def test_a_viewer_sees_only_the_tools_it_may_call(server, team):
    http, mcp = mcp_as(server, team["vic"])
    async with http, mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert {"list_prompts", "get_prompt", "get_history"} <= names
        assert not names & {"update_prompt", "run_prompt", "deploy_prompt", "set_label"}
        assert all(access.NEEDS.get(n, "admin") == "viewer" for n in names)
        refused = await mcp.call_tool("update_prompt", {"prompt": "support/refund", "template": "x"})
        assert refused.is_error and "needs the editor role" in refused.content[0].text
    http, mcp = mcp_as(server, team["dana"])
    async with http, mcp:
        assert "deploy_prompt" in {t.name for t in (await mcp.list_tools()).tools}


@pytest.mark.anyio
async def test_a_runner_calling_deploy_gets_the_role_it_needs(server, team, client):
    http, mcp = mcp_as(server, team["rita"])
    async with http, mcp:
        refused = await mcp.call_tool("deploy_prompt", {"prompt": "support/refund", "version": 1,
                                                        "environment": "staging"})
        assert refused.is_error
        assert "deploy prompt needs the deployer role; the token 'rita' is runner" in refused.content[0].text
    assert "staging" not in client.labels("support/refund")


@pytest.mark.anyio
async def test_an_editor_moves_labels_but_not_an_environments(server, team, client):
    http, mcp = mcp_as(server, team["alice"])
    async with http, mcp:
        ok = await mcp.call_tool("set_label", {"prompt": "support/refund", "label": "canary", "version": 1})
        assert not ok.is_error, ok.content[0].text
        refused = await mcp.call_tool("set_label", {"prompt": "support/refund", "label": "production",
                                                    "version": 1, "force": True, "reason": "now"})
        assert refused.is_error and "needs the deployer role" in refused.content[0].text
    labels = client.labels("support/refund")
    assert labels["canary"] == 1 and "production" not in labels


@pytest.mark.anyio
async def test_two_tokens_write_under_their_own_names(server, team, client):
    for who in ("alice", "bob"):
        # The client calls itself something else and claims a user: neither is the actor.
        http, mcp = mcp_as(server, team[who], extra={"X-User": "mallory", "X-Promstack-User": "mallory"})
        async with http, mcp:
            saved = await mcp.call_tool("update_prompt", {"prompt": "support/refund",
                                                          "template": f"{who}: {{{{ question }}}}"})
            assert not saved.is_error, saved.content[0].text
            assert saved.structured_content["author"] == who
    authors = [v.author for v in client.history("support/refund")]
    assert authors[:2] == ["bob", "alice"]
    actors = [e["actor"] for e in client.audit_log("support/refund", limit=10)]
    assert "alice" in actors and "bob" in actors and "mallory" not in actors and "tester" not in actors[:2]


@pytest.mark.anyio
async def test_self_approval_is_refused_for_the_tokens_owner(server, team, isolated_store):
    (isolated_store.parent / "config.toml").write_text("[environments.production]\napproval = true\n",
                                                       encoding="utf-8")
    http, mcp = mcp_as(server, team["dana"])
    async with http, mcp:
        pending = await mcp.call_tool("deploy_prompt", {"prompt": "support/refund", "version": 1,
                                                        "environment": "production"})
        assert not pending.is_error, pending.content[0].text
    assert pending.structured_content["status"] == "pending_approval"
    with Client(isolated_store) as reader:
        deployment = deploy.list_deployments(reader, "support/refund")[0]
    assert deployment["requested_by"] == "dana"
    # The server acts for a token by its name: the same name cannot approve its own request.
    with Client(isolated_store, actor="dana") as dana, pytest.raises(Exception, match="someone else must approve"):
        deploy.approve(dana, deployment["id"])
    with Client(isolated_store, actor="carl") as carl:
        assert deploy.approve(carl, deployment["id"])["decided_by"] == "carl"


# ---- the dashboard ----------------------------------------------------------------------------------


def test_the_dashboard_signs_in_checks_roles_and_signs_out(server, team, client):
    page = {"Accept": "text/html"}
    with httpx.Client(base_url=server, headers=page) as browser:
        first = browser.get("/prompts")
        assert first.status_code == 401 and 'action="/signin"' in first.text
        wrong = browser.post("/signin", data={"token": "ps_" + "y" * 43, "next": "/prompts"})
        assert wrong.status_code == 401 and "not one this server knows" in wrong.text
        signed = browser.post("/signin", data={"token": team["vic"], "next": "/prompts/1"})
        assert signed.status_code == 303 and signed.headers["location"] == "/prompts/1"
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=" in cookie
        assert "secure" not in cookie  # served over http here; over https it is Secure
        shown = browser.get("/prompts/1")
        assert shown.status_code == 200 and "vic (viewer)" in shown.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text).group(1)
        refused = browser.post("/prompts/1/rollback", data={"version": "1", "csrf": csrf})
        assert refused.status_code == 403 and "needs the editor role" in refused.text
        assert [v.version for v in client.history(1)] == [1]
        out = browser.post("/signout", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/signin"
        assert browser.get("/prompts").status_code == 401


def test_an_editor_writes_from_the_dashboard_under_its_name(server, team, client):
    client.save(1, "v2: {{ question }}")
    with httpx.Client(base_url=server) as browser:
        browser.post("/signin", data={"token": team["alice"], "next": "/prompts/1"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/prompts/1").text).group(1)
        done = browser.post("/prompts/1/rollback", data={"version": "1", "csrf": csrf})
        assert done.status_code == 303
        deploying = browser.post("/prompts/1/deploy", data={"version": "1", "environment": "production",
                                                             "csrf": csrf})
        assert deploying.status_code == 403 and "needs the deployer role" in deploying.text
        moving = browser.post("/prompts/1/label", data={"version": "1", "label": "production", "csrf": csrf})
        assert moving.status_code == 403 and "needs the deployer role" in moving.text
    newest = client.history(1)[0]
    assert (newest.version, newest.author) == (3, "alice")
    assert "production" not in client.labels(1)


def test_a_session_ends_with_its_token_and_cannot_be_forged(server, team, client):
    with httpx.Client(base_url=server) as browser:
        browser.post("/signin", data={"token": team["bob"], "next": "/prompts"})
        assert browser.get("/api/prompts").status_code == 200
        value = browser.cookies["promstack_session"]
        token_id, expires, mac = value.split(".")
        for forged in (f"{int(token_id) - 1}.{expires}.{mac}", f"{token_id}.{int(expires) + 999}.{mac}", "junk"):
            response = httpx.get(f"{server}/api/prompts", cookies={"promstack_session": forged})
            assert response.status_code == 401, forged
        tokens.revoke(client.store.db, "bob", actor="admin")
        assert browser.get("/api/prompts").status_code == 401
