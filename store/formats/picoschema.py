"""Picoschema, Dotprompt's short way of writing a JSON Schema, read into JSON Schema.

    name: string, a description        a required field
    style?: string                      optional: its type also allows null
    tags(array, the tags): string       an array of strings
    address(object):                    a nested object
      city: string
    color?(enum): [RED, BLUE]           an enum (optional adds null)
    (*): number                         any other key, of this type
    anything: any                       no type at all

    foo: Foo, a description             a named schema (see below)

A schema that already is JSON Schema (a `type` of JSON Schema's, or `properties`) is kept as
it is. A type that is not one of Picoschema's is a named schema, as in Dotprompt, where names
are registered with the `Dotprompt` object (Genkit's `defineSchema`): `resolve(name)` gives its
JSON Schema (a copy is used; a description after the comma replaces the schema's own), or None
when there is no such schema, which is refused with a sentence.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from .common import FormatError

SCALARS = ("string", "number", "integer", "boolean", "null", "any")
_JSON_TYPES = (*SCALARS[:-1], "object", "array")
Resolver = Callable[[str, str], "dict[str, Any] | None"]
_KEY = re.compile(r"^(?P<name>[^?()]+?)(?P<optional>\?)?(?:\((?P<type>\w+)(?:,\s*(?P<desc>.*))?\))?$")


def to_json_schema(schema: Any, where: str = "schema", resolve: Resolver | None = None) -> dict[str, Any] | None:
    """`resolve(name, where)`: a named schema's JSON Schema, or None when there is none."""
    if schema is None:
        return None
    if isinstance(schema, str):
        return _scalar(schema, where, resolve)
    if not isinstance(schema, dict):
        raise FormatError(f"'{where}' must be a type (string, number, ...) or fields (name: type)")
    if schema.get("type") in _JSON_TYPES or isinstance(schema.get("type"), list):
        return dict(schema)
    if isinstance(schema.get("properties"), dict):
        return {**schema, "type": "object"}
    return _object(schema, where, resolve)


def _scalar(text: str, where: str, resolve: Resolver | None) -> dict[str, Any]:
    type_, comma, desc = text.partition(",")
    type_, desc = type_.strip(), desc.strip()
    if type_ not in SCALARS:
        named = resolve(type_, where) if resolve is not None else None
        if named is None:
            raise FormatError(f"'{where}' has the type {type_!r}, which is neither a Picoschema type "
                              f"({', '.join(SCALARS)}) nor a named schema; write the schema out or add "
                              f"the file {type_}.schema.json next to the prompt")
        out = copy.deepcopy(named)
    else:
        out = {} if type_ == "any" else {"type": type_}
    if comma and desc:
        out["description"] = desc
    return out


def _object(fields: dict[str, Any], where: str, resolve: Resolver | None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {}}
    required: list[str] = []
    for key, value in fields.items():
        key = str(key)
        if key == "(*)":
            out["additionalProperties"] = to_json_schema(value, f"{where}.(*)", resolve) or {}
            continue
        m = _KEY.match(key.strip())
        if not m:
            raise FormatError(f"'{where}' has a field {key!r} that is not Picoschema: write name, name? or "
                              "name(type, description)")
        name, optional, kind, desc = m.group("name").strip(), m.group("optional"), m.group("type"), m.group("desc")
        place = f"{where}.{name}"
        if kind is None:
            prop = to_json_schema(value, place, resolve) or {}
        elif kind == "array":
            prop = {"type": "array", "items": to_json_schema(value, place, resolve) or {}}
        elif kind == "object":
            prop = _object(value if isinstance(value, dict) else {}, place, resolve)
        elif kind == "enum":
            if not isinstance(value, list):
                raise FormatError(f"'{place}' is an enum: give its values as a list, e.g. [RED, BLUE]")
            prop = {"enum": list(value)}
        else:
            raise FormatError(f"'{place}' has ({kind}); use (array), (object) or (enum) there")
        if desc:
            prop["description"] = desc.strip()
        if optional:
            if isinstance(prop.get("type"), str):
                prop["type"] = [prop["type"], "null"]
            if "enum" in prop and None not in prop["enum"]:
                prop["enum"].append(None)
        else:
            required.append(name)
        out["properties"][name] = prop
    if "additionalProperties" not in out:
        out["additionalProperties"] = False
    if required:
        out["required"] = required
    return out
