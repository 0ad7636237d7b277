"""Prompts and their versions: list, create, get, save, delete, restore, history, diff, rollback,
branches, merge, labels and their history, and run (through the server's gateway)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from cachetools import LRUCache
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from promstack import access
from promstack import schemas as s

from . import Caller, needs, ref

router = APIRouter(tags=["prompts"])
P = "/prompts/{prompt:prompt}/-"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CreatePrompt(Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] = Field(description="New name, e.g. 'support/refund'.")
    template: s.Template
    config: s.ModelConfig
    description: str | None = Field(default=None, max_length=2000)
    message: s.Message


class SaveVersion(Body):
    template: s.Template | None = None
    config: s.ModelConfig
    message: s.Message
    branch: s.RefName = "main"


class Rollback(Body):
    version: s.Version = Field(description="Its content becomes the new head.")
    branch: s.RefName = "main"
    message: s.Message


class NewBranch(Body):
    branch: s.RefName = Field(description="New branch name.")
    from_version: s.Version | None = Field(default=None, description="Default: main's head.")


class Merge(Body):
    branch: s.RefName
    into: s.RefName = "main"
    message: s.Message


class MoveLabel(Body):
    version: s.Version
    reason: str | None = Field(default=None, max_length=2000, description="Required with force.")
    force: bool = Field(default=False, description="Skip an environment's gate; audited.")
    rerun: bool = Field(default=False, description="Rerun the gate's tests, not reuse a passing run.")


class RunPrompt(Body):
    variables: dict[str, Any] = Field(default_factory=dict)
    version: s.Version | None = None
    label: s.RefName | None = None
    branch: s.RefName | None = None
    model: str | None = Field(default=None, max_length=200)
    user_id: str | None = Field(default=None, max_length=200)


class ServedVersion(s.PromptVersionResult):
    label: str | None = Field(default=None, description="The label read, when one was.")
    resolved: dict[str, Any] | None = Field(default=None, description="The A/B arm or rollout share that served this user.")


class Selector(BaseModel):
    """Which version of a prompt to read: one of version, label (with user_id) or branch."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)
    label: str | None = Field(default=None, max_length=100, description="Default: production.")
    branch: str | None = Field(default=None, max_length=100)
    user_id: str | None = Field(default=None, max_length=200, description="Picks the user's A/B arm or rollout share.")
    resolved: bool = Field(default=False, description="Expand every {% include %} in the template.")


class LabelRollback(Body):
    label: s.RefName = Field(description="The label to point back where it pointed before its last move.")
    reason: str | None = Field(default=None, max_length=2000)


class LabelAt(BaseModel):
    label: str
    at: str
    version: int | None = Field(description="None: the label pointed at no version then.")


class Labels(BaseModel):
    prompt_id: int
    labels: dict[str, int]


def _template(value: Any) -> Any:
    if isinstance(value, list):
        return [m.model_dump(exclude_none=True) for m in value]
    return value


def _version(found: Any) -> s.PromptVersionResult:
    return s.PromptVersionResult.model_validate(found.to_dict())


@router.delete("/prompts/{prompt:prompt}", response_model=s.PromptSummary)
def delete_prompt(prompt: str, caller: Caller = needs("delete_prompt")) -> Any:
    """Archive a prompt; POST .../-/restore brings it back."""
    with caller.client() as client:
        return s.PromptSummary.model_validate(client.delete_prompt(ref(prompt)).to_dict())


