"""The deploy tool: a few lines over promstack.deploy (the same gate, lock and audit as the CLI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .engine import Call
from .models import Args, PromptRef, RefName, Version
from .registry import tool


class DeployPromptArgs(Args):
    prompt: PromptRef
    version: Version | None = Field(default=None, description="The version to deploy; omit for the head of main.")
    environment: RefName | None = Field(
        default=None, description="Where to deploy: development, test, staging or production (the default)."
    )
    rollback: bool = Field(default=False, description="Instead of deploying, put the environment back on its previous version.")
    force: bool = Field(default=False, description="Skip the gate (or the checks named in skip); recorded in the audit log. Only when a person asked for it.")
    skip: list[Literal["previous", "tests", "score", "alerts"]] = Field(default_factory=list, description="Gate checks to skip; needs force.")
    reason: str | None = Field(default=None, max_length=2000, description="Why, kept in the label's history and the audit log.")
    rerun: bool = Field(default=False, description="Run the test suite afresh instead of reusing a passing run of the same version from the last day.")


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
    """promstack.gates.refusal, with each check in this face's words."""
    from promstack import gates

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


@tool(title="Deploy a prompt", long=True)
def deploy_prompt(call: Call, args: DeployPromptArgs) -> tuple[DeployResult, str]:
    """Deploy a prompt version to an environment (production by default) through its gate: the
    test suite, the judge score and the alerts must pass before the label moves; or roll the
    environment back one step. Returns the outcome (deployed, refused with the failing checks,
    or waiting for approval)."""
    from promstack import deploy

    if args.rollback:
        found = deploy.rollback(call.client, args.prompt, env=args.environment, reason=args.reason)
    else:
        found = deploy.deploy(call.client, args.prompt, version=args.version, env=args.environment,
                              force=args.force, skip=tuple(args.skip), reason=args.reason, rerun=args.rerun)
    text = _message(found)
    result = DeployResult(
        status=found["status"], deployment_id=found.get("id"), prompt_id=found["prompt_id"], name=found["name"],
        environment=found["environment"], from_version=found.get("from_version"),
        to_version=found.get("to_version"), forced=bool(found.get("forced")),
        checks=[GateCheck.model_validate({**c, "detail": _detail(c, found["prompt_id"])})
                for c in found.get("gate", {}).get("checks", [])], message=text,
    )
    return result, text
