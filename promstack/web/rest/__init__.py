"""The REST API under /api/v1: every operation the MCP tools have, as JSON over HTTP (FastAPI,
mounted on `promstack serve`'s Starlette app; validation and the OpenAPI document come from it).

    app = create_api(pool)        # a FastAPI app; promstack.web.app mounts it at /api/v1

Routes are grouped one module per capability (`prompts`, `evals`, `deploy`, `monitor`); each is a
few lines over the engine call the MCP tool makes, returning the same pydantic model
(`promstack.schemas`). The route table is in docs/api.md and in /api/v1/openapi.json.

A prompt in a path. Prompt names contain slashes (`support/refund`), so the prompt is the rest
of the path up to a `/-/` segment, after which the sub-resource follows:

    /api/v1/prompts/support/refund                 the prompt
    /api/v1/prompts/support/refund/-/history       its history
    /api/v1/prompts/42/-/labels/production         a label of prompt 42

Unambiguous because a name's segments start with a letter, digit or `_` (store.prompts.NAME_RE):
no name has a `-` segment, so `/-/` can only be the separator (GitLab's rule for namespaced
projects, for the same reason). A prompt named `support/history` stays reachable (`.../history`
without `/-/` is a name), and no client has to percent-encode its slashes; one that sends
`support%2Frefund` is understood too (the path is decoded before it is matched). Anything with a
slash (a branch, a label) sits after the `/-/` only as the last segment, or in the body.

Who may do what: each route declares its operation, named as in `promstack.access.NEEDS` (the MCP
tool's name), through `needs("...")`; the caller is `request.state.principal` (set by the server's
auth middleware; absent, the local single user, `access.LOCAL`). Writes are attributed to the
principal's name (the local user: the store's default actor, as before tokens).

Errors: `{"error": {"type": "<exception class>", "message": "<the sentence the SDK raises>"}}`
with 400 (bad input), 401, 403, 404, 409 (a merge conflict, a refused deploy, a deploy or store
busy), 422 (a body or parameter that does not validate: `field` names it), 429 (a budget spent),
502 (the model provider failed), 503 (the store stayed locked).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from promstack import access
from promstack.pool import ClientPool
from store.errors import Busy, MergeConflict, NotFound, PromStackError, Step
from store.refs import prompt_ref

if TYPE_CHECKING:
    from promstack.client import Client

T = TypeVar("T")


class PromptConvertor(Convertor):
    """A prompt in a path: an id or a name, whose segments never start with '-' (NAME_RE), so it
    stops before a `/-/` and a route's sub-resource can follow."""

    regex = r"[^/-][^/]*(?:/[^/-][^/]*)*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("prompt", PromptConvertor())


