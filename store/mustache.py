"""Mustache templates (`template_format: mustache`), as Prompty's runtime renders them: with
chevron, `{{x}}` HTML-escaped, `{{{x}}}` and `{{& x}}` as they are, sections over lists and
values, inverted sections, comments, `{{=<% %>=}}` delimiters.

What chevron does that a stored template must not: it reads partials (`{{> name}}`) from files
and falls back to Python attribute lookup (`{{name.format}}` on a string reaches a bound
method, which a section calls). So partials are refused when the template is read, and
chevron's one key lookup is replaced with one that only indexes dicts and lists and spends the
render's work budget (store/sandbox.py), like every other template here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import chevron.renderer as _renderer
from chevron.tokenizer import ChevronError, tokenize

from .errors import InvalidInput
from .sandbox import MAX_OUTPUT_CHARS, RenderLimit, spend

FORMAT_KEY = "template_format"
MUSTACHE = "mustache"


class MustacheError(InvalidInput):
    """A template that does not parse as Mustache, or includes a partial; the caller names the prompt."""


def is_mustache(model_config: Any) -> bool:
    return isinstance(model_config, Mapping) and model_config.get(FORMAT_KEY) == MUSTACHE


def _get_key(key: str, scopes: list[Any], warn: bool = False) -> Any:
    """chevron's lookup without its attribute fallback: dict keys and list indexes only."""
    spend()
    if key == ".":
        return scopes[0]
    for scope in scopes:
        try:
            for child in key.split("."):
                if isinstance(scope, Mapping):
                    scope = scope[child]
                elif isinstance(scope, list | tuple):
                    scope = scope[int(child)]
                else:
                    raise KeyError(child)
        except (KeyError, IndexError, ValueError):
            continue
        if scope in (0, False):  # chevron prints 0 and False, not ''
            return scope
        return scope or ""
    return ""


_renderer._get_key = _get_key  # the renderer looks it up here on every tag


def read(source: str) -> tuple[list[str], list[str]]:
    """(names printed, names only tested by a section) at the top level of the data; refuses
    what does not parse and partials, with a sentence."""
    printed: list[str] = []
    tested: list[str] = []
    depth = 0
    try:
        tokens = list(tokenize(source))
    except ChevronError as exc:
        raise MustacheError(f"the Mustache template does not parse: {exc}; fix it") from None
    for tag, key in tokens:
        if tag == "partial":
            raise MustacheError(f"the Mustache template includes the partial {{{{> {key}}}}}, which PromStack "
                               "does not read from files; write its text in the template")
        if tag in ("section", "inverted section"):
            if depth == 0 and key != "." and key.split(".")[0] not in tested:
                tested.append(key.split(".")[0])
            depth += 1
        elif tag == "end":
            depth -= 1
        elif tag in ("variable", "no escape") and depth == 0 and key != ".":
            name = key.split(".")[0]
            if name not in printed:
                printed.append(name)
    return printed, [n for n in tested if n not in printed]


def render(source: str, context: dict[str, Any]) -> str:
    read(source)  # no partials
    try:
        text = _renderer.render(source, context, partials_path=None, partials_dict={})
    except ChevronError as exc:
        raise MustacheError(f"the Mustache template does not parse: {exc}; fix it") from None
    if len(text) > MAX_OUTPUT_CHARS:
        raise RenderLimit(f"the template renders to more than {MAX_OUTPUT_CHARS:,} characters; "
                          "a loop or a repetition in it runs away")
    return text
