"""A store's change mark: a short token that moves whenever what a prompt listing shows moves
(a prompt made, archived or restored, a version saved, a label moved, a quick check of a save
finished), and stays when nothing did. A client far from the store (the MCP server on a laptop
over a team server) compares marks every few seconds instead of reading every prompt."""

from __future__ import annotations

import hashlib

import sqlite_utils

from .checks import finished_mark


def change_mark(db: sqlite_utils.Database) -> str:
    """The store's change mark (opaque; equal marks: nothing listed changed in between). Each
    part reads an index or a primary key: the cost does not grow with the store."""
    versions, prompts, archived, moves = db.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM versions),"
        " (SELECT coalesce(max(id), 0) FROM prompts),"
        " (SELECT coalesce(sum(id), 0) || '.' || count(*) FROM prompts WHERE archived_at IS NOT NULL),"
        " (SELECT coalesce(max(id), 0) FROM label_history)"
    ).fetchone()
    checks = finished_mark(db)
    parts = f"{versions}|{prompts}|{archived}|{moves}|{checks[0]}|{checks[1] or ''}"
    return hashlib.sha256(parts.encode()).hexdigest()[:20]
