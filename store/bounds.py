"""Bounds on structured input (JSON from a flag, a request or a file; YAML once read): how deep
it nests and how large it is once stored, checked without recursion and without building the
stored text first. Python's own JSON reader and writer recurse: input nested 100,000 deep is a
RecursionError, and a value that shares one list many times over (a YAML alias bomb) is
gigabytes once written out as JSON.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import InvalidInput

MAX_JSON_DEPTH = 64  # lists and objects inside each other, in any input
MAX_CONFIG_BYTES = 256_000  # a version's model config, as stored
MAX_TEST_DATA_BYTES = 4_000_000  # a prompt file's testData and evaluators, as stored


def too_deep(what: str) -> InvalidInput:
    """The one sentence for input nested too deeply to read (every face says it so)."""
    return InvalidInput(f"{what} nests lists and objects more than {MAX_JSON_DEPTH} deep; flatten it")


def check_json(value: Any, what: str, max_bytes: int | None = None) -> None:
    """Refuse `value` when it nests deeper than MAX_JSON_DEPTH or would take more than
    `max_bytes` as JSON (an estimate that never undercounts text: each string counts its
    characters, each other value a few bytes)."""
    if max_bytes is None:
        _check_depth(value, what)
        return
    size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise too_deep(what)
            size += 2
            if isinstance(item, dict):
                for key, inner in item.items():
                    size += len(key) + 4 if isinstance(key, str) else 8
                    stack.append((inner, depth + 1))
            else:
                size += len(item)
                stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            size += len(item) + 2
        else:
            size += 5
        if max_bytes is not None and size > max_bytes:
            raise InvalidInput(
                f"{what} is over the limit of {max_bytes:,} bytes once stored; make it smaller"
            )


def _check_depth(value: Any, what: str) -> None:
    """The depth alone, visiting only lists and objects (a render's values: it must be quick)."""
    containers = (dict, list, tuple)
    level = [value] if isinstance(value, containers) else []
    seen: set[int] = set()  # one shared list (a YAML alias) is looked into once, not once per use
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise too_deep(what)
        inner = []
        for item in level:
            for child in (item.values() if isinstance(item, dict) else item):
                if isinstance(child, containers) and id(child) not in seen:
                    seen.add(id(child))
                    inner.append(child)
        level = inner


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON a person or a program handed over; InvalidInput with a sentence when it is not
    JSON or nests deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep(what) from None
    except ValueError as exc:
        where = f" ({exc.msg} at line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidInput(f"{what} is not JSON{where}") from None
    check_json(value, what)
    return value


def read_bounded(source: Any, limit: int, what: str) -> bytes:
    """At most `limit` bytes from a path or a binary stream, refusing more: a regular file is
    measured before a byte is read; a pipe, a device (/dev/zero) or standard input is read no
    further than one byte past the limit."""
    def too_big(size: str) -> InvalidInput:
        return InvalidInput(f"{what} is {size} bytes, over the {limit:,}-byte limit; use a smaller file")

    if hasattr(source, "read"):
        data = source.read(limit + 1)
        if len(data) > limit:
            raise too_big(f"more than {limit:,}")
        return data
    path = Path(source)
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise too_big(f"{info.st_size:,}")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise too_big(f"more than {limit:,}")
    return data
