"""Metrics over the call log: any time window, any grouping.

For each group: requests, errors, blocked calls, error rate, latency p50/p95/p99 (plus mean and
max), input/output tokens, cost and cache hit rate.

Definitions (the tests check them exactly):
- `requests` counts every row in the window; `served` those that were not blocked before
  reaching a model (status 'ok' or 'error'). Blocked calls (a guard or a budget refused them)
  have no meaningful latency and no provider outcome, so latency, the error rate and the cache
  hit rate are over `served`; `error_rate = errors / served`, `cache_hit_rate = cache_hits / served`.
- Percentiles are exact, by the nearest-rank method: with the served latencies sorted
  ascending, p_k is the value at 1-based rank ceil(k/100 * n). It is always a latency that was
  observed (no interpolation), which is what "P95 > 5 s" means to an operator.
- The window is [since, until): `since` is a duration back from now ("30m", "24h", "7d", "2w")
  or an ISO time; `until` defaults to now.
- Cost: `cost_usd` sums the calls whose cost is known. A call to a model without a price has an
  unknown cost (NULL in the log): `unpriced_calls` counts them, `unpriced_models` names their
  models and `unpriced` is the sentence to show ("3 calls unpriced (model X): add a price in
  config"), so no total silently counts them as $0.
- Evaluation spend (`EVALUATION_SQL`, the one definition): a call made by a test or arena run
  (its `run_id` names a row of `runs`) or by one of PromStack's own prompts (the judge's,
  `store.refs.is_internal`). Every other call is the prompts' own traffic (`OWN_SQL`): what
  `cost_usd` splits into `own_cost_usd` and `evaluation_cost_usd`, what the cost report's
  groups count, and the "production traffic" `cost recommend` and `cost compare` project from.
  (`--run-id` on `promstack run` only groups calls: a run id no test or arena run made is
  the prompt's own traffic.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from store.calls import UNPRICED_SQL  # comma-separated models: split_models
from store.calls import prompt_id_for as resolve_prompt_id
from store.clock import iso
from store.errors import InvalidInput
from store.refs import INTERNAL_PREFIX
from store.refs import checked_int as _sqlite_int

from ..gateway import pricing

PERCENTILES = (50, 95, 99)

# Which calls are evaluation spend (see the module's docstring); every SQL over `calls` that
# splits spend uses these two fragments. The prefix test is store.refs' rule (is_internal) in SQL.
INTERNAL_SQL = f"COALESCE(substr(prompt_name, 1, {len(INTERNAL_PREFIX)}) = '{INTERNAL_PREFIX}', 0)"
EVALUATION_SQL = f"(COALESCE(run_id IN (SELECT id FROM runs), 0) OR {INTERNAL_SQL})"
OWN_SQL = f"(NOT {EVALUATION_SQL})"
TRAFFIC = {"own": OWN_SQL, "evaluation": EVALUATION_SQL}

# Group name -> SQL expressions (output column name, expression). Day and hour are UTC text
# prefixes of the ISO timestamp, so they group without any date function.
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "prompt": (("prompt_id", "prompt_id"),),
    "version": (("prompt_id", "prompt_id"), ("prompt_version", "prompt_version")),
    "model": (("model", "model"),),
    "environment": (("environment", "environment"),),
    "user": (("user_id", "user_id"),),
    "status": (("status", "status"),),
    # where the call was logged from: the gateway, OTLP spans, or an app reporting it
    "source": (("source", "source"),),
    "day": (("day", "substr(timestamp, 1, 10)"),),
    "hour": (("hour", "substr(timestamp, 1, 13) || ':00Z'"),),
}
GROUP_ALIASES = {"prompts": "prompt", "models": "model", "env": "environment", "users": "user",
                 "user_id": "user", "prompt_version": "version", "versions": "version",
                 "days": "day", "hours": "hour", "environments": "environment",
                 "sources": "source"}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
# About a century: any window of the call log fits, and now minus it is still a date.
MAX_DURATION = timedelta(days=36_600)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise InvalidInput(
            f"'{text}' is not a duration; write a number and a unit: 30m, 24h, 7d, 2w"
        )
    try:
        delta = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
    except OverflowError:
        delta = None
    if delta is None or delta > MAX_DURATION:
        raise InvalidInput(
            f"'{text}' is longer than {MAX_DURATION.days:,} days, the longest duration there is here; "
            "use a shorter one such as 365d"
        )
    return delta


def parse_time(text: str | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """A duration back from `now` ("24h") or an ISO date/time; None stays None."""
    if text is None or isinstance(text, datetime):
        return text
    now = now or datetime.now(UTC)
    if _DURATION.match(str(text)):
        return now - parse_duration(str(text))
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"'{text}' is neither a duration (24h, 7d) nor an ISO time (2026-01-09T12:00:00Z)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-12:00 is past the last UTC moment there is
        raise InvalidInput(f"'{text}' is outside the years 1 to 9999 once in UTC; give a time inside them") from None


def parse_groups(by: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Group names from "prompt,model" or a list, aliases resolved, each once; an unknown name
    is an error that lists the choices."""
    if not by:
        return []
    items = by.split(",") if isinstance(by, str) else list(by)
    groups: list[str] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        name = GROUP_ALIASES.get(name, name)
        if name not in GROUPS:
            raise InvalidInput(
                f"cannot group by '{raw.strip()}'; choose from {', '.join(GROUPS)}"
            )
        if name not in groups:
            groups.append(name)
    return groups


