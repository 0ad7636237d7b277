"""The pipeline: a version moves through the environments by `deploy`, `approve`, `reject`, `rollback`.

A prompt moves development -> test -> staging -> production (the guide's flow); each environment
is a label with its rules (promstack.deploy.environments). `deploy()` holds the prompt's lock row
(promstack.deploy.locks) while the gate runs (promstack.deploy.checks), then moves the label, its
history, the deployment row and the audit rows in one write transaction: a label is never
half-moved. `--force` skips the gate and says so in the audit log. With `rollout=` the gate
passes into a rollout's split instead of the label (promstack.deploy.splits; promoting it is
promstack.deploy.rollout). `rollback()` puts the environment back on the version it had before
its last deployment, in one step.

A gated environment (one with a check or an approval) is reached only through its gate: every
other way a label moves (`Client.set_label` and the faces over it, an A/B test's winner, a
rollout reaching 100%, an import) either runs the gate, checks the gate was passed, or is
forced with a reason (promstack.deploy.gates: `move_label`, the store's `label_guard`, `import_store`).
How a deployment reads, for every face, is promstack.deploy.results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput, NotFound, Step

from .checks import run_gate
from .environments import (
    CHECKS,
    Environment,
    environment,
    environments,
    forget,
    label_version,
    move_env_label,
)
from .locks import DeployBusy, acquire, lock_is_stale, release, still_holding
from .splits import check_percent, end_split, start_split

if TYPE_CHECKING:
    from ..client import Client


def _check_skip(skip: tuple[str, ...] | list[str], force: bool, env: Environment) -> tuple[str, ...]:
    unknown = [s for s in skip if s not in CHECKS]
    if unknown:
        raise InvalidInput(f"there is no gate check {unknown[0]!r}; the checks are {', '.join(CHECKS)}")
    if skip and not force:
        raise InvalidInput(f"skipping the {', '.join(skip)} check needs ", Step.arg("force", example=True),
                           " (a forced deploy is audited)")
    return tuple(env.checks) if force and not skip else tuple(skip)


def deploy(
    client: Client,
    prompt: Any,
    *,
    version: int | None = None,
    env: str | None = None,
    force: bool = False,
    skip: tuple[str, ...] | list[str] = (),
    reason: str | None = None,
    rollout: float | None = None,
    rerun: bool = False,
    progress: Callable[..., Any] | None = None,
    warn: Callable[[str], Any] | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """Run `env`'s gate for `version` (default: the head of main) and move the label if it passes.
    `rerun` runs the suite afresh rather than reuse a passing run of the last day; `kind` names
    the way in for the deployment list ('label' when a label was set through the gate).

    Returns the deployment: status 'deployed', 'refused' (the gate said no), 'pending_approval',
    'rolling_out' (with `rollout`, a percentage of users) or 'unchanged'. Raises DeployBusy when
    another deploy of the prompt is running, NotFound/InvalidInput for bad arguments."""
    target_env = environment(client, env)
    row = client.store.prompts.prompt_row(prompt)
    found = client.store.prompts.get(row["id"], version=version)
    skipped = _check_skip(tuple(skip), force, target_env)
    if rollout is not None:
        rollout = check_percent(rollout)
    current = label_version(client, row["id"], target_env.name)
    if current == found.version and rollout is None:
        return {"status": "unchanged", "prompt_id": row["id"], "name": row["name"],
                "environment": target_env.name, "from_version": current, "to_version": current,
                "message": f"{target_env.name} already serves {row['name']} v{current}; nothing to do"}
    if rollout is not None and current is None:
        raise InvalidInput(f"{target_env.name} serves no version of {row['name']!r} yet: deploy one "
                           "first; a rollout shifts users from the current version to the new one")
    if rollout is not None and current == found.version:
        raise InvalidInput(f"{target_env.name} already serves v{current}; roll out another version")
    why = reason or f"deploy v{found.version} to {target_env.name}"
    deployment_id = acquire(
        client, row, environment=target_env.name, kind=kind or ("rollout" if rollout is not None else "deploy"),
        from_version=current, to_version=found.version, status="running", forced=bool(skipped) and force,
        skipped=list(skipped), reason=reason,
    )
    try:
        gate = run_gate(client, row, found.version, target_env, skip=skipped, progress=progress, warn=warn,
                        rerun=rerun)
        if rollout is not None:
            gate["rollout"] = rollout
        db = client.store.db
        if not gate["passed"]:
            with write(db):
                rows.update_deployment(db, deployment_id, status="refused", gate=gate, decided_at=now())
                rows.release_lock(db, row["id"], deployment_id)
                audit.record(db, client.actor, "deploy_refused", prompt_id=row["id"], version=found.version,
                             detail={"deployment": deployment_id, "environment": target_env.name,
                                     "failed": [c["check"] for c in gate["checks"] if not c["passed"]]})
            return get_deployment(client, deployment_id)
        if target_env.approval:
            with write(db):
                rows.update_deployment(db, deployment_id, status="pending_approval", gate=gate)
                rows.release_lock(db, row["id"], deployment_id)
                audit.record(db, client.actor, "deploy_requested", prompt_id=row["id"], version=found.version,
                             detail={"deployment": deployment_id, "environment": target_env.name,
                                     "forced": bool(skipped), "reason": why})
            return get_deployment(client, deployment_id)
        with write(db):
            still_holding(client, row["id"], deployment_id)
            _finish(client, row, deployment_id, target_env.name, current, found.version, gate, why,
                    skipped, rollout, approved_by=None)
            rows.release_lock(db, row["id"], deployment_id)
    except BaseException as exc:
        # release_lock only removes our own row: a lock taken over by another deploy stays.
        with contextlib.suppress(Exception):  # the original error matters more than a failed clean-up
            release(client, row["id"], deployment_id, status="failed", decided_at=now(),
                     error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    forget(client)
    return get_deployment(client, deployment_id)


def _finish(client: Client, prompt: dict[str, Any], deployment_id: int, env: str, current: int | None,
            version: int, gate: dict[str, Any], why: str, skipped: tuple[str, ...] | list[str],
            rollout: float | None, approved_by: str | None) -> None:
    """Inside one write transaction: the label moves (or the rollout starts), the deployment row
    says so, and the audit log has the who/what/why."""
    db = client.store.db
    if current != label_version(client, prompt["id"], env):
        raise DeployBusy(f"{env} of {prompt['name']!r} moved to v{label_version(client, prompt['id'], env)} while "
                         f"the gate ran (it was v{current}); nothing was moved; deploy again")
    detail = {"deployment": deployment_id, "environment": env, "from": current, "to": version,
              "reason": why, **({"approved_by": approved_by} if approved_by else {})}
    if rollout is not None:
        split_id = start_split(client, prompt, env, current, version, rollout, deployment_id)
        rows.update_deployment(db, deployment_id, status="rolling_out", gate=gate, decided_at=now(),
                               decided_by=approved_by)
        audit.record(db, client.actor, "rollout_start", prompt_id=prompt["id"], version=version,
                     detail={**detail, "percent": rollout, "split": split_id})
        return
    end_split(client, prompt["id"], env, "superseded", f"deployment {deployment_id} moved {env} to v{version}")
    move_env_label(client, prompt, env, version, why, cleared=f"deployment {deployment_id}")
    rows.update_deployment(db, deployment_id, status="deployed", gate=gate, decided_at=now(),
                           decided_by=approved_by)
    if skipped:
        audit.record(db, client.actor, "deploy_forced", prompt_id=prompt["id"], version=version,
                     detail={**detail, "skipped": list(skipped)})
    audit.record(db, client.actor, "deploy", prompt_id=prompt["id"], version=version, detail=detail)


def approve(client: Client, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
    """Complete a deployment that waits for approval: the label moves now (or its rollout starts)."""
    found = get_deployment(client, deployment_id)
    if found["status"] != "pending_approval":
        raise InvalidInput(f"deployment {deployment_id} is {found['status']}, not waiting for approval")
    env = environment(client, found["environment"])
    if found["requested_by"] == client.actor and not env.allow_self_approval:
        raise InvalidInput(
            f"{client.actor} asked for deployment {deployment_id}; someone else must approve it "
            f"(or set allow_self_approval = true in [environments.{env.name}])"
        )
    row = client.store.prompts.prompt_row(found["prompt_id"])
    db = client.store.db
    with write(db):
        lock = rows.lock_holder(db, row["id"])
        if lock is not None and not lock_is_stale(lock):
            raise DeployBusy(f"prompt {row['name']!r} is being deployed by {lock['holder']} (deployment "
                             f"{lock['deployment_id']}); approve when it has finished")
        why = reason or found["reason"] or f"deploy v{found['to_version']} to {env.name}"
        _finish(client, row, deployment_id, env.name, found["from_version"], found["to_version"], found["gate"],
                why, found["skipped"], found["gate"].get("rollout"), approved_by=client.actor)
        audit.record(db, client.actor, "deploy_approve", prompt_id=row["id"], version=found["to_version"],
                     detail={"deployment": deployment_id, "environment": env.name, "reason": why})
    forget(client)
    return get_deployment(client, deployment_id)


def reject(client: Client, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
    found = get_deployment(client, deployment_id)
    if found["status"] != "pending_approval":
        raise InvalidInput(f"deployment {deployment_id} is {found['status']}, not waiting for approval")
    db = client.store.db
    with write(db):
        rows.update_deployment(db, deployment_id, status="rejected", decided_by=client.actor, decided_at=now(),
                               error=reason)
        audit.record(db, client.actor, "deploy_reject", prompt_id=found["prompt_id"], version=found["to_version"],
                     detail={"deployment": deployment_id, "reason": reason})
    return get_deployment(client, deployment_id)


def rollback(client: Client, prompt: Any, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """Put `env` back on the version it served before its last deployment, in one step (no gate:
    this is the way out). A rollout or A/B test running there ends."""
    target_env = environment(client, env)
    row = client.store.prompts.prompt_row(prompt)
    db = client.store.db
    with write(db):
        current = label_version(client, row["id"], target_env.name)
        split = end_split(client, row["id"], target_env.name, "halted", "rolled back")
        if split is not None and split["detail"].get("deployment") is not None:  # a rollout's deployment
            rows.update_deployment(db, split["detail"]["deployment"], status="rolled_back")
        last = next((d for d in rows.deployments(db, prompt_id=row["id"], environment=target_env.name, limit=200)
                     if d["status"] == "deployed" and d["kind"] != "rollback"
                     and d["to_version"] == current and d["from_version"] is not None), None)
        if last is not None:
            previous = last["from_version"]
        else:
            moved = db.execute(
                "SELECT from_version FROM label_history WHERE prompt_id = ? AND label = ? ORDER BY id DESC LIMIT 1",
                [row["id"], target_env.name],
            ).fetchone()
            previous = moved[0] if moved else None
        if current is None:
            raise NotFound(f"{target_env.name} serves no version of {row['name']!r}; nothing to roll back")
        if previous is None or previous == current:
            if split is not None:  # a rollout or A/B test was the change: ending it is the rollback
                previous = current
            else:
                raise InvalidInput(f"{target_env.name} of {row['name']!r} has served only v{current}; "
                                   "there is no earlier version to go back to")
        why = reason or f"roll back {target_env.name} to v{previous}"
        deployment_id = rows.insert_deployment(
            db, prompt_id=row["id"], environment=target_env.name, kind="rollback", from_version=current,
            to_version=previous, status="deployed", reason=why, requested_by=client.actor, decided_at=now(),
        )
        if last is not None:
            rows.update_deployment(db, last["id"], status="rolled_back")
        if previous != current:
            move_env_label(client, row, target_env.name, previous, why, cleared=f"rollback {deployment_id}")
        audit.record(db, client.actor, "deploy_rollback", prompt_id=row["id"], version=previous,
                     detail={"deployment": deployment_id, "environment": target_env.name, "from": current,
                             "to": previous, "reason": why, **({"split": split["id"]} if split else {})})
    forget(client)
    return get_deployment(client, deployment_id)


def get_deployment(client: Client, deployment_id: int) -> dict[str, Any]:
    found = rows.deployment(client.store.db, int(deployment_id))
    if found is None:
        raise NotFound(f"there is no deployment {deployment_id}; ", Step("list_deployments"), " shows them")
    found["name"] = client.store.prompts.prompt_row(found["prompt_id"], archived_ok=True)["name"]
    return found


def list_deployments(client: Client, prompt: Any = None, *, env: str | None = None, status: str | None = None,
                     limit: int = 20) -> list[dict[str, Any]]:
    pid = client.store.prompts.prompt_id(prompt) if prompt is not None else None
    return rows.deployments(client.store.db, prompt_id=pid, environment=env, status=status, limit=limit)


def status(client: Client, prompt: Any) -> dict[str, Any]:
    """Which version each environment serves, and any split running there."""
    row = client.store.prompts.prompt_row(prompt)
    out = []
    for env in environments(client):
        split = rows.active_split(client.store.db, row["id"], env.name)
        out.append({"environment": env.name, "version": label_version(client, row["id"], env.name),
                    "checks": env.checks, "approval": env.approval, "split": split})
    return {"prompt_id": row["id"], "name": row["name"], "environments": out}
