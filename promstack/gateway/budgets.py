"""Hard budgets: a call that would take spend (or tokens) over a hard limit is refused before it
reaches the provider, and the refusal is logged.

    [budgets]                              # the workspace
    monthly_usd = 500
    daily_usd = 30
    hard = true                            # refuse, not only alert (the alert fires at 90%)
    [limits]
    daily_tokens = 2_000_000
    hard = true
    [prompts."support/refund".budgets]     # one prompt (not inherited from the workspace)
    monthly_usd = 50
    hard = true
    [environments.production.budgets]      # one environment
    daily_usd = 20
    hard = true

A call is checked against every hard budget whose scope it falls in (the workspace's, its
prompt's, its environment's): spent so far in the period (UTC month or day) plus the call's
estimated cost (prompt tokens priced, plus `max_tokens` of output when set) must stay within
the budget. Refused calls are logged by the gateway as status 'blocked' rows whose error says
which budget refused them, and each refusal is also written to the `promstack.budgets` logger.

A call to a model that has no price (promstack.gateway.pricing) cannot be proven to fit a dollar budget,
so where a hard dollar budget applies it is refused, with a sentence that names the model and
says to add a price in config; token budgets count its tokens as usual. Unpriced calls already in
the log (logged before a budget existed, or reported by an app) add nothing to the dollars spent
(their cost is unknown): `unpriced` counts them, and the budget's alert and the dashboard's
gauge say "N calls unpriced (model X)", so spent is a lower bound, never a silent pass.

Spend is read from the call log incrementally: the first check sums the period, later checks add
only rows with a higher id, so a check costs a fraction of a millisecond on a big log. A call this
process allowed counts with its estimate until its own row (written ~50 ms behind the call, with
the actual cost) is in the log, so concurrent calls in one process cannot overshoot together.
Calls in flight in other processes are not seen until their rows are written.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from store import calls
from store.clock import iso
from store.errors import InvalidInput, PromStackError

log = logging.getLogger("promstack.budgets")
log.addHandler(logging.NullHandler())


class BudgetExceeded(PromStackError):
    """A hard budget would be exceeded by this call; it was not sent."""

    blocked = True  # the gateway logs it as a refusal (status 'blocked'), not a provider error

    def __init__(self, message: str, budget: Budget | None = None, spent: float = 0.0,
                 estimate: float = 0.0) -> None:
        super().__init__(message)
        self.budget = budget
        self.spent = spent
        self.estimate = estimate


@dataclass(frozen=True)
class Budget:
    scope: str            # 'workspace', 'prompt:<name>', 'environment:<name>'
    kind: str             # 'usd' or 'tokens'
    period: str           # 'month' or 'day'
    limit: float
    filters: tuple[tuple[str, Any], ...] = ()

    def describe(self) -> str:
        per = "monthly" if self.period == "month" else "daily"
        amount = f"${self.limit:,.2f}" if self.kind == "usd" else f"{self.limit:,.0f} tokens"
        return f"the {per} {amount} budget of {self.scope.replace(':', ' ')}"


def _entries(table: Any, where: str) -> list[tuple[str, str, float]]:
    """(kind, period, limit) for a [budgets] or [limits] table that says hard = true."""
    if not isinstance(table, dict) or not table.get("hard", False):
        return []
    out = []
    for key, kind, period in (("monthly_usd", "usd", "month"), ("daily_usd", "usd", "day"),
                              ("daily_tokens", "tokens", "day"), ("monthly_tokens", "tokens", "month")):
        value = table.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidInput(f"{key} in [{where}] must be a non-negative number, not {value!r}")
        out.append((kind, period, float(value)))
    return out


def hard_budgets(config: Any, *, prompt_name: str | None, environment: str | None) -> list[Budget]:
    """Every hard budget that applies to a call of `prompt_name` in `environment`."""
    data = getattr(config, "data", config) or {}
    found: list[Budget] = []
    scopes: list[tuple[str, dict[str, Any], tuple]] = [("workspace", data, ())]
    if prompt_name:
        table = (data.get("prompts") or {}).get(prompt_name)
        if isinstance(table, dict):
            scopes.append((f"prompt:{prompt_name}", table, (("prompt", prompt_name),)))
    if environment:
        table = (data.get("environments") or {}).get(environment)
        if isinstance(table, dict):
            scopes.append((f"environment:{environment}", table, (("environment", environment),)))
    for scope, table, filters in scopes:
        for section in ("budgets", "limits"):
            for kind, period, limit in _entries(table.get(section), section):
                found.append(Budget(scope, kind, period, limit, filters))
    return found


def period_start(period: str, now: datetime) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.replace(day=1) if period == "month" else day


# Per connection: (scope filters, period start) -> [cost, tokens, last row id].
_spend_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _scope(db: sqlite_utils.Database, budget: Budget, start: str) -> tuple[list[str], list[Any]]:
    """The WHERE terms (and parameters) of the budget's scope from `start`."""
    filters = dict(budget.filters)
    prompt_id = calls.prompt_id_for(db, filters["prompt"]) if "prompt" in filters else None
    where = ["timestamp >= ?"]
    params: list[Any] = [start]
    if prompt_id is not None:
        where.append("prompt_id = ?")
        params.append(prompt_id)
    if "environment" in filters:
        where.append("environment = ?")
        params.append(filters["environment"])
    return where, params


