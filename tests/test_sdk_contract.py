"""One SDK contract, two transports: every test here runs against the local store and against
a real `promstack serve` over REST (`Client(url=..., token=...)`), with the same results: the
same records (store.models), the same exceptions and the same sentences."""

from __future__ import annotations

import asyncio

import pytest
from team_server import free_port, serve
from test_evals_fake import write_config

from promstack import Client, InvalidInput, MergeConflict, NotFound
from promstack.access import Unauthorized
from promstack.remote import Unreachable
from store.models import Branch, Diff, LabelMove, Prompt, PromptVersion

pytest_plugins = ("test_evals_fake",)
TOKEN = "a-token-of-thirty-two-characters"


@pytest.fixture(params=["local", "remote"])
def sdk(request, isolated_store, spawn, _scripted_server):
    _scripted_server.reset()
    root = isolated_store.parent.parent
    write_config(root, _scripted_server.base_url)
    if request.param == "local":
        client = Client()
    else:
        Client().close()  # the store exists (migrated) before the server opens it
        client = Client(url=serve(spawn, root, token=TOKEN), token=TOKEN)
        assert client.remote
    yield client
    client.close()


def made(sdk, name="support/refund", template="Refund policy: {{ question }}", **kw):
    return sdk.create_prompt(name, template, model_config={"model": "openai/good", "temperature": 0.2},
                             message="first", **kw)


def test_create_get_render(sdk):
    v1 = made(sdk, description="refunds")
    assert isinstance(v1, PromptVersion)
    assert (v1.name, v1.version, v1.branch, v1.created) == ("support/refund", 1, "main", True)
    assert v1.model_config == {"model": "openai/good", "temperature": 0.2}
    assert [v["name"] for v in v1.variables] == ["question"]
    got = sdk.get_prompt("support/refund")
    assert got.sha256 == v1.sha256 and got.message == "first"
    assert sdk.get_prompt(id=v1.prompt_id, version=1).template == "Refund policy: {{ question }}"
    assert got.render(question="why?") == "Refund policy: why?"
    assert sdk.render("support/refund", {"question": "how?"}) == "Refund policy: how?"
    with pytest.raises(InvalidInput, match="question"):
        got.render()


def test_chat_prompt_renders_client_side(sdk):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}]
    v1 = sdk.create_prompt("chat/brief", messages)
    assert v1.kind == "chat" and v1.template == messages
    assert sdk.get_prompt("chat/brief").render(q="hi") == [{"role": "system", "content": "Be brief."},
                                                          {"role": "user", "content": "hi"}]


def test_save_dedupe_history_diff_rollback(sdk):
    made(sdk)
    v2 = sdk.save("support/refund", "Refund policy, kindly: {{ question }}", message="kinder")
    assert (v2.version, v2.created, v2.parent) == (2, True, 1)
    same = sdk.save("support/refund", "Refund policy, kindly: {{ question }}")
    assert (same.version, same.created) == (2, False)
    history = sdk.history("support/refund")
    assert [v.version for v in history] == [2, 1] and all(isinstance(v, PromptVersion) for v in history)
    assert history[0].template == "Refund policy, kindly: {{ question }}"
    diff = sdk.diff("support/refund", 1, 2)
    assert isinstance(diff, Diff) and (diff.added, diff.removed) == (1, 1)
    assert "+Refund policy, kindly" in diff.unified and (1, "kindly") in [(k, t.strip(" ,:")) for k, t in diff.words]
    back = sdk.rollback("support/refund", 1, message="undo")
    assert (back.version, back.source, back.template) == (3, "rollback", "Refund policy: {{ question }}")


def test_list_delete_restore(sdk):
    made(sdk)
    made(sdk, "support/other")
    listed = sdk.list_prompts()
    assert all(isinstance(p, Prompt) for p in listed)
    assert [p.name for p in listed] == ["support/other", "support/refund"] or \
        sorted(p.name for p in listed) == ["support/other", "support/refund"]
    gone = sdk.delete_prompt("support/other")
    assert gone.archived is True
    assert [p.name for p in sdk.list_prompts()] == ["support/refund"]
    assert sdk.restore_prompt("support/other").archived is False


