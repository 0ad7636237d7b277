"""A behaviour diff: what two versions of a prompt *do* differently, case by case on a suite.

Both versions run on the suite (a finished run of either is reused; new runs are stored and go
through the gateway's cache). For each case the judge compares the two outputs blind, in both
orders, as the arena does (`arena.judge_both_orders`): the orders must agree for a winner, else
the case is the same. Identical outputs are the same without asking the judge. Cases are listed
by how much they changed (`margin`, 0..1): how firmly the judge preferred one side, or how far
the case's own score moved, whichever is more.

Nothing runs when the suite cannot feed both versions: a variable no column provides is one
sentence before the first call (`plans.check_columns`).
"""

from __future__ import annotations

import asyncio
import difflib
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput

from .arena import judge_both_orders
from .catalog import get_suite, suite_for_prompt
from .gateway import LiveGateway
from .judge import Judge, ensure_judge_prompts, load_judge
from .plans import check_columns
from .reuse import CountingGateway, version_run

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["BehaviourCase", "BehaviourDiff", "abehaviour_diff", "behaviour_diff", "summary_text"]

INPUT_CLIP = 200
# How much each order's pick moves the verdict: both orders for one side is a margin of 1.
_PULL = {"a": -1.0, "b": 1.0, "tie": 0.0}


@dataclass
class BehaviourCase:
    case: str
    input: str
    output_a: str
    output_b: str
    winner: str  # "a" | "b" | "tie"
    reason: str
    margin: float
    idx: int = 0
    verdict_ab: str = ""  # the judge's pick with A's output shown first, in terms of a/b
    verdict_ba: str = ""  # ... with B's output shown first
    score_a: float | None = None
    score_b: float | None = None


@dataclass
class BehaviourDiff:
    suite: str
    from_version: int
    to_version: int
    a_better: int
    b_better: int
    same: int
    verdict: str  # "A better" | "B better" | "same"
    text: str
    cases: list[BehaviourCase] = field(default_factory=list)
    cost_usd: float | None = None
    prompt_id: int = 0
    name: str = ""
    model_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def abehaviour_diff(client: Client, prompt: Any, from_version: int, to_version: int | None = None, *,
                          suite: str | None = None, judge_model: str | None = None, concurrency: int = 10,
                          gateway: Any = None) -> dict[str, Any]:
    """Run versions A (`from_version`) and B (`to_version`, default main's head) on the suite
    (default: the prompt's own) and judge each case's two outputs in both orders."""
    if client.remote:  # the server runs it: its models, its keys, its runs
        return await asyncio.to_thread(client.behaviour_diff, prompt, from_version, to_version, suite=suite,
                                       judge_model=judge_model)
    prompt_id = client.store.prompts.prompt_id(prompt)
    a = client.get_prompt(prompt_id, version=from_version)
    b = client.get_prompt(prompt_id) if to_version is None else client.get_prompt(prompt_id, version=to_version)
    found = get_suite(client, suite) if suite else suite_for_prompt(client, prompt_id)
    if not found["case_count"]:
        raise InvalidInput(f"suite {found['name']!r} has no cases: there is no behaviour to compare")
    for version in (a, b):  # both before any call: nothing is billed for a suite that fits one side only
        check_columns(client.evals, found, version)
    judge_cfg = load_judge(found["config"].get("judge"), model=judge_model or found["config"].get("judge_model")
                           or os.environ.get("PROMSTACK_JUDGE_MODEL") or b.model_config.get("model"))
    judge_cfg.prompt_version, judge_cfg.pair_prompt_version = ensure_judge_prompts(client)
    own = gateway is None
    inner = LiveGateway(client) if own else gateway
    counting = CountingGateway(inner)
    try:
        if a.version == b.version:
            run_a = run_b = await version_run(client, found, prompt_id, a.version, counting)
        else:  # both at once: each run's cases are already concurrent, the two runs overlap too
            run_a, run_b = await asyncio.gather(version_run(client, found, prompt_id, a.version, counting),
                                                version_run(client, found, prompt_id, b.version, counting))
        judge = Judge(counting, judge_cfg)
        outputs_a, outputs_b = _outputs(client, run_a), _outputs(client, run_b)
        limit = asyncio.Semaphore(concurrency)

        async def one(case: dict[str, Any]) -> BehaviourCase:
            async with limit:
                return await _compare_case(judge, case, outputs_a.get(case["case_key"]),
                                           outputs_b.get(case["case_key"]), a.version, b.version)

        cases = await asyncio.gather(*(one(c) for c in client.evals.iter_cases(found["id"])))
    finally:
        if own:
            await inner.aclose()
    cases = sorted(cases, key=lambda c: (-c.margin, -_changed(c.output_a, c.output_b), c.idx))
    counts = {w: sum(1 for c in cases if c.winner == w) for w in ("a", "b", "tie")}
    verdict = "A better" if counts["a"] > counts["b"] else "B better" if counts["b"] > counts["a"] else "same"
    result = BehaviourDiff(
        suite=found["name"], from_version=a.version, to_version=b.version, a_better=counts["a"],
        b_better=counts["b"], same=counts["tie"], verdict=verdict, text="", cases=list(cases),
        cost_usd=round(counting.cost_usd, 6), prompt_id=prompt_id, name=a.name, model_calls=counting.calls,
    )
    result.text = summary_text(result)
    return result.to_dict()


