"""Prompt files -> versions: the engine the watcher, the reconcile pass and `import` share.

A file under the watched folder is one prompt, named by its path without the format's suffix
(`prompts/support/refund.prompt.md` -> `support/refund`). `prompt_files` remembers, per file,
the prompt, the sha256 of the bytes last synced in either direction and the version they hold:
equal bytes mean nothing to do, which is also how the watcher recognises a file the store
wrote itself. Every decision is made inside one write transaction (BEGIN IMMEDIATE), so two
watchers on the same store, seeing the same save, version it once: the second finds the
bytes already recorded.

A file that cannot be versioned (front matter that does not parse, binary, unreadable, a
template the store refuses) is logged and recorded in `watch_errors`; the prompt keeps its
current version. Nothing is deleted: a deleted file archives its prompt, a renamed file (the
same bytes or the same content at a new path while the old path is gone) renames it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import audit, formats
from .clock import now
from .db import write
from .errors import InvalidInput, NotFound, plain_words
from .formats import FormatError, ParsedPrompt
from .models import content_hash
from .prompts import MAIN
from .template import normalize

log = logging.getLogger("promstack.watch")

MAX_FILE_BYTES = 2_000_000
BATCH = 200

# Editors' temporary, swap and backup files: vim (.swp, .swo, 4913, ~), emacs (.#x, #x#),
# JetBrains safe-write, download and merge leftovers. Hidden files and folders are skipped too.
_TEMP = re.compile(
    r"(~|\.sw[a-p]|\.tmp|\.temp|\.bak|\.orig|\.rej|\.part|\.crdownload|___jb_(tmp|old)___|\.kate-swp)$"
    r"|^#.*#$|^\d+$",
    re.I,
)
_SKIP_DIRS = {"node_modules", "__pycache__"}


def workspace_branch() -> str:
    """The branch files follow: PROMSTACK_BRANCH, else main."""
    return os.environ.get("PROMSTACK_BRANCH") or MAIN


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SyncResult:
    path: str  # relative to the workspace root, with '/'
    action: str  # created | saved | unchanged | renamed | archived | error | retry | ignored
    prompt: str | None = None
    version: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Read:
    rel: str
    name: str
    fmt: str
    file_sha: str
    parsed: ParsedPrompt
    stamp: tuple[int, int] = (0, 0)  # (size, mtime_ns) when read


class FileSync:
    """Files under `watch_dir` (inside the workspace `root`) <-> prompts in `store`."""

    def __init__(self, store: Any, watch_dir: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 branch: str | None = None) -> None:
        self.store = store
        self.db = store.db
        self.prompts = store.prompts
        self.actor = store.actor
        self.root = Path(root if root is not None else Path.cwd()).resolve()
        watch = Path(watch_dir)
        watch = (watch if watch.is_absolute() else Path.cwd() / watch).resolve()
        if not watch.is_relative_to(self.root):
            raise InvalidInput(
                f"{watch} is outside the workspace {self.root}; watch a folder inside it"
            )
        self.watch_dir = watch
        self.branch = branch or workspace_branch()
        self._gone: list[tuple] | None = None

    # ---- paths ------------------------------------------------------------------------

    def relative(self, path: str | os.PathLike) -> str:
        p = Path(path)
        p = p if p.is_absolute() else self.root / p
        return Path(os.path.normpath(p)).relative_to(self.root).as_posix()

    def absolute(self, rel: str) -> Path:
        return self.root / rel

    def ignored(self, path: str | os.PathLike) -> bool:
        """True for anything that is not a prompt file under the watched folder."""
        p = Path(os.path.normpath(path if Path(path).is_absolute() else self.root / path))
        try:
            parts = p.relative_to(self.watch_dir).parts
        except ValueError:
            return True
        if not parts:
            return True
        if any(part.startswith(".") or part in _SKIP_DIRS for part in parts):
            return True
        name = parts[-1]
        return bool(_TEMP.search(name)) or formats.format_of(name) is None

    def name_for(self, path: str | os.PathLike) -> str:
        p = Path(os.path.normpath(path if Path(path).is_absolute() else self.root / path))
        return formats.name_for(p.relative_to(self.watch_dir).as_posix())

    def files(self) -> Iterator[Path]:
        """Every prompt file under the watched folder, hidden folders skipped."""
        for folder, dirs, names in os.walk(self.watch_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
            for name in sorted(names):
                path = Path(folder) / name
                if not self.ignored(path):
                    yield path

    # ---- reading ----------------------------------------------------------------------

    def read(self, path: Path) -> _Read | SyncResult:
        """Read and parse a file outside any transaction; a SyncResult says why not."""
        rel = self.relative(path)
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(self.root):
                return SyncResult(rel, "error", error="it is a symlink to a file outside the workspace; "
                                                      "PromStack only reads files inside it")
            before = path.stat()
            if not path.is_file():
                return SyncResult(rel, "ignored")
            if before.st_size > MAX_FILE_BYTES:
                return SyncResult(rel, "error", error=f"it is {before.st_size:,} bytes, over the "
                                                      f"{MAX_FILE_BYTES:,}-byte limit for a prompt file")
            data = path.read_bytes()
            after = path.stat()
        except FileNotFoundError:
            return SyncResult(rel, "retry")
        except OSError as exc:
            return SyncResult(rel, "error", error=f"it cannot be read ({exc.strerror or exc})")
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or len(data) != after.st_size:
            return SyncResult(rel, "retry")  # still being written
        file_sha = sha256(data)
        if b"\x00" in data[:8192]:
            return SyncResult(rel, "error", error="it is a binary file, not prompt text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return SyncResult(rel, "error", error=f"it is not UTF-8 text (bad byte at offset {exc.start}); "
                                                  "save it as UTF-8")
        fmt = formats.format_of(path.name)
        try:
            name = self.name_for(path)
            parsed = formats.parse(fmt, text, path=path, root=self.root)
        except FormatError as exc:
            return SyncResult(rel, "error", error=str(exc))
        return _Read(rel, name, fmt, file_sha, parsed, (after.st_size, after.st_mtime_ns))

    # ---- applying ---------------------------------------------------------------------

    def sync(self, path: str | os.PathLike) -> SyncResult:
        return self.sync_many([path])[0]

    def sync_many(self, paths: Iterable[str | os.PathLike], *, record_errors: bool = True) -> list[SyncResult]:
        """Version every file given (existing ones first, so that a rename is seen before the
        old path's deletion), in transactions of up to BATCH files."""
        present, gone = [], []
        for p in paths:
            p = Path(p) if Path(p).is_absolute() else self.root / p
            if self.ignored(p):
                continue
            (present if p.exists() or p.is_symlink() else gone).append(p)
        results: list[SyncResult] = []
        reads = [self.read(p) for p in present]
        for start in range(0, len(reads), BATCH):
            chunk = reads[start:start + BATCH]
            with write(self.db):
                self._gone = None
                for item in chunk:
                    results.append(self._apply_one(item))
        results.extend(r for r in self.remove_many(gone) if r.action != "ignored")
        for r in results if record_errors else ():
            if r.action == "error":
                self.record_error(r.path, r.error or "unknown error")
        return results

    def _apply_one(self, item: _Read | SyncResult) -> SyncResult:
        if isinstance(item, SyncResult):
            return item
        try:
            with self.db.atomic():  # a savepoint: one bad file never undoes the others
                return self._apply(item)
        except (InvalidInput, NotFound) as exc:
            # Kept in the store and shown by every face: in no face's words.
            return SyncResult(item.rel, "error", prompt=item.name, error=exc.worded(plain_words))

    def _mapping(self, where: str, params: list[Any]) -> dict[str, Any] | None:
        cursor = self.db.execute(f"SELECT * FROM prompt_files WHERE {where}", params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cursor.description], row, strict=True))

    def _apply(self, item: _Read) -> SyncResult:
        rel, parsed = item.rel, item.parsed
        source = f"file:{rel}"
        mapping = self._mapping("path = ?", [rel])
        if mapping and mapping["file_sha"] == item.file_sha and not mapping["missing_since"]:
            self._resolve_errors(rel)
            return SyncResult(rel, "unchanged", self._name(mapping["prompt_id"]), mapping["version"])
        if self._stamp(rel) != item.stamp:
            # Changed since it was read (outside the lock): another watcher may already hold the
            # newer bytes. Read it again rather than version what is no longer in the file.
            return SyncResult(rel, "retry", item.name)
        action = "saved"
        prompt_id = mapping["prompt_id"] if mapping else None
        if prompt_id is None:
            prompt_id, action = self._adopt(item)
        saved, created = self.version(item.name, parsed, prompt_id, source,
                                      previous_message=(mapping or {}).get("message"))
        if created:
            action = "created"
        elif not saved.created and action == "saved":
            action = "unchanged"
        self.db.execute("DELETE FROM prompt_files WHERE prompt_id = ? AND path != ?", [saved.prompt_id, rel])
        self.db.execute(
            "INSERT INTO prompt_files (path, prompt_id, format, file_sha, content_sha, version, message, "
            "test_data, missing_since, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) "
            "ON CONFLICT (path) DO UPDATE SET prompt_id = excluded.prompt_id, format = excluded.format, "
            "file_sha = excluded.file_sha, content_sha = excluded.content_sha, version = excluded.version, "
            "message = excluded.message, test_data = excluded.test_data, missing_since = NULL, "
            "synced_at = excluded.synced_at",
            [rel, saved.prompt_id, item.fmt, item.file_sha, saved.sha256, saved.version, parsed.message,
             json.dumps(parsed.test_data, ensure_ascii=False) if parsed.test_data is not None else None, now()],
        )
        self._resolve_errors(rel)
        return SyncResult(rel, action, saved.name, saved.version)

    def version(self, name: str, parsed: ParsedPrompt, prompt_id: int | None, source: str, *,
                previous_message: str | None = None) -> tuple[Any, bool]:
        """(the version, whether the prompt is new): a parsed file made a version, inside the
        caller's transaction; the rules the watcher and `promstack import` share. No
        `prompt_id`: a new prompt `name` (on main; a branch the workspace follows is made from
        it). Else a new version on the followed branch (an archived prompt is restored): the
        model config keys the file carries are set and the others kept, its description is
        taken, and its message, if not `previous_message`, names a checkpoint."""
        if prompt_id is None:
            saved = self.prompts.create_prompt(
                name, parsed.template, model_config=parsed.model_config or {},
                description=parsed.description, message=parsed.message, author=self.actor, source=source,
            )
            if self.branch != MAIN:
                # A file first seen while the workspace follows another branch: main gets it as
                # the first version, and the branch is made from it, so both exist.
                self.prompts.create_branch(saved.prompt_id, self.branch, author=self.actor)
            if parsed.message:
                self._checkpoint(saved.prompt_id, saved.version, parsed.message)
            return saved, True
        self._restore(prompt_id)
        message = parsed.message if parsed.message and parsed.message != previous_message else None
        # A file sets the model config keys it carries; those it leaves out (a .prompt.md
        # without front matter, a .prompty without a model section) are kept, or the next
        # test of the prompt would find no model.
        saved = self.prompts.save(
            prompt_id, parsed.template, model_config=parsed.model_config, message=message,
            branch=self.branch, author=self.actor, source=source, keep_config=True,
        )
        if message and saved.created:
            self._checkpoint(prompt_id, saved.version, message)
        if parsed.description is not None:
            self._describe(prompt_id, parsed.description)
        return saved, False

    def import_file(self, path: str | os.PathLike, *, name: str, source: str) -> tuple[str, Any]:
        """(format, version): `promstack import` of one file, read by the watcher's parsers and
        versioned by its rules (`version`): a new prompt `name`, or a new version of the prompt
        of that name. The file is not tracked: a file under the watched folder is the watcher's."""
        path = Path(path)
        fmt, parsed = read_prompt_file(path, root=self.root if path.resolve().is_relative_to(self.root) else None)
        with write(self.db):
            row = self.db.execute("SELECT id FROM prompts WHERE name = ?", [name]).fetchone()
            saved, _ = self.version(name, parsed, row[0] if row else None, source)
        return fmt, saved

    def _adopt(self, item: _Read) -> tuple[int | None, str]:
        """The prompt a new path belongs to: a renamed file's, or an existing prompt of that name."""
        renamed = self._renamed_from(item)
        if renamed is not None:
            old_path, prompt_id = renamed
            current = self._name(prompt_id)
            taken = self.db.execute("SELECT id FROM prompts WHERE name = ? AND id != ?",
                                    [item.name, prompt_id]).fetchone()
            if not taken:
                if current != item.name:
                    self.prompts.rename_prompt(prompt_id, item.name, actor=self.actor)
                self.db.execute("DELETE FROM prompt_files WHERE path = ?", [old_path])
                log.info("%s: renamed from %s (prompt %s)", item.rel, old_path, item.name)
                return prompt_id, "renamed"
        row = self.db.execute("SELECT id FROM prompts WHERE name = ?", [item.name]).fetchone()
        if row is None:
            return None, "created"
        other = self._mapping("prompt_id = ?", [row[0]])
        if other and other["path"] != item.rel and self.absolute(other["path"]).exists():
            raise InvalidInput(
                f"prompt {item.name!r} is already kept in {other['path']}; "
                "keep one file per prompt (rename or remove one of them)"
            )
        return row[0], "saved"

    def _renamed_from(self, item: _Read) -> tuple[str, int] | None:
        if self._gone is None:
            # Tracked paths whose file is gone: the only candidates for a rename. Found once per
            # transaction, so a reconcile of many new files stays linear.
            rows = self.db.execute(
                "SELECT path, prompt_id, file_sha, content_sha FROM prompt_files "
                "ORDER BY missing_since IS NULL, synced_at DESC").fetchall()
            self._gone = [r for r in rows if not self.absolute(r[0]).exists()]
        if not self._gone:
            return None
        content_sha = None
        if item.parsed.model_config is not None:
            try:
                content_sha = content_hash(normalize(item.parsed.template), item.parsed.model_config)
            except InvalidInput:
                content_sha = None
        for i, (path, prompt_id, file_sha, old_content) in enumerate(self._gone):
            if path != item.rel and (file_sha == item.file_sha or (content_sha and old_content == content_sha)):
                del self._gone[i]
                return path, prompt_id
        return None

    def _stamp(self, rel: str) -> tuple[int, int] | None:
        try:
            st = self.absolute(rel).stat()
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def _name(self, prompt_id: int) -> str:
        return self.db.execute("SELECT name FROM prompts WHERE id = ?", [prompt_id]).fetchone()[0]

    def _restore(self, prompt_id: int) -> None:
        archived = self.db.execute("SELECT archived_at FROM prompts WHERE id = ?", [prompt_id]).fetchone()[0]
        if archived:
            self.prompts.restore_prompt(prompt_id, actor=self.actor)

    def _describe(self, prompt_id: int, description: str) -> None:
        current = self.db.execute("SELECT description FROM prompts WHERE id = ?", [prompt_id]).fetchone()[0]
        if current != description:
            self.db.execute("UPDATE prompts SET description = ? WHERE id = ?", [description, prompt_id])
            audit.record(self.db, self.actor, "describe_prompt", prompt_id=prompt_id,
                         detail={"name": self._name(prompt_id), "description": description})

    def _checkpoint(self, prompt_id: int, version: int, name: str) -> None:
        self.db.execute(
            "INSERT INTO checkpoints (prompt_id, version, name, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
            [prompt_id, version, name, self.actor, now()],
        )

    # ---- deletions --------------------------------------------------------------------

    def remove_many(self, paths: Iterable[Path]) -> list[SyncResult]:
        results = []
        paths = list(paths)
        if not paths:
            return results
        with write(self.db):
            for p in paths:
                results.append(self._remove(self.relative(p)))
        return results

    def _remove(self, rel: str) -> SyncResult:
        mapping = self._mapping("path = ?", [rel])
        if mapping is None or mapping["missing_since"] or self.absolute(rel).exists():
            return SyncResult(rel, "ignored")
        self.db.execute("UPDATE prompt_files SET missing_since = ? WHERE path = ?", [now(), rel])
        self._resolve_errors(rel)
        name = self._name(mapping["prompt_id"])
        archived = self.db.execute("SELECT archived_at FROM prompts WHERE id = ?", [mapping["prompt_id"]]).fetchone()[0]
        if not archived:
            self.prompts.delete_prompt(mapping["prompt_id"], actor=self.actor)
        log.info("%s: deleted; prompt %s archived (restore_prompt brings it back)", rel, name)
        return SyncResult(rel, "archived", name, mapping["version"])

    # ---- the reconcile pass -------------------------------------------------------------

    def reconcile(self) -> list[SyncResult]:
        """Version every file that changed while nobody watched; archive prompts whose file
        is gone. Unchanged files cost a hash and no write."""
        known = {path: sha for path, sha in self.db.execute(
            "SELECT path, file_sha FROM prompt_files WHERE missing_since IS NULL")}
        changed = []
        for path in self.files():
            rel = self.relative(path)
            if rel in known:
                try:
                    if sha256(path.read_bytes()) == known[rel]:
                        continue
                except OSError:
                    pass
            changed.append(path)
        prefix = self.relative(self.watch_dir)
        prefix = "" if prefix == "." else prefix + "/"
        gone = [self.absolute(rel) for rel in known
                if rel.startswith(prefix) and not self.absolute(rel).exists()]
        return self.sync_many([*changed, *gone])

    # ---- errors -----------------------------------------------------------------------

    def record_error(self, rel: str, error: str) -> None:
        log.warning("%s: not versioned: %s", rel, error)
        with write(self.db):
            same = self.db.execute(
                "SELECT 1 FROM watch_errors WHERE path = ? AND error = ? AND resolved_at IS NULL", [rel, error]
            ).fetchone()
            if not same:
                self.db.execute("INSERT INTO watch_errors (path, error, at) VALUES (?, ?, ?)", [rel, error, now()])

    def _resolve_errors(self, rel: str) -> None:
        self.db.execute("UPDATE watch_errors SET resolved_at = ? WHERE path = ? AND resolved_at IS NULL",
                        [now(), rel])


