"""run_prompt: one stored prompt through the gateway (rendered, guarded, cached, logged)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .engine import Call
from .models import Args, PromptRef, RefName, Version
from .registry import tool


class RunPromptArgs(Args):
    prompt: PromptRef
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Values for the template's {{ variables }}, e.g. {\"input\": \"환불하고 싶어요\"}."
    )
    version: Version | None = Field(default=None, description="A version number; omit for the head of main.")
    label: RefName | None = Field(default=None, description="A label such as 'production'; omit for the head of main.")
    branch: RefName | None = Field(default=None, description="A branch name; omit for main.")
    model: str | None = Field(default=None, max_length=200, description="Another model than the prompt's own, e.g. 'gpt-4o-mini'.")
    user_id: str | None = Field(default=None, max_length=200, description="The end user the call is made for (logged; picks A/B arms).")


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


def _guard_note(guards: dict[str, Any]) -> str:
    fired = [name for name, found in guards.items() if found and (not isinstance(found, dict) or any(found.values()))]
    return f"; guards: {', '.join(fired)}" if fired else ""


@tool(title="Run a prompt", long=True)
def run_prompt(call: Call, args: RunPromptArgs) -> tuple[RunPromptResult, str]:
    """Run a stored prompt version with variable values through its model and return the model's
    answer; use it to try a prompt or compare versions. Returns the output with tokens, latency,
    cost, whether it came from the cache, and what the PII and injection guards did."""
    result = call.client.run(
        args.prompt, args.variables, version=args.version, label=args.label, branch=args.branch,
        model=args.model, user_id=args.user_id,
    )
    found = RunPromptResult.model_validate(result.to_dict())
    cached = " (cached)" if found.cache_hit else ""
    text = (
        f"{result.prompt_name} v{found.prompt_version} on {found.model}{cached}: "
        f"{found.input_tokens}+{found.output_tokens} tokens, {found.latency_ms:.0f} ms, "
        f"{'cost unknown' if found.cost_usd is None else f'${found.cost_usd:.6f}'}{_guard_note(found.guards)}"
        f"{'; ' + found.unpriced if found.unpriced else ''}\n\n{found.output}"
    )
    return found, text
