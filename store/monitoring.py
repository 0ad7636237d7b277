"""Alert state and history, and the OTLP export cursor (tables made by m005_monitoring).

An alert is one episode: it opens when a rule fires for a scope and closes when the rule stops
firing. A partial unique index allows one open alert per (rule, scope), so two checkers racing
(cron and a dashboard) cannot both open it: the loser sees the winner's row. Every opening,
closing and notification outcome is an append-only row in `alert_events`; openings and closings
also write an audit row, in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils

from . import audit
from .clock import now
from .db import write
from .refs import sql_int

ACTOR = "promstack-alerts"

_ALERT_COLUMNS = (
    "id", "rule", "scope", "fired_at", "resolved_at", "value", "threshold", "last_value",
    "last_checked_at", "message", "detail",
)


def _alert(values: tuple) -> dict[str, Any]:
    item = dict(zip(_ALERT_COLUMNS, values, strict=True))
    item["detail"] = json.loads(item["detail"] or "{}")
    item["state"] = "firing" if item["resolved_at"] is None else "resolved"
    return item


def open_alert(db: sqlite_utils.Database, rule: str, scope: str) -> dict[str, Any] | None:
    row = db.execute(
        f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts "
        "WHERE rule = ? AND scope = ? AND resolved_at IS NULL",
        [rule, scope],
    ).fetchone()
    return _alert(row) if row else None


def open_alerts(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = db.execute(
        f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts WHERE resolved_at IS NULL ORDER BY id"
    ).fetchall()
    return [_alert(r) for r in rows]


def list_alerts(
    db: sqlite_utils.Database, *, state: str | None = None, limit: int | None = 100
) -> list[dict[str, Any]]:
    """Alerts newest first; `state` is 'firing', 'resolved' or None for both."""
    sql = f"SELECT {', '.join(_ALERT_COLUMNS)} FROM alerts"
    if state == "firing":
        sql += " WHERE resolved_at IS NULL"
    elif state == "resolved":
        sql += " WHERE resolved_at IS NOT NULL"
    sql += " ORDER BY id DESC"
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(sql_int(limit))
    return [_alert(r) for r in db.execute(sql, params).fetchall()]


def fire(
    db: sqlite_utils.Database,
    rule: str,
    scope: str,
    *,
    value: float | None,
    threshold: float | None,
    message: str,
    detail: dict[str, Any] | None = None,
    at: str | None = None,
    actor: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Open an alert for (rule, scope) unless one is open; returns (alert, newly_opened)."""
    at = at or now()
    body = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)
    with write(db):
        existing = open_alert(db, rule, scope)
        if existing is not None:
            db.execute(
                "UPDATE alerts SET last_value = ?, last_checked_at = ? WHERE id = ?",
                [value, at, existing["id"]],
            )
            existing.update(last_value=value, last_checked_at=at)
            return existing, False
        try:
            cursor = db.execute(
                "INSERT INTO alerts (rule, scope, fired_at, value, threshold, last_value, "
                "last_checked_at, message, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [rule, scope, at, value, threshold, value, at, message, body],
            )
        except sqlite3.IntegrityError:  # another checker opened it first: it is the same alert
            return open_alert(db, rule, scope), False  # type: ignore[return-value]
        alert_id = cursor.lastrowid
        _event(db, alert_id, "fired", {"value": value, "threshold": threshold, "message": message}, at)
        audit.record(db, actor or ACTOR, "alert_fired", detail={
            "alert_id": alert_id, "rule": rule, "scope": scope, "value": value, "threshold": threshold})
    return open_alert(db, rule, scope) or {}, True


def resolve(
    db: sqlite_utils.Database, rule: str, scope: str, *, value: float | None, at: str | None = None,
    actor: str | None = None,
) -> dict[str, Any] | None:
    """Close the open alert for (rule, scope); returns it, or None when none was open."""
    at = at or now()
    with write(db):
        existing = open_alert(db, rule, scope)
        if existing is None:
            return None
        db.execute(
            "UPDATE alerts SET resolved_at = ?, last_value = ?, last_checked_at = ? WHERE id = ?",
            [at, value, at, existing["id"]],
        )
        _event(db, existing["id"], "resolved", {"value": value}, at)
        audit.record(db, actor or ACTOR, "alert_resolved", detail={
            "alert_id": existing["id"], "rule": rule, "scope": scope, "value": value})
    existing.update(resolved_at=at, last_value=value, last_checked_at=at, state="resolved")
    return existing


def record_event(
    db: sqlite_utils.Database, alert_id: int, kind: str, detail: dict[str, Any] | None = None
) -> None:
    with write(db):
        _event(db, alert_id, kind, detail or {}, now())


def _event(db: sqlite_utils.Database, alert_id: int, kind: str, detail: dict[str, Any], at: str) -> None:
    db.execute(
        "INSERT INTO alert_events (alert_id, kind, at, detail) VALUES (?, ?, ?, ?)",
        [alert_id, kind, at, json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)],
    )


def events(db: sqlite_utils.Database, alert_id: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT id, alert_id, kind, at, detail FROM alert_events"
    params: list[Any] = []
    if alert_id is not None:
        sql += " WHERE alert_id = ?"
        params.append(alert_id)
    rows = db.execute(sql + " ORDER BY id", params).fetchall()
    return [
        {"id": r[0], "alert_id": r[1], "kind": r[2], "at": r[3], "detail": json.loads(r[4])}
        for r in rows
    ]


def take_round(db: sqlite_utils.Database, name: str, number: int, holder: str) -> bool:
    """Claim round `number` of the schedule `name` for `holder`: True for the first claimant,
    False when this round (or a later one) was taken already, by anyone."""
    with write(db):
        cursor = db.execute(
            "INSERT INTO check_rounds (name, round, holder, started_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET round = excluded.round, holder = excluded.holder, "
            "started_at = excluded.started_at, finished_at = NULL WHERE check_rounds.round < excluded.round",
            [name, sql_int(number), holder, now()],
        )
        return cursor.rowcount == 1


def finish_round(db: sqlite_utils.Database, name: str, number: int, result: dict[str, Any]) -> None:
    """Record what round `number` found (unless a later round has started since)."""
    with write(db):
        db.execute(
            "UPDATE check_rounds SET finished_at = ?, result = ? WHERE name = ? AND round = ?",
            [now(), json.dumps(result, ensure_ascii=False, sort_keys=True, default=str), name, sql_int(number)],
        )


def last_round(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """The schedule's latest round: {round, holder, started_at, finished_at, result}, or None."""
    row = db.execute(
        "SELECT round, holder, started_at, finished_at, result FROM check_rounds WHERE name = ?", [name]
    ).fetchone()
    if row is None:
        return None
    return {"round": row[0], "holder": row[1], "started_at": row[2], "finished_at": row[3],
            "result": json.loads(row[4]) if row[4] else None}


def get_cursor(db: sqlite_utils.Database, name: str) -> int:
    row = db.execute("SELECT last_id FROM export_cursors WHERE name = ?", [name]).fetchone()
    return int(row[0]) if row else 0


def set_cursor(db: sqlite_utils.Database, name: str, last_id: int) -> None:
    with write(db):
        db.execute(
            "INSERT INTO export_cursors (name, last_id, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id, updated_at = excluded.updated_at",
            [name, int(last_id), now()],
        )
