"""Transactions: every write is one `BEGIN IMMEDIATE` transaction, retried while another writer
holds the lock.

Taking the write lock up front means two processes saving to the same prompt queue on the busy
timeout instead of failing with SQLITE_BUSY when a read transaction tries to upgrade. Callers
name it `store.db.write`; it lives here so the modules `connect` opens (the audit chain) can use
it without importing `db`.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Iterator

import sqlite_utils

from .errors import Busy

WRITE_RETRIES = 8


@contextlib.contextmanager
def write(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One logical change as one IMMEDIATE transaction; nested calls become savepoints."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    for attempt in range(WRITE_RETRIES):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == WRITE_RETRIES - 1:
                if is_busy(exc):
                    raise Busy(
                        "the store stayed locked by another writer; try again in a moment"
                    ) from exc
                raise
            backoff(attempt)
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 1.0) * (0.5 + random.random()))
