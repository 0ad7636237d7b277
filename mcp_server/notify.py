"""Telling clients that the list of prompts (and prompt resources) changed.

Two eras of the protocol deliver this differently: 2026-07-28 clients open a
`subscriptions/listen` stream and get events from the server's subscription bus; handshake-era
clients (Claude Desktop, VS Code today) get `notifications/prompts/list_changed` on their
connection. Changes come from two places: this server's own tools (told at once), and other
processes writing the same store, the watcher and the CLI (noticed by a cheap poll of SQLite's
`data_version`). Delivery is best effort and never fails a tool.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .engine import Call, is_engine_error

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import Context
    from mcp.server.session import ServerSession

    from .engine import Engine

log = logging.getLogger("promstack.mcp")
POLL_SECONDS = 1.0
MAX_SESSIONS = 256


class ChangeWatch:
    """Knows the handshake-era connections and tells them, and the subscription bus, about
    changes to the prompt list."""

    def __init__(self, engine: Engine, bus: InMemorySubscriptionBus, interval: float = POLL_SECONDS) -> None:
        self.engine = engine
        self.bus = bus
        self.interval = interval
        # Handshake-era connections by their (connection-scoped) initialize params.
        self._sessions: OrderedDict[int, tuple[Any, ServerSession]] = OrderedDict()
        self._last: tuple | None = None
        self._data_version: int | None = None

    async def middleware(self, ctx: ServerRequestContext, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        """Server middleware: remember each handshake-era connection that talks to us."""
        params = getattr(ctx.session, "client_params", None)
        if params is not None and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            key = id(params)
            if key not in self._sessions:
                self._sessions[key] = (params, ctx.session)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
        return await call_next(ctx)

    async def changed_here(self, ctx: Context) -> None:
        """A tool of ours wrote to the store: tell everyone now if the listing changed. The poll
        may have run while the write was in flight and told them already; then this stays quiet,
        and the poll stays quiet after it, since both compare against the same last listing."""
        try:
            found = await self.engine.read(None, lambda call: self._fingerprint(call, always=True))
        except Exception as exc:
            if not is_engine_error(exc):
                raise
            found = None
        if found is not None:
            if found == self._last:
                return
            self._last = found
        await self.broadcast()

    async def broadcast(self) -> None:
        for event in (PromptsListChanged(), ResourcesListChanged()):
            await self.bus.publish(event)
        for key, (_, session) in list(self._sessions.items()):
            try:
                await session.send_prompt_list_changed()
                await session.send_resource_list_changed()
            except Exception:  # the connection is gone: forget it
                log.debug("list_changed not delivered; forgetting the connection", exc_info=True)
                self._sessions.pop(key, None)

    async def poll_once(self) -> bool:
        """Look for changes by other processes; True when clients were told."""
        try:
            found = await self.engine.read(None, self._fingerprint)
        except Exception as exc:
            if is_engine_error(exc):  # no workspace yet, or the store is busy: look again later
                return False
            raise
        if found is None:
            return False
        previous, self._last = self._last, found
        if previous is None or previous == found:
            return False
        await self.broadcast()
        return True

    def _fingerprint(self, call: Call, always: bool = False) -> tuple | None:
        """What the prompt listing depends on; None when nothing was committed since last time
        (SQLite's data_version moves on every commit by another connection: a cheap check)."""
        # A team server's store has no local connection to ask: its listing is compared instead.
        version = None if call.client.remote else call.client.store.db.conn.execute("PRAGMA data_version").fetchone()[0]
        if version is not None and version == self._data_version and not always:
            return None
        self._data_version = version
        listing = tuple((p.id, p.name, p.archived, p.head) for p in call.client.list_prompts(include_archived=True))
        if call.client.remote:
            return listing
        # A finished quick check of a save (promstack.evals.check) changes what get_history shows.
        from promstack.evals.check import announce_mark

        return (*listing, announce_mark(call.client))

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            try:
                await self.poll_once()
            except Exception:  # a watcher must outlive any one bad poll
                log.exception("promstack: watching the store for changes failed")
