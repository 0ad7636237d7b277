"""The call log: one row per model call (hit or miss, success or failure), and its audit row.

The gateway must not wait for SQLite on every call, so rows go through `CallLogWriter`: a queue
that a background thread drains in batches, each batch one `BEGIN IMMEDIATE` transaction with
the calls and their hash-chained audit rows. A batch that fails (the store is locked, the disk
is full) stays queued and is retried; `flush()`/`close()` (and interpreter exit) wait for the
queue to drain, so rows are delayed, never dropped.

A process killed outright (kill -9) never drains its queue, so each row is also appended to a
journal file of the writer's own before it is queued (one `write()`: the kernel keeps it when
the process dies). The journal is emptied whenever the queue has drained, and the next writer
that opens on the store replays the journals of processes that are gone: rows whose call id
is not in the store yet, each with its audit row.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import secrets
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlite_utils

from . import audit, integrity, processes
from .db import write
from .errors import NotFound, Step
from .refs import checked_int, prompt_ref, sql_int

# The guide's log record, in the guide's order; the rest follow it in every JSON we print.
SEED_FIELDS = (
    "timestamp", "prompt_id", "prompt_version", "model", "input_tokens", "output_tokens",
    "latency_ms", "user_id",
)
EXTRA_FIELDS = (
    "cost_usd", "cache_hit", "status", "error", "environment", "run_id", "guards", "call_id",
    "prompt_name", "provider", "route", "source", "operation", "flags",
)
COLUMNS = SEED_FIELDS + EXTRA_FIELDS  # `_values` spells them out in this order
STATUSES = ("ok", "error", "blocked")
# Where a row came from: the gateway's own calls, OTLP spans (/v1/traces), calls apps report.
SOURCES = ("gateway", "otlp", "api")

# The unpriced calls of a selection, the one spelling: how many, and the models they called
# (a NULL cost_usd is a call whose model has no price, never $0).
UNPRICED_SQL = "COALESCE(SUM(cost_usd IS NULL), 0), group_concat(DISTINCT CASE WHEN cost_usd IS NULL THEN model END)"

_INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# The ids first and the columns in integrity's order: a batch's rows are hashed as inserted.
_INSERT_WITH_ID = f"INSERT INTO calls (id, {', '.join(COLUMNS)}) VALUES (?, {', '.join('?' * len(COLUMNS))})"


def _values(row: dict[str, Any]) -> list[Any]:
    # One pass per row on every write path (the gateway's log, reported calls, spans): the
    # common empty guards and flags skip json.dumps.
    get = row.get
    guards, flags = get("guards"), get("flags")
    # cost_usd None stays NULL: the model has no price, so the cost is unknown (not $0)
    return [
        get("timestamp"), get("prompt_id"), get("prompt_version"), get("model"),
        get("input_tokens") or 0, get("output_tokens") or 0,
        0.0 if get("latency_ms") is None else get("latency_ms"), get("user_id"),
        get("cost_usd"), 1 if get("cache_hit") else 0, get("status"), get("error"), get("environment"),
        get("run_id"), json.dumps(guards, ensure_ascii=False, sort_keys=True) if guards else "{}",
        get("call_id"), get("prompt_name"), get("provider"), get("route"), get("source") or "gateway",
        get("operation"), _flags_json(tuple(sorted(flags))) if flags else None,
    ]


@functools.lru_cache(maxsize=64)
def _flags_json(flags: tuple[str, ...]) -> str:
    # a handful of flag sets exist ('unknown_prompt', ...): each one's JSON made once
    return json.dumps(list(flags), ensure_ascii=False)


def insert(
    db: sqlite_utils.Database, rows: Iterable[tuple[dict[str, Any], dict[str, Any] | None]]
) -> int:
    """Write (call row, audit entry or None) pairs in one transaction; returns how many calls."""
    rows = list(rows)
    with write(db):
        # one statement each for the calls and their audit rows: the writer thread holds the
        # GIL for less of a batch run (every row still gets its own chained audit row)
        db.conn.executemany(_INSERT, [_values(row) for row, _ in rows])
        audit.record_many(db, [entry for _, entry in rows if entry is not None])
    return len(rows)


def insert_new(
    db: sqlite_utils.Database, rows: Iterable[tuple[dict[str, Any], dict[str, Any] | None]]
) -> list[bool]:
    """Write the (call row, audit entry or None) pairs whose call_id the log lacks, in one
    transaction: a batch sent twice is stored once. Returns, per pair, whether it was new."""
    new = []
    with write(db):
        for row, entry in rows:
            cursor = db.execute(_INSERT + " ON CONFLICT(call_id) DO NOTHING", _values(row))
            new.append(cursor.rowcount == 1)
            if new[-1] and entry is not None:
                audit.record(db, **entry)
    return new




def insert_batch(
    db: sqlite_utils.Database, rows: list[dict[str, Any]], *, actor: str, source: str
) -> list[bool]:
    """Write the call rows whose call_id the log lacks (a batch sent twice is stored once) with
    ONE audit row for them all, in one transaction; returns, per row, whether it was new.

    The audit row names the rows it covers (their ids, as ranges) and a sha256 of their content
    as stored, so `audit verify` still catches a covered row edited or deleted in the database
    (`integrity.batch_problems`), and every row stays attributable to the reporter who sent it; a batch
    costs one HMAC instead of one per row."""
    new: list[bool] = []
    with write(db):
        wanted = [row["call_id"] for row in rows]
        seen = set()
        for start in range(0, len(wanted), 900):  # under SQLite's bound-parameter limit
            chunk = wanted[start:start + 900]
            seen.update(r[0] for r in db.conn.execute(
                "SELECT call_id FROM calls WHERE call_id IN ({})".format(", ".join("?" * len(chunk))), chunk))
        fresh = []
        for row in rows:
            new.append(row["call_id"] not in seen)
            if new[-1]:
                seen.add(row["call_id"])
                fresh.append(row)
        if not fresh:
            return new
        first = db.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM calls").fetchone()[0]
        # Explicit ids: the batch is one range, so its audit row names it in two numbers.
        stored = [(first + i, *_values(row)) for i, row in enumerate(fresh)]
        db.conn.executemany(_INSERT_WITH_ID, stored)
        last = first + len(fresh) - 1
        prompts = {(row.get("prompt_id"), row.get("prompt_version")) for row in fresh}
        prompt_id, version = prompts.pop() if len(prompts) == 1 else (None, None)
        costs = [row.get("cost_usd") for row in fresh]
        audit.record(
            db, actor, integrity.BATCH_ACTION, prompt_id=prompt_id, version=version,
            detail={"source": source, "calls": len(fresh), "ids": [[first, last]],
                    "sha256": integrity.rows_digest(stored),
                    **({"flagged": n} if (n := sum(1 for row in fresh if row.get("flags"))) else {})},
            input_tokens=sum(row.get("input_tokens") or 0 for row in fresh),
            output_tokens=sum(row.get("output_tokens") or 0 for row in fresh),
            # a batch with an unpriced call has no known total: NULL, as for the call itself
            cost_usd=None if None in costs else sum(costs),
        )
    return new


def _decode(cols: list[str], values: tuple) -> dict[str, Any]:
    item = dict(zip(cols, values, strict=True))
    if "flags" in item:
        item["flags"] = json.loads(item["flags"]) if item["flags"] else []
    item["guards"] = json.loads(item.get("guards") or "{}")
    item["cache_hit"] = bool(item.get("cache_hit"))
    return item


def query(
    db: sqlite_utils.Database,
    *,
    prompt_id: int | None = None,
    prompt_version: int | None = None,
    model: str | None = None,
    status: str | None = None,
    user_id: str | None = None,
    run_id: str | None = None,
    environment: str | None = None,
    cache_hit: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = 100,
    oldest_first: bool = False,
) -> list[dict[str, Any]]:
    """Call rows matching every filter given; newest first unless `oldest_first`."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("prompt_id", prompt_id), ("prompt_version", prompt_version), ("model", model),
        ("status", status), ("user_id", user_id), ("run_id", run_id),
        ("environment", environment),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(sql_int(value) if isinstance(value, int) else value)
    if cache_hit is not None:
        where.append("cache_hit = ?")
        params.append(1 if cache_hit else 0)
    if since is not None:
        where.append("timestamp >= ?")
        params.append(since)
    if until is not None:
        where.append("timestamp < ?")
        params.append(until)
    sql = "SELECT id, " + ", ".join(COLUMNS) + " FROM calls"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id " + ("ASC" if oldest_first else "DESC")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(sql_int(limit))
    cursor = db.execute(sql, params)
    cols = [d[0] for d in cursor.description]
    return [_decode(cols, values) for values in cursor.fetchall()]


