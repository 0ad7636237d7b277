"""`.promstack/config.toml`: the workspace's settings, one table per concern.

    [guard]                       # every prompt
    injection = "flag"
    [cache]
    ttl = 600
    [prompts."support/refund".guard]   # one prompt, merged over [guard]
    injection = "block"

Any engine module reads its own table with `load(root).section("name")` and one prompt's view
with `.for_prompt(prompt_name, "name")`; unknown tables are kept for whoever owns them. The file
is re-read when it changes (its mtime), so a long-running server sees edits.
"""

from __future__ import annotations

import copy
import os
import threading
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput
from store.workspace import DIRNAME

if TYPE_CHECKING:
    from .client import Client

FILENAME = "config.toml"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Config:
    """Parsed settings; `section()` and `for_prompt()` return copies, safe to change."""

    def __init__(self, data: dict[str, Any] | None = None, path: Path | None = None) -> None:
        self.data = data or {}
        self.path = path
        self._views: dict[tuple, dict[str, Any]] = {}

    def view(self, name: str, defaults: dict[str, Any] | None = None, prompt: str | None = None) -> dict[str, Any]:
        """`for_prompt` (or `section`), computed once per loaded file: for hot paths that only
        read. Do not change the dict it returns; use `section()` for a copy."""
        key = (name, prompt, id(defaults))
        found = self._views.get(key)
        if found is None:
            found = self.for_prompt(prompt, name, defaults)
            self._views[key] = found
        return found

    def section(self, name: str, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise InvalidInput(f"[{name}] in {self.path or FILENAME} must be a table of settings")
        return deep_merge(defaults or {}, value)

    def for_prompt(
        self, prompt: str | None, name: str, defaults: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`[name]` with `[prompts."<prompt>".name]` merged over it."""
        merged = self.section(name, defaults)
        if prompt:
            specific = self.data.get("prompts", {}).get(prompt, {}).get(name)
            if isinstance(specific, dict):
                merged = deep_merge(merged, specific)
        return merged


def config_path(root: str | os.PathLike) -> Path:
    return Path(root) / DIRNAME / FILENAME


_cache: dict[Path, tuple[int | None, Config]] = {}
_lock = threading.Lock()


def load(root: str | os.PathLike | None) -> Config:
    """The workspace's config (`root` is the folder holding `.promstack/`); empty if none."""
    if root is None:
        return Config()
    path = config_path(root)
    try:
        mtime: int | None = path.stat().st_mtime_ns
    except FileNotFoundError:
        mtime = None  # no file: an empty config, kept like a loaded one so its views are too
    with _lock:
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
    if mtime is None:
        config = Config(path=path)
        with _lock:
            _cache[path] = (None, config)
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}; fix it or remove it") from None
    config = Config(data, path)
    with _lock:
        _cache[path] = (mtime, config)
    return config


def of_client(client: Client) -> Config:
    """The config of the workspace `client`'s store is in (empty for a store outside one)."""
    from store.workspace import workspace_root

    path = getattr(client.store, "path", None)
    return load(workspace_root(path) if path is not None else None)
