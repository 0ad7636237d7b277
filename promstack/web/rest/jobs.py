"""Long operations (a test run, a judge pass, an arena, evaluate) in the background.

`Jobs.start` runs the engine call on a thread of its own, with a client borrowed for the caller,
and returns once the work has begun: a mistake found before the first case (an unknown suite, a
bad model) is raised to the request as usual; after that the caller polls `GET /runs/{id}`.
Each job is a row of the store (store/jobs.py), so that any worker of `promstack serve --workers N`
answers a poll, and a restart keeps what finished; a job whose worker died reads as failed.
Once the job makes a store run (`started(run)`), a poll by the job's id or by the run's id finds it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from promstack.pool import ClientPool
from store import jobs as rows
from store.errors import Busy, PromStackError

WRITE_EVERY_S = 0.5  # progress reaches the store at most this often, or on each 1 % step


@dataclass
class Job:
    id: str
    kind: str
    status: str = "running"  # running, done, failed
    done: int = 0
    total: int | None = None
    run_id: str | None = None
    result: Any = None
    error: dict[str, str] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    raised: BaseException | None = None
    written: tuple[float, int] = (0.0, -1)  # when progress last reached the store, at which percent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def as_row(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "done": self.done, "total": self.total,
                "run_id": self.run_id, "result": self.result, "error": self.error}


Work = Callable[[Any, Callable[..., None], Callable[[dict[str, Any]], None]], Any]


class Jobs:
    def __init__(self, pool: ClientPool) -> None:
        self._pool = pool
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._keeper: threading.Thread | None = None

    def get(self, key: str) -> dict[str, Any] | None:
        """The job of id `key`, or the one that made run `key`, as the store has it."""
        with self._pool.client() as client:
            return rows.find(client.store.db, key)

    def start(self, actor: str | None, kind: str, work: Work, *, shape: Callable[[Any], Any]) -> dict[str, Any]:
        """Run `work(client, progress, started)` in the background; `started(run)` (a store run
        now exists) names the run the job made. Returns when the work began or failed."""
        job = Job(id=f"job_{secrets.token_hex(8)}", kind=kind)
        with self._pool.client() as client:
            rows.prune(client.store.db)
            rows.begin(client.store.db, job.id, kind, actor, rows.holder())

        def progress(done: float, total: float | None = None, *rest: Any) -> None:
            with job.lock:
                job.done = max(job.done, int(done))
                job.total = job.total if total is None else int(total)
                percent = job.done * 100 // job.total if job.total else -1
                due = time.monotonic() - job.written[0] >= WRITE_EVERY_S or percent != job.written[1]
                if due:
                    job.written = (time.monotonic(), percent)
            if due:
                self._write(rows.progress, job.id, job.done, job.total)
            job.ready.set()

        def started(run: dict[str, Any]) -> None:
            job.run_id, job.total = run["id"], run.get("total")
            self._write(rows.name_run, job.id, job.run_id, job.total)
            job.ready.set()

        def main() -> None:
            try:
                with self._pool.client(actor) as client:
                    found = shape(work(client, progress, started))
                job.result = found.model_dump(mode="json") if isinstance(found, BaseModel) else found
                job.status = "done"
            except PromStackError as exc:
                job.status, job.raised = "failed", exc
                job.error = {"type": type(exc).__name__, "message": str(exc)}
            except BaseException as exc:  # a bug: kept for the poller, and logged by the thread
                job.status, job.raised = "failed", exc
                job.error = {"type": type(exc).__name__, "message": "the server failed; see its log"}
                raise
            finally:
                try:
                    if not self._failed_early(job):
                        self._write(rows.progress, job.id, job.done, job.total)
                        self._write(rows.finish, job.id, job.status, result=job.result, error=job.error, retry=True)
                finally:
                    with self._lock:
                        self._running.discard(job.id)
                    job.ready.set()

        with self._lock:
            self._running.add(job.id)
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(target=self._keep_leases, name="promstack-jobs", daemon=True)
                self._keeper.start()
        threading.Thread(target=main, name=f"promstack-{kind}", daemon=True).start()
        job.ready.wait()
        if self._failed_early(job):
            self._write(rows.forget, job.id, retry=True)
            assert job.raised is not None
            raise job.raised
        return job.as_row()

    @staticmethod
    def _failed_early(job: Job) -> bool:
        """A mistake found before any work: the request answers it, and no job is kept."""
        return (job.status == "failed" and job.done == 0 and job.run_id is None
                and isinstance(job.raised, PromStackError))

    def _write(self, fn: Callable[..., None], *args: Any, retry: bool = False, **kwargs: Any) -> None:
        """A write of a job's row; progress skips a write the store was too busy for (the next
        one catches up), the final state tries until it lands."""
        for attempt in range(20 if retry else 1):
            try:
                with self._pool.client() as client:
                    fn(client.store.db, *args, **kwargs)
                return
            except Busy:
                if attempt == 19 or not retry:
                    return
                time.sleep(0.1 * (attempt + 1))

    def _keep_leases(self) -> None:
        """Renew this worker's running jobs every third of a lease, while it has any."""
        while True:
            time.sleep(rows.LEASE_S / 3)
            with self._lock:
                if not self._running:
                    self._keeper = None
                    return
            self._write(rows.renew, rows.holder())
