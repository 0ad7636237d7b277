"""The Jinja sandbox every template renders in, and the limits that keep one render from
holding a thread or the memory of the process.

Jinja's SandboxedEnvironment stops templates from reaching Python internals and bounds
`range()`, but not the work or the memory a template may ask for. A render here has:

- a work budget: every call (macros, methods, functions), filter, attribute or item lookup and
  loop turn spends one step; past MAX_RENDER_STEPS the render stops. A doubling recursive macro
  (`f(40)`) or nested loops that print nothing end in a second or two, not in hours;
- a call depth: macro calls nest at most MAX_CALL_DEPTH deep;
- a deadline: PROMSTACK_RENDER_TIMEOUT seconds (default RENDER_TIMEOUT_S) of wall-clock time,
  checked in the same hooks, so it works in any thread and without signals;
- size checks before allocation: no single operation (a width in `center`, `ljust`, `indent`,
  `%` or `format`, a `*` repetition, a `join`, a `replace`, a concatenation, a list or dict
  written out whole) may produce more than MAX_OUTPUT_CHARS characters, the most a whole render
  may produce, and no list grows past MAX_COLLECTION_ITEMS items (`*`, `extend`, `update`);
- `abort_renders()`, which a server calls when it shuts down: every render in progress, on any
  thread, stops within a few steps (the flag is looked at every _CHECK_EVERY steps).

A limit reached is a `RenderLimit` (a SecurityError) with a sentence naming the limit; the
caller (store/template.py) turns it into InvalidInput.
"""

from __future__ import annotations

import contextvars
import functools
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter

MAX_OUTPUT_CHARS = 10_000_000  # what one render, and any one operation in it, may produce
MAX_POWER_BITS = 100_000
MAX_LOOP_ITERATIONS = 1_000_000  # all {% for %} iterations of one render, includes included
MAX_RENDER_STEPS = 2_000_000  # calls, filters, lookups and loop turns of one render
MAX_COLLECTION_ITEMS = 1_000_000  # items a list, dict or set may reach by `*`, extend or update
MAX_CALL_DEPTH = 64  # macro (and other) calls in progress at once
RENDER_TIMEOUT_S = 5.0  # wall-clock seconds per render; PROMSTACK_RENDER_TIMEOUT overrides
_CHECK_EVERY = 64  # steps between two looks at the budget, the clock and the abort flag (a power of 2)


class RenderLimit(SecurityError):
    """A render reached one of the limits above; the message names it and what to do."""


