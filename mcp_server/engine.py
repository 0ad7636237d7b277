"""The one door from the MCP face to the engine: which store, who is acting, and on which thread.

The engine is synchronous SQLite. Every call runs on a worker thread, one at a time behind a
lock, so a store held by another writer (the watcher, the CLI) never stalls the event loop and
two requests never interleave on one connection. The engine is imported on the first call, not
at start-up: `promstack mcp` must answer `initialize` as fast as a bare SDK server.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from promstack.access import LOCAL, Principal
from promstack.pool import ClientPool

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from promstack.client import Client

log = logging.getLogger("promstack.mcp")
T = TypeVar("T")
SOURCE = "mcp"
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")

Progress = Callable[[float, float | None, str | None], None]


def _no_progress(done: float, total: float | None = None, message: str | None = None) -> None:
    return None


@dataclass
class Call:
    """What a tool's engine function gets: the store as the acting person, and a progress hook
    that may be called from the worker thread (`call.progress(3, 10, "case 3 of 10")`)."""

    client: Client
    actor: str
    progress: Progress = _no_progress
    source: str = SOURCE
    # Who is asking: a token's principal over `promstack serve`'s HTTP, else the local person.
    principal: Principal = LOCAL

    def workspace_file(self, path: str) -> Path:
        """A file a client named (a test-case CSV, a prompt file), confined to the workspace:
        relative to its root, and refused if it leaves it (`..`, an absolute path, a symlink)."""
        return workspace_file(self.client.store.path, path)


def workspace_file(db: Path | None, path: str) -> Path:
    from mcp.shared.path_security import PathEscapeError, safe_join

    from store.errors import InvalidInput
    from store.workspace import workspace_root

    if db is None:
        raise InvalidInput("this store is in memory; it has no workspace folder to read files from")
    root = workspace_root(Path(db))
    try:
        return safe_join(root, path)
    except (PathEscapeError, ValueError):
        raise InvalidInput(
            f"{path!r} is outside the workspace; name a file under {root.name}/ with a relative path"
        ) from None


class Engine:
    """Clients from a `promstack.pool.ClientPool` (opened lazily): writes with a client acting
    for the person, so every write is attributed, one at a time; reads on the event loop.
    `promstack serve` passes the pool its dashboard and REST API share; otherwise the engine
    makes its own."""

    def __init__(self, db: str | os.PathLike | None = None, *, pool: ClientPool | None = None) -> None:
        self.pool = pool if pool is not None else ClientPool(db)
        self._owns_pool = pool is None
        self._lock = threading.Lock()
        self._default_actor: str | None = None

    @property
    def db(self) -> Path:
        return self.pool.db

    def close(self) -> None:
        if self._owns_pool:
            with self._lock:
                self.pool.close()

    def actor(self, ctx: Context | None) -> str:
        """Who a write is attributed to: over HTTP with a token, the token's name (whatever the
        client calls itself); else PROMSTACK_USER, else the MCP client's name, else the OS user;
        never empty."""
        principal = principal_of(ctx)
        if principal is not LOCAL:
            return principal.name
        configured = os.environ.get("PROMSTACK_USER", "").strip()
        if configured:
            return configured[:100]
        name = _client_name(ctx)
        if name:
            return name
        if self._default_actor is None:
            from store import default_actor

            self._default_actor = default_actor() or SOURCE
        return self._default_actor

    def run_sync(self, actor: str, fn: Callable[[Call], T], progress: Progress = _no_progress,
                 principal: Principal = LOCAL) -> T:
        with self._lock, self.pool.client(actor) as client:
            return fn(Call(client, actor, progress, principal=principal))

    async def run(self, ctx: Context | None, fn: Callable[[Call], T]) -> T:
        """Run `fn(call)` on a worker thread: for writes, and for anything long (it may report
        progress). Engine errors (`PromStackError`) propagate for the face to translate."""
        actor = self.actor(ctx)
        progress = _progress_for(ctx)
        return await anyio.to_thread.run_sync(self.run_sync, actor, fn, progress, principal_of(ctx))

    async def read(self, ctx: Context | None, fn: Callable[[Call], T]) -> T:
        """Run a quick read on the event loop, on a connection of its own. In WAL mode a reader
        never waits for a writer, so this cannot stall the loop behind the watcher or the CLI,
        and it saves the thread hop that would otherwise dominate a sub-millisecond read."""
        with self.pool.client(SOURCE) as client:
            return fn(Call(client, self.actor(ctx), principal=principal_of(ctx)))


def principal_of(ctx: Any) -> Principal:
    """The principal `promstack serve`'s RequestGuard found for the HTTP request behind `ctx` (a
    tool's `Context` or a handler's `ServerRequestContext`); `access.LOCAL` on stdio, or in a
    direct call with no request."""
    if ctx is None:
        return LOCAL
    try:
        request = getattr(ctx, "request_context", ctx).request
    except (ValueError, AttributeError):  # no request in flight
        return LOCAL
    state = getattr(request, "scope", {}).get("state") or {}
    found = state.get("principal")
    return found if isinstance(found, Principal) else LOCAL


def _client_name(ctx: Context | None) -> str:
    if ctx is None:
        return ""
    try:
        params = ctx.request_context.session.client_params
    except (ValueError, AttributeError):  # no request in flight (a direct call, a test)
        return ""
    info = getattr(params, "client_info", None)
    name = getattr(info, "name", None) or ""
    # The client names itself: keep it printable and short, it lands in the audit log.
    return _UNPRINTABLE.sub(" ", str(name)).strip()[:100]


def _progress_for(ctx: Context | None) -> Progress:
    """A progress hook for the worker thread; a no-op when the caller asked for no progress."""
    if ctx is None:
        return _no_progress
    try:
        ctx.request_context  # noqa: B018 - raises outside a request
    except ValueError:
        return _no_progress

    def report(done: float, total: float | None = None, message: str | None = None) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, message)
        except Exception:  # progress is best effort: a gone client must not fail the work
            log.debug("progress notification not delivered", exc_info=True)

    return report


def is_engine_error(exc: BaseException) -> bool:
    """True for the engine's own, anticipated errors (whose message is for people)."""
    from store.errors import PromStackError

    return isinstance(exc, PromStackError)
