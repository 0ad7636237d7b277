"""How a deployment reads: one sentence per outcome, the same for every face.

`describe(d, words)` says what a deploy, approval, rollback or label move through a gate came
to ('deployed', 'refused', 'pending_approval', 'rolling_out', 'unchanged', ...). A sentence's
next step is a `store.errors.Step` (approve deployment 7, deploy v3 to staging first, promote
the rollout), so each face passes its own `words` (the CLI's commands, MCP's tools, the web's
pages; the SDK's by default) and no face words a deployment itself. `check_text` is the same
for one gate check. `GateFailed` and `DeployPending` carry the refusal and the wait to callers
that want the move or an exception (`raise_for`), worded by the face that catches them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from store.errors import PromStackError, Step, sdk_words

Words = Callable[[Step], str]


class GateFailed(PromStackError):
    """The gate refused a deployment (returned, not raised, by `deploy`; raised by callers who want it)."""

    exit_code = 1  # the CLI: a check failed, not bad input


class DeployPending(PromStackError):
    """The gate passed, and the move waits for a person's approval (`deploy approve ID`)."""

    exit_code = 0


def say(parts: Iterable[Any], words: Words = sdk_words) -> str:
    """`parts` (strings and Steps) as one sentence, each step in `words`."""
    return "".join(words(p) if isinstance(p, Step) else str(p) for p in parts)


def previous_parts(prompt_id: int, version: int, before: str) -> tuple[Any, ...]:
    """The `previous` check's failure ([deploy] require_previous), with its next step."""
    return (f"v{version} has not passed {before}; deploy it there first (",
            Step("deploy_version", prompt=prompt_id, version=version, environment=before), ")")


def check_parts(check: dict[str, Any], prompt_id: int) -> tuple[Any, ...]:
    """One gate check's sentence (its stored detail, or its step for the face to word)."""
    if check.get("check") == "previous" and not check.get("passed") and "version" in check:
        return previous_parts(prompt_id, check["version"], check["environment"])
    return (check["detail"],)


def check_text(check: dict[str, Any], prompt_id: int, words: Words = sdk_words) -> str:
    return say(check_parts(check, prompt_id), words)


def refusal_parts(d: dict[str, Any]) -> list[Any]:
    """A refused deployment: which checks failed, with the run each used, and the way past."""
    parts: list[Any] = [f"the {d['environment']} gate refused {d['name']} v{d['to_version']}: "]
    for n, check in enumerate(c for c in d.get("gate", {}).get("checks", []) if not c["passed"]):
        parts += ["; " if n else "", *check_parts(check, d["prompt_id"])]
    serves = f"v{d['from_version']}" if d.get("from_version") is not None else "nothing"
    parts.append(f"; {d['environment']} still serves {serves} (deployment {d['id']}); force with a reason "
                 "moves it anyway (audited)")
    return parts


def pending_parts(d: dict[str, Any]) -> list[Any]:
    return [f"{d['name']} v{d['to_version']} passed the {d['environment']} gate and waits for approval "
            f"(deployment {d['id']}: ", Step("approve_deployment", id=d["id"]), "); the label has not moved yet"]


def refusal(d: dict[str, Any], words: Words = sdk_words) -> str:
    return say(refusal_parts(d), words)


def pending(d: dict[str, Any], words: Words = sdk_words) -> str:
    return say(pending_parts(d), words)


def describe_parts(d: dict[str, Any]) -> list[Any]:
    """What deployment `d` (a row of `get_deployment`, or deploy's 'unchanged' answer) came to."""
    status = d["status"]
    if status == "unchanged":
        return [d["message"]]
    if status == "refused":
        return refusal_parts(d)
    if status == "pending_approval":
        return pending_parts(d)
    what = f"{d['name']} v{d['to_version']} to {d['environment']}"
    if status == "deployed" and d.get("kind") == "rollback":
        return [f"Rolled back {d['environment']} of {d['name']}: v{d['from_version']} -> v{d['to_version']} "
                f"(deployment {d['id']})"]
    if status == "deployed":
        was = f"v{d['from_version']}" if d.get("from_version") is not None else "nothing"
        forced = f" (FORCED: {', '.join(d['skipped'])} skipped)" if d.get("skipped") else ""
        return [f"Deployed {what} (was {was}){forced}: deployment {d['id']}"]
    if status == "rolling_out":
        return [f"Rolling out {what}: {d['gate'].get('rollout'):g}% of users (deployment {d['id']}); step up with ",
                Step("promote_rollout", prompt=d["prompt_id"], environment=d["environment"])]
    return [f"Deployment {d['id']} of {what}: {status}"]


def describe(d: dict[str, Any], words: Words = sdk_words) -> str:
    """The one sentence every face shows for deployment `d`, its steps in `words`."""
    return say(describe_parts(d), words)


def raise_for(d: dict[str, Any], *, pending_too: bool = True) -> dict[str, Any]:
    """`d`, or the exception for a caller that wants the move or an error: GateFailed when the
    gate refused it, DeployPending (unless not `pending_too`) when it waits for approval."""
    if d["status"] == "refused":
        raise GateFailed(*refusal_parts(d))
    if d["status"] == "pending_approval" and pending_too:
        raise DeployPending(*pending_parts(d))
    return d
