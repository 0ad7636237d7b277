"""Calls an app made itself, reported to the call log (`POST /api/v1/calls`, `client.log_call`).

An app that calls its model without the gateway reports each call as a row with the call log's
fields; it is stored with `source = 'api'`. The checks and the linking are those of OpenTelemetry
in (`otlp_in`): a prompt id (or name) the store lacks is stored and flagged, a clock more than
`otlp_in.MAX_FUTURE` ahead of the server's is refused, the cost is the server's price when the row
brings none (NULL when the model has no price). A row that cannot be a call is rejected by its
index in the batch, with a sentence; the others are stored, in one transaction, with one audit
row for the batch that names the rows and hashes their content (`store.calls.insert_batch`).

Idempotency: each row's call id is `api-<key>`, where the key is the row's own `call_id` (the
client's id for the call) or, failing that, the batch's `idempotency_key` and the row's index. A
batch sent twice is stored once; a row with neither is given a fresh id (a resend stores it again).
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from store import calls
from store.clock import current, iso
from store.errors import InvalidInput

from .otlp_in import MAX_FUTURE, PromptLinks, Report, clipped

if TYPE_CHECKING:
    from ..config import Config

SOURCE = "api"
MAX_ROWS = 1000  # rows in one batch: the SDKs send 100 at most
MAX_KEY = 200
FIELDS = (
    "call_id", "timestamp", "prompt_id", "prompt_version", "model", "provider", "operation",
    "input_tokens", "output_tokens", "latency_ms", "user_id", "status", "error", "environment",
    "cost_usd",
)
_STATUSES = ("ok", "error")
_ALLOWED = frozenset(FIELDS) | {"prompt", "prompt_name"}


def _count(row: dict[str, Any], name: str) -> int:
    value = row.get(name)
    if type(value) is int and 0 <= value < 2**63:  # the usual case, checked first
        return value
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{name} is {value!r}, not a count of tokens")
    return value


def _number(row: dict[str, Any], name: str) -> float | None:
    value = row.get(name)
    if type(value) is float and 0 <= value < math.inf:  # the usual case (NaN fails it too)
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} is {value!r}, not a number >= 0")
    return float(value)


def _moment(value: Any, now: datetime) -> datetime:
    """A row's timestamp: ISO 8601 (UTC when it names no zone) or seconds since the epoch."""
    if value is None:
        return now
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise ValueError(f"timestamp {value!r} is not an ISO 8601 time or seconds since the epoch")


def call_row(row: Any, prompts: PromptLinks, config: Config | None, now: datetime, key: str) -> dict[str, Any]:
    """A reported call's call-log row, keyed `api-<key>`; ValueError (saying why) for one that
    cannot be stored."""
    if not isinstance(row, dict):
        raise ValueError(f"a call is an object with the call log's fields, not {type(row).__name__}")
    if not row.keys() <= _ALLOWED:
        unknown = sorted(set(row) - _ALLOWED)
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; a call has {', '.join(FIELDS)}")
    model = row.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ValueError("no model: name the model called")
    status = row.get("status") or ("error" if row.get("error") else "ok")
    if status not in _STATUSES:
        raise ValueError(f"status is {status!r}; it is 'ok' or 'error'")
    moment = _moment(row.get("timestamp"), now)
    if moment - now > MAX_FUTURE:
        ahead = (moment - now).total_seconds() / 3600
        raise ValueError(f"its clock is {ahead:,.1f} h ahead of the server's (more than "
                         f"{MAX_FUTURE.total_seconds() / 3600:g} h): check the sending host's clock")
    tokens_in, tokens_out = _count(row, "input_tokens"), _count(row, "output_tokens")
    latency = _number(row, "latency_ms") or 0.0
    cost = _number(row, "cost_usd")
    ref = row.get("prompt_id")
    if ref is None or ref == "":
        ref = next((row[k] for k in ("prompt", "prompt_name") if row.get(k) not in (None, "")), None)
    version = row.get("prompt_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError(f"prompt_version is {version!r}, not a version number (1 or more)")
    prompt_id, prompt_name, version, flags = prompts.link(ref, version)
    if cost is None:
        cost = 0.0
        if tokens_in or tokens_out:
            price = prompts.price(None, model, config)
            cost = None if price is None else price.cost(tokens_in, tokens_out)
    error = row.get("error")
    if status == "error" and not error:
        error = "the app reported an error"
    return {
        "call_id": f"api-{key}", "timestamp": iso(moment), "prompt_id": prompt_id, "prompt_name": prompt_name,
        "prompt_version": version, "model": model.strip()[:200], "provider": clipped(row.get("provider")),
        "route": None, "input_tokens": tokens_in, "output_tokens": tokens_out, "latency_ms": latency,
        "user_id": clipped(row.get("user_id")), "cost_usd": cost, "cache_hit": False, "status": status,
        "error": clipped(error, 2000) if status == "error" else None, "environment": clipped(row.get("environment")),
        "run_id": None, "guards": {}, "source": SOURCE, "operation": clipped(row.get("operation")), "flags": flags,
    }


def _key(row: Any, batch_key: str | None, index: int) -> str:
    own = row.get("call_id") if isinstance(row, dict) else None
    if own not in (None, ""):
        if not isinstance(own, str | int) or isinstance(own, bool) or len(str(own)) > MAX_KEY:
            raise ValueError(f"call_id is {own!r}: a string of at most {MAX_KEY} characters")
        return str(own)
    if batch_key:
        return f"{batch_key}:{index}"
    return secrets.token_hex(12)


def ingest(db: sqlite_utils.Database, rows: list[Any], *, actor: str, config: Config | None = None,
           idempotency_key: str | None = None, now: datetime | None = None) -> Report:
    """Store a batch of reported calls; returns the Report (rejected rows by index, from 0)."""
    if not isinstance(rows, list):
        raise InvalidInput("the calls are a list of objects")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"a batch holds at most {MAX_ROWS} calls, not {len(rows)}; send smaller batches")
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or len(idempotency_key) > MAX_KEY):
        raise InvalidInput(f"idempotency_key is a string of at most {MAX_KEY} characters")
    now = now or current()
    report = Report()
    prompts = PromptLinks(db)
    built = []
    for index, row in enumerate(rows):
        try:
            built.append(call_row(row, prompts, config, now, _key(row, idempotency_key, index)))
        except ValueError as exc:
            report.rejected.append((index, str(exc)))
    if built:
        new = calls.insert_batch(db, built, actor=actor, source=SOURCE)
        report.stored = sum(new)
        report.duplicates = len(new) - report.stored
        report.flagged = sum(1 for row, fresh in zip(built, new, strict=True) if fresh and row["flags"])
    return report
