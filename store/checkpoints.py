"""Named checkpoints and folded history: many saves are noise, a few are worth a name.

`checkpoint()` names a version (the head of a branch by default) without touching it; a
`message:` in a file's front matter names the save it arrives with. `fold_history()` shows
the named and labelled versions and folds the unnamed saves between them into a count.
Nothing is squashed or deleted: the full history is always there.
"""

from __future__ import annotations

from typing import Any

from . import audit
from .clock import now
from .db import write
from .errors import InvalidInput


def checkpoint(store: Any, prompt: int | str, message: str, *, version: int | None = None,
               branch: str | None = None, actor: str | None = None) -> dict[str, Any]:
    """Name `version` (default: the head of `branch`, default main) with `message`."""
    if not isinstance(message, str) or not message.strip():
        raise InvalidInput("a checkpoint needs a message naming it, e.g. -m \"tone approved by legal\"")
    if version is not None and branch is not None:
        raise InvalidInput("give a version or a branch, not both")
    found = store.prompts.get(prompt, version=version, branch=None if version is not None else branch)
    who = actor or store.actor
    stamp = now()
    with write(store.db):
        store.db.execute(
            "INSERT INTO checkpoints (prompt_id, version, name, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
            [found.prompt_id, found.version, message.strip(), who, stamp],
        )
        audit.record(store.db, who, "checkpoint", prompt_id=found.prompt_id, version=found.version,
                     detail={"name": found.name, "message": message.strip()})
    return {"prompt_id": found.prompt_id, "name": found.name, "version": found.version,
            "message": message.strip(), "created_by": who, "created_at": stamp}


def checkpoints(store: Any, prompt: int | str) -> dict[int, list[str]]:
    """version -> the names given to it, oldest first."""
    prompt_id = store.prompts.prompt_id(prompt)
    names: dict[int, list[str]] = {}
    for number, name in store.db.execute(
        "SELECT version, name FROM checkpoints WHERE prompt_id = ? ORDER BY id", [prompt_id]
    ):
        names.setdefault(number, []).append(name)
    return names


def fold_history(store: Any, prompt: int | str, *, branch: str | None = None) -> list[dict[str, Any]]:
    """History newest first, folded: each entry is either
    `{"kind": "version", "version": PromptVersion, "checkpoints": [...], "labels": [...]}` for a
    version that is named (a checkpoint or a message), labelled, the head, or the first; or
    `{"kind": "folded", "count": n, "from_version": a, "to_version": b}` for the n unnamed
    saves between two shown versions."""
    history = store.prompts.history(prompt, branch=branch)
    if not history:
        return []
    return fold(history, checkpoints(store, prompt), store.prompts.labels(prompt))


def fold(history: list[Any], named: dict[int, list[str]], label_map: dict[str, int]) -> list[dict[str, Any]]:
    """`fold_history` of versions (newest first), their checkpoint names and the prompt's labels
    (a client of a team server folds what the server sends)."""
    labels: dict[int, list[str]] = {}
    for label, number in label_map.items():
        if label != "latest":
            labels.setdefault(number, []).append(label)
    out: list[dict[str, Any]] = []
    pending: list[int] = []

    def flush() -> None:
        if pending:
            out.append({"kind": "folded", "count": len(pending), "from_version": min(pending),
                        "to_version": max(pending)})
            pending.clear()

    last = len(history) - 1
    for i, v in enumerate(history):
        shown = i in (0, last) or v.version in named or v.version in labels or bool(v.message)
        if shown:
            flush()
            out.append({"kind": "version", "version": v, "checkpoints": named.get(v.version, []),
                        "labels": sorted(labels.get(v.version, []))})
        else:
            pending.append(v.version)
    flush()
    return out
