"""Long operations (a test run, a judge pass, an arena, evaluate) in the background.

`Jobs.start` runs the engine call on a thread of its own, with a client borrowed for the caller,
and returns once the work has begun: a mistake found before the first case (an unknown suite, a
bad model) is raised to the request as usual; after that the caller polls `GET /runs/{id}`.
A test run's id is the store's run id (its progress is read from the store, so any worker of
the server answers for it); the others have a job id until they finish, and then name their run.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promstack.pool import ClientPool
from store.errors import PromStackError

MAX_KEPT = 500  # finished jobs remembered (oldest forgotten first)


@dataclass
class Job:
    id: str
    kind: str
    status: str = "running"  # running, done, failed
    done: int = 0
    total: int | None = None
    result: Any = None
    error: dict[str, str] | None = None
    started: float = field(default_factory=time.time)
    ready: threading.Event = field(default_factory=threading.Event)
    raised: BaseException | None = None


Work = Callable[[Any, Callable[..., None], Callable[[dict[str, Any]], None]], Any]


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, pool: ClientPool, actor: str | None, kind: str, work: Work, *,
              shape: Callable[[Any], Any]) -> Job:
        """Run `work(client, progress, started)` in the background; `started(run)` (a store run
        now exists) makes the job's id the run's id. Returns when the work began or failed."""
        job = Job(id=f"job_{secrets.token_hex(8)}", kind=kind)

        def progress(done: float, total: float | None = None, *rest: Any) -> None:
            job.done, job.total = int(done), None if total is None else int(total)
            job.ready.set()

        def started(run: dict[str, Any]) -> None:
            with self._lock:
                self._jobs.pop(job.id, None)
                job.id = run["id"]
                self._jobs[job.id] = job
            job.total = run.get("total")
            job.ready.set()

        def main() -> None:
            try:
                with pool.client(actor) as client:
                    job.result = shape(work(client, progress, started))
                job.status = "done"
            except PromStackError as exc:
                job.status, job.raised = "failed", exc
                job.error = {"type": type(exc).__name__, "message": str(exc)}
            except BaseException as exc:  # a bug: kept for the poller, and logged by the thread
                job.status, job.raised = "failed", exc
                job.error = {"type": type(exc).__name__, "message": "the server failed; see its log"}
                raise
            finally:
                job.ready.set()

        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MAX_KEPT:
                self._jobs.pop(next(iter(self._jobs)))
        threading.Thread(target=main, name=f"promstack-{kind}", daemon=True).start()
        job.ready.wait()
        if job.status == "failed" and job.raised is not None and job.done == 0 and isinstance(job.raised, PromStackError):
            with self._lock:
                self._jobs.pop(job.id, None)
            raise job.raised
        return job
