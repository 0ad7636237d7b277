"""The batch runner: every case x model x repeat through the gateway, in a bounded async pool.

Memory stays flat on a large suite: cases are read from the store a page at a time and fed to
the workers through a bounded queue; finished results go to a writer thread (its own connection)
that commits whatever has accumulated in one transaction, so a result is stored moments after it
finishes and a commit never holds up the event loop. A unit of work
is done exactly when its result row exists: a call in flight when the run is interrupted (Ctrl-C,
a cancelled task, kill -9) wrote nothing and is redone by `--resume`, and nothing finished is
ever redone. Model errors and cases the judge could not score become error results (retried
first) and the run goes on: such a case is *unscored*, never 0, and a run with any unscored case
has no score (`promstack.evals.score`). A case that has nothing to check is warned about and
never passes. Each judged result keeps the judge's score and reason per criterion.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from store.clock import now
from store.errors import InvalidInput
from store.evals import EvalStore

from ..gateway.pricing import unpriced_note
from . import assertions as A
from .gateway import EmbeddingUnavailable, Gateway, GatewayError
from .judge import Judge, JudgeConfig
from .pool import run_pool
from .score import case_score

Progress = Callable[[int, int, str], None]
WRITE_BACKLOG = 2000  # finished results waiting to be committed before the workers slow down


@dataclass
class Plan:
    """Everything a run needs, fixed when it starts and stored with it (so a resume is exact)."""

    suite: dict[str, Any]
    prompt_id: int
    prompt_version: int
    models: list[str]
    repeat: int = 1
    retries: int = 0
    concurrency: int = 10
    model_limits: dict[str, int] = field(default_factory=dict)
    judge: JudgeConfig | None = None
    judge_model: str | None = None
    default_assertions: list[dict[str, Any]] = field(default_factory=list)
    embedding_model: str | None = None
    # Judging the outputs of an earlier run (judge_run): no model is called, only the judge.
    source_run: str | None = None

    def config(self) -> dict[str, Any]:
        return {
            "source_run": self.source_run,
            "retries": self.retries, "concurrency": self.concurrency, "model_limits": self.model_limits,
            "judge": self.judge.to_dict() if self.judge else None, "judge_model": self.judge_model,
            "assertions": self.default_assertions, "embedding_model": self.embedding_model,
        }


class Runner:
    """One run's pool: workers, per-model limits, the judge, and the writer of results."""

    def __init__(self, evals: EvalStore, gateway: Gateway, plan: Plan, run: dict[str, Any], *,
                 progress: Progress | None = None, db_path: Any = None,
                 shard: tuple[int, int] | None = None) -> None:
        self.evals = evals
        # (i, n): this process runs only the units whose ordinal is i modulo n (promstack.evals.shards)
        self.shard = shard
        self.db_path = db_path
        self._sink: _ThreadWriter | None = None
        self._finished: asyncio.Queue = asyncio.Queue()
        self.gateway = gateway
        self.plan = plan
        self.run = run
        self.run_id = run["id"]
        self.progress = progress
        judge_config = plan.judge or JudgeConfig()
        self.judge = Judge(gateway, judge_config, run_id=self.run_id,
                           default_model=plan.judge_model or (plan.models[0] if plan.models else None))
        self.judge_key = run["judge_key"]
        self.done = 0
        self.total = 0
        self.unchecked = 0
        self._limits = {m: asyncio.Semaphore(n) for m, n in plan.model_limits.items() if n > 0}

    # ---- the pool ----------------------------------------------------------------------

    async def execute(self) -> None:
        plan = self.plan
        finished: asyncio.Queue = asyncio.Queue()
        self.total = plan.suite["case_count"] * len(plan.models) * plan.repeat
        already = self.evals.result_count(self.run_id)
        self.done = already
        if self.progress:
            self.progress(self.done, self.total, "")
        # With a store file, results are committed on a thread with its own connection, so a
        # commit never holds up the event loop (and the calls waiting on it); an in-memory
        # store is written from the loop.
        self._sink = (_ThreadWriter(self.db_path, before_commit=getattr(self.gateway, "flush_journal", None))
                      if self.db_path else None)
        self._finished = finished
        writer = asyncio.create_task(self._writer(finished)) if self._sink is None else None
        try:
            await run_pool(self._units(), self._work, concurrency=plan.concurrency,
                           backlog=max(2 * plan.concurrency, 16))
        finally:
            # Whatever finished before an interruption is kept; in-flight work wrote nothing.
            if self._sink is not None:
                self._sink.close()
            else:
                await finished.put(None)
                await asyncio.shield(writer)

    async def _units(self) -> AsyncIterator[tuple[dict[str, Any], str, int]]:
        """The units of work not yet done, the cases read a page at a time."""
        page: list[dict[str, Any]] = []
        for case in self.evals.iter_cases(self.plan.suite["id"]):
            page.append(case)
            if len(page) >= 200:
                for unit in self._undone(page):
                    yield unit
                page = []
        for unit in self._undone(page):
            yield unit

    def _undone(self, cases: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, int]]:
        done = self.evals.done_keys(self.run_id, [c["case_key"] for c in cases])
        models, repeats = self.plan.models, self.plan.repeat
        mine = self.shard
        return [(case, model, repeat) for case in cases for m, model in enumerate(models)
                for repeat in range(repeats) if (case["case_key"], model, repeat) not in done
                and (mine is None or ((case["idx"] * len(models) + m) * repeats + repeat) % mine[1] == mine[0])]

    async def _work(self, unit: tuple[dict[str, Any], str, int]) -> None:
        case, model, repeat = unit
        limit = self._limits.get(model)
        if limit is not None:
            async with limit:
                row = await self.run_unit(case, model, repeat)
        else:
            row = await self.run_unit(case, model, repeat)
        if self._sink is None:
            self._finished.put_nowait(row)
            return
        # Backpressure: when results (or their calls' log rows) finish faster than they can be
        # committed, the workers wait rather than the queues growing without bound.
        await self._sink.room()
        log_backlog = getattr(self.gateway, "backlog", None)
        while log_backlog is not None and log_backlog() > WRITE_BACKLOG:
            await asyncio.sleep(0.01)
        self._sink.submit(row)
        self.done += 1
        if self.progress:
            self.progress(self.done, self.total, row["status"])

    async def _writer(self, finished: asyncio.Queue) -> None:
        closing = False
        while not closing:
            row = await finished.get()
            batch = []
            if row is None:
                closing = True
            else:
                batch.append(row)
            while not finished.empty():
                more = finished.get_nowait()
                if more is None:
                    closing = True
                else:
                    batch.append(more)
            if batch:
                self.evals.add_results(batch)
                self.done += len(batch)
                if self.progress:
                    for r in batch:
                        self.progress(self.done, self.total, r["status"])
            # Let workers run between commits: batches grow with the load, not the latency.
            await asyncio.sleep(0)

    # ---- one unit of work --------------------------------------------------------------

    async def run_unit(self, case: dict[str, Any], model: str, repeat: int) -> dict[str, Any]:
        plan = self.plan
        variables = {**(case.get("variables") or {})}
        if case.get("input") is not None:
            variables.setdefault("input", case["input"])
        row: dict[str, Any] = {
            "run_id": self.run_id, "case_key": case["case_key"], "case_idx": case["idx"], "model": model,
            "prompt_version": plan.prompt_version, "repeat": repeat, "judge_key": self.judge_key,
            "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "cache_hit": False,
        }
        if plan.source_run is not None:
            return await self._rejudge(case, model, repeat, row)
        reply = None
        error = None
        attempts = 0
        for _ in range(plan.retries + 1):
            attempts += 1
            try:
                reply = await self.gateway.complete(
                    prompt=plan.prompt_id, version=plan.prompt_version, variables=variables, model=model,
                    run_id=self.run_id, cache_extra=f"repeat={repeat}" if repeat else "",
                )
                break
            except GatewayError as exc:
                error = str(exc)
        row["attempts"] = attempts
        if reply is None:
            row.update(status="error", score=None, output=None, error=f"the model call failed: {error}",
                       checks=[], criteria=[], reason=f"unscored: the model call failed: {error}",
                       latency_ms=None, finished_at=now())
            return row
        row.update(output=reply.output, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens,
                   cost_usd=reply.cost_usd, latency_ms=reply.latency_ms, cache_hit=reply.cache_hit)
        specs = A.case_assertions(case, plan.default_assertions)
        return await self._finish(case, model, repeat, row, reply.output, specs)

    async def _rejudge(self, case: dict[str, Any], model: str, repeat: int, row: dict[str, Any]) -> dict[str, Any]:
        found = self.evals.result_output(self.plan.source_run, case["case_key"], model, repeat)
        row["attempts"] = 1
        if found is None or found["output"] is None:
            why = "no output" if found is None else f"the case ended as {found['status']}"
            row.update(status="error", score=None, output=None, checks=[], criteria=[], latency_ms=None,
                       error=f"nothing to judge: {why} in run {self.plan.source_run}",
                       reason=f"unscored: nothing to judge: {why}", finished_at=now())
            return row
        row.update(latency_ms=found["latency_ms"])
        return await self._finish(case, model, repeat, row, found["output"], [])

    async def _finish(self, case: dict[str, Any], model: str, repeat: int, row: dict[str, Any],
                      output: str, specs: list[dict[str, Any]]) -> dict[str, Any]:
        row["output"] = output
        checks, judge_error, usage, criteria = await self.check(
            case, output, specs, cache_extra=f"{case['case_key']}|{model}|{repeat}")
        row["input_tokens"] += usage[0]
        row["output_tokens"] += usage[1]
        row["cost_usd"] += usage[2]
        row["checks"] = [c.to_dict() for c in checks]
        row["criteria"] = criteria
        row["finished_at"] = now()
        if judge_error is not None:
            row.update(status="error", score=None, error=judge_error[0], reason=judge_error[1])
            return row
        if not checks:
            self.unchecked += 1
            row.update(status="unchecked", score=None, error=None,
                       reason="nothing to check: the case has no expected_output, assertion or judge criteria")
            return row
        failed = [c for c in checks if not c.passed]
        row.update(status="fail" if failed else "pass", score=case_score([c.score for c in checks]), error=None,
                   reason="; ".join(f"{c.type}: {c.reason}" for c in failed) if failed else "all checks passed")
        return row

    async def check(self, case: dict[str, Any], output: str, specs: list[dict[str, Any]], *,
                    cache_extra: str = "") -> tuple[list[A.Check], tuple[str, str] | None, list[float],
                                                   list[dict[str, Any]]]:
        """Every assertion on one output. Judged ones share a single judge call. Returns the
        checks, (error, reason) when the judge could not score, the usage, and the judge's score
        and reason per criterion (criteria first, then each judged assertion)."""
        checks: list[A.Check] = []
        judged: list[tuple[str, dict[str, Any] | None, str]] = []  # (kind, spec, criterion text)
        usage = [0, 0, 0.0]
        for spec in specs:
            kind = spec["type"]
            base = kind[4:] if kind.startswith("not-") else kind
            if base in A.DETERMINISTIC:
                checks.append(A.check_deterministic(spec, output))
            elif kind == "similar":
                checks.append(await self._similar(spec, output))
            elif kind == "expected":
                judged.append(("expected", spec, f"The answer satisfies this expectation: {spec['value']}"))
            elif kind == "llm-rubric":
                judged.append(("llm-rubric", spec, str(spec["value"])))
        criteria = list(self.judge.config.criteria)
        if not judged and not criteria:
            return checks, None, usage, []
        texts = criteria + [t for _, _, t in judged]
        reference = case.get("expected") if any(k == "expected" for k, _, _ in judged) else None
        verdict = await self.judge.score(input=case.get("input"), output=output, criteria=texts,
                                         reference=reference, cache_extra=cache_extra)
        usage = [verdict.input_tokens, verdict.output_tokens, verdict.cost_usd]
        if verdict.error is not None:
            return checks, (verdict.error, verdict.reason), usage, []
        threshold = self.judge.config.threshold
        per = verdict.criteria
        if criteria:
            part = per[: len(criteria)]
            score = sum(p["percent"] for p in part) / len(part)
            ok = score >= threshold
            worst = min(part, key=lambda p: p["percent"])
            checks.append(A.Check(
                "judge", ok, score / 100,
                f"criteria score {score:.0f}/100 {'>=' if ok else '<'} {threshold:g}"
                + ("" if ok else f"; lowest: {worst['criterion']} ({worst['reason']})"),
                detail={"criteria": part, "geval": verdict.geval},
            ))
        for (kind, spec, _), p in zip(judged, per[len(criteria):], strict=True):
            limit = float(spec.get("threshold", threshold)) if spec else threshold
            ok = p["percent"] >= limit
            checks.append(A.Check(
                kind, ok, p["percent"] / 100,
                f"judge gave {p['score']:g} ({p['percent']:.0f}/100 {'>=' if ok else '<'} {limit:g}): {p['reason']}",
                detail={"geval": p["weighted"] is not None, "weighted": p["weighted"]},
            ))
        per_criterion = [{"criterion": p["criterion"], "score": p["score"], "percent": p["percent"],
                          "reason": p["reason"]} for p in per]
        return checks, None, usage, per_criterion

    async def _similar(self, spec: dict[str, Any], output: str) -> A.Check:
        model = spec.get("model") or self.plan.embedding_model
        if model:
            try:
                vectors = await self.gateway.embed([str(spec["value"]), output], model=model, run_id=self.run_id)
                return A.similarity_check(spec, A.cosine(vectors[0], vectors[1]), f"embedding {model}")
            except EmbeddingUnavailable as exc:
                check = A.similarity_check(spec, A.local_similarity(str(spec["value"]), output), "local char n-gram TF-IDF")
                check.detail = {**(check.detail or {}), "fallback": f"embedding unavailable: {exc}"}
                return check
        return A.similarity_check(spec, A.local_similarity(str(spec["value"]), output), "local char n-gram TF-IDF")