def render_timeout() -> float:
    """Seconds one render may run: PROMSTACK_RENDER_TIMEOUT when it is a positive number."""
    raw = os.environ.get("PROMSTACK_RENDER_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else RENDER_TIMEOUT_S
    except ValueError:
        return RENDER_TIMEOUT_S
    return value if 0 < value < 86_400 else RENDER_TIMEOUT_S


@dataclass
class _Budget:
    steps: int
    loops: int
    depth: int
    deadline: float
    timeout: float


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("promstack_render_budget", default=None)
_aborted = False


def abort_renders() -> None:
    """Stop every render in progress and refuse new ones: for a process that is shutting down."""
    global _aborted
    _aborted = True


def start_render() -> contextvars.Token:
    """A fresh budget for one render in this context; pass the token to `end_render`."""
    timeout = render_timeout()
    return _budget.set(_Budget(MAX_RENDER_STEPS, MAX_LOOP_ITERATIONS, 0, time.monotonic() + timeout, timeout))


def end_render(token: contextvars.Token) -> None:
    _budget.reset(token)


def _spend() -> None:
    """One step of the render in progress; every _CHECK_EVERY steps, a look at the budget, the
    clock and the abort flag (this runs for every lookup, so it must be cheap)."""
    budget = _budget.get()
    if budget is None:
        if _aborted:
            raise _shutting_down()
        return
    budget.steps -= 1
    if not budget.steps & (_CHECK_EVERY - 1):
        _check(budget)


def spend() -> None:
    """One step of the render in progress, for a renderer other than Jinja (store/handlebars.py)."""
    _spend()


def _check(budget: _Budget) -> None:
    if _aborted:
        raise _shutting_down()
    if budget.steps < 0:
        raise RenderLimit(
            f"the template took more than {MAX_RENDER_STEPS:,} steps (calls, filters, lookups and loop "
            "turns); a recursive macro or nested loops run away, so make it do less work"
        )
    if time.monotonic() > budget.deadline:
        raise RenderLimit(
            f"the template ran longer than the {budget.timeout:g}-second limit for one render "
            "(PROMSTACK_RENDER_TIMEOUT); make it do less work"
        )


def _shutting_down() -> RenderLimit:
    return RenderLimit("the server is shutting down, so the render was stopped; try again once it is back")


def _too_big(what: str, size: int) -> RenderLimit:
    return RenderLimit(
        f"{what} would make {size:,} characters, over the limit of {MAX_OUTPUT_CHARS:,} for one render; "
        "use a smaller number"
    )


def _check_size(what: str, size: int) -> None:
    if size > MAX_OUTPUT_CHARS:
        raise _too_big(what, size)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return int(value)
    return None


def _check_width(what: str, width: Any, base: int = 0) -> None:
    number = _as_int(width)
    if number is not None:
        _check_size(what, base + max(number, 0))


# ---- printf (`%`, the format filter) and str.format ---------------------------------------

_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_SPEC_NUMBERS = re.compile(r"\d+")


def _check_printf(fmt: Any, values: Any) -> None:
    """Widths and precisions of a printf-style format, before `fmt % values` allocates them."""
    if not isinstance(fmt, str):
        return
    args = list(values) if isinstance(values, tuple) else [values]
    index = 0
    for match in _PRINTF.finditer(fmt):
        width, precision, conversion = match.groups()
        for number in (width, precision):
            if number == "*":
                given = args[index] if index < len(args) else None
                index += 1
                _check_width(f"the format {match.group(0)!r}", given)
            elif number:
                _check_width(f"the format {match.group(0)!r}", int(number))
        if conversion != "%":
            index += 1


def _check_format_spec(spec: str) -> None:
    for number in _SPEC_NUMBERS.findall(spec):
        if len(number) > 8 or int(number) > MAX_OUTPUT_CHARS:
            raise RenderLimit(
                f"the format {{:{spec}}} asks for a width or precision over the limit of "
                f"{MAX_OUTPUT_CHARS:,} characters for one render; use a smaller number"
            )


class _BoundedFormatter(SandboxedFormatter):
    """str.format and format_map in the sandbox, with each field's width checked first."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        _spend()
        _check_format_spec(format_spec)
        return super().format_field(value, format_spec)


# ---- str methods and filters whose output can be far larger than their input --------------

def _str_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value)) if isinstance(value, int | float) else 0


def _replace_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str) or not isinstance(new, str) or len(new) <= len(old):
        return len(text)
    found = len(text) + 1 if old == "" else text.count(old)
    limit = _as_int(count)
    if limit is not None and limit >= 0:
        found = min(found, limit)
    return len(text) + found * (len(new) - len(old))


def _join_size(separator: str, items: Any) -> int:
    if not isinstance(items, list | tuple):
        return 0
    return len(separator) * max(len(items) - 1, 0) + sum(_str_len(item) for item in items)


def _check_growth(obj: Any, args: tuple) -> None:
    """`list.extend`, `dict.update`, `set.update`: a template doubling a list in a loop would
    reach billions of items in a few dozen steps."""
    target, name = obj.__self__, obj.__name__
    if name in ("extend", "update", "union", "__iadd__", "__ior__") and args:
        added = sum(len(a) for a in args if hasattr(a, "__len__"))
        if len(target) + added > MAX_COLLECTION_ITEMS:
            raise RenderLimit(f"{name}() would make a collection of {len(target) + added:,} items, over the "
                              f"limit of {MAX_COLLECTION_ITEMS:,}; add less")


def _check_str_method(obj: Any, args: tuple, kwargs: dict) -> None:
    text, name = obj.__self__, obj.__name__
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width(f"{name}()", kwargs.get("width", first))
    elif name == "expandtabs":
        size = _as_int(kwargs.get("tabsize", first if args else 8))
        if size is not None:
            _check_size("expandtabs()", len(text) + text.count("\t") * max(size, 0))
    elif name == "replace" and len(args) >= 2:
        _check_size("replace()", _replace_size(text, args[0], args[1], args[2] if len(args) > 2 else -1))
    elif name == "join":
        _check_size("join()", _join_size(text, first))


def _bounded_filters(filters: dict[str, Callable]) -> dict[str, Callable]:
    """Jinja's filters, each spending a step, the size-changing ones checked first."""

    def center(value: Any, width: int = 80) -> str:
        _check_width("center", width)
        return original["center"](value, width)

    def indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
        lines = str(value).count("\n") + 1
        if isinstance(width, str):
            _check_size("indent", len(str(value)) + lines * len(width))
        else:
            number = _as_int(width)
            if number is not None:
                _check_size("indent", len(str(value)) + lines * max(number, 0))
        return original["indent"](value, width, first, blank)

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_printf(str(value), tuple(args) if args else kwargs)
        return original["format"](value, *args, **kwargs)

    def replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> str:
        _check_size("replace", _replace_size(str(value), str(old), str(new), -1 if count is None else count))
        return original["replace"](eval_ctx, value, old, new, count)

    def join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        if attribute is None and isinstance(value, list | tuple):
            _check_size("join", _join_size(str(d), value))
        return original["join"](eval_ctx, value, d, attribute)

    original = dict(filters)
    checked: dict[str, Callable] = {"center": center, "indent": indent, "format": format_}
    for name, fn in (("replace", replace), ("join", join)):
        fn.jinja_pass_arg = original[name].jinja_pass_arg  # type: ignore[attr-defined]
        checked[name] = fn
    # Filters that make as many lists as they are told (`slice`, `batch` with a filler), indent
    # JSON by any width, or write out a whole structure: checked on their arguments first.
    for name, check in _ARGUMENT_CHECKS.items():
        if name in original:
            checked[name] = _prechecked(original[name], check)
    return {name: _stepping(checked.get(name, fn)) for name, fn in original.items()}


def _count_arg(what: str) -> Callable[[tuple, dict], None]:
    def check(args: tuple, kwargs: dict) -> None:
        number = _as_int(args[1]) if len(args) > 1 else None
        if number is not None and number > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"{what}({number:,}) asks for more than the {MAX_OUTPUT_CHARS:,} items one render "
                              "may make; use a smaller number")

    return check


