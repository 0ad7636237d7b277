"""Shared checks for the robustness tests: the store's invariants, and a bound on how long a
piece of work may take (a test that hangs fails with a sentence instead of stalling the suite)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def integrity_ok(db: Path) -> None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def version_invariants(db: Path) -> dict[int, int]:
    """Per prompt: numbers 1..n with no gap or duplicate, every parent an earlier version of the
    same prompt, every branch head an existing version. Returns {prompt_id: versions}."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        counts: dict[int, int] = {}
        for (pid,) in conn.execute("SELECT id FROM prompts"):
            numbers = [n for (n,) in conn.execute(
                "SELECT number FROM versions WHERE prompt_id = ? ORDER BY number", [pid])]
            assert numbers == list(range(1, len(numbers) + 1)), (pid, numbers[:20])
            for number, parent in conn.execute(
                    "SELECT number, parent FROM versions WHERE prompt_id = ?", [pid]):
                assert parent is None or 1 <= parent < number, (pid, number, parent)
            for name, head in conn.execute("SELECT name, head FROM branches WHERE prompt_id = ?", [pid]):
                assert head is None or 1 <= head <= len(numbers), (pid, name, head)
            counts[pid] = len(numbers)
        return counts
    finally:
        conn.close()


def within(seconds: float, work: Callable[[], Any], what: str) -> Any:
    """Run `work` on a thread; fail (not hang) when it has not returned after `seconds`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"bounded: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{what} did not finish within {seconds:g} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")
