"""Deploys (through the environment's gate; force with a reason; approvals), deployments, A/B
tests and rollouts: each a few lines over promstack.deploy, as the deploy_prompt tool and the CLI.

A refused deploy is 409 with the deployment (its checks) in the error; one waiting for a person's
approval is 202 with status pending_approval."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from promstack import schemas as s

from . import Caller, needs, ref
from .prompts import Body, P

router = APIRouter(tags=["deploy"])
Env = Annotated[str | None, Field(default=None, max_length=100, description="Default: production.")]
Reason = Annotated[str | None, Field(default=None, max_length=2000, description="Kept in the audit log.")]


class Deploy(Body):
    version: s.Version | None = Field(default=None, description="Default: main's head.")
    environment: Env
    rollback: bool = Field(default=False, description="Back to the environment's previous version instead.")
    force: bool = Field(default=False, description="Skip the gate; needs a reason; audited.")
    reason: Reason
    skip: list[Literal["previous", "tests", "score", "alerts"]] = Field(default_factory=list, description="Gate checks force skips; default all.")
    rerun: bool = Field(default=False, description="Rerun the gate's tests, not reuse a passing run.")


class Decision(Body):
    reason: Reason


class StartAB(Body):
    a: s.Version | None = Field(default=None, description="Default: what the environment serves.")
    b: s.Version
    split: float = Field(default=50, gt=0, lt=100, description="Percent of users who get B.")
    environment: Env
    force: bool = False
    reason: Reason
    rerun: bool = False


class StopAB(Body):
    winner: Literal["a", "b"] | None = None
    environment: Env
    force: bool = False
    reason: Reason


class StartRollout(Body):
    version: s.Version
    percent: float = Field(default=10, gt=0, le=100, description="Share of users who get the version first.")
    environment: Env
    reason: Reason


class Promote(Body):
    environment: Env
    to: float | None = Field(default=None, gt=0, le=100, description="Default: the next step.")


class Abort(Body):
    environment: Env
    reason: Reason


def _result(found: dict[str, Any]) -> Any:
    from promstack.web import web_words

    result = s.deploy_result(found, web_words)
    if result.status == "refused":
        return JSONResponse({"error": {"type": "GateFailed", "message": result.message,
                                       "deployment": result.model_dump(mode="json")}}, status_code=409)
    if result.status == "pending_approval":
        return JSONResponse(result.model_dump(mode="json"), status_code=202)
    return result


@router.post(P + "/deploy", response_model=s.DeployResult)
def deploy_prompt(prompt: str, body: Deploy, caller: Caller = needs("deploy_prompt")) -> Any:
    """Deploy a version to an environment (default production) through its gate (tests, judge
    score, alerts), or roll the environment back."""
    from promstack import deploy

    with caller.client() as client:
        if body.rollback:
            found = deploy.rollback(client, ref(prompt), env=body.environment, reason=body.reason)
        else:
            found = deploy.deploy(client, ref(prompt), version=body.version, env=body.environment, force=body.force,
                                  skip=tuple(body.skip), reason=body.reason, rerun=body.rerun)
    return _result(found)


@router.get(P + "/deployments")
def deploy_status(prompt: str, caller: Caller = needs("list_deployments")) -> dict[str, Any]:
    """Which version each environment serves, and its latest deployments."""
    from promstack import deploy

    return caller.call(deploy.status, ref(prompt))


@router.get("/deployments")
def list_deployments(prompt: str | None = None, environment: str | None = None, status: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 20,
                     caller: Caller = needs("list_deployments")) -> list[dict[str, Any]]:
    """Deployments, newest first (filter by prompt, environment, status such as pending_approval)."""
    from promstack import deploy

    return caller.call(deploy.list_deployments, None if prompt is None else ref(prompt), env=environment, status=status, limit=limit)


@router.get("/deployments/{deployment_id}")
def get_deployment(deployment_id: int, caller: Caller = needs("list_deployments")) -> dict[str, Any]:
    """One deployment: its gate's checks, who asked, who approved."""
    from promstack import deploy

    return caller.call(deploy.get_deployment, deployment_id)


