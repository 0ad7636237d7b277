"""Finding or making the workspace a server runs in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from store.workspace import find_db, init

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "workspace.json"


def ensure_workspace(folder: str | Path | None = None) -> Path:
    """The store to serve: the workspace's, or (outside any workspace) a new one in `folder`
    filled with the seed's examples, so that `make run` on a fresh clone shows something real."""
    found = find_db(folder)
    if found is not None:
        return found
    path = init(folder)
    if EXAMPLE.exists():
        from promstack.client import Client

        with Client(path) as client:
            counts = client.import_(json.loads(EXAMPLE.read_text(encoding="utf-8")))
        print(
            f"promstack: new workspace in {path.parent.parent} with the examples "
            f"({counts['prompts']} prompts, {counts['versions']} versions)",
            file=sys.stderr,
        )
    return path
