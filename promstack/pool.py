"""`ClientPool`: the `Client`s a server's faces share over one store.

    pool = ClientPool(db)                        # None: PROMSTACK_DB, else the workspace's store
    with pool.client("api") as client:           # a client no other thread holds, acting as "api"
        client.list_prompts()
    pool.call(fn, *args, actor=None)             # fn(client, *args) with a borrowed client
    pool.close()

`promstack serve` makes one and hands it to the dashboard, the REST API and MCP over HTTP;
`promstack mcp` on stdio makes its own. A SQLite connection is never used by two threads at
once, so each borrower gets a client of its own: the pool keeps the idle ones per acting person
(every write is attributed to whoever a client acts for) and grows to the peak number of
concurrent borrowers, no further. Clients open on first use, so a server that has answered no
request has not touched the store (nor imported it: this module needs only the standard library
until then).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from promstack.client import Client

T = TypeVar("T")


class ClientPool:
    def __init__(self, db: str | os.PathLike | None = None) -> None:
        self._db = Path(db) if db is not None else None
        # No store named and PROMSTACK_URL set: the clients are a team server's (`promstack mcp`
        # on a laptop serves the team's store); the server's token decides who acts.
        self.url: str | None = None
        if db is None:
            from promstack.remote import server_url

            self.url = server_url()
        self._idle: dict[str | None, list[Client]] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def db(self) -> Path:
        """The store's file; found (PROMSTACK_DB, else the workspace's) on first use."""
        if self._db is None:
            from store.workspace import require_db

            self._db = Path(require_db())
        return self._db

    def acquire(self, actor: str | None = None) -> Client:
        """A client acting for `actor` (None: the store's default actor) that no one else holds;
        give it back with `release`."""
        with self._lock:
            idle = self._idle.get(actor)
            if idle:
                return idle.pop()
        from promstack.client import Client

        if self.url is not None:
            return Client(url=self.url)
        return Client(self.db, actor=actor)

    def release(self, client: Client, actor: str | None = None) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(actor, []).append(client)
                return
        client.close()  # the pool closed while it was out

    @contextlib.contextmanager
    def client(self, actor: str | None = None) -> Iterator[Client]:
        found = self.acquire(actor)
        try:
            yield found
        finally:
            self.release(found, actor)

    def call(self, fn: Callable[..., T], *args: Any, actor: str | None = None, **kwargs: Any) -> T:
        """`fn(client, *args, **kwargs)` with a borrowed client (for a worker thread)."""
        with self.client(actor) as found:
            return fn(found, *args, **kwargs)

    def close(self) -> None:
        """Close the idle clients; one still borrowed closes when it comes back."""
        with self._lock:
            self._closed = True
            idle = [c for clients in self._idle.values() for c in clients]
            self._idle.clear()
        for found in idle:
            with contextlib.suppress(Exception):
                found.close()