@dataclass
class Caller:
    """Who is asking, for which operation, and the pool to borrow a client from."""

    principal: access.Principal
    operation: str
    pool: ClientPool

    @property
    def actor(self) -> str | None:
        # The local single user writes as before tokens: the store's default actor.
        return None if self.principal == access.LOCAL else self.principal.name

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        with self.pool.client(self.actor) as found:
            yield found

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(client, *args, **kwargs)` with a client borrowed for the caller."""
        return self.pool.call(fn, *args, actor=self.actor, **kwargs)

    def require(self, role: str) -> None:
        """A need that depends on the arguments (a label that names an environment)."""
        access.require(self.principal, self.operation, role=role)


def principal_of(request: Request) -> access.Principal:
    found = getattr(request.state, "principal", None)
    return found if isinstance(found, access.Principal) else access.LOCAL


def needs(operation: str) -> Any:
    """The dependency every route declares: the caller may do `operation` (else 403, naming the
    role it needs). Async, so a read does not hop to a worker thread for it."""
    if operation not in access.NEEDS:
        raise ValueError(f"{operation!r} is not an operation in promstack.access.NEEDS")

    async def check(request: Request) -> Caller:
        principal = principal_of(request)
        access.require(principal, operation)
        return Caller(principal, operation, request.app.state.pool)

    return Depends(check)


def ref(prompt: str) -> int | str:
    """A prompt from a path (or a query parameter): an id (digits) or a name."""
    return prompt_ref(prompt)


# ---- errors ------------------------------------------------------------------------------------


def _status(exc: PromStackError) -> int:
    from promstack.deploy import DeployBusy, GateFailed
    from promstack.gateway.budgets import BudgetExceeded
    from promstack.gateway.errors import GatewayError

    for kind, status in ((access.Unauthorized, 401), (access.Forbidden, 403), (NotFound, 404),
                         (MergeConflict, 409), (GateFailed, 409), (DeployBusy, 409), (Busy, 503),
                         (BudgetExceeded, 429), (GatewayError, 502)):
        if isinstance(exc, kind):
            return status
    return 400


def error_response(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="promstack"'} if status == 401 else None
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status,
                        headers=headers)


def error_body(exc: PromStackError) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    conflicts = getattr(exc, "conflicts", None)
    if conflicts:
        body["conflicts"] = conflicts
    parts = getattr(exc, "parts", ())
    if any(isinstance(p, Step) for p in parts) and exc.worded(str) != str(exc):
        # The next steps the sentence suggests, in no face's words: a remote client words them
        # as its face does (the CLI over a server names its commands, as it does locally); not
        # when the sentence was replaced after it was raised (redacted): worded() then keeps it.
        body["parts"] = [{"step": p.action, "params": p.params} if isinstance(p, Step) else str(p) for p in parts]
    return body


async def _engine_error(request: Request | None, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PromStackError)
    return engine_error(exc)


def engine_error(exc: PromStackError) -> JSONResponse:
    """An engine error as the API answers it: the envelope, with the status HTTP means."""
    from promstack.deploy import DeployPending

    if isinstance(exc, DeployPending):  # not a failure: the move waits for a person's approval
        return JSONResponse({"status": "pending_approval", "message": str(exc)}, status_code=202)
    body = error_body(exc)
    return error_response(_status(exc), body.pop("type"), body.pop("message"), **body)


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
    first = errors[0] if errors else {"field": "", "message": "the request does not validate"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return error_response(422, "ValidationError", message, field=first["field"], errors=errors)


_HTTP_TYPES = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized", 403: "Forbidden"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.method} {request.url.path}; see /api/v1/docs"
    return error_response(exc.status_code, _HTTP_TYPES.get(exc.status_code, "HTTPError"), message)


# ---- the app -----------------------------------------------------------------------------------


def create_api(pool: ClientPool) -> ASGIApp:
    """The /api/v1 app over `pool`'s clients: the FastAPI app, behind the production read's
    fast path (`FastRead`)."""
    from promstack import __version__

    from . import archive, changes, checks, deploy, evals, monitor, prompts
    from .jobs import Jobs

    api = FastAPI(
        title="PromStack REST API", version=__version__, openapi_url="/openapi.json", docs_url=None,
        redoc_url=None, description="Prompt version control and LLMOps over HTTP: the operations of the "
        "MCP tools, with the same results. Prompt names sit in paths up to a `/-/` segment.",
        exception_handlers={PromStackError: _engine_error, RequestValidationError: _invalid,
                            HTTPException: _http_error},
    )
    api.state.pool = pool
    api.state.jobs = Jobs(pool)
    for module in (prompts, evals, deploy, monitor, archive, checks, changes):
        api.include_router(module.router)
    api.add_api_route("/docs", docs_page, methods=["GET"], include_in_schema=False)
    api.add_api_route("/me", whoami, methods=["GET"], response_model=Me)
    return ReportFastPath(FastRead(api, pool), pool)


class Me(BaseModel):
    name: str
    role: str


async def whoami(caller: Caller = needs("whoami")) -> Me:
    """Who this server takes the caller to be: the token's name (the actor of what it writes) and
    its role; the local user on a loopback server without tokens."""
    if caller.actor is None:  # the local user writes as the store's default actor
        with caller.client() as client:
            return Me(name=client.actor, role=caller.principal.role)
    return Me(name=caller.principal.name, role=caller.principal.role)


class FastRead:
    """`GET /prompts/{prompt}` with at most `label` and `user_id`, the read every production app
    makes (and the SDKs cache), answered in front of the framework: the same function as the
    route (`prompts.label_read`), the same role check, the same body and errors, without the
    framework's per-request parameter solving, which costs more than the read itself
    (bench/bench_api.py). Every other request, and any other form of this one, goes to the
    FastAPI app, which validates it and documents the route."""

    FAST = re.compile(rf"/prompts/({PromptConvertor.regex})")

    def __init__(self, api: FastAPI, pool: ClientPool) -> None:
        self.api = api
        self.pool = pool

    def __getattr__(self, name: str) -> Any:  # openapi(), routes, state: the FastAPI app's
        return getattr(self.api, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = self.FAST.fullmatch(_route_path(scope))
            query = _fast_query(scope["query_string"]) if found else None
            if query is not None:
                await self.read(scope, found.group(1), *query)(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def read(self, scope: Scope, prompt: str, label: str, user_id: str | None) -> Response:
        from .prompts import label_read

        try:
            principal = principal_of(Request(scope))
            access.require(principal, "get_prompt")
            return label_read(Caller(principal, "get_prompt", self.pool), ref(prompt), label, user_id)
        except PromStackError as exc:
            return engine_error(exc)


class ReportFastPath:
    """`POST /calls` (apps reporting their calls, batch after batch) answered in front of the
    framework when its body is JSON in the plain envelope (`calls`, a list of at most MAX_ROWS,
    and an optional `idempotency_key`): the same role check and the same function as the route
    (`monitor.store_reported`), without the framework's routing and parameter solving, which
    cost a third of a batch's time on the server (bench/bench_ingest.py). A body of any other
    shape goes to the FastAPI route, which validates it and words the 422."""

    def __init__(self, app: Any, pool: ClientPool) -> None:
        self.app = app
        self.pool = pool

    def __getattr__(self, name: str) -> Any:  # openapi(), routes, state: the FastAPI app's
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != "/calls"
                or not _json_body(scope)):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        envelope = _plain_report(body)
        if envelope is None:
            replayed = False

            async def again() -> Any:  # the body, once more, for the framework to validate
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, again, send)
            return
        response = await run_in_threadpool(self.report, scope, *envelope)
        await response(scope, receive, send)

    def report(self, scope: Scope, calls: list[Any], idempotency_key: str | None) -> Response:
        from .monitor import store_reported

        try:
            principal = principal_of(Request(scope))
            access.require(principal, "report_calls")
            return JSONResponse(store_reported(Caller(principal, "report_calls", self.pool), calls, idempotency_key))
        except PromStackError as exc:
            return engine_error(exc)


def _json_body(scope: Scope) -> bool:
    """Whether the request says its body is JSON, as the framework requires of a body model."""
    for key, value in scope["headers"]:
        if key.lower() == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))
    return False


def _plain_report(body: bytes) -> tuple[list[Any], str | None] | None:
    """(calls, idempotency_key) of a `POST /calls` body in its plain form; else None."""
    from promstack.monitoring.reported import MAX_KEY, MAX_ROWS

    try:
        given = json.loads(body)
    except ValueError:
        return None
    if not isinstance(given, dict) or not given.keys() <= {"calls", "idempotency_key"}:
        return None
    calls, key = given.get("calls"), given.get("idempotency_key")
    if not isinstance(calls, list) or len(calls) > MAX_ROWS:
        return None
    if key is not None and (not isinstance(key, str) or len(key) > MAX_KEY):
        return None
    return calls, key


def _fast_query(raw: bytes) -> tuple[str, str | None] | None:
    """(label, user_id) when the query holds only those, each once and plain; else None."""
    if not raw:
        return "production", None
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    given = dict(pairs)
    if len(given) != len(pairs) or not given.keys() <= {"label", "user_id"}:
        return None
    label, user_id = given.get("label") or "production", given.get("user_id") or None
    if len(label) > 100 or (user_id is not None and len(user_id) > 200):
        return None
    return label, user_id


def docs_page(request: Request) -> HTMLResponse:
    """A plain page of every route, made from the OpenAPI document: no script, no CDN, so it
    works offline like the dashboard (the full schema is at openapi.json)."""
    from html import escape

    spec = request.app.openapi()
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>/api/v1{escape(path)}</code></td>"
                        f"<td>{escape(op.get('summary', ''))}</td><td>{escape(op.get('description', '') or '')}</td></tr>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(spec['info']['title'])}</title>"
            "<style>body{font:14px system-ui;margin:2em}td{padding:.3em .6em;vertical-align:top;"
            "border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{escape(spec['info']['title'])} {escape(spec['info']['version'])}</h1>"
            f"<p>{escape(spec['info'].get('description', ''))} The schema: <a href='openapi.json'>"
            "openapi.json</a>.</p><table>" + "".join(rows) + "</table></body></html>")
    return HTMLResponse(page)


def _route_path(scope: Scope) -> str:
    """The request's path inside this mount (the mount's prefix, in `root_path`, taken off)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
