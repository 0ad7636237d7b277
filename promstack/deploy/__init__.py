"""Deployment: environments and their gates, locks, rollbacks, A/B tests, rollouts, the label resolver.

`pipeline` moves a version through the environments (`deploy`, `approve`, `reject`, `rollback`);
`gates` keeps a gated environment's label from moving any other way; `rollout` and `abtest` split
traffic between two versions and depend on `pipeline`, never the other way round.
"""

from .pipeline import (
    DeployBusy,
    DeployPending,
    Environment,
    GateFailed,
    approve,
    bucket,
    deploy,
    environment,
    environments,
    forget,
    get_deployment,
    list_deployments,
    reject,
    resolver_for,
    rollback,
    status,
)

__all__ = [
    "DeployBusy", "DeployPending", "Environment", "GateFailed", "approve", "bucket", "deploy",
    "environment", "environments", "forget", "get_deployment", "list_deployments", "reject",
    "resolver_for", "rollback", "status",
]
