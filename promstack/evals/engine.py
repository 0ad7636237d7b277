"""What the faces call: import suites, run tests, judge a run, evaluate a prompt, compare runs,
and read any run (a test run's summary, an arena run's report).

The CLI, the MCP tools and the dashboard all use these functions; each async function has a
sync twin for callers without an event loop. The suites (`catalog`) and the plans (`plans`)
live in their own modules; the names the faces use are re-exported here, so a face imports
one module. The arena (`arena`) sits below this module, never above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, NotFound, Step

from . import suites as S
from .arena import arena_view
from .catalog import (
    case_object,
    get_suite,
    import_suite,
    list_suites,
    resolve_prompt,
    show_suite,
    suite_for_prompt,
    sync_workspace,
    upload_suite,
)
from .gateway import Gateway, LiveGateway
from .judge import ensure_judge_prompts, load_judge
from .plans import build_plan, check_columns, check_not_running, plan_from_run
from .runner import Plan, Progress, arun_plan, count_unchecked, failing_cases, summarize
from .shards import arun_sharded, check_workers

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "aevaluate", "ajudge_run", "aresume_run", "arun_tests", "build_plan", "check_columns", "check_not_running",
    "aresume_here", "arun_here", "compare_runs", "evaluate", "evaluation", "get_run", "get_suite", "import_suite", "judge_run", "list_suites",
    "plan_from_run", "resolve_prompt", "resume_run", "run_tests", "show_suite", "suite_for_prompt",
    "sync_workspace", "upload_run",
]


async def arun_tests(
    client: Client,
    suite: str | None,
    *,
    gateway: Gateway | None = None,
    progress: Progress | None = None,
    warn: Any = None,
    started: Any = None,
    workers: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Start a test run of `suite` and run it to the end. Returns the run with its summary.
    `started(run)` is called once the run exists (the dashboard follows it live by its id).
    (Over a team server, `client.tests` makes the run here with `arun_here` and uploads it.)"""
    evals = client.evals
    if suite:
        found = get_suite(client, suite)
    elif options.get("prompt") not in (None, ""):
        found = suite_for_prompt(client, client.store.prompts.prompt_id(options["prompt"]))
    else:
        raise InvalidInput("say which suite to run, or which prompt (its suite is then the one tied to it)")
    plan = build_plan(client, found, **options)
    workers = check_workers(client, workers, plan)
    judge_key = plan.judge.key() if plan.judge else ""
    run = evals.create_run(
        kind="test", suite=found, prompt_id=plan.prompt_id, prompt_version=plan.prompt_version,
        models=plan.models, repeat=plan.repeat, config=plan.config(), judge_key=judge_key,
        total=found["case_count"] * len(plan.models) * plan.repeat,
    )
    if started is not None:
        started(run)
    unchecked = count_unchecked(evals, found, plan)
    if unchecked and warn is not None:
        warn(f"{unchecked} case(s) of suite {found['name']!r} have nothing to check (no expected_output, "
             "no assertion, no judge criteria): they will be reported as UNCHECKED and never pass")
    return await _execute(client, run, plan, gateway, progress, workers)


async def aresume_run(client: Client, run_id: str, *, gateway: Gateway | None = None,
                      progress: Progress | None = None, concurrency: int | None = None,
                      retries: int | None = None, warn: Any = None, workers: int | None = None) -> dict[str, Any]:
    evals = client.evals
    run = evals.run(run_id)
    if run["kind"] != "test":
        raise InvalidInput(f"run {run_id} is an {run['kind']} run; resume it with its own command")
    check_not_running(run)
    plan = plan_from_run(client, run, concurrency=concurrency, retries=retries)
    workers = check_workers(client, workers, plan)
    if plan.suite["sha256"] != run["suite_sha"] and warn is not None:
        warn(f"suite {run['suite_name']!r} changed since run {run_id} started: unchanged cases keep their "
             "results, new or edited ones are run now")
    return await _execute(client, run, plan, gateway, progress, workers)


