"""Bisect over a long history (promstack/evals/bisect.py) against tests/fake_llm.py in its own
process at 100 ms an answer: the model calls it makes against the O(log n) minimum, and its wall
time against the calls it must make.

- One case, 64 versions, the break at several places: a version tested is one model call (a
  deterministic assertion, no judge). The minimum is ceil(log2 64) = 6 calls (a binary search
  whose two ends are known); bisect knows neither end, so its bound is ceil(log2 63) + 1 = 7.
  Goal: calls <= 7, ratio to the minimum <= 1.17; a second bisect makes 0 calls (the cache).
- The suite's score under a bar, 64 versions, a 10-case suite run at concurrency 10: each
  version tested is 10 calls; minimum 6 x 10.
- Wall time of the first bisect against the ideal (tested versions x 100 ms: the versions are
  tested one after the other, each one's cases at once).

    python -m bench.bench_bisect [--versions 64] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from bench.fake_server import start_server, stop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CASES = 10


def template(name: str, version: int, broke_at: int) -> str:
    # the prompt's name in its text: no two prompts share an answer in the cache
    rule = "Follow the REFUND-POLICY. " if version < broke_at else ""
    return f"{name}, revision {version}. {rule}Question: {{{{ input }}}}\n"


def workspace(base: str, versions: int, breaks: list[int]):
    from promstack import Client

    root = Path(tempfile.mkdtemp(prefix="promstack-bench-bisect-"))
    (root / ".promstack").mkdir()
    (root / ".promstack" / "config.toml").write_text(f'[providers.openai]\napi_base = "{base}"\n', encoding="utf-8")
    client = Client(root / ".promstack" / "promstack.db")
    folder = root / "tests" / "prompts"
    folder.mkdir(parents=True)
    cases = [{"input": f"I want a refund for order {i}", "assert": [{"type": "contains", "value": "REFUND-POLICY"}]}
             for i in range(CASES)]
    for mode in ("case", "suite"):  # a prompt per mode and break: no figure reuses another's calls
        for at in breaks:
            name = f"bench/{mode}-broke-at-{at}"
            client.create_prompt(name, template(name, 1, at), model_config={"model": "openai/bench"})
            for v in range(2, versions + 1):
                client.save(name, template(name, v, at))
            suite = f"{mode}-broke-at-{at}"
            (folder / f"{suite}.json").write_text(json.dumps(cases), encoding="utf-8")
            (folder / f"{suite}.yml").write_text(f"prompt: {name}\n", encoding="utf-8")
    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_bisect", description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args(argv)
    from promstack.evals.bisect import bisect, most_tests

    n = args.versions
    minimum = math.ceil(math.log2(n))
    bound = most_tests(n)
    breaks = sorted({2, n // 3, n // 2 + 1, n - 5, n})
    proc, base = start_server(args.latency)
    missed = 0
    try:
        client = workspace(base, n, breaks)
        print(f"bisect over {n} versions, fake model at {args.latency * 1000:.0f} ms; minimum ceil(log2 {n}) = "
              f"{minimum} versions, bound {bound}")
        for mode in ("case", "suite"):
            per_version = 1 if mode == "case" else CASES
            for at in breaks:
                name = f"bench/{mode}-broke-at-{at}"
                what = {"case": 0} if mode == "case" else {"min_score": 95.0}
                start = time.perf_counter()
                found = bisect(client, name, **what)
                wall = time.perf_counter() - start
                again = bisect(client, name, **what)
                right = found["culprit"] == at
                ideal = len(found["tested"]) * args.latency
                ratio = found["model_calls"] / (minimum * per_version)
                ok = right and found["model_calls"] <= bound * per_version and again["model_calls"] == 0
                missed += not ok
                print(f"  {mode:<5} break at v{at:<3} culprit v{found['culprit']} ({'right' if right else 'WRONG'}): "
                      f"{len(found['tested'])} versions tested, {found['model_calls']} model calls vs minimum "
                      f"{minimum * per_version} -> ratio {ratio:.2f} (goal <= {bound / minimum:.2f}); "
                      f"again: {again['model_calls']} calls; wall {wall:.2f} s vs ideal {ideal:.2f} s "
                      f"({wall / ideal:.2f}x)  {'ok' if ok else 'MISS'}")
        client.close()
    finally:
        stop(proc)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
