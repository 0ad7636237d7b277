"""Microsoft Prompty `.prompty`: YAML front matter, then a Jinja2 body whose `system:`, `user:`,
`assistant:` lines start chat messages.

Both generations of the front matter are read:
- v1: `model: {api, configuration: {type, azure_deployment | name}, parameters: {max_tokens, ...}}`,
  `inputs: {name: {type, description, sample | default} | value}`;
- newer: `model: {id, provider, apiType, connection, options: {maxOutputTokens, topP, ...}}`,
  `inputSchema: {properties: [{name, kind, description, default}]}`.
A write-back keeps the generation the file is written in (new files get the newer keys) and
every key PromStack does not model (connection, metadata, template, tools, ...).
"""

from __future__ import annotations

import copy
from typing import Any

from . import variables as var
from .common import (
    FormatError,
    ParsedPrompt,
    clean,
    config_to_options,
    existing_front_matter,
    join_role_sections,
    mapping,
    options_to_config,
    split_front_matter,
    split_role_sections,
    text_field,
    with_front_matter,
)

_PROVIDERS = {"azure_openai": "azure", "openai": "openai"}


def _model(front: dict[str, Any]) -> dict[str, Any]:
    model = front.get("model")
    if model is None:
        return {}
    if isinstance(model, str):
        return {"model": model}
    if not isinstance(model, dict):
        raise FormatError("'model' in the front matter must be a model name or keys and values")
    configuration = mapping(model, "configuration", "model.configuration")
    options = model.get("options", model.get("parameters")) or {}
    if not isinstance(options, dict):
        raise FormatError("'model.options' (or v1 'model.parameters') must be keys and values")
    config = options_to_config({k: v for k, v in options.items() if k != "tools"})
    name = model.get("id") or configuration.get("azure_deployment") or configuration.get("name") \
        or configuration.get("model")
    if name is not None:
        config["model"] = str(name)
    provider = model.get("provider") or _PROVIDERS.get(str(configuration.get("type", "")))
    if provider:
        config["provider"] = str(provider)
    return config


def _inputs(front: dict[str, Any]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    schema = front.get("inputSchema")
    if schema is not None:
        props = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(props, dict):  # a JSON-Schema-like mapping
            props = [{"name": k, **(v if isinstance(v, dict) else {"kind": v})} for k, v in props.items()]
        if not isinstance(props, list):
            raise FormatError("'inputSchema.properties' must be a list of {name, kind, default}")
        for p in props:
            if not isinstance(p, dict) or not p.get("name"):
                raise FormatError("each of 'inputSchema.properties' needs a 'name'")
            declared[str(p["name"])] = var.entry(p.get("kind", p.get("type")), p.get("description"),
                                                 p.get("default"), has_default="default" in p)
        return declared
    inputs = front.get("inputs")
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise FormatError("'inputs' must map each input name to its type, description and sample")
    for name, spec in inputs.items():
        if isinstance(spec, dict):
            key = "default" if "default" in spec else "sample"
            declared[str(name)] = var.entry(spec.get("type"), spec.get("description"), spec.get(key),
                                            has_default=key in spec)
        else:
            declared[str(name)] = var.entry("string", None, spec, has_default=True)
    return declared


def parse(text: str) -> ParsedPrompt:
    front, body = split_front_matter(text)
    front = front or {}
    config = _model(front)
    declared = _inputs(front)
    if declared:
        config["variables"] = declared
    template = split_role_sections(body)
    return ParsedPrompt(
        template=template,
        model_config=config,
        description=text_field(front, "description"),
        message=text_field(front, "message"),
    )


def _is_v1(front: dict[str, Any]) -> bool:
    model = front.get("model")
    return "inputs" in front or (isinstance(model, dict) and bool({"api", "configuration", "parameters"} & set(model)))


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    front = existing_front_matter(existing)
    before = copy.deepcopy(front)
    front.pop("message", None)
    config = dict(model_config)
    declared = config.pop("variables", None) or {}
    name = config.pop("model", None)
    provider = config.pop("provider", None)
    v1 = _is_v1(front)
    if description is not None:
        front["description"] = description
    model = front.get("model") if isinstance(front.get("model"), dict) else {}
    if v1:
        configuration = dict(model.get("configuration") or {})
        key = "azure_deployment" if "azure_deployment" in configuration or \
            configuration.get("type") == "azure_openai" else "name"
        configuration.pop("azure_deployment", None)
        configuration.pop("name", None)
        if name is not None:
            configuration[key] = name
        if provider and "type" not in configuration:
            configuration["type"] = {v: k for k, v in _PROVIDERS.items()}.get(provider, provider)
        model = {**model, "configuration": configuration}
        model["parameters"] = config_to_options(config, camel=False)
        model.pop("options", None)
    else:
        model = dict(model)
        model.pop("id", None)
        if name is not None:
            model = {"id": name, **model}
        if provider:
            model["provider"] = provider
        else:
            model.pop("provider", None)
        model["options"] = config_to_options(config, camel=True)
        model.pop("parameters", None)
    model = clean({k: v for k, v in model.items() if v not in ({}, None)})
    if model:
        front["model"] = model
    else:
        front.pop("model", None)
    # Inputs: the file's own spelling when they did not change; else rewritten in its generation.
    if _inputs(before) != declared:
        front.pop("inputs", None)
        front.pop("inputSchema", None)
        if declared:
            front["inputs" if v1 else "inputSchema"] = _write_inputs(declared, before, v1)
    body = template if isinstance(template, str) else join_role_sections(template)
    return with_front_matter(front, body)


def _write_inputs(declared: dict[str, Any], before: dict[str, Any], v1: bool) -> Any:
    if v1:
        old = before.get("inputs") if isinstance(before.get("inputs"), dict) else {}
        out = {}
        for name, spec in declared.items():
            prior = old.get(name) if isinstance(old.get(name), dict) else {}
            item = {k: v for k, v in prior.items() if k not in ("type", "description", "sample", "default")}
            item["type"] = spec.get("type", "string")
            if "description" in spec:
                item["description"] = spec["description"]
            if "default" in spec:
                item["default" if "default" in prior else "sample"] = spec["default"]
            out[name] = item
        return out
    old_props = (before.get("inputSchema") or {}).get("properties") if isinstance(before.get("inputSchema"), dict) else None
    prior_by_name = {p.get("name"): p for p in old_props if isinstance(p, dict)} if isinstance(old_props, list) else {}
    props = []
    for name, spec in declared.items():
        prior = prior_by_name.get(name, {})
        item = {"name": name, **{k: v for k, v in prior.items() if k not in ("name", "kind", "description", "default")}}
        item["kind"] = prior["kind"] if prior.get("kind") and var.kind(prior["kind"]) == spec.get("type") \
            else spec.get("type", "string")
        if "description" in spec:
            item["description"] = spec["description"]
        if "default" in spec:
            item["default"] = spec["default"]
        props.append(item)
    return {"properties": props}
