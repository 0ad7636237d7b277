"""Prompt files as people already keep them, read into the version model and written back.

Every format turns a file's text into a `ParsedPrompt` (template, model config, description,
the save's message, test data) and a version back into text. Writers take the file's current
text, if any, so that front-matter keys PromStack does not model (VS Code's `tools`, Prompty's
`connection`, ...) survive a write-back untouched.

| suffix                        | format      | module        |
|-------------------------------|-------------|---------------|
| .prompt.md                    | "prompt.md" | promptmd      |
| .prompt.yml, .prompt.yaml     | "github"    | github        |
| .prompty                      | "prompty"   | prompty       |
| .prompt                       | "dotprompt" | dotprompt     |
| .txt, .md, .j2, .jinja, .jinja2 | "text"    | plain         |
"""

from __future__ import annotations

import os
from typing import Any

from ..bounds import MAX_CONFIG_BYTES, MAX_TEST_DATA_BYTES, check_json
from ..errors import InvalidInput
from . import dotprompt, github, plain, promptmd, prompty
from .common import FormatError, ParsedPrompt

__all__ = ["FormatError", "ParsedPrompt", "SUFFIXES", "format_of", "name_for", "parse", "render"]

# Longest suffix first: ".prompt.md" must win over ".md".
SUFFIXES: tuple[tuple[str, str], ...] = (
    (".prompt.yaml", "github"),
    (".prompt.yml", "github"),
    (".prompt.md", "prompt.md"),
    (".prompty", "prompty"),
    (".jinja2", "text"),
    (".prompt", "dotprompt"),
    (".jinja", "text"),
    (".txt", "text"),
    (".md", "text"),
    (".j2", "text"),
)

_MODULES: dict[str, Any] = {
    "text": plain,
    "prompt.md": promptmd,
    "github": github,
    "prompty": prompty,
    "dotprompt": dotprompt,
}


def format_of(filename: str) -> str | None:
    """The format a file name is read as, or None for a file the watcher leaves alone."""
    lower = filename.lower()
    for suffix, fmt in SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return fmt
    return None


def name_for(relative: str) -> str:
    """`support/refund.prompt.md` -> `support/refund`: the path without its format's suffix."""
    lower = relative.lower()
    for suffix, _ in SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return relative[: -len(suffix)]
    raise FormatError(f"{relative!r} is not a prompt file (known suffixes: {', '.join(s for s, _ in SUFFIXES)})")


def parse(fmt: str, text: str, *, path: str | os.PathLike | None = None,
          root: str | os.PathLike | None = None) -> ParsedPrompt:
    """Read a file's text; raises FormatError with a sentence naming what to fix. `path` (and
    `root`, the workspace it is confined to): where the file is, for the references a format
    resolves next to it (Prompty's `${file:...}` and `base:`, Dotprompt's named schemas)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n")
    if fmt in ("prompty", "dotprompt"):
        parsed = _MODULES[fmt].parse(text, path=path, root=root)
    else:
        parsed = _MODULES[fmt].parse(text)
    # What a file may store, checked before anything is written or hashed.
    try:
        if parsed.model_config is not None:
            check_json(parsed.model_config, "the model config", MAX_CONFIG_BYTES)
        if parsed.test_data is not None:
            check_json(parsed.test_data, "the file's testData and evaluators", MAX_TEST_DATA_BYTES)
    except InvalidInput as exc:
        raise FormatError(str(exc)) from None
    return parsed


def render(
    fmt: str,
    template: str | list[dict[str, str]],
    model_config: dict[str, Any],
    *,
    description: str | None = None,
    existing: str | None = None,
    path: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
) -> str:
    """The file text for a version, keeping what `existing` holds that PromStack does not model.
    `path`/`root`: where the file is, as for `parse`."""
    bom = crlf = False
    if existing is not None:
        bom = existing.startswith("\ufeff")
        existing = existing[1:] if bom else existing
        crlf = "\r\n" in existing  # a file saved with Windows line endings keeps them
        existing = existing.replace("\r\n", "\n")
    if fmt in ("prompty", "dotprompt"):
        text = _MODULES[fmt].render(template, dict(model_config or {}), description=description, existing=existing,
                                    path=path, root=root)
    else:
        text = _MODULES[fmt].render(template, dict(model_config or {}), description=description, existing=existing)
    if crlf:
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return "\ufeff" + text if bom else text
