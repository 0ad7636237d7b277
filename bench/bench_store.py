"""The prompt store: save rate against a bare sqlite3 loop, history and fetch latency, word diff
of large prompts, database size.

Goals (issue 2): 10,000 saves of distinct versions of one prompt, each its own transaction with
its audit row, at least half the rate of a bare `sqlite3` loop doing one INSERT + COMMIT per save
with the same pragmas (measured side by side, interleaved, in one run); with 10,000 versions the
newest 50 of history under 10 ms and `get_prompt` by id+version under 1 ms; a word diff of two
100 KB versions that differ in 1% of lines under 100 ms. Every figure is the median of several
runs; a ratio >= 1.00 means the goal is met.

    python -m bench.bench_store [--saves 10000] [--full-saves 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

SAVE_RATIO_GOAL = 0.5
HISTORY_GOAL_S = 0.010
GET_GOAL_S = 0.001
DIFF_GOAL_S = 0.100

TEMPLATE = (
    "You are a support agent for {{{{ shop }}}}. Answer the customer's question politely and "
    "briefly, in the language they used.\nQuestion: {{{{ question }}}}\nRevision {i}.\n"
)


@contextlib.contextmanager
def _sync(mode: str) -> Iterator[None]:
    """PROMSTACK_SYNC for the stores opened inside (it is read when a store opens), then as it was."""
    previous = os.environ.get("PROMSTACK_SYNC")
    os.environ["PROMSTACK_SYNC"] = mode
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PROMSTACK_SYNC", None)
        else:
            os.environ["PROMSTACK_SYNC"] = previous


def _open_store(path: Path, sync: str):
    from store import Store

    with _sync(sync):
        return Store(path, actor="bench")


def ours(folder: Path, saves: int, sync: str) -> float:
    """Saves per second through PromptStore.save: validation, variables, hash, version row,
    branch move and audit row, one BEGIN IMMEDIATE transaction per save."""
    store = _open_store(folder / f"ours-{sync}-{time.monotonic_ns()}.db", sync)
    try:
        prompts = store.prompts
        prompts.create_prompt("support/refund", TEMPLATE.format(i=0))
        start = time.perf_counter()
        for i in range(1, saves + 1):
            prompts.save("support/refund", TEMPLATE.format(i=i))
        return saves / (time.perf_counter() - start)
    finally:
        store.close()


def ours_sdk(folder: Path, saves: int, sync: str) -> float:
    """The same through the SDK's Client.save (which also checks for a prompt file to write)."""
    from promstack import Client

    with _sync(sync):
        client = Client(folder / f"sdk-{sync}-{time.monotonic_ns()}.db", actor="bench")
    with client:
        client.create_prompt("support/refund", TEMPLATE.format(i=0))
        start = time.perf_counter()
        for i in range(1, saves + 1):
            client.save("support/refund", TEMPLATE.format(i=i))
        return saves / (time.perf_counter() - start)


def bare(folder: Path, saves: int, sync: str) -> float:
    """One INSERT + COMMIT per save with the store's pragmas: the floor any store pays."""
    conn = sqlite3.connect(folder / f"bare-{sync}-{time.monotonic_ns()}.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("CREATE TABLE versions (id INTEGER PRIMARY KEY, prompt_id INTEGER, number INTEGER, "
                     "template TEXT, created_at TEXT)")
        start = time.perf_counter()
        for i in range(1, saves + 1):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO versions (prompt_id, number, template, created_at) VALUES (1, ?, ?, ?)",
                         [i, TEMPLATE.format(i=i), "2026-01-01T00:00:00.000000Z"])
            conn.execute("COMMIT")
        return saves / (time.perf_counter() - start)
    finally:
        conn.close()


