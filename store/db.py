"""Opening the store: one SQLite file in WAL mode, a busy timeout, and numbered migrations.

Every write goes through `write(db)` (in `store.tx`, named here as `store.db.write`): one
`BEGIN IMMEDIATE` transaction, retried while another writer holds the lock.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from .audit import open_chain
from .migrations import migrations
from .tx import WRITE_RETRIES, backoff, is_busy, write

__all__ = ["BUSY_TIMEOUT_MS", "connect", "write"]

BUSY_TIMEOUT_MS = 10_000


def connect(path: str | os.PathLike | None = None) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the store at `path`; None opens a private in-memory one."""
    if path is None or str(path) == ":memory:":
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None
        )
        _set_wal(conn)
    # NORMAL in WAL mode: a committed write survives a crash of the process; a power loss can
    # lose the last transactions but never corrupts the file. PROMSTACK_SYNC=full trades speed
    # for power-loss durability.
    sync = os.environ.get("PROMSTACK_SYNC", "normal").upper()
    if sync not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        sync = "NORMAL"
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn, execute_plugins=False)
    _migrate(db)
    open_chain(db, path)
    return db


def _set_wal(conn: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs a moment alone with it and does not wait on the busy
    # timeout: a process opening the store while another creates it retries instead of failing.
    for attempt in range(WRITE_RETRIES):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == WRITE_RETRIES - 1:
                raise
            backoff(attempt)


def _migrate(db: sqlite_utils.Database) -> None:
    pending = migrations.pending(db)
    if not pending:
        return
    if all(m.transactional for m in pending):
        # Two processes opening a fresh store at once would both run the same migration ("table
        # prompts already exists"): apply under the write lock, where apply() reads what is
        # pending again; each migration becomes a savepoint inside it.
        with write(db):
            migrations.apply(db)
        return
    with write(db):
        pass
    for attempt in range(WRITE_RETRIES):
        try:
            migrations.apply(db)
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == WRITE_RETRIES - 1:
                raise
            backoff(attempt)
