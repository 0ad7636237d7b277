"""The test, judge and arena tools: each a few lines over promstack.evals (the same engine as
`promstack test|evaluate|judge|arena`). Long ones report progress as cases finish."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

from pydantic import Field

from promstack.schemas import (  # noqa: F401
    ArenaResult,
    CriterionMean,
    CriterionScore,
    EvaluateResult,
    FailingCase,
    GetRunResult,
    RunResult,
    SuiteResult,
    VoteResult,
)
from promstack.schemas import arena_result as _arena_result
from promstack.schemas import run_result as _run_result

from .engine import Call
from .models import Args, Options, PromptRef, Version
from .registry import tool

SuiteName = Annotated[str, Field(min_length=1, max_length=100)]
Models = Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=20)]
Criteria = Annotated[
    dict[str, Any] | list[str] | None,
    Field(default=None, description="Questions for the judge, or {criteria: [...], scoring: 1-5}."),
]
RunId = Annotated[str, Field(min_length=1, max_length=100)]
JudgeModel = Annotated[str | None, Field(default=None, max_length=200)]
OwnPrompt = Field(default=None, description="Default: the suite's prompt.")


class ImportTestCasesArgs(Args):
    suite: SuiteName
    file: str | None = Field(default=None, max_length=1000, description="Path under the workspace root, e.g. 'tests/prompts/regression.csv'.")
    cases: str | list[dict[str, Any]] | None = Field(default=None, description="Instead of file: CSV text, or [{input, expected_output, vars, assert}].")
    format: Literal["csv", "json", "jsonl"] | None = Field(default=None, description="Default: csv, or the file's extension.")
    prompt: PromptRef | None = Field(default=None, description="The prompt it tests by default.")


Concurrency = Field(default=10, ge=1, le=200, description="Model calls at once.")


class RunTestsOptions(Options):
    repeat: int = Field(default=1, ge=1, le=20, description="Runs of each case.")
    retries: int = Field(default=0, ge=0, le=10, description="Retries of a failed model call.")
    concurrency: int = Concurrency
    min_pass: float = Field(default=1.0, ge=0, le=1, description="Pass rate 0-1 the run needs.")


class RunTestsArgs(Args):
    FOLDED = frozenset(RunTestsOptions.model_fields)

    suite: SuiteName
    prompt: PromptRef | None = OwnPrompt
    version: Version | None = None
    label: str | None = Field(default=None, max_length=100)
    models: Models | None = Field(default=None, description="Default: the prompt's model.")
    criteria: Criteria
    judge_model: JudgeModel
    options: RunTestsOptions = Field(default_factory=RunTestsOptions)


class GetRunArgs(Args):
    run_id: RunId
    failing: int = Field(default=20, ge=0, le=200, description="How many failing cases to list.")


class JudgeRunArgs(Args):
    run_id: RunId
    criteria: Criteria
    judge_model: JudgeModel
    threshold: float | None = Field(default=None, ge=0, le=100, description="Score 0-100 a case needs (default 80).")


class RunArenaOptions(Options):
    seed: int | None = Field(default=None, description="Fixes the random order answers are shown in.")
    concurrency: int = Concurrency


class RunArenaArgs(Args):
    FOLDED = frozenset(RunArenaOptions.model_fields)

    suite: SuiteName
    models: Models = Field(min_length=2, description="Two or more.")
    prompt: PromptRef | None = OwnPrompt
    version: Version | None = None
    criteria: Criteria
    judge_model: str | None = Field(default=None, max_length=200, description="Not one of the models.")
    options: RunArenaOptions = Field(default_factory=RunArenaOptions)


class EvaluatePromptArgs(Args):
    prompt: PromptRef
    suite: SuiteName | None = Field(default=None, description="Default: the prompt's suite.")
    version: Version | None = None
    label: str | None = Field(default=None, max_length=100)
    models: Models | None = Field(default=None, description="Default: the prompt's model.")
    criteria: Criteria
    judge_model: JudgeModel


class RecordVoteArgs(Args):
    match_id: int = Field(ge=1, description="From get_run on an arena run.")
    winner: str = Field(min_length=1, max_length=200, description="Model name or 'tie'.")
    voter: str | None = Field(default=None, max_length=100)


# ---- shaping -------------------------------------------------------------------------------------


def _run_text(r: RunResult) -> str:
    score = "no score" if r.score is None else f"score {r.score:.0f}/100"
    lines = [
        f"Run {r.run_id} ({r.status}): suite '{r.suite}' on prompt {r.prompt_id} v{r.prompt_version} with "
        f"{', '.join(r.models)}.",
        f"Passed {r.results - r.failed - r.errors - r.unchecked}/{r.results} ({r.pass_rate:.0%}), "
        f"{score}; failed {r.failed}, unscored {r.unscored}, unchecked {r.unchecked}.",
        f"Tokens {r.input_tokens:,} in / {r.output_tokens:,} out, cost ${r.cost_usd:.4f}, latency p50 "
        f"{_ms(r.latency_ms.get('p50'))}, p95 {_ms(r.latency_ms.get('p95'))}.",
    ]
    if r.unpriced_note:
        lines.append(f"The cost leaves out {r.unpriced_note}.")
    if r.unscored and r.verdict is None:
        lines.append(f"Could not score {r.unscored} case(s): {r.unscored_reason}.")
    if r.verdict is not None:
        lines.append(f"Verdict: {r.verdict}.")
    if r.criteria:
        lines.append("Judge per criterion: " + "; ".join(
            f"{c.criterion} {c.percent:.0f}/100" for c in r.criteria) + ".")
    for f in r.failing[:10]:
        status = "unscored" if f.status == "error" else f.status
        lines.append(f"- {status} case {f.case} [{f.model}] {f.input!r}: {f.why}")
        for c in f.criteria:
            lines.append(f"  {c.criterion}: {c.score:g} ({c.reason})")
    if r.results < r.total:
        lines.append(f"Incomplete: {r.results} of {r.total}; finish it with `promstack test --resume {r.run_id}`.")
    return "\n".join(lines)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _arena_text(r: ArenaResult) -> str:
    lines = [f"Arena {r.run_id}: {r.headline['models']}", f"Win rate: {r.headline['win_rates']} "
             f"(share of wins {r.headline['shares']})."]
    if r.no_separation:
        lines.append(r.no_separation[0].upper() + r.no_separation[1:] + ".")
    for model, rating in sorted(r.ratings.items(), key=lambda kv: -kv[1]["rating"]):
        ci = "" if rating.get("ci_low") is None else f" (95% CI {rating['ci_low']}..{rating['ci_high']})"
        lines.append(f"- {model}: rating {rating['rating']:.0f}{ci}")
    if r.order_flip_rate is not None:
        lines.append(f"Judge order-flip rate {r.order_flip_rate:.0%}; {r.errors} matches errored.")
    if r.human.get("votes"):
        lines.append(f"{r.human['votes']} human votes, agreeing with the judge {r.human['agreement_with_judge']}.")
    return "\n".join(lines)


def _criteria(value: Any) -> Any:
    return None if value is None else value


def _progress(call: Call, what: str):  # noqa: ANN202
    """At most a few notifications a second: each one is a round trip to the server's loop."""
    last = [0.0]

    def report(done: int, total: int, status: str) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.25:
            return
        last[0] = now
        call.progress(done, total or None, f"{what}: {done} of {total}")

    return report


