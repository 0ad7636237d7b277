"""What was already learnt about a prompt version on a suite: finished test runs are looked up
before anything is run again (bisect and the behaviour diff both ask), and the model calls a
piece of work really made (a cache hit is no call) are counted.

A run is reused only when it tested the same prompt version on the same suite content (its
sha256): an edited suite means new cases, so its old results say nothing about them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .gateway import Gateway, Reply
from .plans import build_plan
from .runner import arun_plan

if TYPE_CHECKING:
    from store.evals import EvalStore


def finished_runs(evals: EvalStore, suite: dict[str, Any], prompt_id: int, version: int) -> list[str]:
    """Ids of the finished test runs of this version on this suite's current content, newest first."""
    return [row[0] for row in evals.db.execute(
        "SELECT id FROM runs WHERE kind = 'test' AND status = 'done' AND prompt_id = ? AND prompt_version = ?"
        " AND suite_name = ? AND suite_sha = ? ORDER BY coalesce(finished_at, started_at) DESC",
        [prompt_id, version, suite["name"], suite["sha256"]],
    )]


def complete_run(evals: EvalStore, suite: dict[str, Any], prompt_id: int, version: int) -> dict[str, Any] | None:
    """The newest finished run of this version that covered every case and scored them all."""
    for run_id in finished_runs(evals, suite, prompt_id, version):
        run = evals.run(run_id)
        summary = run["summary"] or {}
        if summary.get("complete") and not summary.get("unscored"):
            return run
    return None


def case_result(evals: EvalStore, suite: dict[str, Any], prompt_id: int, version: int,
                case_key: str) -> dict[str, Any] | None:
    """The newest decided result (pass or fail, not an error) of one case on this version."""
    runs = finished_runs(evals, suite, prompt_id, version)
    if not runs:
        return None
    marks = ", ".join("?" * len(runs))
    row = evals.db.execute(
        f"SELECT run_id, status, score, reason, output FROM results WHERE run_id IN ({marks}) AND case_key = ?"
        " AND status IN ('pass', 'fail') ORDER BY finished_at DESC LIMIT 1",
        [*runs, case_key],
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("run_id", "status", "score", "reason", "output"), row, strict=True))


class CountingGateway:
    """A gateway that counts the calls that reached a model (cache hits are free) and their cost."""

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner
        self.calls = 0
        self.cost_usd = 0.0

    async def complete(self, **request: Any) -> Reply:
        reply = await self.inner.complete(**request)
        if not reply.cache_hit:
            self.calls += 1
            self.cost_usd += reply.cost_usd or 0.0
        return reply

    async def embed(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return await self.inner.embed(texts, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # backlog / flush / flush_journal: the runner asks the gateway it was given
        return getattr(self.inner, name)


async def version_run(client: Any, suite: dict[str, Any], prompt_id: int, version: int,
                      gateway: Gateway) -> dict[str, Any]:
    """A complete, scored run of this version on the suite: a finished one when there is one,
    else a new test run (stored, so the next caller reuses it) through `gateway` and its cache."""
    evals = client.evals
    found = complete_run(evals, suite, prompt_id, version)
    if found is not None:
        return found
    plan = build_plan(client, suite, prompt=prompt_id, version=version)
    run = evals.create_run(
        kind="test", suite=suite, prompt_id=plan.prompt_id, prompt_version=plan.prompt_version,
        models=plan.models, repeat=plan.repeat, config=plan.config(),
        judge_key=plan.judge.key() if plan.judge else "",
        total=suite["case_count"] * len(plan.models) * plan.repeat,
    )
    await arun_plan(evals, gateway, plan, run, db_path=client.store.path)
    return evals.run(run["id"])
