"""The file <-> store engine without an observer: reconcile, renames, deletes, errors, two
stores on one database, checkpoints and folded history, test data, write-back."""

from __future__ import annotations

import os

import pytest

from promstack import Client
from store import Store
from store.checkpoints import checkpoint, fold_history
from store.filesync import FileSync, open_errors, prompt_test_data, tracked_files


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_reconcile_versions_new_and_changed_files_once(sync, store, prompts_dir):
    write(prompts_dir / "support" / "refund.prompt.md", "---\nmodel: gpt-4o\n---\nRefund ${input:item}\n")
    write(prompts_dir / "hello.txt", "Hello {{ name }}")
    write(prompts_dir / "notes.json", "{}")
    write(prompts_dir / ".hidden.txt", "x")
    results = sync.reconcile()
    assert sorted((r.prompt, r.action, r.version) for r in results) == [
        ("hello", "created", 1), ("support/refund", "created", 1)]
    refund = store.prompts.get("support/refund")
    assert refund.model_config == {"model": "gpt-4o"}
    assert refund.source == "file:prompts/support/refund.prompt.md" and refund.author == "tester"
    assert sync.reconcile() == []  # nothing changed: nothing read twice, nothing written
    write(prompts_dir / "hello.txt", "Hello again {{ name }}")
    assert [(r.prompt, r.action, r.version) for r in sync.reconcile()] == [("hello", "saved", 2)]


def test_plain_files_keep_the_prompts_model_config(sync, store, prompts_dir):
    path = write(prompts_dir / "hello.txt", "Hello")
    sync.sync(path)
    store.prompts.save("hello", model_config={"model": "gpt-4o-mini"})
    write(path, "Hello there")
    sync.sync(path)
    head = store.prompts.get("hello")
    assert head.template == "Hello there" and head.model_config == {"model": "gpt-4o-mini"}


def test_rename_keeps_the_history(sync, store, prompts_dir):
    old = write(prompts_dir / "support" / "refund.txt", "Refund v1")
    sync.sync(old)
    write(old, "Refund v2")
    sync.sync(old)
    new = prompts_dir / "billing" / "refund.txt"
    new.parent.mkdir()
    os.rename(old, new)
    results = sync.sync_many([old, new])
    assert [r.action for r in results if r.action != "ignored"] == ["renamed"]
    versions = store.prompts.history("billing/refund")
    assert [v.version for v in versions] == [2, 1]
    assert [p.name for p in store.prompts.list_prompts(include_archived=True)] == ["billing/refund"]
    assert [f["path"] for f in tracked_files(store.db)] == ["prompts/billing/refund.txt"]


def test_rename_while_nobody_watched_is_found_by_reconcile(sync, store, prompts_dir):
    old = write(prompts_dir / "a.prompt.md", "---\nmodel: gpt-4o\n---\nBody")
    sync.reconcile()
    os.rename(old, prompts_dir / "b.prompt.md")
    assert [r.action for r in sync.reconcile()] == ["renamed"]
    assert store.prompts.get("b").version == 1


def test_a_copy_is_a_new_prompt_not_a_rename(sync, store, prompts_dir):
    write(prompts_dir / "a.txt", "Same text")
    sync.reconcile()
    write(prompts_dir / "b.txt", "Same text")
    sync.reconcile()
    assert sorted(p.name for p in store.prompts.list_prompts()) == ["a", "b"]


def test_delete_archives_and_the_file_coming_back_restores(sync, store, prompts_dir):
    path = write(prompts_dir / "gone.txt", "Soon gone")
    sync.sync(path)
    path.unlink()
    assert [r.action for r in sync.sync_many([path])] == ["archived"]
    assert store.prompts.list_prompts(include_archived=True)[0].archived
    assert store.prompts.history("gone")  # nothing deleted
    write(path, "Back again")
    sync.sync(path)
    assert not store.prompts.list_prompts()[0].archived
    assert store.prompts.get("gone").template == "Back again"


def test_bad_front_matter_is_recorded_and_the_version_stays(sync, store, prompts_dir):
    path = write(prompts_dir / "x.prompt.md", "---\nmodel: gpt-4o\n---\nGood")
    sync.sync(path)
    write(path, "---\nmodel: [broken\n---\nBad")
    result = sync.sync(path)
    assert result.action == "error" and "not valid YAML" in result.error
    assert store.prompts.get("x").template == "Good"
    errors = open_errors(store.db)
    assert [e["path"] for e in errors] == ["prompts/x.prompt.md"]
    sync.sync(path)  # the same error again is one entry, not two
    assert len(open_errors(store.db)) == 1
    write(path, "---\nmodel: gpt-4o\n---\nFixed")
    assert sync.sync(path).action == "saved"
    assert open_errors(store.db) == []