@router.post("/deployments/{deployment_id}/approve", response_model=s.DeployResult)
def approve_deployment(deployment_id: int, body: Decision, caller: Caller = needs("approve_deployment")) -> Any:
    """Approve a deployment waiting for approval (not your own): the label moves."""
    from promstack import deploy

    with caller.client() as client:
        return _result(deploy.approve(client, deployment_id, reason=body.reason))


@router.post("/deployments/{deployment_id}/reject", response_model=s.DeployResult)
def reject_deployment(deployment_id: int, body: Decision, caller: Caller = needs("reject_deployment")) -> Any:
    """Reject a deployment waiting for approval: nothing moves."""
    from promstack import deploy

    with caller.client() as client:
        return _result(deploy.reject(client, deployment_id, reason=body.reason))


@router.post(P + "/ab", status_code=201)
def start_ab_test(prompt: str, body: StartAB, caller: Caller = needs("start_ab_test")) -> dict[str, Any]:
    """Serve B to `split`% of users (A to the rest) under the environment's label; in a gated
    environment each new arm passes the gate first."""
    from promstack.deploy import abtest

    return caller.call(abtest.start, ref(prompt), a=body.a, b=body.b, split=body.split, env=body.environment, reason=body.reason, force=body.force, rerun=body.rerun)


@router.get(P + "/ab")
def ab_report(prompt: str, environment: str | None = None, evaluate: bool = False,
              caller: Caller = needs("ab_report")) -> dict[str, Any]:
    """The running (else latest) A/B test compared arm by arm: latency, errors, cost, judge score.
    `evaluate`: an arm with no finished run of its suite is tested first (the runner role: it
    calls the models)."""
    from promstack import access
    from promstack.deploy import abtest

    if evaluate:
        caller.require(access.need("evaluate_prompt"))
    return caller.call(abtest.report, ref(prompt), env=environment, evaluate=evaluate)


@router.post(P + "/ab/stop")
def stop_ab_test(prompt: str, body: StopAB, caller: Caller = needs("stop_ab_test")) -> dict[str, Any]:
    """End the A/B test; with a winner the environment's label moves to it."""
    from promstack.deploy import abtest

    return caller.call(abtest.stop, ref(prompt), winner=body.winner, env=body.environment, reason=body.reason, force=body.force)


@router.post(P + "/rollout", status_code=201)
def start_rollout(prompt: str, body: StartRollout, caller: Caller = needs("start_rollout")) -> Any:
    """Deploy a version to a share of users first (after the gate); promote it step by step."""
    from promstack import deploy

    with caller.client() as client:
        return _result(deploy.deploy(client, ref(prompt), version=body.version, env=body.environment,
                                     rollout=body.percent, reason=body.reason))


@router.get(P + "/rollout")
def rollout_status(prompt: str, environment: str | None = None, caller: Caller = needs("rollout_status")) -> dict[str, Any]:
    """The running rollout: its version, share and steps."""
    from promstack.deploy import rollout

    return caller.call(rollout.status, ref(prompt), env=environment)


@router.post(P + "/rollout/promote")
def promote_rollout(prompt: str, body: Promote, caller: Caller = needs("promote_rollout")) -> dict[str, Any]:
    """Step the share up; at 100% the label moves. An alert on the new version halts it instead."""
    from promstack.deploy import rollout

    return caller.call(rollout.promote, ref(prompt), env=body.environment, to=body.to)


@router.post("/rollouts/check")
def check_rollouts(caller: Caller = needs("promote_rollout")) -> list[dict[str, Any]]:
    """Check every running rollout; halt (and roll back) those whose new version alerts."""
    from promstack.deploy import rollout

    return caller.call(rollout.check_all)


@router.post(P + "/rollout/abort")
def abort_rollout(prompt: str, body: Abort, caller: Caller = needs("abort_rollout")) -> dict[str, Any]:
    """Everyone back on the stable version at once."""
    from promstack.deploy import rollout

    return caller.call(rollout.abort, ref(prompt), env=body.environment, reason=body.reason)
