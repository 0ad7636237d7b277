"""The version model: immutable versions numbered per prompt, dedupe by hash, rollback appends."""

from __future__ import annotations

import pytest

from promstack import InvalidInput, NotFound


def test_create_prompt_is_version_1_on_main(client):
    v = client.create_prompt(
        "support/refund", "Refund {{ order }}", model_config={"model": "gpt-4o", "temperature": 0.2},
        description="refunds", message="first", author="ana",
    )
    assert (v.version, v.branch, v.name, v.created) == (1, "main", "support/refund", True)
    assert v.template == "Refund {{ order }}"
    assert v.model_config == {"model": "gpt-4o", "temperature": 0.2}
    assert (v.message, v.author, v.source) == ("first", "ana", "sdk")
    assert v.parent is None
    assert len(v.sha256) == 64
    assert v.created_at.endswith("Z")
    [listed] = client.list_prompts()
    assert (listed.id, listed.name, listed.description, listed.head, listed.versions) == (
        v.prompt_id, "support/refund", "refunds", 1, 1,
    )


def test_author_defaults_to_the_actor(client):
    assert client.create_prompt("a", "x").author == "tester"  # PROMSTACK_USER from conftest


def test_every_api_takes_an_id_or_a_name(client):
    v = client.create_prompt("support/refund", "one")
    client.save(v.prompt_id, "two")
    assert client.get_prompt(v.prompt_id).version == 2
    assert client.get_prompt("support/refund").version == 2
    assert client.get_prompt(id=v.prompt_id).version == 2
    assert client.get_prompt(str(v.prompt_id)).version == 2
    assert [h.version for h in client.history(v.prompt_id)] == [2, 1]


def test_saving_appends_a_version_whose_parent_is_the_head(client):
    client.create_prompt("p", "one")
    two = client.save("p", "two", message="shorter")
    three = client.save("p", "three")
    assert (two.version, two.parent, two.message) == (2, 1, "shorter")
    assert (three.version, three.parent) == (3, 2)
    assert client.get_prompt("p").template == "three"
    assert client.get_prompt("p", version=1).template == "one"


def test_saving_identical_content_creates_no_version(client):
    first = client.create_prompt("p", "same", model_config={"model": "m"})
    again = client.save("p", "same")
    assert again.created is False
    assert (again.version, again.sha256) == (1, first.sha256)
    assert [h.version for h in client.history("p")] == [1]
    audit_rows = len(client.audit_log())
    assert client.save("p", "same", model_config={"model": "m"}).created is False
    assert len(client.audit_log()) == audit_rows  # a no-op writes nothing, not even audit


def test_identical_to_an_older_version_is_still_a_new_version(client):
    client.create_prompt("p", "a")
    client.save("p", "b")
    back = client.save("p", "a")
    assert (back.created, back.version) == (True, 3)


def test_a_model_config_only_change_is_a_new_version(client):
    client.create_prompt("p", "text", model_config={"model": "gpt-4o", "temperature": 0.2})
    v2 = client.save("p", model_config={"model": "gpt-4o", "temperature": 0.7})
    assert (v2.created, v2.version, v2.template) == (True, 2, "text")
    assert v2.model_config["temperature"] == 0.7
    assert client.get_prompt("p", version=1).model_config["temperature"] == 0.2
    # and the same config again is a no-op
    assert client.save("p", model_config={"model": "gpt-4o", "temperature": 0.7}).created is False


def test_template_only_change_keeps_the_model_config(client):
    client.create_prompt("p", "one", model_config={"model": "gpt-4o"})
    assert client.save("p", "two").model_config == {"model": "gpt-4o"}


def test_save_with_nothing_new_is_an_error(client):
    client.create_prompt("p", "one")
    with pytest.raises(InvalidInput, match="template"):
        client.save("p")


def test_versions_are_immutable_records(client):
    client.create_prompt("p", "one", model_config={"model": "m"})
    before = client.get_prompt("p", version=1).to_dict()
    client.save("p", "two", model_config={"model": "n"})
    client.rollback("p", 1)
    after = client.get_prompt("p", version=1).to_dict()
    assert before == after


def test_numbers_are_per_prompt(client):
    client.create_prompt("a", "a1")
    client.create_prompt("b", "b1")
    client.save("a", "a2")
    assert client.save("b", "b2").version == 2
    assert client.save("a", "a3").version == 3


def test_content_hash_covers_template_and_config_but_not_message(client):
    a = client.create_prompt("a", "same", model_config={"model": "m"}, message="x")
    b = client.create_prompt("b", "same", model_config={"model": "m"}, message="y", author="other")
    c = client.create_prompt("c", "same", model_config={"model": "n"})
    assert a.sha256 == b.sha256 != c.sha256


