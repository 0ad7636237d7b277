"""PromStack's MCP face: `promstack mcp` (stdio) and `/mcp` under `promstack serve`.

Import stays light on purpose (the engine loads on the first request), so a client gets the
`initialize` answer as fast as from a bare SDK server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import PromStackServer

__all__ = ["build_server", "main"]


def build_server(db: Any = None) -> PromStackServer:
    from .server import build_server as build

    return build(db)


def main(db: Any = None) -> None:
    from .server import main as run

    run(db)
