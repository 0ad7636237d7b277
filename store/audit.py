"""The audit log: one row per mutation (who, when, what, which prompt/version, tokens, cost).

Rows are chained: each row's hash covers its number, its content and the previous row's hash,
so an edited, deleted or renumbered row breaks the chain and `verify()` names the first row that
no longer fits. The hash is an HMAC-SHA256 with a key kept outside the database (the
`PROMSTACK_AUDIT_KEY` environment variable, else a 0600 file next to the store), so someone who
can write the database file but does not hold the key cannot recompute the chain after an edit.

Rows written before stores had a key are chained with a plain SHA-256; the `audit_keyed` row
records where the keyed part begins (and the hash it continues from), sealed with the key.

What a chain cannot show on its own is that its newest rows were cut off: `head()` gives
COUNT:HASH, and `verify(expect=...)` checks the chain against a head remembered elsewhere
(a CI log, a ticket), which is how truncation is caught.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils

from .clock import now
from .errors import InvalidInput
from .refs import sql_int
from .tx import write
from .workspace import keep_out_of_git

GENESIS = "0" * 64
KEY_ENV = "PROMSTACK_AUDIT_KEY"
_FIELDS = ("at", "actor", "action", "prompt_id", "version", "detail",
           "input_tokens", "output_tokens", "cost_usd")
_HEAD_RE = re.compile(r"^\s*(\d{1,18}):([0-9a-fA-F]{64})\s*$")


class AuditKeyMissing(InvalidInput):
    """The store's audit log is keyed and this process does not hold that key."""


