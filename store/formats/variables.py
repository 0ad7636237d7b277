"""Declared variables as the formats spell them -> the store's `variables` block
({name: {type, description, default}}), and back."""

from __future__ import annotations

from typing import Any

TYPES = ("string", "number", "integer", "boolean", "array", "object")
_ALIASES = {
    "str": "string", "text": "string", "any": "string", "int": "integer", "float": "number",
    "double": "number", "bool": "boolean", "list": "array", "thread": "array", "dict": "object",
    "map": "object",
}


def kind(value: Any) -> str:
    name = str(value or "string").strip().lower()
    name = _ALIASES.get(name, name)
    return name if name in TYPES else "string"


def entry(type_: Any = None, description: Any = None, default: Any = None, *, has_default: bool = False) -> dict:
    spec: dict[str, Any] = {"type": kind(type_)}
    if description not in (None, ""):
        spec["description"] = str(description)
    if has_default:
        spec["default"] = default
    return spec
