"""What every format shares: the parsed result, front matter in YAML, role sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..bounds import too_deep
from ..errors import InvalidInput

ROLES = ("system", "user", "assistant", "developer", "tool")


class FormatError(InvalidInput):
    """A prompt file that cannot be read (or a version that cannot be written) in its format."""


@dataclass
class ParsedPrompt:
    template: str | list[dict[str, str]]
    # None: the format has no place for a model config (plain text), so the prompt keeps its own.
    model_config: dict[str, Any] | None
    description: str | None = None
    # A `message:` in the front matter names the save (a checkpoint).
    message: str | None = None
    # A .prompt.yml's testData and evaluators, kept for the test suites.
    test_data: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_FENCE = re.compile(r"^---[ \t]*\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.M)


def front_matter_parts(text: str) -> tuple[str, str, str, str] | None:
    """(opening fence, front matter YAML, closing fence line, body) as the file's own bytes, so a
    writer can replace one part and keep the others; None when there is no front matter, or
    it is not closed."""
    opening = _FENCE.match(text)
    if opening is None:
        return None
    close = _CLOSE.search(text, opening.end())
    if close is None:
        return None
    return text[:opening.end()], text[opening.end():close.start()], text[close.start():close.end()], text[close.end():]


def split_front_matter(text: str, *, required: bool = False) -> tuple[dict[str, Any] | None, str]:
    """(front matter as a dict or None when there is none, body)."""
    parts = front_matter_parts(text)
    if parts is None:
        if _FENCE.match(text):
            raise FormatError("the front matter is not closed: add a line '---' after it")
        if required:
            raise FormatError("the file has no front matter: start it with a line '---'")
        return None, text
    return load_yaml(parts[1], "the front matter"), parts[3]


# libyaml's loader when PyYAML was built with it: the reconcile pass parses a thousand files.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# Aliases (`*name`) repeat what an anchor (`&name`) holds without copying it in the file: nine
# levels of nine aliases make a 400-byte file that expands to gigabytes once it is stored as
# JSON (a "billion laughs"). Anchors are allowed (merge keys share defaults between test cases),
# but all the aliases of a file together may add at most this much: characters of text, plus
# one for each value.
MAX_YAML_ALIAS_EXPANSION = 1_000_000


def check_aliases(text: str, what: str) -> None:
    """Refuse YAML whose aliases expand past MAX_YAML_ALIAS_EXPANSION, or refer to themselves,
    from the parser's events alone: nothing is built before the verdict."""
    if "*" not in text:  # no alias without one
        return
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[None, 0]]  # [anchor, size so far] of each open collection
    added = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.ScalarEvent):
                size = len(event.value) + 1
                stack[-1][1] += size
                if event.anchor:
                    sizes[event.anchor] = size
            elif isinstance(event, yaml.CollectionStartEvent):
                stack.append([event.anchor, 1])
            elif isinstance(event, yaml.CollectionEndEvent) and len(stack) > 1:
                anchor, size = stack.pop()
                stack[-1][1] += size
                if anchor:
                    sizes[anchor] = size
            elif isinstance(event, yaml.AliasEvent):
                if any(open_anchor == event.anchor for open_anchor, _ in stack):
                    raise FormatError(f"{what} has an alias *{event.anchor} inside its own anchor "
                                      f"&{event.anchor}, which never ends; write the value out")
                size = sizes.get(event.anchor, 1)
                stack[-1][1] += size
                added += size
                if added > MAX_YAML_ALIAS_EXPANSION:
                    raise FormatError(
                        f"{what} has aliases (*name) that expand to more than {MAX_YAML_ALIAS_EXPANSION:,} "
                        "characters; write the values out or use fewer aliases"
                    )
    except yaml.YAMLError:
        return  # load_yaml reports the syntax error with its line


def load_yaml(text: str, what: str) -> dict[str, Any]:
    """A YAML mapping from text a person wrote; FormatError with a sentence when it is not one,
    or when its aliases expand too far (check_aliases)."""
    check_aliases(text, what)
    try:
        data = yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise FormatError(str(too_deep(what))) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FormatError(f"{what} is not valid YAML{where}: {problem}; fix it and save again") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FormatError(f"{what} must be YAML keys and values (name: value), not a {type(data).__name__}")
    return data


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(c in value for c in "\t\r") and value == value.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: dict[str, Any]) -> str:
    if not data:
        return ""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def with_front_matter(data: dict[str, Any], body: str) -> str:
    if not data:
        return body
    return f"---\n{dump_yaml(data)}---\n{body}"


def text_field(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise FormatError(f"'{key}' in the front matter must be text")
    return str(value)


def mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"'{where}' must be keys and values, not {type(value).__name__}")
    return value


# ---- model config: one vocabulary in the store, several spellings in files ---------------

# canonical key -> spellings seen in files (first one is what a writer uses by default)
CAMEL = {
    "max_tokens": "maxOutputTokens",
    "top_p": "topP",
    "top_k": "topK",
    "frequency_penalty": "frequencyPenalty",
    "presence_penalty": "presencePenalty",
    "stop": "stopSequences",
}
_FROM_CAMEL = {v: k for k, v in CAMEL.items()} | {"maxTokens": "max_tokens"}


def options_to_config(options: dict[str, Any]) -> dict[str, Any]:
    """Model parameters as any of these formats spell them -> the store's snake_case keys."""
    return {_FROM_CAMEL.get(k, k): v for k, v in options.items()}


def config_to_options(config: dict[str, Any], *, camel: bool) -> dict[str, Any]:
    if not camel:
        return dict(config)
    return {CAMEL.get(k, k): v for k, v in config.items()}


def is_camel(options: dict[str, Any]) -> bool:
    return any(k in _FROM_CAMEL for k in options)


def clean(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}
