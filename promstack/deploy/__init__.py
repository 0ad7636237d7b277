"""Deployment: environments and their gates, locks, rollbacks, A/B tests, rollouts, the label resolver.

One module per idea, each depending only on those above it in this list:
`environments` (the ordered labels and their rules, where a prompt stands), `results` (how a
deployment reads, for every face; GateFailed, DeployPending), `locks` (one deploy of a prompt
at a time), `checks` (the gate's checks, `run_gate`), `splits` (traffic splits as the pipeline
and the resolver touch them), `resolver` (label -> version per user), `pipeline` (`deploy`,
`approve`, `reject`, `rollback`), `gates` (every other way a gated label moves), `rollout`
and `abtest` (splitting traffic between two versions), and on top `facade`: `Deploys`, what the
faces call as `client.deploys` (a remote client has its own, over REST, with the same methods).
"""

from .environments import Environment, environment, environments, forget, label_role, need_reason
from .locks import DeployBusy
from .pipeline import approve, deploy, get_deployment, list_deployments, reject, rollback, status
from .resolver import Resolution, Resolver, bucket
from .results import DeployPending, GateFailed, check_text, describe, raise_for, refusal

__all__ = [
    "DeployBusy", "DeployPending", "Environment", "GateFailed", "Resolution", "Resolver", "approve", "bucket",
    "check_text", "deploy", "describe", "environment", "environments", "forget", "get_deployment",
    "label_role", "list_deployments", "need_reason", "raise_for", "refusal", "reject", "rollback", "status",
]
