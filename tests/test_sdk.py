"""The Python SDK as the seed uses it: `getPrompt({id: 42, version: 3})`, and finding the store."""

from __future__ import annotations

import pytest

from promstack import Client, NotFound, PromptVersion
from store.workspace import init


def _seed_prompt(client):
    client.create_prompt("support/refund", "고객 질문: {{ question }}", id=42, model_config={"model": "gpt-4o-mini"})
    client.save(42, "고객 질문: {{ question }}\n정중하게 답하세요.")
    client.save(42, "You are a refund agent.\nQuestion: {{ question }}", model_config={"model": "gpt-4o"})


def test_get_prompt_by_id_and_version_as_in_the_seed(client):
    _seed_prompt(client)
    client.save(42, "a fourth version, newer than the one asked for {{ question }}")
    prompt = Client().get_prompt(id=42, version=3)
    assert isinstance(prompt, PromptVersion)
    assert (prompt.prompt_id, prompt.name, prompt.version) == (42, "support/refund", 3)
    assert prompt.template == "You are a refund agent.\nQuestion: {{ question }}"
    assert prompt.model_config == {"model": "gpt-4o"}
    assert prompt.variables == [{"name": "question", "type": "string", "required": True}]
    assert prompt.render(question="환불하고 싶어요") == "You are a refund agent.\nQuestion: 환불하고 싶어요"
    for field in ("prompt_id", "name", "version", "branch", "template", "model_config", "variables",
                  "sha256", "message", "author", "source", "created_at", "created"):
        assert hasattr(prompt, field), field


def test_the_same_call_by_name_and_positional_id(client):
    _seed_prompt(client)
    assert Client().get_prompt("support/refund", version=3).sha256 == client.get_prompt(id=42, version=3).sha256
    assert Client().get_prompt(42, version=3).version == 3
    assert Client().get_prompt(id=42).version == 3  # no selector: head of main


def test_unknown_version_names_the_newest(client):
    _seed_prompt(client)
    with pytest.raises(NotFound, match="'support/refund' has no version 4; its newest is 3"):
        Client().get_prompt(id=42, version=4)


def test_client_finds_the_store_through_promstack_db(isolated_store, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere" / "store.db"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("PROMSTACK_DB", str(elsewhere))
    with Client() as c:
        c.create_prompt("p", "x")
        assert c.store.path == elsewhere
    assert elsewhere.exists()
    assert not isolated_store.exists()


def test_client_finds_the_workspace_by_walking_up(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_DB")
    project = tmp_path / "project"
    deep = project / "src" / "app" / "prompts"
    deep.mkdir(parents=True)
    db = init(project)
    with Client(db) as c:
        c.create_prompt("support/refund", "x", id=42)
    monkeypatch.chdir(deep)
    with Client() as c:
        assert c.store.path.resolve() == db.resolve()
        assert c.get_prompt(id=42).name == "support/refund"


def test_the_nearest_workspace_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_DB")
    outer = init(tmp_path / "outer")
    inner = init(tmp_path / "outer" / "inner")
    (tmp_path / "outer" / "inner" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "outer" / "inner" / "sub")
    with Client(inner) as c:
        c.create_prompt("inner-only", "x")
    with Client() as c:
        assert c.store.path.resolve() == inner.resolve() != outer.resolve()
        assert [p.name for p in c.list_prompts()] == ["inner-only"]


def test_no_workspace_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_DB")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotFound, match="promstack init"):
        Client()


def test_init_is_idempotent_and_ignores_the_store_in_git(tmp_path):
    first = init(tmp_path)
    assert init(tmp_path) == first
    assert (first.parent / ".gitignore").read_text() == "*\n"


def test_render_through_the_client(client):
    _seed_prompt(client)
    assert client.render(42, {"question": "hi"}, version=1) == "고객 질문: hi"


def test_the_engine_services_are_public_lazy_properties_of_the_client(isolated_store):
    import subprocess
    import sys

    from store.evals import EvalStore

    with Client(isolated_store) as c:
        assert isinstance(c.evals, EvalStore) and c.evals is c.evals
        assert c.resolver is c.resolver
        c.flush_calls()  # nothing ran: nothing to flush, and no gateway is started for it
        c.forget_resolved()
    # made on first use only: a client that only reads prompts imports neither
    code = ("import sys; from promstack import Client; c = Client(); c.list_prompts(); c.flush_calls(); "
            "c.forget_resolved(); print(any(m.startswith(('promstack.gateway', 'promstack.deploy')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_label_move_through_the_client_drops_its_resolver_cache(client):
    client.create_prompt("t/p", "one")
    client.save("t/p", "two")
    client.set_label("t/p", "canary", 1)
    assert client.get_prompt("t/p", label="canary", user_id="u1").version == 1
    from promstack import deploy

    client.set_label("t/p", "canary", 2)
    deploy.forget(client)
    assert client.get_prompt("t/p", label="canary", user_id="u1").version == 2
