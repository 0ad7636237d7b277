"""What the faces call to deploy: `client.deploys`, the same methods whichever store the client
has. This one runs the engine on the client's own store; over a team server the remote client
hands out `promstack.remote_facades.RemoteDeploys`, which sends each call to the server's REST API (its
gate decides, its labels move). So the engine modules never ask which kind of client they have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import abtest, gates, pipeline, rollout

if TYPE_CHECKING:
    from ..client import Client


class Deploys:
    """Deploys, approvals, A/B tests and rollouts on the client's store."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # ---- the pipeline ---------------------------------------------------------------------------

    def deploy(self, prompt: Any, **options: Any) -> dict[str, Any]:
        """`pipeline.deploy`: through the environment's gate (`rollout`: to a share of users first)."""
        return pipeline.deploy(self.client, prompt, **options)

    def rollback(self, prompt: Any, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return pipeline.rollback(self.client, prompt, env=env, reason=reason)

    def approve(self, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
        return pipeline.approve(self.client, deployment_id, reason=reason)

    def reject(self, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
        return pipeline.reject(self.client, deployment_id, reason=reason)

    def list_deployments(self, prompt: Any = None, *, env: str | None = None, status: str | None = None,
                         limit: int = 20) -> list[dict[str, Any]]:
        return pipeline.list_deployments(self.client, prompt, env=env, status=status, limit=limit)

    def status(self, prompt: Any) -> dict[str, Any]:
        """Which version each environment serves, and any split running there."""
        return pipeline.status(self.client, prompt)

    def move_label(self, prompt: Any, label: str, version: Any, **options: Any) -> dict[str, Any]:
        """`gates.move_label`: a gated environment's label through its gate, any other at once."""
        return gates.move_label(self.client, prompt, label, version, **options)

    # ---- A/B tests and rollouts -----------------------------------------------------------------

    def ab_start(self, prompt: Any, **options: Any) -> dict[str, Any]:
        return abtest.start(self.client, prompt, **options)

    def ab_stop(self, prompt: Any, **options: Any) -> dict[str, Any]:
        return abtest.stop(self.client, prompt, **options)

    def ab_report(self, prompt: Any, *, env: str | None = None, evaluate: bool = False) -> dict[str, Any]:
        return abtest.report(self.client, prompt, env=env, evaluate=evaluate)

    def rollout_status(self, prompt: Any, *, env: str | None = None) -> dict[str, Any]:
        return rollout.status(self.client, prompt, env=env)

    def promote(self, prompt: Any, *, env: str | None = None, to: float | None = None) -> dict[str, Any]:
        return rollout.promote(self.client, prompt, env=env, to=to)

    def abort(self, prompt: Any, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return rollout.abort(self.client, prompt, env=env, reason=reason)

    def check_rollouts(self) -> list[dict[str, Any]]:
        return rollout.check_all(self.client)
