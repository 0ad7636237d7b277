"""The model-facing argument schema: what an assistant reads, in every conversation, to pick a
tool and fill its arguments (`inputSchema` in `tools/list`).

pydantic's JSON schema is written for validators and form builders: a `title` on every node, an
`anyOf` with `{"type": "null"}` and `"default": null` for each optional argument, the limits
that guard the server. None of that helps a model choose or call a tool, and all of it is paid
for in tokens (bench/bench_mcp_context.py counts them), so the schema the server advertises is
pydantic's with that taken out:

- no `title` (the property name says it);
- an optional argument is its type alone: leaving it out is how a caller says "none" (an
  explicit null is still accepted);
- no `default` that means absence (null, false, empty); real defaults ("main", 20) stay;
- no length, count or range limits and no `additionalProperties`: the server enforces every one
  and answers a breach with a sentence naming the argument;
- a shape defined once and used once is written where it is used; `$defs` keeps shared ones.

Every node keeps a `type`, `enum`, `anyOf` or `$ref`, so a strict client (MCP Inspector's
`--strict`) finds nothing that "accepts any value". Validation is unchanged: arguments are
validated against the pydantic model (registry.py), never against this. The result schema
(`outputSchema`) is not read by the model and stays as pydantic writes it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

_DROPPED = (
    "title", "maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum", "additionalProperties",
)
_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "not", "contains", "propertyNames")
_REF = "#/$defs/"


def compact(schema: dict[str, Any]) -> dict[str, Any]:
    """A compact copy of a pydantic JSON schema (see the module's docstring)."""
    return _inline_single_use(_node(copy.deepcopy(schema)))


def _node(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    for key in _DROPPED:
        if key != "additionalProperties" or isinstance(node.get(key), bool):
            node.pop(key, None)
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            node[key] = {name: _node(sub) for name, sub in node[key].items()}
    for key in (*_SCHEMA_VALUES, "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _node(node[key])
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            node[key] = [_node(sub) for sub in node[key]]
    if "anyOf" in node:
        _optional(node)
    if "default" in node and (node["default"] is None or node["default"] is False or node["default"] in ([], {})):
        del node["default"]
    return node


def _optional(node: dict[str, Any]) -> None:
    """`anyOf: [X, null]` becomes X; nested `anyOf`s become one."""
    branches: list[Any] = []
    for branch in node["anyOf"]:
        if branch == {"type": "null"}:
            continue
        if isinstance(branch, dict) and "anyOf" in branch and set(branch) <= {"anyOf", "description"}:
            branches.extend(branch["anyOf"])
            if "description" in branch:
                node.setdefault("description", branch["description"])
        else:
            branches.append(branch)
    if len(branches) == 1 and isinstance(branches[0], dict):
        del node["anyOf"]
        for key, value in branches[0].items():
            node.setdefault(key, value)  # the argument's own description beats its type's
    else:
        node["anyOf"] = branches


def _inline_single_use(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", None)
    if not defs:
        return schema
    text = json.dumps(schema) + json.dumps(defs)
    uses = {name: text.count(json.dumps(_REF + name)) for name in defs}
    single = {name for name in defs if uses[name] == 1 and json.dumps(_REF + name) not in json.dumps(defs[name])}

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(value) for value in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF):] in single:
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return {**inline(defs[ref[len(_REF):]]), **rest}
        return {key: inline(value) for key, value in node.items()}

    result = inline(schema)
    shared = {name: inline(sub) for name, sub in defs.items() if name not in single}
    if shared:
        result["$defs"] = shared
    return result
