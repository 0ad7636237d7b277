"""JSON out of a model's reply: the one parser the `is-json` / `json-schema` assertions and the
judge share. A reply may come inside a ```json fence; the judge's reply may also wrap its JSON
object in prose, which an assertion must not forgive (the output is then not JSON)."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```\s*$", re.S)


def unfence(text: str) -> str:
    """The reply stripped, and without a ```json fence around the whole of it."""
    text = text.strip()
    fence = _FENCE.match(text)
    return fence.group(1) if fence else text


def parse_json_reply(text: str, *, embedded: bool = False) -> Any:
    """The JSON value of a reply. With `embedded`, a reply that is prose around one JSON
    object gives that object (the outermost braces). Raises ValueError saying where the JSON
    broke."""
    body = unfence(text)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        error = exc
    if embedded:
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(body[start:end + 1])
            except json.JSONDecodeError:
                pass
    raise ValueError(f"{error.msg} at line {error.lineno} column {error.colno}")
