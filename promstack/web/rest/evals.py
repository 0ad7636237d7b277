"""Suites, test runs, judging, the arena and its votes, evaluate: the long ones start in the
background and answer 202 with a run id to poll at GET /runs/{id} (status and progress)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from promstack import schemas as s

from . import Caller, needs, ref
from .prompts import Body, P

router = APIRouter(tags=["evals"])

SuiteName = Annotated[str, Field(min_length=1, max_length=100)]
Models = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20)]
Criteria = Annotated[dict[str, Any] | list[str] | None,
                     Field(default=None, description="Questions for the judge, or {criteria: [...], scoring: 1-5}.")]
JudgeModel = Annotated[str | None, Field(default=None, max_length=200)]
FORMATS = {"text/csv": "csv", "application/json": "json", "application/x-ndjson": "jsonl",
           "application/jsonl": "jsonl", "application/jsonlines": "jsonl"}


class ImportCases(Body):
    suite: SuiteName
    cases: str | list[dict[str, Any]] = Field(description="CSV text (or JSON/JSONL text with format), or [{input, expected_output, vars, assert}].")
    format: Literal["csv", "json", "jsonl"] | None = Field(default=None, description="Of text cases; default csv.")
    prompt: s.PromptRef | None = Field(default=None, description="The prompt it tests by default.")


class RunTests(Body):
    suite: SuiteName
    prompt: s.PromptRef | None = Field(default=None, description="Default: the suite's prompt.")
    version: s.Version | None = None
    label: str | None = Field(default=None, max_length=100)
    models: Models | None = None
    criteria: Criteria
    judge_model: JudgeModel
    repeat: int = Field(default=1, ge=1, le=20)
    retries: int = Field(default=0, ge=0, le=10)
    concurrency: int = Field(default=10, ge=1, le=200)
    min_pass: float = Field(default=1.0, ge=0, le=1)


class JudgeRun(Body):
    criteria: Criteria
    judge_model: JudgeModel
    threshold: float | None = Field(default=None, ge=0, le=100)
    concurrency: int = Field(default=10, ge=1, le=200)


class RunArena(Body):
    suite: SuiteName | None = Field(default=None, description="Required unless resume.")
    models: Models | None = Field(default=None, description="Two or more; required unless resume.")
    resume: str | None = Field(default=None, max_length=100, description="Finish this interrupted arena run "
                               "as it was started (then give no suite, models, prompt or criteria).")
    prompt: s.PromptRef | None = None
    version: s.Version | None = None
    label: str | None = Field(default=None, max_length=100, description="The version a label points at.")
    criteria: Criteria
    judge_model: JudgeModel
    seed: int | None = None
    concurrency: int = Field(default=10, ge=1, le=200)


class Evaluate(Body):
    suite: SuiteName | None = None
    version: s.Version | None = None
    label: str | None = Field(default=None, max_length=100)
    models: Models | None = None
    criteria: Criteria
    judge_model: JudgeModel


class Vote(Body):
    winner: str = Field(min_length=1, max_length=200, description="Model name or 'tie'.")
    voter: str | None = Field(default=None, max_length=100)


class Progress(BaseModel):
    done: int
    total: int | None


class RunStatus(BaseModel):
    run_id: str = Field(description="Poll GET /runs/{run_id}.")
    kind: str = Field(description="test, judge, arena or evaluate.")
    status: str = Field(description="running, done, failed or interrupted.")
    progress: Progress
    result: s.GetRunResult | s.EvaluateResult | None = Field(default=None, description="When done.")
    error: dict[str, str] | None = Field(default=None, description="When failed: {type, message}.")


def _suite(found: dict[str, Any]) -> s.SuiteResult:
    return s.SuiteResult(suite=found["name"], cases=found["case_count"], prompt_id=found["prompt_id"],
                         source=found["source"], settings=found["config"])


def _test(run: dict[str, Any], min_pass: float | None = None) -> s.GetRunResult:
    return s.GetRunResult(run_id=run["id"], kind="test", test=s.run_result(run, min_pass))


def _arena(run: dict[str, Any]) -> s.GetRunResult:
    return s.GetRunResult(run_id=run["id"], kind="arena", arena=s.arena_result(run).model_dump())


def _evaluated(found: dict[str, Any]) -> s.EvaluateResult:
    return s.EvaluateResult(score=found["score"], unscored=found.get("unscored", 0),
                            unscored_reason=found.get("unscored_reason"), pass_rate=found["pass_rate"],
                            run=s.run_result(found["run"]))


def _status(job: dict[str, Any]) -> RunStatus:
    """A job as the store has it (web/rest/jobs.py); once it made a run, it goes by the run's id."""
    return RunStatus(run_id=job["run_id"] or job["id"], kind=job["kind"], status=job["status"],
                     progress=Progress(done=job["done"], total=job["total"]), result=job["result"], error=job["error"])


def _start(request: Request, caller: Caller, kind: str, work: Any, shape: Any) -> RunStatus:
    return _status(request.app.state.jobs.start(caller.actor, kind, work, shape=shape))


