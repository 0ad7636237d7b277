"""The deploy tool: a few lines over promstack.deploy (the same gate, lock and audit as the CLI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .engine import Call
from .models import FORCE, RERUN, Args, Options, PromptRef, RefName, Version
from .registry import tool


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


def _detail(check: dict[str, Any], prompt_id: Any) -> str:
    """A check's sentence in this face's words: the order rule names deploy_prompt, not a CLI line."""
    if check.get("check") == "previous" and not check.get("passed"):
        return (f"v{check['version']} has not passed {check['environment']}; deploy it there first "
                f"(deploy_prompt with prompt {prompt_id}, version {check['version']}, environment "
                f"{check['environment']!r})")
    return check["detail"]


def refusal(d: dict[str, Any]) -> str:
    """promstack.deploy.gates.refusal, with each check in this face's words."""
    from promstack.deploy import gates

    checks = [{**c, "detail": _detail(c, d["prompt_id"])} for c in d.get("gate", {}).get("checks", [])]
    return gates.refusal({**d, "gate": {**d.get("gate", {}), "checks": checks}})


def _message(d: dict[str, Any]) -> str:
    what = f"{d['name']} v{d['to_version']} to {d['environment']}"
    status = d["status"]
    if status == "unchanged":
        return d["message"]
    if status == "deployed" and d.get("kind") == "rollback":
        return f"Rolled back {d['environment']}: v{d['from_version']} -> v{d['to_version']}"
    if status == "deployed":
        return f"Deployed {what} (was v{d['from_version']})" + (" with the gate skipped" if d["forced"] else "")
    if status == "refused":
        failed = "; ".join(_detail(c, d["prompt_id"]) for c in d["gate"].get("checks", []) if not c["passed"])
        return f"Refused: {what} did not pass the gate ({failed}); nothing moved"
    if status == "pending_approval":
        return f"Deployment {d['id']} of {what} passed the gate and waits for a person: promstack deploy approve {d['id']}"
    return f"Deployment {d['id']} of {what}: {status}"


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
    text = _message(found)
    result = DeployResult(
        status=found["status"], deployment_id=found.get("id"), prompt_id=found["prompt_id"], name=found["name"],
        environment=found["environment"], from_version=found.get("from_version"),
        to_version=found.get("to_version"), forced=bool(found.get("forced")),
        checks=[GateCheck.model_validate({**c, "detail": _detail(c, found["prompt_id"])})
                for c in found.get("gate", {}).get("checks", [])], message=text,
    )
    return result, text
