"""Templates: validation, variable detection, includes of other stored prompts, sandboxed rendering.

A template is text, or chat messages `[{role, content}]` whose contents are each a template.
Everything renders in Jinja2's SandboxedEnvironment with StrictUndefined, so a missing variable
is an error that names it rather than an empty string.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import BaseLoader, TemplateNotFound, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError

from . import handlebars, mustache
from .bounds import check_json
from .errors import InvalidInput, NotFound
from .sandbox import (
    MAX_OUTPUT_CHARS,
    Environment,
    RenderLimit,
    end_render,
    start_render,
)

MAX_RENDERED_CHARS = MAX_OUTPUT_CHARS  # what one render may produce (a template is at most 1 MB)

MAX_TEMPLATE_BYTES = 1_000_000
CHAT_ROLES = ("system", "user", "assistant", "developer", "tool")
INCLUDE_DEPTH = 16
_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined")
VARIABLE_TYPES = ("string", "number", "integer", "boolean", "array", "object")

# (name, selector) -> template text; selector is "" (head of main), a version number or a label.
IncludeResolver = Callable[[str, str], str]


@dataclass(frozen=True)
class Template:
    """A validated template in its stored form."""

    kind: str  # "text" or "chat"
    text: str  # the text itself, or the messages as canonical JSON

    @property
    def value(self) -> str | list[dict[str, str]]:
        return self.text if self.kind == "text" else json.loads(self.text)

    def sources(self) -> list[str]:
        """Each piece of Jinja source: the text, or every message's content."""
        if self.kind == "text":
            return [self.text]
        return [m["content"] for m in json.loads(self.text)]


def normalize(template: Any, *, what: str = "template", allow_empty: bool = False) -> Template:
    """Check a template as a person or a program handed it to us, and put it in stored form.
    `allow_empty`: a Handlebars (Dotprompt) template may be empty, a prompt that carries only
    its model config and schemas; it renders to no message."""
    if isinstance(template, bytes | bytearray):
        try:
            template = bytes(template).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"the {what} is not valid UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
            ) from None
    if isinstance(template, str):
        stripped = template.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            # A chat prompt handed over as JSON text (from the CLI or a file) is still a chat prompt.
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):  # not JSON, or brackets nested thousands deep
                parsed = None
            if isinstance(parsed, list) and parsed and all(
                isinstance(m, dict) and "role" in m for m in parsed
            ):
                return normalize(parsed, what=what)
        _check_text(template, what, allow_empty=allow_empty)
        return Template("text", template)
    if isinstance(template, list | tuple):
        if not template:
            raise InvalidInput(f"the {what} has no messages; give at least one {{role, content}}")
        messages = []
        for i, message in enumerate(template, 1):
            if not isinstance(message, dict) or set(message) - {"role", "content", "name"}:
                raise InvalidInput(
                    f"message {i} of the {what} must be an object with 'role' and 'content'"
                )
            role, content = message.get("role"), message.get("content")
            if role not in CHAT_ROLES:
                raise InvalidInput(
                    f"message {i} has role {role!r}; use one of {', '.join(CHAT_ROLES)}"
                )
            if not isinstance(content, str):
                raise InvalidInput(f"message {i} needs 'content' as text")
            _check_text(content, f"content of message {i}", allow_empty=role == "assistant")
            messages.append({k: message[k] for k in ("role", "content", "name") if k in message})
        text = json.dumps(messages, ensure_ascii=False, indent=1)
        if len(text.encode()) > MAX_TEMPLATE_BYTES:
            raise InvalidInput(_too_large(what, len(text.encode())))
        return Template("chat", text)
    raise InvalidInput(
        f"the {what} must be text or a list of chat messages, not {type(template).__name__}"
    )


def _too_large(what: str, size: int) -> str:
    return (
        f"the {what} is {size:,} bytes, over the 1 MB limit; split it into prompts joined "
        "with {% include %}"
    )


def _check_text(text: str, what: str, allow_empty: bool = False) -> None:
    if not allow_empty and not text.strip():
        raise InvalidInput(f"the {what} is empty; write the prompt text first")
    if "\x00" in text:
        raise InvalidInput(f"the {what} contains NUL bytes: it looks binary, not like text")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"the {what} is not valid UTF-8 text (it has lone surrogates)") from None
    if size > MAX_TEMPLATE_BYTES:
        raise InvalidInput(_too_large(what, size))


# The resolver of the render in progress; a context variable so that threads and tasks
# rendering against different stores never see each other's.
_resolver: contextvars.ContextVar[IncludeResolver | None] = contextvars.ContextVar(
    "promstack_include_resolver", default=None
)


