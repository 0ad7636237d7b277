"""The quick check of a save (promstack.evals.check, issue 21) against tests/fake_llm.py in its own
process at 100 ms a call. Figures are printed with their ratio to the ideal; none is asserted.

- save to annotation visible, p50 and p95: a 20-case sample at concurrency 10 with the parent's
  outputs already cached (each save's parent was checked just before), a long-lived SDK client
  (its checker thread); ideal: the 20 calls the new version must make, 20/10 x 0.1 s = 0.2 s;
  goal: p50 within 2x. The saves are spaced past the burst debounce, as saves by a person are.
- the same from a one-shot CLI save (`promstack prompt update`, which starts a detached
  `promstack check --pending`): its process start-up included, reported beside the figure.
- a burst of 20 saves in 2 s: how many checks ran (goal: 1 or 2), and the model calls made.

Each case has a deterministic assertion (no judge), so one model call per case and version.

    python -m bench.bench_check [--saves N]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fake_server import start_server, stop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LATENCY, SAMPLE, CONCURRENCY, CASES = 0.1, 20, 10, 40
DEBOUNCE = 0.5
GOAL_RATIO = 2.0
WAIT_S = 60


def make_workspace(base: str) -> tuple[object, Path]:
    from promstack import Client
    from promstack.evals import engine

    root = Path(tempfile.mkdtemp(prefix="promstack-bench-check-"))
    (root / ".promstack").mkdir()
    (root / ".promstack" / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{base}"\n\n'
        f"[check]\nsample = {SAMPLE}\nconcurrency = {CONCURRENCY}\ndebounce_s = {DEBOUNCE}\n",
        encoding="utf-8",
    )
    client = Client(root / ".promstack" / "promstack.db")
    client.create_prompt("bench/answer", "Answer: {{ input }}", model_config={"model": "openai/bench"})
    path = root / "bench.csv"
    path.write_text("input,expected_output\n" + "".join(f'"refund {i}","contains:refund"\n' for i in range(CASES)),
                    encoding="utf-8")
    engine.import_suite(client, path, prompt="bench/answer")
    return client, root


def wait_checked(client, version: int) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = client.version_checks("bench/answer", [version]).get(version)
        if found is not None and found.status != "pending":
            return found
        time.sleep(0.005)
    raise RuntimeError(f"v{version} was not checked within {WAIT_S}s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]


def save_to_annotation(client, saves: int) -> list[float]:
    times = []
    for i in range(saves + 1):
        time.sleep(DEBOUNCE + 0.05)  # past the burst debounce: a person's next save
        t0 = time.perf_counter()
        saved = client.save("bench/answer", f"Answer ({i}): {{{{ input }}}}")
        found = wait_checked(client, saved.version)
        elapsed = time.perf_counter() - t0
        if found.status != "checked":
            raise RuntimeError(f"v{saved.version}: {found.text}")
        if i:  # the first save's parent (v1) was never checked: its outputs are not cached
            times.append(elapsed)
    return times


def cli_save_to_annotation(client, root: Path, saves: int) -> list[float]:
    env = {**os.environ, "PROMSTACK_DB": str(root / ".promstack" / "promstack.db")}
    times = []
    for i in range(saves):
        time.sleep(DEBOUNCE + 0.05)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from promstack.cli import main; main()", "prompt", "update",
                        "bench/answer", "--template", f"CLI answer ({i}): {{{{ input }}}}"],
                       env=env, cwd=root, check=True, stdout=subprocess.DEVNULL)
        head = client.get_prompt("bench/answer").version
        wait_checked(client, head)
        times.append(time.perf_counter() - t0)
    return times


def burst(client, saves: int = 20, seconds: float = 2.0) -> tuple[int, int, int]:
    """(checks run, saves closed unchecked, model calls) for `saves` saves spread over `seconds`."""
    db = client.store.db
    calls_before = db.execute("SELECT count(*) FROM calls WHERE run_id LIKE 'check-%' AND cache_hit = 0").fetchone()[0]
    time.sleep(DEBOUNCE + 0.05)
    versions = []
    for i in range(saves):
        versions.append(client.save("bench/answer", f"Burst answer ({i}): {{{{ input }}}}").version)
        time.sleep(seconds / saves)
    found = {v: wait_checked(client, v) for v in versions}
    client.flush_calls()
    time.sleep(0.2)
    calls = db.execute("SELECT count(*) FROM calls WHERE run_id LIKE 'check-%' AND cache_hit = 0").fetchone()[0]
    checked = sum(1 for c in found.values() if c.status == "checked")
    return checked, sum(1 for c in found.values() if c.status == "not_checked"), calls - calls_before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_check", description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=20, help="Timed saves through the SDK (default 20).")
    parser.add_argument("--cli-saves", type=int, default=5, help="Timed one-shot CLI saves (default 5).")
    args = parser.parse_args(argv)
    os.environ.setdefault("PROMSTACK_USER", "bench")
    ideal = math.ceil(SAMPLE / CONCURRENCY) * LATENCY
    print(f"the quick check of a save: {SAMPLE}-case sample, concurrency {CONCURRENCY}, fake model at "
          f"{LATENCY * 1000:.0f} ms, parent cached; ideal {ideal:.2f} s ({SAMPLE} calls / {CONCURRENCY})")
    server, base = start_server(LATENCY)
    missed = False
    try:
        client, root = make_workspace(base)
        times = save_to_annotation(client, args.saves)
        p50, p95 = statistics.median(times), percentile(times, 0.95)
        ok = p50 <= GOAL_RATIO * ideal
        missed |= not ok
        print(f"SDK save -> annotation ({len(times)} saves): p50 {p50:.3f} s ({p50 / ideal:.2f}x ideal), "
              f"p95 {p95:.3f} s ({p95 / ideal:.2f}x); goal p50 <= {GOAL_RATIO:g}x: {'pass' if ok else 'MISSED'}")
        if args.cli_saves:
            cli = cli_save_to_annotation(client, root, args.cli_saves)
            print(f"CLI save -> annotation ({len(cli)} saves, process start-ups included): "
                  f"p50 {statistics.median(cli):.3f} s ({statistics.median(cli) / ideal:.2f}x ideal), "
                  f"max {max(cli):.3f} s")
        checked, closed, calls = burst(client)
        ok = 1 <= checked <= 2
        missed |= not ok
        print(f"burst of 20 saves in 2 s: {checked} checks ran, {closed} saves closed unchecked, "
              f"{calls} model calls ({calls / SAMPLE:.1f}x one check's {SAMPLE}); goal 1 or 2 checks: "
              f"{'pass' if ok else 'MISSED'}")
        client.close()
    finally:
        stop(server)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
