"""The engine's wire shapes, shared by every face that speaks JSON: the MCP tools' structured
results and the REST API's responses are these models, so the two faces say the same thing in
the same shape. Also the pieces of arguments both faces validate (a prompt reference, a template,
a model_config), and the functions that shape an engine result (a run, an arena, a deployment)
into its model.

`model_config` is both a DESIGN argument name and the one attribute pydantic reserves for a
model's own configuration, so the Python field is `config` and the wire name is its alias.
Plain pydantic, nothing of a face: MCP's argument models (`mcp_server.models`) and the REST
bodies (`promstack.web.rest`) build on these pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

MAX_TEMPLATE_CHARS = 1_000_000

# ---- argument pieces ----------------------------------------------------------------------


def _not_a_bool(value: Any) -> Any:
    # pydantic would read true as 1: a model that sends a boolean for a number meant something else.
    if isinstance(value, bool):
        raise ValueError("expected a whole number such as 3, not true or false")
    return value


WholeNumber = Annotated[int, Field(ge=1), BeforeValidator(_not_a_bool)]
# Descriptions are for the model that fills the arguments, and it reads them in every
# conversation: only what the name does not say (bench/bench_mcp_context.py counts them).
# A prompt is advertised as text ("42" or "support/refund"): half the tokens of an integer-or-
# string union, on 21 tools. A JSON integer is accepted all the same.
PromptRef = Annotated[
    WholeNumber | Annotated[str, Field(min_length=1, max_length=200)],
    WithJsonSchema({"type": "string"}),
    Field(description="Id or name."),
]
Version = WholeNumber
RefName = Annotated[str, Field(min_length=1, max_length=100)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str = Field(max_length=MAX_TEMPLATE_CHARS)
    name: str | None = Field(default=None, max_length=100)


Template = Annotated[
    Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)] | Annotated[list[ChatMessage], Field(min_length=1)],
    Field(description="Text with {{ variables }}, or chat messages."),
]
ModelConfig = Annotated[
    dict[str, Any] | None,
    Field(
        default=None,
        alias="model_config",
        description="E.g. {model: gpt-4o-mini, temperature: 0.2, variables: {name: {type, description, default}}}.",
    ),
]
Message = Annotated[
    str | None, Field(default=None, max_length=2000, description="Commit message.")
]



# ---- results ------------------------------------------------------------------------------


class Result(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


# Any JSON value, spelled so that a strict client sees a schema that constrains (a bare `{}`
# is "accepts anything" and MCP Inspector's --strict warns about it).
JsonValue = Annotated[Any, WithJsonSchema({"anyOf": [
    {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "array"}, {"type": "object"},
    {"type": "null"},
]})]


class Variable(Result):
    name: str
    type: str = "string"
    required: bool = True
    description: str | None = None
    default: JsonValue = None


class CaseChange(Result):
    case: str = Field(description="The case key.")
    input: str = Field(description="The case's input, clipped to 200 characters.")
    parent_score: float | None
    score: float | None
    reason: str | None = Field(description="The judge's or assertion's reason on the new version.")


class VersionCheck(Result):
    """The quick check of a save (promstack.evals.check): the suite's sample on this version and its parent."""

    status: Literal["pending", "checked", "not_checked", "no_suite", "off"]
    suite: str | None = None
    score: float | None = Field(default=None, description="0-100, this version's mean on the sample.")
    parent_version: int | None = None
    parent_score: float | None = None
    delta: float | None = Field(default=None, description="score - parent_score.")
    broke: list[CaseChange] = Field(default_factory=list, description="Passed on the parent, fail now.")
    fixed: list[CaseChange] = Field(default_factory=list, description="Failed on the parent, pass now.")
    sample: int = 0
    cost_usd: float | None = None
    reason: str | None = Field(default=None, description="Why not checked, no suite or off.")
    text: str = Field(description='One line, e.g. "82 (-9: 2 broke)".')
    checked_at: str | None = None


def check_of(checks: dict[int, Any], version: int) -> VersionCheck | None:
    """A version's check from `Client.version_checks`' answer, as its wire model (None: none)."""
    found = checks.get(version)
    return None if found is None else VersionCheck.model_validate(found.to_dict())


class PromptVersionResult(Result):
    prompt_id: int
    name: str
    version: int
    branch: str
    kind: Literal["text", "chat"]
    template: str | list[dict[str, str]]
    config: dict[str, Any] = Field(alias="model_config")
    variables: list[Variable]
    sha256: str
    parent: int | None
    merge_parent: int | None
    message: str | None
    author: str
    source: str
    created_at: str
    created: bool = Field(description="False when the content equalled the head, so no version was made.")
    warnings: list[str] = Field(default_factory=list)
    check: VersionCheck | None = Field(default=None, description="Its quick check against its parent (None: never checked).")


