"""How a PromStack tool is declared and turned into an SDK `Tool`.

A tool is an engine function `(call, args) -> (result, text)` plus a pydantic argument model, a
pydantic result model, a one-sentence description and honest annotations:

    @tool(title="Get a prompt version", read_only=True)
    def get_prompt(call: Call, args: GetPromptArgs) -> tuple[PromptVersionResult, str]:
        \"\"\"Get a prompt's template and model_config: main's head, or a version, label or branch.\"\"\"

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
import json
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

from promstack import access
from store.bounds import too_deep

from .engine import Call, is_engine_error, principal_of
from .schema import compact

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
    # Reaches past the workspace: calls a model provider (paid, and the answer is not ours to
    # predict) or posts to a webhook. A client may ask a person before such a call.
    open_world: bool = False

    @property
    def annotations(self) -> ToolAnnotations:
        # Nothing in PromStack destroys: deletes archive, rollbacks append, history is kept.
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=False,
            idempotent_hint=self.idempotent,
            open_world_hint=self.open_world,
        )


TOOLS: list[ToolSpec] = []


def tool(
    *,
    title: str,
    read_only: bool = False,
    idempotent: bool = False,
    changes_prompts: bool = False,
    long: bool = False,
    open_world: bool = False,
) -> Callable[[Handler], Handler]:
    """Register an engine function as an MCP tool; its docstring is the model-facing description,
    its annotations name the argument and result models. A `long` tool gets `call.progress`; an
    `open_world` one calls a model provider or a webhook."""

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
            open_world=open_world,
        ))
        return fn

    return register


class _RawArguments(FuncMetadata):
    """Hands the tool the arguments as sent, so that validation, and its error sentence, happen
    in the tool. The SDK's repair of objects sent as JSON text (some clients do) applies only to
    arguments that cannot be text: a template that happens to be JSON stays the text it is."""

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        repaired = _repaired(self, arguments_to_validate)
        options = _options(self.arg_model)
        if options is not None:
            # The same repair inside `options`, and for its knobs sent on their own (as before).
            folded = {k: v for k, v in repaired.items() if k in self.arg_model.FOLDED}
            repaired.update(_repaired(options, folded))
            if isinstance(repaired.get("options"), dict):
                repaired["options"] = _repaired(options, repaired["options"])
        return {"arguments": repaired}


def _repaired(metadata: FuncMetadata, arguments: dict[str, Any]) -> dict[str, Any]:
    repaired = metadata.pre_parse_json(arguments)
    for name in _text_arguments(metadata.arg_model):
        if name in arguments:
            repaired[name] = arguments[name]
    return repaired


@functools.cache
def _options(model: type[BaseModel]) -> FuncMetadata | None:
    if not getattr(model, "FOLDED", None):
        return None
    return FuncMetadata(arg_model=model.model_fields["options"].annotation)


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
            # A token whose role is too low: the role needed, before its arguments are looked at.
            access.require(principal_of(ctx), spec.name)
        except access.Forbidden as exc:
            raise ToolError(str(exc)) from None
        try:
            args = spec.args.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(describe_validation_error(spec, exc)) from None
        try:
            work = engine.read if spec.read_only and not spec.long else engine.run
            result, text = await work(ctx, lambda call: spec.handler(call, args))
        except RecursionError:  # arguments nested thousands deep: the caller can fix that
            raise ToolError(str(too_deep(f"the arguments of {spec.name}"))) from None
        except Exception as exc:
            if is_engine_error(exc):
                raise ToolError(error_text(exc)) from None
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
        parameters=input_schema(spec.args),
        fn_metadata=metadata,
        is_async=True,
        context_kwarg="ctx",
        annotations=spec.annotations,
    )


# The steps an engine error suggests (store.errors.Step), as a model takes them: a tool, an argument.
MCP_ACTIONS = {
    "list_prompts": "list_prompts",
    "restore_prompt": "restore_prompt",
    "create_branch": "create_branch",
    "import_suite": "import_test_cases",
    "get_run": "get_run",
    "run_tests": "run_tests with 'models'",
    "judge_run": "judge_run",
    "deploy_version": "deploy_prompt with prompt {prompt}, version {version}, environment {environment!r}",
    "approve_deployment": "promstack deploy approve {id}, run by a person",
}
# An argument's name in the tool's arguments; "<of>.<name>" when one tool spells it differently.
MCP_ARGUMENTS = {"import_suite.prompt": "prompt"}


def mcp_words(step: Any) -> str:
    from store.errors import ARG, plain_words, word_step

    if step.action != ARG:
        return word_step(MCP_ACTIONS, step, plain_words)
    name, of, example = step.params["name"], step.params.get("of"), step.params.get("example")
    argument = MCP_ARGUMENTS.get(f"{of}.{name}") or MCP_ARGUMENTS.get(name) or name
    if example is None:
        return f"the argument '{argument}'"
    return f"'{argument}': {json.dumps(example, ensure_ascii=False)}"


def error_text(exc: BaseException) -> str:
    """An engine error's sentence in MCP's words (tools and their arguments), for a model to act on."""
    worded = getattr(exc, "worded", None)
    return worded(mcp_words) if worded is not None else str(exc)


@functools.cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema (wire names), made once however many tools use it."""
    return model.model_json_schema(by_alias=True)


@functools.cache
def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The arguments' schema as the model reads it (see schema.py)."""
    return compact(_schema(model))


_TYPE_TAGS = {"int", "str", "float", "bool", "list", "dict", "none"}


def describe_validation_error(spec: ToolSpec, exc: ValidationError) -> str:
    """One sentence about the first thing wrong with the arguments, and what to do."""
    errors = exc.errors(include_url=False)
    # An unknown name usually explains a missing one (`name` sent for `prompt`): report it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    path = _location(first["loc"])
    if first["type"] == "missing":
        return f"{spec.name} needs the argument '{path}'; call it again with a value for it"
    if first["type"] == "given_twice":
        return f"{spec.name}: {first['msg']}"
    if first["type"] == "extra_forbidden":
        options = _options(spec.args)
        inside = options is not None and len(first["loc"]) == 2 and first["loc"][0] == "options"
        model, what = (options.arg_model, "option") if inside else (spec.args, "argument")
        name = str(first["loc"][-1]) if inside else path
        known = [(field.alias or n) for n, field in model.model_fields.items()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"{spec.name} has no {what} '{name}'{hint}; its {what}s are: {', '.join(known)}"
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
