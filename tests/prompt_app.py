"""A production app in miniature, for the outage test and the benchmark: it reads prompts in a
loop from a team server (label `production`, and `staging` per user, an A/B test there) and
measures every call. Run as a process of its own:

    python tests/prompt_app.py URL [--ttl 0.2] [--retry 0.5] [--users 50]

It prints `ready` once its first reads are done, then reads until stdin says `stop`; a line
`phase NAME` starts counting calls under NAME (before any: "start"). Its last line is JSON: per phase, calls, failed
calls (and the first errors), where calls were served from, p50/p95/max seconds; the versions
each user was served; and the first read's seconds (the only one allowed to wait on the server).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--ttl", type=float, default=0.2)
    parser.add_argument("--retry", type=float, default=0.5)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--pause", type=float, default=0.0005)
    args = parser.parse_args()

    from promstack import Client

    client = Client(url=args.url, cache_ttl=args.ttl)
    client.prompt_cache.retry = args.retry
    users = [f"user-{i}" for i in range(args.users)]
    started = time.perf_counter()
    client.get_prompt("support/answer", label="production")
    client.get_prompt("support/answer", label="staging", user_id=users[0])
    first = time.perf_counter() - started

    phase = ["start"]  # until stdin names one
    stop = threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            word, _, name = line.strip().partition(" ")
            if word == "phase":
                phase[0] = name
            elif word == "stop":
                break
        stop.set()

    threading.Thread(target=listen, daemon=True).start()
    print("ready", flush=True)
    durations: dict[str, list[float]] = defaultdict(list)
    served: dict[str, Counter] = defaultdict(Counter)
    failed: Counter = Counter()
    errors: list[str] = []
    versions: dict[str, set[int]] = defaultdict(set)
    clock = time.perf_counter
    i = 0
    while not stop.is_set():
        user = users[(i // 2) % len(users)]  # every user on both labels
        label = "staging" if i % 2 else "production"
        name = phase[0]
        t0 = clock()
        try:
            found = client.get_prompt("support/answer", label=label, user_id=user if label == "staging" else None)
        except Exception as exc:  # counted: the test asserts there are none
            failed[name] += 1
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}")
            continue
        finally:
            durations[name].append(clock() - t0)
            i += 1
        served[name][found.served_from] += 1
        if label == "staging":
            versions[user].add(found.version)
        if args.pause:
            time.sleep(args.pause)

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"p50": statistics.median(ordered), "p95": ordered[int(len(ordered) * 0.95) - 1] if len(ordered) > 20
                else ordered[-1], "max": ordered[-1]}

    print(json.dumps({
        "first_read_s": first,
        "phases": {name: {"calls": len(values), "failed": failed[name], "served": dict(served[name]), **summary(values)}
                   for name, values in durations.items() if values},
        "errors": errors,
        "versions": {u: sorted(v) for u, v in versions.items()},
    }), flush=True)
    client.close()


if __name__ == "__main__":
    main()
