"""The single source of truth: SQLite through sqlite-utils. Imports nothing of the project."""

from __future__ import annotations

import getpass
import importlib
import os
from pathlib import Path
from typing import Any

from .errors import Busy, InvalidInput, MergeConflict, NotFound, PromStackError
from .models import Branch, Diff, LabelMove, Prompt, PromptVersion
from .without_numpy import install as install_without_numpy

__all__ = [
    "Branch", "Busy", "Diff", "InvalidInput", "LabelMove", "MergeConflict", "NotFound", "Prompt",
    "PromptStore", "PromptVersion", "PromStackError", "Store", "audit", "connect", "default_actor", "write",
]

# sqlite-utils (and numpy, which it imports when installed) load only when a store is opened,
# so `promstack mcp` and `promstack --help` start as fast as a bare server.
_LAZY = {"audit": ("store.audit", None), "connect": ("store.db", "connect"),
         "write": ("store.db", "write"), "PromptStore": ("store.prompts", "PromptStore")}


install_without_numpy()


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'store' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    loaded = importlib.import_module(module)
    return loaded if attribute is None else getattr(loaded, attribute)


def default_actor() -> str:
    """Who writes are attributed to when nobody says: PROMSTACK_USER, else the OS user."""
    user = os.environ.get("PROMSTACK_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): still never leave the author empty
        return "unknown"


class Store:
    """One open store: the database and the models over it."""

    def __init__(self, path: str | os.PathLike | None, *, actor: str | None = None) -> None:
        from .db import connect
        from .prompts import PromptStore

        self.path = Path(path) if path not in (None, ":memory:") else None
        self.db = connect(path)
        self.actor = actor or default_actor()
        self.prompts = PromptStore(self.db, actor=self.actor)

    def close(self) -> None:
        self.db.close()
