"""The deploy lock: one deploy of a prompt at a time, across processes.

`acquire` takes the prompt's lock row with the deployment's row in one transaction; the gate
runs while it is held, and a second deploy of the same prompt is refused (DeployBusy) with who
holds it. A lock whose process is gone, or older than LOCK_TIMEOUT, is stale: the next deploy
takes it over and marks the dead deploy abandoned.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import PromStackError

if TYPE_CHECKING:
    from ..client import Client

LOCK_TIMEOUT = timedelta(hours=2)


class DeployBusy(PromStackError):
    """Another deploy of the same prompt holds its lock."""


def lock_is_stale(lock: dict[str, Any]) -> bool:
    if lock["host"] == socket.gethostname():
        try:
            os.kill(int(lock["pid"]), 0)
        except ProcessLookupError:
            return True  # its process is gone: it will never finish
        except (PermissionError, OSError):
            pass
    try:
        taken = datetime.fromisoformat(lock["acquired_at"].replace("Z", "+00:00"))
    except ValueError:
        return True
    return datetime.now(UTC) - taken > LOCK_TIMEOUT


def acquire(client: Client, prompt: dict[str, Any], **deployment: Any) -> int:
    """One transaction: refuse if a live deploy holds the prompt, else a deployment row and the lock."""
    db = client.store.db
    with write(db):
        lock = rows.lock_holder(db, prompt["id"])
        if lock is not None and lock["pid"] != os.getpid() and not lock_is_stale(lock):
            raise DeployBusy(
                f"prompt {prompt['name']!r} is being deployed by {lock['holder']} (deployment "
                f"{lock['deployment_id']}, started {lock['acquired_at']}); wait for it to finish and try again"
            )
        if lock is not None and lock["pid"] == os.getpid() and lock["host"] == socket.gethostname():
            raise DeployBusy(f"prompt {prompt['name']!r} is already being deployed by this process "
                             f"(deployment {lock['deployment_id']})")
        if lock is not None and lock["deployment_id"] is not None:  # a stale lock: its deploy died mid-gate
            stale = rows.deployment(db, lock["deployment_id"])
            if stale is not None and stale["status"] == "running":
                rows.update_deployment(db, stale["id"], status="abandoned", decided_at=now(),
                                       error=f"its process ({lock['host']} pid {lock['pid']}) ended before it finished")
        deployment_id = rows.insert_deployment(db, prompt_id=prompt["id"], requested_by=client.actor, **deployment)
        rows.take_lock(db, prompt["id"], client.actor, deployment_id)
    return deployment_id


def still_holding(client: Client, prompt_id: int, deployment_id: int) -> None:
    lock = rows.lock_holder(client.store.db, prompt_id)
    if lock is None or lock["deployment_id"] != deployment_id:
        raise DeployBusy(f"deployment {deployment_id} lost its lock to another deploy (it was stale); "
                         "nothing was moved; run the deploy again")


def release(client: Client, prompt_id: int, deployment_id: int, **changes: Any) -> None:
    with write(client.store.db):
        rows.update_deployment(client.store.db, deployment_id, **changes)
        rows.release_lock(client.store.db, prompt_id, deployment_id)