def test_branches_merge_and_conflict(sdk):
    made(sdk)
    branch = sdk.create_branch("support/refund", "kinder")
    assert isinstance(branch, Branch) and branch.head == 1
    sdk.save("support/refund", "Refund policy, kindly: {{ question }}", branch="kinder")
    assert sdk.get_prompt("support/refund").version == 1  # main did not move
    merged = sdk.merge("support/refund", "kinder")
    assert (merged.version, merged.source, merged.template) == (3, "merge", "Refund policy, kindly: {{ question }}")
    assert {b.name for b in sdk.list_branches("support/refund")} == {"main", "kinder"}
    sdk.create_branch("support/refund", "other")
    sdk.save("support/refund", "Refunds A: {{ question }}", branch="other")
    sdk.save("support/refund", "Refunds B: {{ question }}")
    with pytest.raises(MergeConflict) as conflict:
        sdk.merge("support/refund", "other")
    assert conflict.value.conflicts


def test_labels_and_their_history(sdk):
    made(sdk)
    sdk.save("support/refund", "v2 {{ question }}")
    move = sdk.set_label("support/refund", "beta", 1)
    assert isinstance(move, LabelMove) and (move.label, move.to_version) == ("beta", 1)
    sdk.set_label("support/refund", "beta", 2, reason="newer")
    assert sdk.labels("support/refund")["beta"] == 2
    assert sdk.get_prompt("support/refund", label="beta").version == 2
    moves = sdk.label_history("support/refund", "beta")
    assert [(m.from_version, m.to_version) for m in moves][:2] in ([(1, 2), (None, 1)], [(None, 1), (1, 2)])


def test_errors_are_the_same(sdk):
    made(sdk)
    with pytest.raises(NotFound) as missing:
        sdk.get_prompt("nothing/here")
    with pytest.raises(NotFound) as no_version:
        sdk.get_prompt("support/refund", version=7)
    assert "has no version 7; its newest is 1" in str(no_version.value)
    with pytest.raises(NotFound):
        sdk.get_prompt("support/refund", label="production")
    with pytest.raises(InvalidInput):
        made(sdk)  # the name is taken
    with pytest.raises(NotFound):
        sdk.create_branch("support/refund", "x", from_version=9)
    assert "nothing/here" in str(missing.value)


def test_run_and_arun(sdk, _scripted_server):
    made(sdk)
    result = sdk.run("support/refund", {"question": "can I?"})
    assert result.output and result.model == "openai/good" and result.prompt_version == 1
    assert result.input_tokens > 0 and result.cache_hit is False
    again = asyncio.run(sdk.arun("support/refund", {"question": "can I?"}))
    assert again.output == result.output


def test_a_server_that_is_down_or_a_wrong_token(spawn, isolated_store, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable, match=f"^could not reach {url}: connection refused$"):
        Client(url=url).get_prompt("support/refund")
    Client().close()
    served = serve(spawn, isolated_store.parent.parent, token=TOKEN)
    with pytest.raises(Unauthorized, match="token"):
        Client(url=served, token="a-wrong-token-of-32-characters!!").list_prompts()
    monkeypatch.setenv("PROMSTACK_URL", served)
    monkeypatch.setenv("PROMSTACK_TOKEN", TOKEN)
    assert Client().list_prompts() == []  # the environment names the server and the token
    assert not Client(isolated_store).remote  # a store file named is always the local store


def test_two_users_by_their_tokens(spawn, isolated_store):
    """Over a server with tokens, each token's name is the actor of what it writes and its role
    bounds what it may do; neither can claim the other's name."""
    from promstack.access import Forbidden
    from store import tokens
    from store.db import connect

    made(Client())
    db = connect(isolated_store)
    alice, bob = (tokens.create(db, "alice", "viewer", actor="admin"), tokens.create(db, "bob", "editor", actor="admin"))
    db.conn.close()
    url = serve(spawn, isolated_store.parent.parent)
    viewer, editor = Client(url=url, token=alice), Client(url=url, token=bob)
    assert (viewer.actor, editor.actor) == ("alice", "bob")
    assert viewer.get_prompt("support/refund").version == 1  # a viewer reads
    with pytest.raises(Forbidden, match="needs the editor role; the token 'alice' is viewer"):
        viewer.save("support/refund", "Changed by alice")
    saved = editor.save("support/refund", "Changed by bob", author="alice")
    assert saved.author == "bob"  # the token's name, whatever the call claims
    with pytest.raises(Forbidden, match="deployer"):
        editor.set_label("support/refund", "production", saved.version, force=True, reason="try")
    assert [v.author for v in viewer.history("support/refund")][:1] == ["bob"]


def test_the_actor_is_who_the_store_records(sdk, isolated_store):
    """Without tokens, the server writes as its store's default actor, and says so."""
    saved = made(sdk)
    assert sdk.actor == saved.author == Client(isolated_store).actor
