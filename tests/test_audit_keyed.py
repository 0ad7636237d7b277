"""The keyed audit chain, its head, and the versions and label history checked against it.

Each attack here went unnoticed before the chain was keyed and had a head: someone with write
access to the database file (but not the key) deletes the newest rows, renumbers them, rewrites
the plain hash chain after an edit, or edits the versions and labels tables directly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from gates_off import gates_off

from promstack import Client, InvalidInput
from store import audit
from store.models import content_hash
from store.template import normalize

PROMSTACK = str(Path(sys.executable).parent / "promstack")


@pytest.fixture(autouse=True)
def _labels_as_pointers(isolated_store):
    # production as a plain label here: these tests are about the chain, not the gates (a
    # forced move through a gate is checked against the chain below).
    gates_off(isolated_store)


def _sql(path, *statements):
    conn = sqlite3.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def _history(client):
    client.create_prompt("p", "one", id=42)
    client.save("p", "two")
    client.set_label("p", "production", 1)
    client.save("p", "three")
    client.set_label("p", "production", 2)
    client.set_label("p", "staging", 3)
    return client.audit_report()


def _reopen(path):
    return Client(path)


# ---- truncation: caught against a remembered head ---------------------------------------------


@pytest.mark.parametrize("cut", [
    "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)",
    "DELETE FROM audit WHERE id > (SELECT max(id) - 4 FROM audit)",
    "DELETE FROM audit",
], ids=["newest row", "newest four", "all rows"])
def test_rows_cut_off_the_end_fail_against_the_remembered_head(client, isolated_store, cut):
    _history(client)
    client.delete_prompt("p")
    client.restore_prompt("p")
    report = client.audit_report()
    assert report.ok and report.head == f"{report.count}:{client.audit_log(limit=1)[0]['hash']}"
    _sql(isolated_store, cut)
    with _reopen(isolated_store) as again:
        after = again.audit_report(expect=report.head)
        assert not after.ok and "rows were deleted from its end" in after.message
        assert after.count < report.count


def test_a_chain_that_grew_since_the_head_passes(client):
    head = _history(client).head
    client.save("p", "four")
    assert client.audit_report(expect=head).ok
    assert client.verify_audit(expect=head)[0]


def test_a_rewritten_chain_fails_against_the_head_even_at_the_same_count(client, isolated_store):
    head = _history(client).head
    # Someone holding the key (and so able to rewrite) still cannot match a head kept elsewhere.
    count, _ = audit.parse_head(head)
    assert not client.audit_report(expect=f"{count}:{'0' * 64}").ok
    assert "does not match the head you expected" in client.audit_report(expect=f"{count}:{'0' * 64}").message
    assert client.audit_report(expect=f"{count - 1}:{client.audit_log(limit=2)[1]['hash']}").ok


@pytest.mark.parametrize("bad", ["", "12", "abc:def", "12:" + "g" * 64, "-1:" + "0" * 64, "1:" + "0" * 63])
def test_a_malformed_expected_head_is_one_sentence(client, bad):
    with pytest.raises(InvalidInput, match="is not an audit head; give COUNT:HASH"):
        client.audit_report(expect=bad)


# ---- rewriting: caught by the key ------------------------------------------------------------


def test_renumbered_rows_are_caught(client, isolated_store):
    _history(client)
    _sql(isolated_store, "UPDATE audit SET id = id + 100")
    ok, message = client.verify_audit()
    assert not ok and "audit row 101 stands where row 1 should" in message and "renumbered" in message


def _rechain_plain(path):
    """What an attacker with the file and the old code could do: recompute the plain chain."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    with conn:
        prev = audit.GENESIS
        for number, row in enumerate(list(conn.execute("SELECT * FROM audit ORDER BY id")), 1):
            row = dict(row)
            digest = audit._digest(prev, row)
            conn.execute("UPDATE audit SET id = ?, prev_hash = ?, hash = ? WHERE id = ?",
                         [number, prev, digest, row["id"]])
            prev = digest
    conn.close()


def test_an_edit_and_a_deletion_with_the_plain_chain_recomputed_are_caught(client, isolated_store):
    _history(client)
    _sql(isolated_store, "UPDATE audit SET actor = 'mallory' WHERE id = 2",
         "DELETE FROM audit WHERE id = 3")
    _rechain_plain(isolated_store)
    ok, message = client.verify_audit()
    assert not ok and "audit row 1 (create_prompt" in message and "edited" in message


