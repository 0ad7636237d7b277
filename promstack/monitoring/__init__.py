"""Monitoring: metrics over the call log, alert rules, costs and their advice, OpenTelemetry in and out.

The metrics (`call_metrics`: windows, groupings, percentiles, the SQL that splits a prompt's own traffic
from evaluation spend) are this package's surface; `alerts`, `costs` and `otel` are its modules.
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
