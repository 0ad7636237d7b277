"""Google's Dotprompt `.prompt`: optional `#` license lines, YAML front matter (`model`,
`config`, `input`, `output`, ...), then a Handlebars body.

The body is the version's template as it is (Handlebars, `template_format: handlebars` in the
model config), rendered by store/handlebars.py; nothing is translated. As in Dotprompt, a body
after front matter is read without its surrounding blank lines; a write-back puts them back.

`config` keys are Genkit's (`temperature`, `maxOutputTokens`, `topK`, `topP`, `stopSequences`);
`input.schema` and `output.schema` are Picoschema or JSON Schema, kept as JSON Schema
(`input_schema`, `output_schema`); the input's fields are the version's declared variables.

A write-back changes only what changed: the body, and in the front matter the keys whose value
differs (through ruamel.yaml's round trip, so comments, key order, quoting and the license
header stay byte for byte).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..handlebars import FORMAT_KEY, HANDLEBARS, is_handlebars
from . import refs
from . import variables as var
from .common import (
    CAMEL,
    FormatError,
    ParsedPrompt,
    load_yaml,
    mapping,
    options_to_config,
    text_field,
)
from .handlebars import from_jinja
from .picoschema import Resolver, to_json_schema
from .yamlrt import round_trip_yaml

# Dotprompt's own rule: blank and `#` lines may come before the first `---` (license headers).
_FRONT = re.compile(r"\A(?P<head>(?:#[^\n]*\n|[ \t]*\n)*)---[ \t]*\n(?P<yaml>.*?\n)?---[ \t]*(?:\n|\Z)", re.S)
# Keys of the model config that live elsewhere in the file than `config:`.
_NOT_OPTIONS = {"model", "variables", FORMAT_KEY, "input_schema", "output_schema", "output_format"}
_ROLE_OUT = {"assistant": "model"}


def _split(text: str) -> tuple[str, str | None, str]:
    """(what comes before the body: header, fences and YAML; the YAML or None; the body)."""
    m = _FRONT.match(text)
    if m is None:
        return "", None, text
    return text[: m.end()], m.group("yaml") or "", text[m.end():]


def _variables(schema: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    declared: dict[str, Any] = {}
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return {name: var.entry(None, None, value, has_default=True) for name, value in defaults.items()}
    required = set((schema or {}).get("required") or [])
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        kind = prop.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        has = name in defaults or "default" in prop or name not in required
        declared[name] = var.entry(kind, prop.get("description"), defaults.get(name, prop.get("default", "")),
                                   has_default=has)
    for name, value in defaults.items():
        declared.setdefault(name, var.entry(None, None, value, has_default=True))
    return declared


_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_SCHEMA_SUFFIXES = (".schema.json", ".schema.yaml", ".schema.yml")


def schema_files(path: str | os.PathLike | None, root: str | os.PathLike | None) -> Resolver | None:
    """Named schemas (`schema: Foo`) as files: `Foo.schema.json` (or `.schema.yaml`) in the
    prompt's folder or the nearest folder above it, up to the workspace's root. Dotprompt
    registers names in code; a file here is the workspace's registry."""
    if path is None:
        return None
    limit = refs.limit_of(path, root)

    def resolve(name: str, where: str) -> dict[str, Any] | None:
        if not _SCHEMA_NAME.match(name) or ".." in name:
            return None
        folder = Path(path).resolve().parent
        while True:
            for suffix in _SCHEMA_SUFFIXES:
                rel = os.path.relpath(folder / f"{name}{suffix}", Path(path).resolve().parent)
                if (folder / f"{name}{suffix}").is_file():
                    value = refs.load(rel, where, path, root)
                    if not isinstance(value, dict):
                        raise FormatError(f"'{where}' names the schema {name}, whose file {rel} is not "
                                          "a JSON Schema object; write it as one")
                    return to_json_schema(value, where) or {}
            if folder == limit or not folder.is_relative_to(limit) or folder.parent == folder:
                return None
            folder = folder.parent

    return resolve


