"""The deploy tool: a few lines over promstack.deploy (the same gate, lock and audit as the CLI)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from promstack.schemas import DeployResult, GateCheck, deploy_result  # noqa: F401

from .engine import Call
from .models import FORCE, RERUN, Args, Options, PromptRef, RefName, Version
from .registry import mcp_words, tool


class DeployOptions(Options):
    skip: list[Literal["previous", "tests", "score", "alerts"]] = Field(
        default_factory=list, description="Gate checks force skips; default all.")
    rerun: bool = Field(default=False, description=RERUN)


class DeployPromptArgs(Args):
    FOLDED = frozenset(DeployOptions.model_fields)

    prompt: PromptRef
    version: Version | None = None
    environment: RefName | None = Field(default=None, description="development, test, staging or production (default).")
    rollback: bool = Field(default=False, description="Back to the environment's previous version instead.")
    force: bool = Field(default=False, description=FORCE)
    reason: str | None = Field(default=None, max_length=2000, description="Kept in the audit log.")
    options: DeployOptions = Field(default_factory=DeployOptions)


@tool(title="Deploy a prompt", long=True, open_world=True)  # the gate runs the suite on models
def deploy_prompt(call: Call, args: DeployPromptArgs) -> tuple[DeployResult, str]:
    """Deploy a prompt version to an environment (default production) through its gate (tests,
    judge score, alerts), or roll it back."""

    if args.rollback:
        found = call.client.deploys.rollback(args.prompt, env=args.environment, reason=args.reason)
    else:
        found = call.client.deploys.deploy(args.prompt, version=args.version, env=args.environment,
                                           force=args.force, skip=tuple(args.options.skip), reason=args.reason,
                                           rerun=args.options.rerun)
    result = deploy_result(found, mcp_words)
    return result, result.message