async def _execute(client: Client, run: dict[str, Any], plan: Plan, gateway: Gateway | None,
                   progress: Progress | None, workers: int = 1) -> dict[str, Any]:
    evals = client.evals
    total = plan.suite["case_count"] * len(plan.models) * plan.repeat
    if run["total"] != total:
        evals.set_run_total(run["id"], total)
        run = evals.run(run["id"])
    if workers > 1 and gateway is None:
        await arun_sharded(client, plan, run, workers, progress=progress)
        return get_run(client, run["id"])
    async with _gateway(client, gateway) as live:
        await arun_plan(evals, live, plan, run, progress=progress, db_path=client.store.path)
    return get_run(client, run["id"])


@contextlib.asynccontextmanager
async def _gateway(client: Client, given: Gateway | None) -> AsyncIterator[Gateway]:
    """The gateway given, or a live one made (and closed, its call log drained) for this run."""
    if given is not None:
        yield given
        return
    live = LiveGateway(client)
    try:
        yield live
    finally:
        await live.aclose()


def get_run(client: Client, run_id: str, *, failing: int = 20) -> dict[str, Any]:
    evals = client.evals
    run = evals.run(run_id)
    if run["kind"] == "arena":
        return arena_view(evals, run)
    if run["status"] == "done" and run["summary"]:
        summary = run["summary"]
        if failing != len(summary.get("failing") or []):
            summary = {**summary, "failing": failing_cases(evals, run_id, failing)}
    else:
        summary = summarize(evals, run_id, failing=failing)
    return {**run, "summary": summary}


async def ajudge_run(client: Client, run_id: str, criteria: Any, *, gateway: Gateway | None = None,
                     progress: Progress | None = None, judge_model: str | None = None,
                     threshold: float | None = None, concurrency: int = 10) -> dict[str, Any]:
    """Judge the outputs of a finished test run against `criteria`: a new run whose results
    reuse the outputs (no model is called again, only the judge)."""
    evals = client.evals
    source = evals.run(run_id)
    if source["kind"] != "test":
        raise InvalidInput(f"run {run_id} is an {source['kind']} run; ", Step("judge_run"), " judges test runs")
    suite = evals.suite(source["suite_name"])
    judge_cfg = load_judge(criteria, model=judge_model, threshold=threshold)
    if not judge_cfg.criteria:
        raise InvalidInput("judging needs criteria: give ", Step.arg("criteria"))
    judge_cfg.prompt_version, judge_cfg.pair_prompt_version = ensure_judge_prompts(client)
    if not judge_cfg.model:
        judge_cfg.model = source["config"].get("judge_model") or source["models"][0]
    plan = Plan(suite=suite, prompt_id=source["prompt_id"], prompt_version=source["prompt_version"],
                models=source["models"], repeat=source["repeat"], concurrency=concurrency,
                judge=judge_cfg, judge_model=judge_cfg.model, source_run=run_id)
    run = evals.create_run(kind="test", suite=suite, prompt_id=plan.prompt_id,
                           prompt_version=plan.prompt_version, models=plan.models, repeat=plan.repeat,
                           config=plan.config(), judge_key=judge_cfg.key(),
                           total=suite["case_count"] * len(plan.models) * plan.repeat)
    async with _gateway(client, gateway) as live:
        await arun_plan(evals, live, plan, run, progress=progress, db_path=client.store.path)
    return get_run(client, run["id"])


async def aevaluate(client: Client, prompt: Any, *, suite: str | None = None, **options: Any) -> dict[str, Any]:
    """Run the prompt's suite with its assertions and judge: a score 0-100 and the run. When
    any case could not be scored the score is None, with `unscored` (how many) and
    `unscored_reason` (why); otherwise `unscored` is 0."""
    prompt_id = client.store.prompts.prompt_id(prompt)
    found = get_suite(client, suite) if suite else suite_for_prompt(client, prompt_id)
    return evaluation(await arun_tests(client, found["name"], prompt=prompt_id, **options))


def evaluation(result: dict[str, Any]) -> dict[str, Any]:
    """What `evaluate` reports of a finished test run: its score, pass rate and what went unscored."""
    from .score import run_score

    summary = result["summary"]
    out = {"score": run_score(summary), "pass_rate": summary["pass_rate"],
           "unscored": summary.get("unscored", 0), "run": result}
    if out["unscored"]:
        out["unscored_reason"] = summary.get("unscored_reason") or ""
    return out


