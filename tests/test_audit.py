"""Every mutation writes one audit row in its own transaction; the hash chain shows tampering."""

from __future__ import annotations

import sqlite3

import pytest
from gates_off import gates_off

from promstack import InvalidInput
from store import audit


def _rows(client):
    return list(reversed(client.audit_log(limit=10_000)))  # oldest first


def test_one_audit_row_per_mutation(client, isolated_store):
    gates_off(isolated_store)  # production as a plain label: a gated move adds deployment rows
    expected = []

    def did(action, prompt_id=None, version=None):
        expected.append((action, prompt_id, version))

    v = client.create_prompt("p", "one\n", id=42)
    did("create_prompt", 42, 1)
    client.save("p", "one\ntwo\n")
    did("save", 42, 2)
    client.save("p", "one\ntwo\n")  # a no-op: no row
    client.create_branch("p", "exp")
    did("create_branch", 42, 2)
    client.save("p", "one\ntwo\nthree\n", branch="exp")
    did("save", 42, 3)
    client.save("p", "zero\none\ntwo\n", message="m")
    did("save", 42, 4)
    client.merge("p", "exp")
    did("merge", 42, 5)
    client.rollback("p", 1)
    did("rollback", 42, 6)
    client.set_label("p", "production", 2)
    did("set_label", 42, 2)
    client.set_label("p", "production", 3)
    did("set_label", 42, 3)
    client.rollback_label("p", "production")
    did("set_label", 42, 2)
    client.remove_label("p", "production")
    did("remove_label", 42, None)
    client.delete_prompt("p")
    did("delete_prompt", 42, None)
    client.restore_prompt("p")
    did("restore_prompt", 42, None)
    client.import_({"format": "promstack/1", "prompts": []})
    did("import", None, None)
    rows = _rows(client)
    assert [(r["action"], r["prompt_id"], r["version"]) for r in rows] == expected
    assert all(r["actor"] == "tester" for r in rows)
    assert all(r["at"].endswith("Z") for r in rows)
    assert rows[0]["detail"]["name"] == "p" and rows[0]["detail"]["sha256"] == v.sha256
    assert rows[4]["detail"]["message"] == "m"
    assert rows[7]["detail"] == {"name": "p", "label": "production", "from": None, "to": 2}
    assert client.verify_audit() == (
        True, f"{len(expected)} audit rows, chain intact; 6 versions and 4 label moves match it")


def test_failed_mutations_write_no_audit_row(client):
    client.create_prompt("p", "one")
    client.create_branch("p", "exp")
    before = len(_rows(client))
    for bad in (
        lambda: client.save("p", ""),
        lambda: client.create_prompt("p", "again"),
        lambda: client.set_label("p", "production", 9),
        lambda: client.merge("p", "exp"),
        lambda: client.rollback("p", 1),
    ):
        with pytest.raises(Exception):  # noqa: B017 - which error is tested in test_bad_input
            bad()
    assert len(_rows(client)) == before


def test_audit_log_per_prompt_newest_first(client):
    client.create_prompt("a", "a1")
    client.create_prompt("b", "b1")
    client.save("a", "a2")
    assert [(r["action"], r["version"]) for r in client.audit_log("a")] == [("save", 2), ("create_prompt", 1)]
    assert len(client.audit_log(limit=2)) == 2


def test_actor_is_who_the_client_was_opened_as(isolated_store):
    from promstack import Client

    gates_off(isolated_store)  # production as a plain label
    with Client(isolated_store, actor="deploy-bot") as bot:
        bot.create_prompt("p", "x")
        bot.set_label("p", "production", 1)
    with Client(isolated_store) as me:
        assert [r["actor"] for r in me.audit_log()] == ["deploy-bot", "deploy-bot"]
        assert me.label_history("p")[0].actor == "deploy-bot"
        assert me.get_prompt("p").author == "deploy-bot"


def _tamper(path, sql):
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


def _three_rows(client):
    client.create_prompt("p", "one")
    client.save("p", "two")
    client.save("p", "three")
    return [r["id"] for r in _rows(client)]


def test_verify_detects_an_edited_row(client, isolated_store):
    ids = _three_rows(client)
    _tamper(isolated_store, f"UPDATE audit SET actor = 'mallory' WHERE id = {ids[1]}")
    ok, message = client.verify_audit()
    assert not ok
    assert f"audit row {ids[1]} (save" in message and "edited" in message


def test_verify_detects_an_edited_detail(client, isolated_store):
    ids = _three_rows(client)
    _tamper(isolated_store, f"UPDATE audit SET detail = '{{}}' WHERE id = {ids[0]}")
    ok, message = client.verify_audit()
    assert (ok, f"audit row {ids[0]} " in message) == (False, True)


def test_verify_detects_a_deleted_row(client, isolated_store):
    ids = _three_rows(client)
    _tamper(isolated_store, f"DELETE FROM audit WHERE id = {ids[1]}")
    ok, message = client.verify_audit()
    assert not ok
    assert f"audit row {ids[2]} does not follow" in message and "deleted" in message


def test_verify_detects_a_rehashed_row_that_breaks_the_chain(client, isolated_store):
    """An edit that recomputes its own row's plain hash is caught at that row: the chain is keyed."""
    ids = _three_rows(client)
    db = client.store.db
    cursor = db.execute("SELECT * FROM audit WHERE id = ?", [ids[0]])
    row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    row["actor"] = "mallory"
    forged = audit._digest(row["prev_hash"], row)
    _tamper(isolated_store, f"UPDATE audit SET actor = 'mallory', hash = '{forged}' WHERE id = {ids[0]}")
    ok, message = client.verify_audit()
    assert not ok and f"audit row {ids[0]} (create_prompt" in message and "edited" in message


def test_audit_rows_are_written_in_the_same_transaction(client, monkeypatch):
    """If the audit row cannot be written, the version is not written either."""
    client.create_prompt("p", "one")

    def broken(*args, **kwargs):
        raise InvalidInput("audit unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(InvalidInput, match="audit unavailable"):
        client.save("p", "two")
    monkeypatch.undo()
    assert [v.version for v in client.history("p")] == [1]
    assert client.get_prompt("p").template == "one"
