"""The Starlette app `promstack serve` runs: GET /healthz and MCP over Streamable HTTP at /mcp.

    app = create_app(db, host="127.0.0.1")                       # local only, no token needed
    app = create_app(db, host="0.0.0.0")                         # every request needs a token
    app = create_app(db, host="0.0.0.0", token="s3cret-shared-1")  # ... or the one shared token

Every request passes `RequestGuard` first, so what is added here later (the dashboard, the REST
API) is guarded the same way: a request whose Origin is not this machine is refused (a web page
elsewhere must not drive a local server: DNS rebinding, as the MCP specification warns), a
loopback-bound server also refuses a Host that is not loopback; then `auth.Gate` says who is
asking, from `Authorization: Bearer <token>` (a named token from `promstack token create`, or the
server's shared token), the dashboard's session cookie, or nothing (a loopback server with no
tokens: the one local person). See promstack/web/auth.py for the rules.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from promstack.pool import ClientPool
from store.bounds import too_deep
from store.errors import PromStackError, Unauthorized

from .auth import OPEN_PATHS, Gate, credential

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


MIN_TOKEN_CHARS = 16
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def token_problem(token: str | None) -> str | None:
    """Why `token` cannot guard a server (blank, short, or padded with spaces), or None."""
    if token is None:
        return None
    if not token.strip():
        return f"the token is blank; make one with: {MAKE_TOKEN}"
    if token != token.strip():
        return f"the token starts or ends with spaces, which an Authorization header drops; make one with: {MAKE_TOKEN}"
    if len(token) < MIN_TOKEN_CHARS:
        return (f"the token is {len(token)} characters, fewer than the {MIN_TOKEN_CHARS} a server token needs "
                f"to resist guessing; make one with: {MAKE_TOKEN}")
    return None


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_local_origin(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and hostname is not None and is_loopback(hostname)


def _host_name(host_header: str) -> str:
    try:
        return urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return ""


def _same_origin(origin: str, host_header: str) -> bool:
    """A page this server served (a dashboard form posting back), reached by any name."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host_header) and parts.netloc.lower() == host_header.lower()


