"""Where the store lives: `.promstack/promstack.db`, found by walking up like `.git`."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import NotFound

DIRNAME = ".promstack"
DBNAME = "promstack.db"


def find_db(start: str | os.PathLike | None = None) -> Path | None:
    """PROMSTACK_DB if set, else the nearest `.promstack/promstack.db` at or above `start`."""
    env = os.environ.get("PROMSTACK_DB")
    if env:
        return _configured(Path(env))
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DIRNAME / DBNAME
        if candidate.exists():
            return candidate
    return None


def _configured(path: Path) -> Path:
    """PROMSTACK_DB as given, if its folder exists. A store file is made on first use (that is
    what `init` leaves), but a missing folder is a typo: a silent new empty store there would
    look like every prompt is gone."""
    path = path.expanduser()
    folder = path.parent
    if folder.is_dir():
        return path
    if folder.name == DIRNAME:
        raise NotFound(
            f"PROMSTACK_DB is {str(path)!r}, but there is no workspace at {str(folder.parent)!r}; "
            f"fix PROMSTACK_DB, or run 'promstack init' in {str(folder.parent)!r} to start one there"
        )
    raise NotFound(
        f"PROMSTACK_DB is {str(path)!r}, but the folder {str(folder)!r} does not exist; fix "
        "PROMSTACK_DB, or run 'promstack init' in your project and point it at .promstack/promstack.db"
    )


def require_db(start: str | os.PathLike | None = None) -> Path:
    found = find_db(start)
    if found is None:
        raise NotFound(
            "no PromStack workspace here or above; run 'promstack init' in your project, "
            "or set PROMSTACK_DB to a store file"
        )
    return found


def workspace_root(db_path: Path) -> Path:
    """The folder that holds `.promstack/`; for a store elsewhere, the store's own folder."""
    db_path = Path(db_path).resolve()
    if db_path.parent.name == DIRNAME:
        return db_path.parent.parent
    return db_path.parent


def init(folder: str | os.PathLike | None = None) -> Path:
    """Create `.promstack/` in `folder` (default: here); returns the store path. Idempotent."""
    root = Path(folder or Path.cwd()).resolve()
    path = root / DIRNAME / DBNAME
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        # The store is local state, like .git: never committed by accident.
        ignore.write_text("*\n")
    return path


def keep_out_of_git(path: Path) -> None:
    """Make sure git ignores `path` (a secret) when it lives in a workspace's `.promstack/`,
    even one made without `init` or whose .gitignore a person trimmed to let the store in."""
    if path.parent.name != DIRNAME:
        return
    ignore = path.parent / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if "*" in lines or path.name in lines:
        return
    with ignore.open("a", encoding="utf-8") as out:
        out.write(("\n" if lines and not ignore.read_text(encoding="utf-8").endswith("\n") else "")
                  + path.name + "\n")
