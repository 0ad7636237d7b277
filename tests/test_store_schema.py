"""The schema is what the migrations say it is, nothing more, and each migration runs once."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

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
    # m003 creates calls, m008 rebuilds it (cost_usd nullable), m011 adds where a row came from
    "calls": [
        "id", "call_id", "timestamp", "prompt_id", "prompt_name", "prompt_version", "model", "provider",
        "route", "input_tokens", "output_tokens", "latency_ms", "user_id", "cost_usd", "cache_hit",
        "status", "error", "environment", "run_id", "guards", "source", "operation", "flags",
    ],
    "check_rounds": ["name", "round", "holder", "started_at", "finished_at", "result"],
    # m012: the quick check of each new version (promstack.evals.check)
    "version_checks": [
        "prompt_id", "version", "branch", "status", "created_at", "lease_owner", "lease_until", "finished_at",
        "cost_usd", "result",
    ],
    # m004 creates results; m009 adds the judge's score and reason per criterion.
    "results": [
        "id", "run_id", "case_key", "case_idx", "model", "prompt_version", "repeat", "judge_key",
        "status", "score", "output", "reason", "checks", "input_tokens", "output_tokens", "cost_usd",
        "latency_ms", "cache_hit", "attempts", "error", "finished_at", "criteria",
    ],
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


def test_migrations_are_registered_in_the_order_of_their_numbers():
    names = [m.name for m in migrations._migrations]
    assert [int(name[1:4]) for name in names] == list(range(1, len(names) + 1)), names


# The order the migrations were registered in before they were put in numbered order; databases
# made then may have stopped anywhere along it.
FORMER_ORDER = [
    "m001_initial", "m003_call_log", "m002_prompt_files", "m005_monitoring", "m004_evals",
    "m006_deploy", "m007_audit_key", "m008_unpriced_calls", "m009_result_criteria", "m010_tokens",
]


def _schema(db):
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    columns = {table: db.execute(f'PRAGMA table_info("{table}")').fetchall() for table in db.table_names()}
    return set(rows), columns


@pytest.mark.parametrize("applied", range(len(FORMER_ORDER) + 1))
def test_a_database_migrated_in_the_former_order_upgrades_to_the_same_schema(tmp_path, applied):
    assert sorted(FORMER_ORDER) == [m.name for m in migrations._migrations][:len(FORMER_ORDER)]
    former = sqlite_utils.Migrations(migrations.name)
    functions = {m.name: m.fn for m in migrations._migrations}
    for name in FORMER_ORDER[:applied]:
        former(name=name)(functions[name])
    old = sqlite_utils.Database(sqlite3.connect(tmp_path / "old.db", isolation_level=None))
    former.apply(old)
    assert [m.name for m in migrations.applied(old)] == FORMER_ORDER[:applied]
    old.close()
    upgraded, fresh = connect(tmp_path / "old.db"), connect(tmp_path / "fresh.db")
    try:
        assert {m.name for m in migrations.applied(upgraded)} == {m.name for m in migrations._migrations}
        assert _schema(upgraded) == _schema(fresh)
    finally:
        upgraded.close()
        fresh.close()


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


def test_m008_makes_call_cost_nullable_and_keeps_rows_indexes_and_checks(tmp_path):
    """An unpriced call has an unknown cost (NULL), not $0; the rebuild keeps everything else."""
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "old.db", isolation_level=None))
    migrations.apply(db, stop_before="m008_unpriced_calls")
    assert db["calls"].columns_dict and not _nullable(db, "cost_usd")
    insert = ("INSERT INTO calls (call_id, timestamp, model, input_tokens, output_tokens, cost_usd, "
              "cache_hit, status) VALUES (?, '2026-01-01T00:00:00Z', ?, ?, ?, ?, ?, ?)")
    db.execute(insert, ["priced", "gpt-4o", 10, 10, 0.5, 0, "ok"])
    db.execute(insert, ["silent-zero", "claude-3-5-sonnet-20241022", 10, 10, 0.0, 0, "ok"])
    db.execute(insert, ["hit", "claude-3-5-sonnet-20241022", 10, 10, 0.0, 1, "ok"])
    db.execute(insert, ["failed", "claude-3-5-sonnet-20241022", 0, 0, 0.0, 0, "error"])
    db.execute("CREATE VIEW paid AS SELECT call_id FROM calls WHERE cost_usd > 0")  # a later one's view
    before = {r[1] for r in db.execute("SELECT type, name FROM sqlite_master WHERE tbl_name = 'calls'")}
    migrations.apply(db)
    after = {r[1] for r in db.execute("SELECT type, name FROM sqlite_master WHERE tbl_name = 'calls'")}
    assert before | {"calls_source"} == after and {"calls_time", "calls_prompt", "calls_run"} <= after
    assert _nullable(db, "cost_usd")
    costs = dict(db.execute("SELECT call_id, cost_usd FROM calls ORDER BY id").fetchall())
    # the $0 of a served call that used tokens was the old silent price of an unpriced model
    assert costs == {"priced": 0.5, "silent-zero": None, "hit": 0.0, "failed": 0.0}
    assert db.execute("SELECT call_id FROM paid").fetchall() == [("priced",)]
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, ["bad", "m", 1, 1, None, 0, "maybe"])  # the status CHECK survived
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, ["priced", "m", 1, 1, None, 0, "ok"])  # and call_id's UNIQUE
    db.execute(insert, ["unpriced", "m", 1, 1, None, 0, "ok"])
    assert db.execute("SELECT cost_usd FROM calls WHERE call_id = 'unpriced'").fetchone() == (None,)


def _nullable(db, column):
    return {c[1]: not c[3] for c in db.execute("PRAGMA table_info(calls)").fetchall()}[column]
