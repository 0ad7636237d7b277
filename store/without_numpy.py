"""sqlite-utils without numpy and pandas.

sqlite-utils imports numpy and pandas whenever they are installed, only to map their scalar
types to column types for `insert` of values it has to guess a type for. The store never does
that (its tables come from migrations; it writes Python values), and numpy alone costs ~55 ms
of every process that opens a store (a `promstack test`, a server start). `install()` makes the
one import of `sqlite_utils.db` see neither; anything else importing numpy still gets it.
"""

from __future__ import annotations

import importlib.machinery
import sys
from types import ModuleType
from typing import Any

HIDDEN = ("numpy", "pandas")
TARGET = "sqlite_utils.db"


class _HideWhileLoading:  # a loader (importlib.abc's protocol; importing that module costs ~5 ms)
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        hidden = [name for name in HIDDEN if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]  # an import of it raises ImportError
        try:
            self.loader.exec_module(module)
        finally:
            for name in hidden:
                if sys.modules.get(name, ...) is None:
                    del sys.modules[name]


class _Finder:  # a meta path finder
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # one import only
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _HideWhileLoading(spec.loader)
        return spec


def install() -> None:
    """Before sqlite-utils is first imported: load it without numpy and pandas (a no-op once
    it is loaded, or when numpy already is)."""
    if TARGET in sys.modules or "numpy" in sys.modules:
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
