"""Files a prompt file refers to: Prompty's `${file:...}` and `base:`, Dotprompt's named schemas.

A reference is resolved next to the referring file and must stay inside the workspace (`root`;
the file's own folder when there is none): an absolute path or a `..` that leaves it is refused
with a sentence naming the field, as is a file too big, unreadable or not UTF-8. Symlinks are
followed before the check, so a link out of the workspace is refused too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from .common import FormatError, check_aliases

MAX_REFERENCED_BYTES = 1_000_000
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def limit_of(path: str | os.PathLike, root: str | os.PathLike | None) -> Path:
    """The folder references from `path` must stay in."""
    return Path(root).resolve() if root is not None else Path(path).resolve().parent


def locate(rel: str, field: str, path: str | os.PathLike | None, root: str | os.PathLike | None) -> Path:
    """The file `rel` names, relative to the folder of `path`, checked to be inside the workspace."""
    if path is None:
        raise FormatError(f"'{field}' refers to a file ({rel}), which PromStack reads only for a "
                          "file in the workspace; write the value out in this file")
    if os.path.isabs(rel) or rel.startswith("~"):
        raise FormatError(f"'{field}' refers to {rel}, an absolute path; give a path relative to this file, "
                          "inside the workspace")
    limit = limit_of(path, root)
    target = (Path(path).resolve().parent / rel).resolve()
    if target != limit and not target.is_relative_to(limit):
        raise FormatError(f"'{field}' refers to {rel}, outside the workspace; PromStack reads only files inside it")
    return target


def read_text(target: Path, rel: str, field: str) -> str:
    try:
        if target.stat().st_size > MAX_REFERENCED_BYTES:
            raise FormatError(f"'{field}' refers to {rel}, over the {MAX_REFERENCED_BYTES:,}-byte limit")
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
        raise FormatError(f"'{field}' refers to {rel}, which cannot be read ({why})") from None


def load_data(target: Path, text: str, rel: str, field: str) -> Any:
    """A referenced file's value: JSON or YAML by its suffix, else its text."""
    if target.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise FormatError(f"'{field}' refers to {rel}, which is not valid JSON") from None
    if target.suffix.lower() in (".yml", ".yaml"):
        check_aliases(text, f"{rel} (from '{field}')")
        try:
            return yaml.load(text, Loader=_Loader)
        except (yaml.YAMLError, RecursionError):
            raise FormatError(f"'{field}' refers to {rel}, which is not valid YAML") from None
    return text


def load(rel: str, field: str, path: str | os.PathLike | None, root: str | os.PathLike | None) -> Any:
    target = locate(rel, field, path, root)
    return load_data(target, read_text(target, rel, field), rel, field)
