"""Handlebars templates, the language of Dotprompt `.prompt` files, rendered as Handlebars.

A version whose model config says `template_format: handlebars` keeps its template as the file
holds it and renders it with `dotpromptz-handlebars`, the pure-Python Handlebars that Google's
Genkit team maintains for Dotprompt (Handlebars.js 4.7 is its reference): context switching in
`#each`/`#with`, `this`, `../`, `@key`/`@index`/`@first`/`@last`, block parameters,
standalone-line stripping, `{{!-- --}}` comments, `~`, partials. Nothing else reads the text:
`{% %}` is text. Lookups only go through dicts and lists, never Python attributes.

Dotprompt's own helpers are defined here (`role`, `history`, `media`, `section`, `json`,
`ifEquals`, `unlessEquals`), and the rendered text becomes messages as Dotprompt makes them.

The render runs in the sandbox's limits (store/sandbox.py): every block body, loop turn and
partial spends a step of the work budget and looks at the deadline; what is produced is counted
as it is made; partials nest at most MAX_PARTIAL_DEPTH deep.
"""

from __future__ import annotations

import contextvars
import functools
import json
import math
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from dotpromptz_handlebars import _render as _engine
from dotpromptz_handlebars._compiler import _lookup_helper
from dotpromptz_handlebars._types import Block, InlinePartial, Mustache, Partial, PartialBlock

from .errors import InvalidInput
from .sandbox import MAX_OUTPUT_CHARS, RenderLimit, check_structure, spend

HANDLEBARS = "handlebars"
FORMAT_KEY = "template_format"
MAX_PARTIAL_DEPTH = 16
# Text made on the way, nested blocks counted once per level: bounds memory before the join.
_MADE_LIMIT = 8 * MAX_OUTPUT_CHARS

_BUILTIN = {"if", "unless", "each", "with", "lookup", "log"}
_CONDITIONS = {"if", "unless", "ifEquals", "unlessEquals"}
_SCOPES = {"each", "with"}
HELPERS = {"role", "history", "media", "section", "json", "ifEquals", "unlessEquals"}


class HandlebarsError(InvalidInput):
    """A template that does not parse or render as Handlebars; the caller names the prompt."""


def is_handlebars(model_config: Any) -> bool:
    return isinstance(model_config, Mapping) and model_config.get(FORMAT_KEY) == HANDLEBARS


# ---- the budget: the renderer's one recursion, wrapped ----------------------------------

_made: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("promstack_hbs_made", default=None)
_inner_render = getattr(_engine._render, "__wrapped__", _engine._render)


@functools.wraps(_inner_render)
def _counted_render(nodes: Any, **env: Any) -> str:
    # Every body (a template, a block, one loop turn, a partial) passes here.
    spend()
    text = _inner_render(nodes, **env)
    made = _made.get()
    if made is not None:
        made[0] += len(text)
        if made[0] > _MADE_LIMIT or len(text) > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"the template renders to more than {MAX_OUTPUT_CHARS:,} characters; "
                              "a loop or a repetition in it runs away")
    return text


_engine._render = _counted_render  # the renderer looks itself up here on every recursion


# ---- compiling and reading a template -------------------------------------------------

@functools.lru_cache(maxsize=256)
def _compile_cached(source: str) -> list[Any]:
    return _engine.compile_template(source, max_depth=MAX_PARTIAL_DEPTH * 8)


def compile_source(source: str) -> list[Any]:
    try:
        if len(source) <= 64_000:
            return _compile_cached(source)
        return _engine.compile_template(source, max_depth=MAX_PARTIAL_DEPTH * 8)
    except RecursionError:
        raise HandlebarsError("the template nests blocks too deeply to read; flatten it") from None
    except ValueError as exc:
        raise HandlebarsError(f"the Handlebars template does not parse: {exc}; fix it") from None


_LITERAL = re.compile(r"""^(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|true|false|null|undefined)$""")


