"""The watcher with a real watchdog observer on a temporary folder. Each test waits on the
store with a bounded poll; "nothing else happened" is checked after a later marker save has
been versioned (events are handled in order), not after a fixed sleep."""

from __future__ import annotations

import os
import time

import pytest

from promstack import Client
from store.filesync import open_errors
from store.watch import Watcher

TIMEOUT = 10.0


def wait_for(predicate, timeout=TIMEOUT, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def reader(store):
    """The store as a second process would read it while the watcher writes (conftest's `store`)."""
    return store


@pytest.fixture
def watcher(isolated_store, prompts_dir):
    w = Watcher(isolated_store, prompts_dir, debounce=0.05)
    w.start()
    yield w
    w.stop()


def versions(store, name):
    return [v.version for v in store.prompts.history(name)]


def head(store, name):
    return store.prompts.get(name)


def settle(watcher, prompts_dir, store, tag):
    """Save a marker file and wait for it: everything the watcher saw before is handled."""
    (prompts_dir / "zz_marker.txt").write_text(f"marker {tag}")
    wait_for(lambda: head(store, "zz_marker").template == f"marker {tag}", what="the marker")
    wait_for(watcher.idle, what="the watcher to be idle")


def test_reconcile_on_start(isolated_store, prompts_dir, reader):
    (prompts_dir / "a.txt").write_text("A {{ x }}")
    (prompts_dir / "sub").mkdir()
    (prompts_dir / "sub" / "b.prompt.md").write_text("---\nmodel: gpt-4o\n---\nB")
    with Watcher(isolated_store, prompts_dir):
        assert {p.name for p in reader.prompts.list_prompts()} == {"a", "sub/b"}
    (prompts_dir / "a.txt").write_text("A changed while nobody watched")
    (prompts_dir / "sub" / "b.prompt.md").unlink()
    with Watcher(isolated_store, prompts_dir):
        assert head(reader, "a").version == 2
        assert [p.name for p in reader.prompts.list_prompts()] == ["a"]


def test_plain_save(watcher, prompts_dir, reader):
    path = prompts_dir / "hello.txt"
    path.write_text("Hello {{ name }}")
    wait_for(lambda: head(reader, "hello").version == 1, what="version 1")
    path.write_text("Hello there {{ name }}")
    wait_for(lambda: head(reader, "hello").version == 2, what="version 2")
    saved = head(reader, "hello")
    assert saved.template == "Hello there {{ name }}"
    assert saved.source == "file:prompts/hello.txt" and saved.author == "tester"


def test_atomic_rename_save(watcher, prompts_dir, reader):
    path = prompts_dir / "atomic.prompt.md"
    path.write_text("---\nmodel: gpt-4o\n---\nFirst")
    wait_for(lambda: head(reader, "atomic").version == 1)
    tmp = prompts_dir / ".atomic.prompt.md.tmp1234"
    tmp.write_text("---\nmodel: gpt-4o\n---\nSecond")
    os.replace(tmp, path)
    wait_for(lambda: head(reader, "atomic").template == "Second", what="the renamed-in save")
    settle(watcher, prompts_dir, reader, 1)
    assert versions(reader, "atomic") == [2, 1]


def test_a_burst_of_writes_is_one_version(watcher, prompts_dir, reader):
    path = prompts_dir / "burst.txt"
    path.write_text("start")
    wait_for(lambda: head(reader, "burst").version == 1)
    with open(path, "w") as fh:  # an editor writing a save in pieces
        for i in range(20):
            fh.write(f"line {i}\n")
            fh.flush()
    for i in range(5):
        path.write_text(f"rewrite {i}")
    wait_for(lambda: head(reader, "burst").template == "rewrite 4", what="the last write")
    settle(watcher, prompts_dir, reader, 1)
    assert versions(reader, "burst") == [2, 1]


def test_swap_backup_and_temp_files_are_ignored(watcher, prompts_dir, reader):
    for name in (".hello.txt.swp", "hello.txt~", ".#hello.txt", "4913", "hello.txt.tmp", "#hello.txt#",
                 "hello.txt.swx", "notes.json"):
        (prompts_dir / name).write_text("scratch {{ x }}")
    settle(watcher, prompts_dir, reader, 1)
    assert [p.name for p in reader.prompts.list_prompts()] == ["zz_marker"]
    assert open_errors(reader.db) == []


def test_vim_style_save_renames_to_a_backup_then_writes(watcher, prompts_dir, reader):
    path = prompts_dir / "vim.txt"
    path.write_text("one")
    wait_for(lambda: head(reader, "vim").version == 1)
    os.rename(path, prompts_dir / "vim.txt~")
    path.write_text("two")
    os.unlink(prompts_dir / "vim.txt~")
    wait_for(lambda: head(reader, "vim").template == "two")
    settle(watcher, prompts_dir, reader, 1)
    assert versions(reader, "vim") == [2, 1]
    assert not reader.prompts.list_prompts(include_archived=True)[1].archived


def test_rename_keeps_history(watcher, prompts_dir, reader):
    path = prompts_dir / "support" / "refund.txt"
    path.parent.mkdir()
    path.write_text("v1")
    wait_for(lambda: head(reader, "support/refund").version == 1)
    path.write_text("v2")
    wait_for(lambda: head(reader, "support/refund").version == 2)
    prompt_id = head(reader, "support/refund").prompt_id
    (prompts_dir / "billing").mkdir()
    os.rename(path, prompts_dir / "billing" / "refund.txt")
    wait_for(lambda: head(reader, "billing/refund").prompt_id == prompt_id, what="the rename")
    assert versions(reader, "billing/refund") == [2, 1]
    settle(watcher, prompts_dir, reader, 1)
    assert {p.name for p in reader.prompts.list_prompts(include_archived=True)} == {"billing/refund", "zz_marker"}


def test_folder_rename_keeps_history(watcher, prompts_dir, reader):
    (prompts_dir / "team").mkdir()
    (prompts_dir / "team" / "a.txt").write_text("A")
    wait_for(lambda: head(reader, "team/a").version == 1)
    os.rename(prompts_dir / "team", prompts_dir / "crew")
    wait_for(lambda: head(reader, "crew/a").version == 1, what="the folder rename")
    assert [p.name for p in reader.prompts.list_prompts(include_archived=True)] == ["crew/a"]


def test_delete_archives(watcher, prompts_dir, reader):
    path = prompts_dir / "doomed.txt"
    path.write_text("soon gone")
    wait_for(lambda: head(reader, "doomed").version == 1)
    path.unlink()
    wait_for(lambda: reader.prompts.list_prompts(include_archived=True)[0].archived, what="the archive")
    assert reader.prompts.history("doomed")  # kept, restorable


def test_bad_front_matter_skipped_then_fixed(watcher, prompts_dir, reader):
    path = prompts_dir / "fm.prompt.md"
    path.write_text("---\nmodel: gpt-4o\n---\nGood")
    wait_for(lambda: head(reader, "fm").version == 1)
    path.write_text("---\nmodel: [oops\n---\nBroken")
    wait_for(lambda: open_errors(reader.db), what="the error to be recorded")
    assert head(reader, "fm").template == "Good"
    assert "fm.prompt.md" in open_errors(reader.db)[0]["path"]
    path.write_text("---\nmodel: gpt-4o\n---\nFixed")
    wait_for(lambda: head(reader, "fm").template == "Fixed", what="the fix")
    wait_for(lambda: open_errors(reader.db) == [], what="the error to be resolved")
    assert versions(reader, "fm") == [2, 1]


def test_binary_file_is_skipped(watcher, prompts_dir, reader):
    (prompts_dir / "blob.txt").write_bytes(b"\x00\x01binary")
    wait_for(lambda: open_errors(reader.db), what="the error")
    assert "binary" in open_errors(reader.db)[0]["error"]


def test_store_to_file_write_back_without_a_loop(watcher, isolated_store, prompts_dir, reader):
    path = prompts_dir / "wb.prompty"
    path.write_text("---\nmodel:\n  id: gpt-4o\n---\nsystem:\nOne\n\nuser:\n{{q}}\n")
    wait_for(lambda: head(reader, "wb").version == 1)
    with Client(isolated_store) as client:
        client.save("wb", [{"role": "system", "content": "Two"}, {"role": "user", "content": "{{q}}"}])
        assert "Two" in path.read_text()
        client.rollback("wb", 1)
        assert "One" in path.read_text()
    settle(watcher, prompts_dir, reader, 1)
    assert [v.source for v in reader.prompts.history("wb")] == ["rollback", "sdk", "file:prompts/wb.prompty"]
    path.write_text(path.read_text().replace("One", "Three"))  # and the user's next save still counts
    wait_for(lambda: head(reader, "wb").version == 4)


def test_two_watchers_do_not_double_version_a_save(isolated_store, prompts_dir, reader):
    path = prompts_dir / "twice.txt"
    path.write_text("v1")
    with Watcher(isolated_store, prompts_dir, debounce=0.05) as a, \
            Watcher(isolated_store, prompts_dir, debounce=0.05) as b:
        for n in range(2, 6):
            path.write_text(f"v{n}")
            wait_for(lambda n=n: head(reader, "twice").template == f"v{n}")
            wait_for(lambda: a.idle() and b.idle())
        settle(a, prompts_dir, reader, 1)
        wait_for(b.idle)
    assert versions(reader, "twice") == [5, 4, 3, 2, 1]