def test_passing_keyed_rows_off_as_unkeyed_ones_is_caught(client, isolated_store):
    _history(client)
    _sql(isolated_store, "UPDATE audit SET actor = 'mallory' WHERE id = 2")
    _rechain_plain(isolated_store)
    conn = sqlite3.connect(isolated_store)
    count, last = conn.execute("SELECT count(*), (SELECT hash FROM audit ORDER BY id DESC LIMIT 1) FROM audit").fetchone()
    conn.close()
    _sql(isolated_store, f"UPDATE audit_keyed SET from_row = {count}, from_hash = '{last}'")
    with _reopen(isolated_store) as again:
        ok, message = again.verify_audit()
    assert not ok and "where the keyed audit chain begins was edited" in message


# ---- the versions and the label history ------------------------------------------------------


def test_an_edited_template_is_caught(client, isolated_store):
    _history(client)
    _sql(isolated_store, "UPDATE versions SET template = 'pwned' WHERE prompt_id = 42 AND number = 2")
    ok, message = client.verify_audit()
    assert not ok and message == ("version 2 of 'p' does not match its sha256: its template or model config "
                                  "was edited in the database")


def test_an_edited_template_with_its_sha256_recomputed_is_caught(client, isolated_store):
    _history(client)
    forged = content_hash(normalize("pwned"), {})
    _sql(isolated_store, f"UPDATE versions SET template = 'pwned', sha256 = '{forged}' "
                         "WHERE prompt_id = 42 AND number = 2")
    ok, message = client.verify_audit()
    assert not ok and "version 2 of 'p' is not the content the audit log recorded" in message


def test_an_edited_model_config_is_caught(client, isolated_store):
    _history(client)
    _sql(isolated_store, """UPDATE versions SET model_config = '{"model": "evil"}' WHERE number = 1""")
    assert not client.verify_audit()[0]


def test_a_version_added_or_deleted_behind_promstacks_back_is_caught(client, isolated_store):
    _history(client)
    sha = content_hash(normalize("sneaky"), {})
    _sql(isolated_store, "INSERT INTO versions (prompt_id, number, branch, kind, template, model_config, variables, "
                         f"sha256, author, source, created_at) VALUES (42, 4, 'main', 'text', 'sneaky', '{{}}', "
                         f"'[]', '{sha}', 'mallory', 'cli', '2026-01-01T00:00:00Z')")
    ok, message = client.verify_audit()
    assert not ok and "version 4 of 'p' is not in the audit log" in message
    _sql(isolated_store, "DELETE FROM versions WHERE number >= 3")
    ok, message = client.verify_audit()
    assert not ok and "version 3 of 'p' is in the audit log but not in the database" in message


@pytest.mark.parametrize(("tamper", "says"), [
    ("UPDATE label_history SET to_version = 3 WHERE id = 2", "does not match audit row"),
    ("UPDATE label_history SET actor = 'mallory' WHERE id = 1", "does not match audit row"),
    ("DELETE FROM label_history WHERE id = 2", "has 2 moves where the audit log records 3"),
    ("INSERT INTO label_history (prompt_id, label, from_version, to_version, actor, at) "
     "VALUES (42, 'production', 2, 3, 'mallory', '2026-01-01T00:00:00Z')", "has 4 moves"),
    ("UPDATE labels SET version = 3 WHERE name = 'production'",
     "label 'production' of 'p' points at v3 but its last recorded move was to v2"),
    ("DELETE FROM labels WHERE name = 'staging'", "label 'staging' of 'p' points at nothing"),
])
def test_label_history_and_labels_are_checked_against_the_chain(client, isolated_store, tamper, says):
    _history(client)
    _sql(isolated_store, tamper)
    ok, message = client.verify_audit()
    assert not ok and says in message, message


def test_moves_removals_rollbacks_and_deploy_moves_all_match(client):
    _history(client)
    client.rollback_label("p", "production")
    client.remove_label("p", "staging")
    ok, message = client.verify_audit()
    assert ok and "3 versions and 5 label moves match it" in message, message


def test_an_import_is_checked_like_saves(client, isolated_store, tmp_path):
    _history(client)
    document = client.export()
    with Client(tmp_path / "other.db") as other:
        other.import_(document)
        assert other.verify_audit() == (True, "1 audit rows, chain intact; 3 versions and 3 label moves match it")
        other.set_label("p", "production", 3)
        assert other.verify_audit()[0]
    _sql(tmp_path / "other.db", "UPDATE label_history SET reason = 'why not' WHERE id = 1")
    with Client(tmp_path / "other.db") as other:
        ok, message = other.verify_audit()
    assert not ok and "that audit row 1 (import) brought in were edited" in message


# ---- the key ---------------------------------------------------------------------------------


