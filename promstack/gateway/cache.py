"""The gateway's cache, ours for both routes: disk under `.promstack/cache` (diskcache), or Redis
at PROMSTACK_REDIS_URL. litellm's cache would need litellm imported on the lean route, and 1.110
dropped its disk backend. Redis is an optional extra (`pip install 'promstack[redis]'`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput
from store.workspace import DIRNAME

from .. import guard

if TYPE_CHECKING:
    from .routing import Route

CACHE_DEFAULTS: dict[str, Any] = {"enabled": True, "ttl": 3600, "backend": None, "dir": None}


def cache_key(route: Route, messages: list[dict[str, Any]], params: dict[str, Any],
              extra: str | None = None) -> str:
    """The guide's hash(prompt + input): the rendered messages, the model and its parameters.
    `extra` separates requests that are identical on purpose (an eval's repeat index)."""
    parts: list[Any] = [route.provider, route.upstream, route.api_base, messages, params]
    if extra:
        parts.append(extra)
    body = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return "promstack:llm:" + hashlib.sha256(body.encode()).hexdigest()


class DiskCache:
    """diskcache (SQLite files under `.promstack/cache`), shared by every process of a workspace."""

    def __init__(self, folder: Path) -> None:
        import diskcache

        self.cache = diskcache.Cache(str(folder), size_limit=2**30)

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(key)

    async def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        self.cache.set(key, value, expire=ttl)

    def close(self) -> None:
        self.cache.close()


class RedisCache:
    """Redis at PROMSTACK_REDIS_URL, as the guide writes it: get, then set with `ex` = TTL.
    One asyncio client per event loop (a client is bound to the loop it connects on)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self) -> Any:  # a redis.asyncio.Redis
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            redis = import_redis()
            client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._clients[loop] = client
        return client

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._client().get(key)
        return json.loads(raw) if raw else None

    async def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        await self._client().set(key, json.dumps(value, ensure_ascii=False), ex=max(1, int(ttl)))

    def close(self) -> None:
        self._clients = weakref.WeakKeyDictionary()


def import_redis() -> Any:  # the redis.asyncio module
    """redis.asyncio, or a sentence naming the extra that installs it."""
    try:
        import redis.asyncio as redis
    except ImportError:
        raise InvalidInput(
            "PROMSTACK_REDIS_URL (or [cache] backend = \"redis\") needs the redis client: "
            "pip install 'promstack[redis]'"
        ) from None
    return redis


def open_cache(settings: dict[str, Any], root: Path | None) -> DiskCache | RedisCache | None:
    """The backend [cache] and PROMSTACK_REDIS_URL choose; None when there is nowhere to cache."""
    url = os.environ.get("PROMSTACK_REDIS_URL")
    backend = settings.get("backend") or ("redis" if url else "disk")
    if backend == "redis":
        url = url or settings.get("redis_url")
        if not url:
            raise InvalidInput("[cache] backend = \"redis\" needs PROMSTACK_REDIS_URL or [cache] redis_url")
        import_redis()  # missing: said now, at the first call, not as a cache error on each one
        return RedisCache(url)
    if backend == "disk":
        folder = settings.get("dir") or (root / DIRNAME / "cache" if root is not None else None)
        return DiskCache(Path(folder)) if folder else None
    if backend not in ("off", "none"):
        raise InvalidInput(f"[cache] backend {backend!r} is not one of disk, redis, off")
    return None


def output_rule(settings: dict[str, Any]) -> str:
    """The output filter's settings as one string: a cache entry holding a filtered reply is
    served only under the rule that filtered it."""
    return json.dumps([settings.get("output", "filter"),
                       sorted(settings.get("output_sensitive") or guard.OUTPUT_SENSITIVE)])
