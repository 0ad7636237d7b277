"""The REST API production apps call (and the TypeScript SDK): reads, resolved like the SDK.

    GET /api/prompts                                          every active prompt
    GET /api/prompts/{prompt}                                 the production label (the default here)
    GET /api/prompts/{prompt}?version=3                       one version
    GET /api/prompts/{prompt}?label=staging&user_id=u123      that user's A/B arm or rollout share
    GET /api/prompts/{prompt}?branch=experiment               a branch's head
    GET /api/prompts/{prompt}/deployments                     which version each environment serves

`{prompt}` is an id (42) or a name (support/refund: the slash is part of the path). Errors are
JSON `{"error": "<a sentence>"}`: 400 for bad input (version and label together), 404 for an
unknown prompt, version or label (`api_error`, which the app's exception handler answers with). Labels resolve through promstack.deploy.Resolver, the same
code and the same short TTL cache as `Client.get_prompt(..., label=, user_id=)`. The app's
RequestGuard (Origin, Host, token) stands in front of every route here and puts the caller in
`request.state.principal`; each route checks its operation's role (`access.NEEDS`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from promstack.pool import ClientPool
from store.errors import InvalidInput, PromStackError

from . import auth, error_status, error_text

if TYPE_CHECKING:
    from promstack.client import Client

DEFAULT_LABEL = "production"
_SELECTORS = ("version", "label", "branch")


ACTOR = "api"


def api_error(exc: PromStackError) -> JSONResponse:
    """An engine error as the REST API answers it: `{"error": "<a sentence>"}`, 404 for what is
    not there, else 400 (`create_app` registers this for every route under /api/)."""
    return JSONResponse({"error": error_text(exc)}, status_code=error_status(exc))


def version_json(found: Any, resolution: Any = None, label: str | None = None, *,
                 resolved_template: Any = None) -> dict[str, Any]:
    """A version as JSON. `template` has its `{% include %}`s expanded (a caller renders it with
    its own variables and no store at hand); `source_template` is the version as saved."""
    data = found.to_dict()
    data["source_template"] = data["template"]
    if resolved_template is not None:
        data["template"] = resolved_template
    data.pop("created", None)
    data.pop("warnings", None)
    data["id"] = data["prompt_id"]
    data["label"] = label
    data["resolved"] = (
        {"arm": resolution.arm, "split_id": resolution.split_id, "kind": resolution.kind}
        if resolution is not None and resolution.split_id is not None else None
    )
    return data


def _version_param(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"version is a whole number from 1; got {value!r}")
    return int(value)


def served(client: Client, ref: Any, label: str, user_id: str | None) -> tuple[Any, Any]:
    """The version `label` serves `user_id` (their A/B arm or rollout share), through the
    resolver's short TTL cache: (version, resolution). Both REST APIs answer label reads here."""
    resolver = client.resolver
    resolution = resolver.resolve(ref, label, user_id)
    found = resolver.get(resolution.prompt_id, label, user_id)
    if found.version != resolution.version:  # the state changed between the two reads
        found = client.get_prompt(resolution.prompt_id, version=resolution.version)
    return found, resolution


def _expanded(client: Client, found: Any) -> Any:
    return client.store.prompts.resolved_template(found)


def make_routes(db: str | os.PathLike | None = None, *, pool: ClientPool | None = None) -> list[Route]:
    """The API's routes over `pool`'s clients (None: a pool of its own over the store at `db`).
    Engine errors propagate to the app's exception handler (`api_error`)."""
    clients = pool if pool is not None else ClientPool(db)

    def list_prompts(request: Request) -> JSONResponse:
        auth.require(request, "list_prompts")
        with clients.client(ACTOR) as client:
            prompts = client.list_prompts()
        return JSONResponse({"prompts": [p.to_dict() for p in prompts]})

    def get_prompt(request: Request) -> JSONResponse:
        ref = request.path_params["prompt"]
        if ref.endswith("/deployments"):
            auth.require(request, "list_deployments")
            return deployments(ref.removesuffix("/deployments"))
        auth.require(request, "get_prompt")
        params = request.query_params
        unknown = [k for k in params if k not in (*_SELECTORS, "user_id")]
        if unknown:
            raise InvalidInput(f"unknown parameter {unknown[0]!r}; use version, label, branch or user_id")
        given = [s for s in _SELECTORS if params.get(s) not in (None, "")]
        if len(given) > 1:
            raise InvalidInput(f"give one of version, label or branch, not {' and '.join(given)}")
        user_id = params.get("user_id") or None
        with clients.client(ACTOR) as client:
            if "version" in given:
                found = client.get_prompt(ref, version=_version_param(params["version"]))
                return JSONResponse(version_json(found, resolved_template=_expanded(client, found)))
            if "branch" in given:
                found = client.get_prompt(ref, branch=params["branch"])
                return JSONResponse(version_json(found, resolved_template=_expanded(client, found)))
            label = params.get("label") or DEFAULT_LABEL
            found, resolution = served(client, ref, label, user_id)
            expanded = _expanded(client, found)
            ttl = client.resolver.ttl
        return JSONResponse(version_json(found, resolution, label, resolved_template=expanded),
                            headers={"Cache-Control": f"private, max-age={int(ttl)}"})

    def deployments(ref: str) -> JSONResponse:
        from promstack import deploy

        with clients.client(ACTOR) as client:
            return JSONResponse(deploy.status(client, ref))

    return [
        Route("/api/prompts", list_prompts, methods=["GET"]),
        Route("/api/prompts/{prompt:path}", get_prompt, methods=["GET"]),
    ]