class RequestGuard:
    """Origin and Host checks in front of every route, then who is asking (`auth.Gate`): the
    principal goes into `request.state.principal`, or the request is refused with 401 (pure
    ASGI, so streaming responses such as MCP's SSE pass through untouched)."""

    def __init__(self, app: ASGIApp, *, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if scope["path"] not in OPEN_PATHS:
            try:
                # The store is read (and a token's last use written) off the event loop.
                principal = await anyio.to_thread.run_sync(self.gate.principal, headers)
            except Unauthorized as exc:
                await self.unauthorized(scope, headers, str(exc))(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def refusal(self, headers: dict[str, str]) -> PlainTextResponse | None:
        origin = headers.get("origin")
        if origin is not None and not is_local_origin(origin) and not _same_origin(origin, headers.get("host", "")):
            return PlainTextResponse(
                "Origin not allowed: this PromStack server answers pages on this machine only\n", 403
            )
        if self.gate.loopback_only and not is_loopback(_host_name(headers.get("host", ""))):
            return PlainTextResponse("Host not allowed: connect through 127.0.0.1 or localhost\n", 421)
        return None

    def unauthorized(self, scope: Scope, headers: dict[str, str], message: str) -> Response:
        """401 with the sentence: the sign-in page for a person's browser, JSON for programs
        (the REST API, MCP), plain text otherwise."""
        path = scope["path"]
        challenge = {"WWW-Authenticate": 'Bearer realm="promstack"'}
        if self.gate.serve_token is not None and credential(headers) is None:
            # A server with only the shared token: a browser asks for it itself (as a password).
            refused = PlainTextResponse(
                "Missing or wrong token: send 'Authorization: Bearer <token>'"
                " (in a browser, sign in with the token as the password)\n", 401, headers=challenge)
            refused.raw_headers.append((b"www-authenticate", b'Basic realm="promstack", charset="UTF-8"'))
            return refused
        if scope.get("method") == "GET" and "text/html" in headers.get("accept", "") and not is_json_path(path):
            from .dashboard import signin_page

            return signin_page(path_with_query(scope), message, status=401)
        if is_json_path(path) or path.startswith("/mcp") or "json" in headers.get("accept", ""):
            return JSONResponse({"error": {"type": "Unauthorized", "message": message}}, 401, headers=challenge)
        return PlainTextResponse(message + "\n", 401, headers=challenge)


def path_with_query(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return scope["path"] + (f"?{query}" if query else "")


MAX_REQUEST_BYTES = 16_000_000  # a request body: a template is at most 1 MB, a prompt file 2 MB


class BodyLimit:
    """Refuses a request body over MAX_REQUEST_BYTES (413), by its Content-Length before a byte
    is read, or as it streams in: no request can fill the server's memory."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key.lower() == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self._refuse(scope, receive, send)
                return
        seen = 0

        async def bounded() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        started = False

        async def watched(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded, watched)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(
            f"Request body too large: the limit is {self.limit:,} bytes\n", 413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def is_json_path(path: str) -> bool:
    """A route that answers programs (the REST API, a page's live JSON), not people."""
    return path.startswith("/api/") or path.endswith(".json")


async def _engine_error(request: Request, exc: Exception) -> Response:
    # The engine's own errors (PromStackError) raised by any route: a sentence in the web's
    # words, 404 for what is not there, else 400; as JSON for programs, as a page for people.
    from .api import api_error
    from .dashboard import error_page

    assert isinstance(exc, PromStackError)
    return api_error(exc) if is_json_path(request.url.path) else error_page(request, exc)


async def _nested_too_deeply(request: Request, exc: Exception) -> JSONResponse:
    # Only input nested thousands deep reaches this: the request is wrong, not the server.
    return JSONResponse({"error": str(too_deep("the request"))},
                        status_code=400)


def _transport_security(host: str) -> Any:
    from mcp.server.transport_security import TransportSecuritySettings

    if is_loopback(host):
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
            allowed_origins=[f"{s}://{h}{p}" for s in ("http", "https")
                             for h in ("127.0.0.1", "localhost", "[::1]") for p in ("", ":*")],
        )
    # Bound to the network: any Host name may reach it, so the token is the gate and
    # RequestGuard still refuses foreign Origins.
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


async def healthz(request: Request) -> JSONResponse:
    from promstack import __version__

    return JSONResponse({"status": "ok", "version": __version__})


def app_for_workers() -> Starlette:
    """uvicorn's factory for `promstack serve --workers N`: each worker process makes its app
    from what the command put in its environment (PROMSTACK_DB, PROMSTACK_SERVE_HOST,
    PROMSTACK_SERVE_TOKEN)."""
    return create_app(os.environ["PROMSTACK_DB"], host=os.environ.get("PROMSTACK_SERVE_HOST", DEFAULT_HOST),
                      token=os.environ.get("PROMSTACK_SERVE_TOKEN") or None)


def create_app(
    db: str | os.PathLike | None = None,
    *,
    host: str = DEFAULT_HOST,
    token: str | None = None,
    routes: Sequence[BaseRoute] = (),
    mcp_server: Any = None,
) -> Starlette:
    """The app over the store at `db` (None: PROMSTACK_DB, else the workspace's). `routes` are
    mounted before /mcp (the dashboard and REST API pass theirs). `host` is the address it is
    served on: anything but loopback asks every request for a token (`auth.Gate`); `token` is
    the shared token of a one-person server (it stands for `access.LOCAL`)."""
    if token is not None and not token.strip():
        raise ValueError(token_problem(token))
    # One pool of clients for every face of this app: the dashboard, the REST API and MCP.
    pool = ClientPool(db)
    gate = Gate(pool, serve_token=token or None, loopback_only=is_loopback(host))
    if mcp_server is None:
        from mcp_server.server import build_server

        mcp_server = build_server(db, pool=pool)
    mcp_http = mcp_server.streamable_http_app(
        streamable_http_path="/mcp", transport_security=_transport_security(host), host=host
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from promstack.watchdog import Watchdog  # alerts, budgets and rollouts on a schedule

        watchdog = Watchdog(pool.client)
        watchdog.start()
        # A mounted MCP app's own lifespan does not run; its session manager runs here.
        try:
            async with mcp_server.session_manager.run():
                yield
        finally:
            watchdog.stop()
        engine = getattr(mcp_server, "engine", None)
        if engine is not None:
            engine.close()
        pool.close()

    from .api import make_routes as api_routes  # the read-only REST API (promstack/web/api.py)
    from .dashboard import dashboard_routes  # the HTML pages (promstack/web/dashboard.py)
    from .otlp import traces_route  # OTLP/HTTP spans into the call log (promstack/web/otlp.py)
    from .rest import create_api  # the REST API under /api/v1 (promstack/web/rest/)

    return Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), Mount("/api/v1", app=create_api(pool)),
                traces_route(pool),
                *api_routes(db, pool=pool), *routes,
                *dashboard_routes(db, pool=pool, gate=gate), *mcp_http.routes],
        middleware=[Middleware(RequestGuard, gate=gate),
                    Middleware(BodyLimit)],
        exception_handlers={PromStackError: _engine_error, RecursionError: _nested_too_deeply},
        lifespan=lifespan,
    )
