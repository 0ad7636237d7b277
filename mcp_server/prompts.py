"""Every active stored prompt as an MCP prompt, so it shows in Claude Desktop's prompt picker.

The listing is read from the store on every request (the watcher and the CLI write to it too).
A prompt's MCP description and argument descriptions are built only from validated names,
numbers and variable types, never from stored text: what a model reads in a listing must not be
something a prompt author typed (that is how tool poisoning works). Picking a prompt renders
the head of main with the given arguments.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    GetPromptResult,
    PromptArgument,
    PromptMessage,
    ResourceLink,
    TextContent,
)
from mcp_types import Prompt as MCPPrompt

from .engine import Call, is_engine_error
from .registry import error_text

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from .engine import Engine

# The store's own rule for names (store/prompts.py NAME_RE), checked again here because a name
# lands in what the model reads; a stored name that fails it is left out of the listing.
NAME_RE = re.compile(r"^(?!\d+$)[\w][\w.-]*(/[\w][\w.-]*)*$")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
VARIABLE_TYPES = ("string", "number", "integer", "boolean", "array", "object")


def safe_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 200 and bool(NAME_RE.match(name))


def _arguments(variables: list[dict[str, Any]]) -> list[PromptArgument]:
    arguments = []
    for var in variables:
        name = var.get("name")
        if not isinstance(name, str) or not VARIABLE_RE.match(name):
            continue
        kind = var.get("type") if var.get("type") in VARIABLE_TYPES else "string"
        arguments.append(PromptArgument(
            name=name,
            description=f"Value for {{{{ {name} }}}} ({kind}{', JSON' if kind in ('array', 'object') else ''})",
            required=bool(var.get("required", True)),
        ))
    return arguments


def list_mcp_prompts(call: Call) -> list[MCPPrompt]:
    listed = []
    for summary in call.client.list_prompts():
        if not safe_name(summary.name) or not summary.head:
            continue
        head = call.client.get_prompt(summary.id)
        arguments = _arguments(head.variables)
        needs = ", ".join(a.name for a in arguments) or "no variables"
        listed.append(MCPPrompt(
            name=summary.name,
            title=summary.name,
            description=f"PromStack prompt #{summary.id}, version {head.version} (head of main); takes {needs}.",
            arguments=arguments,
        ))
    return listed


def _value(raw: Any, kind: str) -> Any:
    """MCP prompt arguments are strings; typed variables take their JSON form."""
    if kind == "string" or not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested thousands deep: the text as given
        return raw


def _contents(content: Any) -> list[Any]:
    """A message's text, or its parts (a Dotprompt `{{media}}` is an image_url part): a media
    URL is a resource link, which MCP prompt messages can carry."""
    if isinstance(content, str):
        return [TextContent(type="text", text=content)]
    out: list[Any] = []
    for part in content:
        if part.get("type") == "image_url":
            image = part.get("image_url") or {}
            out.append(ResourceLink(type="resource_link", uri=image.get("url", ""), name="media",
                                    mime_type=image.get("format")))
        else:
            out.append(TextContent(type="text", text=str(part.get("text", ""))))
    return out


def render_mcp_prompt(call: Call, name: str, arguments: dict[str, Any]) -> GetPromptResult:
    head = call.client.get_prompt(name)
    kinds = {v["name"]: v.get("type", "string") for v in head.variables}
    values = {k: _value(v, kinds.get(k, "string")) for k, v in arguments.items()}
    rendered = head.render(**values)
    if isinstance(rendered, str):
        messages = [PromptMessage(role="user", content=TextContent(type="text", text=rendered))]
    else:
        # MCP prompt messages speak as user or assistant; system and developer text leads the
        # conversation as the user's.
        messages = [
            PromptMessage(role="assistant" if m["role"] == "assistant" else "user", content=content)
            for m in rendered for content in _contents(m["content"])
        ]
    return GetPromptResult(
        description=f"PromStack prompt #{head.prompt_id} version {head.version}", messages=messages
    )


async def get_mcp_prompt(engine: Engine, ctx: Context | None, name: str, arguments: dict[str, Any] | None) -> GetPromptResult:
    if not safe_name(name):
        raise MCPError(code=INVALID_PARAMS, message=f"{name!r} is not a PromStack prompt name")
    try:
        # A worker thread, not the event loop: a render may take seconds (up to its deadline), and
        # the loop serves every other request meanwhile.
        return await engine.run(ctx, lambda call: render_mcp_prompt(call, name, dict(arguments or {})))
    except Exception as exc:
        if is_engine_error(exc):
            raise MCPError(code=INVALID_PARAMS, message=error_text(exc)) from None
        raise