@pytest.mark.parametrize(("data", "match"), [
    (b"\x00\x01\x02binary", "binary"),
    (b"caf\xe9 latin-1", "UTF-8"),
])
def test_binary_and_non_utf8_files_are_skipped(sync, store, prompts_dir, data, match):
    path = prompts_dir / "blob.txt"
    path.write_bytes(data)
    result = sync.sync(path)
    assert result.action == "error" and match in result.error
    assert store.prompts.list_prompts() == []


def test_a_template_the_store_refuses_is_recorded(sync, store, prompts_dir):
    result = sync.sync(write(prompts_dir / "bad.txt", "Hello {{ name "))
    assert result.action == "error" and "does not parse" in result.error
    assert open_errors(store.db)


def test_symlink_out_of_the_workspace_is_refused(sync, store, prompts_dir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.txt"
    outside.write_text("secret")
    link = prompts_dir / "leak.txt"
    link.symlink_to(outside)
    result = sync.sync(link)
    assert result.action == "error" and "outside the workspace" in result.error
    assert store.prompts.list_prompts() == []


def test_watch_dir_outside_the_workspace_is_refused(store, tmp_path, tmp_path_factory):
    from store.errors import InvalidInput

    with pytest.raises(InvalidInput, match="outside the workspace"):
        FileSync(store, tmp_path_factory.mktemp("other"), root=tmp_path)


def test_two_stores_on_one_database_version_a_save_once(isolated_store, tmp_path, prompts_dir):
    path = write(prompts_dir / "shared.txt", "One")
    a, b = Store(isolated_store), Store(isolated_store)
    try:
        sa, sb = FileSync(a, prompts_dir, root=tmp_path), FileSync(b, prompts_dir, root=tmp_path)
        assert sa.sync(path).action == "created"
        assert sb.sync(path).action == "unchanged"
        write(path, "Two")
        assert {sa.sync(path).action, sb.sync(path).action} == {"saved", "unchanged"}
        assert [v.version for v in a.prompts.history("shared")] == [2, 1]
    finally:
        a.close()
        b.close()


def test_front_matter_message_names_the_save_once(sync, store, prompts_dir):
    path = write(prompts_dir / "m.prompt.md", "---\nmessage: first draft\n---\nv1")
    sync.sync(path)
    write(path, "---\nmessage: first draft\n---\nv2")
    sync.sync(path)
    write(path, "---\nmessage: tone fixed\n---\nv3")
    sync.sync(path)
    messages = [v.message for v in store.prompts.history("m")]
    assert messages == ["tone fixed", None, "first draft"]


def test_checkpoints_and_folded_history(sync, store, prompts_dir):
    path = write(prompts_dir / "f.txt", "v1")
    sync.sync(path)
    for n in range(2, 6):
        write(path, f"v{n}")
        sync.sync(path)
    checkpoint(store, "f", "reviewed", version=3)
    store.prompts.set_label("f", "production", 4)
    for n in range(6, 9):
        write(path, f"v{n}")
        sync.sync(path)
    folded = fold_history(store, "f")
    shape = [(e["kind"], e.get("version").version if e["kind"] == "version" else e["count"]) for e in folded]
    assert shape == [("version", 8), ("folded", 3), ("version", 4), ("version", 3), ("folded", 1), ("version", 1)]
    assert folded[3]["checkpoints"] == ["reviewed"] and folded[2]["labels"] == ["production"]
    assert len(store.prompts.history("f")) == 8  # nothing squashed
    head = checkpoint(store, "f", "ship it")
    assert head["version"] == 8


def test_github_test_data_is_kept_for_the_suites(sync, store, prompts_dir):
    path = write(prompts_dir / "sum.prompt.yml", "messages:\n  - role: user\n    content: '{{input}}'\n"
                                                 "testData:\n  - input: a\n    expected: b\n")
    sync.sync(path)
    assert prompt_test_data(store, "sum") == {"testData": [{"input": "a", "expected": "b"}], "evaluators": []}


def test_one_file_per_prompt(sync, store, prompts_dir):
    sync.sync(write(prompts_dir / "dup.txt", "text one"))
    result = sync.sync(write(prompts_dir / "dup.prompt.md", "text two"))
    assert result.action == "error" and "already kept in prompts/dup.txt" in result.error


def test_write_back_rewrites_the_file_and_is_not_versioned_again(isolated_store, tmp_path, prompts_dir):
    path = write(prompts_dir / "support" / "refund.prompty",
                 "---\nmodel:\n  id: gpt-4o\n  connection:\n    kind: key\n---\nsystem:\nBe kind.\n\nuser:\n{{q}}\n")
    with Client(isolated_store) as client:
        sync = FileSync(client.store, prompts_dir, root=tmp_path)
        sync.sync(path)
        saved = client.save("support/refund", [{"role": "system", "content": "Be very kind."},
                                               {"role": "user", "content": "{{q}}"}])
        text = path.read_text()
        assert "Be very kind." in text and "connection" in text
        assert sync.sync(path).action == "unchanged"  # the store's own write
        client.rollback("support/refund", 1)
        assert "Be kind." in path.read_text() and "Be very kind." not in path.read_text()
        assert sync.sync(path).action == "unchanged"
        client.create_branch("support/refund", "exp")
        client.save("support/refund", [{"role": "system", "content": "Be kind."},
                                       {"role": "user", "content": "Branch {{q}}"}], branch="exp")
        assert "Branch" not in path.read_text()  # the workspace follows main
        client.merge("support/refund", "exp")
        assert "Branch {{q}}" in path.read_text()
        assert [v.source for v in client.history("support/refund")] == [
            "merge", "sdk", "rollback", "sdk", "file:prompts/support/refund.prompty"]
        assert saved.version == 2
        assert not list(path.parent.glob(".*.tmp"))  # the temp files were renamed away


def test_write_back_a_chat_version_to_a_prompt_md_is_recorded_not_written(isolated_store, tmp_path, prompts_dir):
    path = write(prompts_dir / "note.prompt.md", "Text body")
    with Client(isolated_store) as client:
        FileSync(client.store, prompts_dir, root=tmp_path).sync(path)
        client.save("note", [{"role": "user", "content": "chat now"}])
        assert path.read_text() == "Text body"
        assert "not written" in open_errors(client.store.db)[0]["error"]


def test_write_back_never_overwrites_an_edit_that_is_not_versioned(isolated_store, tmp_path, prompts_dir):
    path = write(prompts_dir / "edit.txt", "synced")
    with Client(isolated_store) as client:
        sync = FileSync(client.store, prompts_dir, root=tmp_path)
        sync.sync(path)
        write(path, "edited in the editor, not yet versioned")
        client.save("edit", "saved through the SDK")
        assert path.read_text() == "edited in the editor, not yet versioned"
        assert "not versioned yet" in open_errors(client.store.db)[0]["error"]
        assert sync.sync(path).action == "saved"  # the edit becomes the newest version
        assert [v.template for v in client.history("edit")][:2] == [
            "edited in the editor, not yet versioned", "saved through the SDK"]


def test_a_slower_store_never_versions_bytes_that_left_the_file(isolated_store, tmp_path, prompts_dir):
    from store.db import write as transaction

    path = write(prompts_dir / "race.txt", "one")
    a, b = Store(isolated_store), Store(isolated_store)
    try:
        sa, sb = FileSync(a, prompts_dir, root=tmp_path), FileSync(b, prompts_dir, root=tmp_path)
        sa.sync(path)
        stale = sa.read(path)  # a reads, then is slow to take the lock
        write(path, "two, newer")
        assert sb.sync(path).action == "saved"
        with transaction(a.db):
            assert sa._apply_one(stale).action == "retry"
        assert [v.template for v in a.prompts.history("race")] == ["two, newer", "one"]
    finally:
        a.close()
        b.close()


def test_rename_prompt_keeps_id_and_history_and_is_audited(store):
    from store.errors import InvalidInput

    first = store.prompts.create_prompt("old/name", "v1")
    store.prompts.save("old/name", "v2")
    store.prompts.create_prompt("taken", "x")
    with pytest.raises(InvalidInput, match="has that name"):
        store.prompts.rename_prompt("old/name", "taken")
    renamed = store.prompts.rename_prompt("old/name", "new/name")
    assert renamed.id == first.prompt_id and renamed.versions == 2
    assert store.prompts.get("new/name").version == 2
    entry = store.db.execute("SELECT action, detail FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    assert entry[0] == "rename_prompt" and '"to": "new/name"' in entry[1]


def test_a_prompt_others_include_is_not_renamed(store):
    from store.errors import InvalidInput

    store.prompts.create_prompt("shared/tone", "Be kind.")
    store.prompts.create_prompt("support/answer", '{% include "shared/tone" %} {{ q }}')
    before = store.db.execute("SELECT count(*) FROM audit").fetchone()[0]
    with pytest.raises(InvalidInput, match="'support/answer' include it"):
        store.prompts.rename_prompt("shared/tone", "shared/voice")
    assert store.prompts.get("support/answer").render(q="hi") == "Be kind. hi"
    assert store.db.execute("SELECT count(*) FROM audit").fetchone()[0] == before
