"""The versions, label history and reported calls held up against the audit chain.

The chain proves what was recorded; these checks prove the tables still say the same thing:
every version's sha256 matches its content (the store's own `content_hash`) and the sha256 the
chain recorded when it was saved or imported; every label move matches the set_label /
remove_label row (or the import) the chain recorded, in order; every label points where
its last move left it; and every batch of reported calls still holds the rows and content its
audit row hashed. Versions and moves that came in before the audit log recorded such
things (an import written by an older PromStack) are checked against their own content only.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from .models import content_hash
from .template import Template

VERSION_ACTIONS = frozenset({"create_prompt", "save", "rollback", "merge"})
MOVE_ACTIONS = frozenset({"set_label", "remove_label"})
BATCH_ACTION = "llm_calls"  # one audit row for a batch of reported calls (`store.calls.insert_batch`)
# The call-log columns a batch's hash covers, in the order the log writes them: fixed, so a column
# added later leaves old hashes valid.
HASHED_CALL_COLUMNS = (
    "id", "timestamp", "prompt_id", "prompt_version", "model", "input_tokens", "output_tokens", "latency_ms",
    "user_id", "cost_usd", "cache_hit", "status", "error", "environment", "run_id", "guards", "call_id",
    "prompt_name", "provider", "route", "source", "operation", "flags",
)
_CALL_CONTENT = f"SELECT {', '.join(HASHED_CALL_COLUMNS)} FROM calls WHERE id BETWEEN ? AND ? ORDER BY id"
_REAL_AT = frozenset({HASHED_CALL_COLUMNS.index("latency_ms"), HASHED_CALL_COLUMNS.index("cost_usd")})


def moves_digest(moves: list[list[Any]]) -> str:
    """One hash of imported label moves, each [label, from, to, actor, reason, at]."""
    return hashlib.sha256(json.dumps(moves, ensure_ascii=False).encode()).hexdigest()


def import_record(db: sqlite_utils.Database, prompt_ids: list[int]) -> dict[str, Any]:
    """What an import's audit row keeps of each prompt it brought in, so that `verify()` can
    hold those versions, moves and labels up against the chain like any other."""
    out = {}
    for pid in prompt_ids:
        shas = [r[0] for r in db.execute(
            "SELECT sha256 FROM versions WHERE prompt_id = ? ORDER BY number", [pid])]
        moves = _moves(db, pid)
        labels = dict(db.execute("SELECT name, version FROM labels WHERE prompt_id = ?", [pid]).fetchall())
        out[str(pid)] = {"versions": shas, "moves": len(moves),
                         "moves_sha256": moves_digest([m[1:] for m in moves]), "labels": labels}
    return out


def _moves(db: sqlite_utils.Database, pid: int) -> list[list[Any]]:
    return [list(r) for r in db.execute(
        "SELECT id, label, from_version, to_version, actor, reason, at FROM label_history "
        "WHERE prompt_id = ? ORDER BY id", [pid])]


def check_contents(db: sqlite_utils.Database, rows: list[dict[str, Any]],
                   start: dict[str, Any]) -> tuple[str, list[str]]:
    """(a summary, the problems found) for the chain `rows`, oldest first, already verified.
    `start` says which versions and moves predate the keyed chain: only those may be missing
    from it (an old import recorded only how much it brought in)."""
    names = dict(db.execute("SELECT id, name FROM prompts").fetchall())
    recorded: dict[tuple[int, int], str] = {}
    covered: set[int] = set()  # prompts whose whole life the chain records
    expected: dict[int, list[tuple]] = defaultdict(list)
    for r in rows:
        action, detail, pid = r["action"], r["detail"], r["prompt_id"]
        if action in VERSION_ACTIONS and r["version"] is not None and "sha256" in detail:
            recorded[(pid, r["version"])] = detail["sha256"]
            if action == "create_prompt":
                covered.add(pid)
        elif action in MOVE_ACTIONS and "label" in detail and pid is not None:
            expected[pid].append(("move", r["id"], [detail["label"], detail.get("from"), detail.get("to"),
                                                    r["actor"], detail.get("reason")]))
        elif action == "import" and isinstance(detail.get("prompts"), dict):
            for key, info in detail["prompts"].items():
                pid = int(key)
                covered.add(pid)
                for number, sha in enumerate(info["versions"], 1):
                    recorded[(pid, number)] = sha
                expected[pid].append(("import", r["id"], info))
    problems: list[str] = []
    counts = {"versions": 0, "moves": 0, "old_versions": 0, "old_moves": 0}
    old = (start.get("from_version_id", 0), start.get("from_move_id", 0))
    _check_versions(db, names, recorded, covered, old[0], problems, counts)
    for pid in sorted(names):
        _check_labels(db, pid, names[pid], expected.get(pid, []), pid in covered, old[1], problems, counts)
    reported, call_problems = batch_problems(db, rows)
    problems.extend(call_problems)
    summary = f"{counts['versions']} versions and {counts['moves']} label moves match it"
    if reported:
        summary += f"; {reported} reported calls match it"
    if counts["old_versions"] or counts["old_moves"]:
        summary += (f"; {counts['old_versions']} versions and {counts['old_moves']} label moves from before "
                    "the audit log recorded them were checked against their own content only")
    return summary, problems


def _check_versions(db, names, recorded, covered, old_id, problems, counts) -> None:  # noqa: ANN001
    present = set()
    for row_id, pid, number, kind, text, config, sha in db.execute(
            "SELECT id, prompt_id, number, kind, template, model_config, sha256 FROM versions "
            "ORDER BY prompt_id, number"):
        present.add((pid, number))
        name = names.get(pid, pid)
        try:
            actual = content_hash(Template(kind, text), json.loads(config))
        except (TypeError, ValueError):
            actual = None
        if actual != sha:
            problems.append(f"version {number} of {name!r} does not match its sha256: its template or model "
                            "config was edited in the database")
            continue
        chained = recorded.get((pid, number))
        if chained is None:
            if pid in covered or row_id > old_id:
                problems.append(f"version {number} of {name!r} is not in the audit log: it was added to the "
                                "database directly")
            else:
                counts["old_versions"] += 1
        elif chained != sha:
            problems.append(f"version {number} of {name!r} is not the content the audit log recorded when it "
                            "was saved: it was edited in the database")
        else:
            counts["versions"] += 1
    for pid, number in sorted(set(recorded) - present):
        problems.append(f"version {number} of {names.get(pid, pid)!r} is in the audit log but not in the "
                        "database: it was deleted")


def _check_labels(db, pid, name, expected, covered, old_id, problems, counts) -> None:  # noqa: ANN001
    history = _moves(db, pid)
    wanted = sum(e[2]["moves"] if e[0] == "import" else 1 for e in expected)
    skip = len(history) - wanted if not covered else 0
    old = sum(1 for m in history if m[0] <= old_id) if not covered else 0
    if skip < 0 or skip > old or (covered and len(history) != wanted):
        problems.append(f"the label history of {name!r} has {len(history)} moves where the audit log records "
                        f"{wanted}: moves were deleted or added in the database")
        return
    state: dict[str, int] = {}
    for move in history[:skip]:  # from before the chain recorded moves: replayed, not checked
        _apply(state, move[1], move[3])
    counts["old_moves"] += skip
    at = skip
    for kind, audit_id, info in expected:
        if kind == "import":
            chunk = history[at:at + info["moves"]]
            if moves_digest([m[1:] for m in chunk]) != info["moves_sha256"]:
                problems.append(f"the label moves of {name!r} that audit row {audit_id} (import) brought in "
                                "were edited in the database")
                return
            state = {k: int(v) for k, v in info["labels"].items()}
            at += info["moves"]
            counts["moves"] += info["moves"]
            continue
        move = history[at]
        if move[1:6] != info:
            label, frm, to, actor = move[1:5]
            problems.append(f"label move {move[0]} of {name!r} ({label} v{frm} -> v{to} by {actor}) does not "
                            f"match audit row {audit_id}: the label history was edited")
            return
        _apply(state, move[1], move[3])
        at += 1
        counts["moves"] += 1
    labels = dict(db.execute("SELECT name, version FROM labels WHERE prompt_id = ?", [pid]).fetchall())
    if not covered:  # labels that came with an old import may have no moves to check against
        labels = {k: v for k, v in labels.items() if k in state}
    for label in sorted(set(labels) | set(state)):
        if labels.get(label) != state.get(label):
            where = f"v{labels[label]}" if label in labels else "nothing"
            last = f"v{state[label]}" if label in state else "its removal"
            problems.append(f"label {label!r} of {name!r} points at {where} but its last recorded move was to "
                            f"{last}: the labels table was edited")
            return


def _apply(state: dict[str, int], label: str, to: int | None) -> None:
    if to is None:
        state.pop(label, None)
    else:
        state[label] = to


def calls_digest(db: sqlite_utils.Database, ranges: list[list[int]]) -> str:
    """sha256 of the call rows with ids in these [first, last] ranges, as the store holds them."""
    return rows_digest(row for first, last in ranges for row in db.conn.execute(_CALL_CONTENT, [first, last]))


def rows_digest(rows: Iterable[Sequence[Any]]) -> str:
    """sha256 of call rows given as (the HASHED_CALL_COLUMNS first, in their order). The
    writer hashes the values it inserts and `verify()` the values it reads back, so each value is
    taken as SQLite stores it: the REAL columns as floats (an int sent for a latency is stored
    as 250.0)."""
    width, reals = len(HASHED_CALL_COLUMNS), sorted(_REAL_AT)
    hashed = []
    for row in rows:  # only the REAL columns are touched: a batch is hashed on every report
        values = list(row[:width])
        for i in reals:
            if values[i] is not None:
                values[i] = float(values[i])
        hashed.append(values)
    return hashlib.sha256(json.dumps(hashed, ensure_ascii=False).encode()).hexdigest()


def batch_problems(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(calls checked, problems) for the batch audit rows among the chain's `rows`: each range
    they cover must still hold its count of call rows, with the content the chain recorded."""
    checked, problems = 0, []
    for entry in rows:
        detail = entry["detail"]
        if entry["action"] != BATCH_ACTION or "sha256" not in detail:
            continue
        ranges = detail.get("ids") or []
        present = sum(db.conn.execute("SELECT count(*) FROM calls WHERE id BETWEEN ? AND ?", r).fetchone()[0]
                      for r in ranges)
        where = ", ".join(f"{first}-{last}" for first, last in ranges)
        if present != detail.get("calls"):
            problems.append(f"audit row {entry['id']} covers {detail.get('calls')} reported calls (call log ids "
                            f"{where}) but {present} are there: calls were deleted or renumbered in the database")
        elif calls_digest(db, ranges) != detail["sha256"]:
            problems.append(f"the reported calls that audit row {entry['id']} covers (call log ids {where}) "
                            "were edited in the database")
        else:
            checked += present
    return checked, problems
