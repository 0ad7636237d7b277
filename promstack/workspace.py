"""Finding or making the workspace a server runs in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from store.workspace import find_db, init

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = EXAMPLES / "workspace.json"
SUITE = EXAMPLES / "tests" / "prompts" / "regression.csv"


def ensure_workspace(folder: str | Path | None = None) -> Path:
    """The store to serve: the workspace's, or (outside any workspace) a new one in `folder`
    filled with the guide's examples, so that `make run` on a fresh clone shows something real."""
    found = find_db(folder)
    if found is not None:
        return found
    path = init(folder)
    if EXAMPLE.exists():
        from promstack.client import Client
        from promstack.evals.engine import import_suite

        with Client(path) as client:
            # The examples' production and staging labels are taken as they are: a forced import,
            # recorded with this reason (no model has been asked anything yet).
            counts = client.import_(json.loads(EXAMPLE.read_text(encoding="utf-8")), force=True,
                                    reason="the example workspace")
            # The guide's CSV as the regression suite of prompt 42, with the guide's judge.
            suite = import_suite(client, SUITE)
        print(
            f"promstack: new workspace in {path.parent.parent} with the examples "
            f"({counts['prompts']} prompts, {counts['versions']} versions, suite "
            f"{suite['name']!r} of {suite['case_count']} cases)",
            file=sys.stderr,
        )
    return path
