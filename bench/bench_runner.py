"""The batch runner (promstack/evals) against tests/fake_llm.py in its own process, so only the
runner's and the gateway's CPU are counted. Figures are printed with their ratio to the ideal
and to the bare-client floor (a bare aiohttp client, same server, same requests, measured just
before); none is asserted (issues 6 and 22).

- 1,000 cases at concurrency 50 with 100 ms of server latency: ideal 1000/50 x 0.1 s = 2.0 s;
  goal: wall time <= 1.10x the ideal with every result stored, CPU per case < 2 ms;
- 10,000 cases at concurrency 200 with 50 ms (ideal 2.5 s): goal <= 2.0x for the whole
  `promstack test` command (its process start-up included), and the in-process run beside it;
- the runner's own CPU per case, with a gateway stand-in that only sleeps (no HTTP, no log);
- rate limits: 200 cases at concurrency 50 against a server that takes 600 requests a minute
  (10 a second; 429 + Retry-After beyond): ideal 20 s; adaptive, then with `[gateway] rpm = 600`;
  the 429s taken;
- memory: peak RSS after 10,000 and after 100,000 cases through the stand-in (flat = streaming),
  and 100,000 through the real gateway and the fake server (without --quick);
- process start-up (`promstack --version`, and importing the runner), reported separately.

Each case has a deterministic assertion, so one model call per case (as the ideal assumes).
The cache is off for the timed runs (a first run of a suite misses it anyway).

    python -m bench.bench_runner [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fake_server import start_server, stop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RATIO_GOAL = 1.15  # the runner alone, with the stand-in
GOALS = {1_000: 1.10, 10_000: 2.0}  # through the gateway, by suite size (issue 22)
CPU_GOAL_MS = 2.0
RSS_GOAL_MB = 150


def make_workspace(base: str, cases: int, *, cache: bool = False):
    from promstack import Client
    from promstack.evals import engine

    root = Path(tempfile.mkdtemp(prefix="promstack-bench-runner-"))
    (root / ".promstack").mkdir()
    (root / ".promstack" / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{base}"\n\n[cache]\nenabled = {"true" if cache else "false"}\n',
        encoding="utf-8",
    )
    client = Client(root / ".promstack" / "promstack.db")
    client.create_prompt("bench/answer", "전문가로서 답변하세요.\n질문: {{ input }}\n",
                         model_config={"model": "openai/bench"})
    path = root / "bench.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("input,expected_output\n")
        for i in range(cases):
            fh.write(f'"환불하고 싶어요 {i}","contains:환불"\n')
    engine.import_suite(client, path, prompt="bench/answer")
    return client, root


def timed_run(client, concurrency: int, gateway=None) -> tuple[float, float, dict]:
    from promstack.evals import engine

    wall0, cpu0 = time.perf_counter(), time.process_time()
    run = engine.run_tests(client, "bench", concurrency=concurrency, gateway=gateway)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return wall, cpu, run


MISSED: list[str] = []


def report(cases: int, concurrency: int, latency: float, wall: float, cpu: float, run: dict, label: str,
           *, goal: float = RATIO_GOAL, floor: float | None = None) -> None:
    ideal = cases / concurrency * latency
    if wall / ideal > goal or cpu / cases * 1000 >= CPU_GOAL_MS:
        MISSED.append(f"{label}, {cases} cases")
    s = run["summary"]
    stored = s["results"]
    print(f"{label}: {cases:,} cases, concurrency {concurrency}, {latency * 1000:.0f} ms latency")
    print(f"  wall time        {wall:7.2f} s   ideal {ideal:.2f} s   ratio {wall / ideal:.3f}  "
          f"(goal <= {goal})  {'OK' if wall / ideal <= goal else 'OVER'}"
          + (f"   floor x {wall / floor:.3f}" if floor else "") + f"   load {os.getloadavg()[0]:.2f}")
    print(f"  CPU per case     {cpu / cases * 1000:7.3f} ms  (goal < {CPU_GOAL_MS} ms)  "
          f"{'OK' if cpu / cases * 1000 < CPU_GOAL_MS else 'OVER'}")
    print(f"  results stored   {stored:,} of {cases:,}, passed {s['passed']:,}, errors {s['errors']}")


def whole_command(root: Path, cases: int, concurrency: int, latency: float, floor: float, goal: float,
                  workers: int = 1) -> None:
    """`promstack test` as a user runs it, start-up included, timed from outside."""
    promstack = os.path.join(os.path.dirname(sys.executable), "promstack")
    env = {**os.environ, "PROMSTACK_DB": str(root / ".promstack" / "promstack.db")}
    t = time.perf_counter()
    done = subprocess.run([promstack, "test", "--suite", "bench", "--concurrency", str(concurrency),
                           "--workers", str(workers)], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    ideal = cases / concurrency * latency
    if done.returncode != 0 or wall / ideal > goal:
        MISSED.append(f"promstack test --workers {workers}, {cases} cases")
    label = "`promstack test`" if workers == 1 else f"  --workers {workers}"
    print(f"  {label:16} {wall:7.2f} s   ideal {ideal:.2f} s   ratio {wall / ideal:.3f}  (goal <= {goal})  "
          f"{'OK' if wall / ideal <= goal else 'OVER'}   floor x {wall / floor:.3f}   exit {done.returncode}"
          f"   load {os.getloadavg()[0]:.2f}")


def server_stats(base: str) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{base}/stats", timeout=10) as response:
        return json.load(response)


def rate_limited(cases: int = 200, concurrency: int = 50, rpm: int = 600) -> None:
    """Against a server that takes `rpm` requests a minute: adaptive (429s and Retry-After
    only), then capped up front by `[gateway] rpm`."""
    ideal = cases / rpm * 60
    print(f"rate limits: {cases} cases, concurrency {concurrency}, a server taking {rpm} requests a minute "
          f"(ideal {ideal:.0f} s)")
    for cap in (None, rpm):
        server, base = start_server(0.1, rpm=rpm)
        try:
            client, root = make_workspace(base, cases)
            if cap:
                with (root / ".promstack" / "config.toml").open("a", encoding="utf-8") as fh:
                    fh.write(f"\n[gateway]\nrpm = {cap}\n")
            wall, _, run = timed_run(client, concurrency)
            stats = server_stats(base)
            client.close()
        finally:
            stop(server)
        s = run["summary"]
        label = "adaptive (429s only)" if cap is None else f"[gateway] rpm = {cap}"
        print(f"  {label:<22} {wall:6.1f} s   ratio {wall / ideal:.3f}   429s {stats['throttled']} "
              f"of {stats['requests']} requests   passed {s['passed']} of {cases}, errors {s['errors']}")
        if s["errors"] or wall / ideal > 1.25:
            MISSED.append(f"rate limits, {label}")


def http_floor(base: str, cases: int, concurrency: int) -> float:
    """The same number of requests from a bare aiohttp client at the same concurrency: what the
    fake server and this machine allow at all, with no gateway and no runner."""
    import json

    import aiohttp

    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "질문: 환불하고 싶어요"}]}).encode()

    async def go() -> float:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with gate, session.post(f"{base}/chat/completions", data=body,
                                              headers={"content-type": "application/json"}) as response:
                    await response.read()

            await asyncio.gather(*(one() for _ in range(min(cases, 2 * concurrency))))  # warm
            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(cases)))
            return time.perf_counter() - start

    return asyncio.run(go())


class SleepGateway:
    """Stands in for the gateway: waits the latency and answers; no HTTP, no call log."""

    def __init__(self, latency: float):
        self.latency = latency

    async def complete(self, **kwargs):
        from promstack.evals.gateway import Reply

        if self.latency:
            await asyncio.sleep(self.latency)
        return Reply("환불 절차는 다음과 같습니다", input_tokens=150, output_tokens=200, latency_ms=self.latency * 1000)

    async def embed(self, texts, **kwargs):
        raise NotImplementedError


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def startup() -> None:
    promstack = os.path.join(os.path.dirname(sys.executable), "promstack")
    for label, cmd in (("promstack --version", [promstack, "--version"]),
                       ("import promstack.evals.engine + gateway", [sys.executable, "-c",
                                                                "import promstack.evals.engine, promstack.gateway"])):
        best = min(_time(cmd) for _ in range(3))
        print(f"  {label:<38} {best * 1000:7.0f} ms (best of 3)")


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Skip the 10,000-case and 100,000-case runs.")
    parser.add_argument("--memory", type=int, metavar="CASES", help=argparse.SUPPRESS)
    parser.add_argument("--real", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=2, metavar="N",
                        help="Also time the whole command with --workers N (default 2).")
    parser.add_argument("--workers-only", action="store_true",
                        help="Only the 10,000-case whole command, with --workers 1 and --workers N.")
    args = parser.parse_args(argv)
    if args.workers_only:
        return workers_only(args.workers)
    if args.memory:
        memory(args.memory, real=args.real)
        return 0
    os.environ.setdefault("PROMSTACK_USER", "bench")
    print("promstack test: the batch runner against the ideal and the bare-client floor (issues 6, 22)")
    print("process start-up (not part of the runs below):")
    startup()
    plans = [(1_000, 50, 0.1)] + ([] if args.quick else [(10_000, 200, 0.05)])
    for cases, concurrency, latency in plans:
        server, base = start_server(latency)
        try:
            client, root = make_workspace(base, cases)
            floor = http_floor(base, cases, concurrency)
            ideal = cases / concurrency * latency
            print(f"bare HTTP floor: {cases:,} requests, concurrency {concurrency}, {latency * 1000:.0f} ms: "
                  f"{floor:.2f} s, ideal x {floor / ideal:.3f} (a bare aiohttp client, same server)")
            timed_run(client, concurrency) if cases <= 1000 else None  # warm-up: connections, imports
            wall, cpu, run = timed_run(client, concurrency)
            report(cases, concurrency, latency, wall, cpu, run, "through the gateway (HTTP, call log)",
                   goal=GOALS[cases], floor=floor)
            client.close()
            whole_command(root, cases, concurrency, latency, floor, GOALS[cases])
            if args.workers > 1:
                whole_command(root, cases, concurrency, latency, floor, GOALS[cases], args.workers)
        finally:
            stop(server)
        client, _ = make_workspace("http://127.0.0.1:9/v1", cases)
        wall, cpu, run = timed_run(client, concurrency, SleepGateway(latency))
        report(cases, concurrency, latency, wall, cpu, run, "the runner alone (gateway stand-in)")
        client.close()
    rate_limited(cases=60 if args.quick else 200)
    if not args.quick:
        print("memory (each size in a fresh process):")
        for cases, real in ((10_000, False), (100_000, False), (100_000, True)):
            out = subprocess.run([sys.executable, "-m", "bench.bench_runner", "--memory", str(cases),
                                  *(["--real"] if real else [])],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            print(out.stdout.rstrip())
            if "OVER" in out.stdout:
                MISSED.append(f"memory, {cases} cases")
    if MISSED:
        print("missed: " + "; ".join(MISSED))
    # bench/__main__.py's convention: 0 when every goal is met, 1 when one is missed.
    return 1 if MISSED else 0


def workers_only(workers: int, cases: int = 10_000, concurrency: int = 200, latency: float = 0.05) -> int:
    """The whole command at 10,000 cases, one process against `workers` processes, in turn."""
    os.environ.setdefault("PROMSTACK_USER", "bench")
    server, base = start_server(latency)
    try:
        client, root = make_workspace(base, cases)
        client.close()
        floor = http_floor(base, cases, concurrency)
        print(f"bare HTTP floor: {cases:,} requests, concurrency {concurrency}, {latency * 1000:.0f} ms: "
              f"{floor:.2f} s, ideal x {floor / (cases / concurrency * latency):.3f}")
        for n in (1, workers, 1, workers):
            whole_command(root, cases, concurrency, latency, floor, GOALS[cases], n)
    finally:
        stop(server)
    if MISSED:
        print("missed: " + "; ".join(MISSED))
    return 1 if MISSED else 0


def memory(cases: int, *, real: bool = False) -> None:
    """Peak RSS of a run of `cases`: through the stand-in, or (`real`) the gateway, HTTP and
    the call log against the fake server with no latency."""
    server, base = start_server(0.0) if real else (None, "http://127.0.0.1:9/v1")
    try:
        client, _ = make_workspace(base, cases)
        after_import = max_rss_mb()
        wall, cpu, run = timed_run(client, 200, None if real else SleepGateway(0.0))
    finally:
        if server is not None:
            stop(server)
    peak = max_rss_mb()
    label = "gateway + fake server" if real else "gateway stand-in"
    print(f"  {cases:>7,} cases ({label}): peak RSS {after_import:6.1f} MB after the import, {peak:6.1f} MB "
          f"after the run (goal <= {RSS_GOAL_MB})  {'OK' if peak <= RSS_GOAL_MB else 'OVER'}; "
          f"{run['summary']['results']:,} stored in {wall:.1f} s")
    client.close()


if __name__ == "__main__":
    raise SystemExit(main())
