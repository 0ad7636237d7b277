"""Microsoft Prompty `.prompty`: YAML front matter, then a Jinja2 body whose `system:`, `user:`,
`assistant:` lines start chat messages.

Both generations of the front matter are read:
- v1: `model: {api, configuration: {type, azure_deployment | name}, parameters: {max_tokens, ...}}`,
  `inputs: {name: {type, description, sample | default} | value}`;
- newer: `model: gpt-4o` or `model: {id, provider, apiType, connection, options: {maxOutputTokens, topP, ...}}`,
  `inputs: [{name, kind, description, default, required}]` or `inputSchema: {properties: [...]}`.

The runtime renders the whole body first and splits the result into messages at role lines
afterwards. A body whose role lines are all plain lines at the top level splits the same either
way, so it is stored as chat messages; one whose role lines come out of a loop or a condition
(a history printed as `user:` / `assistant:` lines) is stored as text with
`model_config["template_roles"] = "prompty"`, and the store splits it after rendering
(`split_rendered`).

`template: mustache` bodies are stored as text with `template_format: mustache` (store/mustache.py
renders them as the runtime does) and split after rendering; `base:` is folded in when the file
is read (prompty_base.py).

`${env:VAR}` and `${file:path}` references are left in the file and never resolved into the
store (an `${env:...}` may hold a secret): PromStack reads only the keys it models, and a
reference where it needs a value (the model name, the options, the inputs) is refused with a
sentence naming the field. A write-back rewrites the body and, when the model config changed,
only the keys that changed, through ruamel.yaml's round trip, so everything else in the front
matter (comments, key order, quoting, `tools`, `connection`) stays byte for byte.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import yaml

from ..mustache import FORMAT_KEY, MUSTACHE
from . import prompty_base, refs
from . import variables as var
from .common import (
    CAMEL,
    FormatError,
    ParsedPrompt,
    clean,
    config_to_options,
    front_matter_parts,
    is_camel,
    options_to_config,
    split_front_matter,
    text_field,
    with_front_matter,
)
from .yamlrt import update_to

_PROVIDERS = {"azure_openai": "azure", "openai": "openai"}
# The model config key that says "render the text, then split it at role lines".
ROLES_KEY = "template_roles"
_ROLES = ("system", "user", "assistant", "developer", "tool", "function")
_ATTRS = r"(\[(?:[ \t]*\w+[ \t]*=[ \t]*(?:\"[^\"\n]*\"|[^\",\]\n]*)[ \t]*,?[ \t]*)+\])?"
_ROLE_LINE = re.compile(r"^[ \t]*#?[ \t]*(" + "|".join(_ROLES) + r")" + _ATTRS + r"[ \t]*:[ \t]*$", re.I | re.M)
# A line that is a Jinja expression followed by a colon (`{{ m.role }}:`) prints a role.
_PRINTED_ROLE = re.compile(r"^[ \t]*\{\{[^\n]*\}\}[ \t]*" + _ATTRS + r"[ \t]*:[ \t]*$", re.M)
_BLOCK = re.compile(r"\{%-?\s*(for|if|macro|call|filter|with|raw|set)\b|\{%-?\s*end(for|if|macro|call|filter|with|raw|set)\b")
_REF = re.compile(r"^\s*\$\{(env|file):")


def _is_ref(value: Any) -> bool:
    return isinstance(value, str) and bool(_REF.match(value))


def _refused(field: str, value: Any, what: str) -> FormatError:
    if _is_ref(value):
        return FormatError(f"'{field}' is a reference ({value}); PromStack reads {what} only when the "
                           "front matter writes it out, so write it there")
    return FormatError(f"'{field}' must be {what}, not {type(value).__name__}")


# ---- reading ---------------------------------------------------------------------------

def _model(front: dict[str, Any]) -> dict[str, Any]:
    model = front.get("model")
    if model is None:
        return {}
    if isinstance(model, str):
        if _is_ref(model):
            raise _refused("model", model, "the model name")
        return {"model": model}
    if not isinstance(model, dict):
        raise FormatError("'model' in the front matter must be a model name or keys and values")
    # `configuration` (v1) and `connection` (newer) may be a reference (`${env:...}`,
    # `${file:...}`) or a connection name: they stay in the file, read only for the deployment.
    configuration = model.get("configuration")
    configuration = configuration if isinstance(configuration, dict) else {}
    connection = model.get("connection")
    connection = connection if isinstance(connection, dict) else {}
    key = "options" if "options" in model else "parameters"
    options = model.get(key) or {}
    if not isinstance(options, dict):
        raise _refused(f"model.{key}", options, "keys and values")
    config = options_to_config({k: v for k, v in options.items() if k not in ("tools", "additionalProperties")})
    extra = options.get("additionalProperties")
    if isinstance(extra, dict):
        config.update({k: v for k, v in options_to_config(extra).items() if k not in config})
    name = model.get("id") or configuration.get("azure_deployment") or connection.get("azure_deployment") \
        or model.get("azure_deployment") or configuration.get("name") or configuration.get("model")
    if name is not None:
        if _is_ref(name):
            raise _refused("model.id" if model.get("id") else "azure_deployment", name, "the model name")
        config["model"] = str(name)
    provider = model.get("provider") or _PROVIDERS.get(str(configuration.get("type", "")))
    if provider and not _is_ref(provider):
        config["provider"] = str(provider)
    return config


def _prop(p: Any, where: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(p, dict) or not p.get("name"):
        raise FormatError(f"each of '{where}' needs a 'name'")
    if "default" in p:
        return str(p["name"]), var.entry(p.get("kind", p.get("type")), p.get("description"), p["default"],
                                         has_default=True)
    # The runtime renders an input that is neither given nor required as empty.
    optional = not p.get("required")
    return str(p["name"]), var.entry(p.get("kind", p.get("type")), p.get("description"),
                                     "" if optional else None, has_default=optional)


def _inputs(front: dict[str, Any]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    schema = front.get("inputSchema")
    if schema is not None:
        props = schema.get("properties") if isinstance(schema, dict) else None
        if isinstance(props, dict):  # a JSON-Schema-like mapping
            props = [{"name": k, **(v if isinstance(v, dict) else {"kind": v})} for k, v in props.items()]
        if not isinstance(props, list):
            if _is_ref(schema) or _is_ref(props):
                raise _refused("inputSchema", schema if _is_ref(schema) else props, "the inputs")
            raise FormatError("'inputSchema.properties' must be a list of {name, kind, default}")
        return dict(_prop(p, "inputSchema.properties") for p in props)
    inputs = front.get("inputs")
    if inputs is None:
        return {}
    if isinstance(inputs, list):  # the newer spec: [{name, kind, description, default, required}]
        return dict(_prop(p, "inputs") for p in inputs)
    if not isinstance(inputs, dict):
        raise _refused("inputs", inputs, "a list of {name, kind, default} or a mapping of names")
    for name, spec in inputs.items():
        if isinstance(spec, dict):
            key = "default" if "default" in spec else "sample"
            declared[str(name)] = var.entry(spec.get("type", spec.get("kind")), spec.get("description"),
                                            spec.get(key), has_default=key in spec)
        else:
            declared[str(name)] = var.entry("string", None, spec, has_default=True)
    return declared


def _with_files(front: dict[str, Any], path: Any, root: Any) -> dict[str, Any]:
    """The front matter with the `${file:...}` references PromStack reads (model, its options,
    configuration and connection, the inputs) replaced by the files' contents, as the runtime
    does; the file itself keeps the reference."""
    def deref(value: Any, field: str) -> Any:
        if isinstance(value, str) and value.strip().startswith("${file:"):
            return refs.load(value.strip()[len("${file:"):].rstrip("}").strip(), field, path, root)
        return value

    front = dict(front)
    for key in ("model", "inputs", "inputSchema"):
        if key in front:
            front[key] = deref(front[key], key)
    model = front.get("model")
    if isinstance(model, dict):
        model = dict(model)
        for key in ("options", "parameters", "configuration", "connection"):
            if key in model:
                model[key] = deref(model[key], f"model.{key}")
        front["model"] = model
    schema = front.get("inputSchema")
    if isinstance(schema, dict) and "properties" in schema:
        front["inputSchema"] = {**schema, "properties": deref(schema["properties"], "inputSchema.properties")}
    return front


def _threads(front: dict[str, Any]) -> list[str]:
    """The inputs of kind `thread`: a conversation's messages, spliced in where they are printed."""
    inputs = front.get("inputs")
    if isinstance(front.get("inputSchema"), dict):
        inputs = front["inputSchema"].get("properties")
    if isinstance(inputs, dict):
        inputs = [{"name": k, **v} for k, v in inputs.items() if isinstance(v, dict)]
    if not isinstance(inputs, list):
        return []
    return [str(p["name"]) for p in inputs if isinstance(p, dict) and p.get("name")
            and str(p.get("kind", p.get("type", ""))).lower() == "thread"]


