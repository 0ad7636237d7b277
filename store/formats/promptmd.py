"""`.prompt.md`, as VS Code keeps prompt files: optional YAML front matter above a Markdown body.

Front matter keys read into the version: `description`, `model`, the model parameters
`temperature`, `max_tokens`, `top_p`, `top_k`, `stop`, `frequency_penalty`, `presence_penalty`,
`seed`, PromStack's `variables` block, and `message` (names this save). Every other key (VS
Code's `name`, `agent`/`mode`, `tools`, `argument-hint`, ...) stays in the file as it is.
"""

from __future__ import annotations

from typing import Any

from .common import (
    FormatError,
    ParsedPrompt,
    existing_front_matter,
    split_front_matter,
    text_field,
    with_front_matter,
)

CONFIG_KEYS = ("model", "temperature", "max_tokens", "top_p", "top_k", "stop", "frequency_penalty",
               "presence_penalty", "seed", "variables")


def parse(text: str) -> ParsedPrompt:
    front, body = split_front_matter(text)
    front = front or {}
    config = {k: front[k] for k in CONFIG_KEYS if front.get(k) is not None}
    if "variables" in config and not isinstance(config["variables"], dict):
        raise FormatError("'variables' in the front matter must map each name to {type, description, default}")
    return ParsedPrompt(
        template=body,
        model_config=config,
        description=text_field(front, "description"),
        message=text_field(front, "message"),
    )


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    if not isinstance(template, str):
        raise FormatError("a .prompt.md file holds a text prompt; this version is chat messages "
                          "(keep it in a .prompty or .prompt.yml file)")
    front = existing_front_matter(existing)
    front.pop("message", None)
    for key in CONFIG_KEYS:
        front.pop(key, None) if key not in model_config else None
    if description is not None:
        front["description"] = description
    unknown = {k: v for k, v in model_config.items() if k not in CONFIG_KEYS}
    for key in CONFIG_KEYS:
        if key in model_config:
            front[key] = model_config[key]
    front.update(unknown)
    return with_front_matter(front, template)