def test_a_new_store_makes_a_private_key_file_that_never_enters_the_database(isolated_store):
    with Client(isolated_store) as client:
        client.create_prompt("p", "one")
    key_file = isolated_store.parent / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) == 64
    for path in isolated_store.parent.glob("promstack.db*"):
        assert key.encode() not in path.read_bytes()
    # git ignores it in a workspace, made with `init` or not.
    assert (isolated_store.parent / ".gitignore").read_text(encoding="utf-8").splitlines() == ["audit.key"]


def test_init_makes_the_key_and_git_ignores_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMSTACK_DB")
    result = subprocess.run([PROMSTACK, "init", str(tmp_path / "ws")], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "ws" / ".promstack" / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / "ws" / ".promstack" / ".gitignore").read_text(encoding="utf-8") == "*\n"
    assert key_file.read_text(encoding="utf-8").strip() not in result.stdout + result.stderr


def test_without_its_key_a_store_reads_but_refuses_audited_writes(client, isolated_store, monkeypatch):
    _history(client)
    key = (isolated_store.parent / "audit.key").read_text(encoding="utf-8").strip()
    (isolated_store.parent / "audit.key").unlink()
    with Client(isolated_store) as keyless:
        assert keyless.get_prompt("p").template == "three"
        with pytest.raises(InvalidInput, match="its key is not here: set PROMSTACK_AUDIT_KEY"):
            keyless.save("p", "four")
        with pytest.raises(InvalidInput, match="PROMSTACK_AUDIT_KEY"):
            keyless.verify_audit()
        assert [v.version for v in keyless.history("p")] == [3, 2, 1]
    assert not (isolated_store.parent / "audit.key").exists()  # no second key, no second chain
    monkeypatch.setenv("PROMSTACK_AUDIT_KEY", "not-the-key")
    with Client(isolated_store) as wrong, pytest.raises(InvalidInput, match="is not this store's key"):
        wrong.save("p", "four")
    monkeypatch.setenv("PROMSTACK_AUDIT_KEY", key)
    with Client(isolated_store) as keyed:
        keyed.save("p", "four")
        assert keyed.verify_audit()[0]


def test_a_store_created_with_the_key_in_the_environment_makes_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMSTACK_AUDIT_KEY", "server-secret-from-the-vault")
    with Client(tmp_path / "server.db") as client:
        client.create_prompt("p", "one")
        assert client.verify_audit()[0]
    assert not list(tmp_path.glob("*.key"))
    monkeypatch.delenv("PROMSTACK_AUDIT_KEY")
    with Client(tmp_path / "server.db") as client, pytest.raises(InvalidInput, match="PROMSTACK_AUDIT_KEY"):
        client.save("p", "two")


def test_an_attacker_with_a_key_of_their_own_cannot_verify_their_rewrite(client, isolated_store, monkeypatch):
    _history(client)
    (isolated_store.parent / "audit.key").write_text("0" * 64)
    with Client(isolated_store) as other, pytest.raises(InvalidInput, match="is not this store's key"):
        other.verify_audit()


# ---- a store from before keys ----------------------------------------------------------------


def _make_old_store(path):
    """A store as an older PromStack left it: a plain chain, no m007, no key file."""
    with Client(path) as client:
        client.create_prompt("old", "one")
        client.set_label("old", "production", 1)
        client.import_({"format": "promstack/1", "prompts": [{
            "id": 7, "name": "imported", "created_at": "2026-01-01T00:00:00Z", "created_by": "me",
            "versions": [{"version": 1, "template": "hi", "created_at": "2026-01-01T00:00:00Z"}],
            "branches": [{"name": "main", "head": 1, "created_at": "2026-01-01T00:00:00Z", "created_by": "me"}],
            "labels": [{"name": "production", "version": 1, "updated_at": "2026-01-01T00:00:00Z",
                        "updated_by": "me"}],
            "label_history": [{"label": "production", "from_version": None, "to_version": 1, "actor": "me",
                               "at": "2026-01-01T00:00:00Z"}],
        }]})
    conn = sqlite3.connect(path)
    with conn:
        # The old import row said only how much came in.
        conn.execute("""UPDATE audit SET detail = '{"labels": 1, "prompts": 1, "versions": 1}' WHERE action = 'import'""")
        conn.execute("DROP TABLE audit_keyed")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm007_audit_key'")
    conn.close()
    _rechain_plain(path)
    (path.parent / "audit.key").unlink()


def test_a_store_from_before_keys_keeps_verifying_and_continues_keyed(isolated_store):
    _make_old_store(isolated_store)
    with Client(isolated_store) as client:
        ok, message = client.verify_audit()
        assert ok and message.startswith("3 audit rows, chain intact"), message
        assert "1 versions and 1 label moves from before the audit log recorded them" in message
        client.save("old", "two")
        client.set_label("imported", "production", 1, reason="again")
        assert client.verify_audit()[0]
        assert client.store.db.execute("SELECT from_row FROM audit_keyed").fetchone()[0] == 3
    assert stat.S_IMODE((isolated_store.parent / "audit.key").stat().st_mode) == 0o600


