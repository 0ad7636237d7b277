"""Prompts that never fail to load: what a remote client's `get_prompt` reads by label or
version, kept in the process, refreshed in the background, and copied to disk.

    client.get_prompt("support/refund", label="production", user_id="u-7", fallback="Help {{name}}.")
    -> a ServedPrompt (a PromptVersion) whose `served_from` says where it came from:
       "fresh"    fetched less than `ttl` seconds ago
       "stale"    older; one background refresh is under way or the server is away
       "disk"     the last good copy this machine kept (the server was away when the process started)
       "fallback" the text the caller gave (never fetched, nothing on disk, the server away)

A label's state is cached, not one user's answer: its version, the active A/B test or rollout
(arms, share, the salt users are hashed with) and every version it may serve (GET
.../-/serving). A user's arm is picked here with the engine's own `pick`, so a new user costs no
request and lands where the server would put them. A version read is immutable: never refreshed.

A cached read is a dict lookup and a clock read: no lock, no copy (the served records are made
once per refresh). Past its TTL the copy is served as it is while ONE thread refreshes it; a
server that is away is tried again every `retry` seconds, and its errors never reach the caller
while a copy exists. Each change of state (stale because the server is away, disk, fallback,
fresh again) is logged once per prompt, not per call. Disk copies hold the server's answer only
(no URL, no token), written atomically with mode 0600.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any

from store.errors import InvalidInput, PromStackError
from store.models import PromptVersion

log = logging.getLogger("promstack.prompt_cache")

DEFAULT_TTL = 30.0
RETRY = 5.0  # seconds between refresh attempts while the server is away
FOREVER = float("inf")
ARMS_KEPT = 100_000  # users whose arm one label's copy remembers


class Outage(Exception):
    """The server did not answer (unreachable, timed out, 5xx, 429): a copy is served instead."""


@dataclass
class ServedPrompt(PromptVersion):
    """A PromptVersion with where it was served from: fresh, stale, disk or fallback."""

    served_from: str = "fresh"


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where last-good copies live: `path`, else PROMSTACK_CACHE_DIR, else the user's cache
    directory (`~/.cache/promstack` on Linux)."""
    if path is not None:
        return Path(path)
    if os.environ.get("PROMSTACK_CACHE_DIR"):
        return Path(os.environ["PROMSTACK_CACHE_DIR"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("promstack"))


def ttl_setting(ttl: float | None = None) -> float:
    """The cache's TTL in seconds: `ttl`, else PROMSTACK_CACHE_TTL, else 30."""
    if ttl is None:
        text = os.environ.get("PROMSTACK_CACHE_TTL", "").strip()
        try:
            ttl = float(text) if text else DEFAULT_TTL
        except ValueError:
            raise InvalidInput(f"PROMSTACK_CACHE_TTL is seconds, e.g. 30; got {text!r}") from None
    if ttl < 0:
        raise InvalidInput(f"the prompt cache's TTL is seconds (0 or more); got {ttl!r}")
    return float(ttl)


class Entry:
    """One cached read: the label's state and the records served from it, made once."""

    __slots__ = ("arms", "expires", "key", "label_version", "one", "origin", "pick", "refreshing",
                 "retry_at", "saved_at", "served", "split")

    def __init__(self, key: tuple[Any, ...], state: dict[str, Any], versions: dict[int, PromptVersion],
                 *, origin: str, expires: float, saved_at: str) -> None:
        self.key, self.origin, self.expires, self.saved_at = key, origin, expires, saved_at
        self.label_version: int | None = state.get("version")
        self.split: dict[str, Any] | None = state.get("split")
        self.refreshing = False
        self.arms: dict[str | None, int] = {}
        self.retry_at = 0.0
        old = "stale" if origin == "server" else origin
        self.served = {kind: {n: served(v, kind) for n, v in versions.items()} for kind in {"fresh", old}}
        self.pick: Callable[..., tuple[int | None, str | None]] | None = None
        if self.split is not None:
            from promstack.deploy.resolver import pick  # the engine's arm choice, not a copy of it

            self.pick = pick
        # The record for every user when no split decides: the hot path returns it as it is.
        self.one = self.served["fresh"].get(self.label_version) if self.split is None else None

    def for_user(self, user_id: str | None, kind: str) -> PromptVersion:
        if self.pick is None:
            return self.served[kind][self.label_version]
        number = self.arms.get(user_id)
        if number is None:
            number = self.pick(self.label_version, self.split, user_id)[0]
            if len(self.arms) < ARMS_KEPT:  # a user's arm is a hash: kept, not hashed on every read
                self.arms[user_id] = number
        return self.served[kind][number]

    @property
    def old_kind(self) -> str:
        return "stale" if self.origin == "server" else self.origin


def served(version: PromptVersion, kind: str) -> ServedPrompt:
    return ServedPrompt(**{f.name: getattr(version, f.name) for f in fields(version)}, served_from=kind)


class PromptCache:
    """The cache behind a remote client's label and version reads; see the module's docstring.

    `fetch(prompt, label, version)` asks the server: a label's state (as GET .../-/serving
    answers) or one version, raising `Outage` when the server is away and the server's own
    error (NotFound, Forbidden, ...) when it answers one. `make_version` turns the server's JSON
    into a PromptVersion. `directory=False` keeps nothing on disk; `scope` (the server's URL)
    keeps two servers' copies apart without being written into them."""

    def __init__(self, fetch: Callable[[Any, str | None, int | None], dict[str, Any]],
                 make_version: Callable[[dict[str, Any]], PromptVersion], *, scope: str,
                 ttl: float | None = None, directory: str | os.PathLike | None | bool = None,
                 retry: float = RETRY, unreachable: type[PromStackError] = PromStackError) -> None:
        self.fetch, self.make_version, self.scope = fetch, make_version, scope
        self.ttl = ttl_setting(ttl)
        self.retry = retry
        self.unreachable = unreachable
        self.directory = None if directory is False else cache_dir(None if directory is True else directory)
        self.entries: dict[tuple[Any, ...], Entry] = {}
        self._lock = threading.Lock()  # only to start one refresh per entry; never on a cached read
        self._written: dict[tuple[Any, ...], str] = {}
        self._logged: dict[tuple[Any, ...], str] = {}

    # ---- the read ------------------------------------------------------------------------------

    def get(self, prompt: Any, label: str | None, version: int | None, user_id: str | None = None,
            fallback: Any = None) -> PromptVersion:
        entry = self.entries.get((prompt, label, version))
        if entry is not None:
            if monotonic() < entry.expires:
                return entry.one or entry.for_user(user_id, "fresh")
            if self.ttl:
                return self._old(entry, user_id)
            # ttl 0: every read asks the server; the copy still covers it being away
        return self._first(prompt, label, version, user_id, fallback)

    def _old(self, entry: Entry, user_id: str | None) -> PromptVersion:
        if not entry.refreshing and monotonic() >= entry.retry_at:
            with self._lock:
                start = not entry.refreshing
                entry.refreshing = True
            if start:
                threading.Thread(target=self._refresh, args=(entry,), name="promstack-prompt-refresh",
                                 daemon=True).start()
        return entry.for_user(user_id, entry.old_kind)

    def _first(self, prompt: Any, label: str | None, version: int | None, user_id: str | None,
               fallback: Any) -> PromptVersion:
        key = (prompt, label, version)
        try:
            entry = self._load(key)
        except Outage as exc:
            entry = self.entries.get(key) or self._from_disk(key) or self._fallback(key, fallback)
            if entry is None:
                raise self.unreachable(f"{exc}; prompt {describe(key)} was never read on this machine and no copy "
                                       "of it is kept on disk (an app can give a fallback template)") from None
            entry.retry_at = monotonic() + self.retry
            self.entries[key] = entry
            self._note(key, entry.old_kind, str(exc), entry.saved_at)
            return entry.for_user(user_id, entry.old_kind)
        self.entries[key] = entry
        self._note(key, "fresh")
        return entry.for_user(user_id, "fresh")

    # ---- the server ----------------------------------------------------------------------------

    def _load(self, key: tuple[Any, ...]) -> Entry:
        prompt, label, version = key
        data = self.fetch(prompt, label, version)
        state = data if label is not None else {"version": data["version"], "split": None, "versions": [data]}
        entry = self._entry(key, state, origin="server")
        self._save(key, state)
        return entry

    def _entry(self, key: tuple[Any, ...], state: dict[str, Any], *, origin: str,
               saved_at: str | None = None) -> Entry:
        versions = {v["version"]: self.make_version(v) for v in state["versions"]}
        now = monotonic()
        # a version never changes: it is fresh for good; a label's state for `ttl`
        expires = FOREVER if key[2] is not None else now + self.ttl
        return Entry(key, state, versions, origin=origin, expires=expires if origin == "server" and self.ttl else now,
                     saved_at=saved_at or datetime.now(UTC).isoformat(timespec="seconds"))

    def _refresh(self, entry: Entry) -> None:
        key = entry.key
        try:
            fresh = self._load(key)
        except Outage as exc:
            entry.retry_at = monotonic() + self.retry
            entry.refreshing = False
            self._note(key, entry.old_kind, str(exc), entry.saved_at)
            return
        except PromStackError as exc:
            # The server answered, and its answer is an error (the label was removed, the prompt
            # archived, the token revoked): forget the copy, so the next read asks and raises it.
            log.warning("prompt %s: the server answered %s; its cached copy is dropped", describe(key), exc)
            self.entries.pop(key, None)
            self._logged.pop(key, None)
            return
        except Exception:
            log.exception("prompt %s: refreshing it failed; the cached copy is served meanwhile", describe(key))
            entry.retry_at = monotonic() + self.retry
            entry.refreshing = False
            return
        if fresh.split == entry.split and fresh.label_version == entry.label_version:
            fresh.arms = entry.arms  # the same split: each user's arm is the same
        self.entries[key] = fresh
        self._note(key, "fresh")

    def forget(self) -> None:
        """Drop every copy held in memory (this client moved a label: read it again). Disk copies stay."""
        self.entries.clear()

    # ---- what is logged --------------------------------------------------------------------------

    def _note(self, key: tuple[Any, ...], state: str, reason: str = "", since: str = "") -> None:
        before = self._logged.get(key)
        self._logged[key] = state
        if before == state or (before is None and state == "fresh"):
            return
        what = describe(key)
        if state == "fresh":
            log.warning("prompt %s: the server answers again; serving fresh copies", what)
        elif state == "stale":
            log.warning("prompt %s: %s; serving the copy fetched at %s until it answers", what, reason, since)
        elif state == "disk":
            log.warning("prompt %s: %s; serving the copy kept on disk since %s", what, reason, since)
        else:
            log.warning("prompt %s: %s, and it was never fetched here; serving the fallback given", what, reason)

    # ---- the disk copy ---------------------------------------------------------------------------

    def _path(self, key: tuple[Any, ...]) -> Path | None:
        if self.directory is None:
            return None
        name = hashlib.sha256(json.dumps([self.scope, *key], default=str).encode()).hexdigest()[:40]
        return self.directory / f"{name}.json"

    def _save(self, key: tuple[Any, ...], state: dict[str, Any]) -> None:
        path = self._path(key)
        if path is None:
            return
        text = json.dumps({"prompt": key[0], "label": key[1], "version": key[2], "state": state},
                          ensure_ascii=False, sort_keys=True)
        if self._written.get(key) == text:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # written beside it, then renamed over it: a reader sees the old copy or the new one
            with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".tmp-", suffix=".json",
                                             delete=False, encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)
                out.write(text)
            os.replace(out.name, path)
        except OSError as exc:
            log.warning("prompt %s: could not keep a copy on disk at %s: %s", describe(key), path, exc)
            return
        self._written[key] = text

    def _from_disk(self, key: tuple[Any, ...]) -> Entry | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            saved_at = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
            return self._entry(key, data["state"], origin="disk", saved_at=saved_at)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("prompt %s: the copy on disk at %s is unreadable (%s); ignored", describe(key), path, exc)
            return None

    def _fallback(self, key: tuple[Any, ...], fallback: Any) -> Entry | None:
        if fallback is None:
            return None
        prompt, label, version = key
        record = {"prompt_id": prompt if isinstance(prompt, int) else 0,
                  "name": prompt if isinstance(prompt, str) else str(prompt), "version": version or 0,
                  "branch": "main", "kind": "text" if isinstance(fallback, str) else "chat",
                  "template": fallback, "model_config": {}, "variables": [],
                  "sha256": hashlib.sha256(json.dumps(fallback).encode()).hexdigest(), "parent": None,
                  "merge_parent": None, "message": "fallback", "author": "", "source": "fallback",
                  "created_at": "", "created": False}
        state = {"version": record["version"], "split": None, "versions": [record]}
        return self._entry(key, state, origin="fallback")


def describe(key: tuple[Any, ...]) -> str:
    prompt, label, version = key
    return f"{prompt!r} ({f'label {label!r}' if label is not None else f'version {version}'})"
