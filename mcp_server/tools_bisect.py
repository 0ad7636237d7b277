"""Which version broke it (`bisect_prompt`) and what two versions do differently (the behaviour
part of `diff_versions`): a few lines each over promstack.evals.bisect and .behaviour."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from promstack import access
from promstack.schemas import BehaviourDiff, BisectResult

from .engine import Call
from .models import Args, PromptRef, RefName, Version
from .registry import tool


class BisectPromptArgs(Args):
    prompt: PromptRef
    case: str | None = Field(default=None, min_length=1, max_length=500)  # its number, key or words of its input
    suite: str | None = Field(default=None, min_length=1, max_length=100)
    min_score: float | None = Field(default=None, ge=0, le=100)  # instead of case: the score a good version keeps
    good: Version | None = None
    bad: Version | None = None
    branch: RefName | None = None


@tool(title="Find the version that broke a case", long=True, open_world=True)  # the model and the judge
def bisect_prompt(call: Call, args: BisectPromptArgs) -> tuple[BisectResult, str]:
    """Find the version that broke a test case."""
    from promstack.evals.bisect import bisect

    def progress(done: int, most: int, said: str) -> None:
        call.progress(done, most, f"versions tested: {done} of at most {most} ({said})")

    found = bisect(call.client, args.prompt, case=args.case, suite=args.suite, min_score=args.min_score,
                   good=args.good, bad=args.bad, branch=args.branch, progress=progress)
    result = BisectResult.model_validate(found)
    text = result.text
    if result.reason:
        text += f"\nWhy: {result.reason}"
    if result.diff:
        text += f"\n\n{result.diff}"
    return result, text


def behaviour_of(call: Call, prompt: Any, from_version: int, to_version: int,
                 suite: str | None) -> tuple[BehaviourDiff, str]:
    """`diff_versions` with behaviour: it runs models, so it needs what running tests needs."""
    from promstack.evals.behaviour import behaviour_diff

    access.require(call.principal, "diff_behaviour")
    found = BehaviourDiff.model_validate(behaviour_diff(call.client, prompt, from_version, to_version, suite=suite))
    lines = [found.text]
    for case in found.cases[:20]:
        who = {"a": f"v{found.from_version} better", "b": f"v{found.to_version} better", "tie": "same"}[case.winner]
        lines.append(f"- case {case.idx} [{who}, changed {case.margin:.2f}] {case.input!r}: {case.reason}")
    if len(found.cases) > 20:
        lines.append(f"... and {len(found.cases) - 20} more case(s) in the structured result")
    return found, "\n".join(lines)
