"""The label resolver: (prompt, label, user id) -> the version that user is served.

`Resolver` is the one place that turns a label into a version: the label itself, or the A/B
arm or rollout share the user falls in (promstack.deploy.abtest, promstack.deploy.rollout; who
falls where is `bucket`, a hash). The SDK (`Client.get_prompt(..., label=, user_id=)`) and the
REST API use it, with a short TTL cache; refreshing a label that has a rollout checks the
rollout's alerts (promstack.deploy.splits.auto_check), so a bad version is pulled in a serving
process without anyone watching.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from store import deploy as rows
from store.errors import InvalidInput

from .environments import deploy_settings, label_version
from .splits import auto_check

if TYPE_CHECKING:
    from store.models import PromptVersion

    from ..client import Client

DEFAULT_CACHE_TTL = 5.0
ROLLOUT_CHECK_EVERY = 5.0


def bucket(salt: str, user_id: str) -> float:
    """Where a user falls in [0, 100): a hash, so the same user lands in the same place every
    time, in every process, and on the TypeScript side's server alike."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def pick(version: int | None, split: dict[str, Any] | None, user_id: str | None) -> tuple[int | None, str | None]:
    """(version, arm) a label serves `user_id`: the label's own `version`, or the A/B arm or
    rollout share the user's `bucket` falls in. Pure, so an SDK that holds the label's state
    (`Resolver.serving`, GET .../-/serving) picks the same arm without asking the server."""
    if split is None:
        return version, None
    in_b = user_id is not None and bucket(split["salt"], str(user_id)) < split["percent"]
    if split["kind"] == "ab":
        if user_id is None and version is not None:
            return version, None
        arm = "b" if in_b else "a"
        return split[f"version_{arm}"], arm
    return (split["version_b"], "new") if in_b else (split["version_a"], "stable")


@dataclass
class Resolution:
    prompt_id: int
    label: str
    version: int
    arm: str | None = None  # 'a'/'b' in an A/B test, 'stable'/'new' in a rollout
    split_id: int | None = None
    kind: str | None = None  # 'ab' | 'rollout'

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Resolver:
    """Label state per (prompt, label), cached for `ttl` seconds (cachetools.TTLCache); versions
    are immutable, so they are cached by number for as long as they stay in the LRU."""

    def __init__(self, client: Client, ttl: float | None = None) -> None:
        from cachetools import LRUCache, TTLCache

        self.client = client
        if ttl is None:
            value = deploy_settings(client).get("cache_ttl", DEFAULT_CACHE_TTL)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInput(f"cache_ttl in [deploy] is seconds (0 turns the cache off), not {value!r}")
            ttl = float(value)
        self.ttl = ttl
        self._states: TTLCache = TTLCache(maxsize=4096, ttl=ttl or 1e-9)
        self._versions: LRUCache = LRUCache(maxsize=1024)
        # When each rollout's alerts were last checked: at most every few seconds per process,
        # even with the cache off (a check writes the alert state).
        self._checked: TTLCache = TTLCache(maxsize=1024, ttl=max(ttl, ROLLOUT_CHECK_EVERY))
        self._lock = threading.RLock()

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
            self._checked.clear()

    def _state(self, prompt: Any, label: str) -> tuple[dict[str, Any], int | None, dict[str, Any] | None]:
        key = (prompt if isinstance(prompt, int) else str(prompt), label)
        with self._lock:
            cached = self._states.get(key) if self.ttl else None
        if cached is not None:
            return cached
        row = self.client.store.prompts.prompt_row(prompt)
        version = label_version(self.client, row["id"], label)
        split = rows.active_split(self.client.store.db, row["id"], label)
        if split is not None and split["kind"] == "rollout" and split["id"] not in self._checked:
            with self._lock:
                self._checked[split["id"]] = True
            split = auto_check(self.client, row, split)
        state = (row, version, split)
        if self.ttl:
            with self._lock:
                self._states[key] = state
        return state

    def resolve(self, prompt: Any, label: str, user_id: str | None = None) -> Resolution:
        from store.prompts import LATEST

        if label == LATEST:  # not a stored label: it follows the head of main
            found = self.client.store.prompts.get(prompt, label=LATEST)
            return Resolution(found.prompt_id, label, found.version)
        row, version, split = self._state(prompt, label)
        if split is not None:
            served, arm = pick(version, split, user_id)
            if arm is None:
                return Resolution(row["id"], label, served)
            return Resolution(row["id"], label, served, arm, split["id"], split["kind"])
        if version is None:
            self.client.store.prompts.label_target(row, label)  # raises its NotFound
        return Resolution(row["id"], label, version)

    def serving(self, prompt: Any, label: str) -> dict[str, Any]:
        """What `label` serves every user, for an SDK to cache and `pick` from: the label's
        version, the active A/B test or rollout (its arms, share and the salt users are bucketed
        with) and every version it may serve. An unknown prompt or label raises NotFound."""
        from store.prompts import LATEST

        if label == LATEST:
            found = self.client.store.prompts.get(prompt, label=LATEST)
            return {"prompt_id": found.prompt_id, "label": label, "version": found.version, "split": None,
                    "versions": [found]}
        row, version, split = self._state(prompt, label)
        if split is None and version is None:
            self.client.store.prompts.label_target(row, label)  # raises its NotFound
        numbers = {version} if split is None else {version, split["version_a"], split["version_b"]}
        shared = None if split is None else {k: split[k] for k in (
            "id", "kind", "version_a", "version_b", "percent", "salt")}
        return {"prompt_id": row["id"], "label": label, "version": version, "split": shared,
                "versions": [self._version(row["id"], n) for n in sorted(n for n in numbers if n is not None)]}

    def _version(self, prompt_id: int, number: int) -> PromptVersion:
        key = (prompt_id, number)
        with self._lock:
            cached = self._versions.get(key)
        if cached is None:
            cached = self.client.store.prompts.get(prompt_id, version=number)
            with self._lock:
                self._versions[key] = cached
        return cached

    def get(self, prompt: Any, label: str, user_id: str | None = None) -> PromptVersion:
        """The PromptVersion `user_id` is served under `label`."""
        found = self.resolve(prompt, label, user_id)
        return self._version(found.prompt_id, found.version)
