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


def test_remove_rollback_and_past_labels(sdk):
    made(sdk)
    sdk.save("support/refund", "v2 {{ question }}")
    sdk.set_label("support/refund", "beta", 1)
    sdk.set_label("support/refund", "beta", 2)
    back = sdk.rollback_label("support/refund", "beta", reason="too soon")
    assert isinstance(back, LabelMove) and (back.from_version, back.to_version, back.reason) == (2, 1, "too soon")
    assert sdk.labels("support/refund")["beta"] == 1
    assert sdk.label_at("support/refund", "beta", "2999-01-01T00:00:00Z") == 1
    assert sdk.label_at("support/refund", "beta", "2000-01-01T00:00:00Z") is None
    gone = sdk.remove_label("support/refund", "beta", reason="done")
    assert isinstance(gone, LabelMove) and (gone.from_version, gone.to_version) == (1, None)
    assert "beta" not in sdk.labels("support/refund")
    with pytest.raises(NotFound) as missing:
        sdk.remove_label("support/refund", "beta")
    with pytest.raises(InvalidInput) as nothing:
        sdk.set_label("support/refund", "alpha", 1)
        sdk.rollback_label("support/refund", "alpha")
    assert "alpha" in str(nothing.value) and "beta" in str(missing.value)


def test_includes_resolved_and_dependents(sdk):
    sdk.create_prompt("shared/tone", "Be kind.")
    sdk.create_prompt("support/refund", "{% include 'shared/tone' %} Refunds: {{ question }}")
    assert sdk.get_prompt("support/refund", resolved=True).template == "Be kind. Refunds: {{ question }}"
    assert sdk.get_prompt("support/refund").template.startswith("{% include")
    assert sdk.dependents("shared/tone") == [{"name": "support/refund", "version": 1, "selector": ""}]
    assert sdk.dependents("support/refund") == []


def test_the_call_log(sdk, _scripted_server):
    made(sdk)
    sdk.run("support/refund", {"question": "late?"}, user_id="u1")
    sdk.run("support/refund", {"question": "lost?"}, user_id="u2")
    rows = sdk.call_log(prompt="support/refund")
    assert [r["user_id"] for r in rows] == ["u2", "u1"] and rows[0]["status"] == "ok"
    assert [r["user_id"] for r in sdk.call_log(user_id="u1", limit=None)] == ["u1"]
    assert sdk.call_log(prompt="support/refund", since="1h", oldest_first=True)[0]["user_id"] == "u1"
    assert sdk.call_log(cache_hit=True) == []
    with pytest.raises(NotFound):
        sdk.call_log(prompt="nothing/here")


def _other_store(path, *, production: bool = False) -> dict:
    """The export of another store: one prompt (with its production label when asked)."""
    with Client(path) as other:
        other.create_prompt("billing/invoice", "Invoice {{ n }}", model_config={"model": "openai/good"}, id=77)
        other.set_label("billing/invoice", "beta", 1)
        if production:
            other.set_label("billing/invoice", "production", 1, force=True, reason="elsewhere")
        return other.export()


def _contents(document: dict) -> list:
    return [(p["name"], [(v["version"], v["sha256"]) for v in p["versions"]], [(b["name"], b["head"]) for b in p["branches"]],
             [(lb["name"], lb["version"]) for lb in p["labels"]]) for p in document["prompts"]]


def test_export_and_import_round_trip(sdk, tmp_path):
    made(sdk)
    sdk.save("support/refund", "v2 {{ question }}", message="second")
    sdk.create_branch("support/refund", "kinder", from_version=1)
    sdk.set_label("support/refund", "beta", 2)
    exported = sdk.export()
    assert exported["format"] == "promstack/1"
    with Client(tmp_path / "laptop.db") as laptop:  # from this store to another
        assert laptop.import_(exported) == {"prompts": 1, "versions": 2, "labels": 1}
        assert _contents(laptop.export()) == _contents(exported)
        assert laptop.get_prompt("support/refund", label="beta").template == "v2 {{ question }}"
    brought = _other_store(tmp_path / "other.db")  # and from another store to this one
    assert sdk.import_(brought) == {"prompts": 1, "versions": 1, "labels": 1}
    assert sdk.get_prompt("billing/invoice", label="beta").model_config == {"model": "openai/good"}
    assert _contents(sdk.export())[-1] == _contents(brought)[0]
    with pytest.raises(InvalidInput, match="format"):
        sdk.import_({"prompts": []})


