"""Traffic splits as the pipeline and the resolver touch them: a rollout's split starts inside
its deployment's transaction, any split (A/B test or rollout) ends when its environment is
deployed or rolled back, and a rollout whose new version alerts is halted (everyone back on
the stable version, recorded as a rollback).

This module sits under `pipeline` and `resolver` so that neither reaches up into `rollout` or
`abtest`: those two drive splits through here and through `pipeline`, never the other way round.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput

from .checks import version_alerts
from .environments import deploy_settings, forget

if TYPE_CHECKING:
    from ..client import Client


def check_percent(value: Any) -> float:
    """A rollout share: a percentage of users above 0 and up to 100."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise InvalidInput(f"a rollout share is a percentage of users above 0 and up to 100, not {value!r}")
    return float(value)


def start_split(client: Client, prompt: dict[str, Any], env: str, stable: int, new: int, percent: float,
                deployment_id: int) -> int:
    """Inside the deploy's transaction: the rollout's split row (replacing any split there)."""
    db = client.store.db
    found = rows.active_split(db, prompt["id"], env)
    if found is not None:
        rows.update_split(db, found["id"], status="superseded", ended_at=now(), ended_by=client.actor,
                          outcome=f"deployment {deployment_id} started a rollout")
    return rows.insert_split(
        db, prompt_id=prompt["id"], environment=env, kind="rollout", version_a=stable, version_b=new,
        percent=percent, salt=secrets.token_hex(8), status="active", started_by=client.actor,
        detail={"deployment": deployment_id, "steps": [{"percent": percent, "at": now(), "by": client.actor}]},
    )


def end_split(client: Client, prompt_id: int, env: str, status: str, outcome: str) -> dict[str, Any] | None:
    """Inside the caller's transaction: end the split running in `env`, if any; returns it."""
    split = rows.active_split(client.store.db, prompt_id, env)
    if split is not None:
        rows.update_split(client.store.db, split["id"], status=status, ended_at=now(),
                          ended_by=client.actor, outcome=outcome)
    return split


def halt(client: Client, prompt: dict[str, Any], split: dict[str, Any], why: str) -> dict[str, Any]:
    """Everyone back on the stable version: the split ends, its deployment is rolled back."""
    db = client.store.db
    with write(db):
        current = rows.split(db, split["id"])
        if current is None or current["status"] != "active":
            return current or split  # someone else halted or finished it first
        rows.update_split(db, split["id"], status="halted", ended_at=now(), ended_by=client.actor, outcome=why)
        deployment_id = split["detail"].get("deployment")
        if deployment_id is not None:
            rows.update_deployment(db, deployment_id, status="rolled_back", error=why)
        rows.insert_deployment(
            db, prompt_id=prompt["id"], environment=split["environment"], kind="rollback",
            from_version=split["version_b"], to_version=split["version_a"], status="deployed", reason=why,
            requested_by=client.actor, decided_at=now(),
        )
        audit.record(db, client.actor, "rollout_halt", prompt_id=prompt["id"], version=split["version_b"],
                     detail={"split": split["id"], "environment": split["environment"], "reason": why,
                             "back_to": split["version_a"], "percent": split["percent"]})
    forget(client)
    return rows.split(db, split["id"])  # type: ignore[return-value]


def check(client: Client, prompt: dict[str, Any], split: dict[str, Any]) -> dict[str, Any]:
    """Halt rollout `split` if an alert fires on its new version; returns the split as it is now."""
    firing = version_alerts(client, prompt, split["version_b"], split["environment"])
    if firing:
        return halt(client, prompt, split, "alert firing on the new version: " + "; ".join(r["message"] for r in firing))
    return split


def auto_check(client: Client, prompt: dict[str, Any], split: dict[str, Any]) -> dict[str, Any] | None:
    """The resolver's check of a rollout ([deploy] rollout_auto_halt, on by default): the split
    to serve, or None when it was just halted."""
    if deploy_settings(client).get("rollout_auto_halt", True) is False:
        return split
    after = check(client, prompt, split)
    return after if after.get("status") == "active" else None