@router.get("/prompts/{prompt:prompt}", response_model=ServedVersion)
async def get_prompt(prompt: str, selector: Annotated[Selector, Query()], caller: Caller = needs("get_prompt")) -> Any:
    """A prompt version: by default what the production label serves (as production apps read
    it); or `version`, `label` (with `user_id`: their A/B arm or rollout share) or `branch`'s
    head. One selector at most. A read on the event loop: in WAL mode it never waits for a writer."""
    from store.errors import InvalidInput

    from ..api import DEFAULT_LABEL

    version, label, branch, user_id = selector.version, selector.label, selector.branch, selector.user_id
    given = [n for n, v in (("version", version), ("label", label), ("branch", branch)) if v not in (None, "")]
    if len(given) > 1:
        raise InvalidInput(f"give one of version, label or branch, not {' and '.join(given)}")
    with caller.pool.client(caller.actor) as client:
        if selector.resolved:
            label = None if version is not None or branch else label or DEFAULT_LABEL
            found = client.get_prompt(ref(prompt), version=version, branch=branch or None, label=label,
                                      user_id=user_id or None if label else None, resolved=True)
            return ServedVersion.model_validate({**found.to_dict(), "label": label})
        if version is not None or branch:
            found = client.get_prompt(ref(prompt), version=version, branch=branch or None)
            checks = client.version_checks(found.prompt_id, [found.version])
            return ServedVersion.model_validate({**found.to_dict(), "check": s.check_of(checks, found.version)})
    return label_read(caller, ref(prompt), label or DEFAULT_LABEL, user_id or None)


def label_read(caller: Caller, prompt: Any, label: str, user_id: str | None) -> Response:
    """What `label` serves `user_id`: the production apps' read. A version is immutable, so its
    JSON is made once (the model's own serialization) and only the label and the resolution are
    appended; the resolver caches the label for its short TTL."""
    from ..api import served

    with caller.pool.client(caller.actor) as client:
        found, resolution = served(client, prompt, label, user_id)
        ttl = client.resolver.ttl
    resolved = None if resolution.split_id is None else \
        {"arm": resolution.arm, "split_id": resolution.split_id, "kind": resolution.kind}
    key = (str(caller.pool.db), found.prompt_id, found.version, found.sha256)
    body = _BODIES.get(key)
    if body is None:
        body = _BODIES[key] = s.PromptVersionResult.model_validate(found.to_dict()).model_dump_json().encode()
    tail = json.dumps({"label": label, "resolved": resolved}, ensure_ascii=False).encode()
    return Response(body[:-1] + b"," + tail[1:], media_type="application/json",
                    headers={"Cache-Control": f"private, max-age={int(ttl)}"})


_BODIES: LRUCache = LRUCache(maxsize=2048)


@router.get("/prompts", response_model=s.PromptListResult)
def list_prompts(include_deleted: bool = False, caller: Caller = needs("list_prompts")) -> Any:
    """Every prompt with its head version, labels and branches."""
    with caller.client() as client:
        prompts = client.list_prompts(include_archived=include_deleted)
    return s.PromptListResult(prompts=[s.PromptSummary.model_validate(p.to_dict()) for p in prompts])


@router.post("/prompts", response_model=s.PromptVersionResult, status_code=201)
def create_prompt(body: CreatePrompt, caller: Caller = needs("create_prompt")) -> Any:
    """Create a prompt: version 1 on main."""
    with caller.client() as client:
        found = client.create_prompt(body.name, _template(body.template), model_config=body.config,
                                     description=body.description, message=body.message, source="api")
    return _version(found)


class FullHistory(s.HistoryResult):
    versions: list[s.VersionSummary | s.PromptVersionResult] = Field(description="Newest first.")


@router.get(P + "/history", response_model=FullHistory)
def get_history(prompt: str, branch: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 20,
                full: bool = False, caller: Caller = needs("get_history")) -> Any:
    """A prompt's versions, newest first; `full=true`: each with its template and model_config
    (as the Python SDK's `history` returns them)."""
    with caller.client() as client:
        head = client.get_prompt(ref(prompt))
        versions = client.history(head.prompt_id, branch=branch, limit=limit)
        checks = client.version_checks(head.prompt_id, [v.version for v in versions]) if versions else {}
    shape = s.PromptVersionResult if full else s.VersionSummary
    return FullHistory(prompt_id=head.prompt_id, name=head.name,
                       versions=[shape.model_validate({**v.to_dict(), "check": s.check_of(checks, v.version)})
                                 for v in versions])