class PromptSummary(Result):
    id: int
    name: str
    description: str | None
    created_at: str
    created_by: str
    archived: bool
    head: int | None
    versions: int
    labels: dict[str, int]
    branches: list[str]


class PromptListResult(Result):
    prompts: list[PromptSummary]


class VersionSummary(Result):
    version: int
    branch: str
    parent: int | None
    merge_parent: int | None
    message: str | None
    author: str
    source: str
    sha256: str
    created_at: str
    check: VersionCheck | None = Field(default=None, description="Its quick check against its parent (None: never checked).")


class HistoryResult(Result):
    prompt_id: int
    name: str
    versions: list[VersionSummary] = Field(description="Newest first.")


class BehaviourCase(Result):
    case: str = Field(description="The case key.")
    input: str = Field(description="The case's input, clipped to 200 characters.")
    output_a: str
    output_b: str
    winner: Literal["a", "b", "tie"] = Field(description="tie when the judge's two orders disagreed.")
    reason: str = Field(description="The judge's reason.")
    margin: float = Field(description="0-1: how much the case changed; the cases are sorted by it.")
    idx: int = Field(default=0, description="The case's number in the suite.")
    verdict_ab: str = Field(default="", description="The judge's pick with A shown first (a, b or tie).")
    verdict_ba: str = Field(default="", description="The judge's pick with B shown first.")


class BehaviourDiff(Result):
    suite: str
    from_version: int
    to_version: int
    a_better: int
    b_better: int
    same: int
    verdict: Literal["A better", "B better", "same"]
    text: str = Field(description="The one-line summary.")
    cases: list[BehaviourCase] = Field(description="Changed most first.")
    cost_usd: float | None = Field(default=None, description="What the model and judge calls made for it cost.")
    model_calls: int = Field(default=0, description="Calls that reached a model (cache hits are free).")


class DiffResult(Result):
    prompt_id: int
    name: str
    from_version: int
    to_version: int
    unified: str = Field(description="A unified line diff of the two templates.")
    added: int = Field(description="Lines added.")
    removed: int = Field(description="Lines removed.")
    added_words: int
    removed_words: int
    config_changes: dict[str, dict[str, Any]] = Field(description="model_config keys that changed: {from, to}.")
    behaviour: BehaviourDiff | None = Field(default=None, description="With behaviour: what the versions do differently on the suite.")


class BranchResult(Result):
    prompt_id: int
    name: str
    head: int
    forked_from: int | None
    created_at: str
    created_by: str


class LabelResult(Result):
    prompt_id: int
    label: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    at: str

class RunPromptResult(BaseModel):
    output: str
    model: str
    prompt_id: int | None
    prompt_version: int | None
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None = Field(description="USD; null when the model has no price (see unpriced), never a silent 0.")
    priced: bool = True
    unpriced: str | None = Field(default=None, description="Why the cost is unknown and how to add a price; null when priced.")
    cache_hit: bool
    status: str
    call_id: str
    guards: dict[str, Any] = Field(description="What each guard found and did (PII masked, injection flagged, output filtered).")


class GateCheck(BaseModel):
    check: str
    passed: bool
    skipped: bool = False
    detail: str


class DeployResult(BaseModel):
    status: str = Field(description="deployed, refused (the gate said no), pending_approval, rolling_out or unchanged.")
    deployment_id: int | None = None
    prompt_id: int
    name: str
    environment: str
    from_version: int | None = None
    to_version: int | None = None
    forced: bool = False
    checks: list[GateCheck] = Field(default_factory=list)
    message: str



# ---- evals -------------------------------------------------------------------------------


class SuiteResult(BaseModel):
    suite: str
    cases: int
    prompt_id: int | None
    source: str
    settings: dict[str, Any]


class CriterionScore(BaseModel):
    criterion: str = Field(description="The criterion as the judge was given it.")
    score: float = Field(description="The judge's score on the criterion's scale (e.g. 1-5).")
    percent: float = Field(description="The same score as 0-100.")
    reason: str = Field(description="The judge's one-sentence reason.")


class CriterionMean(BaseModel):
    criterion: str = Field(description="The criterion as the judge was given it.")
    percent: float = Field(description="Mean judge score 0-100 over the judged cases.")
    score: float = Field(description="Mean judge score on the criterion's scale (e.g. 1-5).")
    judged: int = Field(description="How many results the judge scored on it.")


