"""The audit log: one row per mutation (who, when, what, which prompt/version, tokens, cost).

Rows are hash-chained: each row's hash covers its content and the previous row's hash, so an
edited or deleted row breaks the chain and `verify()` names the first row that no longer fits.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlite_utils

from .clock import now

GENESIS = "0" * 64
_FIELDS = ("at", "actor", "action", "prompt_id", "version", "detail",
           "input_tokens", "output_tokens", "cost_usd")


def _digest(prev_hash: str, row: dict[str, Any]) -> str:
    body = json.dumps([prev_hash, *[row.get(f) for f in _FIELDS]], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


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
) -> None:
    """Append an audit row; call inside the write transaction of the change it records."""
    last = db.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_hash = last[0] if last else GENESIS
    row = {
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
    row["hash"] = _digest(prev_hash, row)
    columns = ", ".join(row)
    db.execute(
        f"INSERT INTO audit ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )


def entries(
    db: sqlite_utils.Database, *, prompt_id: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = ("WHERE prompt_id = ?", [prompt_id]) if prompt_id is not None else ("", [])
    rows = db.execute(
        f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    cols = [d[0] for d in db.execute("SELECT * FROM audit LIMIT 0").description]
    out = []
    for r in rows:
        item = dict(zip(cols, r, strict=True))
        item["detail"] = json.loads(item["detail"])
        out.append(item)
    return out


def verify(db: sqlite_utils.Database) -> tuple[bool, str]:
    """Walk the chain; (True, summary) or (False, the first row that was edited or removed)."""
    prev_hash = GENESIS
    count = 0
    cursor = db.execute("SELECT * FROM audit ORDER BY id")
    cols = [d[0] for d in cursor.description]
    for values in cursor:
        row = dict(zip(cols, values, strict=True))
        if row["prev_hash"] != prev_hash:
            return False, f"audit row {row['id']} does not follow the row before it: a row was deleted or inserted"
        if _digest(prev_hash, row) != row["hash"]:
            return False, f"audit row {row['id']} ({row['action']} at {row['at']}) was edited after it was written"
        prev_hash = row["hash"]
        count += 1
    return True, f"{count} audit rows, chain intact"