def test_latest_is_the_head_of_main(client):
    client.create_prompt("p", "one")
    client.save("p", "two")
    client.create_branch("p", "exp")
    client.save("p", "three on exp", branch="exp")
    assert client.get_prompt("p", label="latest").version == 2
    assert client.get_prompt("p").version == 2
    assert client.labels("p")["latest"] == 2


def test_rollback_appends_a_copy_and_deletes_nothing(client):
    client.create_prompt("p", "one", model_config={"model": "a"})
    client.save("p", "two", model_config={"model": "b"})
    client.save("p", "three")
    back = client.rollback("p", 1)
    assert (back.version, back.source, back.parent) == (4, "rollback", 3)
    assert (back.template, back.model_config) == ("one", {"model": "a"})
    assert back.sha256 == client.get_prompt("p", version=1).sha256
    assert "1" in back.message
    assert [h.version for h in client.history("p")] == [4, 3, 2, 1]
    assert client.get_prompt("p").version == 4
    assert [a["action"] for a in client.audit_log("p")][0] == "rollback"


def test_rollback_with_a_message(client):
    client.create_prompt("p", "one")
    client.save("p", "two")
    assert client.rollback("p", 1, message="bad deploy").message == "bad deploy"


def test_history_is_newest_first_with_a_limit(client):
    client.create_prompt("p", "v1")
    for i in range(2, 8):
        client.save("p", f"v{i}")
    assert [h.version for h in client.history("p")] == [7, 6, 5, 4, 3, 2, 1]
    assert [h.version for h in client.history("p", limit=3)] == [7, 6, 5]
    assert [h.template for h in client.history("p", limit=2)] == ["v7", "v6"]


def test_delete_archives_and_restore_brings_back(client):
    client.create_prompt("keep", "k")
    client.create_prompt("p", "one")
    client.save("p", "two")
    client.set_label("p", "production", 1, force=True, reason="release")  # no suite: forced
    deleted = client.delete_prompt("p")
    assert deleted.archived is True
    assert [p.name for p in client.list_prompts()] == ["keep"]
    assert {p.name for p in client.list_prompts(include_archived=True)} == {"keep", "p"}
    with pytest.raises(NotFound, match="restore"):
        client.get_prompt("p")
    with pytest.raises(NotFound, match="restore"):
        client.save("p", "three")
    with pytest.raises(InvalidInput, match="restore"):
        client.create_prompt("p", "again")
    # archived, not deleted: its history is still readable
    assert [h.version for h in client.history("p")] == [2, 1]
    restored = client.restore_prompt("p")
    assert restored.archived is False
    assert client.get_prompt("p").template == "two"
    assert client.get_prompt("p", label="production").version == 1
    actions = [a["action"] for a in client.audit_log("p")]
    assert actions[:2] == ["restore_prompt", "delete_prompt"]


def test_restoring_a_live_prompt_is_an_error(client):
    client.create_prompt("p", "one")
    with pytest.raises(InvalidInput, match="'p' is not deleted"):
        client.restore_prompt("p")


def test_create_with_an_explicit_id(client):
    v = client.create_prompt("support/refund", "x", id=42)
    assert v.prompt_id == 42
    with pytest.raises(InvalidInput, match="id 42 is taken"):
        client.create_prompt("other", "y", id=42)


def test_names_with_slashes_are_folders_in_listings(client):
    for name in ("support/refund", "support/billing", "sales/intro", "고객지원/환불"):
        client.create_prompt(name, "x")
    assert [p.name for p in client.list_prompts()] == sorted(
        ["support/refund", "support/billing", "sales/intro", "고객지원/환불"]
    )
    assert client.get_prompt("고객지원/환불").version == 1


def test_chat_prompts_save_render_and_dedupe(client):
    messages = [
        {"role": "system", "content": "You are a support agent for {{ shop }}."},
        {"role": "user", "content": "{{ question }}"},
    ]
    v = client.create_prompt("chat", messages)
    assert v.kind == "chat"
    assert v.template == messages
    assert {x["name"] for x in v.variables} == {"shop", "question"}
    assert v.render(shop="Acme", question="Where is my order?") == [
        {"role": "system", "content": "You are a support agent for Acme."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert client.save("chat", [dict(m) for m in messages]).created is False
    # JSON text of the same messages is the same chat prompt
    import json

    assert client.save("chat", json.dumps(messages)).created is False
    changed = client.save("chat", [messages[0], {"role": "user", "content": "Q: {{ question }}"}])
    assert (changed.version, changed.kind) == (2, "chat")
    assert client.get_prompt("chat", version=1).template == messages


def test_a_version_serialises_to_json(client):
    import json

    v = client.create_prompt("p", [{"role": "user", "content": "{{ q }}"}], model_config={"model": "m"})
    data = json.loads(json.dumps(v.to_dict()))
    assert data["version"] == 1 and data["template"] == [{"role": "user", "content": "{{ q }}"}]
    assert "_renderer" not in data
