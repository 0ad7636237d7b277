"""The schema is what the migrations say it is, nothing more, and each migration runs once."""

from __future__ import annotations

import sqlite3

import pytest

from store import connect
from store.migrations import migrations

# The columns m001_initial (and m007_audit_key) create, in order: a rename or a dropped column fails here.
EXPECTED = {
    "prompts": ["id", "name", "description", "created_at", "created_by", "archived_at"],
    "versions": [
        "id", "prompt_id", "number", "branch", "kind", "template", "model_config", "variables",
        "sha256", "parent", "merge_parent", "message", "author", "source", "created_at",
    ],
    "branches": ["prompt_id", "name", "head", "forked_from", "created_at", "created_by"],
    "labels": ["prompt_id", "name", "version", "updated_at", "updated_by"],
    "label_history": [
        "id", "prompt_id", "label", "from_version", "to_version", "actor", "reason", "at",
    ],
    "dependencies": ["prompt_id", "version", "depends_on", "selector"],
    "audit": [
        "id", "at", "actor", "action", "prompt_id", "version", "detail", "input_tokens",
        "output_tokens", "cost_usd", "prev_hash", "hash",
    ],
    "audit_keyed": [
        "id", "from_row", "from_hash", "from_version_id", "from_move_id", "key_id", "seal", "started_at",
    ],
    "_sqlite_migrations": ["id", "migration_set", "name", "applied_at"],
}


@pytest.fixture
def blank(tmp_path):
    db = connect(tmp_path / "blank.db")
    yield db
    db.close()


def test_store_tables_have_exactly_the_expected_columns(blank):
    for table, columns in EXPECTED.items():
        assert blank[table].exists(), table
        assert [c.name for c in blank[table].columns] == columns, table


def test_every_table_is_accounted_for(blank):
    # Later migrations add tables of their own (runs, calls, ...); the store's own must all be here.
    names = set(blank.table_names())
    assert set(EXPECTED) <= names


def test_version_numbers_are_unique_per_prompt(blank):
    blank.execute(
        "INSERT INTO prompts (id, name, created_at, created_by) VALUES (1, 'a', 'now', 'me')"
    )
    row = [1, 1, "main", "text", "t", "{}", "[]", "x", None, None, None, "me", "sdk", "now"]
    sql = (
        "INSERT INTO versions (prompt_id, number, branch, kind, template, model_config, variables, "
        "sha256, parent, merge_parent, message, author, source, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    blank.execute(sql, row)
    with pytest.raises(sqlite3.IntegrityError):
        blank.execute(sql, row)
    with pytest.raises(sqlite3.IntegrityError):
        blank.execute(sql, [1, 2, "main", "yaml", *row[4:]])  # kind is text or chat


def test_store_opens_in_wal_mode_with_a_busy_timeout(blank):
    assert blank.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert blank.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert blank.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_migrations_are_recorded(blank):
    applied = [m.name for m in migrations.applied(blank)]
    assert applied[0] == "m001_initial"
    assert applied == [m.name for m in migrations._migrations]
    assert migrations.pending(blank) == []


def test_reopening_does_not_rerun_migrations(tmp_path):
    path = tmp_path / "again.db"
    db = connect(path)
    first = [(m.name, m.applied_at) for m in migrations.applied(db)]
    db.execute("INSERT INTO prompts (id, name, created_at, created_by) VALUES (7, 'kept', 'now', 'me')")
    db.close()
    db = connect(path)
    try:
        assert [(m.name, m.applied_at) for m in migrations.applied(db)] == first
        assert db.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0] == len(first)
        assert db.execute("SELECT name FROM prompts WHERE id = 7").fetchone() == ("kept",)
    finally:
        db.close()
