"""The MCP face's wire shapes: tool arguments and structured results, as pydantic models.

`model_config` is both a DESIGN argument name and the one attribute pydantic reserves for a
model's own configuration, so the Python field is `config` and the wire name is its alias. The
argument models are validated in the tool (see registry.py) so that a bad argument becomes one
sentence for the model to act on; the results are what `structuredContent` carries.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_TEMPLATE_CHARS = 1_000_000

# ---- argument pieces ----------------------------------------------------------------------


def _not_a_bool(value: Any) -> Any:
    # pydantic would read true as 1: a model that sends a boolean for a number meant something else.
    if isinstance(value, bool):
        raise ValueError("expected a whole number such as 3, not true or false")
    return value


WholeNumber = Annotated[int, Field(ge=1), BeforeValidator(_not_a_bool)]
PromptRef = Annotated[
    WholeNumber | Annotated[str, Field(min_length=1, max_length=200)],
    Field(description="The prompt's id (e.g. 42) or its name (e.g. 'support/refund')."),
]
Version = Annotated[WholeNumber, Field(description="A version number of the prompt (1, 2, 3, ...).")]
RefName = Annotated[str, Field(min_length=1, max_length=100)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer", "tool"] = Field(
        description="Who speaks: system, user, assistant, developer or tool."
    )
    content: str = Field(max_length=MAX_TEMPLATE_CHARS, description="The message text; may use {{ variables }}.")
    name: str | None = Field(default=None, max_length=100, description="Optional speaker name.")


Template = Annotated[
    Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)] | Annotated[list[ChatMessage], Field(min_length=1)],
    Field(
        description="The prompt text with {{ variable }} placeholders (Jinja2), or a list of chat "
        "messages [{role, content}]."
    ),
]
ModelConfig = Annotated[
    dict[str, Any] | None,
    Field(
        default=None,
        alias="model_config",
        description="Model settings such as {\"model\": \"gpt-4o-mini\", \"temperature\": 0.2, "
        "\"max_tokens\": 500}; an optional \"variables\" object types and describes variables.",
    ),
]
Message = Annotated[
    str | None, Field(default=None, max_length=2000, description="Why this change was made, like a commit message.")
]


class Args(ArgModelBase):
    """Base of every tool's arguments: unknown names are refused, so a typo is reported. (The
    SDK's argument base, so that its repair of objects sent as JSON text can read the fields.)"""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)


class ListPromptsArgs(Args):
    include_deleted: bool = Field(default=False, description="Also list deleted (archived) prompts.")


class GetPromptArgs(Args):
    prompt: PromptRef
    version: Version | None = Field(default=None, description="A version number; omit for the head of main.")
    label: RefName | None = Field(default=None, description="A label such as 'production'; omit for the head of main.")
    branch: RefName | None = Field(default=None, description="A branch name; omit for main.")


class CreatePromptArgs(Args):
    prompt: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The new prompt's name: segments of letters, digits, '_', '-', '.' joined by '/', "
        "e.g. 'support/refund'."
    )
    template: Template
    config: ModelConfig
    description: str | None = Field(default=None, max_length=2000, description="What the prompt is for.")
    message: Message


class UpdatePromptArgs(Args):
    prompt: PromptRef
    template: Template | None = Field(default=None, description="The new template; omit to keep the current one.")
    config: ModelConfig
    message: Message
    branch: RefName = Field(default="main", description="The branch to save on (default main).")


class PromptOnlyArgs(Args):
    prompt: PromptRef


class GetHistoryArgs(Args):
    prompt: PromptRef
    branch: RefName | None = Field(default=None, description="Only this branch's line of ancestry; omit for every version.")
    limit: int = Field(default=20, ge=1, le=500, description="At most this many versions, newest first.")


class DiffVersionsArgs(Args):
    prompt: PromptRef
    from_version: Version = Field(description="The older version to compare from.")
    to_version: Version | None = Field(default=None, description="The newer version; omit for the head of main.")


class RollbackPromptArgs(Args):
    prompt: PromptRef
    version: Version = Field(description="The version whose content becomes the new head.")
    branch: RefName = Field(default="main", description="The branch to roll back (default main).")
    message: Message


class CreateBranchArgs(Args):
    prompt: PromptRef
    branch: RefName = Field(description="The new branch's name, e.g. 'experiment/shorter'.")
    from_version: Version | None = Field(default=None, description="Fork from this version; omit for the head of main.")


class MergeBranchArgs(Args):
    prompt: PromptRef
    branch: RefName = Field(description="The branch whose changes to merge.")
    into: RefName = Field(default="main", description="The branch to merge into (default main).")
    message: Message


class SetLabelArgs(Args):
    prompt: PromptRef
    label: RefName = Field(description="The label to move, e.g. 'production' or 'staging'.")
    version: Version = Field(description="The version the label should point at.")
    reason: str | None = Field(default=None, max_length=2000,
                               description="Why the label moves, kept in its history; required with force.")
    force: bool = Field(default=False, description=(
        "Move a gated environment's label (e.g. production) without running its gate; needs a reason and is "
        "recorded as a forced deployment. Only when a person asked for it."))
    rerun: bool = Field(default=False, description=(
        "Run the gate's test suite afresh instead of reusing a passing run of the same version from the last day."))


# ---- results ------------------------------------------------------------------------------


class Result(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Variable(Result):
    name: str
    type: str = "string"
    required: bool = True
    description: str | None = None
    default: Any = None


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
