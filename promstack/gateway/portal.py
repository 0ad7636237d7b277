"""The sync bridge: one long-lived event loop on a daemon thread where every gateway call runs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any


class Portal:
    """One long-lived event loop on a daemon thread where every gateway call runs, sync or
    async: the HTTP pool, the Redis client and the cache live on one loop for the life of the
    process, whatever loops (or `asyncio.run`s) the callers come from."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="promstack-gateway", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_portal: Portal | None = None
_portal_lock = threading.Lock()


def portal() -> Portal:
    global _portal
    if _portal is None:
        with _portal_lock:
            if _portal is None:
                _portal = Portal()
    return _portal


def running() -> Portal | None:
    """The portal if one was started (closing at exit must not start one)."""
    return _portal


def run_sync(coro: Awaitable[Any]) -> Any:
    here = portal()
    if threading.current_thread() is here.thread:
        coro.close()
        raise RuntimeError("a sync gateway call from inside the gateway's own loop; await arun/acomplete")
    return here.run(coro)


async def on_portal(coro: Awaitable[Any]) -> Any:
    """Await `coro` on the gateway's loop from any loop (cancellation carries across)."""
    here = portal()
    if asyncio.get_running_loop() is here.loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, here.loop))