def nearest_rank(sorted_values: list[float], pct: int) -> float | None:
    """The nearest-rank percentile of an ascending list: the value at rank ceil(pct/100 * n)."""
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, -(-pct * n // 100))  # integer ceil: no float rounding at exact ranks
    return sorted_values[rank - 1]


@dataclass
class Window:
    since: datetime | None
    until: datetime

    @property
    def since_iso(self) -> str | None:
        return iso(self.since) if self.since else None

    @property
    def until_iso(self) -> str:
        return iso(self.until)


def window(since: Any = "24h", until: Any = None, *, now: datetime | None = None) -> Window:
    now = now or datetime.now(UTC)
    start = parse_time(since, now=now) if since not in (None, "", "all") else None
    end = parse_time(until, now=now) if until not in (None, "") else now
    if start is not None and start >= end:  # type: ignore[operator]
        raise InvalidInput(f"the window is empty: since {iso(start)} is not before until {iso(end)}")
    return Window(start, end)  # type: ignore[arg-type]


def filters_sql(
    db: sqlite_utils.Database,
    win: Window,
    *,
    prompt: int | str | None = None,
    version: int | None = None,
    model: str | None = None,
    environment: str | None = None,
    user_id: str | None = None,
    traffic: str | None = None,
    unpriced: bool | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and its parameters for a window and filters;
    `traffic` 'own' or 'evaluation' keeps one side of the split, `unpriced` only unknown costs."""
    where = ["timestamp < ?"]
    params: list[Any] = [win.until_iso]
    if win.since is not None:
        where.insert(0, "timestamp >= ?")
        params.insert(0, win.since_iso)
    prompt_id = resolve_prompt_id(db, prompt)
    if version is not None:
        version = _sqlite_int(version, "a version")
    for column, value in (
        ("prompt_id", prompt_id), ("prompt_version", version), ("model", model),
        ("environment", environment), ("user_id", user_id),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if traffic is not None:
        if traffic not in TRAFFIC:
            raise InvalidInput(f"traffic '{traffic}' is not one of {', '.join(TRAFFIC)}")
        where.append(TRAFFIC[traffic])
    if unpriced is not None:
        where.append("cost_usd IS NULL" if unpriced else "cost_usd IS NOT NULL")
    return " AND ".join(where), params


def metrics(
    db: sqlite_utils.Database,
    *,
    since: Any = "24h",
    until: Any = None,
    by: str | list[str] | None = None,
    prompt: int | str | None = None,
    version: int | None = None,
    model: str | None = None,
    environment: str | None = None,
    user_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Metrics for the window, one row per group (one row in all when `by` is empty)."""
    win = window(since, until, now=now)
    groups = parse_groups(by)
    where, params = filters_sql(
        db, win, prompt=prompt, version=version, model=model, environment=environment,
        user_id=user_id,
    )
    keys = group_columns(groups)
    key_exprs = [expr for _, expr in keys]
    key_names = [name for name, _ in keys]
    rows = _aggregate(db, where, params, key_exprs)
    names = prompt_names(db) if "prompt_id" in key_names else {}
    out = []
    for key, agg in rows.items():
        item: dict[str, Any] = dict(zip(key_names, key, strict=True))
        if "prompt_id" in item:
            item["prompt_name"] = names.get(item["prompt_id"])
        item.update(_finish(agg[:-1], _sorted_latencies(agg[-1])))
        out.append(item)
    out.sort(key=lambda r: (-r["requests"], [str(r[k]) for k in key_names]))
    if not groups and not out:
        out = [_finish(_EMPTY[:-1], [])]
    return {
        "since": win.since_iso,
        "until": win.until_iso,
        "by": groups,
        "percentile_method": "nearest-rank",
        "groups": out,
        **sum_unpriced(out),
    }


def latency_percentiles(
    db: sqlite_utils.Database,
    *,
    since: Any = "24h",
    until: Any = None,
    by: str | list[str] | None = None,
    percentiles: tuple[int, ...] = PERCENTILES,
    now: datetime | None = None,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Only the served latency percentiles per group: the lean path for "p95 per prompt"
    and the latency alert rule (one grouped scan, no other aggregates)."""
    win = window(since, until, now=now)
    where, params = filters_sql(db, win, **filters)
    keys = group_columns(parse_groups(by))
    exprs = [expr for _, expr in keys]
    select = "".join(f"{e}, " for e in exprs)
    group = f" GROUP BY {', '.join(exprs)}" if exprs else ""
    sql = (
        f"SELECT {select}COUNT(*), group_concat(latency_ms) FROM calls "
        f"WHERE {where} AND status != 'blocked'{group}"
    )
    out = []
    for row in db.execute(sql, params).fetchall():
        if not row[-2]:
            continue
        values = _sorted_latencies(row[-1])
        item: dict[str, Any] = dict(zip([name for name, _ in keys], row[:-2], strict=True))
        item["served"] = len(values)
        for pct in percentiles:
            item[f"latency_p{pct}_ms"] = nearest_rank(values, pct)
        out.append(item)
    return out


def group_columns(groups: list[str]) -> list[tuple[str, str]]:
    """(output column, SQL expression) for each grouping `parse_groups` gave, in order and once
    each: 'prompt' and 'version' share prompt_id. Every grouped SQL over `calls` selects these."""
    keys: list[tuple[str, str]] = []
    for group in groups:
        for pair in GROUPS[group]:
            if pair not in keys:
                keys.append(pair)
    return keys


_EMPTY = (0, 0, 0, 0, 0, 0, 0.0, 0.0, 0, None, None, None, None)


def _aggregate(
    db: sqlite_utils.Database, where: str, params: list[Any], key_exprs: list[str]
) -> dict[tuple, tuple]:
    select_keys = "".join(f"{e}, " for e in key_exprs)
    group = f" GROUP BY {', '.join(key_exprs)}" if key_exprs else ""
    sql = (
        f"SELECT {select_keys}COUNT(*), "
        "SUM(status = 'error'), SUM(status = 'blocked'), "
        "SUM(cache_hit != 0 AND status != 'blocked'), "
        "SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), "
        f"SUM(CASE WHEN {EVALUATION_SQL} THEN cost_usd END), "
        f"{UNPRICED_SQL}, "
        "AVG(CASE WHEN status != 'blocked' THEN latency_ms END), "
        "MAX(CASE WHEN status != 'blocked' THEN latency_ms END), "
        # The served latencies ride along as text, so one scan of the table gives everything;
        # SQLite renders a REAL with 15 significant digits, plenty for milliseconds.
        "group_concat(CASE WHEN status != 'blocked' THEN latency_ms END) "
        f"FROM calls WHERE {where}{group}"
    )
    n = len(key_exprs)
    result = {}
    for row in db.execute(sql, params).fetchall():
        if row[n] == 0:
            continue  # an aggregate with no group over no rows
        result[tuple(row[:n])] = tuple(row[n:])
    return result


def _sorted_latencies(text: str | None) -> list[float]:
    if not text:
        return []
    values = list(map(float, text.split(",")))
    values.sort()
    return values


def _finish(agg: tuple, latencies: list[float]) -> dict[str, Any]:
    requests, errors, blocked, hits, tin, tout, cost, evaluation, unpriced, unpriced_models, avg, peak = agg
    requests, errors, blocked, hits = (int(x or 0) for x in (requests, errors, blocked, hits))
    tin, tout = int(tin or 0), int(tout or 0)
    served = requests - blocked
    out: dict[str, Any] = {
        "requests": requests,
        "served": served,
        "errors": errors,
        "blocked": blocked,
        "error_rate": errors / served if served else 0.0,
    }
    for pct in PERCENTILES:
        out[f"latency_p{pct}_ms"] = nearest_rank(latencies, pct)
    out.update(
        latency_mean_ms=avg,
        latency_max_ms=peak,
        input_tokens=tin,
        output_tokens=tout,
        total_tokens=tin + tout,
        cost_usd=float(cost or 0.0),
        own_cost_usd=float(cost or 0.0) - float(evaluation or 0.0),
        evaluation_cost_usd=float(evaluation or 0.0),
        **unpriced_fields(int(unpriced or 0), split_models(unpriced_models)),
        cache_hits=hits,
        cache_hit_rate=hits / served if served else 0.0,
    )
    return out


def split_models(text: str | None) -> list[str]:
    """A `group_concat(DISTINCT model)` as a sorted list."""
    return sorted(set(text.split(","))) if text else []


def unpriced_fields(calls: int, models: list[str]) -> dict[str, Any]:
    """The three fields every total that may include unpriced calls carries."""
    return {"unpriced_calls": calls, "unpriced_models": models,
            "unpriced": pricing.unpriced_note(calls, models)}


def sum_unpriced(groups: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The unpriced fields of a total over groups that each carry them."""
    groups = list(groups)
    return unpriced_fields(sum(g["unpriced_calls"] for g in groups),
                           sorted({m for g in groups for m in g["unpriced_models"]}))


def prompt_names(db: sqlite_utils.Database) -> dict[int, str]:
    """Prompt id -> name from the prompts table: the label of every group keyed by prompt_id."""
    return {row[0]: row[1] for row in db.execute("SELECT id, name FROM prompts").fetchall()}


def total(
    db: sqlite_utils.Database,
    columns: str,
    since: datetime | None,
    until: datetime,
    **filters: Any,
) -> tuple:
    """Raw sums for the alert and budget rules: `columns` is a SELECT list over `calls`."""
    where, params = filters_sql(db, Window(since, until), **filters)
    return db.execute(f"SELECT {columns} FROM calls WHERE {where}", params).fetchone()


def dimensions(db: sqlite_utils.Database) -> dict[str, list[Any]]:
    """What the call log can be filtered by: its prompts (id, name), models and environments,
    each sorted (one DISTINCT scan, no aggregates; the dashboard's filter menus)."""
    names = prompt_names(db)
    rows = db.execute("SELECT DISTINCT prompt_id, prompt_name, model, environment FROM calls").fetchall()
    prompts = {(pid, names.get(pid) or name or str(pid)) for pid, name, _, _ in rows if pid is not None}
    return {
        "prompts": sorted(prompts, key=lambda p: p[1]),
        "models": sorted({m for _, _, m, _ in rows if m}),
        "environments": sorted({e for _, _, _, e in rows if e}),
    }