def _engine(front: dict[str, Any]) -> str:
    """The body's template engine: "jinja2" (also Nunjucks, the TypeScript runtime's, which is
    Jinja2's syntax) or "mustache"."""
    template = front.get("template")
    field, engine = ("template.format", template.get("format", template.get("type"))) \
        if isinstance(template, dict) else ("template", template)
    if isinstance(engine, dict):
        field, engine = f"{field}.kind", engine.get("kind", engine.get("type"))
    if engine is None or str(engine).lower() in ("jinja2", "jinja", "nunjucks"):
        return "jinja2"
    if str(engine).lower() == "mustache":
        return "mustache"
    raise FormatError(f"'{field}: {engine}' is not supported: PromStack renders Prompty bodies "
                      "as Jinja2 (or Nunjucks) or Mustache, so write the body in one of them")


def roles_after_render(body: str) -> bool:
    """Whether the body's messages depend on rendering: a role line printed by an expression,
    or a literal role line inside a loop, condition or macro."""
    if _PRINTED_ROLE.search(body):
        return True
    depth = 0
    marks = {m.start() for m in _ROLE_LINE.finditer(body)}
    if not marks:
        return False
    events = sorted([(m.start(), 0 if m.group(1) else 1) for m in _BLOCK.finditer(body)
                     if (m.group(1) or m.group(2)) != "set" or "endset" in m.group(0)]
                    + [(p, 2) for p in marks])
    for _, kind in events:
        if kind == 0:
            depth += 1
        elif kind == 1:
            depth = max(depth - 1, 0)
        elif depth:
            return True
    return False