# ---- reading the file map (status, test data) -------------------------------------------

def tracked_files(db: Any) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT f.path, f.format, p.id, p.name, f.version, f.synced_at, f.missing_since, p.archived_at "
        "FROM prompt_files f JOIN prompts p ON p.id = f.prompt_id ORDER BY f.path"
    )
    cols = ["path", "format", "prompt_id", "prompt", "version", "synced_at", "missing_since", "archived_at"]
    return [dict(zip(cols, r, strict=True)) for r in cursor]


def open_errors(db: Any) -> list[dict[str, Any]]:
    cursor = db.execute("SELECT id, path, error, at FROM watch_errors WHERE resolved_at IS NULL ORDER BY id")
    return [dict(zip(["id", "path", "error", "at"], r, strict=True)) for r in cursor]


def prompt_test_data(store: Any, prompt: int | str) -> dict[str, Any] | None:
    """A prompt's test data from its .prompt.yml (`{"testData": [...], "evaluators": [...]}`), or None."""
    prompt_id = store.prompts.prompt_id(prompt)
    row = store.db.execute("SELECT test_data FROM prompt_files WHERE prompt_id = ?", [prompt_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else None




# ---- one-off reading, for `promstack import` ---------------------------------------------

def read_prompt_file(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> tuple[str, ParsedPrompt]:
    """(format, parsed prompt) of one file, read by the watcher's parsers; InvalidInput says why
    not. `root`: the workspace the file's references must stay in (Prompty's `${file:...}`)."""
    path = Path(path)
    fmt = formats.format_of(path.name)
    if fmt is None:
        known = ", ".join(s for s, _ in formats.SUFFIXES)
        raise InvalidInput(f"{path} is not a prompt file PromStack reads (suffixes: {known}, or an export .json)")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{path} is over the {MAX_FILE_BYTES:,}-byte limit for a prompt file")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise InvalidInput(f"{path} is a binary file, not prompt text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8") from None
    try:
        return fmt, formats.parse(fmt, text, path=path, root=root)
    except FormatError as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def import_name(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """A file's prompt name: its path under `base` without the suffix, else its own name."""
    path, base = Path(path).resolve(), Path(base).resolve()
    try:
        relative = path.relative_to(base).as_posix()
    except ValueError:
        relative = path.name
    return formats.name_for(relative)


# ---- the files of a folder against the heads of another store (`promstack status` over a server) --

def compare_folder(folder: str | os.PathLike, head: Any) -> dict[str, list[dict[str, Any]]]:
    """Every prompt file under `folder` held up against its prompt's main head, as `head(name)`
    returns it (a PromptVersion, or None when no prompt has that name): `files`, each with
    `state` "same", "changed" (saving the file would make a version) or "new" (no such prompt);
    `errors`, the files that cannot be read, each with the sentence why."""
    base = Path(folder)
    files: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for path in sorted(p for p in base.rglob("*") if p.is_file() and formats.format_of(p.name) is not None):
        shown = path.relative_to(base.parent).as_posix() if base.parent != base else path.as_posix()
        try:
            fmt, parsed = read_prompt_file(path)
        except InvalidInput as exc:
            errors.append({"path": shown, "error": str(exc)})
            continue
        name = import_name(path, base)
        found = head(name)
        entry = {"path": shown, "format": fmt, "prompt": name, "prompt_id": None, "version": None, "state": "new"}
        if found is not None:
            # The file's model config keys over the head's others, as saving the file would make it.
            config = {**found.model_config, **(parsed.model_config or {})}
            same = content_hash(normalize(parsed.template), config) == found.sha256
            entry.update(prompt_id=found.prompt_id, version=found.version, state="same" if same else "changed")
        files.append(entry)
    return {"files": files, "errors": errors}