class _Reader:
    """Walks a compiled template: the root variables it reads, those it only tests (if,
    unless, each, with, ifEquals), the partials it includes and the helpers it calls."""

    def __init__(self) -> None:
        self.guards: list[str] = []  # root names tested by the blocks around the current node
        self.printed: list[str] = []
        self.tested: list[str] = []
        self.partials: list[str] = []
        self.root_partials: list[str] = []  # at the top, with the caller's variables as they are
        self.inline: set[str] = set()  # {{#*inline "name"}}: defined in the template itself

    def _path(self, token: str, depth: int, params: list[set[str]], tested: bool) -> None:
        if token.startswith("(") and token.endswith(")"):
            self._call(_engine._call(token[1:-1].strip()), depth, params, tested=False)
            return
        if _LITERAL.match(token) or not token:
            return
        if token.startswith("@root"):
            token, depth = token[len("@root"):].lstrip("./"), 0
        elif token.startswith("@"):
            return  # data: @index, @key, and the caller's @state, @auth...
        while token.startswith("../"):
            token, depth = token[3:], depth - 1
        if token.startswith(("this", "./")):
            token = re.sub(r"^(?:this|\.)(?:[./]|$)", "", token)
        if not token or token == ".":
            return
        first = re.split(r"[./\[]", token, maxsplit=1)[0]
        if not first or any(first in names for names in params):
            return
        if depth <= 0:
            # `{{#if style}} in {{style}}{{/if}}` prints style only when it is there.
            target = self.tested if tested or first in self.guards else self.printed
            if first not in target:
                target.append(first)

    def _call(self, call: dict[str, Any], depth: int, params: list[set[str]], *, tested: bool,
              block: bool = False) -> None:
        name = call["name"]
        args = call["args"]
        if call.get("literal"):
            return
        if args or call["hash"] or block:
            if name not in _BUILTIN and name not in HELPERS and args + list(call["hash"].values()):
                raise HandlebarsError(f"the Handlebars helper '{name}' is not one Dotprompt defines "
                                   f"({', '.join(sorted(HELPERS))}, and Handlebars' own if, unless, each, "
                                   "with, lookup); PromStack cannot run custom helpers")
            if name not in _BUILTIN and name not in HELPERS:
                self._path(name, depth, params, tested=True)  # {{#name}}...{{/name}}: a section
            for arg in [*args, *call["hash"].values()]:
                self._path(arg, depth, params, tested=tested)
        elif name not in HELPERS:
            self._path(name, depth, params, tested=tested)

    def walk(self, nodes: list[Any], depth: int = 0, params: list[set[str]] | None = None) -> None:
        params = params or []
        for node in nodes:
            if isinstance(node, Mustache):
                self._call(node.call, depth, params, tested=False)
            elif isinstance(node, Block):
                name = node.call["name"]
                self._call(node.call, depth, params, tested=name in _CONDITIONS | _SCOPES, block=True)
                inner = depth + 1 if name in _SCOPES or name not in _BUILTIN | HELPERS else depth
                local = [*params, set(node.call.get("params") or [])]
                guarded = len(self.guards)
                if name in ("if", "with", "each") and len(node.call["args"]) == 1 and depth == 0:
                    self.guards.append(re.split(r"[./\[]", node.call["args"][0], maxsplit=1)[0])
                self.walk(node.body, inner, local)
                del self.guards[guarded:]
                self.walk(node.inverse, depth, params)
            elif isinstance(node, Partial | PartialBlock):
                if not node.name.startswith(("(", "@")) and node.name not in self.partials:
                    self.partials.append(node.name)
                scoped = node.hash or node.context_path or depth > 0 or any(params)
                if not scoped and node.name in self.partials and node.name not in self.root_partials:
                    self.root_partials.append(node.name)
                for value in node.hash.values():
                    self._path(value, depth, params, tested=False)
                if isinstance(node, PartialBlock):
                    self.walk(node.body, depth, params)
            elif isinstance(node, InlinePartial):
                self.inline.add(node.name)
                self.walk(node.body, depth, params)


