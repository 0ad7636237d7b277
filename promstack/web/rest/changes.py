"""Whether anything a prompt listing shows changed on the server: a change mark to poll
(`Client.change_mark`). A client far away (the MCP server on a laptop) asks every few seconds
and reads the prompts again only when the mark moved."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from . import Caller, needs

router = APIRouter(tags=["prompts"])


class Changes(BaseModel):
    cursor: str = Field(description="The store's change mark now; give it as `since` next time.")
    changed: bool = Field(description="Whether the mark moved since `since` (true when no `since` was given).")


@router.get("/changes", response_model=Changes)
def changes(request: Request, response: Response, since: str | None = None,
            caller: Caller = needs("watch_changes")) -> Any:
    """The store's change mark: it moves on a save, a label move, an archive or restore, and a
    finished quick check of a save. Also its ETag: with `If-None-Match` it answers 304 when
    nothing changed."""
    with caller.client() as client:
        mark = client.change_mark()
    etag = f'"{mark}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    return Changes(cursor=mark, changed=since != mark)