def wal_pages_per_save(folder: Path, saves: int = 100) -> dict[str, float]:
    """Pages each commit appends to the WAL: what a save costs the disk, whatever its speed.
    Few enough saves that the automatic checkpoint (at 1,000 pages) does not restart the WAL."""
    store = _open_store(folder / "pages-ours.db", "NORMAL")
    conn = sqlite3.connect(folder / "pages-bare.db", isolation_level=None)
    try:
        store.prompts.create_prompt("p", TEMPLATE.format(i=0))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE versions (id INTEGER PRIMARY KEY, prompt_id INTEGER, number INTEGER, "
                     "template TEXT, created_at TEXT)")
        for db in (store.db.conn, conn):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for i in range(1, saves + 1):
            store.prompts.save("p", TEMPLATE.format(i=i))
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO versions (prompt_id, number, template, created_at) VALUES (1, ?, ?, ?)",
                         [i, TEMPLATE.format(i=i), "2026-01-01T00:00:00.000000Z"])
            conn.execute("COMMIT")
        frames = [db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] for db in (store.db.conn, conn)]
        return {"ours": frames[0] / saves, "bare": frames[1] / saves}
    finally:
        store.close()
        conn.close()


def side_by_side(folder: Path, saves: int, sync: str, runs: int) -> dict[str, float]:
    """Interleaved runs, so that both loops see the same machine load."""
    rates: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(runs):
        rates["ours"].append(ours(folder, saves, sync))
        rates["bare"].append(bare(folder, saves, sync))
    result = {name: statistics.median(values) for name, values in rates.items()}
    result["ratio"] = statistics.median(o / b for o, b in zip(rates["ours"], rates["bare"], strict=True))
    return result


