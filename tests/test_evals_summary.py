"""A run's latency percentiles: the nearest rank of the run's stored latencies, read from one sort."""

from __future__ import annotations

import math

from promstack.evals import engine

pytest_plugins = ("test_evals_fake",)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return round(ordered[min(n - 1, max(0, int(round(q * n + 0.5)) - 1))], 1)


def test_percentiles_are_the_nearest_rank_of_the_stored_latencies(workspace, client, scripted):
    for cases in (1, 2, 13):
        name = f"sizes{cases}"
        rows = "input,expected_output\n" + "".join(f'"질문 {i}","contains:GOOD"\n' for i in range(cases))
        (workspace / "tests" / "prompts" / f"{name}.csv").write_text(rows, encoding="utf-8")
        (workspace / "tests" / "prompts" / f"{name}.yml").write_text("prompt: 42\n", encoding="utf-8")
        run = engine.run_tests(client, name, concurrency=4)
        stored = [r[0] for r in client.store.db.execute(
            "SELECT latency_ms FROM results WHERE run_id = ? AND status != 'error'", [run["id"]])]
        assert len(stored) == cases and not any(math.isnan(v) for v in stored)
        expected = {name: nearest_rank(stored, q) for name, q in (("p50", .5), ("p90", .9), ("p95", .95), ("p99", .99))}
        assert run["summary"]["latency_ms"] == expected
