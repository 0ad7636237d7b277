"""The records the store hands out. Plain dataclasses: `model_config` is a field here, a name
pydantic reserves, and these objects carry no validation of their own (the store validates)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .template import Template


@dataclass
class PromptVersion:
    prompt_id: int
    name: str
    version: int
    branch: str
    kind: str
    template: str | list[dict[str, str]]
    model_config: dict[str, Any]
    variables: list[dict[str, Any]]
    sha256: str
    parent: int | None
    merge_parent: int | None
    message: str | None
    author: str
    source: str
    created_at: str
    created: bool = True
    warnings: list[str] = field(default_factory=list)
    _renderer: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    def render(self, /, **variables: Any) -> str | list[dict[str, str]]:  # `self` may be a variable
        """The template with `variables` filled in (chat prompts render every message)."""
        if self._renderer is None:
            raise RuntimeError("this version was not loaded from a store")
        return self._renderer(self, variables)

    def to_dict(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies `_renderer`, a method bound to the store's connection,
        # which cannot be copied.
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
                if f.name != "_renderer"}


@dataclass
class Prompt:
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Branch:
    prompt_id: int
    name: str
    head: int
    forked_from: int | None
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LabelMove:
    prompt_id: int
    label: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Diff:
    prompt_id: int
    name: str
    from_version: int
    to_version: int
    unified: str
    words: list[tuple[int, str]]  # (0 equal | 1 added | -1 removed, text)
    added: int  # lines
    removed: int
    added_words: int
    removed_words: int
    config_changes: dict[str, dict[str, Any]]  # key -> {"from": old, "to": new}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def content_hash(template: Template, model_config: dict[str, Any]) -> str:
    """A version's sha256: its template (kind and text) and model config, not its message or author."""
    body = json.dumps(
        {"kind": template.kind, "template": template.text, "model_config": model_config},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()
