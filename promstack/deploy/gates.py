"""Every way a gated environment's label moves, other than `deploy` itself.

An environment with a check or an approval is *gated* (promstack.deploy.Environment.gated): its
label moves only through its gate. `move_label` is how every face sets a label (`Client.set_label`,
`promstack label set`, MCP `set_label`, the dashboard's form): on a gated environment it is a
deployment of kind 'label', through the gate, or forced with a reason. `label_guard` is the
store's side of the rule (`Client` installs it as `PromptStore.label_guard`): a move of a gated
label that the engine has not cleared is refused, whoever calls the store. `import_store` takes
a whole-store document's gated labels only forced, with a reason. A/B tests and rollouts check
the gate in promstack.deploy.abtest and promstack.deploy.rollout; `deploy --rollback` and `label rollback`
go back to a version the environment already served, so they need no gate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput

from .environments import Environment, forget, gated_environment, need_reason
from .pipeline import deploy
from .results import raise_for

if TYPE_CHECKING:
    from ..client import Client


def move_label(client: Client, prompt: Any, label: str, version: Any, *, force: bool = False,
               reason: str | None = None, actor: str | None = None, rerun: bool = False,
               progress: Callable[..., Any] | None = None,
               warn: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Point `label` at `version` the way every face does (`Client.set_label`, `label set`, MCP
    `set_label`, the dashboard's form). A gated environment's label moves through its gate (a
    deployment of kind 'label'), or with `force` and a reason (a forced deployment, audited);
    any other label moves at once. Returns {"status": "moved" | "unchanged" | "refused" |
    "pending_approval", "move": LabelMove | None, "deployment": dict | None}."""
    from store.models import LabelMove

    env = gated_environment(client, label) if isinstance(label, str) else None
    if env is None:
        move = client.store.prompts.set_label(prompt, label, version, reason=reason, actor=actor)
        forget(client)
        return {"status": "moved", "move": move, "deployment": None}
    if version is None:
        raise InvalidInput(f"say which version {label} should serve")
    if force:
        reason = need_reason(label, reason)
    row = client.store.prompts.prompt_row(prompt)
    target = client.store.prompts.get(row["id"], version=version)  # NotFound before anything runs
    found = deploy(client, row["id"], version=target.version, env=env.name, force=force, reason=reason,
                   rerun=rerun, progress=progress, warn=warn, kind="label")
    status = found["status"]
    if status == "unchanged":
        at = client.store.db.execute("SELECT updated_at, updated_by FROM labels WHERE prompt_id = ? AND name = ?",
                                     [row["id"], env.name]).fetchone()
        move = LabelMove(row["id"], env.name, target.version, target.version, at[1], reason, at[0])
        return {"status": "unchanged", "move": move, "deployment": None}
    if status == "deployed":
        return {"status": "moved", "move": client.store.prompts.label_history(row["id"], env.name)[0],
                "deployment": found}
    return {"status": status, "move": None, "deployment": found}


def set_label(client: Client, prompt: Any, label: str, version: Any, **options: Any) -> Any:
    """`move_label` for callers that want the move or an exception: GateFailed when the gate
    refused (its reasons, the run it used), DeployPending when it waits for approval
    (promstack.deploy.results.raise_for)."""
    result = move_label(client, prompt, label, version, **options)
    if result["deployment"] is not None:
        raise_for(result["deployment"])
    return result["move"]


def label_guard(client: Client) -> Callable[..., None]:
    """The store's label guard for `client` (PromptStore.label_guard): a move the engine has not
    cleared may not point a gated environment's label at a version. Removing a label puts no
    version in front of anyone, so it stays allowed (and recorded)."""

    def guard(prompt: dict[str, Any], label: str, from_version: int | None, to_version: int | None,
              how: str) -> None:
        if to_version is None:
            return
        env = gated_environment(client, label)
        if env is None:
            return
        gate = ", ".join(env.checks + (["approval"] if env.approval else []))
        if how == "import":
            raise InvalidInput(
                f"the document points {label} of {prompt['name']!r} at v{to_version}, and {label} is a gated "
                f"environment ({gate}); import it forced with a reason to take its labels as they are "
                "(recorded as forced deployments), or remove those labels from the document; nothing was imported"
            )
        raise InvalidInput(
            f"{label} is a gated environment ({gate}): its label moves only through the gate (deploy "
            f"v{to_version} of {prompt['name']!r} there), or forced with a reason; nothing moved"
        )

    return guard


def import_store(client: Client, document: Any, *, force: bool = False, reason: str | None = None) -> dict[str, int]:
    """Import a whole-store document. Labels of gated environments in it are refused (nothing is
    imported) unless `force` with a reason: then each is recorded as a forced deployment of kind
    'import', with a `deploy_forced` audit row, in the import's transaction."""
    from store import transfer

    if not force:
        return transfer.import_(client.store.db, document, actor=client.actor,
                                label_guard=client.store.prompts.label_guard,
                                config_check=client.store.prompts.config_check)
    why = reason if reason is not None and str(reason).strip() else None
    if why is None:
        raise InvalidInput("a forced import needs a reason; it is kept with each forced deployment and in "
                           "the audit log")
    db = client.store.db
    taken: list[tuple[dict[str, Any], Environment, int]] = []

    def collect(prompt: dict[str, Any], label: str, _from: int | None, to_version: int | None, _how: str) -> None:
        env = gated_environment(client, label)
        if env is not None and to_version is not None:
            taken.append((dict(prompt), env, to_version))

    with write(db):  # the import and its forced deployments commit together (import_ nests)
        counts = transfer.import_(db, document, actor=client.actor, label_guard=collect,
                                  config_check=client.store.prompts.config_check)
        for prompt, env, version in taken:
            deployment_id = rows.insert_deployment(
                db, prompt_id=prompt["id"], environment=env.name, kind="import", from_version=None,
                to_version=version, status="deployed", forced=True, skipped=env.checks, reason=why,
                requested_by=client.actor, decided_at=now(), gate={"passed": False, "imported": True, "checks": []},
            )
            audit.record(db, client.actor, "deploy_forced", prompt_id=prompt["id"], version=version,
                         detail={"deployment": deployment_id, "environment": env.name, "from": None,
                                 "to": version, "reason": why, "skipped": env.checks, "via": "import"})
    forget(client)
    return counts
