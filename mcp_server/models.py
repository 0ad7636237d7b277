"""The MCP face's wire shapes: tool arguments and structured results, as pydantic models.

`model_config` is both a DESIGN argument name and the one attribute pydantic reserves for a
model's own configuration, so the Python field is `config` and the wire name is its alias. The
argument models are validated in the tool (see registry.py) so that a bad argument becomes one
sentence for the model to act on; the results are what `structuredContent` carries.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

MAX_TEMPLATE_CHARS = 1_000_000

# ---- argument pieces ----------------------------------------------------------------------


def _not_a_bool(value: Any) -> Any:
    # pydantic would read true as 1: a model that sends a boolean for a number meant something else.
    if isinstance(value, bool):
        raise ValueError("expected a whole number such as 3, not true or false")
    return value


WholeNumber = Annotated[int, Field(ge=1), BeforeValidator(_not_a_bool)]
# Descriptions are for the model that fills the arguments, and it reads them in every
# conversation: only what the name does not say (bench/bench_mcp_context.py counts them).
# A prompt is advertised as text ("42" or "support/refund"): half the tokens of an integer-or-
# string union, on 21 tools. A JSON integer is accepted all the same.
PromptRef = Annotated[
    WholeNumber | Annotated[str, Field(min_length=1, max_length=200)],
    WithJsonSchema({"type": "string"}),
    Field(description="Id or name."),
]
Version = WholeNumber
RefName = Annotated[str, Field(min_length=1, max_length=100)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str = Field(max_length=MAX_TEMPLATE_CHARS)
    name: str | None = Field(default=None, max_length=100)


Template = Annotated[
    Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)] | Annotated[list[ChatMessage], Field(min_length=1)],
    Field(description="Text with {{ variables }}, or chat messages."),
]
ModelConfig = Annotated[
    dict[str, Any] | None,
    Field(
        default=None,
        alias="model_config",
        description="E.g. {model: gpt-4o-mini, temperature: 0.2, variables: {name: {type, description, default}}}.",
    ),
]
Message = Annotated[
    str | None, Field(default=None, max_length=2000, description="Commit message.")
]


class Args(ArgModelBase):
    """Base of every tool's arguments: unknown names are refused, so a typo is reported. (The
    SDK's argument base, so that its repair of objects sent as JSON text can read the fields.)

    Rarely used knobs live in one optional `options` object, so the model reads one argument,
    not five, in every conversation. `FOLDED` names the knobs that were top-level arguments
    before: a client that still sends them there is understood (they move into `options`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)
    FOLDED: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _fold_into_options(cls, data: Any) -> Any:
        if not cls.FOLDED or not isinstance(data, dict) or not cls.FOLDED & data.keys():
            return data
        options = data.get("options")
        if options is None:
            options = {}
        if not isinstance(options, dict):
            return data  # the check of `options` itself says what is wrong
        moved = {name: value for name, value in data.items() if name in cls.FOLDED}
        twice = sorted(moved.keys() & options.keys())
        if twice:
            raise PydanticCustomError(
                "given_twice", "{name} is given both on its own and in options; send it once, in options",
                {"name": twice[0]},
            )
        rest = {name: value for name, value in data.items() if name not in cls.FOLDED}
        return {**rest, "options": {**options, **moved}}


class Options(ArgModelBase):
    """A tool's `options` object (an argument base too, so the SDK's JSON-text repair reads it)."""

    model_config = ConfigDict(extra="forbid")


class ListPromptsArgs(Args):
    include_deleted: bool = False


class GetPromptArgs(Args):
    prompt: PromptRef
    version: Version | None = None
    label: RefName | None = None
    branch: RefName | None = None


class CreatePromptArgs(Args):
    prompt: Annotated[str, Field(min_length=1, max_length=200)] = Field(description="New name, e.g. 'support/refund'.")
    template: Template
    config: ModelConfig
    description: str | None = Field(default=None, max_length=2000)
    message: Message


class UpdatePromptArgs(Args):
    prompt: PromptRef
    template: Template | None = None
    config: ModelConfig
    message: Message
    branch: RefName = "main"


class PromptOnlyArgs(Args):
    prompt: PromptRef


class GetHistoryArgs(Args):
    prompt: PromptRef
    branch: RefName | None = None
    limit: int = Field(default=20, ge=1, le=500)


class DiffVersionsArgs(Args):
    prompt: PromptRef
    from_version: Version
    to_version: Version | None = Field(default=None, description="Default: main's head.")


class RollbackPromptArgs(Args):
    prompt: PromptRef
    version: Version = Field(description="Its content becomes the new head.")
    branch: RefName = "main"
    message: Message


class CreateBranchArgs(Args):
    prompt: PromptRef
    branch: RefName = Field(description="New branch name.")
    from_version: Version | None = Field(default=None, description="Default: main's head.")


class MergeBranchArgs(Args):
    prompt: PromptRef
    branch: RefName
    into: RefName = "main"
    message: Message


FORCE = "Skip the gate; audited. Only if a person asks."
RERUN = "Rerun the gate's tests, not reuse a passing run."


class SetLabelArgs(Args):
    prompt: PromptRef
    label: RefName
    version: Version
    reason: str | None = Field(default=None, max_length=2000, description="Required with force.")
    force: bool = Field(default=False, description=FORCE)
    rerun: bool = Field(default=False, description=RERUN)


# ---- results ------------------------------------------------------------------------------


class Result(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


# Any JSON value, spelled so that a strict client sees a schema that constrains (a bare `{}`
# is "accepts anything" and MCP Inspector's --strict warns about it).
JsonValue = Annotated[Any, WithJsonSchema({"anyOf": [
    {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "array"}, {"type": "object"},
    {"type": "null"},
]})]


class Variable(Result):
    name: str
    type: str = "string"
    required: bool = True
    description: str | None = None
    default: JsonValue = None


class PromptVersionResult(Result):
    prompt_id: int
    name: str
    version: int
    branch: str
    kind: Literal["text", "chat"]
    template: str | list[dict[str, str]]
    config: dict[str, Any] = Field(alias="model_config")
    variables: list[Variable]
    sha256: str
    parent: int | None
    merge_parent: int | None
    message: str | None
    author: str
    source: str
    created_at: str
    created: bool = Field(description="False when the content equalled the head, so no version was made.")
    warnings: list[str] = Field(default_factory=list)


class PromptSummary(Result):
    id: int
    name: str
    description: str | None
    created_at: str
    created_by: str
    archived: bool
    head: int | None
    versions: int
    labels: dict[str, int]
    branches: list[str]


class PromptListResult(Result):
    prompts: list[PromptSummary]


class VersionSummary(Result):
    version: int
    branch: str
    parent: int | None
    merge_parent: int | None
    message: str | None
    author: str
    source: str
    sha256: str
    created_at: str


class HistoryResult(Result):
    prompt_id: int
    name: str
    versions: list[VersionSummary] = Field(description="Newest first.")


class DiffResult(Result):
    prompt_id: int
    name: str
    from_version: int
    to_version: int
    unified: str = Field(description="A unified line diff of the two templates.")
    added: int = Field(description="Lines added.")
    removed: int = Field(description="Lines removed.")
    added_words: int
    removed_words: int
    config_changes: dict[str, dict[str, Any]] = Field(description="model_config keys that changed: {from, to}.")


class BranchResult(Result):
    prompt_id: int
    name: str
    head: int
    forked_from: int | None
    created_at: str
    created_by: str


class LabelResult(Result):
    prompt_id: int
    label: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    at: str
