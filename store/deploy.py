"""Deployments, deploy locks and splits (A/B tests, rollouts): the tables m006_deploy makes.

Only rows live here; the rules (gates, approvals, who may hold a lock) are in promstack/deploy.py.
Every function that writes expects to run inside the caller's `write()` transaction, so a label
move and the deployment row that explains it commit together or not at all.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import sqlite_utils

from .clock import now
from .refs import sql_int

_DEPLOY_COLUMNS = (
    "id", "prompt_id", "environment", "kind", "from_version", "to_version", "status", "forced",
    "skipped", "gate", "reason", "requested_by", "requested_at", "decided_by", "decided_at", "error",
)
_SPLIT_COLUMNS = (
    "id", "prompt_id", "environment", "kind", "version_a", "version_b", "percent", "salt", "status",
    "started_at", "started_by", "ended_at", "ended_by", "outcome", "detail",
)


def _deployment(values: tuple) -> dict[str, Any]:
    item = dict(zip(_DEPLOY_COLUMNS, values, strict=True))
    item["forced"] = bool(item["forced"])
    item["skipped"] = json.loads(item["skipped"] or "[]")
    item["gate"] = json.loads(item["gate"] or "{}")
    return item


def _split(values: tuple) -> dict[str, Any]:
    item = dict(zip(_SPLIT_COLUMNS, values, strict=True))
    item["detail"] = json.loads(item["detail"] or "{}")
    return item


# ---- deployments ------------------------------------------------------------------------------


def insert_deployment(db: sqlite_utils.Database, **row: Any) -> int:
    row.setdefault("requested_at", now())
    for key in ("skipped", "gate"):
        if key in row and not isinstance(row[key], str):
            row[key] = json.dumps(row[key], ensure_ascii=False, default=str)
    row["forced"] = int(bool(row.get("forced", False)))
    cursor = db.execute(
        f"INSERT INTO deployments ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    return int(cursor.lastrowid)


def update_deployment(db: sqlite_utils.Database, deployment_id: int, **changes: Any) -> None:
    for key in ("skipped", "gate"):
        if key in changes and not isinstance(changes[key], str):
            changes[key] = json.dumps(changes[key], ensure_ascii=False, default=str)
    sets = ", ".join(f"{k} = ?" for k in changes)
    db.execute(f"UPDATE deployments SET {sets} WHERE id = ?", [*changes.values(), deployment_id])


def deployment(db: sqlite_utils.Database, deployment_id: int) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {', '.join(_DEPLOY_COLUMNS)} FROM deployments WHERE id = ?", [deployment_id]
    ).fetchone()
    return _deployment(row) if row else None


def deployments(
    db: sqlite_utils.Database, *, prompt_id: int | None = None, environment: str | None = None,
    status: str | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest first."""
    where, params = [], []
    for column, value in (("prompt_id", prompt_id), ("environment", environment), ("status", status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {', '.join(_DEPLOY_COLUMNS)} FROM deployments"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    return [_deployment(r) for r in db.execute(sql, [*params, sql_int(limit)]).fetchall()]


# ---- locks ------------------------------------------------------------------------------------


def lock_holder(db: sqlite_utils.Database, prompt_id: int) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT prompt_id, deployment_id, holder, host, pid, acquired_at FROM deploy_locks WHERE prompt_id = ?",
        [prompt_id],
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("prompt_id", "deployment_id", "holder", "host", "pid", "acquired_at"), row, strict=True))


def take_lock(db: sqlite_utils.Database, prompt_id: int, holder: str, deployment_id: int | None = None) -> None:
    """Insert or replace the prompt's lock row (the caller decided it may)."""
    db.execute(
        "INSERT INTO deploy_locks (prompt_id, deployment_id, holder, host, pid, acquired_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (prompt_id) DO UPDATE SET deployment_id = excluded.deployment_id, "
        "holder = excluded.holder, host = excluded.host, pid = excluded.pid, acquired_at = excluded.acquired_at",
        [prompt_id, deployment_id, holder, socket.gethostname(), os.getpid(), now()],
    )


def release_lock(db: sqlite_utils.Database, prompt_id: int, deployment_id: int | None) -> None:
    db.execute("DELETE FROM deploy_locks WHERE prompt_id = ? AND deployment_id IS ?", [prompt_id, deployment_id])


# ---- splits -----------------------------------------------------------------------------------


def active_split(db: sqlite_utils.Database, prompt_id: int, environment: str) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {', '.join(_SPLIT_COLUMNS)} FROM splits WHERE prompt_id = ? AND environment = ? "
        "AND status = 'active'",
        [prompt_id, environment],
    ).fetchone()
    return _split(row) if row else None


def split(db: sqlite_utils.Database, split_id: int) -> dict[str, Any] | None:
    row = db.execute(f"SELECT {', '.join(_SPLIT_COLUMNS)} FROM splits WHERE id = ?", [split_id]).fetchone()
    return _split(row) if row else None


def splits(db: sqlite_utils.Database, *, prompt_id: int | None = None, kind: str | None = None,
           limit: int = 50) -> list[dict[str, Any]]:
    where, params = [], []
    for column, value in (("prompt_id", prompt_id), ("kind", kind)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {', '.join(_SPLIT_COLUMNS)} FROM splits"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    return [_split(r) for r in db.execute(sql, [*params, sql_int(limit)]).fetchall()]


def insert_split(db: sqlite_utils.Database, **row: Any) -> int:
    row.setdefault("started_at", now())
    row["detail"] = json.dumps(row.get("detail") or {}, ensure_ascii=False)
    cursor = db.execute(
        f"INSERT INTO splits ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    return int(cursor.lastrowid)


def update_split(db: sqlite_utils.Database, split_id: int, **changes: Any) -> None:
    if "detail" in changes and not isinstance(changes["detail"], str):
        changes["detail"] = json.dumps(changes["detail"], ensure_ascii=False)
    sets = ", ".join(f"{k} = ?" for k in changes)
    db.execute(f"UPDATE splits SET {sets} WHERE id = ?", [*changes.values(), split_id])
