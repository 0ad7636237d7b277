"""A test run shared by worker processes (`promstack test --workers N`).

One process's event loop is CPU-bound at a few hundred calls in flight (HTTP, guards, the call
log: bench/RESULTS.md), so the run's units are split across N child processes, each with its own
gateway and event loop, writing results and the call log into the same store (SQLite WAL;
`store.tx.write` retries when busy). A unit belongs to shard `ordinal % N` (case index x model x
repeat: fixed, so a resume splits what is left the same way and no unit is run twice). Each
child gets `concurrency // N` calls in flight (and N-th of `[gateway] rpm`/`tpm`), so together
they never exceed `--concurrency` or the configured rates.

The parent made the run and finishes it as the single-process path does (status, summary,
cost totals): it only follows progress by counting results. Ctrl-C (or any interruption) tells
every child to stop; each keeps what it finished, so `--resume` runs exactly the rest. A child
that dies leaves the run interrupted, its results kept, and the command fails saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import signal
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, PromStackError

from .runner import Plan, Progress, Runner, summarize

if TYPE_CHECKING:
    from ..client import Client

POLL = 0.1  # seconds between two looks at the result count (the progress bar) and the children
STOP_GRACE = 30.0  # seconds a stopped child has to commit what it finished before it is killed


class WorkerFailed(PromStackError):
    """A worker process of a run ended on an error."""


def check_workers(client: Client, workers: Any, plan: Plan) -> int:
    """How many processes to run: `workers` (None: `[tests] workers` in the workspace's config,
    else 1), at most one per call in flight."""
    db_path = client.store.path
    said = "workers"
    if workers is None:
        from promstack import config

        found = config.of_client(client)
        workers = found.section("tests").get("workers", 1)
        said = f"[tests] workers in {found.path}"
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"{said} must be a whole number from 1; got {workers!r}")
    if workers > 1 and db_path is None:
        raise InvalidInput("--workers needs a store file (worker processes share it); run with one worker")
    limits = [n for n in plan.model_limits.values() if n > 0]
    return max(1, min(workers, plan.concurrency, *limits))


async def arun_sharded(client: Client, plan: Plan, run: dict[str, Any], workers: int, *,
                       progress: Progress | None = None) -> None:
    """Run `plan` in `workers` child processes and finish the run here, as `arun_plan` does."""
    evals = client.evals
    run_id = run["id"]
    total = plan.suite["case_count"] * len(plan.models) * plan.repeat
    evals.reopen_run(run_id)
    status = "interrupted"
    children: list[tuple[subprocess.Popen, Any]] = []
    try:
        for index in range(workers):
            children.append(_start(client, plan, run_id, index, workers))
        # results not passed, told to `progress` one by one as the runner does (from this run on)
        reported = [evals.result_progress(run_id)[1]]
        while True:
            _report(evals, run_id, total, progress, reported)
            codes = [child.poll() for child, _ in children]
            failed = [(i, code) for i, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                index, code = failed[0]
                raise WorkerFailed(f"worker {index + 1} of {workers} of run {run_id} failed "
                                   f"({_last_words(children[index][1]) or f'exit code {code}'}); "
                                   f"finished results are kept: resume with promstack test --resume {run_id}")
            if all(code == 0 for code in codes):
                break
            await asyncio.sleep(POLL)
        _report(evals, run_id, total, progress, reported)
        status = "done"
    finally:
        await asyncio.shield(asyncio.to_thread(_stop, children))
        evals.set_run_status(run_id, status, summarize(evals, run_id) if status == "done" else None)


def _report(evals: Any, run_id: str, total: int, progress: Progress | None, reported: list[int]) -> None:
    if not progress:
        return
    done, not_passed = evals.result_progress(run_id)
    for _ in range(not_passed - reported[0]):
        progress(done, total, "fail")
    if not_passed == reported[0]:
        progress(done, total, "")
    reported[0] = not_passed


def _start(client: Client, plan: Plan, run_id: str, index: int, workers: int) -> tuple[subprocess.Popen, Any]:
    # Limits are split so that the children together never exceed them.
    task = {
        "client": f"{type(client).__module__}:{type(client).__qualname__}", "db": str(client.store.path),
        "actor": client.actor, "run": run_id, "shard": [index, workers],
        "concurrency": max(1, plan.concurrency // workers), "retries": plan.retries,
        "model_limits": {m: max(1, n // workers) for m, n in plan.model_limits.items()},
    }
    errors = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - closed by _stop when the child is gone
    # A session of its own: a Ctrl-C reaches the parent only, which tells each child once.
    child = subprocess.Popen(
        [sys.executable, "-c", "from promstack.evals.shards import child_main; child_main()", json.dumps(task)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True,
    )
    return child, errors


def _stop(children: list[tuple[subprocess.Popen, Any]]) -> None:
    """Tell every child still running to stop (as Ctrl-C would) and wait while it commits."""
    for child, _ in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGINT)
    for child, errors in children:
        try:
            child.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        errors.close()


def _last_words(errors: Any) -> str:
    errors.seek(0)
    lines = [line.strip() for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def child_main() -> None:
    """A worker process: one shard of a run, through a gateway and event loop of its own."""
    # told to stop by SIGINT, even when started with it ignored (`nohup`): asyncio.run then
    # turns it into a cancellation, and what finished is committed
    signal.signal(signal.SIGINT, signal.default_int_handler)
    task = json.loads(sys.argv[-1])
    module, name = task["client"].split(":")
    client = getattr(importlib.import_module(module), name)(task["db"], actor=task["actor"])
    try:
        asyncio.run(_run_shard(client, task))
    except KeyboardInterrupt:
        sys.exit(130)  # told to stop: what finished is committed
    finally:
        client.close()


async def _run_shard(client: Client, task: dict[str, Any]) -> None:
    from .gateway import LiveGateway
    from .plans import plan_from_run

    evals = client.evals
    run = evals.run(task["run"])
    plan = plan_from_run(client, run, concurrency=task["concurrency"], retries=task["retries"])
    plan.model_limits = task["model_limits"]
    gateway = LiveGateway(client)
    gateway.share_rates(task["shard"][1])
    try:
        runner = Runner(evals, gateway, plan, run, db_path=client.store.path, shard=tuple(task["shard"]))
        await runner.execute()
        gateway.flush()  # the parent's summary counts the run's unpriced calls from the call log
    finally:
        await gateway.aclose()  # its call log drained: every call of this shard is logged
