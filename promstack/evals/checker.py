"""Who checks saves, and when: checkers claim pending checks with a lease (so two servers, or a
watcher and a server, check a version once), check only the newest save of a burst, and run on
a thread of a long-lived process (`promstack serve`, the watcher, the MCP server, an SDK client)
or in a detached `promstack check --pending` that a one-shot CLI save starts. What one check
does and how it is worded is `check`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store import checks as rows
from store.errors import PromStackError

from .check import ACTOR, DEFAULTS, OFF_REASON, VersionCheck, check_now, is_enabled, settings

if TYPE_CHECKING:
    from ..client import Client

log = logging.getLogger("promstack.check")
log.addHandler(logging.NullHandler())

POLL_S = 0.5  # how often a checker looks for saves made by other processes
IDLE_EXIT_S = 5.0  # a checker a save started (not a server's) stops after this long with nothing to do


# ---- claiming: leases and bursts ---------------------------------------------------------


def _at(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def run_round(client: Client, holder: str, *, on_done: Callable[[str, int, VersionCheck], None] | None = None
              ) -> tuple[list[VersionCheck], float | None]:
    """Check what is pending now. Per prompt and branch only the newest pending save is checked
    (older ones are closed as not checked); a save made within the debounce of the version
    before it waits for the burst to go quiet. Returns the checks made and the seconds until a
    waiting save is ready (None: nothing waits). `on_done(prompt name, version, check)` is
    called as each finishes."""
    db = client.store.db
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows.open_rows(db):
        groups.setdefault((row["prompt_id"], row["branch"]), []).append(row)
    done: list[VersionCheck] = []
    wait: float | None = None
    for (prompt_id, _branch), group in groups.items():
        newest = group[-1]
        for older in group[:-1]:
            if older["status"] == rows.PENDING:
                rows.supersede(db, prompt_id, older["version"], {
                    "reason": f"v{newest['version']} was saved soon after, and only the newest save is checked",
                    "superseded_by": newest["version"]})
        name = client.store.prompts.prompt_row(prompt_id, archived_ok=True)["name"]
        try:
            cfg = settings(client, name)
        except PromStackError:
            cfg = {**DEFAULTS, "debounce_s": 0}  # a bad setting is said on the version at once
        made, before = _at(newest["created_at"]), _at(newest["previous_at"])
        debounce = float(cfg["debounce_s"])
        in_burst = before is not None and made is not None and made - before < debounce
        left = (made + debounce - time.time()) if in_burst and made is not None else 0.0
        if left > 0:
            wait = left if wait is None else min(wait, left)
            continue
        if not rows.claim(db, prompt_id, newest["version"], holder, float(cfg["lease_s"])):
            continue
        check = check_now(client, prompt_id, newest["version"], holder)
        if check is not None:
            done.append(check)
            if on_done is not None:
                on_done(name, newest["version"], check)
    return done, wait


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Checker:
    """Runs `run_round` on a daemon thread whenever a save is made (`nudge`) or every POLL_S
    (saves by other processes). `open_client()` makes the thread's own Client (its own
    connection). `keep_running`: a server's checker; otherwise it stops after IDLE_EXIT_S idle
    and the next save starts it again."""

    def __init__(self, open_client: Callable[[], Client], *, keep_running: bool = False,
                 on_done: Callable[[str, int, VersionCheck], None] | None = None, poll_s: float = POLL_S) -> None:
        self.open_client = open_client
        self.keep_running = keep_running
        self.on_done = on_done
        self.poll_s = poll_s
        self.holder = new_holder()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Checker:
        with self._lock:
            if not self.running:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="promstack-check", daemon=True)
                self._thread.start()
        return self

    def nudge(self) -> None:
        self._wake.set()
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            client = self.open_client()
        except Exception:
            log.exception("the checker could not open the store")
            return
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    done, wait = run_round(client, self.holder, on_done=self.on_done)
                except Exception:  # a locked store, a bad config: look again shortly
                    log.exception("checking new versions failed")
                    done, wait = [], None
                if done or wait is not None:
                    idle_since = time.monotonic()
                elif not self.keep_running and time.monotonic() - idle_since > IDLE_EXIT_S:
                    with self._lock:
                        if not self._wake.is_set():
                            self._thread = None
                            return
                self._wake.wait(min(wait, self.poll_s) if wait is not None else self.poll_s)
        finally:
            client.close()


_checkers: dict[Path, Checker] = {}
_registry_lock = threading.Lock()


def checker_for(path: str | os.PathLike, open_client: Callable[[], Client], **options: Any) -> Checker:
    """This process's checker of the store at `path` (one per store, however many clients)."""
    key = Path(path).resolve()
    with _registry_lock:
        found = _checkers.get(key)
        if found is None:
            found = _checkers[key] = Checker(open_client, **options)
        elif options.get("keep_running"):
            found.keep_running = True
            if options.get("on_done") is not None:
                found.on_done = options["on_done"]
    return found


