"""`.txt`, `.md`, `.j2`: the whole file is the template; it has no place for a model config."""

from __future__ import annotations

import json
from typing import Any

from .common import ParsedPrompt


def parse(text: str) -> ParsedPrompt:
    # A chat prompt written to a plain file is its messages as JSON, which the store reads back
    # as chat (store.template.normalize).
    return ParsedPrompt(template=text, model_config=None)


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    if isinstance(template, str):
        return template
    return json.dumps(template, ensure_ascii=False, indent=1) + "\n"
