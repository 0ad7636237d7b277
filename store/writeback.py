"""Versions -> prompt files: when a version made through the SDK, the CLI or MCP (a save, a
rollback, a merge) lands on the branch the workspace follows, the prompt's file is rewritten
in its own format.

The write is atomic (a hidden temp file in the same folder, fsync, rename over the file) and
happens while this process holds the store's write lock, after `prompt_files` records the new
bytes' hash: a watcher, in this process or another, that then reads the file finds bytes the
store already knows and does not version its own write a second time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from . import formats
from .clock import now
from .db import write
from .errors import PromStackError
from .filesync import sha256, workspace_branch
from .models import PromptVersion
from .workspace import workspace_root

log = logging.getLogger("promstack.watch")


def write_back(store: Any, version: PromptVersion, *, root: str | os.PathLike | None = None,
               branch: str | None = None) -> str | None:
    """Rewrite the file of `version`'s prompt to hold it; returns the path written (relative to
    the workspace), or None when the prompt has no file, the version is on another branch, or
    the file holds it already. A version the format cannot express is recorded in
    `watch_errors` and the file is left as it is."""
    if version.branch != (branch or workspace_branch()):
        return None
    db = store.db
    # The cheap question first: most prompts have no file, and every save asks.
    row = db.execute(
        "SELECT path, format, content_sha, missing_since FROM prompt_files WHERE prompt_id = ?",
        [version.prompt_id],
    ).fetchone()
    if row is None or row[3] is not None or row[2] == version.sha256:
        return None
    if root is None:
        if getattr(store, "path", None) is None:
            return None
        root = workspace_root(Path(store.path))
    root = Path(root).resolve()
    rel, fmt = row[0], row[1]
    try:
        with write(db):
            # Read again under the lock: another writer may have moved the file or written it.
            row = db.execute("SELECT path, format, content_sha, file_sha FROM prompt_files WHERE prompt_id = ? "
                             "AND missing_since IS NULL", [version.prompt_id]).fetchone()
            if row is None or row[2] == version.sha256:
                return None
            rel, fmt = row[0], row[1]
            target = _safe_target(root, rel)
            current = target.read_bytes() if target.exists() else None
            if current is not None and sha256(current) != row[3]:
                # Someone edited the file since it was last synced: never overwrite an edit the
                # store has not versioned. The watcher (or the next reconcile) versions it.
                raise PromStackError("the file has edits that are not versioned yet; they were kept, "
                                     "and 'promstack watch' versions them")
            existing = current.decode("utf-8") if current is not None else None
            text = formats.render(fmt, version.template, version.model_config, existing=existing,
                                  path=target, root=root)
            data = text.encode("utf-8")
            db.execute(
                "UPDATE prompt_files SET file_sha = ?, content_sha = ?, version = ?, message = NULL, "
                "synced_at = ? WHERE path = ?",
                [sha256(data), version.sha256, version.version, now(), rel],
            )
            if existing is None or existing.encode("utf-8") != data:
                _atomic_write(target, data, expected=None if current is None else row[3])
    except (PromStackError, OSError, UnicodeDecodeError) as exc:
        reason = str(exc) if isinstance(exc, PromStackError) else f"{exc.__class__.__name__}: {exc}"
        _record(db, rel, f"version {version.version} was not written to the file: {reason}")
        return None
    log.info("%s: wrote version %s of %s", rel, version.version, version.name)
    return rel


def _safe_target(root: Path, rel: str) -> Path:
    target = root / rel
    if not Path(os.path.realpath(target)).is_relative_to(root) or not target.parent.resolve().is_relative_to(root):
        raise PromStackError(f"{rel} resolves outside the workspace (a symlink?); PromStack writes only inside it")
    return target


def _atomic_write(target: Path, data: bytes, *, expected: str | None = None) -> None:
    """Write `data` to `target` by rename. `expected`: the sha256 the file must still hold. An
    editor may save while the temp file is written and synced, so the file is checked again
    just before the rename, through a hard link to it kept until after the rename: an edit
    written into the old file in that window is seen there afterwards and put back. (An editor
    that saves by rename in the microseconds between the check and ours is the window left.)"""
    mode = None
    with contextlib.suppress(OSError):
        mode = target.stat().st_mode & 0o777
    # Hidden and ending in .tmp: the watcher ignores the temp file by its name.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    old = None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        if expected is not None:
            old = f"{tmp}.old"
            try:
                os.link(target, old)
            except OSError:  # a file system without hard links: the check alone
                old = None
            if sha256(Path(old or target).read_bytes()) != expected:
                raise PromStackError(_EDITED)
        os.replace(tmp, target)
        if old is not None and sha256(Path(old).read_bytes()) != expected:
            os.replace(old, target)  # the edit landed in the file we replaced: it wins
            raise PromStackError(_EDITED)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if old is not None:
            with contextlib.suppress(OSError):
                os.unlink(old)


_EDITED = "the file was edited while it was being written; the edit was kept, and 'promstack watch' versions it"


def _record(db: Any, rel: str, error: str) -> None:
    log.warning("%s: %s", rel, error)
    with write(db):
        db.execute("INSERT INTO watch_errors (path, error, at) VALUES (?, ?, ?)", [rel, error, now()])
