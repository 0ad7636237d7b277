"""The server's long operations as rows (m013 `jobs`): any worker of `promstack serve` answers a
poll, and a restart keeps what finished.

A job is written by the worker that runs it (its `holder`, host:pid:nonce), which renews the
row's lease while it runs. A running row whose holder is gone (its process no longer exists on
this host, or the lease ran out) reads as failed: a job never stays "running" for good.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from datetime import timedelta
from typing import Any

import sqlite_utils

from . import processes
from .clock import current, iso, now
from .refs import sql_int
from .tx import write

LEASE_S = 30.0  # a running job's worker renews its rows every third of this
KEEP = 500  # finished jobs kept, newest first ...
KEEP_DAYS = 7  # ... and none older than this
STOPPED = {"type": "Interrupted", "message": "the server stopped while this ran; start it again"}
_COLUMNS = ("id", "kind", "actor", "status", "done", "total", "result", "error", "run_id", "holder",
            "lease_until", "started_at", "updated_at")
_holder: tuple[int, str] | None = None


def holder() -> str:
    """This process's name as a job holder (a forked worker gets its own)."""
    global _holder
    if _holder is None or _holder[0] != os.getpid():
        _holder = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}")
    return _holder[1]


def begin(db: sqlite_utils.Database, job_id: str, kind: str, actor: str | None, by: str) -> None:
    stamp = now()
    with write(db):
        db.execute(
            "INSERT INTO jobs (id, kind, actor, status, holder, lease_until, started_at, updated_at) "
            "VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
            [job_id, kind, actor, by, time.time() + LEASE_S, stamp, stamp],
        )


def progress(db: sqlite_utils.Database, job_id: str, done: int, total: int | None) -> None:
    """Record progress; never moves it back (writes from two threads may land out of order)."""
    with write(db):
        db.execute(
            "UPDATE jobs SET done = MAX(done, ?), total = COALESCE(?, total), updated_at = ? "
            "WHERE id = ? AND status = 'running'",
            [sql_int(done), None if total is None else sql_int(total), now(), job_id],
        )


def name_run(db: sqlite_utils.Database, job_id: str, run_id: str, total: int | None) -> None:
    """The job made store run `run_id`: a poll by either id finds the job."""
    with write(db):
        db.execute("UPDATE jobs SET run_id = ?, total = COALESCE(?, total), updated_at = ? WHERE id = ?",
                   [run_id, total, now(), job_id])


def finish(db: sqlite_utils.Database, job_id: str, status: str, *, result: Any = None,
           error: dict[str, str] | None = None) -> None:
    with write(db):
        db.execute(
            "UPDATE jobs SET status = ?, result = ?, error = ?, updated_at = ? WHERE id = ?",
            [status, None if result is None else json.dumps(result), None if error is None else json.dumps(error),
             now(), job_id],
        )


def forget(db: sqlite_utils.Database, job_id: str) -> None:
    with write(db):
        db.execute("DELETE FROM jobs WHERE id = ?", [job_id])


def renew(db: sqlite_utils.Database, by: str) -> None:
    """Extend the lease on every job `by` runs."""
    with write(db):
        db.execute("UPDATE jobs SET lease_until = ? WHERE holder = ? AND status = 'running'",
                   [time.time() + LEASE_S, by])


def find(db: sqlite_utils.Database, key: str) -> dict[str, Any] | None:
    """The job of id `key`, else the newest job that made run `key`; a running job whose worker
    is gone reads as failed (STOPPED)."""
    select = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
    row = db.execute(f"{select} WHERE id = ?", [key]).fetchone() or db.execute(
        f"{select} WHERE run_id = ? ORDER BY started_at DESC LIMIT 1", [key]).fetchone()
    if row is None:
        return None
    job = dict(zip(_COLUMNS, row, strict=True))
    for column in ("result", "error"):
        job[column] = None if job[column] is None else json.loads(job[column])
    if job["status"] == "running" and not is_alive(job["holder"], job["lease_until"]):
        job["status"], job["error"] = "failed", dict(STOPPED)
    return job


def prune(db: sqlite_utils.Database, keep: int = KEEP, days: float = KEEP_DAYS) -> None:
    """Mark running jobs whose lease ran out as failed; keep the newest `keep` finished jobs
    younger than `days`."""
    cutoff = iso(current() - timedelta(days=days))
    with write(db):
        db.execute("UPDATE jobs SET status = 'failed', error = ?, updated_at = ? "
                   "WHERE status = 'running' AND lease_until < ?", [json.dumps(STOPPED), now(), time.time()])
        db.execute(
            "DELETE FROM jobs WHERE status != 'running' AND (started_at < ? OR id NOT IN "
            "(SELECT id FROM jobs WHERE status != 'running' ORDER BY started_at DESC LIMIT ?))",
            [cutoff, sql_int(keep)],
        )


def is_alive(by: str, lease_until: float) -> bool:
    """Whether the holder `by` may still be running its job: its lease holds and, on this host,
    its process exists (a killed worker is seen at once, not a lease later)."""
    if lease_until < time.time():
        return False
    host, _, rest = by.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return processes.exists(int(pid))