def behaviour_diff(client: Client, prompt: Any, from_version: int, to_version: int | None = None,
                   **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(abehaviour_diff(client, prompt, from_version, to_version, **kwargs))


def summary_text(diff: BehaviourDiff | dict[str, Any]) -> str:
    """The one-line summary every face shows."""
    d = diff if isinstance(diff, dict) else asdict(diff)
    a, b = f"v{d['from_version']}", f"v{d['to_version']}"
    head = {"A better": f"A ({a}) is better", "B better": f"B ({b}) is better",
            "same": "A and B behave the same overall"}[d["verdict"]]
    total = d["a_better"] + d["b_better"] + d["same"]
    return (f"{head} on suite {d['suite']!r}: {b} better in {d['b_better']}, {a} better in {d['a_better']}, "
            f"the same in {d['same']} of {total} case(s)")


def _outputs(client: Client, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each case's result on the run's first model and first repeat."""
    model = run["models"][0]
    return {r["case_key"]: r for r in client.evals.iter_results(run["id"])
            if r["model"] == model and r["repeat"] == 0}


async def _compare_case(judge: Judge, case: dict[str, Any], res_a: dict[str, Any] | None,
                        res_b: dict[str, Any] | None, va: int, vb: int) -> BehaviourCase:
    out_a = (res_a or {}).get("output")
    out_b = (res_b or {}).get("output")
    shown = BehaviourCase(
        case=case["case_key"], input=_clip(case.get("input")), output_a=out_a or "", output_b=out_b or "",
        winner="tie", reason="", margin=0.0, idx=case["idx"],
        score_a=(res_a or {}).get("score"), score_b=(res_b or {}).get("score"),
    )
    if out_a is None or out_b is None:
        side, res = (va, res_a) if out_a is None else (vb, res_b)
        shown.reason = f"v{side} gave no output: {(res or {}).get('error') or 'the case did not run'}"
        return shown
    if out_a == out_b:
        shown.reason = "both versions gave the same output"
        return shown

    async def compare(first: str, second: str) -> tuple[str | None, str, str | None]:
        verdict, reason, error, _usage = await judge.compare(
            input=case.get("input"), answer_a=first, answer_b=second, cache_extra=f"behaviour|{case['case_key']}")
        return verdict, reason, error

    pair = await judge_both_orders(compare, out_a, out_b)
    if pair.error:
        shown.reason = f"the judge could not compare them: {pair.error}"
        return shown
    shown.winner, shown.reason = pair.winner, pair.reason
    shown.verdict_ab, shown.verdict_ba = pair.verdict_ab, pair.verdict_ba
    pull = abs(_PULL[pair.verdict_ab] + _PULL[pair.verdict_ba]) / 2
    moved = (abs(shown.score_b - shown.score_a) / 100
             if shown.score_a is not None and shown.score_b is not None else 0.0)
    shown.margin = round(max(pull, moved), 4)
    return shown


def _changed(a: str, b: str) -> float:
    """How different two outputs are, 0..1 (the tie-break among equal margins)."""
    if a == b:
        return 0.0
    return 1.0 - difflib.SequenceMatcher(None, a[:4000], b[:4000], autojunk=False).quick_ratio()


def _clip(text: Any, n: int = INPUT_CLIP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= n else text[: n - 1] + "…"
