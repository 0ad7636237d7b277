"""The batch runner (promstack/evals) against tests/fake_llm.py in its own process, so only the
runner's and the gateway's CPU are counted. Figures are printed with their ratio to the ideal
(issue 6); none is asserted.

- 1,000 cases at concurrency 50 with 100 ms of server latency: ideal 1000/50 x 0.1 s = 2.0 s;
  goal: wall time <= 1.15x the ideal with every result stored, CPU per case < 2 ms;
- the same for 10,000 cases at concurrency 200 with 50 ms (ideal 2.5 s);
- the runner's own CPU per case, with a gateway stand-in that only sleeps (no HTTP, no log);
- memory: peak RSS after 10,000 and after 100,000 cases through the stand-in (flat = streaming);
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
RATIO_GOAL = 1.15
CPU_GOAL_MS = 2.0


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


def report(cases: int, concurrency: int, latency: float, wall: float, cpu: float, run: dict, label: str) -> None:
    ideal = cases / concurrency * latency
    if wall / ideal > RATIO_GOAL or cpu / cases * 1000 >= CPU_GOAL_MS:
        MISSED.append(f"{label}, {cases} cases")
    s = run["summary"]
    stored = s["results"]
    print(f"{label}: {cases:,} cases, concurrency {concurrency}, {latency * 1000:.0f} ms latency")
    print(f"  wall time        {wall:7.2f} s   ideal {ideal:.2f} s   ratio {wall / ideal:.3f}  "
          f"(goal <= {RATIO_GOAL})  {'OK' if wall / ideal <= RATIO_GOAL else 'OVER'}")
    print(f"  CPU per case     {cpu / cases * 1000:7.3f} ms  (goal < {CPU_GOAL_MS} ms)  "
          f"{'OK' if cpu / cases * 1000 < CPU_GOAL_MS else 'OVER'}")
    print(f"  results stored   {stored:,} of {cases:,}, passed {s['passed']:,}, errors {s['errors']}")


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
    args = parser.parse_args(argv)
    if args.memory:
        memory(args.memory)
        return 0
    os.environ.setdefault("PROMSTACK_USER", "bench")
    print("promstack test: the batch runner against the ideal (issue 6)")
    print("process start-up (not part of the runs below):")
    startup()
    plans = [(1_000, 50, 0.1)] + ([] if args.quick else [(10_000, 200, 0.05)])
    for cases, concurrency, latency in plans:
        server, base = start_server(latency)
        try:
            client, _ = make_workspace(base, cases)
            timed_run(client, concurrency) if cases <= 1000 else None  # warm-up: connections, imports
            wall, cpu, run = timed_run(client, concurrency)
            report(cases, concurrency, latency, wall, cpu, run, "through the gateway (HTTP, call log)")
            client.close()
            floor = http_floor(base, cases, concurrency)
            print(f"  bare HTTP floor  {floor:7.2f} s   (a bare aiohttp client, same server and concurrency: "
                  f"ideal x {floor / (cases / concurrency * latency):.3f}; the run is floor x {wall / floor:.3f})")
        finally:
            stop(server)
        client, _ = make_workspace("http://127.0.0.1:9/v1", cases)
        wall, cpu, run = timed_run(client, concurrency, SleepGateway(latency))
        report(cases, concurrency, latency, wall, cpu, run, "the runner alone (gateway stand-in)")
        client.close()
    if not args.quick:
        print("memory (gateway stand-in, no latency; each size in a fresh process):")
        for cases in (10_000, 100_000):
            out = subprocess.run([sys.executable, "-m", "bench.bench_runner", "--memory", str(cases)],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            print(out.stdout.rstrip())
    if MISSED:
        print("missed: " + "; ".join(MISSED))
    # bench/__main__.py's convention: 0 when every goal is met, 1 when one is missed.
    return 1 if MISSED else 0


def memory(cases: int) -> None:
    client, _ = make_workspace("http://127.0.0.1:9/v1", cases)
    after_import = max_rss_mb()
    wall, cpu, run = timed_run(client, 200, SleepGateway(0.0))
    print(f"  {cases:>7,} cases: peak RSS {after_import:6.1f} MB after the import, {max_rss_mb():6.1f} MB after "
          f"the run; {run['summary']['results']:,} stored in {wall:.1f} s")
    client.close()


if __name__ == "__main__":
    raise SystemExit(main())