def _digest(prev_hash: str, row: dict[str, Any]) -> str:
    """The plain chain of rows written before stores had a key."""
    body = json.dumps([prev_hash, *[row.get(f) for f in _FIELDS]], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _keyed_digest(key: bytes, prev_hash: str, row: dict[str, Any]) -> str:
    # The row's number is inside the MAC: moving rows to other ids breaks the chain.
    body = json.dumps([row["id"], prev_hash, *[row.get(f) for f in _FIELDS]], ensure_ascii=False)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _key_id(key: bytes) -> str:
    """Names the key without revealing it: the store keeps this, never the key."""
    return hmac.new(key, b"promstack audit key", hashlib.sha256).hexdigest()


def _seal(key: bytes, start: dict[str, Any]) -> str:
    body = json.dumps(["promstack audit chain starts after", start["from_row"], start["from_hash"],
                       start["from_version_id"], start["from_move_id"]])
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


# ---- the key --------------------------------------------------------------------------------


def key_path(db_path: str | os.PathLike) -> Path:
    """The key file beside a store: `.promstack/audit.key` for a workspace's `promstack.db`."""
    path = Path(db_path)
    name = "audit.key" if path.name == "promstack.db" else f"{path.stem}.audit.key"
    return path.with_name(name)


def _env_key() -> bytes | None:
    value = os.environ.get(KEY_ENV, "").strip()
    return value.encode() if value else None


def _read_key(path: Path) -> bytes | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return value.encode() if value else None


def _create_key(path: Path) -> bytes:
    """A new random key in a 0600 file; if another process created one first, that one."""
    existing = _read_key(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    keep_out_of_git(path)
    value = secrets.token_hex(32)
    # Written whole under a private name, then linked into place: a process starting at the
    # same moment either wins the link or reads the complete key of the one that did.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(value + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _read_key(path) or value.encode()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return value.encode()


@dataclass
class _Chain:
    """What one open database knows about its audit key."""

    key: bytes | None
    problem: str = ""
    start: dict[str, Any] = field(default_factory=dict)


def _db_file(db: sqlite_utils.Database) -> str:
    for _, name, filename in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return filename or ""
    return ""


def _start_row(db: sqlite_utils.Database) -> dict[str, Any] | None:
    cursor = db.execute("SELECT from_row, from_hash, from_version_id, from_move_id, key_id, seal, started_at "
                        "FROM audit_keyed WHERE id = 1")
    row = cursor.fetchone()
    return dict(zip([d[0] for d in cursor.description], row, strict=True)) if row else None


def open_chain(db: sqlite_utils.Database, path: str | os.PathLike | None) -> None:
    """Find this store's key (creating it with a new store) and remember it on `db`.

    Called by `connect()` after migrating. The first open under this version records where the
    keyed chain begins; after that, a missing or different key never starts a second chain:
    audited writes refuse with a sentence until the right key is given."""
    file_key = key_path(path) if path not in (None, "", ":memory:") else None
    key = _env_key() or (_read_key(file_key) if file_key else None)
    if _start_row(db) is None:
        if key is None:
            # A new store (or one from before keys) makes its key; a private in-memory one
            # needs none that outlives it.
            key = _create_key(file_key) if file_key else secrets.token_hex(32).encode()
        with write(db):
            if _start_row(db) is None:
                count, _, from_hash = head(db).partition(":")
                start = {
                    "from_row": int(count), "from_hash": from_hash,
                    # What came before may not be in the chain in detail: only these are let off.
                    "from_version_id": db.execute("SELECT coalesce(max(id), 0) FROM versions").fetchone()[0],
                    "from_move_id": db.execute("SELECT coalesce(max(id), 0) FROM label_history").fetchone()[0],
                }
                db.execute(
                    "INSERT INTO audit_keyed (id, from_row, from_hash, from_version_id, from_move_id, key_id, "
                    "seal, started_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                    [*start.values(), _key_id(key), _seal(key, start), now()],
                )
    if key is None and file_key:
        # Another process creating the same store links its key into place before it records
        # the chain's start: having seen the start, the key is there to read now.
        key = _read_key(file_key)
    start = _start_row(db) or {}
    if key is None:
        problem = (f"this store's audit log is keyed and its key is not here: set {KEY_ENV} (on a server or "
                   "in CI, from a secret) to the key the store was created with"
                   + (f" ({file_key.name} beside it on that machine), or put that file at {file_key}"
                      if file_key else ""))
        db._promstack_audit = _Chain(None, problem, start)
    elif not hmac.compare_digest(_key_id(key), start["key_id"]):
        source = KEY_ENV if _env_key() else str(file_key)
        problem = (f"the audit key in {source} is not this store's key; set {KEY_ENV} to the key "
                   "the store was created with, so its audit log stays one chain")
        db._promstack_audit = _Chain(None, problem, start)
    else:
        db._promstack_audit = _Chain(key, "", start)


def _chain(db: sqlite_utils.Database) -> _Chain:
    chain = getattr(db, "_promstack_audit", None)
    if chain is None:
        open_chain(db, _db_file(db) or None)
        chain = db._promstack_audit
    return chain


def require_key(db: sqlite_utils.Database) -> _Chain:
    """The store's keyed chain; raises the one sentence that says which key to give, if audited
    writes would refuse."""
    chain = _chain(db)
    if chain.key is None:
        raise AuditKeyMissing(chain.problem)
    return chain


# ---- writing and reading --------------------------------------------------------------------


def record(
    db: sqlite_utils.Database,
    actor: str,
    action: str,
    *,
    prompt_id: int | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: float | None = None,
    after: tuple[int, str] | None = None,
) -> tuple[int, str]:
    """Append an audit row; call inside the write transaction of the change it records.
    Returns the row's (id, hash): pass it as `after` to the next record of the same
    transaction (a batch of call rows) to spare reading the chain's head again.

    Without the store's key this raises `AuditKeyMissing`, and the change it was part of rolls
    back with it: a write is never left out of the chain, and never starts a second one."""
    chain = require_key(db)
    last = after or db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_id, prev_hash = last if last else (0, GENESIS)
    row = {
        "id": prev_id + 1,
        "at": now(),
        "actor": actor,
        "action": action,
        "prompt_id": prompt_id,
        "version": version,
        "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
    }
    row["prev_hash"] = prev_hash
    row["hash"] = _keyed_digest(chain.key, prev_hash, row)
    columns = ", ".join(row)
    db.execute(
        f"INSERT INTO audit ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    return row["id"], row["hash"]


def record_many(db: sqlite_utils.Database, items: list[dict[str, Any]]) -> None:
    """Append one audit row per item (the keyword arguments of `record`), chained in order, with
    one INSERT statement for them all; call inside the write transaction of the change they
    record (the call log's batches)."""
    if not items:
        return
    chain = require_key(db)
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_id, prev_hash = last if last else (0, GENESIS)
    at = now()
    rows = []
    for item in items:
        detail = item.get("detail")
        row = {
            "id": prev_id + 1, "at": at, "actor": item["actor"], "action": item["action"],
            "prompt_id": item.get("prompt_id"), "version": item.get("version"),
            "detail": json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
            "input_tokens": item.get("input_tokens"), "output_tokens": item.get("output_tokens"),
            "cost_usd": item.get("cost_usd"), "prev_hash": prev_hash,
        }
        row["hash"] = _keyed_digest(chain.key, prev_hash, row)
        rows.append(tuple(row.values()))
        prev_id, prev_hash = row["id"], row["hash"]
    db.conn.executemany(_INSERT, rows)


_INSERT = ("INSERT INTO audit (id, at, actor, action, prompt_id, version, detail, input_tokens, output_tokens, "
           "cost_usd, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def entries(
    db: sqlite_utils.Database, *, prompt_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = ("WHERE prompt_id = ?", [prompt_id]) if prompt_id is not None else ("", [])
    rows = db.execute(
        f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?", [*params, sql_int(limit)]
    ).fetchall()
    cols = [d[0] for d in db.execute("SELECT * FROM audit LIMIT 0").description]
    out = []
    for r in rows:
        item = dict(zip(cols, r, strict=True))
        item["detail"] = json.loads(item["detail"])
        out.append(item)
    return out


# ---- verifying ------------------------------------------------------------------------------


def parse_head(text: Any) -> tuple[int, str]:
    """'COUNT:HASH' as `audit verify` prints it, or InvalidInput with one sentence."""
    match = _HEAD_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            f"{str(text)[:80]!r} is not an audit head; give COUNT:HASH as 'audit verify' printed it, "
            "e.g. 12:" + "3f" * 32
        )
    return int(match.group(1)), match.group(2).lower()


def format_head(count: int, hash_: str) -> str:
    return f"{count}:{hash_}"


class Report(NamedTuple):
    """What `verify()` found; `ok, message = report[:2]` reads as the old (ok, message) pair."""

    ok: bool
    message: str
    count: int  # rows in the chain as it stands
    head: str  # COUNT:HASH of the chain as it stands: remember it, pass it to --expect later
    problems: tuple[str, ...] = ()


def _walk(db: sqlite_utils.Database, chain: _Chain) -> tuple[list[dict[str, Any]], str | None]:
    """Every row, oldest first, and the first break in the chain (None if it holds)."""
    start = chain.start
    from_row = start.get("from_row", 0)
    if start and not hmac.compare_digest(_seal(chain.key, start), start["seal"]):
        return [], ("the record of where the keyed audit chain begins was edited: "
                    "someone is passing keyed rows off as older, unkeyed ones")
    prev_hash = GENESIS
    rows: list[dict[str, Any]] = []
    cursor = db.execute("SELECT * FROM audit ORDER BY id")
    cols = [d[0] for d in cursor.description]
    for values in cursor:
        row = dict(zip(cols, values, strict=True))
        number = len(rows) + 1
        if row["prev_hash"] != prev_hash:
            return rows, f"audit row {row['id']} does not follow the row before it: a row was deleted or inserted"
        if row["id"] != number:
            return rows, (f"audit row {row['id']} stands where row {number} should: "
                          "rows were renumbered or removed")
        expected = _digest(prev_hash, row) if number <= from_row else _keyed_digest(chain.key, prev_hash, row)
        if not hmac.compare_digest(expected, row["hash"]):
            return rows, f"audit row {row['id']} ({row['action']} at {row['at']}) was edited after it was written"
        if number == from_row and row["hash"] != start["from_hash"]:
            return rows, (f"audit rows up to {number} were rewritten: the keyed chain began from "
                          "a different history")
        prev_hash = row["hash"]
        row["detail"] = json.loads(row["detail"])
        rows.append(row)
    if len(rows) < from_row:
        return rows, (f"the audit log has {len(rows)} rows but the keyed chain began after row {from_row}: "
                      "rows were deleted")
    return rows, None


def head(db: sqlite_utils.Database) -> str:
    """COUNT:HASH of the chain as stored (not verified: `verify()` does that)."""
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    count = db.execute("SELECT count(*) FROM audit").fetchone()[0]
    return format_head(count, last[1] if last else GENESIS)


def verify(db: sqlite_utils.Database, *, expect: str | None = None) -> Report:
    """Walk the keyed chain, then hold the versions and label history up against it.

    `expect` is a head printed earlier (COUNT:HASH): the chain must still hold at least COUNT
    rows whose COUNT-th hashes to HASH, so rows cut off the end since then are caught. Raises
    `AuditKeyMissing` when the key is not here (nothing can be checked without it) and
    InvalidInput for a malformed `expect`."""
    from .integrity import check_contents

    wanted = parse_head(expect) if expect is not None else None
    chain = require_key(db)
    rows, broken = _walk(db, chain)
    count = len(rows)
    current = head(db) if broken else format_head(count, rows[-1]["hash"] if rows else GENESIS)
    problems = [broken] if broken else []
    if wanted is not None and not broken:
        n, want = wanted
        if count < n:
            problems.append(f"the audit log has {count} rows, fewer than the {n} of the head you expected "
                            f"({n}:{want[:12]}...): rows were deleted from its end")
        elif (rows[n - 1]["hash"] if n else GENESIS) != want:
            problems.append(f"audit row {n} does not match the head you expected ({n}:{want[:12]}...): "
                            "the log was rewritten")
    if not broken:
        summary, content_problems = check_contents(db, rows, chain.start)
        problems.extend(content_problems)
    if problems:
        return Report(False, problems[0], count, current, tuple(problems))
    return Report(True, f"{count} audit rows, chain intact; {summary}", count, current)