async def arun_here(client: Client, suite: str | None, *, prompt: Any = None, version: int | None = None,
                    label: str | None = None, **options: Any) -> dict[str, Any]:
    """A test run over a team server (`client` is remote), made where the caller runs: a CI job
    tests with its own model keys. The suite files of this checkout (tests/prompts/) go to the
    server first; the server's prompt version and the suite are copied into a scratch store
    here, run through this machine's gateway, and the finished run is uploaded (stored once,
    by its id), so the server's evaluate and deploy gate see it. An interrupted run is uploaded
    as it stands, so that `aresume_here` can finish it (on any machine). Returns the run as the
    server reports it."""
    checkout = S.workspace_suite_files(Path.cwd())
    for name, path in checkout.items():
        if suite in (None, name):
            upload_suite(client, path)
    served = client.get_prompt(_prompt_of(client, suite, prompt), version=version, label=label)
    if suite is None:
        suite = _server_suite_for(client, served.prompt_id)
    with _scratch_copy(client, served, suite, checkout.get(suite)) as local:
        try:
            run = await arun_tests(local, suite, prompt=served.prompt_id, **options)
        except BaseException:
            made = local.evals.runs(limit=1)
            if made:  # the cases finished so far are kept on the server, to resume from
                _upload_from(client, local, {**made[0], "status": "interrupted"}, served.version)
            raise
        return _upload_from(client, local, run, served.version)


async def aresume_here(client: Client, run_id: str, *, progress: Progress | None = None,
                       concurrency: int | None = None, retries: int | None = None, warn: Any = None,
                       workers: int | None = None) -> dict[str, Any]:
    """Finish an interrupted test run over a team server (`client` is remote), here: its
    finished results come from the server into a scratch store, the cases left are run through
    this machine's gateway, and the completed run is uploaded once (it completes the server's)."""
    run = client.get_run(run_id, failing=0)
    if run["kind"] != "test":
        raise InvalidInput(f"run {run_id} is an {run['kind']} run; resume it with its own command")
    if run["status"] in ("done", "failed"):
        return run  # nothing is left to run
    if run["status"] != "interrupted":
        raise InvalidInput(f"run {run_id} is still running on the server; wait for it, then read it")
    served = client.get_prompt(run["prompt_id"], version=run["prompt_version"])
    finished = client.run_results(run_id)
    with _scratch_copy(client, served, run["suite_name"], None) as local:
        ours = local.get_prompt(served.prompt_id).version
        ensure_judge_prompts(local)  # the run's judge names the judge's own prompts, which a fresh store lacks
        local.evals.import_run({**run, "prompt_version": ours}, [{**r, "prompt_version": ours} for r in finished])
        try:
            resumed = await aresume_run(local, run_id, progress=progress, concurrency=concurrency, retries=retries,
                                        warn=warn, workers=workers)
        except BaseException:
            _upload_from(client, local, {**local.evals.run(run_id), "status": "interrupted"}, served.version)
            raise
        return _upload_from(client, local, resumed, served.version)


@contextlib.contextmanager
def _scratch_copy(client: Client, served: Any, suite: str, suite_file: Path | None) -> Iterator[Client]:
    """A local client over a scratch store holding the server's prompt version `served` and
    `suite` (from this checkout's file when there is one, else as the server has it); deleted after."""
    import tempfile

    from store.workspace import init

    with tempfile.TemporaryDirectory(prefix="promstack-run-") as scratch:
        local = client.local_client(init(Path(scratch)))
        try:
            local.create_prompt(served.name, served.template, model_config=served.model_config,
                                id=served.prompt_id, message=f"v{served.version} on {client.url}")
            if suite_file is not None:
                import_suite(local, suite_file, prompt=served.prompt_id)
            else:
                cases = client.show_suite(suite, limit=1000)["cases"]
                import_suite(local, text=json.dumps([case_object(c) for c in cases], ensure_ascii=False),
                             fmt="json", name=suite, prompt=served.prompt_id,
                             config=client.show_suite(suite, limit=1)["config"])
            yield local
        finally:
            local.close()