class _ThreadWriter:
    """Commits finished results in batches on its own thread and connection. `close()` waits
    until every submitted result is committed (and re-raises a failure to write)."""

    def __init__(self, path: Any, *, before_commit: Callable[[], None] | None = None) -> None:
        # before_commit: the gateway's call-log journal written out first, so a stored result's
        # call is always in the call log or its journal (kill -9 between the two loses neither)
        self.before_commit = before_commit
        self.path = path
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self._commit: asyncio.Future | None = None  # resolved at the next commit
        self._event_loop = asyncio.get_running_loop()
        self.thread = threading.Thread(target=self._loop, name="promstack-results", daemon=True)
        self.thread.start()

    def backlog(self) -> int:
        return self.queue.qsize()

    async def room(self) -> None:
        """Wait while more than WRITE_BACKLOG results wait to be committed (each commit wakes
        the waiters); a failure to write is raised here."""
        while self.queue.qsize() > WRITE_BACKLOG:
            if self.error is not None:
                raise self.error
            if self._commit is None or self._commit.done():
                self._commit = self._event_loop.create_future()
            await self._commit

    def _signal(self) -> None:
        # on the writer's thread: wake the workers waiting in room()
        def wake() -> None:
            if self._commit is not None and not self._commit.done():
                self._commit.set_result(None)

        with contextlib.suppress(RuntimeError):  # the run's loop is gone: nobody waits
            self._event_loop.call_soon_threadsafe(wake)

    def submit(self, row: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(row)

    def _loop(self) -> None:
        from store.db import connect
        from store.evals import EvalStore

        db = None
        try:
            db = connect(self.path)
            evals = EvalStore(db, actor="promstack")
            closing = False
            while not closing:
                first = self.queue.get()
                batch = [] if first is None else [first]
                closing = first is None
                while True:
                    try:
                        more = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        closing = True
                    else:
                        batch.append(more)
                if batch:
                    if self.before_commit is not None:
                        self.before_commit()
                    evals.add_results(batch)
                    if self._commit is not None:
                        self._signal()
        except BaseException as exc:  # reported to the run by submit() / close()
            self.error = exc
            self._signal()
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def count_unchecked(evals: EvalStore, suite: dict[str, Any], plan: Plan) -> int:
    """Cases that would have nothing to check (no expected output, assertion or judge criteria)."""
    if plan.default_assertions or (plan.judge and plan.judge.criteria):
        return 0
    return evals.unchecked_case_count(suite["id"])


async def arun_plan(evals: EvalStore, gateway: Gateway, plan: Plan, run: dict[str, Any], *,
                    progress: Progress | None = None, db_path: Any = None) -> Runner:
    runner = Runner(evals, gateway, plan, run, progress=progress, db_path=db_path)
    evals.reopen_run(run["id"])
    status = "interrupted"
    try:
        await runner.execute()
        status = "done"
        flush = getattr(gateway, "flush", None)
        if flush is not None:
            flush()  # the summary counts the run's unpriced calls from the call log
    finally:
        evals.set_run_status(run["id"], status, summarize(evals, run["id"]) if status == "done" else None)
    return runner


def summarize(evals: EvalStore, run_id: str, *, failing: int = 20) -> dict[str, Any]:
    """A run's summary. `score` is the mean case score (an unchecked case counts 0: it can never
    pass), or None when any case is unscored, with `unscored` (how many) and `unscored_reason`
    (the commonest reason); `criteria` is the judge's mean per criterion."""
    run = evals.run(run_id)
    stats = evals.summary_stats(run_id)
    n = stats["results"]
    stats["total"] = run["total"]
    stats["pass_rate"] = round(stats["passed"] / n, 4) if n else 0.0
    stats["complete"] = n >= run["total"]
    stats["unscored"] = stats["errors"]
    if stats["unscored"]:
        stats["score"] = None
        stats["unscored_reason"] = unscored_reason(evals, run_id)
    for per_model in stats["models"].values():
        if per_model.pop("unscored", 0):
            per_model["score"] = None
    stats["criteria"] = evals.criteria_stats(run_id)
    stats["unpriced"], stats["unpriced_models"] = evals.unpriced_calls(run_id)
    stats["unpriced_note"] = unpriced_note(stats["unpriced"], stats["unpriced_models"])
    stats["failing"] = failing_cases(evals, run_id, failing)
    return stats


def unscored_reason(evals: EvalStore, run_id: str) -> str:
    """The commonest reason a case of this run went unscored (and how many others there are)."""
    reasons = evals.error_reasons(run_id)
    if not reasons:
        return ""
    (first, count), rest = reasons[0], reasons[1:]
    text = first if not rest else f"{count} of them: {first}"
    if rest:
        text += f"; and {len(rest)} other reason(s)"
    return text


def failing_cases(evals: EvalStore, run_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The first `limit` results that did not pass, with why."""
    return [
        {"case": r["case_idx"], "model": r["model"], "repeat": r["repeat"], "status": r["status"],
         "input": _clip(r.get("input")), "expected": _clip(r.get("expected")),
         "output": _clip(r.get("output")), "why": r.get("reason") or r.get("error"),
         "criteria": r.get("criteria") or []}
        for r in evals.failing(run_id, limit)
    ]


def _clip(text: Any, n: int = 160) -> Any:
    if not isinstance(text, str):
        return text
    return text if len(text) <= n else text[: n - 1] + "…"


def check_positive(name: str, value: int, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"{name} must be a whole number from {minimum}; got {value!r}")
    return value