@router.get("/suites")
def list_suites(caller: Caller = needs("list_suites")) -> list[dict[str, Any]]:
    """The test suites: name, cases, the prompt each tests."""

    with caller.client() as client:
        return client.tests.list_suites()


@router.get("/suites/{suite}")
def show_suite(suite: str, limit: Annotated[int, Query(ge=1, le=1000)] = 20, offset: Annotated[int, Query(ge=0)] = 0,
               caller: Caller = needs("list_suites")) -> dict[str, Any]:
    """A suite with a page of its cases."""

    with caller.client() as client:
        return client.tests.show_suite(suite, limit=limit, offset=offset)


@router.post("/suites", response_model=s.SuiteResult, status_code=201)
def import_test_cases(body: ImportCases, caller: Caller = needs("import_test_cases")) -> Any:
    """Create or replace a suite from cases in the body: CSV `input,expected_output` (other columns
    are template variables), JSON or JSONL text, or a list of case objects."""

    if isinstance(body.cases, list):
        text, fmt = json.dumps(body.cases, ensure_ascii=False), "json"
    else:
        text, fmt = body.cases, body.format or "csv"
    with caller.client() as client:
        return _suite(client.tests.import_suite(text=text, fmt=fmt, name=body.suite, prompt=body.prompt))


@router.put("/suites/{suite}", response_model=s.SuiteResult, status_code=201)
async def upload_suite(suite: str, request: Request, format: Literal["csv", "json", "jsonl"] | None = None,
                       prompt: str | None = None, caller: Caller = needs("import_test_cases")) -> Any:
    """Upload a suite file as the CLI reads it: the body is the file (CSV, JSON or JSONL, by
    `format` or the Content-Type: text/csv, application/json, application/x-ndjson)."""
    from store.errors import InvalidInput

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = format or FORMATS.get(kind)
    if fmt is None:
        raise InvalidInput(f"say the file's format: ?format=csv|json|jsonl, or a Content-Type of {', '.join(FORMATS)}")
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the suite file is not UTF-8 text; save it as UTF-8 and upload it again") from None

    def load() -> Any:
        with caller.client() as client:
            return client.tests.import_suite(text=text, fmt=fmt, name=suite,
                                             prompt=None if prompt is None else ref(prompt))

    return _suite(await run_in_threadpool(load))


@router.post("/runs", response_model=RunStatus, status_code=202)
def run_tests(body: RunTests, request: Request, caller: Caller = needs("run_tests")) -> Any:
    """Start a test run (assertions and the judge); poll GET /runs/{run_id}."""

    def work(client: Any, progress: Any, started: Any) -> Any:
        return client.tests.run_tests(body.suite, prompt=body.prompt, version=body.version, label=body.label,
                                      models=body.models, repeat=body.repeat, retries=body.retries,
                                      concurrency=body.concurrency, criteria=body.criteria,
                                      judge_model=body.judge_model, progress=progress, started=started)

    return _start(request, caller, "test", work, lambda run: _test(run, body.min_pass))


@router.get("/runs")
def list_runs(suite: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 20,
              caller: Caller = needs("get_run")) -> list[dict[str, Any]]:
    """Test and arena runs, newest first (`suite`: only that suite's), as `promstack runs` lists them."""
    with caller.client() as client:
        return client.list_runs(suite=suite, limit=limit)


@router.get("/runs/{run_id}", response_model=RunStatus)
def get_run(run_id: str, request: Request, failing: Annotated[int, Query(ge=0, le=200)] = 20,
            caller: Caller = needs("get_run")) -> Any:
    """A run's status and progress; when done, its summary (the same as the get_run tool)."""

    job = request.app.state.jobs.get(run_id)  # any worker's job, from the store
    if job is not None and (job["status"] != "done" or job["kind"] != "test" or failing == 20):
        return _status(job)
    with caller.client() as client:
        run = client.tests.get_run(run_id, failing=failing)
    summary = run.get("summary") or {}
    done = run["status"] != "running"
    result = (_arena(run) if run["kind"] == "arena" else _test(run)) if done else None
    return RunStatus(run_id=run["id"], kind=run["kind"], status=run["status"],
                     progress=Progress(done=summary.get("results", 0), total=summary.get("total")), result=result)


class UploadRun(Body):
    run: dict[str, Any] = Field(description="The finished test run as the engine reports it: id, kind, "
                                "suite_name, prompt_id, prompt_version, models, status, summary, ...")
    results: list[dict[str, Any]] = Field(max_length=1_000_000, description="Its results, one per case x model x repeat.")


class Uploaded(BaseModel):
    created: bool = Field(description="False when a run of that id was here already (kept as it was).")
    run: dict[str, Any]


