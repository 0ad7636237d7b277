"""The REST API's prompt reads (what the TypeScript SDK calls) and the resolver's TTL cache."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from promstack import Client
from promstack.deploy import abtest
from promstack.web.app import create_app


@pytest.fixture
def store(client, isolated_store):
    client.create_prompt("shared/tone", "톤: 정중하게.")
    client.create_prompt("support/answer", "v1 {{ input }}", id=42)
    client.save(42, "v2 {% include 'shared/tone' %} {{ input }}")
    client.save(42, "v3 {{ input }}")
    # The subject is reading labels: they are put in place forced (these versions have no suite)
    client.set_label(42, "production", 2, force=True, reason="set up the reads")
    client.set_label(42, "staging", 3, force=True, reason="set up the reads")
    return isolated_store


@pytest.fixture
def http(store):
    with TestClient(create_app(store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_default_is_production_and_includes_are_expanded(http):
    body = http.get("/api/prompts/42").json()
    assert (body["id"], body["version"], body["label"], body["resolved"]) == (42, 2, "production", None)
    assert body["template"] == "v2 톤: 정중하게. {{ input }}"
    assert body["source_template"] == "v2 {% include 'shared/tone' %} {{ input }}"
    assert http.get("/api/prompts/support/answer?version=1").json()["template"] == "v1 {{ input }}"
    assert http.get("/api/prompts/42?label=latest").json()["version"] == 3
    assert http.get("/api/prompts/42?branch=main").json()["version"] == 3
    names = [p["name"] for p in http.get("/api/prompts").json()["prompts"]]
    assert names == ["shared/tone", "support/answer"]


@pytest.mark.parametrize(("query", "status", "sentence"), [
    ("/api/prompts/42?version=3&label=production", 400, "give one of version, label or branch, not version and label"),
    ("/api/prompts/42?version=two", 400, "version is a whole number"),
    ("/api/prompts/42?colour=red", 400, "unknown parameter 'colour'"),
    ("/api/prompts/4242", 404, "there is no prompt 4242"),
    ("/api/prompts/support/answr", 404, "did you mean 'support/answer'?"),
    ("/api/prompts/42?version=7", 404, "has no version 7; its newest is 3"),
    ("/api/prompts/42?label=canary", 404, "has no label 'canary'"),
])
def test_errors_are_json_sentences(http, query, status, sentence):
    response = http.get(query)
    assert response.status_code == status
    assert sentence in response.json()["error"]


def test_ab_arms_resolve_per_user(http, store):
    with Client(store) as client:
        abtest.start(client, 42, a=3, b=1, split=50, force=True, reason="set up the arms")
        expected = {f"u{i}": client.get_prompt(42, label="staging", user_id=f"u{i}").version for i in range(40)}
    got = {u: http.get(f"/api/prompts/42?label=staging&user_id={u}").json() for u in expected}
    assert {u: b["version"] for u, b in got.items()} == expected
    assert {b["resolved"]["arm"] for b in got.values()} == {"a", "b"}
    assert http.get("/api/prompts/42?label=staging").json()["version"] == 3


def test_the_token_is_required_when_set(store):
    with TestClient(create_app(store, token="s3cret"), base_url="http://127.0.0.1") as http:
        assert http.get("/api/prompts/42").status_code == 401
        ok = http.get("/api/prompts/42", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["version"] == 2
    with TestClient(create_app(store), base_url="http://127.0.0.1") as http:
        assert http.get("/api/prompts/42", headers={"Origin": "https://evil.example"}).status_code == 403


def test_resolved_labels_are_cached_for_the_ttl(store, client):
    (store.parent / "config.toml").write_text("[deploy]\ncache_ttl = 3600\n", encoding="utf-8")
    with Client(store) as app:
        assert app.get_prompt(42, label="production", user_id="u1").version == 2
        client.set_label(42, "production", 1, force=True, reason="move")  # another connection moves the label
        assert app.get_prompt(42, label="production", user_id="u1").version == 2  # cached
        assert app.get_prompt(42, label="production").version == 1  # without a user id: read through
        from promstack import deploy

        deploy.forget(app)
        assert app.get_prompt(42, label="production", user_id="u1").version == 1
    (store.parent / "config.toml").write_text("[deploy]\ncache_ttl = 0\n", encoding="utf-8")
    with Client(store) as app:
        assert app.get_prompt(42, label="production", user_id="u1").version == 1
        client.set_label(42, "production", 3, force=True, reason="move")
        assert app.get_prompt(42, label="production", user_id="u1").version == 3