# ---- tools ---------------------------------------------------------------------------------------


@tool(title="Import test cases", idempotent=True)
def import_test_cases(call: Call, args: ImportTestCasesArgs) -> tuple[SuiteResult, str]:
    """Create or replace a test suite from a workspace file or inline: CSV `input,expected_output`
    (other columns are template variables), JSON or JSONL."""
    from store.errors import InvalidInput

    if (args.file is None) == (args.cases is None):
        raise InvalidInput("give either 'file' (a path in the workspace) or 'cases' (CSV text or a list), not both")
    if args.file is not None:
        suite = call.client.tests.import_suite(call.workspace_file(args.file), fmt=args.format,
                                               name=args.suite, prompt=args.prompt)
    elif isinstance(args.cases, list):
        suite = call.client.tests.import_suite(text=json.dumps(args.cases, ensure_ascii=False), fmt="json",
                                               name=args.suite, prompt=args.prompt)
    else:
        suite = call.client.tests.import_suite(text=args.cases, fmt=args.format or "csv", name=args.suite,
                                               prompt=args.prompt)
    result = SuiteResult(suite=suite["name"], cases=suite["case_count"], prompt_id=suite["prompt_id"],
                         source=suite["source"], settings=suite["config"])
    tied = f", tied to prompt {result.prompt_id}" if result.prompt_id else ""
    return result, f"Suite '{result.suite}': {result.cases} cases{tied}."


