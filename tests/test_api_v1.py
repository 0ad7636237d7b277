"""The REST API under /api/v1 through a real HTTP client against the app: prompts and versions,
branches, merge, labels, the error envelope for each status, 422 naming the field, roles, the
OpenAPI document and the docs page, and the old /api/prompts routes unchanged."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from promstack import access
from promstack.web.app import create_app

V1 = "/api/v1"


@pytest.fixture
def http(isolated_store):
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def as_role(isolated_store, role: str, name: str = "alice") -> TestClient:
    """A client of the server that signs every request with a real token of `role` named `name`."""
    from store import tokens
    from store.db import connect

    db = connect(isolated_store)
    try:
        token = tokens.create(db, name, role, actor="admin")
    finally:
        db.conn.close()
    return TestClient(create_app(isolated_store), base_url="http://127.0.0.1",
                      headers={"Authorization": f"Bearer {token}"})


def error(response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == kind, body
    return body["error"]["message"]


def create(http, name="support/refund", template="Refund {{ order }}", **extra):
    response = http.post(f"{V1}/prompts", json={"name": name, "template": template,
                                                 "model_config": {"model": "gpt-4o-mini"}, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_get_save_history_diff_rollback(http):
    made = create(http, message="first")
    assert (made["name"], made["version"], made["created"], made["model_config"]) == \
        ("support/refund", 1, True, {"model": "gpt-4o-mini"})
    pid = made["prompt_id"]
    saved = http.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "Refund {{ order }} now"})
    assert saved.status_code == 201 and saved.json()["version"] == 2
    same = http.post(f"{V1}/prompts/{pid}/-/versions", json={"template": "Refund {{ order }} now"})
    assert same.status_code == 200 and same.json()["created"] is False
    # by id, by name, by encoded name; version and branch selectors
    assert http.get(f"{V1}/prompts/{pid}?branch=main").json()["version"] == 2
    assert http.get(f"{V1}/prompts/support%2Frefund?version=1").json()["template"] == "Refund {{ order }}"
    history = http.get(f"{V1}/prompts/support/refund/-/history").json()
    assert [v["version"] for v in history["versions"]] == [2, 1] and history["prompt_id"] == pid
    diff = http.get(f"{V1}/prompts/support/refund/-/diff", params={"from_version": 1, "to_version": 2}).json()
    assert diff["added"] == 1 and diff["removed"] == 1 and "+Refund {{ order }} now" in diff["unified"]
    back = http.post(f"{V1}/prompts/support/refund/-/rollback", json={"version": 1, "message": "undo"})
    assert back.status_code == 201 and (back.json()["version"], back.json()["source"]) == (3, "rollback")
    listed = http.get(f"{V1}/prompts").json()["prompts"]
    assert [(p["name"], p["head"]) for p in listed] == [("support/refund", 3)]


def test_a_name_that_looks_like_a_sub_resource_is_still_a_name(http):
    create(http, name="support/history", template="h")
    create(http, name="support", template="s")
    assert http.get(f"{V1}/prompts/support/history?branch=main").json()["name"] == "support/history"
    assert http.get(f"{V1}/prompts/support/-/history").json()["name"] == "support"
    assert http.get(f"{V1}/prompts/support/history/-/history").json()["name"] == "support/history"
    error(http.get(f"{V1}/prompts/support/-/nothing"), 404, "NotFound")


def test_delete_and_restore(http):
    create(http)
    assert http.delete(f"{V1}/prompts/support/refund").json()["archived"] is True
    assert http.get(f"{V1}/prompts").json()["prompts"] == []
    assert [p["name"] for p in http.get(f"{V1}/prompts?include_deleted=true").json()["prompts"]] == ["support/refund"]
    assert http.post(f"{V1}/prompts/support/refund/-/restore").json()["archived"] is False


def test_branches_merge_and_conflict(http):
    create(http, template="line one\nline two\n")
    branch = http.post(f"{V1}/prompts/support/refund/-/branches", json={"branch": "exp"})
    assert branch.status_code == 201 and branch.json()["head"] == 1
    http.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "line one\nline TWO\n", "branch": "exp"})
    names = [b["name"] for b in http.get(f"{V1}/prompts/support/refund/-/branches").json()]
    assert sorted(names) == ["exp", "main"]
    merged = http.post(f"{V1}/prompts/support/refund/-/merge", json={"branch": "exp"})
    assert merged.status_code == 201 and merged.json()["template"] == "line one\nline TWO\n"
    # both sides change the same line: 409, nothing written
    http.post(f"{V1}/prompts/support/refund/-/branches", json={"branch": "b2"})
    http.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "line one\nline 2a\n", "branch": "b2"})
    http.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "line one\nline 2b\n"})
    message = error(http.post(f"{V1}/prompts/support/refund/-/merge", json={"branch": "b2"}), 409, "MergeConflict")
    assert "conflict" in message.lower()


def test_labels_and_their_history(http):
    create(http)
    http.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "v2"})
    moved = http.put(f"{V1}/prompts/support/refund/-/labels/beta/users", json={"version": 1, "reason": "try"})
    assert moved.status_code == 200 and moved.json()["to_version"] == 1 and moved.json()["actor"] == "tester"
    http.put(f"{V1}/prompts/support/refund/-/labels/beta/users", json={"version": 2})
    labels = http.get(f"{V1}/prompts/support/refund/-/labels").json()["labels"]
    assert labels["beta/users"] == 2
    moves = http.get(f"{V1}/prompts/support/refund/-/label-history", params={"label": "beta/users"}).json()
    assert [(m["from_version"], m["to_version"]) for m in moves] == [(1, 2), (None, 1)]
    # production is an environment: gated; forced with a reason it moves
    forced = http.put(f"{V1}/prompts/support/refund/-/labels/production",
                      json={"version": 1, "force": True, "reason": "hotfix"})
    assert forced.status_code == 200, forced.text
    served = http.get(f"{V1}/prompts/support/refund").json()
    assert (served["version"], served["label"]) == (1, "production")
    assert http.get(f"{V1}/prompts/support/refund?label=beta/users").json()["version"] == 2


@pytest.mark.parametrize(("call", "status", "kind", "sentence"), [
    (("get", "/prompts/4242?branch=main", None), 404, "NotFound", "there is no prompt 4242"),
    (("get", "/prompts/support/refnd?branch=main", None), 404, "NotFound", "did you mean 'support/refund'?"),
    (("get", "/prompts/support/refund?version=7", None), 404, "NotFound", "has no version 7; its newest is 1"),
    (("get", "/prompts/support/refund", None), 404, "NotFound", "has no label 'production'"),
    (("get", "/prompts/support/refund?version=1&label=x", None), 400, "InvalidInput", "not version and label"),
    (("post", "/prompts", {"name": "1234", "template": "x"}), 400, "InvalidInput", "is not a valid prompt name"),
    (("put", "/prompts/support/refund/-/labels/production", {"version": 1, "force": True}), 400, "InvalidInput",
     "reason"),
    (("get", "/nowhere", None), 404, "NotFound", "no route GET /api/v1/nowhere"),
    (("delete", "/prompts", None), 405, "MethodNotAllowed", ""),
])
def test_the_error_envelope(http, call, status, kind, sentence):
    create(http)
    method, path, body = call
    response = http.request(method.upper(), V1 + path, json=body)
    assert sentence in error(response, status, kind)


def test_the_message_is_the_sdks_sentence(http, client):
    from store.errors import NotFound

    create(http)
    with pytest.raises(NotFound) as raised:
        client.get_prompt("support/refund", version=9)
    assert error(http.get(f"{V1}/prompts/support/refund?version=9"), 404, "NotFound") == str(raised.value)


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "a"}, "template"),
    ({"name": "a", "template": "x", "colour": 1}, "colour"),
    ({"name": "a", "template": [{"role": "robot", "content": "x"}]}, "template"),
    ({"name": "a", "template": "x", "model_config": "gpt"}, "model_config"),
])
def test_a_body_that_does_not_validate_is_422_naming_the_field(http, body, field):
    message = error(http.post(f"{V1}/prompts", json=body), 422, "ValidationError")
    assert http.post(f"{V1}/prompts", json=body).json()["error"]["field"].startswith(field)
    assert message.startswith(field)


def test_a_bad_query_parameter_is_422_naming_it(http):
    create(http)
    response = http.get(f"{V1}/prompts/support/refund?version=two")
    assert error(response, 422, "ValidationError").startswith("version:")


def test_roles_viewer_reads_but_may_not_write(isolated_store, client):
    client.create_prompt("support/refund", "Refund {{ order }}")
    with as_role(isolated_store, "viewer") as viewer:
        assert viewer.get(f"{V1}/prompts").status_code == 200
        message = error(viewer.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "x"}), 403, "Forbidden")
        assert message == "update prompt needs the editor role; the token 'alice' is viewer"
        assert "runner" in error(viewer.post(f"{V1}/prompts/support/refund/-/run", json={}), 403, "Forbidden")
    with as_role(isolated_store, "editor", "bob") as editor:
        saved = editor.post(f"{V1}/prompts/support/refund/-/versions", json={"template": "by bob"})
        assert saved.json()["author"] == "bob"  # the token's name is the actor
        assert editor.put(f"{V1}/prompts/support/refund/-/labels/beta", json={"version": 2}).status_code == 200
        # an environment's label needs deployer
        message = error(editor.put(f"{V1}/prompts/support/refund/-/labels/production",
                                   json={"version": 2, "force": True, "reason": "r"}), 403, "Forbidden")
        assert "needs the deployer role" in message


def test_unauthorized_and_forbidden_raised_inside_are_401_and_403():
    """The auth middleware answers a bad token itself; one raised by the engine is worded the same."""
    import asyncio

    from promstack.web.rest import _engine_error

    for exc, status in ((access.Unauthorized("the token is expired"), 401), (access.Forbidden("no"), 403)):
        response = asyncio.run(_engine_error(None, exc))
        assert response.status_code == status
        assert response.body.startswith(b'{"error":{"type":"' + type(exc).__name__.encode())


def test_every_route_declares_an_operation_of_the_table(http):
    from fastapi.routing import APIRoute

    from promstack.pool import ClientPool
    from promstack.web.rest import create_api

    api = create_api(ClientPool(None))
    for route in api.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            names = [d.call.__qualname__ for d in route.dependant.dependencies]
            assert any("needs" in n for n in names), route.path


def test_openapi_and_docs(http):
    spec = http.get(f"{V1}/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("get", "/prompts"), ("post", "/prompts"), ("get", "/prompts/{prompt}"), ("delete", "/prompts/{prompt}"),
        ("post", "/prompts/{prompt}/-/versions"), ("post", "/prompts/{prompt}/-/restore"),
        ("get", "/prompts/{prompt}/-/history"), ("get", "/prompts/{prompt}/-/diff"),
        ("post", "/prompts/{prompt}/-/rollback"), ("get", "/prompts/{prompt}/-/branches"),
        ("post", "/prompts/{prompt}/-/branches"), ("post", "/prompts/{prompt}/-/merge"),
        ("get", "/prompts/{prompt}/-/labels"), ("put", "/prompts/{prompt}/-/labels/{label}"),
        ("get", "/prompts/{prompt}/-/label-history"), ("post", "/prompts/{prompt}/-/run"),
        ("get", "/prompts/{prompt}/-/label-at"), ("delete", "/prompts/{prompt}/-/labels/{label}"),
        ("post", "/prompts/{prompt}/-/label-rollback"), ("get", "/prompts/{prompt}/-/dependents"), ("get", "/calls"), ("post", "/calls"),
        ("get", "/prompts/{prompt}/-/checkpoints"), ("get", "/prompts/{prompt}/-/cost/recommend"),
        ("get", "/prompts/{prompt}/-/cost/compare"), ("get", "/prices"), ("post", "/prompts/{prompt}/-/cost/shorter"),
        ("get", "/suites"), ("post", "/suites"), ("put", "/suites/{suite}"), ("get", "/suites/{suite}"),
        ("post", "/runs"), ("get", "/runs"), ("get", "/runs/{run_id}"), ("get", "/runs/{run_id}/detail"), ("post", "/runs/upload"), ("post", "/runs/{run_id}/judge"), ("post", "/arena"),
        ("post", "/arena/matches/{match_id}/votes"), ("post", "/prompts/{prompt}/-/evaluate"),
        ("post", "/prompts/{prompt}/-/bisect"),
        ("post", "/prompts/{prompt}/-/deploy"), ("get", "/prompts/{prompt}/-/deployments"),
        ("get", "/deployments"), ("get", "/deployments/{deployment_id}"),
        ("post", "/deployments/{deployment_id}/approve"), ("post", "/deployments/{deployment_id}/reject"),
        ("post", "/prompts/{prompt}/-/ab"), ("get", "/prompts/{prompt}/-/ab"), ("post", "/prompts/{prompt}/-/ab/stop"),
        ("post", "/prompts/{prompt}/-/rollout"), ("get", "/prompts/{prompt}/-/rollout"),
        ("post", "/prompts/{prompt}/-/rollout/promote"), ("post", "/prompts/{prompt}/-/rollout/abort"),
        ("post", "/rollouts/check"),
        ("get", "/metrics"), ("get", "/alerts"), ("post", "/alerts/check"), ("get", "/alerts/history"),
        ("get", "/costs"), ("get", "/me"),
        ("get", "/prompts/{prompt}/-/checks"),  # the quick checks of saves (issue 21)
    }
    served = {(m, p) for p, methods in paths.items() for m in methods}
    assert served == expected
    assert spec["components"]["schemas"]["PromptVersionResult"]["properties"]["model_config"]
    page = http.get(f"{V1}/docs")
    assert page.status_code == 200 and "/api/v1/prompts/{prompt}/-/history" in page.text
    assert "<script" not in page.text  # offline: no CDN


def test_the_old_read_routes_are_unchanged(http, client):
    client.create_prompt("support/answer", "v1 {{ input }}", id=42)
    client.set_label(42, "production", 1, force=True, reason="set up")
    body = http.get("/api/prompts/42").json()
    assert (body["id"], body["version"], body["label"], body["resolved"]) == (42, 1, "production", None)
    assert "source_template" in body
    assert [p["name"] for p in http.get("/api/prompts").json()["prompts"]] == ["support/answer"]
    assert http.get("/api/prompts/42?version=7").json() == {"error": "prompt 'support/answer' has no version 7; its newest is 1"}
    assert http.get("/api/prompts/42/deployments").status_code == 200