def _config(front: dict[str, Any], resolve: Resolver | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {FORMAT_KEY: HANDLEBARS}
    config.update(options_to_config(mapping(front, "config", "config")))
    if front.get("model") is not None:
        config["model"] = str(front["model"])
    spec = mapping(front, "input", "input")
    defaults = spec.get("default") or {}
    if not isinstance(defaults, dict):
        raise FormatError("'input.default' must be keys and values (name: value)")
    schema = to_json_schema(spec.get("schema"), "input.schema", resolve)
    if schema is not None:
        config["input_schema"] = schema
    declared = _variables(schema, defaults)
    if declared:
        config["variables"] = declared
    out = mapping(front, "output", "output")
    schema = to_json_schema(out.get("schema"), "output.schema", resolve)
    if schema is not None:
        config["output_schema"] = schema
    if out.get("format") is not None:
        config["output_format"] = str(out["format"])
    return config


def parse(text: str, *, path: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> ParsedPrompt:
    """`path`, `root`: where the file is and its workspace, for named schemas (schema_files)."""
    _, yaml_text, body = _split(text)
    if yaml_text is None:
        if text.lstrip().startswith("---") or re.match(r"\A(?:#[^\n]*\n|[ \t]*\n)*---[ \t]*\n", text):
            raise FormatError("the front matter is not closed: add a line '---' after it")
        return ParsedPrompt(template=text, model_config={FORMAT_KEY: HANDLEBARS})
    front = load_yaml(yaml_text, "the front matter")
    return ParsedPrompt(
        template=body.strip(),
        model_config=_config(front, schema_files(path, root)),
        description=text_field(front, "description"),
        message=text_field(front, "message"),
    )


# ---- writing -------------------------------------------------------------------------------

def _body(template: Any, model_config: dict[str, Any]) -> str:
    if isinstance(template, str):
        return template if is_handlebars(model_config) else from_jinja(template)
    parts = []
    for m in template:
        content = m["content"] if is_handlebars(model_config) else from_jinja(m["content"])
        parts.append(f'{{{{role "{_ROLE_OUT.get(m["role"], m["role"])}"}}}}\n{content}\n')
    return "".join(parts)


def _pico(declared: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    schema, defaults = {}, {}
    for vname, item in declared.items():
        optional = item.get("default") == ""
        key = f"{vname}?" if optional else vname
        schema[key] = item.get("type", "string") + (f", {item['description']}" if item.get("description") else "")
        if "default" in item and not optional:
            defaults[vname] = item["default"]
    return schema, defaults


def _set(doc: Any, key: str, value: Any) -> None:
    if value is None:
        doc.pop(key, None)
    elif doc.get(key) != value:
        doc[key] = value


def _field_name(key: Any) -> str:
    return re.split(r"[?(]", str(key), maxsplit=1)[0].strip()


def _merge_schema(spec: Any, schema: dict[str, Any], was: dict[str, Any], now: dict[str, Any]) -> None:
    """Put the variables' Picoschema in `spec["schema"]`, keeping each field whose variable did
    not change as the file wrote it (nested fields, comments, its place)."""
    old = spec.get("schema")
    if not isinstance(old, dict) or not schema:
        _set(spec, "schema", schema or None)
        return
    keys = {_field_name(k): k for k in old if k != "(*)"}
    for name, key in keys.items():
        if name not in now or was.get(name) != now.get(name):
            position = list(old).index(key)
            del old[key]
            if name in now:
                new_key = next(k for k in schema if _field_name(k) == name)
                if hasattr(old, "insert"):
                    old.insert(position, new_key, schema[new_key])
                else:
                    old[new_key] = schema[new_key]
    for new_key, value in schema.items():
        if _field_name(new_key) not in keys:
            old[new_key] = value


def _merge(spec: Any, key: str, values: dict[str, Any]) -> None:
    """Set a mapping's entries one by one, so the others keep their comments and order."""
    block = spec.get(key)
    if not values:
        spec.pop(key, None)
    elif not isinstance(block, dict):
        spec[key] = values
    else:
        for name in [n for n in block if n not in values]:
            del block[name]
        for name, value in values.items():
            _set(block, name, value)


def _front(doc: Any, was: dict[str, Any], config: dict[str, Any], description: str | None) -> None:
    """Change in `doc` (ruamel's round-trip mapping) the keys whose value differs from `was`
    (what the file said); leave every other byte alone."""
    doc.pop("message", None)
    if description is not None and doc.get("description") != description:
        doc["description"] = description
    if was.get("model") != config.get("model"):
        _set(doc, "model", config.get("model"))
    options = {CAMEL.get(k, k): v for k, v in config.items() if k not in _NOT_OPTIONS}
    before = {CAMEL.get(k, k): v for k, v in was.items() if k not in _NOT_OPTIONS}
    if options != before:
        block = doc.get("config")
        if not isinstance(block, dict):
            block = doc["config"] = {}
        spelled = {options_to_config({k: None}).popitem()[0]: k for k in block}  # keep the file's spelling
        for key in list(block):
            canonical = options_to_config({key: None}).popitem()[0]
            if CAMEL.get(canonical, canonical) not in options:
                del block[key]
        for key, value in options.items():
            canonical = options_to_config({key: None}).popitem()[0]
            _set(block, spelled.get(canonical, key), value)
        if not block:
            doc.pop("config", None)
    if was.get("variables") != config.get("variables") or was.get("input_schema") != config.get("input_schema"):
        spec = doc.get("input") if isinstance(doc.get("input"), dict) else {}
        if was.get("input_schema") != config.get("input_schema") and config.get("input_schema") is not None:
            spec["schema"] = config["input_schema"]
            spec.pop("default", None)
            defaults = {k: v["default"] for k, v in (config.get("variables") or {}).items()
                        if "default" in v and v["default"] != ""}
            if defaults:
                spec["default"] = defaults
        else:
            schema, defaults = _pico(config.get("variables") or {})
            _merge_schema(spec, schema, was.get("variables") or {}, config.get("variables") or {})
            _merge(spec, "default", defaults)
        if spec:
            doc["input"] = spec
        else:
            doc.pop("input", None)
    if was.get("output_schema") != config.get("output_schema") or \
            was.get("output_format") != config.get("output_format"):
        spec = doc.get("output") if isinstance(doc.get("output"), dict) else {}
        _set(spec, "schema", config.get("output_schema"))
        _set(spec, "format", config.get("output_format"))
        if spec:
            doc["output"] = spec
        else:
            doc.pop("output", None)


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None, path: str | os.PathLike | None = None,
           root: str | os.PathLike | None = None) -> str:
    config = dict(model_config)
    body = _body(template, config)
    head, yaml_text, old_body = _split(existing or "")
    try:
        was = _config(load_yaml(yaml_text, "the front matter"), schema_files(path, root)) \
            if yaml_text is not None else {}
    except FormatError:
        yaml_text, was = None, {}
    wanted = {k: v for k, v in config.items() if k != FORMAT_KEY}
    if yaml_text is None:
        head = ""
        doc: Any = {}
        if not wanted and description is None:
            return body
        y = round_trip_yaml()
        _front(doc, {}, config, description)
        buf = io.StringIO()
        y.dump(doc, buf)
        return f"---\n{buf.getvalue()}---\n{body}"
    # The blank lines around the body, which Dotprompt does not read, stay as they were.
    stripped = old_body.strip()
    lead = old_body[: len(old_body) - len(old_body.lstrip())]
    trail = old_body[len(old_body.rstrip()):] if stripped else ""
    if not stripped:  # a body where there was none (a schema-only file)
        new_body = body.strip() + "\n" if body.strip() else old_body
    else:
        new_body = lead + body.strip() + trail
    y = round_trip_yaml()
    try:
        doc = y.load(yaml_text) or {}
    except YAMLError:
        doc = {}
    snapshot = _dump(y, doc)
    _front(doc, {k: v for k, v in was.items() if k != FORMAT_KEY}, wanted, description)
    after = _dump(y, doc)
    if after != snapshot:
        m = _FRONT.match(head)
        opened = m.start("yaml") if m.group("yaml") is not None else m.end() - len(head) + head.rindex("---")
        closed = m.end("yaml") if m.group("yaml") is not None else opened
        head = head[:opened] + after + head[closed:]
    return head + new_body


def _dump(y: YAML, doc: Any) -> str:
    buf = io.StringIO()
    if doc:
        y.dump(doc, buf)
    return buf.getvalue()