@router.post("/runs/upload", response_model=Uploaded, status_code=201)
def upload_run(body: UploadRun, response: Response, caller: Caller = needs("upload_run")) -> Any:
    """Keep a test run made elsewhere (a CI job, with its own model keys) against this server's
    suite of that name: 201 when new, 200 when a run of that id is here already (stored once)."""

    with caller.client() as client:
        run, created = client.tests.upload_run(body.run, body.results)
    if not created:
        response.status_code = 200
    return Uploaded(created=created, run=run)


@router.get("/runs/{run_id}/results")
def run_results(run_id: str, caller: Caller = needs("get_run")) -> list[dict[str, Any]]:
    """A test run's results, one per case x model x repeat (what a client resuming the run
    elsewhere keeps, and does not run again)."""
    with caller.client() as client:
        client.evals.run(run_id)  # an unknown run is a 404, not an empty list
        return list(client.evals.iter_results(run_id))


@router.get("/runs/{run_id}/detail")
def run_detail(run_id: str, failing: Annotated[int, Query(ge=0, le=200)] = 20,
               caller: Caller = needs("get_run")) -> dict[str, Any]:
    """A run as the engine reports it (the CLI's `promstack runs RUN` over a server): settings,
    summary per model, failing cases."""

    with caller.client() as client:
        return client.tests.get_run(run_id, failing=failing)


@router.post("/runs/{run_id}/judge", response_model=RunStatus, status_code=202)
def judge_run(run_id: str, body: JudgeRun, request: Request, caller: Caller = needs("judge_run")) -> Any:
    """Judge an earlier test run's outputs against criteria, without calling the model again."""

    def work(client: Any, progress: Any, started: Any) -> Any:
        return client.tests.judge_run(run_id, body.criteria, judge_model=body.judge_model,
                                      threshold=body.threshold, concurrency=body.concurrency, progress=progress)

    return _start(request, caller, "judge", work, _test)


@router.post("/arena", response_model=RunStatus, status_code=202)
def run_arena(body: RunArena, request: Request, caller: Caller = needs("run_arena")) -> Any:
    """Compare models blind on a suite, a judge picking the better answer of each pair."""
    from store.errors import InvalidInput

    if body.resume is None and (body.suite is None or body.models is None):
        raise InvalidInput("say which suite and models the arena compares (or resume: a run to finish)")
    if body.resume is not None and (body.suite or body.models or body.prompt is not None or body.criteria):
        raise InvalidInput("resume finishes an arena run as it was started: give no suite, models, prompt or criteria")

    def work(client: Any, progress: Any, started: Any) -> Any:
        return client.tests.run_arena(suite=body.suite or "", models=body.models or [], prompt=body.prompt,
                                      version=body.version, label=body.label, criteria=body.criteria, judge_model=body.judge_model,
                                      seed=body.seed, concurrency=body.concurrency, resume=body.resume, progress=progress)

    return _start(request, caller, "arena", work, _arena)


@router.post("/arena/matches/{match_id}/votes", response_model=s.VoteResult, status_code=201)
def record_vote(match_id: int, body: Vote, caller: Caller = needs("record_vote")) -> Any:
    """A person's verdict on an arena match."""
    with caller.client() as client:
        return s.VoteResult.model_validate(client.tests.record_vote(match_id, body.winner, voter=body.voter or client.actor))


class Bisect(Body):
    case: str | None = Field(default=None, min_length=1, max_length=500,
                             description="The case that broke: its number, its key, or words of its input.")
    suite: SuiteName | None = Field(default=None, description="Default: the prompt's suite.")
    min_score: float | None = Field(default=None, ge=0, le=100, description="Instead of case: the score a good version keeps.")
    good: s.Version | None = Field(default=None, description="A good version (default: the branch's oldest).")
    bad: s.Version | None = Field(default=None, description="A bad version (default: the branch's head).")
    branch: str | None = Field(default=None, max_length=100, description="Default: main.")


@router.post(P + "/bisect", response_model=s.BisectResult)
def bisect_prompt(prompt: str, body: Bisect, caller: Caller = needs("bisect_prompt")) -> Any:
    """The first version where a case went from pass to fail (or the suite score fell below
    min_score). It tests few versions, reusing finished runs and the cache, and answers when done."""
    from promstack.evals.bisect import bisect

    with caller.client() as client:
        return s.BisectResult.model_validate(bisect(client, ref(prompt), case=body.case, suite=body.suite,
                                                    min_score=body.min_score, good=body.good, bad=body.bad,
                                                    branch=body.branch))


@router.post(P + "/evaluate", response_model=RunStatus, status_code=202)
def evaluate_prompt(prompt: str, body: Evaluate, request: Request, caller: Caller = needs("evaluate_prompt")) -> Any:
    """Score a prompt 0-100 on its suite, as the deploy gate does; the score is in the result."""

    def work(client: Any, progress: Any, started: Any) -> Any:
        return client.tests.evaluate(ref(prompt), suite=body.suite, version=body.version, label=body.label,
                                     models=body.models, criteria=body.criteria, judge_model=body.judge_model,
                                     progress=progress, started=started)

    return _start(request, caller, "evaluate", work, _evaluated)
