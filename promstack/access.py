"""Who may do what on a team server: five roles, and the least role each operation needs.

Roles are ordered, each holding what the ones before it may do:

    viewer    read prompts, versions, runs, metrics, alerts, costs
    runner    + run prompts and tests (spends model money), judge runs, arenas, votes
    editor    + change prompts, suites, branches, and labels that are not environments
    deployer  + deploy, approve, A/B tests, rollouts: move environment labels
    admin     + tokens and configuration

`NEEDS` names every operation by the MCP tool that performs it (the REST routes, the MCP server
and the dashboard all look an operation up here), plus the operations only REST and the CLI
have. One table, so a role means the same thing from every face.
"""

from __future__ import annotations

from dataclasses import dataclass

from store.errors import PromStackError, Unauthorized

__all__ = ["LOCAL", "NEEDS", "ROLES", "Forbidden", "Principal", "Unauthorized", "label_need", "need",
           "rank", "require"]

ROLES = ("viewer", "runner", "editor", "deployer", "admin")

NEEDS: dict[str, str] = {
    # prompts and versions
    "list_prompts": "viewer",
    "get_prompt": "viewer",
    "get_history": "viewer",
    "get_checks": "viewer",  # the quick checks of saves (REST .../-/checks; MCP shows them in get_history)
    "diff_versions": "viewer",
    "create_prompt": "editor",
    "update_prompt": "editor",
    "delete_prompt": "editor",
    "restore_prompt": "editor",
    "rollback_prompt": "editor",
    "create_branch": "editor",
    "merge_branch": "editor",
    "list_branches": "viewer",
    "get_labels": "viewer",
    # a label that names an environment moves only through its gate: `set_label` on one needs
    # deployer (see `label_need`)
    "set_label": "editor",
    # running and evaluating
    "run_prompt": "runner",
    "import_test_cases": "editor",
    "list_suites": "viewer",
    "run_tests": "runner",
    "upload_run": "runner",
    "get_run": "viewer",
    "judge_run": "runner",
    "run_arena": "runner",
    "record_vote": "runner",
    "evaluate_prompt": "runner",
    # which version broke a case, and diff_versions with behaviour: both run the suite
    "bisect_prompt": "runner",
    "diff_behaviour": "runner",
    # deploying
    "deploy_prompt": "deployer",
    "approve_deployment": "deployer",
    "reject_deployment": "deployer",
    "list_deployments": "viewer",
    "start_ab_test": "deployer",
    "stop_ab_test": "deployer",
    "ab_report": "viewer",
    "start_rollout": "deployer",
    "promote_rollout": "deployer",
    "abort_rollout": "deployer",
    "rollout_status": "viewer",
    # monitoring and costs
    "get_metrics": "viewer",
    "call_log": "viewer",
    "check_alerts": "viewer",
    "cost_report": "viewer",
    "recommend_model": "runner",
    "suggest_shorter": "runner",
    # calls an app made itself, reported to the call log (OTLP spans at /v1/traces)
    "report_calls": "runner",
    # the server itself
    "manage_tokens": "admin",
    "change_config": "admin",
    "audit_log": "viewer",
    "whoami": "viewer",
}


class Forbidden(PromStackError):
    """The caller's role is below what the operation needs (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: a token's name (the actor in every row it writes) and its role."""

    name: str
    role: str

    def may(self, operation: str) -> bool:
        return rank(self.role) >= rank(need(operation))


# The one person of a local store bound to loopback with no tokens: everything is allowed.
LOCAL = Principal("local", "admin")


def rank(role: str) -> int:
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}") from None


def need(operation: str) -> str:
    """The least role `operation` needs; an operation missing from the table needs admin."""
    return NEEDS.get(operation, "admin")


def label_need(label: str, environments: list[str] | tuple[str, ...]) -> str:
    """Moving `label` needs deployer when it names an environment, else editor."""
    return "deployer" if label in environments else need("set_label")


def require(principal: Principal, operation: str, *, role: str | None = None) -> None:
    """Raise Forbidden, naming the role needed, unless `principal` may do `operation` (or
    holds `role`, when the need depends on the arguments, as with `label_need`)."""
    needed = role or need(operation)
    if rank(principal.role) < rank(needed):
        raise Forbidden(f"{operation.replace('_', ' ')} needs the {needed} role; the token "
                        f"{principal.name!r} is {principal.role}")
