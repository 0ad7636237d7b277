"""Monitoring over a big call log: 1,000,000 rows.

Goals (issue 7): p95 latency per prompt for the last 24 h in under 1 s; the four default alert
rules evaluated in under 1 s. Two layouts of the same million rows are measured:
- "month": the rows spread over 30 days (about 33,000 calls a day), the usual shape;
- "day": all of them inside the last 24 hours, the worst case for a 24 h window.

    python -m bench.bench_monitor [--rows 1000000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

GOAL_S = 1.0
MODELS = (("gpt-4o", 2.5e-6, 1e-5), ("gpt-4o-mini", 1.5e-7, 6e-7), ("claude-3-5-haiku", 8e-7, 4e-6))
ENVIRONMENTS = ("production", "staging", "development")


def generate(db, rows: int, span: timedelta, *, now: datetime, prompts: int = 50, seed: int = 7) -> None:
    """`rows` call-log rows, timestamps evenly spread over `span` before `now`, in one transaction."""
    from promstack.monitoring import iso

    rng = random.Random(seed)
    rand, lognorm = rng.random, rng.lognormvariate
    start = now - span
    start_us = int(start.timestamp() * 1_000_000)
    step_us = span / timedelta(microseconds=1) / rows
    db.executemany(
        "INSERT OR IGNORE INTO prompts (id, name, created_at, created_by) VALUES (?, ?, ?, 'bench')",
        [(p, f"bench/prompt-{p}", iso(start)) for p in range(1, prompts + 1)],
    )
    gmtime, strftime = time.gmtime, time.strftime

    def row(i: int) -> tuple:
        model, pin, pout = MODELS[i % 3]
        tin, tout = 50 + int(rand() * 351), 20 + int(rand() * 581)
        status = "error" if rand() < 0.005 else "ok"
        prompt = 1 + i % prompts
        seconds, micros = divmod(start_us + int(step_us * i), 1_000_000)
        # the call log's format (store.clock): ISO 8601 UTC with microseconds and Z
        stamp = f"{strftime('%Y-%m-%dT%H:%M:%S', gmtime(seconds))}.{micros:06d}Z"
        return (
            f"bench-{i:08d}", stamp, prompt, f"bench/prompt-{prompt}", 1 + i % 4,
            model, tin, tout, round(lognorm(6.8, 0.6), 1), f"user_{i % 5000}",
            tin * pin + tout * pout, 1 if rand() < 0.1 else 0, status,
            "upstream 500" if status == "error" else None, ENVIRONMENTS[i % 3],
        )

    sql = (
        "INSERT INTO calls (call_id, timestamp, prompt_id, prompt_name, prompt_version, model, "
        "input_tokens, output_tokens, latency_ms, user_id, cost_usd, cache_hit, status, error, "
        "environment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    db.execute("PRAGMA cache_size = -262144")  # 256 MB: the indexes stay in memory while loading
    db.execute("BEGIN")
    chunk = 100_000
    for offset in range(0, rows, chunk):
        db.executemany(sql, (row(i) for i in range(offset, min(rows, offset + chunk))))
    db.execute("COMMIT")


def _timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run_layout(name: str, rows: int, span: timedelta, folder: Path) -> dict[str, float]:
    from promstack import monitoring
    from promstack.monitoring import alerts
    from store.db import connect

    path = folder / f"{name}.db"
    now = datetime.now(UTC)
    db = connect(path)
    started = time.perf_counter()
    generate(db.conn, rows, span, now=now)
    generated = time.perf_counter() - started
    config = {
        "limits": {"daily_tokens": 50_000_000},
        "budgets": {"monthly_usd": 10_000.0},
    }
    p95 = _timed(lambda: monitoring.latency_percentiles(db, since="24h", by="prompt", now=now))
    full = _timed(lambda: monitoring.metrics(db, since="24h", by="prompt", now=now))
    check = _timed(
        lambda: alerts.evaluate(db, config=alerts.rules_from_config(config), now=now, notify=False)
    )
    db.close()
    return {"generate_s": generated, "p95_per_prompt_s": p95, "metrics_s": full, "alerts_s": check}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    layouts = (("month", timedelta(days=30)), ("day", timedelta(hours=23, minutes=59)))
    print(f"monitoring over {args.rows:,} call-log rows (goal: each query under {GOAL_S:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="promstack-bench-") as tmp:
        for name, span in layouts:
            figures = run_layout(name, args.rows, span, Path(tmp))
            print(f"  layout '{name}' ({span.days or 1} day{'s' if span.days > 1 else ''}): "
                  f"generated in {figures['generate_s']:.1f} s")
            for label, key in (("p95 latency per prompt, last 24 h", "p95_per_prompt_s"),
                               ("four default alert rules", "alerts_s"),
                               ("all metrics per prompt, last 24 h", "metrics_s")):
                value = figures[key]
                print(f"    {label:<36} {value * 1000:8.1f} ms   "
                      f"{value / GOAL_S:5.2f}x the 1 s goal {'ok' if value < GOAL_S else 'SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
