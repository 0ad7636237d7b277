"""Branches are movable pointers that never move main; merge is a 3-way merge that reports
conflicts and writes nothing when it cannot merge cleanly."""

from __future__ import annotations

import pytest

from promstack import InvalidInput, MergeConflict, NotFound

BASE = "Greet the customer.\nAnswer the question.\nBe polite.\n"


def _versions(client, name="p"):
    return [v.version for v in client.history(name)]


def test_numbers_are_shared_across_branches(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    on_exp = client.save("p", BASE + "Be brief.\n", branch="exp")
    on_main = client.save("p", "Hello.\n" + BASE)
    also_exp = client.save("p", BASE + "Be very brief.\n", branch="exp")
    assert (on_exp.version, on_main.version, also_exp.version) == (2, 3, 4)
    assert (on_exp.branch, on_main.branch, also_exp.branch) == ("exp", "main", "exp")
    assert (on_exp.parent, on_main.parent, also_exp.parent) == (1, 1, 2)
    assert client.get_prompt("p", version=3).template == "Hello.\n" + BASE
    assert _versions(client) == [4, 3, 2, 1]


def test_work_on_a_branch_never_moves_main(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    client.save("p", "changed", branch="exp")
    client.save("p", model_config={"model": "x"}, branch="exp")
    client.rollback("p", 1, branch="exp")
    assert client.get_prompt("p").version == 1
    assert client.get_prompt("p", branch="exp").version == 4
    assert client.labels("p")["latest"] == 1


def test_branch_history_follows_its_ancestry(client):
    client.create_prompt("p", "v1")
    client.save("p", "v2")
    client.create_branch("p", "exp")
    client.save("p", "v3 main")
    client.save("p", "v4 exp", branch="exp")
    client.save("p", "v5 exp", branch="exp")
    assert [v.version for v in client.history("p", branch="exp")] == [5, 4, 2, 1]
    assert [v.version for v in client.history("p", branch="main")] == [3, 2, 1]
    assert [v.version for v in client.history("p", branch="exp", limit=2)] == [5, 4]


def test_create_branch_from_an_old_version(client):
    client.create_prompt("p", "v1")
    client.save("p", "v2")
    b = client.create_branch("p", "old", from_version=1)
    assert (b.head, b.forked_from) == (1, 1)
    assert client.save("p", "v3", branch="old").parent == 1
    assert [x.name for x in client.list_branches("p")] == ["main", "old"]


def test_branch_name_clash_and_unknown_branch(client):
    client.create_prompt("p", "v1")
    client.create_branch("p", "exp")
    with pytest.raises(InvalidInput, match="already has a branch 'exp'"):
        client.create_branch("p", "exp")
    with pytest.raises(NotFound, match="no branch 'nope'"):
        client.save("p", "x", branch="nope")
    with pytest.raises(NotFound, match="no branch 'nope'"):
        client.get_prompt("p", branch="nope")


def test_dedupe_is_against_the_branch_head(client):
    client.create_prompt("p", "v1")
    client.create_branch("p", "exp")
    client.save("p", "v2")
    # exp's head is still v1: saving v1 there is a no-op, saving v2 there is new
    assert client.save("p", "v1", branch="exp").created is False
    assert client.save("p", "v2", branch="exp").created is True


def test_clean_merge_applies_both_sides(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    client.save("p", BASE.replace("Be polite.", "Be polite and brief."), branch="exp")
    client.save("p", BASE.replace("Greet the customer.", "Greet the customer by name."))
    merged = client.merge("p", "exp", message="ship it")
    assert merged.template == "Greet the customer by name.\nAnswer the question.\nBe polite and brief.\n"
    assert (merged.version, merged.branch, merged.source) == (4, "main", "merge")
    assert (merged.parent, merged.merge_parent, merged.message) == (3, 2, "ship it")
    assert client.get_prompt("p").version == 4
    assert client.get_prompt("p", branch="exp").version == 2  # merging does not move the branch
    assert client.audit_log("p")[0]["action"] == "merge"


def test_fast_forward_merge_when_main_did_not_move(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    client.save("p", BASE + "Sign off.\n", branch="exp")
    merged = client.merge("p", "exp")
    assert merged.template == BASE + "Sign off.\n"
    assert merged.merge_parent == 2


def test_conflicting_merge_raises_and_changes_nothing(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    client.save("p", BASE.replace("Be polite.", "Be formal."), branch="exp")
    client.save("p", BASE.replace("Be polite.", "Be casual."))
    before = (client.export(), len(client.audit_log(limit=1000)))
    with pytest.raises(MergeConflict) as caught:
        client.merge("p", "exp")
    message = str(caught.value)
    assert "'exp'" in message and "'main'" in message and "conflict" in message
    assert "formal" in message and "casual" in message
    [conflict] = caught.value.conflicts
    assert conflict["field"] == "template" and conflict["line"] == 3
    assert (client.export(), len(client.audit_log(limit=1000))) == before


def test_identical_edits_on_both_sides_merge_cleanly(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    edited = BASE.replace("Be polite.", "Be polite and brief.")
    client.save("p", edited, branch="exp")
    client.save("p", edited)
    merged = client.merge("p", "exp")
    assert merged.template == edited
    assert merged.merge_parent == 2
    with pytest.raises(InvalidInput, match="nothing to merge"):
        client.merge("p", "exp")


def test_model_config_merges_three_ways(client):
    client.create_prompt("p", BASE, model_config={"model": "gpt-4o", "temperature": 0.2, "max_tokens": 100})
    client.create_branch("p", "exp")
    client.save("p", model_config={"model": "gpt-4o", "temperature": 0.7, "max_tokens": 100}, branch="exp")
    client.save("p", model_config={"model": "gpt-4o-mini", "temperature": 0.2})  # main drops max_tokens
    merged = client.merge("p", "exp")
    assert merged.model_config == {"model": "gpt-4o-mini", "temperature": 0.7}


def test_branch_removing_a_config_key_merges(client):
    client.create_prompt("p", BASE, model_config={"model": "m", "max_tokens": 100})
    client.create_branch("p", "exp")
    client.save("p", model_config={"model": "m"}, branch="exp")
    client.save("p", BASE + "More.\n")
    assert client.merge("p", "exp").model_config == {"model": "m"}


def test_model_config_conflict_names_the_key(client):
    client.create_prompt("p", BASE, model_config={"temperature": 0.2})
    client.create_branch("p", "exp")
    client.save("p", model_config={"temperature": 0.9}, branch="exp")
    client.save("p", model_config={"temperature": 0.0})
    before = client.export()
    with pytest.raises(MergeConflict, match="model_config.temperature") as caught:
        client.merge("p", "exp")
    assert caught.value.conflicts == [
        {"field": "model_config.temperature", "base": 0.2, "ours": 0.0, "theirs": 0.9}
    ]
    assert client.export() == before


def test_merging_a_branch_into_itself_is_an_error(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    with pytest.raises(InvalidInput, match="'exp' into itself"):
        client.merge("p", "exp", into="exp")
    with pytest.raises(InvalidInput, match="'main' into itself"):
        client.merge("p", "main")


def test_nothing_to_merge_is_an_error(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    with pytest.raises(InvalidInput, match="nothing to merge"):
        client.merge("p", "exp")
    client.save("p", BASE + "x\n")  # main moved, the branch did not: still nothing to merge
    with pytest.raises(InvalidInput, match="nothing to merge"):
        client.merge("p", "exp")


def test_merge_twice_after_more_branch_work(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    client.save("p", BASE + "One.\n", branch="exp")
    client.merge("p", "exp")
    client.save("p", BASE + "One.\nTwo.\n", branch="exp")
    client.save("p", "Intro.\n" + BASE + "One.\n")
    merged = client.merge("p", "exp")
    assert merged.template == "Intro.\n" + BASE + "One.\nTwo.\n"


def test_merge_main_into_a_branch(client):
    client.create_prompt("p", BASE)
    client.create_branch("p", "exp")
    client.save("p", "Intro.\n" + BASE)
    client.save("p", BASE + "Outro.\n", branch="exp")
    merged = client.merge("p", "main", into="exp")
    assert merged.branch == "exp"
    assert merged.template == "Intro.\n" + BASE + "Outro.\n"
    assert client.get_prompt("p").template == "Intro.\n" + BASE


def test_merge_of_chat_prompts(client):
    base = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "{{ question }}"},
    ]
    client.create_prompt("chat", base)
    client.create_branch("chat", "exp")
    client.save("chat", [base[0], {"role": "user", "content": "Question: {{ question }}"}], branch="exp")
    client.save("chat", [{"role": "system", "content": "You are helpful and kind."}, base[1]])
    merged = client.merge("chat", "exp")
    assert merged.kind == "chat"
    assert merged.template == [
        {"role": "system", "content": "You are helpful and kind."},
        {"role": "user", "content": "Question: {{ question }}"},
    ]


def test_conflicting_chat_merge_writes_nothing(client):
    base = [{"role": "system", "content": "You are helpful."}]
    client.create_prompt("chat", base)
    client.create_branch("chat", "exp")
    client.save("chat", [{"role": "system", "content": "You are terse."}], branch="exp")
    client.save("chat", [{"role": "system", "content": "You are chatty."}])
    before = client.export()
    with pytest.raises(MergeConflict):
        client.merge("chat", "exp")
    assert client.export() == before