class _StoreLoader(BaseLoader):
    """Resolves `{% include "name" %}`, `"name@3"` and `"name@production"` from the store."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        resolver = _resolver.get()
        if resolver is None:
            raise TemplateNotFound(template)
        name, selector = split_reference(template)
        return resolver(name, selector), template, lambda: False  # never up to date: labels move


class _Environment(Environment):
    def __init__(self) -> None:
        super().__init__(loader=_StoreLoader())


_env = _Environment()


def split_reference(reference: str) -> tuple[str, str]:
    """'shared/tone@3' -> ('shared/tone', '3'); 'shared/tone' -> ('shared/tone', '')."""
    name, _, selector = reference.partition("@")
    return name, selector


# Parsed and compiled templates are kept for reuse, but only small ones: 512 sources of up to
# 1 MB each, with their trees, would hold gigabytes in a long-running server or watcher.
CACHED_SOURCE_MAX = 64_000


def _parse(source: str) -> nodes.Template:
    return _parse_cached(source) if len(source) <= CACHED_SOURCE_MAX else _parse_now(source)


def _parse_now(source: str) -> nodes.Template:
    try:
        return _env.parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(
            f"the template does not parse at line {exc.lineno}: {exc.message}; fix the Jinja syntax"
        ) from None


_parse_cached = functools.lru_cache(maxsize=512)(_parse_now)


_JINJA_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})  # Jinja's own meanings


@functools.lru_cache(maxsize=512)
def _substitution(source: str) -> tuple[tuple[str, str | None], ...] | None:
    """A template that is only text and `{{ name }}`s, as (text, None) and ("", name) pieces;
    None for any other. Such a template, given text for each name, renders to the pieces joined
    (no expression, filter, loop or include runs), so a batch run's thousands of renders of
    one prompt skip Jinja's per-render set-up; anything else goes through Jinja."""
    try:
        tree = _parse_now(source)
    except InvalidInput:
        return None
    plan: list[tuple[str, str | None]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for piece in node.nodes:
            if isinstance(piece, nodes.TemplateData):
                plan.append((piece.data, None))
            elif isinstance(piece, nodes.Name) and piece.ctx == "load" and piece.name not in _JINJA_NAMES:
                plan.append(("", piece.name))
            else:
                return None
    return tuple(plan)


def _compile(source: str):  # noqa: ANN202 - a Jinja Template
    return _compile_cached(source) if len(source) <= CACHED_SOURCE_MAX else _env.from_string(source)


@functools.lru_cache(maxsize=512)
def _compile_cached(source: str):  # noqa: ANN202 - a Jinja Template
    return _env.from_string(source)


def analyse(template: Template, model_config: Any = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Parse every piece; return (variables used, includes as (name, selector)). Refuses templates
    that reach for private attributes, which is how sandbox escapes start. A Handlebars template
    (`template_format: handlebars` in the model config) is read as Handlebars; its partials
    `{{> name}}` are its includes."""
    used: list[str] = []
    includes: list[tuple[str, str]] = []
    if handlebars.is_handlebars(model_config):
        for source in template.sources():
            printed, tested, _, partials = handlebars.read(source)
            used.extend(name for name in [*printed, *tested] if name not in used)
            includes.extend(ref for ref in map(split_reference, partials) if ref not in includes)
        return used, includes
    if mustache.is_mustache(model_config):
        for source in template.sources():
            printed, tested = mustache.read(source)
            used.extend(name for name in [*printed, *tested] if name not in used)
        return used, includes
    for source in template.sources():
        part_used, part_includes = _analyse_source(source)
        used.extend(name for name in part_used if name not in used)
        includes.extend(ref for ref in part_includes if ref not in includes)
    return used, includes


# Analyses by template structure (the Jinja tokens without the literal text between them).
# Successive versions of a prompt mostly edit the text and keep the same {{ }} and {% %}, and
# parsing plus the compile that variable detection needs is most of the cost of a save.
_by_structure: dict[tuple, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}
_STRUCTURES_KEPT = 1024


def _analyse_source(source: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    if "{" not in source:  # every Jinja delimiter ({{ {% {#) starts with one
        return (), ()
    key = _structure(source)
    if key is not None and (known := _by_structure.get(key)) is not None:
        return known
    result = _analyse_parsed(source)
    if key is not None:
        if len(_by_structure) >= _STRUCTURES_KEPT:
            _by_structure.clear()
        _by_structure[key] = result
    return result


# A tag with no quote or brace inside ends at its first }} or %}, for Jinja as for this pattern.
_SIMPLE_TAG = re.compile(r"\{\{[^{}'\"]*\}\}|\{%[^{}'\"]*%\}")


def _structure(source: str) -> tuple | None:
    """The source's tags without its literal text; None when it does not even lex."""
    # Fast and exact when only simple tags are present and the text between has no brace
    # left: Jinja then cuts the source where the pattern does. Not so for {% raw %}, whose
    # end Jinja looks for in the text itself.
    tags = _SIMPLE_TAG.findall(source)
    if "{" not in _SIMPLE_TAG.sub("", source) and not any("raw" in tag for tag in tags):
        return ("tags", *tags)
    try:
        return ("tokens", *((kind, value) for _, kind, value in _env.lex(source) if kind != "data"))
    except TemplateSyntaxError:
        return None  # _analyse_parsed raises the error with its line


def _analyse_parsed(source: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    try:
        return _analyse_tree(_parse(source))
    except RecursionError:
        # Jinja parses and compiles recursively: thousands of nested brackets or blocks.
        raise InvalidInput("the template nests too deeply to parse; flatten its expressions and blocks") from None


def _analyse_tree(ast: nodes.Template) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(attr, str) and attr.startswith("_"):
            raise InvalidInput(
                f"the template reaches for the private attribute {attr!r}, which the sandbox "
                "forbids; use plain {{ variables }}"
            )
    try:
        # Introspection compiles the template, which is when Jinja checks filter and test
        # names: an unknown one is a mistake in the template, not in PromStack.
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"the template does not compile: {exc.message}; fix the Jinja") from None
    includes: list[tuple[str, str]] = []
    for ref in meta.find_referenced_templates(ast):
        if ref is None:
            raise InvalidInput(
                "an {% include %} must name its prompt as a quoted string, e.g. "
                '{% include "shared/tone" %}'
            )
        parsed = split_reference(ref)
        if parsed not in includes:
            includes.append(parsed)
    return tuple(sorted(undeclared)), tuple(includes)


def optional_names(template: Template, model_config: Any) -> set[str]:
    """Variables a Handlebars template only tests (`{{#if x}}`, `{{#each x}}`): absent, they take
    the else branch, as in Handlebars, so they are not required. So are a Mustache template's
    section names (`{{#x}}`, `{{^x}}`)."""
    names: set[str] = set()
    if mustache.is_mustache(model_config):  # a section over a missing name renders nothing
        for source in template.sources():
            names.update(mustache.read(source)[1])
        return names
    if not handlebars.is_handlebars(model_config):
        return set()
    for source in template.sources():
        printed, tested, _, _ = handlebars.read(source)
        names.update(n for n in tested if n not in printed)
    return names


def declare(used: list[str], model_config: dict[str, Any], optional: set[str] | frozenset[str] = frozenset()
            ) -> list[dict[str, Any]]:
    """The declared variables of a version: those the template uses, typed and described by the
    optional `variables` block of its model config. `optional`: names that render without a
    value (optional_names)."""
    spec = model_config.get("variables") or {}
    if not isinstance(spec, dict):
        raise InvalidInput(
            "model_config.variables must map each variable name to {type, description, default}"
        )
    declared = []
    for name in [*used, *[n for n in spec if n not in used]]:
        info = spec.get(name) or {}
        if not isinstance(info, dict):
            raise InvalidInput(
                f"model_config.variables.{name} must be an object with type, description, default"
            )
        var_type = info.get("type", "string")
        if var_type not in VARIABLE_TYPES:
            raise InvalidInput(
                f"variable {name!r} has type {var_type!r}; use one of {', '.join(VARIABLE_TYPES)}"
            )
        entry: dict[str, Any] = {"name": name, "type": var_type,
                                 "required": "default" not in info and name not in optional}
        if "description" in info:
            entry["description"] = str(info["description"])
        if "default" in info:
            entry["default"] = info["default"]
        declared.append(entry)
    return declared


def render(
    template: Template,
    values: dict[str, Any],
    declared: list[dict[str, Any]],
    resolver: IncludeResolver | None,
    *,
    label: str,
    model_config: Any = None,
) -> str | list[dict[str, str]]:
    """Render with the declared defaults filled in; a missing variable names itself."""
    check_json(values, "a variable's value")  # a value nested thousands deep fails in Python's recursion
    context = {v["name"]: v["default"] for v in declared if "default" in v}
    context.update(values)
    missing = [v["name"] for v in declared if v["required"] and v["name"] not in context]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise InvalidInput(f"{label} needs the variable{'s' if len(missing) > 1 else ''} {names}; pass a value for each")
    if handlebars.is_handlebars(model_config):
        return _render_engine(template, lambda source: handlebars.render(
            source, context, _partials(source, resolver, label)), label)
    if mustache.is_mustache(model_config):
        return _render_engine(template, lambda source: mustache.render(source, context), label)
    token = _resolver.set(resolver)
    try:
        if template.kind == "text":
            return _render_one(template.text, context, label)
        return [
            {**m, "content": _render_one(m["content"], context, label)}
            for m in json.loads(template.text)
        ]
    finally:
        _resolver.reset(token)


def _partials(source: str, resolver: IncludeResolver | None, label: str) -> dict[str, str]:
    """Every partial a Handlebars template includes, at any depth, as stored prompts' text."""
    found: dict[str, str] = {}
    pending = [(source, 0)]
    while pending:
        text, depth = pending.pop()
        for name in handlebars.read(text)[2]:
            if name in found:
                continue
            if depth >= INCLUDE_DEPTH:
                raise InvalidInput(f"{label} includes partials more than {INCLUDE_DEPTH} deep; flatten them")
            if resolver is None:
                raise NotFound(f"{label} includes {name!r}, which is not a stored prompt")
            try:
                found[name] = resolver(*split_reference(name))
            except TemplateNotFound:
                raise NotFound(f"{label} includes {name!r}, which is not a stored prompt") from None
            pending.append((found[name], depth + 1))
    return found


def _render_engine(template: Template, render_source: Callable[[str], Any], label: str
                   ) -> str | list[dict[str, Any]]:
    """A Handlebars or Mustache template: `render_source(text)` renders one piece (a Handlebars
    piece may come out as several messages)."""
    token = start_render()
    try:
        if template.kind == "text":
            return render_source(template.text)
        out: list[dict[str, Any]] = []
        for m in json.loads(template.text):
            rendered = render_source(m["content"])
            out.extend(rendered if isinstance(rendered, list) else [{**m, "content": rendered}])
        return out
    except RenderLimit as exc:
        raise InvalidInput(f"{label} was stopped: {exc}") from None
    except (handlebars.HandlebarsError, mustache.MustacheError) as exc:
        raise InvalidInput(f"{label}: {exc}") from None
    except (ArithmeticError, TypeError) as exc:
        raise InvalidInput(f"{label} could not render: {exc}") from None
    except RecursionError:
        raise InvalidInput(f"{label} nests its blocks or sections too deeply to render; flatten them") from None
    except MemoryError:
        raise InvalidInput(f"{label} asked for more memory than there is; make it produce less") from None
    finally:
        end_render(token)


def _render_one(source: str, context: dict[str, Any], label: str) -> str:
    plan = _substitution(source) if len(source) <= CACHED_SOURCE_MAX else None
    if plan is not None:
        parts = []
        for text, name in plan:
            if name is None:
                parts.append(text)
                continue
            value = context.get(name)
            if value.__class__ is not str:  # missing, or not plain text: Jinja renders it (or says why not)
                break
            parts.append(value)
        else:
            rendered = "".join(parts)
            if len(rendered) <= MAX_RENDERED_CHARS:
                return rendered
    token = start_render()
    try:
        size, parts = 0, []
        for part in _compile(source).generate(context):
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                raise InvalidInput(f"{label} renders to more than {MAX_RENDERED_CHARS:,} characters; "
                                   "a loop or a repetition in the template runs away")
            parts.append(part)
        return "".join(parts)
    except UndefinedError as exc:
        match = _UNDEFINED_NAME.search(str(exc))
        if match is None:  # e.g. "'dict object' has no attribute 'id'": a value lacks a field
            raise InvalidInput(f"{label} could not render: {exc}; check the values you pass") from None
        raise InvalidInput(f"{label} needs the variable {match.group(1)!r}; pass a value for it") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        # The template's own expressions failed on the values given ({{ 1/0 }}, {{ text + 1 }},
        # a range over the sandbox's limit): the template or the values are wrong, not PromStack.
        raise InvalidInput(f"{label} could not render: {exc}") from None
    except RenderLimit as exc:
        raise InvalidInput(f"{label} was stopped: {exc}") from None
    except SecurityError as exc:
        raise InvalidInput(f"{label} tried something the template sandbox forbids: {exc}") from None
    except TemplateNotFound as exc:
        raise NotFound(f"{label} includes {exc.name!r}, which is not a stored prompt") from None
    except RecursionError:
        raise InvalidInput(f"{label} nests macro calls or includes too deeply (one calls or includes "
                           "itself?); remove the cycle") from None
    except MemoryError:
        raise InvalidInput(f"{label} asked for more memory than there is; make it produce less") from None
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"an included prompt does not parse: {exc.message}") from None
    finally:
        end_render(token)