def start_checker(client: Client, *, on_done: Callable[[str, int, VersionCheck], None] | None = None
                  ) -> Checker | None:
    """A long-lived process's checker (`promstack serve`, the watcher, the MCP server) of
    `client`'s store, started; None over a team server (it checks its own saves)."""
    path = client.store.path if not client.remote else None
    if path is None:
        return None
    cls = type(client)
    return checker_for(path, lambda: cls(path, actor=ACTOR), keep_running=True, on_done=on_done).start()


# ---- after a save ------------------------------------------------------------------------

THREAD, PROCESS, NONE = "thread", "process", "none"


def after_save(client: Client, prompt_id: int, version: int, mode: str) -> None:
    """A version was just saved: have its check run in the background (`mode`: THREAD, a
    daemon thread of this process; PROCESS, a detached `promstack check --pending`, for a
    process about to exit; NONE: a checker elsewhere picks it up). Never raises."""
    path = client.store.path
    try:
        found = rows.read(client.store.db, prompt_id, [version]).get(version)
        if found is None or found["status"] != rows.PENDING:
            return
        name = client.store.prompts.prompt_row(prompt_id)["name"]
        if not is_enabled(client, name):  # off: said at once, no checker started
            rows.finish(client.store.db, prompt_id, version, "off", {"reason": OFF_REASON})
            return
        if mode == NONE or path is None:
            return
        if mode == PROCESS:
            spawn_pending(path)
            return
        cls, actor = type(client), ACTOR
        checker_for(path, lambda: cls(path, actor=actor)).nudge()
    except Exception:  # saving never fails because of its check
        log.exception("starting the check of prompt %s v%s failed", prompt_id, version)


def spawn_pending(path: str | os.PathLike) -> subprocess.Popen:
    """A detached `promstack check --pending` over the store at `path`: the save returns at once."""
    env = {**os.environ, "PROMSTACK_DB": str(path)}
    env.pop("PROMSTACK_URL", None)
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from promstack.cli import main; sys.argv[0] = 'promstack'; main()",
         "check", "--pending"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )


@contextlib.contextmanager
def only_checker(path: str | os.PathLike) -> Iterator[bool]:
    """Whether this process is the one `check --pending` process of the store at `path` (a
    file lock beside it): a burst of CLI saves starts many, and one does the work."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(Path(path).with_name("check.lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def drain(client: Client, *, holder: str | None = None,
          on_done: Callable[[str, int, VersionCheck], None] | None = None) -> list[VersionCheck]:
    """Check everything pending, waiting out bursts, until nothing is left (`check --pending`)."""
    holder = holder or new_holder()
    made: list[VersionCheck] = []
    while True:
        done, wait = run_round(client, holder, on_done=on_done)
        made += done
        if wait is None:
            if done:
                continue
            return made
        time.sleep(min(wait, POLL_S))


def pending_left(client: Client) -> bool:
    return bool(rows.open_rows(client.store.db))


def announce_mark(client: Client) -> tuple[int, str | None]:
    """What moves when a check finishes (for faces that tell their clients about changes)."""
    return rows.finished_mark(client.store.db)
