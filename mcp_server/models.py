"""The MCP face's tool arguments, as pydantic models; the results they return, and the pieces
the arguments are made of, are the engine's (`promstack.schemas`, shared with the REST API).

`model_config` is both a DESIGN argument name and the one attribute pydantic reserves for a
model's own configuration, so the Python field is `config` and the wire name is its alias. The
argument models are validated in the tool (see registry.py) so that a bad argument becomes one
sentence for the model to act on; the results are what `structuredContent` carries.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

# The argument pieces and the results are the engine's (promstack.schemas), shared with the REST
# API; re-exported here, where the tools have always found them.
from promstack.schemas import (  # noqa: F401
    MAX_TEMPLATE_CHARS,
    BranchResult,
    ChatMessage,
    DiffResult,
    HistoryResult,
    JsonValue,
    LabelResult,
    Message,
    ModelConfig,
    PromptListResult,
    PromptRef,
    PromptSummary,
    PromptVersionResult,
    RefName,
    Result,
    Template,
    Variable,
    Version,
    VersionSummary,
    WholeNumber,
)


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
    behaviour: bool | None = None  # true: also run both on the suite and judge their outputs
    suite: str | None = Field(default=None, min_length=1, max_length=100)


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