def _attrs(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    return {m.group(1): m.group(2).strip() for m in re.finditer(r'(\w+)\s*=\s*"?([^",\]]*)"?', raw)}


def split_rendered(text: str) -> str | list[dict[str, str]]:
    """Rendered text -> messages at role lines, as the Prompty runtime's parser does: text before
    the first role line is a system message, `name="..."` is kept; no role line: the text."""
    marks = list(_ROLE_LINE.finditer(text))
    if not marks:
        return text
    messages = []
    lead = text[: marks[0].start()].strip("\n")
    if lead.strip():
        messages.append({"role": "system", "content": lead.rstrip()})
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        role = mark.group(1).lower()
        message = {"role": "tool" if role == "function" else role,
                   "content": text[mark.end():end].strip("\n").rstrip()}
        name = _attrs(mark.group(2)).get("name")
        if name:
            message["name"] = name
        messages.append(message)
    return messages


THREADS_KEY = "template_threads"


def thread_values(values: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Values with each thread input's messages written as role lines, so that the split after
    rendering makes them messages where the template places them (the runtime splices a thread's
    messages in at its marker)."""
    names = config.get(THREADS_KEY) or []
    out = dict(values)
    for name in names:
        value = out.get(name)
        if value in ({}, [], None):
            out[name] = ""  # no conversation yet
        elif isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
            out[name] = "\n".join(
                (f'{m["role"]}[name="{m["name"]}"]:' if m.get("name") else f"{m['role']}:") + "\n"
                + (m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))) + "\n"
                for m in value)
    return out


def parse(text: str, *, path: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> ParsedPrompt:
    """`path`: where the file is, for `${file:...}` references (resolved next to it, confined
    to `root`, the workspace; to the file's own folder without one)."""
    front, body = split_front_matter(text)
    front = _with_files(front or {}, path, root)
    flattened = False
    if "base" in front:
        front, bodies = prompty_base.load(front, path, root, lambda f, p: _with_files(f, p, root))
        if _engine(front) == "jinja2":
            whole = prompty_base.flatten(body, bodies)
            flattened, body = whole != body, whole
    engine = _engine(front)
    config = _model(front)
    if engine == "mustache":
        config[FORMAT_KEY] = MUSTACHE
    declared = _inputs(front)
    if declared:
        config["variables"] = declared
    threads = _threads(front)
    if threads:
        config[THREADS_KEY] = threads
    # A Mustache body is always split after rendering: its role lines may come out of sections.
    if threads or engine == "mustache" or roles_after_render(body):
        template: Any = body
        config[ROLES_KEY] = "prompty"
    else:
        template = split_rendered(body)
    return ParsedPrompt(
        template=template,
        model_config=config,
        description=text_field(front, "description"),
        message=text_field(front, "message"),
        extra={"base_flattened": True} if flattened else {},
    )


def join_messages(messages: list[dict[str, str]]) -> str:
    parts = []
    for m in messages:
        head = f'{m["role"]}[name="{m["name"]}"]:' if m.get("name") else f'{m["role"]}:'
        parts.append(f"{head}\n{m['content']}\n")
    return "\n".join(parts)


# ---- writing ---------------------------------------------------------------------------

def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None, path: str | os.PathLike | None = None,
           root: str | os.PathLike | None = None) -> str:
    config = dict(model_config)
    config.pop(ROLES_KEY, None)
    config.pop(THREADS_KEY, None)
    engine = config.pop(FORMAT_KEY, None)  # the file's `template:`, not a model option
    body = template if isinstance(template, str) else join_messages(template)
    if existing is not None:
        kept = _rewrite(existing, template, config, description, body, path, root)
        if kept is not None:
            return kept
    front = _fresh_front(config, description)
    if engine == MUSTACHE:
        front["template"] = {"format": MUSTACHE}
    return with_front_matter(front, body)


def _fresh_front(config: dict[str, Any], description: str | None) -> dict[str, Any]:
    """A new file's front matter, in the newer generation."""
    front: dict[str, Any] = {}
    if description is not None:
        front["description"] = description
    declared = config.pop("variables", None) or {}
    name = config.pop("model", None)
    provider = config.pop("provider", None)
    model = clean({"id": name, "provider": provider})
    if config:
        model["options"] = config_to_options(config, camel=True)
    if model:
        front["model"] = model
    if declared:
        front["inputs"] = _write_inputs(declared, None)
    return front


def _rewrite(existing: str, template: Any, config: dict[str, Any], description: str | None,
             body: str, path: Any, root: Any) -> str | None:
    """The existing file with its body replaced and only the changed config keys rewritten;
    None when the file has no front matter (a fresh one is written)."""
    parts = front_matter_parts(existing)
    if parts is None:
        return None
    opening, yaml_text, closing, after = parts
    try:
        old = parse(existing, path=path, root=root)
    except FormatError as exc:
        raise FormatError(f"the file's front matter cannot be read ({exc}), so it was left as it is") from None
    old_config = dict(old.model_config or {})
    old_config.pop(ROLES_KEY, None)
    old_config.pop(THREADS_KEY, None)
    old_config.pop(FORMAT_KEY, None)
    # A `message:` names one save: a write-back removes it (the only key it removes).
    if old_config == config and (description is None or description == old.description) and old.message is None:
        front_text = opening + yaml_text + closing
    else:
        front_text = opening + _edit_yaml(yaml_text, old_config, config, description) + closing
    if not front_text.endswith("\n"):
        front_text += "\n"
    gap = "\n" if after.startswith("\n") else ""
    old_body = after[len(gap):]
    if old.template == template:  # the same messages: the body's own bytes, spacing and all
        body = old_body
    elif old.extra.get("base_flattened"):
        raise FormatError("the file's body extends its 'base' file, so a changed template cannot be written "
                          "into it without losing that; make the change in the file")
    return front_text + gap + body


def _edit_yaml(text: str, old: dict[str, Any], new: dict[str, Any], description: str | None) -> str:
    try:
        return _edit_yaml_now(text, old, new, description)
    except FormatError:
        raise
    except Exception as exc:
        raise FormatError(f"the front matter could not be rewritten in place ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}), so the file was left as it is") from None


def _edit_yaml_now(text: str, old: dict[str, Any], new: dict[str, Any], description: str | None) -> str:
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if text.strip() else None
    doc = doc if isinstance(doc, dict) else {}
    if description is not None and doc.get("description") != description:
        doc["description"] = description
    doc.pop("message", None)
    old, new = dict(old), dict(new)
    old_vars, new_vars = old.pop("variables", None) or {}, new.pop("variables", None) or {}
    if old != new:
        _not_a_reference(doc, "model")
        for key in ("options", "parameters"):
            _not_a_reference(doc.get("model"), key, "model.")
        _edit_model(doc, old, new)
        if doc.get("model") == {}:
            del doc["model"]
    if old_vars != new_vars:
        _not_a_reference(doc, "inputs")
        _not_a_reference(doc, "inputSchema")
        _edit_inputs(doc, new_vars)
    # Only the values that changed are rewritten, each where and as the file wrote it (yamlrt).
    return update_to(text, doc)


def _not_a_reference(mapping: Any, key: str, prefix: str = "") -> None:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if _is_ref(value):
        raise FormatError(f"'{prefix}{key}' in the file is a reference ({value}); the change was not "
                          "written over it: make it in the referenced file or the front matter")


def _edit_model(doc: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old == new:
        return
    name, provider = new.pop("model", None), new.pop("provider", None)
    old_name, old_provider = old.pop("model", None), old.pop("provider", None)
    model = doc.get("model")
    if isinstance(model, str) or model is None:
        if name is not None and not new and provider == old_provider:
            doc["model"] = name  # `model: gpt-4o` stays a string
            return
        if model is None and name is None and not new and not provider:
            return
        model = {"id": name} if name is not None else {}
        doc["model"] = model
    if name != old_name:
        configuration = model.get("configuration") if isinstance(model.get("configuration"), dict) else None
        connection = model.get("connection") if isinstance(model.get("connection"), dict) else None
        if "id" in model or name is None:
            _set(model, "id", name)
        elif configuration is not None and "azure_deployment" in configuration:
            configuration["azure_deployment"] = name
        elif connection is not None and "azure_deployment" in connection:
            connection["azure_deployment"] = name
        elif "azure_deployment" in model:
            model["azure_deployment"] = name
        elif configuration is not None:
            configuration["name" if "name" in configuration or "model" not in configuration else "model"] = name
        else:
            model = doc["model"] = {"id": name, **model}
    if provider != old_provider:
        if "provider" in model or provider is None or not isinstance(model.get("configuration"), dict):
            _set(model, "provider", provider)
        else:
            model["configuration"]["type"] = {v: k for k, v in _PROVIDERS.items()}.get(provider, provider)
    if new == old:
        return
    key = "options" if "options" in model else "parameters" if "parameters" in model else \
        ("parameters" if "configuration" in model else "options")
    options = model.get(key)
    if not isinstance(options, dict):
        options = {}
        model[key] = options
    camel = key == "options" and (is_camel(options) or not options)
    spelled = {next(iter(options_to_config({k: None}))): k for k in options}
    for k in old:
        if k not in new and k in spelled:
            del options[spelled[k]]
    missing = object()
    for k, v in new.items():
        if old.get(k, missing) != v:  # unchanged keys (also those under additionalProperties) stay
            options[spelled.get(k, CAMEL.get(k, k) if camel else k)] = v
    if not options:
        del model[key]


def _set(mapping: Any, key: str, value: Any) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _edit_inputs(doc: Any, declared: dict[str, Any]) -> None:
    if "inputSchema" in doc and isinstance(doc["inputSchema"], dict):
        doc["inputSchema"]["properties"] = _write_inputs(declared, doc["inputSchema"].get("properties"))
    elif isinstance(doc.get("inputs"), dict):
        doc["inputs"] = _write_v1_inputs(declared, doc["inputs"])
    elif declared or "inputs" in doc:
        doc["inputs"] = _write_inputs(declared, doc.get("inputs"))


def _put(mapping: Any, key: str, value: Any) -> None:
    """Set only what differs: an equal value keeps the file's spelling (quotes, style)."""
    if key not in mapping or mapping[key] != value or isinstance(mapping[key], bool) != isinstance(value, bool):
        mapping[key] = value


def _write_v1_inputs(declared: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in declared.items():
        prior = old.get(name)
        item = prior if isinstance(prior, dict) else {}
        if var.kind(item.get("type")) != spec.get("type", "string") or "type" not in item:
            item["type"] = spec.get("type", "string")
        if "description" in spec:
            _put(item, "description", spec["description"])
        else:
            item.pop("description", None)
        key = "sample" if "sample" in item else "default"
        if "default" in spec:
            _put(item, key, spec["default"])
        else:
            item.pop(key, None)
        out[name] = item
    return out


def _write_inputs(declared: dict[str, Any], old: Any) -> list[dict[str, Any]]:
    prior_by_name = {p.get("name"): p for p in old if isinstance(p, dict)} if isinstance(old, list) else {}
    props = []
    for name, spec in declared.items():
        item = prior_by_name.get(name)
        if item is None:
            item = {"name": name}
        if var.kind(item.get("kind")) != spec.get("type", "string") or "kind" not in item:
            item["kind"] = spec.get("type", "string")
        if "description" in spec:
            _put(item, "description", spec["description"])
        else:
            item.pop("description", None)
        if spec.get("default") == "" and not item.get("required") and "default" not in item:
            pass  # optional without a value: the runtime renders it empty
        elif "default" in spec:
            _put(item, "default", spec["default"])
            item.pop("required", None)
        else:
            item.pop("default", None)
            _put(item, "required", True)
        props.append(item)
    return props


__all__ = ["ROLES_KEY", "THREADS_KEY", "thread_values", "join_messages", "parse", "render", "roles_after_render", "split_rendered"]
