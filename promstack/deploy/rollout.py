"""Gradual rollout in production: a new version served to a growing share of users.

    promstack deploy --prompt 42 --version 4 --rollout 10    # gate, then 10% of users get v4
    promstack rollout promote --prompt 42                    # 10 -> 25 -> 50 -> 100 (then the label moves)
    promstack rollout check                                  # cron: halt any rollout whose version alerts

The label keeps pointing at the stable version until the rollout reaches 100%: callers without a
user id, and users outside the share, get the stable version. Who is inside is a hash of the user
id (promstack.deploy.bucket) with the rollout's own salt, and a share only grows, so a user who got
the new version keeps it at every step. A latency or error-rate alert on the new version's calls
halts the rollout: everyone is back on the stable version at once, recorded as a rollback. The
check runs on every `promote` and `check`, and whenever the resolver refreshes a label that has a
rollout (every few seconds in a serving process), so a bad version is pulled without anyone
watching.
"""

from __future__ import annotations

import secrets
from typing import Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput, NotFound, Step

DEFAULT_STEPS = [10, 25, 50, 100]


def check_percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise InvalidInput(f"a rollout share is a percentage of users above 0 and up to 100, not {value!r}")
    return float(value)


def _steps(client: Any) -> list[float]:
    from .pipeline import deploy_settings

    steps = deploy_settings(client).get("rollout_steps", DEFAULT_STEPS)
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("[deploy] rollout_steps must be a list of percentages, e.g. [10, 25, 50, 100]")
    return sorted(check_percent(s) for s in steps)


def start_split(client: Any, prompt: dict[str, Any], env: str, stable: int, new: int, percent: float,
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


def _active(client: Any, prompt: Any, env: str | None) -> tuple[dict[str, Any], str, dict[str, Any]]:
    from .pipeline import environment, prompt_row

    row = prompt_row(client, prompt)
    target = environment(client, env).name
    split = rows.active_split(client.store.db, row["id"], target)
    if split is None or split["kind"] != "rollout":
        raise NotFound(f"no rollout of {row['name']!r} is running in {target}; start one with ",
                       Step("start_rollout", prompt=row["id"], environment=target))
    return row, target, split


def halt(client: Any, prompt: dict[str, Any], split: dict[str, Any], why: str) -> dict[str, Any]:
    """Everyone back on the stable version: the split ends, its deployment is rolled back."""
    from .pipeline import forget

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


def check(client: Any, prompt: dict[str, Any], split: dict[str, Any]) -> dict[str, Any]:
    """Halt `split` if an alert fires on its new version; returns the split as it is now."""
    from .pipeline import version_alerts

    firing = version_alerts(client, prompt, split["version_b"], split["environment"])
    if firing:
        return halt(client, prompt, split, "alert firing on the new version: " + "; ".join(r["message"] for r in firing))
    return split


def auto_check(client: Any, prompt: dict[str, Any], split: dict[str, Any]) -> dict[str, Any] | None:
    """The resolver's check: the split to serve, or None when it was just halted."""
    from .pipeline import deploy_settings

    if deploy_settings(client).get("rollout_auto_halt", True) is False:
        return split
    after = check(client, prompt, split)
    return after if after.get("status") == "active" else None


def check_all(client: Any) -> list[dict[str, Any]]:
    """Every active rollout, checked: what `promstack rollout check` runs from cron."""
    out = []
    for split in rows.splits(client.store.db, kind="rollout", limit=1000):
        if split["status"] != "active":
            continue
        prompt = client.store.prompts._prompt_row(split["prompt_id"], archived_ok=True)  # noqa: SLF001
        after = check(client, prompt, split)
        out.append({**after, "name": prompt["name"], "halted": after["status"] == "halted"})
    return out


def _check_cleared(client: Any, prompt: dict[str, Any], env: str, split: dict[str, Any]) -> None:
    """Before the label moves at 100%: the rollout's deployment passed the gate (or was forced
    with a reason). A rollout starts only through `deploy`, so this holds unless its record does not."""
    from .pipeline import GateFailed, gated_environment

    if gated_environment(client, env) is None:
        return
    found = split["detail"].get("deployment")
    deployment = rows.deployment(client.store.db, found) if found is not None else None
    if deployment is None or deployment["status"] != "rolling_out" or not (
            deployment["forced"] or deployment["gate"].get("passed")):
        raise GateFailed(
            f"rollout {split['id']} of {prompt['name']!r} has no passing {env} gate on record for "
            f"v{split['version_b']}, so it cannot take {env}'s label; abort it and deploy "
            f"v{split['version_b']} through the gate; the rollout is unchanged"
        )


def promote(client: Any, prompt: Any, *, env: str | None = None, to: float | None = None) -> dict[str, Any]:
    """Step the share up (to the next of [deploy] rollout_steps, or `to`); at 100% the label moves
    to the new version and the rollout completes. An alert on the new version halts it instead."""
    from .pipeline import forget, move_env_label

    row, target, split = _active(client, prompt, env)
    split = check(client, row, split)
    if split["status"] != "active":
        return {**split, "name": row["name"], "halted": True}
    if to is None:
        to = next((s for s in _steps(client) if s > split["percent"]), 100.0)
    to = check_percent(to)
    if to <= split["percent"]:
        raise InvalidInput(f"the rollout serves {split['percent']:g}% already; promote to more than that")
    db = client.store.db
    with write(db):
        current = rows.split(db, split["id"])
        if current is None or current["status"] != "active":
            raise InvalidInput(f"rollout {split['id']} is {current['status'] if current else 'gone'}; nothing to promote")
        steps = [*current["detail"].get("steps", []), {"percent": to, "at": now(), "by": client.actor}]
        detail = {**current["detail"], "steps": steps}
        if to >= 100:
            _check_cleared(client, row, target, current)
            why = f"rollout {split['id']} complete: v{split['version_b']} serves everyone"
            rows.update_split(db, split["id"], percent=100.0, status="completed", ended_at=now(),
                              ended_by=client.actor, outcome="completed", detail=detail)
            move_env_label(client, row, target, split["version_b"], why,
                        cleared=f"deployment {detail.get('deployment')}")
            if detail.get("deployment") is not None:
                rows.update_deployment(db, detail["deployment"], status="deployed", decided_at=now())
        else:
            rows.update_split(db, split["id"], percent=to, detail=detail)
        audit.record(db, client.actor, "rollout_promote", prompt_id=row["id"], version=split["version_b"],
                     detail={"split": split["id"], "environment": target, "from_percent": split["percent"],
                             "to_percent": to})
    forget(client)
    return {**rows.split(db, split["id"]), "name": row["name"], "halted": False}  # type: ignore[dict-item]


def abort(client: Any, prompt: Any, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
    row, _target, split = _active(client, prompt, env)
    return {**halt(client, row, split, reason or f"aborted by {client.actor}"), "name": row["name"], "halted": True}


def status(client: Any, prompt: Any, *, env: str | None = None) -> dict[str, Any]:
    row, _target, split = _active(client, prompt, env)
    return {**split, "name": row["name"]}