def spent(db: sqlite_utils.Database, budget: Budget, now: datetime | None = None) -> tuple[float, int]:
    """(USD, tokens) used in the budget's current period and scope."""
    now = now or datetime.now(UTC)
    start = iso(period_start(budget.period, now))
    where, params = _scope(db, budget, start)
    key = (budget.filters, start)
    with _lock:
        per_db = _spend_cache.setdefault(db, {})
        cost, tokens, last_id = per_db.get(key, (0.0, 0, 0))
    # Only rows newer than the last check: the rowid range makes this cheap on a big log. The
    # upper bound is read first, so rows written meanwhile are left for the next check.
    (top,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM calls").fetchone()
    if top > last_id:
        row = db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + output_tokens), 0) "
            f"FROM calls WHERE id > ? AND id <= ? AND {' AND '.join(where)}",
            [last_id, top, *params],
        ).fetchone()
        cost, tokens, last_id = cost + float(row[0]), tokens + int(row[1]), int(top)
    with _lock:
        _spend_cache.setdefault(db, {})[key] = (cost, tokens, last_id)
    return cost, tokens


# Calls allowed by this process whose call-log row is not visible yet: call_id -> (reserved at,
# usd, tokens, budget keys). They count against the budget until their row (with the actual
# cost) appears, so concurrent calls in one process cannot overshoot; rows never written (a
# crash mid-call) stop counting after RESERVATION_TTL_S.
_reservations: dict[str, tuple[float, float, int, frozenset]] = {}
RESERVATION_TTL_S = 600.0


def _budget_key(db: sqlite_utils.Database, budget: Budget) -> tuple:
    return (id(db), budget.scope, budget.kind, budget.period)


def _pending(db: sqlite_utils.Database) -> dict[tuple, tuple[float, int]]:
    """Reserved (usd, tokens) per budget key, after dropping calls whose row has arrived."""
    import time

    with _lock:
        items = list(_reservations.items())
    if not items:
        return {}
    ids = [call_id for call_id, _ in items]
    arrived: set[str] = set()
    for offset in range(0, len(ids), 500):
        chunk = ids[offset:offset + 500]
        arrived |= {r[0] for r in db.execute(
            f"SELECT call_id FROM calls WHERE call_id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()}
    cutoff = time.monotonic() - RESERVATION_TTL_S
    totals: dict[tuple, tuple[float, int]] = {}
    with _lock:
        for call_id, (at, usd, tokens, keys) in items:
            if call_id in arrived or at < cutoff:
                _reservations.pop(call_id, None)
                continue
            for key in keys:
                was = totals.get(key, (0.0, 0))
                totals[key] = (was[0] + usd, was[1] + tokens)
    return totals


def check_budget(
    db: sqlite_utils.Database,
    config: Any,
    *,
    prompt_name: str | None = None,
    environment: str | None = None,
    estimate: Callable[[], tuple[float, int]] | tuple[float, int] | None = None,
    call_id: str | None = None,
    now: datetime | None = None,
    model: str | None = None,
) -> None:
    """Raise BudgetExceeded if the call would take any applicable hard budget over its limit.

    `estimate` is (usd, tokens) for the call, or a function returning it, evaluated only when
    a hard budget applies (counting tokens is not free). Calls with no hard budget cost nothing.
    With `call_id`, an allowed call's estimate is reserved until its call-log row appears.
    """
    import time

    budgets = hard_budgets(config, prompt_name=prompt_name, environment=environment)
    if not budgets:
        return
    usd, tokens = estimate() if callable(estimate) else (estimate or (0.0, 0))
    if usd is None:
        dollars = [b for b in budgets if b.kind == "usd"]
        if dollars:
            what = f"model {model}" if model else "this call's model"
            message = (f"refused: {what} has no price, so this call cannot be checked against "
                       f"{dollars[0].describe()}; add a price in config ([prices] in "
                       ".promstack/config.toml; 'promstack cost prices' shows the table)")
            log.warning(message)
            raise BudgetExceeded(message, dollars[0], 0.0, 0.0)
        usd = 0.0
    pending = _pending(db)
    for budget in budgets:
        used_usd, used_tokens = spent(db, budget, now)
        held_usd, held_tokens = pending.get(_budget_key(db, budget), (0.0, 0))
        if budget.kind == "usd":
            used, held, extra = used_usd, held_usd, usd
        else:
            used, held, extra = used_tokens, held_tokens, tokens
        if used + held >= budget.limit or used + held + extra > budget.limit:
            unit = (lambda v: f"${v:,.4f}") if budget.kind == "usd" else (lambda v: f"{v:,.0f} tokens")
            detail = f"{unit(used)} used" + (f" + {unit(held)} in flight" if held else "") \
                + f" + {unit(extra)} for this call > {unit(budget.limit)}"
            message = (
                f"refused: this call would exceed {budget.describe()} ({detail}); "
                "raise the budget in .promstack/config.toml or wait for the next period"
            )
            log.warning(message)
            raise BudgetExceeded(message, budget, used + held, extra)
    if call_id is not None:
        keys = frozenset(_budget_key(db, b) for b in budgets)
        with _lock:
            _reservations[call_id] = (time.monotonic(), float(usd), int(tokens), keys)


def estimate_call(model: str, messages: Any, model_config: dict[str, Any],
                  price: Any = None) -> tuple[float | None, int]:
    """(USD, tokens) a call may cost: its prompt tokens plus `max_tokens` of output if set.
    USD is None when the model has no price (`price` is the gateway's `pricing.Price`)."""
    from . import pricing, tokens

    tokens_in = tokens.count_tokens(messages, model)
    tokens_out = int(model_config.get("max_tokens") or model_config.get("max_completion_tokens") or 0)
    if price is None:
        price = pricing.price(model, model_config=model_config)
    usd = None if price is None else price.cost(tokens_in, tokens_out)
    return usd, tokens_in + tokens_out


def reset_cache() -> None:
    """Forget cached spend and reservations (tests that rewrite the log under one connection)."""
    with _lock:
        _spend_cache.clear()
        _reservations.clear()
