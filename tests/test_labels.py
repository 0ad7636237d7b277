"""Labels point at versions; every move is kept, so a label's past is answerable and undoable."""

from __future__ import annotations

import pytest
from gates_off import gates_off

from promstack import InvalidInput, NotFound
from store.clock import now


@pytest.fixture
def three(client, isolated_store):
    # Labels as pointers: staging and production without their gates here (those are
    # test_deploy_walkarounds.py's subject: with the default gates these moves are refused).
    gates_off(isolated_store)
    client.create_prompt("p", "v1")
    client.save("p", "v2")
    client.save("p", "v3")
    return client


def test_set_label_and_fetch_by_label(three):
    move = three.set_label("p", "production", 2, reason="release")
    assert (move.label, move.from_version, move.to_version, move.actor, move.reason) == (
        "production", None, 2, "tester", "release",
    )
    assert three.get_prompt("p", label="production").template == "v2"
    assert three.labels("p") == {"latest": 3, "production": 2}
    [listed] = three.list_prompts()
    assert listed.labels == {"latest": 3, "production": 2}


def test_any_label_name_works(three):
    three.set_label("p", "canary/eu-1", 1)
    assert three.get_prompt("p", label="canary/eu-1").version == 1


def test_label_history_records_every_move(three):
    three.set_label("p", "production", 1)
    three.set_label("p", "production", 3, reason="v3 passed tests")
    three.set_label("p", "staging", 2)
    three.remove_label("p", "staging", reason="retired")
    moves = three.label_history("p")
    assert [(m.label, m.from_version, m.to_version) for m in moves] == [
        ("staging", 2, None), ("staging", None, 2), ("production", 1, 3), ("production", None, 1),
    ]
    assert moves[0].reason == "retired" and moves[2].reason == "v3 passed tests"
    assert all(m.actor == "tester" for m in moves)
    assert [m.to_version for m in three.label_history("p", "production")] == [3, 1]
    assert "staging" not in three.labels("p")
    audit = [(a["action"], a["detail"].get("label")) for a in three.audit_log("p")][:4]
    assert audit == [("remove_label", "staging"), ("set_label", "staging"),
                     ("set_label", "production"), ("set_label", "production")]


def test_label_at_a_past_time(clock, three):
    before_any = now()
    clock.advance()
    three.set_label("p", "production", 1)
    moved_to_v1 = now()
    clock.advance()
    at_v1 = now()
    clock.advance()
    three.set_label("p", "production", 2)
    clock.advance()
    at_v2 = now()
    clock.advance()
    three.remove_label("p", "production")
    assert [m.at for m in three.label_history("p", "production")][-1] == moved_to_v1
    assert three.label_at("p", "production", moved_to_v1) == 1  # a move counts from its instant
    assert three.label_at("p", "production", before_any) is None
    assert three.label_at("p", "production", at_v1) == 1
    assert three.label_at("p", "production", at_v2) == 2
    assert three.label_at("p", "production", now()) is None
    # other spellings of the same instant
    assert three.label_at("p", "production", at_v1.replace("Z", "+00:00")) == 1
    with pytest.raises(InvalidInput, match="not a time"):
        three.label_at("p", "production", "yesterday at two")


def test_label_at_with_a_timezone_offset(three):
    three.set_label("p", "production", 1)
    stamp = three.label_history("p")[0].at  # ...Z
    from datetime import datetime, timedelta, timezone

    later = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(microseconds=1)
    in_seoul = later.astimezone(timezone(timedelta(hours=9))).isoformat()
    assert three.label_at("p", "production", in_seoul) == 1


def test_rollback_label_points_back(three):
    three.set_label("p", "production", 1)
    three.set_label("p", "production", 3)
    move = three.rollback_label("p", "production", reason="v3 broke refunds")
    assert (move.from_version, move.to_version, move.reason) == (3, 1, "v3 broke refunds")
    assert three.get_prompt("p", label="production").version == 1
    assert len(three.label_history("p", "production")) == 3
    # the versions themselves are untouched: the label moved, nothing was appended
    assert [v.version for v in three.history("p")] == [3, 2, 1]


def test_rollback_label_with_no_earlier_target(three):
    three.set_label("p", "production", 2)
    with pytest.raises(InvalidInput, match="nothing to roll back"):
        three.rollback_label("p", "production")
    with pytest.raises(NotFound, match="no label 'staging'"):
        three.rollback_label("p", "staging")


def test_revert_as_a_new_version_is_one_call(three):
    three.set_label("p", "production", 1)
    reverted = three.rollback("p", 1)
    assert (reverted.version, reverted.template) == (4, "v1")


def test_version_and_label_together_is_an_error(three):
    three.set_label("p", "production", 1)
    with pytest.raises(InvalidInput, match="version and label"):
        three.get_prompt("p", version=1, label="production")
    with pytest.raises(InvalidInput, match="label and branch"):
        three.get_prompt("p", label="production", branch="main")


def test_unknown_label_is_an_error_listing_the_labels(three):
    three.set_label("p", "production", 1)
    three.set_label("p", "staging", 2)
    with pytest.raises(NotFound) as caught:
        three.get_prompt("p", label="prod")
    message = str(caught.value)
    assert "'prod'" in message
    assert "latest, production, staging" in message


def test_latest_cannot_be_set(three):
    with pytest.raises(InvalidInput, match="latest"):
        three.set_label("p", "latest", 1)


def test_label_on_unknown_version(three):
    with pytest.raises(NotFound, match="no version 9; its newest is 3"):
        three.set_label("p", "production", 9)
    assert three.label_history("p") == []


def test_remove_unknown_label(three):
    with pytest.raises(NotFound, match="no label 'production'"):
        three.remove_label("p", "production")


def test_labels_are_per_prompt(three):
    three.create_prompt("q", "q1")
    three.set_label("p", "production", 3)
    with pytest.raises(NotFound, match="'q' has no label 'production'"):
        three.get_prompt("q", label="production")


def test_live_label_warning_when_a_new_required_variable_appears(three):
    three.set_label("p", "production", 3)
    three.set_label("p", "staging", 3)
    saved = three.save("p", "Hello {{ customer }}")
    assert len(saved.warnings) == 2
    assert all("'customer'" in w for w in saved.warnings)
    assert any("production (version 3)" in w for w in saved.warnings)
    assert any("staging (version 3)" in w for w in saved.warnings)


def test_no_warning_when_the_new_variable_has_a_default_or_no_live_label(three):
    three.set_label("p", "development", 1)
    assert three.save("p", "Hello {{ customer }}").warnings == []  # development is not live
    three.set_label("p", "production", 4)
    # production already requires customer: nothing new
    assert three.save("p", "Hi {{ customer }}").warnings == []
    with_default = three.save(
        "p", "Hi {{ customer }} {{ tone }}",
        model_config={"variables": {"tone": {"default": "warm"}}},
    )
    assert with_default.warnings == []
