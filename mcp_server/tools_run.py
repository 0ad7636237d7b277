"""run_prompt: one stored prompt through the gateway (rendered, guarded, cached, logged)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from promstack.schemas import RunPromptResult

from .engine import Call
from .models import Args, PromptRef, RefName, Version
from .registry import tool


class RunPromptArgs(Args):
    prompt: PromptRef
    variables: dict[str, Any] = Field(default_factory=dict, description="Values for the template's variables.")
    version: Version | None = None
    label: RefName | None = None
    branch: RefName | None = None
    model: str | None = Field(default=None, max_length=200, description="Instead of the prompt's own model.")
    user_id: str | None = Field(default=None, max_length=200, description="The end user (logged; picks A/B arms).")


def _guard_note(guards: dict[str, Any]) -> str:
    fired = [name for name, found in guards.items() if found and (not isinstance(found, dict) or any(found.values()))]
    return f"; guards: {', '.join(fired)}" if fired else ""


@tool(title="Run a prompt", long=True, open_world=True)  # calls the model
def run_prompt(call: Call, args: RunPromptArgs) -> tuple[RunPromptResult, str]:
    """Run a prompt with variable values through the logged gateway; returns the answer, tokens,
    cost and guard findings."""
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
