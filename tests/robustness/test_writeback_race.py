"""Write-back (a save from the SDK, CLI or MCP rewriting the prompt's file) racing an editor's
save of that file: the editor's bytes are never lost. Found by test_three_writers.py: the
file's hash was checked before the temp file was written and fsynced, and an edit saved in
that window was replaced by the rename. Here the editor saves at the two worst moments."""

from __future__ import annotations

import os

import pytest

from store import writeback
from store.errors import PromStackError
from store.filesync import sha256


@pytest.fixture
def prompt_file(tmp_path):
    target = tmp_path / "prompts" / "p.txt"  # a folder of its own: the store's is beside it
    target.parent.mkdir()
    target.write_bytes(b"known to the store")
    return target


def test_an_edit_saved_while_the_temp_file_syncs_is_kept(prompt_file, monkeypatch):
    real_fsync = os.fsync

    def editor_saves(fd):
        prompt_file.write_bytes(b"the editor's save")
        real_fsync(fd)

    monkeypatch.setattr(writeback.os, "fsync", editor_saves)
    with pytest.raises(PromStackError, match="edited while it was being written"):
        writeback._atomic_write(prompt_file, b"the new version", expected=sha256(b"known to the store"))
    assert prompt_file.read_bytes() == b"the editor's save"
    assert [p.name for p in prompt_file.parent.iterdir()] == ["p.txt"]  # no temp file left


def test_an_edit_written_into_the_old_file_at_the_rename_is_put_back(prompt_file, monkeypatch):
    real_replace = os.replace
    fired = []

    def editor_writes_then_rename(src, dst):
        if not fired:  # the editor had the old file open and writes it just as we rename
            fired.append(True)
            with open(dst, "r+b") as fh:
                fh.write(b"EDIT")
        real_replace(src, dst)

    monkeypatch.setattr(writeback.os, "replace", editor_writes_then_rename)
    with pytest.raises(PromStackError, match="edited while it was being written"):
        writeback._atomic_write(prompt_file, b"the new version", expected=sha256(b"known to the store"))
    assert prompt_file.read_bytes() == b"EDITn to the store"  # the editor's bytes, not ours
    assert [p.name for p in prompt_file.parent.iterdir()] == ["p.txt"]


def test_without_an_edit_the_version_is_written(prompt_file):
    writeback._atomic_write(prompt_file, b"the new version", expected=sha256(b"known to the store"))
    assert prompt_file.read_bytes() == b"the new version"
    assert [p.name for p in prompt_file.parent.iterdir()] == ["p.txt"]
