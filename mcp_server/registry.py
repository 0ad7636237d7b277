"""How a PromStack tool is declared and turned into an SDK `Tool`.

A tool is an engine function `(call, args) -> (result, text)` plus a pydantic argument model, a
pydantic result model, a two-sentence description and honest annotations:

    @tool(read_only=True)
    def get_prompt(call: Call, args: GetPromptArgs) -> tuple[PromptVersionResult, str]:
        \"\"\"Fetch one version of a stored prompt ... Returns its template, model_config ...\"\"\"

The SDK would derive arguments from the function signature, but `model_config` (a DESIGN
argument name) is reserved by pydantic, and its validation errors arrive as a multi-line dump.
So the arguments are validated here, against the declared model (wire names are aliases), and a
bad one becomes one sentence for the model to act on; engine errors become `ToolError` with the
engine's sentence. Anything else is a bug: the SDK logs it and answers "Error executing tool".
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin, get_type_hints

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from .engine import Call, is_engine_error

if TYPE_CHECKING:
    from .engine import Engine

Handler = Callable[[Call, Any], tuple[BaseModel, str]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    args: type[BaseModel]
    result: type[BaseModel]
    handler: Handler
    read_only: bool
    idempotent: bool
    changes_prompts: bool
    long: bool = False  # may take more than a second: runs on a worker thread, reports progress

    @property
    def annotations(self) -> ToolAnnotations:
        # Nothing in PromStack destroys: deletes archive, rollbacks append, history is kept.
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=False,
            idempotent_hint=self.idempotent,
            open_world_hint=False,
        )


TOOLS: list[ToolSpec] = []


def tool(
    *,
    title: str,
    read_only: bool = False,
    idempotent: bool = False,
    changes_prompts: bool = False,
    long: bool = False,
) -> Callable[[Handler], Handler]:
    """Register an engine function as an MCP tool; its docstring is the model-facing description,
    its annotations name the argument and result models. A `long` tool gets `call.progress`."""

    def register(fn: Handler) -> Handler:
        hints = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        result = hints["return"].__args__[0]
        description = inspect.cleandoc(fn.__doc__ or "")
        if not description:
            raise TypeError(f"tool {fn.__name__} needs a docstring: it is the model's description")
        TOOLS.append(ToolSpec(
            name=fn.__name__, title=title, description=" ".join(description.split()),
            args=hints[params[1]], result=result, handler=fn,
            read_only=read_only, idempotent=idempotent, changes_prompts=changes_prompts, long=long,
        ))
        return fn

    return register


class _RawArguments(FuncMetadata):
    """Hands the tool the arguments as sent, so that validation, and its error sentence, happen
    in the tool. The SDK's repair of objects sent as JSON text (some clients do) applies only to
    arguments that cannot be text: a template that happens to be JSON stays the text it is."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        repaired = self.pre_parse_json(arguments_to_validate)
        for name in _text_arguments(self.arg_model):
            if name in arguments_to_validate:
                repaired[name] = arguments_to_validate[name]
        return {"arguments": repaired}


@functools.cache
def _text_arguments(model: type[BaseModel]) -> frozenset[str]:
    def accepts_text(annotation: Any) -> bool:
        origin = get_origin(annotation)
        if origin is Annotated:
            return accepts_text(get_args(annotation)[0])
        if origin is Union or origin is types.UnionType:
            return any(accepts_text(arg) for arg in get_args(annotation))
        return annotation is str

    return frozenset(
        field.alias or name for name, field in model.model_fields.items() if accepts_text(field.annotation)
    )


def build_tool(
    spec: ToolSpec, engine: Engine, on_change: Callable[[Context], Awaitable[None]] | None = None
) -> Tool:
    """The SDK tool for `spec`; `on_change(ctx)` runs after a tool that changes prompts."""

    async def run(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        try:
            args = spec.args.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(describe_validation_error(spec, exc)) from None
        try:
            work = engine.read if spec.read_only and not spec.long else engine.run
            result, text = await work(ctx, lambda call: spec.handler(call, args))
        except RecursionError:  # arguments nested thousands deep: the caller can fix that
            raise ToolError(f"the arguments of {spec.name} nest too deeply to handle; flatten them") from None
        except Exception as exc:
            if is_engine_error(exc):
                raise ToolError(str(exc)) from None
            raise
        if spec.changes_prompts and on_change is not None:
            await on_change(ctx)
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=result.model_dump(mode="json", by_alias=True),
        )

    run.__name__ = spec.name
    metadata = _RawArguments(
        arg_model=spec.args, output_model=spec.result, output_schema=_schema(spec.result)
    )
    return Tool(
        fn=run,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        parameters=_schema(spec.args),
        fn_metadata=metadata,
        is_async=True,
        context_kwarg="ctx",
        annotations=spec.annotations,
    )


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema (wire names), made once however many tools use it."""
    return model.model_json_schema(by_alias=True)


_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "none"}


def describe_validation_error(spec: ToolSpec, exc: ValidationError) -> str:
    """One sentence about the first thing wrong with the arguments, and what to do."""
    errors = exc.errors(include_url=False)
    # An unknown name usually explains a missing one (`name` sent for `prompt`): report it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    path = _location(first["loc"])
    if first["type"] == "missing":
        return f"{spec.name} needs the argument '{path}'; call it again with a value for it"
    if first["type"] == "extra_forbidden":
        known = [(field.alias or name) for name, field in spec.args.model_fields.items()]
        close = difflib.get_close_matches(path, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{spec.name} has no argument '{path}'{hint}; its arguments are: {', '.join(known)}"
    shown = repr(first.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    message = first["msg"][:1].lower() + first["msg"][1:]
    return f"argument '{path}' of {spec.name} is wrong: {message} (got {shown}); fix it and call {spec.name} again"


def _location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif isinstance(part, str) and part.isidentifier() and part.lower() not in _TYPE_TAGS:
            parts.append(("." if parts else "") + part)
    return "".join(parts) or "arguments"