@tool(title="Run tests", long=True, open_world=True)  # the tested models and the judge
def run_tests(call: Call, args: RunTestsArgs) -> tuple[RunResult, str]:
    """Run a test suite with assertions and the LLM judge; returns pass rate, score 0-100, cost and
    failing cases."""
    run = call.client.tests.run_tests(
        args.suite, prompt=args.prompt, version=args.version, label=args.label,
        models=args.models, repeat=args.options.repeat, retries=args.options.retries,
        concurrency=args.options.concurrency, criteria=_criteria(args.criteria), judge_model=args.judge_model,
        progress=_progress(call, "cases"),
    )
    result = _run_result(run, args.options.min_pass)
    return result, _run_text(result)


@tool(title="Get a test or arena run", read_only=True, idempotent=True, long=True)
def get_run(call: Call, args: GetRunArgs) -> tuple[GetRunResult, str]:
    """Get a test or arena run's summary by id."""

    run = call.client.tests.get_run(args.run_id, failing=args.failing)
    if run["kind"] == "arena":
        arena = _arena_result(run)
        return GetRunResult(run_id=run["id"], kind="arena", arena=arena.model_dump()), _arena_text(arena)
    result = _run_result(run)
    return GetRunResult(run_id=run["id"], kind="test", test=result), _run_text(result)


@tool(title="Judge a run", long=True, open_world=True)  # the judge model
def judge_run(call: Call, args: JudgeRunArgs) -> tuple[RunResult, str]:
    """Judge an earlier test run's outputs against criteria without rerunning the model."""

    run = call.client.tests.judge_run(args.run_id, _criteria(args.criteria), judge_model=args.judge_model,
                                      threshold=args.threshold, progress=_progress(call, "judged"))
    result = _run_result(run)
    return result, _run_text(result)


@tool(title="Model arena", long=True, open_world=True)  # the models and the judge
def run_arena(call: Call, args: RunArenaArgs) -> tuple[ArenaResult, str]:
    """Compare models blind on a suite, a judge picking the better answer of each pair; returns win
    rates and ratings."""
    run = call.client.tests.run_arena(suite=args.suite, models=args.models, prompt=args.prompt, version=args.version,
                                      criteria=_criteria(args.criteria), judge_model=args.judge_model, seed=args.options.seed,
                                      concurrency=args.options.concurrency, progress=_progress(call, "cases"))
    result = _arena_result(run)
    return result, _arena_text(result)


@tool(title="Evaluate a prompt", long=True, open_world=True)  # the model and the judge
def evaluate_prompt(call: Call, args: EvaluatePromptArgs) -> tuple[EvaluateResult, str]:
    """Score a prompt 0-100 on its test suite (assertions and judge), as the deploy gate does."""

    found = call.client.tests.evaluate(args.prompt, suite=args.suite, version=args.version, label=args.label,
                                       models=args.models, criteria=_criteria(args.criteria), judge_model=args.judge_model,
                                       progress=_progress(call, "cases"))
    run = _run_result(found["run"])
    result = EvaluateResult(score=found["score"], unscored=found.get("unscored", 0),
                            unscored_reason=found.get("unscored_reason"), pass_rate=found["pass_rate"], run=run)
    from promstack.evals.score import evaluate_verdict

    said = evaluate_verdict(found["run"]["summary"])
    head = f"{said[0].upper()}{said[1:]}" + ("; fix that and evaluate again" if result.score is None else "") + ".\n"
    return result, head + _run_text(run)


@tool(title="Vote on an arena match")
def record_vote(call: Call, args: RecordVoteArgs) -> tuple[VoteResult, str]:
    """Record a person's verdict on an arena match."""
    found = call.client.tests.record_vote(args.match_id, args.winner, voter=args.voter or call.actor)
    result = VoteResult.model_validate(found)
    return result, f"Recorded {result.voter}'s vote on match {result.match_id}: {result.winner}."
