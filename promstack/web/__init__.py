"""The HTTP face: `promstack serve` (the MCP endpoint at /mcp now; the dashboard and REST API
join the same app)."""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any):  # noqa: ANN201 - a Starlette app, imported lazily
    from .app import create_app as create

    return create(*args, **kwargs)


__all__ = ["create_app"]
