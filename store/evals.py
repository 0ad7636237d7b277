"""Test suites, their cases, test runs and their results, arena matches and human votes.

Results are keyed by (run, case, model, repeat index); the run fixes the prompt version and the
judge configuration, so a row's presence is exactly "this unit of work is done" and a resumed run
skips it. Cases are addressed by a content key (a hash of what the case says, plus an ordinal
among identical cases), so a re-imported suite keeps the results of the cases that did not change.
Writes are batched: one transaction per batch of finished results.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from .clock import now
from .db import write
from .errors import InvalidInput, NotFound, Step
from .refs import sql_int

RESULT_COLUMNS = (
    "run_id", "case_key", "case_idx", "model", "prompt_version", "repeat", "judge_key", "status",
    "score", "output", "reason", "checks", "input_tokens", "output_tokens", "cost_usd",
    "latency_ms", "cache_hit", "attempts", "error", "finished_at", "criteria",
)
MATCH_COLUMNS = (
    "run_id", "case_key", "case_idx", "model_a", "model_b", "output_a", "output_b", "first",
    "verdict_ab", "verdict_ba", "winner", "flipped", "reason", "error", "at",
)
CASE_COLUMNS = ("idx", "case_key", "input", "expected", "variables", "assertions", "line")
RUN_STATUSES = ("running", "done", "interrupted", "failed")


def case_key(case: dict[str, Any], ordinal: int = 0) -> str:
    body = json.dumps(
        [case.get("input"), case.get("expected"), case.get("variables") or {}, case.get("assertions") or []],
        ensure_ascii=False, sort_keys=True, separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()[:20] + (f"-{ordinal}" if ordinal else "")


RUN_ID = re.compile(r"r\d{8}-\d{6}-[0-9a-f]{6}")


def new_run_id() -> str:
    # Sortable by time, unique across processes: 'r20261125-193600-1a2b3c'.
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"r{stamp}-{secrets.token_hex(3)}"


class EvalStore:
    """Suites, cases, runs, results, matches and votes over one database."""

    def __init__(self, db: sqlite_utils.Database, *, actor: str) -> None:
        self.db = db
        self.actor = actor

    # ---- suites -------------------------------------------------------------------------

    def save_suite(
        self,
        name: str,
        cases: Iterable[dict[str, Any]],
        *,
        fmt: str,
        source: str,
        sha256: str,
        prompt_id: int | None = None,
        config: dict[str, Any] | None = None,
        batch: int = 2000,
    ) -> dict[str, Any]:
        """Create or replace suite `name` with `cases` (consumed lazily, written in batches, all
        in one transaction: a bad row halfway leaves the previous suite as it was)."""
        at = now()
        with write(self.db):
            row = self.db.execute("SELECT id FROM suites WHERE name = ?", [name]).fetchone()
            if row is None:
                cur = self.db.execute(
                    "INSERT INTO suites (name, prompt_id, source, format, sha256, case_count, config,"
                    " created_at, updated_at, created_by) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                    [name, prompt_id, source, fmt, sha256, json.dumps(config or {}, ensure_ascii=False),
                     at, at, self.actor],
                )
                suite_id = cur.lastrowid
            else:
                suite_id = row[0]
                self.db.execute("DELETE FROM cases WHERE suite_id = ?", [suite_id])
            seen: dict[str, int] = {}
            pending: list[list[Any]] = []
            count = 0
            for case in cases:
                base = case_key(case)
                ordinal = seen.get(base, 0)
                seen[base] = ordinal + 1
                pending.append([
                    suite_id, count, case_key(case, ordinal), case.get("input"), case.get("expected"),
                    json.dumps(case.get("variables") or {}, ensure_ascii=False),
                    json.dumps(case.get("assertions") or [], ensure_ascii=False), case.get("line"),
                ])
                count += 1
                if len(pending) >= batch:
                    self._insert_cases(pending)
                    pending = []
            if pending:
                self._insert_cases(pending)
            self.db.execute(
                "UPDATE suites SET prompt_id = coalesce(?, prompt_id), source = ?, format = ?, sha256 = ?,"
                " case_count = ?, config = ?, updated_at = ? WHERE id = ?",
                [prompt_id, source, fmt, sha256, count, json.dumps(config or {}, ensure_ascii=False),
                 at, suite_id],
            )
        return self.suite(name)

    def _insert_cases(self, rows: list[list[Any]]) -> None:
        self.db.conn.executemany(
            "INSERT INTO cases (suite_id, idx, case_key, input, expected, variables, assertions, line)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def suite(self, name: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT id, name, prompt_id, source, format, sha256, case_count, config, created_at,"
            " updated_at, created_by FROM suites WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            known = [r[0] for r in self.db.execute("SELECT name FROM suites ORDER BY name")]
            listing = ", ".join(known) if known else "none yet"
            raise NotFound(
                f"there is no test suite {name!r} (suites in the store: {listing}); import one with ",
                Step("import_suite", suite=name), f" or put it in tests/prompts/{name}.csv",
            )
        return _suite_dict(row)

    def find_suite(self, name: str) -> dict[str, Any] | None:
        try:
            return self.suite(name)
        except NotFound:
            return None

    def suites(self, prompt_id: int | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE prompt_id = ?", [prompt_id]) if prompt_id is not None else ("", [])
        rows = self.db.execute(
            "SELECT id, name, prompt_id, source, format, sha256, case_count, config, created_at,"
            f" updated_at, created_by FROM suites {where} ORDER BY name", args
        ).fetchall()
        return [_suite_dict(r) for r in rows]

    def iter_cases(self, suite_id: int, *, page: int = 500, start: int = 0) -> Iterator[dict[str, Any]]:
        """Cases in order, read a page at a time: memory stays flat on a large suite."""
        last = start - 1
        while True:
            rows = self.db.execute(
                f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE suite_id = ? AND idx > ?"
                " ORDER BY idx LIMIT ?", [suite_id, last, page]
            ).fetchall()
            if not rows:
                return
            for r in rows:
                yield _case_dict(r)
            last = rows[-1][0]

    def cases(self, suite_id: int, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.db.execute(
            f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE suite_id = ? ORDER BY idx LIMIT ? OFFSET ?",
            [suite_id, limit, offset],
        ).fetchall()
        return [_case_dict(r) for r in rows]

    def case_columns(self, suite_id: int) -> tuple[bool, bool, list[str]]:
        """Whether any case has an input, whether any has an expected output, and the names of
        the variables the cases give (sorted)."""
        row = self.db.execute(
            "SELECT max(input IS NOT NULL), max(expected IS NOT NULL AND expected != '') FROM cases"
            " WHERE suite_id = ?", [suite_id],
        ).fetchone()
        keys = [r[0] for r in self.db.execute(
            "SELECT DISTINCT j.key FROM cases, json_each(cases.variables) AS j WHERE cases.suite_id = ?"
            " ORDER BY j.key", [suite_id],
        )]
        has_input, has_expected = (bool(row[0]), bool(row[1])) if row else (False, False)
        return has_input, has_expected, keys

    def cases_need_judge(self, suite_id: int) -> bool:
        """Whether a case has an expected output that is no `equals:` / `contains:` / `regex:`
        check, or a judged assertion (`llm-rubric`, `expected`)."""
        prefixes = " AND ".join(f"lower(ltrim(expected)) NOT LIKE '{p}:%'" for p in ("equals", "contains", "regex"))
        row = self.db.execute(
            "SELECT 1 FROM cases WHERE suite_id = ? AND ((expected IS NOT NULL AND trim(expected) != ''"
            f" AND {prefixes}) OR assertions LIKE '%llm-rubric%' OR assertions LIKE '%\"expected\"%') LIMIT 1",
            [suite_id],
        ).fetchone()
        return row is not None

    def unchecked_case_count(self, suite_id: int) -> int:
        """Cases with neither an expected output nor an assertion of their own."""
        return self.db.execute(
            "SELECT count(*) FROM cases WHERE suite_id = ? AND (expected IS NULL OR trim(expected) = '')"
            " AND (assertions IS NULL OR assertions = '[]')", [suite_id],
        ).fetchone()[0]

    # ---- runs ---------------------------------------------------------------------------

    def create_run(self, *, kind: str, suite: dict[str, Any], prompt_id: int | None,
                   prompt_version: int | None, models: list[str], repeat: int,
                   config: dict[str, Any], judge_key: str, total: int) -> dict[str, Any]:
        run_id = new_run_id()
        with write(self.db):
            self.db.execute(
                "INSERT INTO runs (id, kind, suite_id, suite_name, suite_sha, prompt_id, prompt_version,"
                " models, repeat, config, judge_key, status, total, started_at, actor, pid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                [run_id, kind, suite["id"], suite["name"], suite["sha256"], prompt_id, prompt_version,
                 json.dumps(models), repeat, json.dumps(config, ensure_ascii=False, sort_keys=True),
                 judge_key, total, now(), self.actor, os.getpid()],
            )
        return self.run(run_id)

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute(
            "SELECT id, kind, suite_id, suite_name, suite_sha, prompt_id, prompt_version, models, repeat,"
            " config, judge_key, status, total, started_at, finished_at, summary, actor, pid"
            " FROM runs WHERE id = ?", [run_id]
        ).fetchone()
        if row is None:
            recent = [r[0] for r in self.db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 3")]
            hint = f"; recent runs: {', '.join(recent)}" if recent else ""
            raise NotFound(f"there is no run {run_id!r}{hint}")
        keys = ("id", "kind", "suite_id", "suite_name", "suite_sha", "prompt_id", "prompt_version",
                "models", "repeat", "config", "judge_key", "status", "total", "started_at",
                "finished_at", "summary", "actor", "pid")
        data = dict(zip(keys, row, strict=True))
        data["models"] = json.loads(data["models"])
        data["config"] = json.loads(data["config"])
        data["summary"] = json.loads(data["summary"]) if data["summary"] else None
        return data

    def import_run(self, run: dict[str, Any], results: list[dict[str, Any]]) -> bool:
        """A finished test run made elsewhere (a CI job, with its own model keys) kept here under
        its own id, with its results, against this store's suite of that name. A run id that is
        here already is left as it is, so an upload repeated stores the run once; except an
        interrupted run (uploaded so that it can be resumed elsewhere), which a later upload of
        the same run, resumed, completes. Returns whether it was new or completed. Results must
        be of cases the suite has here (upload the suite first)."""
        if not isinstance(run.get("id"), str) or not RUN_ID.fullmatch(run["id"]):
            raise InvalidInput(f"a run id looks like r20261125-193600-1a2b3c; got {run.get('id')!r}")
        if run.get("kind") != "test" or run.get("status") not in ("done", "failed", "interrupted"):
            raise InvalidInput("only a finished or interrupted test run can be uploaded "
                               "(kind 'test', status done, failed or interrupted)")
        suite = self.suite(run.get("suite_name") or "")
        known = {r[0] for r in self.db.execute("SELECT case_key FROM cases WHERE suite_id = ?", [suite["id"]])}
        strange = sorted({r.get("case_key") for r in results} - known, key=str)
        if strange:
            raise InvalidInput(f"the run has results for {len(strange)} case(s) suite {suite['name']!r} does not "
                               "have here; upload the suite file the run used, then the run")
        with write(self.db):
            here = self.db.execute("SELECT status FROM runs WHERE id = ?", [run["id"]]).fetchone()
            if here is not None and here[0] != "interrupted":
                return False
            # An interrupted run here is completed by this upload (it was resumed elsewhere): its
            # row is rewritten (its results point at it), and the results now known are added.
            self.db.execute(
                ("REPLACE" if here is not None else "INSERT") +
                " INTO runs (id, kind, suite_id, suite_name, suite_sha, prompt_id, prompt_version, models,"
                " repeat, config, judge_key, status, total, started_at, finished_at, summary, actor, pid)"
                " VALUES (?, 'test', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [run["id"], suite["id"], suite["name"], suite["sha256"], run.get("prompt_id"),
                 run.get("prompt_version"), json.dumps(run.get("models") or []), int(run.get("repeat") or 1),
                 json.dumps(run.get("config") or {}, ensure_ascii=False, sort_keys=True), run.get("judge_key") or "",
                 run["status"], run.get("total"), run.get("started_at") or now(), run.get("finished_at") or now(),
                 json.dumps(run.get("summary"), ensure_ascii=False) if run.get("summary") is not None else None,
                 self.actor],
            )
            self.db.conn.executemany(
                f"INSERT OR REPLACE INTO results ({', '.join(RESULT_COLUMNS)}) VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
                [[_encode(run["id"] if c == "run_id" else r.get(c)) for c in RESULT_COLUMNS] for r in results],
            )
        return True

    def runs(self, *, suite: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        where, args = ("WHERE suite_name = ?", [suite]) if suite else ("", [])
        ids = [r[0] for r in self.db.execute(
            f"SELECT id FROM runs {where} ORDER BY started_at DESC LIMIT ?", [*args, sql_int(limit)])]
        return [self.run(i) for i in ids]

    def set_run_status(self, run_id: str, status: str, summary: dict[str, Any] | None = None) -> None:
        if status not in RUN_STATUSES:
            raise InvalidInput(f"run status must be one of {', '.join(RUN_STATUSES)}")
        finished = now() if status != "running" else None
        with write(self.db):
            self.db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = coalesce(?, summary) WHERE id = ?",
                [status, finished, json.dumps(summary, ensure_ascii=False) if summary is not None else None,
                 run_id],
            )

    def set_run_total(self, run_id: str, total: int) -> None:
        """The units of work a run has (its suite changed since it started)."""
        with write(self.db):
            self.db.execute("UPDATE runs SET total = ? WHERE id = ?", [total, run_id])

    def reopen_run(self, run_id: str) -> None:
        with write(self.db):
            self.db.execute("UPDATE runs SET status = 'running', finished_at = NULL, pid = ? WHERE id = ?",
                            [os.getpid(), run_id])

    # ---- results ------------------------------------------------------------------------

    def add_results(self, rows: list[dict[str, Any]]) -> None:
        """One transaction for a batch. A row already there (a duplicate after a crash between
        write and acknowledgement) is replaced, never doubled."""
        self._replace_rows("results", RESULT_COLUMNS, rows)

    def _replace_rows(self, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        values = [[_encode(r.get(c)) for c in columns] for r in rows]
        with write(self.db):
            self.db.conn.executemany(
                f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                values,
            )

    def done_keys(self, run_id: str, case_keys: list[str]) -> set[tuple[str, str, int]]:
        """Which (case, model, repeat) units of these cases are finished in this run."""
        if not case_keys:
            return set()
        marks = ", ".join("?" * len(case_keys))
        return {
            (r[0], r[1], r[2]) for r in self.db.execute(
                f"SELECT case_key, model, repeat FROM results WHERE run_id = ? AND case_key IN ({marks})",
                [run_id, *case_keys],
            )
        }

    def result_output(self, run_id: str, case_key: str, model: str, repeat: int) -> dict[str, Any] | None:
        """One unit's stored output and what it cost, or None when the run has no such result."""
        row = self.db.execute(
            "SELECT output, status, latency_ms, input_tokens, output_tokens, cost_usd, cache_hit FROM results"
            " WHERE run_id = ? AND case_key = ? AND model = ? AND repeat = ?",
            [run_id, case_key, model, repeat],
        ).fetchone()
        keys = ("output", "status", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "cache_hit")
        return None if row is None else dict(zip(keys, row, strict=True))

    def result_count(self, run_id: str) -> int:
        return self.db.execute("SELECT count(*) FROM results WHERE run_id = ?", [run_id]).fetchone()[0]

    def result_progress(self, run_id: str) -> tuple[int, int]:
        """(results stored, of which not passed): a run's progress read from another process."""
        found = self.db.execute("SELECT count(*), coalesce(sum(status != 'pass'), 0) FROM results WHERE run_id = ?",
                                [run_id]).fetchone()
        return found[0], found[1]

    def iter_results(self, run_id: str, *, page: int = 1000, status: str | None = None) -> Iterator[dict[str, Any]]:
        last = 0
        extra, args = (" AND r.status = ?", [status]) if status else ("", [])
        cols = ", ".join(f"r.{c}" for c in RESULT_COLUMNS)
        while True:
            rows = self.db.execute(
                f"SELECT r.id, {cols}, c.input, c.expected FROM results r"
                " JOIN runs u ON u.id = r.run_id"
                " LEFT JOIN cases c ON c.suite_id = u.suite_id AND c.case_key = r.case_key"
                f" WHERE r.run_id = ? AND r.id > ?{extra} ORDER BY r.id LIMIT ?",
                [run_id, last, *args, page],
            ).fetchall()
            if not rows:
                return
            for r in rows:
                yield _result_dict(r)
            last = rows[-1][0]

    def summary_stats(self, run_id: str) -> dict[str, Any]:
        """Aggregates computed by SQLite, so a 100,000-result run is never held in memory.
        `score` is the mean over the results that have one or cannot get one (an unchecked case
        counts 0); an error result (unscored) is left out of it, never counted as 0."""
        row = self.db.execute(
            "SELECT count(*), sum(status = 'pass'), sum(status = 'fail'), sum(status = 'error'),"
            " sum(status = 'unchecked'), avg(CASE WHEN status != 'error' THEN coalesce(score, 0) END),"
            " sum(input_tokens), sum(output_tokens),"
            " sum(cost_usd), sum(cache_hit) FROM results WHERE run_id = ?", [run_id]
        ).fetchone()
        n = row[0] or 0
        stats = {
            "results": n, "passed": row[1] or 0, "failed": row[2] or 0, "errors": row[3] or 0,
            "unchecked": row[4] or 0, "score": round(row[5], 2) if row[5] is not None else 0.0,
            "input_tokens": row[6] or 0, "output_tokens": row[7] or 0,
            "cost_usd": round(row[8] or 0.0, 6), "cache_hits": row[9] or 0,
        }
        stats["latency_ms"] = self._percentiles(run_id)
        per_model = self.db.execute(
            "SELECT model, count(*), sum(status = 'pass'),"
            " avg(CASE WHEN status != 'error' THEN coalesce(score, 0) END), sum(cost_usd), sum(status = 'error')"
            " FROM results WHERE run_id = ? GROUP BY model ORDER BY model", [run_id]
        ).fetchall()
        stats["models"] = {
            m: {"results": c, "passed": p or 0, "pass_rate": round((p or 0) / c, 4) if c else 0.0,
                "score": round(s or 0, 2), "cost_usd": round(cost or 0, 6), "unscored": e or 0}
            for m, c, p, s, cost, e in per_model
        }
        return stats

    def unpriced_calls(self, run_id: str) -> tuple[int, list[str]]:
        """The run's calls (the model's and the judge's) that had no price, and their models:
        the run's cost leaves them out, and says so."""
        rows = self.db.execute(
            "SELECT model, count(*) FROM calls WHERE run_id = ? AND status = 'ok' AND cost_usd IS NULL "
            "GROUP BY model ORDER BY model", [run_id]
        ).fetchall()
        return sum(n for _, n in rows), [m for m, _ in rows]

    def criteria_stats(self, run_id: str) -> list[dict[str, Any]]:
        """The judge's mean per criterion over a run's results, in the order first judged."""
        rows = self.db.execute(
            "SELECT json_extract(j.value, '$.criterion') AS criterion, avg(json_extract(j.value, '$.percent')),"
            " avg(json_extract(j.value, '$.score')), count(*), min(r.id * 1000 + j.key)"
            " FROM results r, json_each(r.criteria) j WHERE r.run_id = ? AND r.criteria IS NOT NULL"
            " GROUP BY criterion ORDER BY 5", [run_id]
        ).fetchall()
        return [{"criterion": c, "percent": round(p, 2), "score": round(s, 2), "judged": n}
                for c, p, s, n, _ in rows]

    def error_reasons(self, run_id: str) -> list[tuple[str, int]]:
        """Why this run's error results could not be scored, commonest first."""
        rows = self.db.execute(
            "SELECT coalesce(error, 'no reason recorded'), count(*) FROM results"
            " WHERE run_id = ? AND status = 'error' GROUP BY 1 ORDER BY 2 DESC, 1", [run_id]
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def _percentiles(self, run_id: str) -> dict[str, float | None]:
        n = self.db.execute(
            "SELECT count(*) FROM results WHERE run_id = ? AND status != 'error' AND latency_ms IS NOT NULL",
            [run_id],
        ).fetchone()[0]
        names = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))
        if not n:
            return {name: None for name, _ in names}
        # nearest rank; the four read from ONE sort of the run's latencies (four sorts took
        # half of a 10,000-case run's summary)
        offsets = {name: min(n - 1, max(0, int(round(q * n + 0.5)) - 1)) for name, q in names}
        at = dict(self.db.execute(
            "SELECT k, latency_ms FROM (SELECT latency_ms, row_number() OVER (ORDER BY latency_ms) - 1 AS k"
            " FROM results WHERE run_id = ? AND status != 'error' AND latency_ms IS NOT NULL)"
            " WHERE k IN (?, ?, ?, ?)", [run_id, *offsets.values()],
        ).fetchall())
        return {name: round(at[offset], 1) for name, offset in offsets.items()}

    def failing(self, run_id: str, limit: int = 20) -> list[dict[str, Any]]:
        cols = ", ".join(f"r.{c}" for c in RESULT_COLUMNS)
        rows = self.db.execute(
            f"SELECT r.id, {cols}, c.input, c.expected FROM results r JOIN runs u ON u.id = r.run_id"
            " LEFT JOIN cases c ON c.suite_id = u.suite_id AND c.case_key = r.case_key"
            " WHERE r.run_id = ? AND r.status != 'pass' ORDER BY r.case_idx, r.model, r.repeat LIMIT ?",
            [run_id, limit],
        ).fetchall()
        return [_result_dict(r) for r in rows]

    # ---- arena --------------------------------------------------------------------------

    def add_matches(self, rows: list[dict[str, Any]]) -> None:
        """All pairs of a case in one transaction: a case is done or not."""
        self._replace_rows("arena_matches", MATCH_COLUMNS, rows)

    def done_match_cases(self, run_id: str) -> set[str]:
        return {r[0] for r in self.db.execute(
            "SELECT DISTINCT case_key FROM arena_matches WHERE run_id = ?", [run_id])}

    def matches(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            f"SELECT id, {', '.join(MATCH_COLUMNS)} FROM arena_matches WHERE run_id = ? ORDER BY id",
            [run_id],
        ).fetchall()
        return [dict(zip(("id", *MATCH_COLUMNS), r, strict=True)) for r in rows]

    def match(self, match_id: int) -> dict[str, Any]:
        # An id past SQLite's 64 bits names no match, and cannot even be a query parameter.
        row = None if not -(2**63) <= match_id < 2**63 else self.db.execute(
            f"SELECT id, {', '.join(MATCH_COLUMNS)} FROM arena_matches WHERE id = ?", [match_id]
        ).fetchone()
        if row is None:
            raise NotFound(f"there is no arena match {match_id}; ", Step("get_run", kind="arena"),
                           " on an arena run lists its matches")
        return dict(zip(("id", *MATCH_COLUMNS), row, strict=True))

    def record_vote(self, match_id: int, winner: str, *, voter: str | None = None) -> dict[str, Any]:
        match = self.match(match_id)
        allowed = (match["model_a"], match["model_b"], "tie")
        if winner not in allowed:
            raise InvalidInput(
                f"a vote on match {match_id} names {match['model_a']!r}, {match['model_b']!r} or 'tie'; "
                f"got {winner!r}"
            )
        voter = voter or self.actor
        with write(self.db):
            # One vote per person per match: voting again changes the vote.
            self.db.execute(
                "INSERT INTO votes (match_id, run_id, voter, winner, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (match_id, voter) DO UPDATE SET winner = excluded.winner, at = excluded.at",
                [match_id, match["run_id"], voter, winner, now()],
            )
        return {"match_id": match_id, "voter": voter, "winner": winner}

    def votes(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT v.match_id, v.voter, v.winner, v.at, m.model_a, m.model_b FROM votes v"
            " JOIN arena_matches m ON m.id = v.match_id WHERE v.run_id = ? ORDER BY v.id", [run_id]
        ).fetchall()
        return [dict(zip(("match_id", "voter", "winner", "at", "model_a", "model_b"), r, strict=True))
                for r in rows]


def _encode(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return int(value)
    return value


def _suite_dict(row: tuple) -> dict[str, Any]:
    keys = ("id", "name", "prompt_id", "source", "format", "sha256", "case_count", "config",
            "created_at", "updated_at", "created_by")
    data = dict(zip(keys, row, strict=True))
    data["config"] = json.loads(data["config"] or "{}")
    return data


def _case_dict(row: tuple) -> dict[str, Any]:
    data = dict(zip(CASE_COLUMNS, row, strict=True))
    data["variables"] = json.loads(data["variables"] or "{}")
    data["assertions"] = json.loads(data["assertions"] or "[]")
    return data


def _result_dict(row: tuple) -> dict[str, Any]:
    data = dict(zip(("id", *RESULT_COLUMNS, "input", "expected"), row, strict=True))
    data["checks"] = json.loads(data["checks"]) if data["checks"] else []
    data["criteria"] = json.loads(data["criteria"]) if data["criteria"] else []
    data["cache_hit"] = bool(data["cache_hit"])
    return data