def _upload_from(client: Client, local: Client, run: dict[str, Any], version: int) -> dict[str, Any]:
    """The run of the scratch store `local`, with its results, uploaded to the server as a run
    of the server's prompt version `version`."""
    results = [{**r, "prompt_version": version} for r in local.evals.iter_results(run["id"])]
    return client.upload_run({**run, "prompt_version": version}, results)


def _prompt_of(client: Client, suite: str | None, prompt: Any) -> Any:
    if prompt not in (None, ""):
        return prompt
    if suite:
        tied = client.show_suite(suite, limit=1).get("prompt_id")
        if tied is not None:
            return tied
    found = os.environ.get("PROMSTACK_PROMPT") or os.environ.get("PROMPT_ID")
    if found:
        return found
    raise InvalidInput(f"suite {suite!r} is not tied to a prompt: give ", Step.arg("prompt"),
                       ", or add 'prompt: ID' to its tests/prompts/<suite>.yml")


def _server_suite_for(client: Client, prompt_id: int) -> str:
    tied = [s["name"] for s in client.list_suites() if s.get("prompt_id") == prompt_id]
    if not tied:
        raise NotFound(f"no test suite is tied to prompt {prompt_id}: give ", Step.arg("suite"),
                       f", or add 'prompt: {prompt_id}' to tests/prompts/<suite>.yml")
    return "regression" if "regression" in tied else tied[0]


def upload_run(client: Client, run: dict[str, Any], results: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Keep a finished test run made elsewhere, with its results (`EvalStore.import_run`): a run
    uploaded twice is stored once. Returns the run as `get_run` reports it, and whether it was new."""
    created = client.evals.import_run(run, results)
    return get_run(client, run["id"]), created


def run_tests(client: Client, suite: str, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(arun_tests(client, suite, **kwargs))


def resume_run(client: Client, run_id: str, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(aresume_run(client, run_id, **kwargs))


def judge_run(client: Client, run_id: str, criteria: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(ajudge_run(client, run_id, criteria, **kwargs))


def evaluate(client: Client, prompt: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(aevaluate(client, prompt, **kwargs))


def compare_runs(client: Client, run_a: str, run_b: str) -> dict[str, Any]:
    """Two test runs (two versions, two models) side by side, case by case: each side's result
    and whether the case was fixed, broke or changed. Cases pair up by case, repeat and model
    (the n-th model of one run with the n-th of the other when their models differ)."""
    evals = client.evals
    runs = [get_run(client, run_a), get_run(client, run_b)]
    for run in runs:
        if run["kind"] != "test":
            raise InvalidInput(f"run {run['id']} is an {run['kind']} run; only test runs compare case by case")
    same_models = set(runs[0]["models"]) == set(runs[1]["models"])

    def key(run: dict[str, Any], row: dict[str, Any]) -> tuple:
        model = row["model"] if same_models else run["models"].index(row["model"])
        return (row["case_idx"], row["case_key"], row["repeat"], model)

    sides = [{key(run, r): r for r in evals.iter_results(run["id"])} for run in runs]
    rows = []
    counts = {"fixed": 0, "broke": 0, "changed": 0, "same": 0, "only_a": 0, "only_b": 0}
    for k in sorted(set(sides[0]) | set(sides[1]), key=lambda k: (k[0], k[1], k[2], str(k[3]))):
        a, b = sides[0].get(k), sides[1].get(k)
        if a is None or b is None:
            change = "only_b" if a is None else "only_a"
        elif a["status"] != "pass" and b["status"] == "pass":
            change = "fixed"
        elif a["status"] == "pass" and b["status"] != "pass":
            change = "broke"
        elif a["status"] != b["status"] or a["output"] != b["output"]:
            change = "changed"
        else:
            change = "same"
        counts[change] += 1
        first = a or b
        rows.append({"case_idx": k[0], "case_key": k[1], "repeat": k[2], "input": first.get("input"),
                     "expected": first.get("expected"), "a": a, "b": b, "change": change})
    return {"a": runs[0], "b": runs[1], "rows": rows, "counts": counts}