def test_import_of_a_gated_label_needs_force(sdk, tmp_path):
    document = _other_store(tmp_path / "other.db", production=True)
    with pytest.raises(InvalidInput, match="production") as refused:
        sdk.import_(document)
    assert "billing/invoice" not in [p.name for p in sdk.list_prompts()]  # all or nothing
    with pytest.raises(InvalidInput, match="reason"):
        sdk.import_(document, force=True)
    assert sdk.import_(document, force=True, reason="restore")["prompts"] == 1
    assert {k: v for k, v in sdk.labels("billing/invoice").items() if k != "latest"} == {"beta": 1, "production": 1}
    assert "gated environment" in str(refused.value)


def test_the_audit_log_and_its_check(sdk):
    made(sdk)
    sdk.save("support/refund", "v2 {{ question }}")
    rows = sdk.audit_log("support/refund")
    assert [(r["action"], r["version"]) for r in rows][:2] == [("save", 2), ("create_prompt", 1)]
    assert len(sdk.audit_log(limit=1)) == 1
    ok, message = sdk.verify_audit()
    report = sdk.audit_report()
    assert ok and report.ok and report.problems == () and message == report.message
    assert report.head.startswith(f"{report.count}:")
    assert sdk.audit_report(expect=report.head).ok
    with pytest.raises(InvalidInput, match="not an audit head"):
        sdk.verify_audit(expect="yesterday")
    with pytest.raises(NotFound):
        sdk.audit_log("nothing/here")


def test_roles_for_the_whole_store_and_its_audit_log(spawn, isolated_store, tmp_path):
    """Export is a read (viewer); import changes prompts (editor), and its environment labels
    need deployer; the audit log and its check need deployer."""
    from promstack.access import Forbidden
    from store import tokens
    from store.db import connect

    made(Client())
    db = connect(isolated_store)
    names = {name: tokens.create(db, name, role, actor="admin")
             for name, role in (("vic", "viewer"), ("ed", "editor"), ("dana", "deployer"))}
    db.conn.close()
    url = serve(spawn, isolated_store.parent.parent)
    vic, ed, dana = (Client(url=url, token=names[n]) for n in ("vic", "ed", "dana"))
    assert [p["name"] for p in vic.export()["prompts"]] == ["support/refund"]
    with pytest.raises(Forbidden, match="needs the deployer role; the token 'vic' is viewer"):
        vic.audit_log()
    with pytest.raises(Forbidden, match="deployer"):
        ed.verify_audit()
    with pytest.raises(Forbidden, match="editor"):
        vic.import_(_other_store(tmp_path / "a.db"))
    with pytest.raises(Forbidden, match="deployer"):
        ed.import_(_other_store(tmp_path / "b.db", production=True), force=True, reason="restore")
    assert ed.import_(_other_store(tmp_path / "c.db"))["prompts"] == 1
    assert dana.audit_report().ok
    assert [(r["action"], r["actor"]) for r in dana.audit_log(limit=1)] == [("import", "ed")]


def test_a_prompt_of_a_chosen_id(sdk):
    made = sdk.create_prompt("support/refund", "Refunds {{ q }}", id=42)
    assert (made.prompt_id, sdk.get_prompt(42).name) == (42, "support/refund")
    with pytest.raises(InvalidInput) as taken:
        sdk.create_prompt("support/other", "Other {{ q }}", id=42)
    assert "42" in str(taken.value)