def prompt_id_for(db: sqlite_utils.Database, prompt: int | str | None) -> int | None:
    """A prompt id from an id or a name, as the call log is filtered by it; a name nobody has
    called is an error that says so."""
    if prompt is None or prompt == "":
        return None
    if isinstance(prompt_ref(prompt), int):
        return checked_int(int(prompt), "a prompt id")
    row = db.execute("SELECT id FROM prompts WHERE name = ?", [str(prompt)]).fetchone()
    if row is None:
        row = db.execute(
            "SELECT prompt_id FROM calls WHERE prompt_name = ? AND prompt_id IS NOT NULL LIMIT 1",
            [str(prompt)],
        ).fetchone()
    if row is None:
        raise NotFound(f"no prompt named '{prompt}'; ", Step("list_prompts"), " shows the names")
    return int(row[0])


def get(db: sqlite_utils.Database, call_id: str) -> dict[str, Any] | None:
    cursor = db.execute("SELECT id, " + ", ".join(COLUMNS) + " FROM calls WHERE call_id = ?", [call_id])
    cols = [d[0] for d in cursor.description]
    found = cursor.fetchone()
    return _decode(cols, found) if found else None


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the guide's log JSON: its eight fields first, in its order, then ours."""
    out: dict[str, Any] = {}
    for name in COLUMNS:
        value = row.get(name)
        if name == "latency_ms" and value is not None:
            value = int(round(value))  # the guide logs whole milliseconds
        elif name == "timestamp" and isinstance(value, str) and "." in value:
            value = value.split(".", 1)[0] + "Z"  # and whole seconds: "2026-01-09T12:00:00Z"
        out[name] = value
    return out


