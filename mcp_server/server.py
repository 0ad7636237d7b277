"""The PromStack MCP server: tools, resources and prompts over one workspace's store.

    from mcp_server import build_server
    server = build_server()          # the workspace's store (PROMSTACK_DB, else .promstack/)
    server.run()                     # stdio; promstack/web mounts it over Streamable HTTP

Stdout carries the protocol, so this module (and everything it calls) logs to stderr only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp_types import GetPromptResult
from mcp_types import Prompt as MCPPrompt
from mcp_types import Resource as MCPResource

from promstack.access import LOCAL

from . import prompts, resources, tools, tools_deploy, tools_evals, tools_monitor, tools_run  # noqa: F401 - tools register themselves
from .engine import Call, Engine, is_engine_error, principal_of
from .notify import POLL_SECONDS, ChangeWatch
from .registry import TOOLS, build_tool

if TYPE_CHECKING:
    from promstack.pool import ClientPool

log = logging.getLogger("promstack.mcp")
T = TypeVar("T")

INSTRUCTIONS = (
    "PromStack keeps LLM prompts under version control, like git: every change is an immutable "
    "version you can diff, branch, merge, roll back and deploy by moving a label such as "
    "production. Start with list_prompts; a prompt is named by its id (42) or its name "
    "('support/refund'). Nothing is ever destroyed: deletes archive and rollbacks append."
)


class PromStackServer(MCPServer):
    """An `MCPServer` whose prompt and resource listings come from the store on every request,
    since other processes (the watcher, the CLI) change it while the server runs."""

    watch: ChangeWatch | None = None

    def __init__(self, engine: Engine, **kwargs: Any) -> None:
        self.engine = engine
        super().__init__(**kwargs)

    async def list_prompts(self) -> list[MCPPrompt]:
        return await self._listing(prompts.list_mcp_prompts)

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context | None = None
    ) -> GetPromptResult:
        return await prompts.get_mcp_prompt(self.engine, context, name, arguments)

    async def list_resources(self) -> list[MCPResource]:
        return [*await super().list_resources(), *await self._listing(resources.resource_list)]

    async def _listing(self, fn: Callable[[Call], list[T]]) -> list[T]:
        """Clients list on connect; with no workspace yet that is an empty list, not an error
        (the tools say what to do)."""
        try:
            return await self.engine.read(None, fn)
        except Exception as exc:
            if not is_engine_error(exc):
                raise
            log.warning("promstack: %s", exc)
            return []


async def only_allowed_tools(ctx: ServerRequestContext, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """tools/list shows a token only the tools its role may call (`access.NEEDS` by tool name);
    a call to another is refused in the tool itself (registry.build_tool), naming the role."""
    result = await call_next(ctx)
    principal = principal_of(ctx)
    if ctx.method == "tools/list" and principal is not LOCAL and isinstance(result, dict):
        result["tools"] = [t for t in result.get("tools", []) if principal.may(t.get("name", ""))]
    return result


def build_server(db: str | os.PathLike | None = None, *, poll_seconds: float = POLL_SECONDS,
                 pool: ClientPool | None = None) -> PromStackServer:
    """The server over the store at `db` (None: PROMSTACK_DB, else the workspace's), opened on
    the first request. Every `poll_seconds` it looks for changes other processes made. `pool`:
    the clients it shares with the other faces of one app (`promstack serve`); None, its own."""
    from promstack import __version__

    engine = Engine(db, pool=pool)
    bus = InMemorySubscriptionBus()
    watch = ChangeWatch(engine, bus, poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[dict[str, Any]]:
        checkers: list[Any] = []
        async with anyio.create_task_group() as background:
            background.start_soon(watch.run)
            if pool is None:  # `promstack serve` runs its own
                background.start_soon(_start_checker, engine, checkers)
            yield {}
            background.cancel_scope.cancel()
        for checker in checkers:
            await anyio.to_thread.run_sync(checker.stop)

    server = PromStackServer(
        engine,
        name="promstack",
        title="PromStack",
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=[build_tool(spec, engine, watch.changed_here) for spec in TOOLS],
        subscriptions=bus,
        middleware=[watch.middleware, only_allowed_tools],
        lifespan=lifespan,
        log_level="WARNING",
    )
    server.watch = watch
    resources.register(server, engine)
    _advertise_list_changed(server)
    return server


CHECKER_AFTER_S = 1.0


async def _start_checker(engine: Engine, started: list[Any]) -> None:
    """The quick checks of saves (promstack.evals.check) run in this long-lived server too,
    started a moment after it is up: its imports stay off the client's wait for `initialize`."""
    await anyio.sleep(CHECKER_AFTER_S)

    def start(call: Call) -> Any:
        from promstack.evals.check import start_checker

        return start_checker(call.client)

    try:
        checker = await engine.read(None, start)
    except Exception as exc:
        if not is_engine_error(exc):
            raise
        return  # no workspace yet: its saves are checked by whoever saves them
    if checker is not None:
        started.append(checker)


def _advertise_list_changed(server: MCPServer) -> None:
    """Handshake-era clients learn from `initialize` that prompts and resources send
    list_changed; every transport (stdio, HTTP, the in-memory test client) asks the low-level
    server for its options without arguments, so the default is set there."""
    lowlevel = server._lowlevel_server
    lowlevel.create_initialization_options = functools.partial(
        lowlevel.create_initialization_options,
        NotificationOptions(prompts_changed=True, resources_changed=True),
    )


def main(db: str | os.PathLike | None = None) -> None:
    """Serve MCP on stdio until the client closes it."""
    build_server(db).run("stdio")
