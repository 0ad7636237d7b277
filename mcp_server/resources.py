"""Prompts as readable resources, with completion of prompt names and versions.

    promstack://prompts                              every active prompt (JSON)
    promstack://prompts/{+prompt}                    the head of main of one prompt (JSON)
    promstack://prompts/{+prompt}/versions/{version} one version (JSON)

Names contain '/' (support/refund), so the name is a reserved-expansion variable: both the
readable `promstack://prompts/support/refund` and the percent-encoded
`promstack://prompts/support%2Frefund` resolve. The versions template is tried first and takes
the last `/versions/<n>`, so a prompt named `a/versions/3` is still reachable by its own URI.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.resources import FunctionResource
from mcp_types import Completion, PromptReference, ResourceTemplateReference
from mcp_types import Resource as MCPResource

from .engine import Call, is_engine_error
from .prompts import safe_name
from .registry import error_text
from .tools import version_result

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .engine import Engine

SCHEME = "promstack://prompts"
PROMPT_TEMPLATE = SCHEME + "/{+prompt}"
VERSION_TEMPLATE = SCHEME + "/{+prompt}/versions/{version}"
JSON = "application/json"
MAX_COMPLETIONS = 100


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1)


def _listing(call: Call) -> str:
    return _dump([p.to_dict() for p in call.client.list_prompts()])


def _version(call: Call, prompt: str, version: int | None) -> str:
    try:
        found = call.client.get_prompt(prompt, version=version)
    except Exception as exc:
        # 'a/versions/3' may be a prompt's whole name rather than version 3 of 'a'.
        full = f"{prompt}/versions/{version}"
        if version is None or not is_engine_error(exc) or not safe_name(full):
            raise
        try:
            found = call.client.get_prompt(full)
        except Exception:
            raise exc from None
    return _dump(version_result(found).model_dump(mode="json", by_alias=True))


async def _read(engine: Engine, ctx: Context | None, fn) -> str:  # noqa: ANN001 - Call -> str
    try:
        return await engine.read(ctx, fn)
    except Exception as exc:
        if not is_engine_error(exc):
            raise
        from store.errors import NotFound

        if isinstance(exc, NotFound):
            raise ResourceNotFoundError(error_text(exc)) from None
        raise ResourceError(error_text(exc)) from None


def register(server: MCPServer, engine: Engine) -> None:
    async def prompt_list() -> str:
        return await _read(engine, None, _listing)

    server.add_resource(FunctionResource(
        uri=SCHEME, name="prompts", title="All prompts", mime_type=JSON, fn=prompt_list,
        description="Every active prompt in the workspace: id, name, head version, labels, branches.",
    ))

    @server.resource(
        VERSION_TEMPLATE, name="prompt-version", title="A prompt version", mime_type=JSON,
        description="One immutable version of a prompt: template, model_config, variables, author.",
    )
    async def prompt_version(prompt: str, version: str, ctx: Context) -> str:
        if not version.isdigit() or int(version) < 1:
            raise ResourceNotFoundError(f"{version!r} is not a version number; versions are 1, 2, 3, ...")
        return await _read(engine, ctx, lambda call: _version(call, prompt, int(version)))

    @server.resource(
        PROMPT_TEMPLATE, name="prompt", title="A prompt (head of main)", mime_type=JSON,
        description="The head of main of a prompt: template, model_config, variables, author.",
    )
    async def prompt_head(prompt: str, ctx: Context) -> str:
        return await _read(engine, ctx, lambda call: _version(call, prompt, None))

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        if isinstance(ref, ResourceTemplateReference) and ref.uri in (PROMPT_TEMPLATE, VERSION_TEMPLATE):
            if argument.name == "prompt":
                return await engine.read(None, lambda call: _complete_names(call, argument.value))
            if argument.name == "version":
                chosen = (getattr(context, "arguments", None) or {}).get("prompt")
                if chosen:
                    return await engine.read(None, lambda call: _complete_versions(call, chosen, argument.value))
        if isinstance(ref, PromptReference):
            return None  # a prompt's variables are free text
        return None


def resource_list(call: Call) -> list[MCPResource]:
    """One concrete resource per active prompt, so clients can browse without the template."""
    return [
        MCPResource(
            uri=f"{SCHEME}/{quote(p.name, safe='/')}", name=p.name, title=p.name, mime_type=JSON,
            description=f"PromStack prompt #{p.id}, head of main (version {p.head}).",
        )
        for p in call.client.list_prompts()
        if safe_name(p.name)
    ]


def _complete_names(call: Call, prefix: str) -> Completion:
    names = [p.name for p in call.client.list_prompts() if safe_name(p.name)]
    lowered = prefix.lower()
    hits = [n for n in names if n.lower().startswith(lowered)] or [n for n in names if lowered in n.lower()]
    return Completion(values=hits[:MAX_COMPLETIONS], total=len(hits), has_more=len(hits) > MAX_COMPLETIONS)


def _complete_versions(call: Call, prompt: str, prefix: str) -> Completion:
    try:
        versions = [str(v.version) for v in call.client.history(prompt)]
    except Exception as exc:
        if is_engine_error(exc):
            return Completion(values=[])
        raise
    hits = [v for v in versions if v.startswith(prefix)]
    return Completion(values=hits[:MAX_COMPLETIONS], total=len(hits), has_more=len(hits) > MAX_COMPLETIONS)
