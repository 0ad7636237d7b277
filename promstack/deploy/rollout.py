"""Gradual rollout in production: a new version served to a growing share of users.

    promstack deploy --prompt 42 --version 4 --rollout 10    # gate, then 10% of users get v4
    promstack rollout promote --prompt 42                    # 10 -> 25 -> 50 -> 100 (then the label moves)
    promstack rollout check                                  # cron: halt any rollout whose version alerts

The label keeps pointing at the stable version until the rollout reaches 100%: callers without a
user id, and users outside the share, get the stable version. Who is inside is a hash of the user
id (promstack.deploy.resolver.bucket) with the rollout's own salt, and a share only grows, so a user who got
the new version keeps it at every step. A latency or error-rate alert on the new version's calls
halts the rollout: everyone is back on the stable version at once, recorded as a rollback. The
check runs on every `promote` and `check`, and whenever the resolver refreshes a label that has a
rollout (every few seconds in a serving process), so a bad version is pulled without anyone
watching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput, NotFound, Step

from .environments import deploy_settings, environment, forget, gated_environment, move_env_label
from .results import GateFailed
from .splits import check, check_percent, halt

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["DEFAULT_STEPS", "abort", "check", "check_all", "check_percent", "halt", "promote", "status"]

DEFAULT_STEPS = [10, 25, 50, 100]


def _steps(client: Client) -> list[float]:
    steps = deploy_settings(client).get("rollout_steps", DEFAULT_STEPS)
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("[deploy] rollout_steps must be a list of percentages, e.g. [10, 25, 50, 100]")
    return sorted(check_percent(s) for s in steps)


def _active(client: Client, prompt: Any, env: str | None) -> tuple[dict[str, Any], str, dict[str, Any]]:
    row = client.store.prompts.prompt_row(prompt)
    target = environment(client, env).name
    split = rows.active_split(client.store.db, row["id"], target)
    if split is None or split["kind"] != "rollout":
        raise NotFound(f"no rollout of {row['name']!r} is running in {target}; start one with ",
                       Step("start_rollout", prompt=row["id"], environment=target))
    return row, target, split


def check_all(client: Client) -> list[dict[str, Any]]:
    """Every active rollout, checked: what `promstack rollout check` runs from cron."""
    out = []
    for split in rows.splits(client.store.db, kind="rollout", limit=1000):
        if split["status"] != "active":
            continue
        prompt = client.store.prompts.prompt_row(split["prompt_id"], archived_ok=True)
        after = check(client, prompt, split)
        out.append({**after, "name": prompt["name"], "halted": after["status"] == "halted"})
    return out


def _check_cleared(client: Client, prompt: dict[str, Any], env: str, split: dict[str, Any]) -> None:
    """Before the label moves at 100%: the rollout's deployment passed the gate (or was forced
    with a reason). A rollout starts only through `deploy`, so this holds unless its record does not."""
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


def promote(client: Client, prompt: Any, *, env: str | None = None, to: float | None = None) -> dict[str, Any]:
    """Step the share up (to the next of [deploy] rollout_steps, or `to`); at 100% the label moves
    to the new version and the rollout completes. An alert on the new version halts it instead."""
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


def abort(client: Client, prompt: Any, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
    row, _target, split = _active(client, prompt, env)
    return {**halt(client, row, split, reason or f"aborted by {client.actor}"), "name": row["name"], "halted": True}


def status(client: Client, prompt: Any, *, env: str | None = None) -> dict[str, Any]:
    row, _target, split = _active(client, prompt, env)
    return {**split, "name": row["name"]}
