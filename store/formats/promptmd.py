"""`.prompt.md`, as VS Code keeps prompt files: optional YAML front matter above a Markdown body.

Front matter keys read into the version: `description`, `model`, the model parameters
`temperature`, `max_tokens`, `top_p`, `top_k`, `stop`, `frequency_penalty`, `presence_penalty`,
`seed`, PromStack's `variables` block, and `message` (names this save). Every other key (VS
Code's `name`, `agent`/`mode`, `tools`, `argument-hint`, ...) stays in the file as it is.

The body is text with VS Code's `${input:name}` placeholders, not Jinja, unless the front matter
says `template_format: jinja2` (see placeholders.py). A write-back rewrites the body and only the
front-matter values that changed, in place: quotes, flow lists, wrapped lines and comments stay.
"""

from __future__ import annotations

from typing import Any

from .common import (
    FormatError,
    ParsedPrompt,
    front_matter_parts,
    split_front_matter,
    text_field,
    with_front_matter,
)
from .placeholders import JINJA_KEY, JINJA_VALUES, to_jinja, to_text
from .yamlrt import update

CONFIG_KEYS = ("model", "temperature", "max_tokens", "top_p", "top_k", "stop", "frequency_penalty",
               "presence_penalty", "seed", "variables")


def templated(front: dict[str, Any]) -> bool:
    """Whether the file opted in to Jinja (`template_format: jinja2`)."""
    return str(front.get(JINJA_KEY) or "").strip().lower() in JINJA_VALUES


def parse(text: str) -> ParsedPrompt:
    front, body = split_front_matter(text)
    front = front or {}
    config = {k: front[k] for k in CONFIG_KEYS if front.get(k) is not None}
    if "variables" in config and not isinstance(config["variables"], dict):
        raise FormatError("'variables' in the front matter must map each name to {type, description, default}")
    return ParsedPrompt(
        template=to_jinja(body, jinja=templated(front)),
        model_config=config,
        description=text_field(front, "description"),
        message=text_field(front, "message"),
    )


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    if not isinstance(template, str):
        raise FormatError("a .prompt.md file holds a text prompt; this version is chat messages "
                          "(keep it in a .prompty or .prompt.yml file)")
    front: dict[str, Any] = {}
    parts = None
    if existing is not None:
        try:
            front = split_front_matter(existing)[0] or {}
            parts = front_matter_parts(existing)
        except FormatError:
            front, parts = {}, None
    old_body = parts[3] if parts else (existing if existing is not None and not front else None)
    body = to_text(template, existing=old_body, jinja=templated(front))
    wanted = dict(front)
    wanted.pop("message", None)
    for key in CONFIG_KEYS:
        if key not in model_config:
            wanted.pop(key, None)
    if description is not None:
        wanted["description"] = description
    wanted.update(model_config)
    if parts is None:
        return with_front_matter(wanted, body)
    changes = {(k,): v for k, v in wanted.items() if k not in front or front[k] != v}
    deletes = [(k,) for k in front if k not in wanted]
    opening, yaml_text, closing, _ = parts
    if changes or deletes:
        yaml_text = update(yaml_text, changes, deletes)
        if yaml_text and not yaml_text.endswith("\n"):
            yaml_text += "\n"
    return opening + yaml_text + closing + body
