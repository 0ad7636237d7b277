"""The file watcher: every save of a prompt file becomes a version, without anyone running a command.

A watchdog observer reports file events; each path waits for a quiet spell (the debounce, per
file) so that an editor's several writes per save, or its write-to-temp-then-rename, become
one sync. A worker thread then versions the files that are due through `FileSync` (which
decides everything inside one write transaction). On start, a reconcile pass versions what
changed while nobody watched; the observer starts first, so a save during the pass is queued,
not lost.

    with Watcher(db_path, "prompts") as w:   # reconciles, then watches
        ...
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import Store
from .filesync import FileSync, SyncResult
from .workspace import workspace_root

log = logging.getLogger("promstack.watch")

DEBOUNCE_S = 0.1
# A file that fails to parse right after a write may be half-written: look once more before
# recording the error.
ERROR_RECHECK_S = 0.3
MAX_RETRIES = 50


class Watcher:
    """Watch `watch_dir` (default `prompts/` of the workspace) and version every save into the
    store at `db_path`. It opens its own connection, so it can run beside a server's."""

    def __init__(
        self,
        db_path: str | os.PathLike,
        watch_dir: str | os.PathLike = "prompts",
        *,
        root: str | os.PathLike | None = None,
        debounce: float = DEBOUNCE_S,
        branch: str | None = None,
        actor: str | None = None,
        on_result: Callable[[SyncResult], Any] | None = None,
    ) -> None:
        self.store = Store(db_path, actor=actor)
        root = Path(root) if root is not None else workspace_root(Path(db_path))
        watch = Path(watch_dir)
        if not watch.is_absolute():
            watch = (Path.cwd() / watch) if (Path.cwd() / watch).resolve().is_relative_to(root.resolve()) \
                else root / watch
        try:
            self.sync = FileSync(self.store, watch, root=root, branch=branch)
        except BaseException:
            self.store.close()
            raise
        self.debounce = debounce
        self.on_result = on_result
        self._pending: dict[str, float] = {}
        self._attempts: dict[str, int] = {}
        self._cond = threading.Condition()
        self._db_lock = threading.Lock()
        self._stopping = False
        self._busy = False
        self._observer: Any = None
        self._thread: threading.Thread | None = None

    @property
    def watch_dir(self) -> Path:
        return self.sync.watch_dir

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, *, reconcile: bool = True) -> list[SyncResult]:
        self.watch_dir.mkdir(parents=True, exist_ok=True)
        self._observer = Observer()
        self._observer.schedule(_Handler(self), str(self.watch_dir), recursive=True)
        self._observer.start()
        self._thread = threading.Thread(target=self._run, name="promstack-watch", daemon=True)
        self._thread.start()
        if not reconcile:
            return []
        return self.reconcile()

    def reconcile(self) -> list[SyncResult]:
        with self._db_lock:
            results = self.sync.reconcile()
        self._report(results)
        return results

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def idle(self) -> bool:
        """True when no file waits to be synced (tests and benchmarks poll this)."""
        with self._cond:
            return not self._pending and not self._busy

    # ---- events -> the queue ----------------------------------------------------------

    def enqueue(self, path: str, delay: float | None = None) -> None:
        due = time.monotonic() + (self.debounce if delay is None else delay)
        with self._cond:
            # Each event pushes the file's deadline back: the sync happens once it is quiet.
            self._pending[os.path.normpath(path)] = due
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._pending:
                        wait = min(self._pending.values()) - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                now = time.monotonic()
                due = [p for p, t in self._pending.items() if t <= now]
                for p in due:
                    del self._pending[p]
                self._busy = True
            try:
                self._process(due)
            except Exception:  # the watcher must outlive one bad batch; say what happened
                log.exception("the watcher could not process %s", ", ".join(due))
            finally:
                with self._cond:
                    self._busy = False

    def _process(self, paths: list[str]) -> None:
        with self._db_lock:
            files: list[str] = []
            for p in paths:
                files.extend(self._expand(p))
            if not files:
                return
            results = self.sync.sync_many(files, record_errors=False)
            final = []
            for r in results:
                path = str(self.sync.absolute(r.path))
                tries = self._attempts.get(path, 0)
                if r.action == "retry" and tries < MAX_RETRIES:
                    self._attempts[path] = tries + 1
                    self.enqueue(path, self.debounce)
                    continue
                if r.action == "error" and tries == 0:
                    self._attempts[path] = 1
                    self.enqueue(path, ERROR_RECHECK_S)
                    continue
                self._attempts.pop(path, None)
                if r.action == "error":
                    self.sync.record_error(r.path, r.error or "unknown error")
                final.append(r)
        self._report(final)

    def _expand(self, path: str) -> list[str]:
        """The files a queued path stands for: itself; or, for a folder moved, created or
        deleted at once, the prompt files in it and the tracked paths that were under it."""
        rel = self.sync.relative(path)
        tracked = [r[0] for r in self.store.db.execute(
            "SELECT path FROM prompt_files WHERE (path = ? OR path LIKE ?) AND missing_since IS NULL",
            [rel, rel + "/%"])]
        if os.path.isdir(path):
            prefix = path.rstrip(os.sep) + os.sep
            inside = [str(f) for f in self.sync.files() if str(f).startswith(prefix)]
            return inside + [str(self.sync.absolute(t)) for t in tracked]
        if os.path.exists(path):
            return [] if self.sync.ignored(path) else [path]
        return [str(self.sync.absolute(t)) for t in tracked]

    def _report(self, results: list[SyncResult]) -> None:
        for r in results:
            if r.action in ("created", "saved", "renamed", "archived"):
                log.info("%s: %s %s v%s", r.path, r.action, r.prompt, r.version)
            if self.on_result is not None and r.action not in ("ignored", "retry"):
                try:
                    self.on_result(r)
                except Exception:
                    log.exception("on_result failed for %s", r.path)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path]
        if getattr(event, "dest_path", ""):
            paths.append(event.dest_path)
        for raw in paths:
            path = os.fsdecode(raw)
            if event.is_directory:
                if event.event_type in ("moved", "deleted", "created"):
                    name = os.path.basename(path)
                    if not name.startswith("."):
                        self.watcher.enqueue(path)
                continue
            # Temp and swap files are dropped here; a tracked file's path always goes through
            # (a rename to a backup name, vim's way, leaves the tracked path missing).
            if not self.watcher.sync.ignored(path) or event.event_type in ("moved", "deleted"):
                self.watcher.enqueue(path)


def start_watcher(db_path: str | os.PathLike, watch_dir: str | os.PathLike = "prompts", **kwargs: Any) -> Watcher:
    """A started watcher (reconciled, then watching) for servers to run beside their work;
    call `.stop()` on shutdown."""
    watcher = Watcher(db_path, watch_dir, **kwargs)
    watcher.start()
    return watcher
