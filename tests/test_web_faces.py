"""The HTTP faces' plumbing: one client pool serves the dashboard, the REST API and MCP, and the
engine's errors reach people and programs through the app's exception handlers (a page for a
person, JSON for a program), with the status codes each route had."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient


@pytest.fixture
def workspace(isolated_store):
    from promstack import Client

    with Client(isolated_store) as client:
        client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ input }}")
    return isolated_store


def test_one_client_pool_serves_every_face_of_the_app(workspace, monkeypatch):
    from promstack import pool as pool_module
    from promstack.web.app import create_app

    made: list[pool_module.ClientPool] = []
    borrowed: list[tuple[int, str | None]] = []
    init, acquire = pool_module.ClientPool.__init__, pool_module.ClientPool.acquire

    def recording_init(self, *a, **k):
        made.append(self)
        init(self, *a, **k)

    def recording_acquire(self, actor=None):
        borrowed.append((id(self), actor))
        return acquire(self, actor)

    monkeypatch.setattr(pool_module.ClientPool, "__init__", recording_init)
    monkeypatch.setattr(pool_module.ClientPool, "acquire", recording_acquire)
    app = create_app(workspace)
    assert len(made) == 1  # not one per face
    with TestClient(app, base_url="http://127.0.0.1") as web:
        assert web.get("/prompts").status_code == 200
        assert web.get("/api/prompts").json()["prompts"][0]["name"] == "support/refund"
    assert {p for p, _ in borrowed} == {id(made[0])}
    assert {a for _, a in borrowed} >= {None, "api"}


def test_the_mcp_server_uses_the_pool_it_is_given(workspace):
    from mcp_server.server import build_server
    from promstack.pool import ClientPool

    pool = ClientPool(workspace)
    server = build_server(workspace, pool=pool)
    assert server.engine.pool is pool
    server.engine.close()  # the pool's owner closes it, not the engine
    with pool.client("x") as client:
        assert client.list_prompts()[0].name == "support/refund"
    pool.close()


def test_a_pool_lends_a_client_to_one_borrower_at_a_time(workspace):
    from promstack.pool import ClientPool

    pool = ClientPool(workspace)
    with pool.client("a") as first, pool.client("a") as second:
        assert first is not second
    with pool.client("a") as again:
        assert again in (first, second)  # given back, lent again
        assert again.actor == "a"
    pool.close()
    with pool.client("a") as late:  # after close: still works, closed when given back
        assert late.list_prompts()


@pytest.mark.parametrize(("path", "status", "words"), [
    # pages: the error page
    ("/prompts/999", 404, "999"),
    ("/prompts/1/diff?a=x", 400, "a must be a version number"),
    ("/runs/compare?a=r1", 400, "choose two runs to compare"),
    ("/runs/no-such-run", 404, "no-such-run"),
    ("/runs/no-such-run/live", 404, "no-such-run"),
    ("/arena/no-such-run", 404, "no-such-run"),
    ("/monitoring?since=yesterday-ish", 400, "yesterday-ish"),
    # routes for programs: JSON
    ("/api/prompts/no/such", 404, "no/such"),
    ("/api/prompts/1?version=1&label=production", 400, "give one of version, label or branch"),
    ("/api/prompts/1?colour=red", 400, "unknown parameter 'colour'"),
    ("/api/prompts/1?version=0", 400, "version is a whole number"),
    ("/api/prompts/no/such/deployments", 404, "no/such"),
    ("/runs/no-such-run/live.json", 404, "no-such-run"),
])
def test_an_engine_error_is_a_page_for_people_and_json_for_programs(workspace, path, status, words):
    from promstack.web.app import create_app, is_json_path

    with TestClient(create_app(workspace), base_url="http://127.0.0.1") as web:
        response = web.get(path)
    assert response.status_code == status
    if is_json_path(path.partition("?")[0]):
        assert words in response.json()["error"]
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert "That did not work" in response.text and words in response.text
        assert "Content-Security-Policy" in response.headers