def _tojson_args(args: tuple, kwargs: dict) -> None:
    indent = kwargs.get("indent", args[1] if len(args) > 1 else None)
    if args:
        check_structure(args[0], "tojson")
    number = _as_int(indent)
    if number is not None and number > 1_000:
        raise RenderLimit(f"tojson(indent={number:,}) is over the limit of 1,000 spaces; use a smaller number")


def _whole_value(what: str) -> Callable[[tuple, dict], None]:
    def check(args: tuple, kwargs: dict) -> None:
        if args:
            check_structure(args[0], what)

    return check


_ARGUMENT_CHECKS: dict[str, Callable[[tuple, dict], None]] = {
    "slice": _count_arg("slice"),
    "batch": _count_arg("batch"),
    "tojson": _tojson_args,
    "pprint": _whole_value("pprint"),
    "string": _whole_value("string"),
}


def _prechecked(fn: Callable, check: Callable[[tuple, dict], None]) -> Callable:
    passes_context = getattr(fn, "jinja_pass_arg", None) is not None

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check(args[1:] if passes_context else args, kwargs)
        return fn(*args, **kwargs)

    return wrapper


def check_structure(value: Any, what: str) -> None:
    """A list, tuple, set or dict about to be written out whole: refused when the text would be
    over MAX_OUTPUT_CHARS (measured with an early stop, so a list of ten million references to
    one long text costs no more than the limit)."""
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 4
        elif isinstance(item, dict):
            size += 2 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 8
        if size > MAX_OUTPUT_CHARS:
            raise _too_big(what, size)