class CallLogWriter:
    """Batches call rows (and their audit rows) onto a background thread; never drops one.

    `open_db` is called on the writer thread to get its own connection, so the caller's
    connection is never shared across threads. With `open_db=None` and `db` given (an in-memory
    store, which another connection could not see), rows are written at once instead.
    """

    def __init__(
        self,
        open_db: Callable[[], sqlite_utils.Database] | None = None,
        *,
        db: sqlite_utils.Database | None = None,
        interval: float = 0.05,
        max_batch: int = 500,
        journal: str | os.PathLike | None = None,
    ) -> None:
        if open_db is None and db is None:
            raise ValueError("CallLogWriter needs open_db or db")
        self._journal_dir = Path(journal) if journal is not None and open_db is not None else None
        self._journal_fd: int | None = None
        self._journal_lines: list[bytes] = []  # submitted in this turn of the loop, not yet written
        self._journal_flush_due: asyncio.AbstractEventLoop | None = None  # the loop whose turn writes
        self._journal_path: Path | None = None
        if self._journal_dir is not None:
            recover(open_db, self._journal_dir)
        self._open_db = open_db
        self._sync_db = db if open_db is None else None
        self._interval = interval
        self._max_batch = max_batch
        self._pending: deque[tuple[dict[str, Any], dict[str, Any] | None]] = deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # the sync path's connection is shared with its owner
        _live_writers.add(self)

    # ---- producer side ----------------------------------------------------------------

    def submit(self, row: dict[str, Any], audit_entry: dict[str, Any] | None = None) -> None:
        if self._sync_db is not None:
            with self._lock:
                insert(self._sync_db, [(row, audit_entry)])
            return
        with self._cond:
            if self._closed:
                raise RuntimeError("the call log writer is closed")
            if self._journal_dir is not None:
                self._journal(row, audit_entry)
            self._pending.append((row, audit_entry))
            self._submitted += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="promstack-call-log", daemon=True
                )
                self._thread.start()
            if len(self._pending) >= self._max_batch:
                self._cond.notify_all()

    def backlog(self) -> int:
        """Rows submitted and not yet in the store."""
        return len(self._pending)

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until every row submitted so far is in the store."""
        if self._sync_db is not None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            self._cond.notify_all()
            while self._written < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(
                        f"{target - self._written} call-log rows are still queued: "
                        f"{self._error or 'the store is busy'}"
                    )
                self._cond.wait(remaining if remaining is not None else 0.5)

    def close(self) -> None:
        if self._closed:
            return
        if self._journal_fd is not None:
            self.flush_journal()
        self.flush(timeout=60.0)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
            with contextlib.suppress(OSError):
                self._journal_path.unlink()

    def _journal(self, row: dict[str, Any], audit_entry: dict[str, Any] | None) -> None:
        """Append one row to this writer's journal (under the queue's lock, so a truncation after
        a drain never cuts a row that is still queued). Submitted from an event loop, the lines
        of one turn of the loop go out in one write at its end (`flush_journal`): one system
        call, and one hand-over of the GIL to the writer threads, for all the calls that
        finished together instead of one each."""
        if self._journal_fd is None:
            self._journal_dir.mkdir(parents=True, exist_ok=True)
            self._journal_path = self._journal_dir / f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            self._journal_fd = os.open(self._journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = json.dumps([row, audit_entry], ensure_ascii=False, default=str) + "\n"
        self._journal_lines.append(line.encode("utf-8"))
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and self._journal_flush_due is loop:
            return  # this turn's write is already scheduled
        if loop is None or self._journal_flush_due is not None:
            self._write_journal()  # no loop (or another one's turn pending): written now
        else:
            self._journal_flush_due = loop
            loop.call_soon(self.flush_journal)

    def flush_journal(self) -> None:
        """Write the journal lines not yet written; whoever stores something that depends on a
        call (a batch run's results) calls it first."""
        with self._cond:
            self._write_journal()

    def _write_journal(self) -> None:
        self._journal_flush_due = None
        if self._journal_lines and self._journal_fd is not None:
            lines, self._journal_lines = self._journal_lines, []
            os.write(self._journal_fd, b"".join(lines))

    # ---- the writer thread ------------------------------------------------------------

    def _run(self) -> None:
        db = None
        while True:
            with self._cond:
                if not self._pending and not self._closed:
                    self._cond.wait(self._interval)
                if not self._pending:
                    if self._closed:
                        break
                    continue
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), self._max_batch))]
            try:
                if db is None:
                    db = self._open_db()
                insert(db, batch)
            except Exception as exc:  # keep the rows and try again: losing them is worse
                self._error = exc
                print(f"promstack: call log write failed, will retry: {exc}", file=sys.stderr)
                with self._cond:
                    self._pending.extendleft(reversed(batch))
                time.sleep(0.2)
                continue
            with self._cond:
                self._written += len(batch)
                self._error = None
                if self._journal_fd is not None and self._written == self._submitted:
                    os.ftruncate(self._journal_fd, 0)  # every journalled row is in the store
                    self._journal_lines.clear()  # and so are those not written yet
                self._cond.notify_all()
        if db is not None:
            db.close()


