"""The version-control tools: each is a few lines over one `promstack.Client` call.

A tool's docstring is what the model reads to choose it, in every conversation: one sentence on
when to use it and what it returns, and never any stored prompt text. Later issues add their tools (run_prompt, run_tests,
...) the same way: an argument model and a result model in models.py, a function here (or in a
module of its own imported by server.py) under `@tool`.
"""

from __future__ import annotations

from typing import Any

from promstack.schemas import check_of

from .engine import Call
from .models import (
    BranchResult,
    CreateBranchArgs,
    CreatePromptArgs,
    DiffResult,
    DiffVersionsArgs,
    GetHistoryArgs,
    GetPromptArgs,
    HistoryResult,
    LabelResult,
    ListPromptsArgs,
    MergeBranchArgs,
    PromptListResult,
    PromptOnlyArgs,
    PromptSummary,
    PromptVersionResult,
    RollbackPromptArgs,
    SetLabelArgs,
    UpdatePromptArgs,
    VersionSummary,
)
from .registry import tool
from .tools_bisect import behaviour_of  # and bisect_prompt, which registers itself


def _template(value: Any) -> Any:
    """Chat messages arrive as models; the engine takes plain dicts."""
    if isinstance(value, list):
        return [m.model_dump(exclude_none=True) for m in value]
    return value


def version_result(found: Any) -> PromptVersionResult:
    return PromptVersionResult.model_validate(found.to_dict())


def _version_text(found: Any, verb: str = "") -> str:
    who = f"by {found.author}, {found.source}"
    head = f"{verb}{found.name} v{found.version} on {found.branch} ({who}, {found.created_at})"
    if found.message:
        head += f": {found.message}"
    return head


def _show_template(found: Any) -> str:
    if found.kind == "text":
        return found.template
    return "\n".join(f"[{m['role']}] {m['content']}" for m in found.template)


def _summary_text(p: Any) -> str:
    labels = ", ".join(f"{k}=v{v}" for k, v in p.labels.items())
    state = " (deleted)" if p.archived else ""
    return f"#{p.id} {p.name}{state}: {p.versions} versions, head v{p.head}" + (f", labels {labels}" if labels else "")


@tool(title="List prompts", read_only=True, idempotent=True)
def list_prompts(call: Call, args: ListPromptsArgs) -> tuple[PromptListResult, str]:
    """List the prompts with their ids, head versions, labels and branches."""
    prompts = call.client.list_prompts(include_archived=args.include_deleted)
    result = PromptListResult(prompts=[PromptSummary.model_validate(p.to_dict()) for p in prompts])
    text = "\n".join(_summary_text(p) for p in prompts) or "No prompts yet; create_prompt makes one."
    return result, text


@tool(title="Get a prompt version", read_only=True, idempotent=True)
def get_prompt(call: Call, args: GetPromptArgs) -> tuple[PromptVersionResult, str]:
    """Get a prompt version's template and model_config (default: main's head)."""
    found = call.client.get_prompt(args.prompt, version=args.version, label=args.label, branch=args.branch)
    result, checked = _checked_result(call, found)
    return result, f"{_version_text(found)}{checked}\n\n{_show_template(found)}"


def _checked_result(call: Call, found: Any) -> tuple[PromptVersionResult, str]:
    """The version with its quick check (a save's is 'checking…' at once), and the check's line."""
    result = version_result(found)
    result.check = check_of(call.client.version_checks(found.prompt_id, [found.version]), found.version)
    return result, f"\nCheck: {result.check.text}" if result.check and result.check.status != "no_suite" else ""


@tool(title="Create a prompt", idempotent=True, changes_prompts=True)
def create_prompt(call: Call, args: CreatePromptArgs) -> tuple[PromptVersionResult, str]:
    """Create a prompt under version control (version 1 on main)."""
    found = call.client.create_prompt(
        args.prompt, _template(args.template), model_config=args.config,
        description=args.description, message=args.message, author=call.actor, source=call.source,
    )
    result, checked = _checked_result(call, found)
    return result, _version_text(found, "Created ") + f" with id {found.prompt_id}{checked}"


@tool(title="Save a new version", idempotent=True, changes_prompts=True)
def update_prompt(call: Call, args: UpdatePromptArgs) -> tuple[PromptVersionResult, str]:
    """Save a new version of a prompt (template and/or model_config); identical content saves none."""
    found = call.client.save(
        args.prompt, _template(args.template), model_config=args.config, message=args.message,
        branch=args.branch, author=call.actor, source=call.source, keep_kind=True,
    )
    text = _version_text(found, "Saved " if found.created else "Unchanged: the head is already ")
    if found.warnings:
        text += "\nWarning: " + "\nWarning: ".join(found.warnings)
    result, checked = _checked_result(call, found)
    return result, text + checked


@tool(title="Delete (archive) a prompt", idempotent=True, changes_prompts=True)
def delete_prompt(call: Call, args: PromptOnlyArgs) -> tuple[PromptSummary, str]:
    """Archive a prompt; restore_prompt brings it back."""
    found = call.client.delete_prompt(args.prompt)
    return PromptSummary.model_validate(found.to_dict()), f"Deleted {found.name} (restore_prompt brings it back)"