class Checkpoints(BaseModel):
    checkpoints: dict[int, list[str]] = Field(description="version -> the names given to it, oldest first.")


@router.get(P + "/checkpoints", response_model=Checkpoints)
def checkpoints(prompt: str, caller: Caller = needs("get_history")) -> Any:
    """The names given to a prompt's versions (checkpoints), by version."""
    with caller.client() as client:
        return Checkpoints(checkpoints=client.checkpoints(ref(prompt)))


class WordDiff(s.DiffResult):
    words: list[tuple[int, str]] = Field(default_factory=list, description="(0 equal, 1 added, -1 removed, text).")


@router.get(P + "/diff", response_model=WordDiff)
def diff_versions(prompt: str, from_version: Annotated[int, Query(ge=1)],
                  to_version: Annotated[int | None, Query(ge=1)] = None,
                  behaviour: Annotated[bool, Query(description="Also run both versions on the suite and judge "
                                                   "their outputs case by case (needs the runner role).")] = False,
                  suite: Annotated[str | None, Query(min_length=1, max_length=100,
                                                     description="With behaviour; default: the prompt's suite.")] = None,
                  judge_model: Annotated[str | None, Query(max_length=200, description="With behaviour.")] = None,
                  caller: Caller = needs("diff_versions")) -> Any:
    """Two versions' templates and model_config compared (to_version: main's head); with
    behaviour, what they do differently on the suite (answers when both have run)."""
    if behaviour:  # it runs models: what running tests needs
        access.require(caller.principal, "diff_behaviour")
    with caller.client() as client:
        data = client.diff(ref(prompt), from_version, to_version).to_dict()
        if behaviour:
            from promstack.evals.behaviour import behaviour_diff

            data["behaviour"] = behaviour_diff(client, ref(prompt), data["from_version"], data["to_version"],
                                               suite=suite, judge_model=judge_model)
    return WordDiff.model_validate(data)


@router.post(P + "/versions", response_model=s.PromptVersionResult, status_code=201)
def update_prompt(prompt: str, body: SaveVersion, response: Response, caller: Caller = needs("update_prompt")) -> Any:
    """Save a new version (201); content equal to the branch head saves none (200, created false)."""
    with caller.client() as client:
        found = client.save(ref(prompt), _template(body.template), model_config=body.config, message=body.message,
                            branch=body.branch, source="api", keep_kind=True)
    if not found.created:
        response.status_code = 200
    return _version(found)


@router.post(P + "/restore", response_model=s.PromptSummary)
def restore_prompt(prompt: str, caller: Caller = needs("restore_prompt")) -> Any:
    """Bring back a deleted prompt."""
    with caller.client() as client:
        return s.PromptSummary.model_validate(client.restore_prompt(ref(prompt)).to_dict())


@router.post(P + "/rollback", response_model=s.PromptVersionResult, status_code=201)
def rollback_prompt(prompt: str, body: Rollback, caller: Caller = needs("rollback_prompt")) -> Any:
    """Append a version equal to an earlier one; history is kept."""
    with caller.client() as client:
        found = client.rollback(ref(prompt), body.version, branch=body.branch, message=body.message,
                                author=caller.actor)
    return _version(found)


@router.get(P + "/branches", response_model=list[s.BranchResult])
def list_branches(prompt: str, caller: Caller = needs("list_branches")) -> Any:
    """A prompt's branches and their heads."""
    with caller.client() as client:
        return [s.BranchResult.model_validate(b.to_dict()) for b in client.list_branches(ref(prompt))]


@router.post(P + "/branches", response_model=s.BranchResult, status_code=201)
def create_branch(prompt: str, body: NewBranch, caller: Caller = needs("create_branch")) -> Any:
    """Branch a prompt to try changes without moving main."""
    with caller.client() as client:
        found = client.create_branch(ref(prompt), body.branch, from_version=body.from_version)
    return s.BranchResult.model_validate(found.to_dict())