def _stepping(fn: Callable) -> Callable:
    @functools.wraps(fn)  # keeps jinja_pass_arg, so Jinja still passes context/environment
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _spend()
        return fn(*args, **kwargs)

    return wrapper


def counted(iterable: Iterable[Any]) -> Iterable[Any]:
    """A loop's items, each turn spending a step and a loop iteration."""
    for item in iterable:
        _spend()
        budget = _budget.get()
        if budget is not None:
            budget.loops -= 1
            if budget.loops < 0:
                raise RenderLimit(f"the template's loops ran more than {MAX_LOOP_ITERATIONS:,} times")
        yield item


def _concat(parts: list[Any]) -> str:
    """`a ~ b ~ c`, its size checked before it is joined."""
    texts = [str(p) for p in parts]
    _check_size("a concatenation (~)", sum(len(t) for t in texts))
    return "".join(texts)


class Environment(SandboxedEnvironment):
    """The sandbox with PromStack's limits (see the module docstring)."""

    # `'x' * 10**10`, `10**10**10`, `s + s` and `'%999999999s' % x` are checked before they run.
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, loader: BaseLoader | None = None) -> None:
        super().__init__(
            loader=loader,
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            cache_size=0,
            finalize=_printable,
        )
        self.filters = _bounded_filters(self.filters)
        self.filters["_promstack_counted"] = counted
        self.filters["_promstack_concat"] = _concat

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Every {% for %} iterates through a counter, and every `~` joins through a size check.
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_promstack_counted", [], [], None, None, lineno=loop.lineno)
        for parent in [tree, *tree.find_all(nodes.Node)]:
            for field in parent.fields:
                value = getattr(parent, field, None)
                if isinstance(value, nodes.Concat):
                    setattr(parent, field, _checked_concat(value))
                elif isinstance(value, list):
                    value[:] = [_checked_concat(v) if isinstance(v, nodes.Concat) else v for v in value]
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and not isinstance(times, bool):
                    if not isinstance(seq, str) and len(seq) * times > MAX_COLLECTION_ITEMS:
                        raise RenderLimit(f"a repetition of {len(seq) * times:,} items is over the limit of "
                                          f"{MAX_COLLECTION_ITEMS:,} for a list; repeat less")
                    unit = len(seq) if isinstance(seq, str) else sum(max(_str_len(x), 1) for x in seq)
                    if unit * times > MAX_OUTPUT_CHARS:
                        raise RenderLimit(f"a repetition of {unit * times:,} items is over the limit of "
                                          f"{MAX_OUTPUT_CHARS:,}; repeat less")
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
                    and right * left.bit_length() > MAX_POWER_BITS):
                raise RenderLimit(f"{left} ** {right} is too large a number to compute")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _check_size("a sum (+)", len(left) + len(right))
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend()
        return SandboxedEnvironment.getattr(self, obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend()
        return SandboxedEnvironment.getitem(self, obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__
        formatter = _BoundedFormatter(self)
        is_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping")
                args, kwargs = (), args[0]
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(bounded, value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_method(__obj, args, kwargs)
        elif isinstance(owner, list | dict | set):
            _check_growth(__obj, args)
        budget = _budget.get()
        if budget is None:
            return super().call(__context, __obj, *args, **kwargs)
        budget.depth += 1
        try:
            if budget.depth > MAX_CALL_DEPTH:
                raise RenderLimit(
                    f"the template nests calls more than {MAX_CALL_DEPTH} deep (a macro calling "
                    "itself without end?); make the recursion shallower"
                )
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1


def _printable(value: Any) -> Any:
    """Every {{ expression }}'s value before it is made text: a whole list or dict is measured
    first (`str()` of ten million references to one long text would be terabytes)."""
    if value.__class__ not in _SCALARS:
        check_structure(value, "printing this list or dict")
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _checked_concat(node: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), "_promstack_concat", [], [], None, None,
                        lineno=node.lineno)


__all__ = ["Environment", "RenderLimit", "abort_renders", "end_render",
           "render_timeout", "spend", "start_render"]