def _median_time(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reads(folder: Path, versions: int) -> dict[str, float]:
    from promstack import Client

    path = folder / "reads.db"
    with Client(path, actor="bench") as client:
        client.create_prompt("support/refund", TEMPLATE.format(i=0), id=42)
        from store.db import write

        # Build the history in one transaction (each save a savepoint in it): the same rows as
        # 10,000 separate saves, in a fraction of the time.
        with write(client.store.db):
            for i in range(1, versions):
                client.store.prompts.save(42, TEMPLATE.format(i=i))
        assert client.get_prompt(42).version == versions
        rng = random.Random(7)
        picks = [rng.randint(1, versions) for _ in range(2000)]
        it = iter(picks * 2)
        return {
            "history": _median_time(lambda: client.history(42, limit=50), 200),
            "history_branch": _median_time(lambda: client.history(42, branch="main", limit=50), 200),
            "get": _median_time(lambda: client.get_prompt(id=42, version=next(it)), 2000),
            "get_head": _median_time(lambda: client.get_prompt(id=42), 2000),
        }


def diff_texts(size: int = 100_000, changed: float = 0.01) -> tuple[str, str, int]:
    rng = random.Random(11)
    words = ["refund", "order", "customer", "policy", "days", "receipt", "please", "thank", "you", "support", "the", "a", "of", "to", "within", "store", "credit", "card", "shipping", "label", "return"]
    lines = []
    while sum(len(x) for x in lines) < size:
        lines.append(" ".join(rng.choice(words) for _ in range(12)) + "\n")
    new = list(lines)
    picks = rng.sample(range(len(lines)), max(1, round(len(lines) * changed)))
    for i in picks:
        tokens = new[i].split()
        tokens[rng.randrange(len(tokens))] = "CHANGED"
        new[i] = " ".join(tokens) + "\n"
    return "".join(lines), "".join(new), len(picks)


def diffs(folder: Path, runs: int) -> dict[str, float]:
    from promstack import Client
    from store.diff import word_diff

    old, new, changed = diff_texts()
    rng = random.Random(5)
    rewritten = "".join(" ".join(rng.choice(["alpha", "beta", "gamma", "delta", "eps"]) for _ in range(12)) + "\n"
                        for _ in old.splitlines())
    with Client(folder / "diff.db", actor="bench") as client:
        client.create_prompt("big", old)
        client.save("big", new)
        return {
            "bytes": len(old.encode()),
            "changed": changed,
            "word_diff": _median_time(lambda: word_diff(old, new), runs),
            "store_diff": _median_time(lambda: client.diff("big", 1, 2), runs),
            "rewrite": _median_time(lambda: word_diff(old, rewritten), runs),
        }


def size_per_thousand(folder: Path) -> dict[str, float]:
    from promstack import Client

    rng = random.Random(3)
    base = "".join(f"Rule {n}: " + " ".join(rng.choice("abcdefghij") * rng.randint(2, 8) for _ in range(8)) + "\n"
                   for n in range(40))
    base = (base * 3)[:2048]
    path = folder / "size.db"
    with Client(path, actor="bench") as client:
        client.create_prompt("p", base)
        empty = _db_bytes(client.store.db, path)
        for i in range(1, 1001):
            client.save("p", base[:-12] + f"rev {i:07d}\n")
        total = _db_bytes(client.store.db, path)
    return {"per_1000": total - empty, "raw": 1000 * len(base.encode())}


def _db_bytes(db, path: Path) -> int:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size + (Path(str(path) + "-wal").stat().st_size if Path(str(path) + "-wal").exists() else 0)


def _row(label: str, shown: str, goal: str, ratio: float | None) -> str:
    verdict = "" if ratio is None else f"{ratio:6.2f}x {'ok' if ratio >= 1 else 'MISSED'}"
    return f"  {label:<46} {shown:>16}   {goal:<18} {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_store", description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=10_000)
    parser.add_argument("--full-saves", type=int, default=1_000,
                        help="saves per run with synchronous=FULL (each commit waits for the disk)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"prompt store on {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.machine()}, "
          f"load average {load:.1f} at start")
    print("  (ratio: goal / measured for times, measured / goal for rates; >= 1.00 meets the goal)")
    missed = False
    with tempfile.TemporaryDirectory(prefix="promstack-bench-store-") as tmp:
        folder = Path(tmp)
        for sync, saves in (("NORMAL", args.saves), ("FULL", args.full_saves)):
            figures = side_by_side(folder, saves, sync, args.runs)
            print(f"saves, WAL + synchronous={sync}, {saves:,} distinct versions of one prompt, "
                  f"median of {args.runs} interleaved runs")
            print(_row("bare sqlite3 INSERT + COMMIT", f"{figures['bare']:,.0f} /s", "", None))
            print(_row("PromptStore.save (version + audit row)", f"{figures['ours']:,.0f} /s", "", None))
            ratio_goal = figures["ratio"] / SAVE_RATIO_GOAL
            print(_row("ours / bare", f"{figures['ratio']:.2f}x", ">= 0.50x bare", ratio_goal))
            missed |= ratio_goal < 1
            if sync == "NORMAL":
                sdk = statistics.median(ours_sdk(folder, min(saves, 2000), sync) for _ in range(args.runs))
                print(_row("Client.save (SDK: + prompt-file check)", f"{sdk:,.0f} /s", "", None))
        pages = wal_pages_per_save(folder)
        print(_row("WAL pages written per save: bare / ours", f"{pages['bare']:.1f} / {pages['ours']:.1f}",
                   "(version, branch,", None))
        print(_row("", "", "audit row, indexes)", None))
        r = reads(folder, args.saves)
        print(f"reads with {args.saves:,} versions of one prompt (median)")
        for label, key, goal_s, goal in (
            ("history, newest 50", "history", HISTORY_GOAL_S, "< 10 ms"),
            ("history of branch main, newest 50", "history_branch", HISTORY_GOAL_S, "< 10 ms"),
            ("get_prompt(id=42, version=n), random n", "get", GET_GOAL_S, "< 1 ms"),
            ("get_prompt(id=42), head of main", "get_head", GET_GOAL_S, "< 1 ms"),
        ):
            ratio = goal_s / r[key]
            missed |= ratio < 1
            print(_row(label, f"{r[key] * 1000:.3f} ms", goal, ratio))
        d = diffs(folder, max(args.runs, 5))
        print(f"word diff of two {d['bytes'] / 1000:.0f} KB versions, {d['changed']} lines (1%) changed (median)")
        for label, key in (("store.diff.word_diff", "word_diff"), ("Client.diff (unified + words + config)", "store_diff")):
            ratio = DIFF_GOAL_S / d[key]
            missed |= ratio < 1
            print(_row(label, f"{d[key] * 1000:.1f} ms", "< 100 ms", ratio))
        print(_row("word_diff, every line rewritten (no goal)", f"{d['rewrite'] * 1000:.1f} ms", "", None))
        s = size_per_thousand(folder)
        print("database size (after a WAL checkpoint)")
        print(_row("per 1,000 versions of a 2 KB prompt", f"{s['per_1000'] / 1e6:.2f} MB", "no goal", None))
        print(_row("  of which the templates themselves", f"{s['raw'] / 1e6:.2f} MB",
                   f"{s['per_1000'] / s['raw']:.2f}x overhead", None))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