@router.post(P + "/merge", response_model=s.PromptVersionResult, status_code=201)
def merge_branch(prompt: str, body: Merge, caller: Caller = needs("merge_branch")) -> Any:
    """Merge a branch (3-way); a conflict is 409 with the conflicting hunks, nothing written."""
    with caller.client() as client:
        found = client.merge(ref(prompt), body.branch, into=body.into, message=body.message)
    return _version(found)


@router.get(P + "/labels", response_model=Labels)
def get_labels(prompt: str, caller: Caller = needs("get_labels")) -> Any:
    """Where each label points."""
    with caller.client() as client:
        row = client.get_prompt(ref(prompt))
        return Labels(prompt_id=row.prompt_id, labels=client.labels(row.prompt_id))


@router.get(P + "/label-history", response_model=list[s.LabelResult])
def label_history(prompt: str, label: str | None = None, caller: Caller = needs("get_labels")) -> Any:
    """Every move of a prompt's labels (or of one): who, when, from, to, why."""
    with caller.client() as client:
        return [s.LabelResult.model_validate(m.to_dict()) for m in client.label_history(ref(prompt), label)]


@router.get(P + "/label-at", response_model=LabelAt)
def label_at(prompt: str, label: Annotated[str, Query(min_length=1, max_length=100)],
             at: Annotated[str, Query(min_length=1, max_length=100)], caller: Caller = needs("get_labels")) -> Any:
    """Which version `label` pointed at, at time `at` (ISO 8601)."""
    with caller.client() as client:
        return LabelAt(label=label, at=at, version=client.label_at(ref(prompt), label, at))


@router.get(P + "/dependents")
def dependents(prompt: str, caller: Caller = needs("get_prompt")) -> list[dict[str, Any]]:
    """The prompt versions that include this prompt: `[{name, version, selector}]`."""
    with caller.client() as client:
        return client.dependents(ref(prompt))


@router.delete(P + "/labels/{label:path}", response_model=s.LabelResult)
def remove_label(prompt: str, label: str, reason: Annotated[str | None, Query(max_length=2000)] = None,
                 caller: Caller = needs("set_label")) -> Any:
    """Remove a label (an environment's needs the deployer role, and its gate decides)."""
    from promstack.deploy import label_role

    with caller.client() as client:
        caller.require(label_role(client, label))
        move = client.remove_label(ref(prompt), label, reason=reason)
    return s.LabelResult.model_validate(move.to_dict())


@router.post(P + "/label-rollback", response_model=s.LabelResult)
def rollback_label(prompt: str, body: LabelRollback, caller: Caller = needs("set_label")) -> Any:
    """Point a label back where it pointed before its last move (an environment's needs deployer)."""
    from promstack.deploy import label_role

    with caller.client() as client:
        caller.require(label_role(client, body.label))
        move = client.rollback_label(ref(prompt), body.label, reason=body.reason)
    return s.LabelResult.model_validate(move.to_dict())


@router.put(P + "/labels/{label:path}", response_model=s.LabelResult)
def set_label(prompt: str, label: str, body: MoveLabel, caller: Caller = needs("set_label")) -> Any:
    """Point a label at a version. An environment's label (staging, production) needs the deployer
    role and moves only through its gate: 409 GateFailed when refused, 202 when it waits for approval."""
    from promstack.deploy import label_role

    with caller.client() as client:
        caller.require(label_role(client, label))
        move = client.set_label(ref(prompt), label, body.version, reason=body.reason, force=body.force,
                                rerun=body.rerun, author=caller.actor)
    return s.LabelResult.model_validate(move.to_dict())


@router.post(P + "/run", response_model=s.RunPromptResult)
def run_prompt(prompt: str, body: RunPrompt, caller: Caller = needs("run_prompt")) -> Any:
    """Run a prompt through the server's gateway (rendered, guarded, cached, logged); the keys stay
    on the server."""
    with caller.client() as client:
        result = client.run(ref(prompt), body.variables, version=body.version, label=body.label,
                            branch=body.branch, model=body.model, user_id=body.user_id)
    return s.RunPromptResult.model_validate(result.to_dict())
