"""Google's Dotprompt `.prompt`: YAML front matter (`model`, `config`, `input.schema`,
`input.default`), then a Handlebars body; `{{role "system"}}` starts a message.

The body is translated to the store's Jinja on the way in and back to Handlebars on the way
out (see handlebars.py for what is supported). `config` keys are Genkit's (`temperature`,
`maxOutputTokens`, `topK`, `topP`, `stopSequences`); `input.schema` is Picoschema
(`name: string, description`, `style?: string` for optional) or JSON Schema.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from . import variables as var
from .common import (
    FormatError,
    ParsedPrompt,
    config_to_options,
    existing_front_matter,
    mapping,
    options_to_config,
    split_front_matter,
    text_field,
    with_front_matter,
)
from .handlebars import from_jinja, to_jinja

_ROLE = re.compile(r"\{\{~?\s*role\s+[\"'](\w+)[\"']\s*~?\}\}[ \t]*\n?")
_WRITE_ROLE = {"assistant": "model"}
_READ_ROLE = {"model": "assistant"}
_PICO_KEY = re.compile(r"^([A-Za-z_]\w*)(\?)?(?:\((\w+)(?:,\s*(.*))?\))?$")


def _schema(front: dict[str, Any]) -> dict[str, Any]:
    spec = mapping(front, "input", "input")
    schema = spec.get("schema") or {}
    defaults = spec.get("default") or {}
    if not isinstance(schema, dict) or not isinstance(defaults, dict):
        raise FormatError("'input.schema' and 'input.default' must be keys and values")
    declared: dict[str, Any] = {}
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required") or [])
        for name, prop in schema["properties"].items():
            prop = prop if isinstance(prop, dict) else {}
            has = name in defaults or "default" in prop or name not in required
            declared[name] = var.entry(prop.get("type"), prop.get("description"),
                                       defaults.get(name, prop.get("default", "")), has_default=has)
        return declared
    for key, value in schema.items():
        m = _PICO_KEY.match(str(key))
        if not m:
            raise FormatError(f"'input.schema' has a key {key!r} that is not Picoschema (name, name?, name(type))")
        name, optional, paren_type, paren_desc = m.groups()
        if isinstance(value, str):
            type_, _, desc = value.partition(",")
            type_, desc = type_.strip(), desc.strip() or paren_desc
        else:
            type_, desc = (paren_type or "object"), paren_desc
        if paren_type:
            type_ = paren_type
        has = name in defaults or bool(optional)
        declared[name] = var.entry(type_, desc, defaults.get(name, ""), has_default=has)
    return declared


def parse(text: str) -> ParsedPrompt:
    front, body = split_front_matter(text)
    front = front or {}
    config = options_to_config(mapping(front, "config", "config"))
    if front.get("model") is not None:
        config["model"] = str(front["model"])
    declared = _schema(front)
    if declared:
        config["variables"] = declared
    marks = list(_ROLE.finditer(body))
    if not marks:
        template: Any = to_jinja(body)
    else:
        template = []
        lead = body[: marks[0].start()].strip()
        if lead:
            template.append({"role": "user", "content": to_jinja(lead)})
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
            role = _READ_ROLE.get(mark.group(1), mark.group(1))
            template.append({"role": role, "content": to_jinja(body[mark.end():end].strip("\n").rstrip())})
    return ParsedPrompt(
        template=template,
        model_config=config,
        description=text_field(front, "description"),
        message=text_field(front, "message"),
    )


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    front = existing_front_matter(existing)
    before = copy.deepcopy(front)
    front.pop("message", None)
    config = dict(model_config)
    declared = config.pop("variables", None) or {}
    name = config.pop("model", None)
    if description is not None:
        front["description"] = description
    if name is not None:
        front["model"] = name
    else:
        front.pop("model", None)
    options = config_to_options(config, camel=True)
    if options:
        front["config"] = options
    else:
        front.pop("config", None)
    if _schema(before) != declared:
        spec = dict(front.get("input") or {}) if isinstance(front.get("input"), dict) else {}
        spec.pop("schema", None)
        spec.pop("default", None)
        schema, defaults = {}, {}
        for vname, item in declared.items():
            optional = item.get("default") == ""
            key = f"{vname}?" if optional else vname
            schema[key] = item.get("type", "string") + (f", {item['description']}" if item.get("description") else "")
            if "default" in item and not optional:
                defaults[vname] = item["default"]
        if schema:
            spec["schema"] = schema
        if defaults:
            spec["default"] = defaults
        if spec:
            front["input"] = spec
        else:
            front.pop("input", None)
    if isinstance(template, str):
        body = from_jinja(template)
    else:
        parts = []
        for m in template:
            role = _WRITE_ROLE.get(m["role"], m["role"])
            parts.append(f'{{{{role "{role}"}}}}\n{from_jinja(m["content"])}\n')
        body = "".join(parts)
    return with_front_matter(front, body)