def read(source: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(root variables the template needs, root variables it only tests, every partial it
    includes, the partials included at the top with no context or hash of their own: their
    variables are the template's)."""
    reader = _Reader()
    reader.walk(compile_source(source))
    tested = [n for n in reader.tested if n not in reader.printed]
    stored = [n for n in reader.partials if n not in reader.inline]
    return reader.printed, tested, stored, [n for n in reader.root_partials if n not in reader.inline]


# ---- Dotprompt's helpers ----------------------------------------------------------------

def _same(a: Any, b: Any) -> bool:
    """JavaScript's ===, which Dotprompt's spec asks of ifEquals in every language."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        return a is b  # objects are equal only to themselves
    return a == b


def _helpers(marker: str) -> dict[str, Callable[..., Any]]:
    def role(args: list[Any], options: Any) -> str:
        return f"{marker}role:{args[0]}>>>" if args else ""

    def history(args: list[Any], options: Any) -> str:
        return f"{marker}history>>>"

    def section(args: list[Any], options: Any) -> str:
        return f"{marker}section {args[0]}>>>" if args else ""

    def media(args: list[Any], options: Any) -> str:
        url = options.hash_value("url")
        if not url:
            return ""
        kind = options.hash_value("contentType")
        return f"{marker}media:url {url}{' ' + str(kind) if kind else ''}>>>"

    def to_json(args: list[Any], options: Any) -> str:
        if not args:
            return ""
        check_structure(args[0], "json")
        indent = options.hash_value("indent") or 0
        try:
            indent = int(indent)
        except (TypeError, ValueError):
            indent = 0
        if indent > 1_000:
            raise RenderLimit("json indent= is over 1,000 spaces; use a smaller number")
        if indent <= 0:
            return json.dumps(args[0], separators=(",", ":"), ensure_ascii=False)
        return json.dumps(args[0], indent=indent, ensure_ascii=False)

    def if_equals(args: list[Any], options: Any) -> str:
        if len(args) < 2:
            return ""
        return options.fn() if _same(args[0], args[1]) else options.inverse()

    def unless_equals(args: list[Any], options: Any) -> str:
        if len(args) < 2:
            return ""
        return options.inverse() if _same(args[0], args[1]) else options.fn()

    def log(args: list[Any], options: Any) -> str:
        return ""  # Handlebars' log prints to stdout, which carries the MCP protocol: nothing here

    return {"role": role, "history": history, "section": section, "media": media, "json": to_json,
            "ifEquals": if_equals, "unlessEquals": unless_equals, "lookup": _lookup_helper, "log": log}


# ---- rendering -----------------------------------------------------------------------------

def _number_text(value: Any) -> Any:
    # Handlebars prints numbers as JavaScript does: 1.0 is "1"; NaN and Infinity never arrive (JSON).
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def render_text(source: str, context: dict[str, Any], partials: dict[str, str], marker: str) -> str:
    """The template rendered to text, with `marker` starting each role/history/media/section mark."""
    values = {k: _number_text(v) for k, v in context.items() if not k.startswith("@")}
    data = {k[1:]: v for k, v in context.items() if k.startswith("@") and len(k) > 1}
    token = _made.set([0])
    try:
        return _engine.render_program(
            compile_source(source), values, data=data, helpers=_helpers(marker), partials=dict(partials),
            escape_html=False, strict=False, max_depth=MAX_PARTIAL_DEPTH * 8,
        )
    except RecursionError:
        raise RenderLimit(f"partials include each other more than {MAX_PARTIAL_DEPTH} deep; remove the cycle") from None
    except ValueError as exc:
        raise HandlebarsError(f"could not render: {exc}") from None
    finally:
        _made.reset(token)


def new_marker() -> str:
    # Random per render: a value that holds a marker cannot start a system message.
    return f"<<<promstack-{secrets.token_hex(8)}:"


def to_messages(text: str, marker: str, history: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rendered text -> Dotprompt messages `[{role, content: [parts], metadata?}]`, as Dotprompt
    splits them: a role mark starts a message (or renames an empty one), whitespace-only pieces
    are dropped, `{{history}}` puts the history there; without it, the history goes before the
    last user message."""
    split = re.compile(rf"({re.escape(marker)}(?:role:[A-Za-z]+|history)>>>)")
    current: dict[str, Any] = {"role": "user", "source": ""}
    sources = [current]
    placed = False
    for piece in split.split(text):
        if not piece.strip():
            continue
        if piece.startswith(marker + "role:"):
            role = piece[len(marker) + 5:-3]
            if current.get("source", "").strip():
                current = {"role": role, "source": ""}
                sources.append(current)
            else:
                current["role"] = role
        elif piece.startswith(marker + "history"):
            placed = True
            for m in history or []:
                sources.append({"role": m.get("role", "user"), "content": _parts_of(m.get("content")),
                                "metadata": {**(m.get("metadata") or {}), "purpose": "history"}})
            current = {"role": "model", "source": ""}
            sources.append(current)
        else:
            current["source"] = current.get("source", "") + piece
    messages = []
    for s in sources:
        if "content" in s:
            messages.append({"role": s["role"], "content": s["content"], "metadata": s["metadata"]})
        elif s.get("source"):
            messages.append({"role": s["role"], "content": _to_parts(s["source"], marker)})
    if history and not placed:
        tagged = [{"role": m.get("role", "user"), "content": _parts_of(m.get("content"))} for m in history]
        if messages and messages[-1]["role"] == "user":
            messages = [*messages[:-1], *tagged, messages[-1]]
        else:
            messages = [*messages, *tagged]
    return messages


def _parts_of(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    return list(content or [])


def _to_parts(source: str, marker: str) -> list[dict[str, Any]]:
    split = re.compile(rf"({re.escape(marker)}(?:media:url|section).*?>>>)")
    parts: list[dict[str, Any]] = []
    for piece in split.split(source):
        if not piece.strip():
            continue
        if piece.startswith(marker + "media:url"):
            fields = piece[len(marker):-3].split(" ")
            media = {"url": fields[1]} if len(fields) > 1 else {}
            if len(fields) > 2 and fields[2].strip():
                media["contentType"] = fields[2]
            parts.append({"media": media})
        elif piece.startswith(marker + "section"):
            parts.append({"metadata": {"purpose": piece[len(marker):-3].split(" ", 1)[-1], "pending": True}})
        else:
            parts.append({"text": piece})
    return parts


_STORE_ROLE = {"model": "assistant"}


def store_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dotprompt messages -> the store's chat messages `[{role, content}]`: `model` is
    `assistant`; text parts are joined; a message with media has OpenAI content parts; section
    marks (a Genkit structure with no place in a chat message) are left out; a message's
    `metadata` (history's `purpose: history`) is kept, as Dotprompt gives it."""
    out = []
    for m in messages:
        parts = [p for p in m["content"] if "metadata" not in p]
        if any("media" in p for p in parts):
            content: Any = [_media_part(p["media"]) if "media" in p else {"type": "text", "text": p.get("text", "")}
                            for p in parts]
        else:
            content = "".join(p.get("text", "") for p in parts)
        message = {"role": _STORE_ROLE.get(m["role"], m["role"]), "content": content}
        if m.get("metadata"):
            message["metadata"] = m["metadata"]  # `purpose: history`; the gateway leaves it out of the call
        out.append(message)
    return out


def _media_part(media: dict[str, Any]) -> dict[str, Any]:
    # OpenAI's image_url part; litellm reads a MIME type from `format` (Gemini takes video and audio so).
    image = {"url": media.get("url", "")}
    if media.get("contentType"):
        image["format"] = media["contentType"]
    return {"type": "image_url", "image_url": image}


def render(source: str, context: dict[str, Any], partials: dict[str, str]) -> str | list[dict[str, Any]]:
    """What the store's render gives for a Handlebars template: the text, or chat messages when
    it has `{{role}}`, `{{history}}` or `{{media}}` (or a `history` value is passed)."""
    marker = new_marker()
    history = context.get("history") if isinstance(context.get("history"), list) else None
    text = render_text(source, context, partials, marker)
    if marker not in text and history is None:
        return text
    return store_messages(to_messages(text, marker, history))
