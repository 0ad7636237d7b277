"""Monitoring: metrics over the call log, alert rules, gauges, costs and their advice, OpenTelemetry in and out.

The metrics (`call_metrics`: windows, groupings, percentiles, the SQL that splits a prompt's own traffic
from evaluation spend) are this package's surface; its other modules are `alerts` (rules, their state,
notifications), `gauges` (how much of each limit is used, the thresholds a chart marks), `costs` (the
cost report, tokens), `advice` (a cheaper model, a shorter prompt), `otel` (OTLP export) and
`otlp_in` (OTLP spans sent to `/v1/traces` into the call log), `reported` (calls apps report at
`POST /api/v1/calls` or with `client.log_call`).
Monitoring reads the store and calls the gateway and evals; it never imports deploy or a face.
"""

from .call_metrics import (
    EVALUATION_SQL,
    INTERNAL_SQL,
    OWN_SQL,
    UNPRICED_SQL,
    Window,
    dimensions,
    iso,
    latency_percentiles,
    metrics,
    nearest_rank,
    parse_duration,
    parse_time,
    resolve_prompt_id,
    total,
    window,
)

__all__ = [
    "EVALUATION_SQL", "INTERNAL_SQL", "OWN_SQL", "UNPRICED_SQL", "Window", "dimensions", "iso",
    "latency_percentiles", "metrics", "nearest_rank", "parse_duration", "parse_time",
    "resolve_prompt_id", "total", "window",
]