class FailingCase(BaseModel):
    case: int | None
    model: str
    repeat: int = 0
    status: str = Field(description="fail, unchecked, or error (unscored: the model or the judge gave nothing to score).")
    input: str | None = None
    expected: str | None = None
    output: str | None = None
    why: str | None = None
    criteria: list[CriterionScore] = Field(default_factory=list, description="The judge's score and reason per criterion for this case.")


class RunResult(BaseModel):
    run_id: str
    kind: str
    status: str = Field(description="done, running or interrupted.")
    suite: str
    prompt_id: int | None
    prompt_version: int | None
    models: list[str]
    passed: bool | None = Field(default=None, description="Whether the run passed: every case scored and the pass rate at least min_pass (run_tests only).")
    verdict: str | None = Field(default=None, description="The verdict in words, with its thresholds (run_tests only).")
    threshold: float = Field(description="The judge score 0-100 at which a judged case passes (80 unless the run set another).")
    pass_rate: float
    score: float | None = Field(description="Mean case score 0-100 (an unchecked case counts 0); null when any case is unscored.")
    unscored: int = Field(default=0, description="Cases that could not be scored (the model call failed or the judge's replies never fit); they never count as 0.")
    unscored_reason: str | None = Field(default=None, description="Why cases went unscored, when any did.")
    criteria: list[CriterionMean] = Field(default_factory=list, description="The judge's mean score per criterion over the run: how it did on each.")
    results: int
    total: int
    failed: int
    errors: int
    unchecked: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_note: str | None = Field(
        default=None, description="How many of the run's calls had no price (left out of cost_usd), and what to do.")
    latency_ms: dict[str, float | None]
    per_model: dict[str, dict[str, Any]]
    failing: list[FailingCase]


class GetRunResult(BaseModel):
    run_id: str
    kind: str
    test: RunResult | None = None
    arena: dict[str, Any] | None = Field(default=None, description="For an arena run: win rates, ratings with 95% CIs, order-flip rate, votes.")


class ArenaResult(BaseModel):
    run_id: str
    suite: str
    models: list[str]
    headline: dict[str, str] = Field(description="Models by win rate as the arena prints them: 'a vs b vs c' and '45% / 35% / 20%'.")
    overall: dict[str, dict[str, Any]] = Field(description="Per model: wins, losses, ties, matches, win_rate = (wins + 0.5 ties) / matches, share.")
    pairs: dict[str, dict[str, Any]]
    ratings: dict[str, dict[str, Any]] = Field(description="Bradley-Terry rating per model with a bootstrap 95% interval.")
    order_flip_rate: float | None = Field(description="Share of matches where the judge's verdict changed with the order: position bias.")
    separated: bool = Field(default=True, description="False when the judge's verdicts do not rank the models (it preferred a position, or every match tied): then there are no intervals.")
    no_separation: str | None = Field(default=None, description="Why the models are not separated, when they are not.")
    matches: int
    errors: int
    human: dict[str, Any]


class EvaluateResult(BaseModel):
    score: int | None = Field(description="0-100 (a deploy needs 80 by default); null when any case could not be scored: then there is no score, not a 0.")
    unscored: int = Field(default=0, description="Cases the judge could not score.")
    unscored_reason: str | None = Field(default=None, description="Why, when any case went unscored.")
    pass_rate: float
    run: RunResult


class VoteResult(BaseModel):
    match_id: int
    voter: str
    winner: str


class BisectResult(BaseModel):
    culprit: int | None = Field(description="The first bad version; null when nothing broke in the range.")
    parent: int | None = Field(description="The good version just before it.")
    tested: list[int] = Field(description="The versions looked at, in order (a finished run counts, at no cost).")
    model_calls: int = Field(description="Calls that reached a model (cache hits are free).")
    diff: str = Field(description="The culprit against its parent, unified.")
    reason: str | None = Field(description="The judge's (or assertion's) reason on the culprit.")
    text: str
    found: bool
    suite: str = ""
    name: str = ""


def run_result(run: dict[str, Any], min_pass: float | None = None) -> RunResult:
    from promstack.evals.score import case_threshold, run_verdict

    s = run["summary"]
    passed = verdict = None
    if min_pass is not None:
        found = run_verdict(run, min_pass)
        passed, verdict = found["passed"], found["text"]
    return RunResult(
        run_id=run["id"], kind=run["kind"], status=run["status"], suite=run["suite_name"],
        prompt_id=run["prompt_id"], prompt_version=run["prompt_version"], models=run["models"], passed=passed,
        verdict=verdict, threshold=case_threshold(run), unscored=s.get("unscored", 0),
        unscored_reason=s.get("unscored_reason"), criteria=s.get("criteria") or [],
        pass_rate=s["pass_rate"], score=s["score"], results=s["results"], total=s["total"], failed=s["failed"],
        errors=s["errors"], unchecked=s["unchecked"], input_tokens=s["input_tokens"],
        output_tokens=s["output_tokens"], cost_usd=s["cost_usd"], unpriced_note=s.get("unpriced_note"),
        latency_ms=s["latency_ms"],
        per_model=s.get("models", {}), failing=[FailingCase.model_validate(f) for f in s["failing"]],
    )


