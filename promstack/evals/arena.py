"""The model arena: every pair of models answers every case; the judge picks the better answer blind.

For each case and each pair (x, y), the judge sees the two answers as "A" and "B" with the model
names hidden, twice: once in each order, the first order chosen at random. The two verdicts,
mapped back to models, must agree for a win; when they disagree the match is a tie, and how
often that happens (the order-flip rate) says how much the judge's preferences are position
bias. Results: win rates per pair and per model as (wins + 0.5 ties) / matches, the share of
all wins (the guide's "45% / 35% / 20%"), and Bradley-Terry ratings fitted by maximum likelihood
with bootstrap 95% intervals. People's votes on the same matches are reported beside the judge's.

The judge is never, by default, one of the models it compares (a model prefers its own answers):
when no judge model is named, the suite's judge model, PROMSTACK_JUDGE_MODEL or the prompt's own
model is used, the first of them that is not competing. And a leaderboard only separates models
when the judge does: when more than FLIP_LIMIT of the judged matches flipped with the order (the
judge prefers a position, not an answer) or every match tied, the report says "no separation"
and gives no intervals, rather than intervals of zero width around noise.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

from store.clock import now
from store.errors import InvalidInput, Step
from store.evals import EvalStore

from .catalog import get_suite, resolve_prompt
from .gateway import Gateway, GatewayError, LiveGateway
from .judge import Judge, JudgeConfig, ensure_judge_prompts, load_judge
from .plans import check_columns, check_not_running
from .pool import run_pool
from .ratings import BOOTSTRAP, ratings, win_rates
from .runner import Progress, check_positive

if TYPE_CHECKING:
    from ..client import Client

FLIP_LIMIT = 0.5  # more than half the judged matches changed with the order: position, not answers


async def arun_arena(
    client: Client,
    *,
    suite: str,
    models: list[str],
    prompt: Any = None,
    version: int | None = None,
    label: str | None = None,
    criteria: Any = None,
    judge_model: str | None = None,
    concurrency: int = 10,
    seed: int | None = None,
    resume: str | None = None,
    gateway: Gateway | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    if client.remote:  # the arena runs on the server: its models, its keys
        if not resume:
            models = arena_models(models)
            check_positive("concurrency", concurrency)
        return await asyncio.to_thread(client.arena, suite=suite, models=models, prompt=prompt, version=version,
                                       label=label, criteria=criteria, judge_model=judge_model,
                                       concurrency=concurrency, seed=seed, resume=resume, progress=progress)
    evals = client.evals
    if resume:
        run = evals.run(resume)
        if run["kind"] != "arena":
            raise InvalidInput(f"run {resume} is a {run['kind']} run, not an arena run")
        check_not_running(run)
        found = evals.suite(run["suite_name"])
        cfg = run["config"]
        judge_cfg = load_judge(cfg["judge"] and {k: cfg["judge"][k] for k in ("criteria", "scoring", "model", "threshold", "retries")})
        judge_cfg.prompt_version = cfg["judge"]["prompt_version"]
        judge_cfg.pair_prompt_version = cfg["judge"]["pair_prompt_version"]
        models, seed = run["models"], cfg["seed"]
        concurrency = cfg.get("concurrency", concurrency) if concurrency is None else concurrency
    else:
        models = arena_models(models)
        check_positive("concurrency", concurrency)
        found = get_suite(client, suite)
        prompt_id = resolve_prompt(client, found, prompt)
        version_found = client.get_prompt(prompt_id, version=version, label=label)
        check_columns(evals, found, version_found)  # before the first call, as a test run does
        judge_doc = criteria if criteria is not None else found["config"].get("judge")
        judge_cfg = load_judge(judge_doc, model=judge_model or default_judge_model(
            models, found["config"].get("judge_model"), os.environ.get("PROMSTACK_JUDGE_MODEL"),
            version_found.model_config.get("model")))
        judge_cfg.prompt_version, judge_cfg.pair_prompt_version = ensure_judge_prompts(client)
        seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        run = evals.create_run(
            kind="arena", suite=found, prompt_id=version_found.prompt_id, prompt_version=version_found.version,
            models=models, repeat=1, config={"seed": seed, "judge": judge_cfg.to_dict(), "concurrency": concurrency},
            judge_key=judge_cfg.key(), total=found["case_count"],
        )
    live = gateway or LiveGateway(client)
    arena = _Arena(evals, live, run, found, judge_cfg, seed, concurrency, progress)
    evals.reopen_run(run["id"])
    status = "interrupted"
    try:
        await arena.execute()
        status = "done"
    finally:
        if gateway is None:
            await live.aclose()
        evals.set_run_status(run["id"], status, arena_report(evals, run["id"]) if status == "done" else None)
    return arena_view(evals, evals.run(run["id"]))


def arena_view(evals: EvalStore, run: dict[str, Any]) -> dict[str, Any]:
    """An arena run with its report under "arena": the one fitted when it finished (with the
    votes cast since), or, while it runs or after an interruption, one fitted now."""
    if run["status"] == "done" and run["summary"]:
        return {**run, "arena": {**run["summary"], "human": human_report(evals, run["id"], run["summary"])}}
    return {**run, "arena": arena_report(evals, run["id"])}


def default_judge_model(models: list[str], *candidates: str | None) -> str:
    """The first candidate judge that is not one of the contestants."""
    for candidate in candidates:
        if candidate and candidate not in models:
            return candidate
    named = ", ".join(dict.fromkeys(c for c in candidates if c)) or "none configured"
    raise InvalidInput(
        f"the arena needs a judge model that is not one of the models it compares (the defaults: {named}); "
        "name one, e.g. a stronger model from another provider"
    )


def run_arena(client: Client, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(arun_arena(client, **kwargs))


class _Arena:
    def __init__(self, evals: EvalStore, gateway: Gateway, run: dict[str, Any], suite: dict[str, Any],
                 judge_cfg: JudgeConfig, seed: int, concurrency: int, progress: Progress | None) -> None:
        self.evals = evals
        self.gateway = gateway
        self.run = run
        self.suite = suite
        self.models = run["models"]
        self.seed = seed
        self.judge = Judge(gateway, judge_cfg, run_id=run["id"])
        self.calls = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.progress = progress

    async def execute(self) -> None:
        done = self.evals.done_match_cases(self.run["id"])
        total = self.suite["case_count"]
        count = len(done)
        if self.progress:
            self.progress(count, total, "")

        async def play(case: dict[str, Any]) -> None:
            nonlocal count
            rows = await self.play(case)
            self.evals.add_matches(rows)  # all pairs of a case at once: a case is done or not
            count += 1
            if self.progress:
                self.progress(count, total, "")

        pending = (case for case in self.evals.iter_cases(self.suite["id"]) if case["case_key"] not in done)
        await run_pool(pending, play, concurrency=self.concurrency, backlog=2 * self.concurrency)

    async def _answer(self, case: dict[str, Any], model: str) -> tuple[str | None, str | None]:
        variables = {**(case.get("variables") or {})}
        if case.get("input") is not None:
            variables.setdefault("input", case["input"])
        async with self.calls:
            try:
                reply = await self.gateway.complete(
                    prompt=self.run["prompt_id"], version=self.run["prompt_version"], variables=variables,
                    model=model, run_id=self.run["id"],
                )
            except GatewayError as exc:
                return None, str(exc)
        return reply.output, None

    async def _compare(self, case: dict[str, Any], first: str, second: str) -> tuple[str | None, str, str | None]:
        async with self.calls:
            verdict, reason, error, _usage = await self.judge.compare(
                input=case.get("input"), answer_a=first, answer_b=second,
                cache_extra=f"arena|{case['case_key']}",
            )
        return verdict, reason, error

    async def play(self, case: dict[str, Any]) -> list[dict[str, Any]]:
        answers = await asyncio.gather(*(self._answer(case, m) for m in self.models))
        by_model = dict(zip(self.models, answers, strict=True))
        pairs = list(combinations(self.models, 2))
        return list(await asyncio.gather(*(self._match(case, a, b, by_model) for a, b in pairs)))

    async def _match(self, case: dict[str, Any], a: str, b: str, answers: dict[str, Any]) -> dict[str, Any]:
        out_a, err_a = answers[a]
        out_b, err_b = answers[b]
        row: dict[str, Any] = {
            "run_id": self.run["id"], "case_key": case["case_key"], "case_idx": case["idx"],
            "model_a": a, "model_b": b, "output_a": out_a, "output_b": out_b, "at": now(),
        }
        if err_a or err_b:
            row.update(error=f"{a if err_a else b} failed to answer: {err_a or err_b}", winner=None)
            return row
        # The order shown first is random (seeded per run, case and pair, so a resume is stable).
        digest = hashlib.sha256(f"{self.seed}|{case['case_key']}|{a}|{b}".encode()).digest()
        row["first"] = "ab" if digest[0] % 2 == 0 else "ba"
        pair = await judge_both_orders(lambda first, second: self._compare(case, first, second), out_a, out_b)
        if pair.error:
            row.update(error=f"judge error: {pair.error}", winner=None)
            return row
        row["verdict_ab"], row["verdict_ba"] = pair.verdict_ab, pair.verdict_ba
        row["flipped"] = int(pair.flipped)
        row["winner"] = {"a": a, "b": b, "tie": "tie"}[pair.winner]
        row["reason"] = pair.reason
        return row


@dataclass
class PairVerdict:
    """The judge's verdict on two answers a and b, asked in both orders. `verdict_ab` and
    `verdict_ba` are each order's pick in terms of a and b; `winner` is their pick when they
    agree, else "tie" (`flipped`: the judge went with the position, not the answer)."""

    winner: str  # "a" | "b" | "tie" ("" on error)
    verdict_ab: str = ""
    verdict_ba: str = ""
    flipped: bool = False
    reason: str = ""
    error: str | None = None


Compare = Callable[[str, str], Awaitable[tuple[str | None, str, str | None]]]


async def judge_both_orders(compare: Compare, out_a: str, out_b: str) -> PairVerdict:
    """Ask `compare(first, second)` -> (A | B | tie, reason, error) with a shown first and with b
    shown first, and map both answers back to a and b (the arena's and the behaviour diff's rule)."""
    (v_ab, reason_ab, e_ab), (v_ba, reason_ba, e_ba) = await asyncio.gather(compare(out_a, out_b),
                                                                          compare(out_b, out_a))
    if e_ab or e_ba:
        return PairVerdict("", error=e_ab or e_ba)
    # With a shown as A, "A" means a; with b shown as A, "A" means b.
    first_pick = {"A": "a", "B": "b", "tie": "tie"}[v_ab]
    second_pick = {"A": "b", "B": "a", "tie": "tie"}[v_ba]
    flipped = first_pick != second_pick
    return PairVerdict(
        winner=first_pick if not flipped else "tie", verdict_ab=first_pick, verdict_ba=second_pick, flipped=flipped,
        reason=reason_ab if not flipped else f"the orders disagreed: {reason_ab} / {reason_ba}",
    )


def arena_report(evals: EvalStore, run_id: str, *, resamples: int = BOOTSTRAP) -> dict[str, Any]:
    run = evals.run(run_id)
    models = run["models"]
    rows = evals.matches(run_id)
    valid = [r for r in rows if r["winner"] is not None]
    judged = [(r["model_a"], r["model_b"], r["winner"]) for r in valid]
    pairs, overall = win_rates(models, judged)
    flips = sum(1 for r in valid if r["flipped"])
    order = sorted(models, key=lambda m: -(overall[m]["win_rate"] or 0))
    flip_rate = round(flips / len(valid), 4) if valid else None
    why = no_separation(flip_rate, judged)
    fitted = ratings(models, judged, resamples=resamples, seed=int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16))
    if why:
        for entry in fitted.values():
            entry["ci_low"] = entry["ci_high"] = None  # no interval: there is nothing to bound
    report = {
        "models": models,
        "matches": len(rows),
        "judged": len(valid),
        "errors": len(rows) - len(valid),
        "order_flip_rate": flip_rate,
        "separated": not why,
        "no_separation": why,
        "pairs": pairs,
        "overall": overall,
        "ratings": fitted,
        "headline": {"models": " vs ".join(order),
                     "win_rates": " / ".join(f"{100 * (overall[m]['win_rate'] or 0):.0f}%" for m in order),
                     "shares": " / ".join(f"{100 * (overall[m]['share'] or 0):.0f}%" for m in order)},
        "error_examples": [r["error"] for r in rows if r["error"]][:5],
    }
    report["human"] = human_report(evals, run_id, report, rows)
    return report


def no_separation(flip_rate: float | None, judged: list[tuple[str, str, str]]) -> str | None:
    """Why the judge's verdicts do not separate the models (one sentence, said by every face),
    or None when they do."""
    if not judged:
        why = "no match was judged"
    elif flip_rate is not None and flip_rate > FLIP_LIMIT:
        why = (f"the judge changed its verdict when the order was swapped in {flip_rate:.0%} of the matches "
               f"(over {FLIP_LIMIT:.0%}): it prefers a position, not an answer")
    elif all(w == "tie" for _, _, w in judged):
        why = "every match was a tie"
    else:
        return None
    return f"no separation: {why}; the ratings do not rank the models"


def human_report(evals: EvalStore, run_id: str, report: dict[str, Any],
                 rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """People's votes on the run's matches, as win rates, and how often they agree with the judge."""
    models = report["models"]
    votes = evals.votes(run_id)
    human_pairs, human_overall = win_rates(models, [(v["model_a"], v["model_b"], v["winner"]) for v in votes])
    rows = rows if rows is not None else evals.matches(run_id)
    by_match = {r["id"]: r["winner"] for r in rows if r["winner"] is not None}
    agree = [v for v in votes if v["match_id"] in by_match]
    agreement = (round(sum(1 for v in agree if v["winner"] == by_match[v["match_id"]]) / len(agree), 4)
                 if agree else None)
    return {"votes": len(votes), "pairs": human_pairs, "overall": human_overall,
            "agreement_with_judge": agreement}


def arena_models(models: list[str]) -> list[str]:
    """The models an arena compares: two or more, none twice."""
    models = [m.strip() for m in models if m and m.strip()]
    if len(models) < 2:
        raise InvalidInput("the arena needs at least two models: give ",
                           Step.arg("models", of="arena", example=["gpt-4o", "claude-3-5-sonnet"]))
    if len(set(models)) != len(models):
        raise InvalidInput("a model is named twice in ", Step.arg("models", of="arena"))
    return models


def record_vote(client: Client, match_id: int, winner: str, *, voter: str | None = None) -> dict[str, Any]:
    if client.remote:
        return client.record_vote(match_id, winner, voter=voter)
    return client.evals.record_vote(match_id, winner, voter=voter)
