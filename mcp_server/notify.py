"""Telling clients that the list of prompts (and prompt resources) changed.

Two eras of the protocol deliver this differently: 2026-07-28 clients open a
`subscriptions/listen` stream and get events from the server's subscription bus; handshake-era
clients (Claude Desktop, VS Code today) get `notifications/prompts/list_changed` on the
connection. A write through MCP notifies both; delivery is best effort and never fails a tool.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

log = logging.getLogger("promstack.mcp")


async def prompts_changed(ctx: Context) -> None:
    """The set of prompts, or what one of them renders, changed."""
    try:
        await ctx.notify_prompts_changed()
        await ctx.notify_resources_changed()
    except Exception:  # no bus outside a request
        log.debug("list_changed not published", exc_info=True)
    try:
        request = ctx.request_context
    except ValueError:
        return
    if request.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return
    try:
        await request.session.send_prompt_list_changed()
        await request.session.send_resource_list_changed()
    except Exception:  # a client with no standing stream (stateless HTTP) simply misses it
        log.debug("list_changed notification not delivered", exc_info=True)