def arena_result(run: dict[str, Any]) -> ArenaResult:
    a = run["arena"]
    return ArenaResult(
        run_id=run["id"], suite=run["suite_name"], models=a["models"], headline=a["headline"],
        overall=a["overall"], pairs=a["pairs"], ratings=a["ratings"], order_flip_rate=a["order_flip_rate"],
        separated=a.get("separated", True), no_separation=a.get("no_separation"),
        matches=a["matches"], errors=a["errors"], human=a["human"],
    )



# ---- monitoring ----------------------------------------------------------------------------


class MetricsResult(BaseModel):
    model_config = ConfigDict(extra="allow")  # the engine's whole result: a remote CLI prints it as local

    since: str | None
    until: str
    by: list[str]
    percentile_method: str = Field(description="How p50/p95/p99 are computed: nearest rank over served calls.")
    groups: list[dict[str, Any]] = Field(description="One row per group: requests, error_rate, latency_p50/p95/p99_ms, tokens, cost_usd (own_cost_usd + evaluation_cost_usd), unpriced_calls, cache_hit_rate.")
    unpriced_calls: int = Field(default=0, description="Calls whose model has no price: their cost is unknown and not in cost_usd.")
    unpriced_models: list[str] = Field(default_factory=list)
    unpriced: str | None = Field(default=None, description="The sentence to show when unpriced_calls > 0.")


class AlertsResult(BaseModel):
    model_config = ConfigDict(extra="allow")  # the engine's whole result: a remote CLI prints it as local

    checked_at: str
    firing: bool = Field(description="True while any alert is firing.")
    rules: int
    results: list[dict[str, Any]] = Field(description="Each rule and scope: value, threshold, firing, change ('fired', 'resolved' or null).")


class CostReportResult(BaseModel):
    model_config = ConfigDict(extra="allow")  # the engine's whole result: a remote CLI prints it as local

    since: str | None
    until: str
    by: list[str] = Field(default_factory=list, description="The groupings, in order.")
    total_usd: float
    previous_total_usd: float = Field(description="Spend in the window of the same length just before.")
    change: float | None = Field(description="Relative change against the previous window (0.25 is +25%).")
    trend: str
    groups: list[dict[str, Any]] = Field(description="The prompts' own spend per group (test, arena and judge calls are in evaluation).")
    daily: list[dict[str, Any]]
    unpriced_calls: int = Field(default=0, description="Own calls whose model has no price: their cost is unknown and not in total_usd.")
    unpriced_models: list[str] = Field(default_factory=list)
    unpriced: str | None = Field(default=None, description="The sentence to show when unpriced_calls > 0.")
    evaluation: dict[str, Any] = Field(default_factory=dict, description="Evaluation spend (test runs, arena, judge), apart from total_usd: cost_usd, requests, by_kind, unpriced.")


class RecommendModelResult(BaseModel):
    prompt_id: int
    prompt_name: str
    basis: str
    current_model: str | None
    recommended: str | None
    best_score: float
    monthly_saving_usd: float | None
    candidates: list[dict[str, Any]]
    advice: str | None = None
    unpriced: str | None = Field(default=None, description="Models that could not be priced, and how to add a price.")


class SuggestShorterResult(BaseModel):
    prompt_id: int
    from_version: int
    candidate: str
    tokens_before: int
    tokens_after: int
    version: int | None = Field(description="The rewrite's version number, on its own branch; null if rejected.")
    branch: str | None
    verdict: str = Field(description="'adoptable', 'rejected' or 'untested'; adopting is a merge_branch a person asks for.")
    reason: str | None = None
    runs: dict[str, Any] | None = None




def deploy_result(found: dict[str, Any], words: Callable[[Any], str]) -> DeployResult:
    """A deployment as the faces return it, its sentences in `words` (a face's words for steps)."""
    from promstack import deploy

    return DeployResult(
        status=found["status"], deployment_id=found.get("id"), prompt_id=found["prompt_id"], name=found["name"],
        environment=found["environment"], from_version=found.get("from_version"),
        to_version=found.get("to_version"), forced=bool(found.get("forced")),
        checks=[GateCheck.model_validate({**c, "detail": deploy.check_text(c, found["prompt_id"], words)})
                for c in found.get("gate", {}).get("checks", [])], message=deploy.describe(found, words),
    )