def test_old_rows_rewritten_under_the_keyed_ones_are_caught(isolated_store):
    _make_old_store(isolated_store)
    with Client(isolated_store) as client:
        client.save("old", "two")
    _sql(isolated_store, "UPDATE audit SET actor = 'mallory' WHERE id = 1")
    _rechain_plain(isolated_store)  # the old rows re-hash; the first keyed row no longer follows them
    with Client(isolated_store) as client:
        ok, message = client.verify_audit()
    assert not ok and "audit rows up to 3 were rewritten" in message, message


# ---- the CLI ---------------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run([PROMSTACK, "audit", "verify", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ), check=False)


def test_cli_prints_the_head_and_checks_it(client, isolated_store):
    _history(client)
    client.delete_prompt("p")  # a row no table mirrors, so cutting it is visible only to the head
    first = _cli()
    assert first.returncode == 0, first.stdout + first.stderr
    head = first.stdout.strip().splitlines()[-1].removeprefix("audit head ")
    assert head == client.audit_report().head
    assert _cli("--expect", head).returncode == 0
    report = json.loads(_cli("--json", "--expect", head).stdout)
    assert report["ok"] and report["head"] == head and report["count"] == int(head.split(":")[0])
    _sql(isolated_store, "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)")
    assert _cli().returncode == 0  # the chain alone cannot see its end cut off...
    cut = _cli("--expect", head)  # ...the remembered head can
    assert cut.returncode == 1 and "rows were deleted from its end" in cut.stdout


@pytest.mark.parametrize("bad", ["nonsense", "3:xyz", ""])
def test_cli_bad_expect_is_one_sentence_and_exit_2(client, isolated_store, bad):
    _history(client)
    before = list(client.store.db.conn.iterdump())
    result = _cli("--expect", bad)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "COUNT:HASH" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(client.store.db.conn.iterdump()) == before


def test_cli_without_the_key_is_one_sentence_and_exit_2(client, isolated_store):
    _history(client)
    (isolated_store.parent / "audit.key").unlink()
    result = _cli()
    assert result.returncode == 2 and "PROMSTACK_AUDIT_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    for command in (["prompt", "update", "p", "--template", "x"], ["label", "set", "p", "production", "3"]):
        changed = subprocess.run([PROMSTACK, *command], capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ), check=False)
        assert changed.returncode == 2 and "PROMSTACK_AUDIT_KEY" in changed.stderr, changed.stderr


def test_emptying_the_log_of_a_store_with_versions_is_caught_even_without_a_head(client, isolated_store):
    _history(client)
    _sql(isolated_store, "DELETE FROM audit")
    ok, message = client.verify_audit()
    assert not ok and "version 1 of 'p' is not in the audit log" in message


def test_moves_after_the_keyed_start_cannot_pass_as_old_ones(isolated_store):
    _make_old_store(isolated_store)
    with Client(isolated_store) as client:
        client.set_label("imported", "staging", 1)
    _sql(isolated_store, "DELETE FROM audit WHERE action = 'set_label' AND id > 3")
    with Client(isolated_store) as client:
        ok, message = client.verify_audit()
    assert not ok and "the label history of 'imported' has 2 moves where the audit log records 0" in message


def test_without_its_key_a_model_call_is_refused_before_the_model_is_paid(client, isolated_store, fake_llm):
    # The call's log row carries an audit row: with no key it could not be written, so the
    # gateway refuses up front instead of calling the model and losing the record of it.
    client.create_prompt("ask", "Say {{ x }}", model_config={"model": "openai/fake-model",
                                                             "api_base": fake_llm.base_url})
    (isolated_store.parent / "audit.key").unlink()
    with Client(isolated_store) as keyless, pytest.raises(InvalidInput, match="PROMSTACK_AUDIT_KEY"):
        keyless.run("ask", {"x": "hi"})
    assert fake_llm.requests == []


def test_a_forced_move_through_a_gate_matches_the_chain(isolated_store):
    (isolated_store.parent / "config.toml").write_text("", encoding="utf-8")  # the default gates
    with Client(isolated_store) as c:
        c.create_prompt("gated", "one")
        c.set_label("gated", "production", 1, force=True, reason="hotfix approved by the on-call lead")
        report = c.audit_report()
        assert report.ok, report.message
        actions = [row["action"] for row in c.audit_log("gated")]
        assert "deploy_forced" in actions and "set_label" in actions
