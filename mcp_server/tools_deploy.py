"""The deploy tool: a few lines over promstack.deploy (the same gate, lock and audit as the CLI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

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


@tool(title="Deploy a prompt", long=True, open_world=True)  # the gate runs the suite on models
def deploy_prompt(call: Call, args: DeployPromptArgs) -> tuple[DeployResult, str]:
    """Deploy a prompt version to an environment (default production) through its gate (tests,
    judge score, alerts), or roll it back."""
    from promstack import deploy

    if args.rollback:
        found = deploy.rollback(call.client, args.prompt, env=args.environment, reason=args.reason)
    else:
        found = deploy.deploy(call.client, args.prompt, version=args.version, env=args.environment,
                              force=args.force, skip=tuple(args.options.skip), reason=args.reason,
                              rerun=args.options.rerun)
    text = deploy.describe(found, mcp_words)
    result = DeployResult(
        status=found["status"], deployment_id=found.get("id"), prompt_id=found["prompt_id"], name=found["name"],
        environment=found["environment"], from_version=found.get("from_version"),
        to_version=found.get("to_version"), forced=bool(found.get("forced")),
        checks=[GateCheck.model_validate({**c, "detail": deploy.check_text(c, found["prompt_id"], mcp_words)})
                for c in found.get("gate", {}).get("checks", [])], message=text,
    )
    return result, text
