"""OpenTelemetry export: call-log rows as OTLP spans with `gen_ai.*` attributes. Opt-in.

Set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) and every call-log
row is sent as one span to `<endpoint>/v1/traces`, encoded as OTLP/HTTP JSON (which the
OpenTelemetry Collector, Jaeger, Tempo, Honeycomb and most backends accept). The standard
variables apply: `OTEL_EXPORTER_OTLP_HEADERS` (and `..._TRACES_HEADERS`), `..._TIMEOUT` (ms),
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`.

Export works from the call log, not from inside a call: a cursor in the store (export_cursors)
remembers the last row sent, so a call never waits on the collector, a collector that is down
delays spans instead of losing them, and `promstack otel export` can send the history. When the
variable is set, the gateway starts a background exporter that polls every
`OTEL_BSP_SCHEDULE_DELAY` ms (default 5000). No opentelemetry package is needed: the wire
format is a few dictionaries.

Span ids are derived from the call id, so re-sending a row produces the same span.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import urllib.parse
from datetime import datetime
from typing import Any

import sqlite_utils

from store import monitoring

log = logging.getLogger("promstack.otel")
log.addHandler(logging.NullHandler())

CURSOR = "otlp"
SCOPE = "promstack"
BATCH = 512
SPAN_KIND_CLIENT = 3
STATUS_UNSET, STATUS_ERROR = 0, 2


def traces_endpoint(env: dict[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    if str(env.get("OTEL_SDK_DISABLED", "")).lower() == "true":
        return None
    specific = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if specific:
        return specific
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return None
    return base.rstrip("/") + "/v1/traces"


def enabled() -> bool:
    return traces_endpoint() is not None


def _pairs(text: str | None) -> dict[str, str]:
    out = {}
    for item in (text or "").split(","):
        if "=" in item:
            key, _, value = item.partition("=")
            out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return out


def headers() -> dict[str, str]:
    found = _pairs(os.environ.get("OTEL_EXPORTER_OTLP_HEADERS"))
    found.update(_pairs(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")))
    return found


def timeout_s() -> float:
    raw = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        return max(0.1, min(float(raw) / 1000, 60.0)) if raw else 10.0
    except ValueError:
        return 10.0


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in OTLP JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(items: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in items.items() if v is not None and v != ""]


def _nanos(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _ids(call_id: str) -> tuple[str, str]:
    digest = hashlib.sha256(call_id.encode()).hexdigest()
    trace = call_id.lower() if len(call_id) == 32 and all(c in "0123456789abcdef" for c in call_id.lower()) \
        else digest[:32]
    return trace, digest[32:48]


def span(row: dict[str, Any]) -> dict[str, Any]:
    """One call-log row as an OTLP span (GenAI semantic conventions, client span)."""
    start = _nanos(row["timestamp"])
    end = start + int(round(float(row.get("latency_ms") or 0) * 1_000_000))
    trace_id, span_id = _ids(str(row.get("call_id") or row.get("id")))
    status = row.get("status") or "ok"
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": row.get("provider"),
        "gen_ai.system": row.get("provider"),
        "gen_ai.request.model": row.get("model"),
        "gen_ai.response.model": row.get("model"),
        "gen_ai.usage.input_tokens": int(row.get("input_tokens") or 0),
        "gen_ai.usage.output_tokens": int(row.get("output_tokens") or 0),
        "error.type": None if status == "ok" else status,  # low cardinality: 'error' or 'blocked'
        "user.id": row.get("user_id"),
        "deployment.environment.name": row.get("environment"),
        "promstack.call_id": row.get("call_id"),
        "promstack.prompt.id": row.get("prompt_id"),
        "promstack.prompt.name": row.get("prompt_name"),
        "promstack.prompt.version": row.get("prompt_version"),
        # absent when the model has no price: an unknown cost is not $0
        "promstack.cost_usd": None if row.get("cost_usd") is None else float(row["cost_usd"]),
        "promstack.cache_hit": bool(row.get("cache_hit")),
        "promstack.status": status,
        "promstack.run_id": row.get("run_id"),
        "promstack.route": row.get("route"),
    }
    out = {
        "traceId": trace_id, "spanId": span_id,
        "name": f"chat {row.get('model')}", "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
        "attributes": _attributes(attributes),
        "status": {"code": STATUS_UNSET} if status == "ok" else
                  {"code": STATUS_ERROR, "message": str(row.get("error") or status)[:500]},
    }
    return out


def resource() -> dict[str, Any]:
    attrs = _pairs(os.environ.get("OTEL_RESOURCE_ATTRIBUTES"))
    attrs["service.name"] = os.environ.get("OTEL_SERVICE_NAME") or attrs.get("service.name") or "promstack"
    attrs.setdefault("telemetry.sdk.name", "promstack")
    return {"attributes": _attributes(attrs)}


def payload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    # the distribution's version (the package root would also offer the SDK's Client)
    from importlib.metadata import version

    return {"resourceSpans": [{
        "resource": resource(),
        "scopeSpans": [{"scope": {"name": SCOPE, "version": version("promstack")},
                        "spans": [span(r) for r in rows]}],
    }]}


_COLUMNS = ("id", "call_id", "timestamp", "prompt_id", "prompt_name", "prompt_version", "model",
            "provider", "route", "input_tokens", "output_tokens", "latency_ms", "user_id", "cost_usd",
            "cache_hit", "status", "error", "environment", "run_id")


def export_pending(
    db: sqlite_utils.Database, *, endpoint: str | None = None, batch: int = BATCH,
    max_batches: int | None = None,
) -> dict[str, Any]:
    """Send every call-log row after the cursor, in batches; the cursor moves only past rows the
    collector accepted. Returns {"sent", "batches", "error"}; never raises on network trouble."""
    import httpx

    endpoint = endpoint or traces_endpoint()
    if endpoint is None:
        return {"sent": 0, "batches": 0, "error": "OTEL_EXPORTER_OTLP_ENDPOINT is not set"}
    sent = batches = 0
    extra = {"content-type": "application/json", **headers()}
    with httpx.Client(timeout=timeout_s()) as http:
        while max_batches is None or batches < max_batches:
            cursor = monitoring.get_cursor(db, CURSOR)
            found = db.execute(
                # rows that arrived as OpenTelemetry spans (/v1/traces) are the app's own spans:
                # sending them on would show each call twice in a backend that also gets those
                f"SELECT {', '.join(_COLUMNS)} FROM calls WHERE id > ? AND source != 'otlp' ORDER BY id LIMIT ?",
                [cursor, batch]).fetchall()
            if not found:
                break
            rows = [dict(zip(_COLUMNS, r, strict=True)) for r in found]
            try:
                response = http.post(endpoint, json=payload(rows), headers=extra)
            except Exception as exc:
                log.warning("OTLP export to %s failed: %s", endpoint, exc)
                return {"sent": sent, "batches": batches, "error": f"{exc.__class__.__name__}: {exc}"}
            if not 200 <= response.status_code < 300:
                log.warning("OTLP export to %s answered %s", endpoint, response.status_code)
                return {"sent": sent, "batches": batches, "error": f"HTTP {response.status_code}"}
            monitoring.set_cursor(db, CURSOR, rows[-1]["id"])
            sent += len(rows)
            batches += 1
    return {"sent": sent, "batches": batches, "error": None}


class BackgroundExporter:
    """Polls the store and exports new rows; one per store path per process."""

    def __init__(self, db_path: Any, interval: float) -> None:
        self.db_path = db_path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="promstack-otlp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from store.db import connect

        db = None
        while not self._stop.is_set():
            self._stop.wait(self.interval)
            try:
                db = db or connect(self.db_path)
                export_pending(db)
            except Exception as exc:  # the exporter must never take anything down with it
                log.warning("OTLP export failed: %s", exc)
        if db is not None:
            try:
                export_pending(db, max_batches=4)  # what is left, briefly
            except Exception as exc:
                log.warning("OTLP export at exit failed: %s", exc)
            db.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


_exporters: dict[str, BackgroundExporter] = {}
_lock = threading.Lock()


def start_background(db_path: Any) -> BackgroundExporter | None:
    """Start the exporter for a store file when OTLP export is configured (else do nothing)."""
    if db_path is None or not enabled():
        return None
    try:
        interval = float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000
    except ValueError:
        interval = 5.0
    key = str(db_path)
    with _lock:
        if key not in _exporters:
            _exporters[key] = BackgroundExporter(db_path, max(0.05, interval))
        return _exporters[key]


@atexit.register
def _stop_all() -> None:
    for exporter in list(_exporters.values()):
        exporter.stop()