@tool(title="Restore a deleted prompt", idempotent=True, changes_prompts=True)
def restore_prompt(call: Call, args: PromptOnlyArgs) -> tuple[PromptSummary, str]:
    """Bring back a prompt that delete_prompt archived."""
    found = call.client.restore_prompt(args.prompt)
    return PromptSummary.model_validate(found.to_dict()), f"Restored {found.name}"


@tool(title="Version history", read_only=True, idempotent=True)
def get_history(call: Call, args: GetHistoryArgs) -> tuple[HistoryResult, str]:
    """List a prompt's versions, newest first."""
    versions = call.client.history(args.prompt, branch=args.branch, limit=args.limit)
    first = versions[0] if versions else None
    pid = first.prompt_id if first else call.client.get_prompt(args.prompt).prompt_id
    name = first.name if first else str(args.prompt)
    checks = call.client.version_checks(pid, [v.version for v in versions]) if versions else {}
    result = HistoryResult(
        prompt_id=pid, name=name,
        versions=[VersionSummary.model_validate({**v.to_dict(), "check": check_of(checks, v.version)})
                  for v in versions],
    )
    lines = [
        f"v{v.version} " + (f"[{checks[v.version].text}] " if checks.get(v.version) and checks[v.version].status != "no_suite" else "")
        + f"{v.branch} {v.created_at} {v.author} ({v.source})" + (f": {v.message}" if v.message else "")
        for v in versions
    ]
    return result, "\n".join([f"History of {name}:", *lines])


# long and open_world: with `behaviour` it runs both versions on the suite and asks the judge
@tool(title="Diff two versions", read_only=True, idempotent=True, long=True, open_world=True)
def diff_versions(call: Call, args: DiffVersionsArgs) -> tuple[DiffResult, str]:
    """Diff two versions of a prompt, or their behaviour."""
    diff = call.client.diff(args.prompt, args.from_version, args.to_version)
    data = diff.to_dict()
    data.pop("words", None)
    summary = f"{diff.name} v{diff.from_version} -> v{diff.to_version}: +{diff.added} -{diff.removed} lines"
    if diff.config_changes:
        summary += "; model_config: " + ", ".join(
            f"{k} {c['from']!r} -> {c['to']!r}" for k, c in diff.config_changes.items()
        )
    text = f"{summary}\n\n{diff.unified}" if diff.unified else summary + " (templates are identical)"
    if args.behaviour:
        data["behaviour"], more = behaviour_of(call, args.prompt, diff.from_version, diff.to_version, args.suite)
        text += "\n\n" + more
    return DiffResult.model_validate(data), text


@tool(title="Roll back to a version", idempotent=True, changes_prompts=True)
def rollback_prompt(call: Call, args: RollbackPromptArgs) -> tuple[PromptVersionResult, str]:
    """Append a version equal to an earlier one; history is kept."""
    found = call.client.rollback(
        args.prompt, args.version, branch=args.branch, message=args.message, author=call.actor,
    )
    return version_result(found), _version_text(found, f"Rolled back to v{args.version}: new head ")


@tool(title="Create a branch", idempotent=True)
def create_branch(call: Call, args: CreateBranchArgs) -> tuple[BranchResult, str]:
    """Branch a prompt to try changes without moving main."""
    branch = call.client.create_branch(args.prompt, args.branch, from_version=args.from_version)
    return BranchResult.model_validate(branch.to_dict()), f"Branch {branch.name} starts at v{branch.head}"


@tool(title="Merge a branch", idempotent=True, changes_prompts=True)
def merge_branch(call: Call, args: MergeBranchArgs) -> tuple[PromptVersionResult, str]:
    """Merge a branch into main (3-way); a conflict is reported and nothing written."""
    found = call.client.merge(args.prompt, args.branch, into=args.into, message=args.message)
    return version_result(found), _version_text(found, f"Merged {args.branch}: ")


@tool(title="Move a label", long=True, open_world=True)  # a gated environment runs its gate: the suite on models
def set_label(call: Call, args: SetLabelArgs) -> tuple[LabelResult, str]:
    """Point a label at a version; a gated environment's label moves only if the version passes
    its gate."""
    from promstack import access, deploy

    # An environment's label (production) needs deployer; any other label, editor. Which labels
    # are environments is the store's config: a deployer (or this machine's own user over stdio,
    # whose team server checks its token itself) may move any label, so it is read only below that.
    if access.rank(call.principal.role) < access.rank("deployer"):
        access.require(call.principal, "set_label", role=deploy.label_role(call.client, args.label))
    move = call.client.set_label(args.prompt, args.label, args.version, reason=args.reason, force=args.force,
                                 rerun=args.rerun)  # GateFailed / DeployPending: worded by the face
    before = f"v{move.from_version}" if move.from_version else "nothing"
    return LabelResult.model_validate(move.to_dict()), f"Label {move.label}: {before} -> v{move.to_version}"