def recover(open_db: Callable[[], sqlite_utils.Database], journal_dir: Path) -> int:
    """Replay the journals that processes now gone left behind; returns the rows recovered."""
    try:
        orphans = [p for p in journal_dir.glob("*.jsonl")
                   if p.name.split("-", 1)[0].isdigit() and int(p.name.split("-", 1)[0]) != os.getpid()
                   and not processes.exists(int(p.name.split("-", 1)[0]))]
    except OSError:
        return 0
    if not orphans:
        return 0
    recovered = 0
    db = open_db()
    try:
        for path in orphans:
            entries = []
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:  # another process (a second worker starting) replayed it first
                continue
            for line in text.splitlines():
                try:
                    row, entry = json.loads(line)
                except ValueError:
                    continue  # the last line of a process killed in mid-write
                entries.append((row, entry))
            with write(db):
                for row, entry in entries:
                    if db.execute("SELECT 1 FROM calls WHERE call_id = ?", [row.get("call_id")]).fetchone():
                        continue
                    db.execute(_INSERT, _values(row))
                    if entry is not None:
                        audit.record(db, **entry)
                    recovered += 1
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        db.close()
    if recovered:
        print(f"promstack: recovered {recovered} call-log rows of a process that was killed", file=sys.stderr)
    return recovered


_live_writers: weakref.WeakSet[CallLogWriter] = weakref.WeakSet()


@atexit.register
def _drain_at_exit() -> None:
    for writer in list(_live_writers):
        try:
            writer.close()
        except Exception as exc:  # exit must go on; say what was not written
            print(f"promstack: call log not fully written at exit: {exc}", file=sys.stderr)
