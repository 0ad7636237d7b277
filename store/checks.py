"""The quick check of a new version (promstack.evals.check), as the store keeps it: one row per
version, from the save that made it to the annotation.

`enqueue` runs inside the save's own transaction (`PromptStore._insert_version`), so no face can
make a version the check misses: 'pending' when a suite is tied to the prompt (or its
.prompt.yml carries test data), else 'no_suite' at once. A checker `claim`s a pending row with a
lease (a row whose lease ran out, its checker killed, is claimable again), and `finish`es it
only while it holds the lease, so two processes over one store check a version once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from .clock import now
from .tx import write

PENDING, RUNNING = "pending", "running"
DONE = ("checked", "not_checked", "no_suite", "off")


def is_tied(db: sqlite_utils.Database, prompt_id: int) -> bool:
    """Whether a suite is tied to the prompt, or its prompt file carries test data."""
    return db.execute(
        "SELECT EXISTS (SELECT 1 FROM suites WHERE prompt_id = ?) "
        "OR EXISTS (SELECT 1 FROM prompt_files WHERE prompt_id = ? AND test_data IS NOT NULL)",
        [prompt_id, prompt_id],
    ).fetchone()[0] == 1


def enqueue(db: sqlite_utils.Database, prompt_id: int, version: int, branch: str) -> str:
    """The row of a version just made; call inside its write transaction. Returns its status."""
    status = PENDING if is_tied(db, prompt_id) else "no_suite"
    stamp = now()
    db.execute(
        "INSERT OR IGNORE INTO version_checks (prompt_id, version, branch, status, created_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [prompt_id, version, branch, status, stamp, None if status == PENDING else stamp],
    )
    return status


def open_rows(db: sqlite_utils.Database, at: float | None = None) -> list[dict[str, Any]]:
    """Rows waiting for a checker (pending, or running under a lease that ran out), oldest
    first, each with when its version was made and when the version before it was."""
    at = time.time() if at is None else at
    rows = db.execute(
        """SELECT c.prompt_id, c.version, c.branch, c.status, v.created_at,
                  (SELECT p.created_at FROM versions p WHERE p.prompt_id = c.prompt_id
                   AND p.number < c.version ORDER BY p.number DESC LIMIT 1)
           FROM version_checks c JOIN versions v ON v.prompt_id = c.prompt_id AND v.number = c.version
           WHERE c.status = 'pending' OR (c.status = 'running' AND c.lease_until < ?)
           ORDER BY c.prompt_id, c.version""",
        [at],
    ).fetchall()
    keys = ("prompt_id", "version", "branch", "status", "created_at", "previous_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def claim(db: sqlite_utils.Database, prompt_id: int, version: int, holder: str, lease_s: float) -> bool:
    """Take a row for checking; False when another checker holds it or it is done."""
    at = time.time()
    with write(db):
        cursor = db.execute(
            "UPDATE version_checks SET status = 'running', lease_owner = ?, lease_until = ? "
            "WHERE prompt_id = ? AND version = ? "
            "AND (status = 'pending' OR (status = 'running' AND lease_until < ?))",
            [holder, at + lease_s, prompt_id, version, at],
        )
        return cursor.rowcount == 1


def renew(db: sqlite_utils.Database, prompt_id: int, version: int, holder: str, lease_s: float) -> bool:
    """Extend `holder`'s lease on a row it is still checking; False when it no longer holds it."""
    with write(db):
        return db.execute(
            "UPDATE version_checks SET lease_until = ? WHERE prompt_id = ? AND version = ? "
            "AND status = 'running' AND lease_owner = ?",
            [time.time() + lease_s, prompt_id, version, holder],
        ).rowcount == 1


def finish(db: sqlite_utils.Database, prompt_id: int, version: int, status: str, result: dict[str, Any],
           *, cost_usd: float | None = None, holder: str | None = None) -> bool:
    """Record the annotation. With `holder`, only while that checker still holds the row (a
    checker whose lease ran out and was taken over writes nothing); without, only while the
    row is still open. Returns whether it was written."""
    if status not in DONE:
        raise ValueError(f"a finished check is one of {DONE}, not {status!r}")
    body = json.dumps(result, ensure_ascii=False, default=str)
    with write(db):
        if holder is not None:
            cursor = db.execute(
                "UPDATE version_checks SET status = ?, result = ?, cost_usd = ?, finished_at = ?, "
                "lease_until = NULL WHERE prompt_id = ? AND version = ? AND status = 'running' AND lease_owner = ?",
                [status, body, cost_usd, now(), prompt_id, version, holder],
            )
        else:
            cursor = db.execute(
                "UPDATE version_checks SET status = ?, result = ?, cost_usd = ?, finished_at = ?, "
                "lease_until = NULL WHERE prompt_id = ? AND version = ? AND status IN ('pending', 'running')",
                [status, body, cost_usd, now(), prompt_id, version],
            )
        return cursor.rowcount == 1


def supersede(db: sqlite_utils.Database, prompt_id: int, version: int, result: dict[str, Any]) -> bool:
    """Close a pending row unchecked because a newer save of its branch is checked instead (a
    row being checked is left to finish)."""
    with write(db):
        return db.execute(
            "UPDATE version_checks SET status = 'not_checked', result = ?, finished_at = ? "
            "WHERE prompt_id = ? AND version = ? AND status = 'pending'",
            [json.dumps(result, ensure_ascii=False), now(), prompt_id, version],
        ).rowcount == 1


def read(db: sqlite_utils.Database, prompt_id: int, versions: list[int] | None = None) -> dict[int, dict[str, Any]]:
    """version -> its row (status, result, cost_usd, finished_at), for the versions given (all
    of the prompt's when None)."""
    sql = ("SELECT version, status, result, cost_usd, finished_at, created_at FROM version_checks "
           "WHERE prompt_id = ?")
    params: list[Any] = [prompt_id]
    if versions is not None:
        if not versions:
            return {}
        sql += f" AND version IN ({', '.join('?' * len(versions))})"
        params += list(versions)
    out = {}
    for version, status, result, cost, finished_at, created_at in db.execute(sql, params):
        out[version] = {"status": status, "result": json.loads(result) if result else {}, "cost_usd": cost,
                        "finished_at": finished_at, "created_at": created_at}
    return out


def spent_since(db: sqlite_utils.Database, since: str) -> float:
    """What finished checks cost from `since` (an ISO time) on."""
    return db.execute(
        "SELECT coalesce(sum(cost_usd), 0) FROM version_checks WHERE finished_at >= ?", [since]
    ).fetchone()[0]


def finished_mark(db: sqlite_utils.Database) -> tuple[int, str | None]:
    """(how many checks finished, the newest finish): moves whenever one finishes."""
    count, newest = db.execute(
        "SELECT count(*), max(finished_at) FROM version_checks WHERE status IN ('checked', 'not_checked')"
    ).fetchone()
    return count, newest
