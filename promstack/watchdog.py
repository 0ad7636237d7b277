"""The server watches itself: alert rules, budgets and rollout health checked on a schedule.

`promstack serve` starts one `Watchdog`; every `[monitoring] check_every` (default 60s; "off"
stops it) it runs a round: the alert rules and budgets (`monitoring.alerts.check`, which records
each firing and resolution and notifies the configured webhooks, exactly as
`promstack alerts check` does) and every active rollout (`deploy.rollout.check_all`, which halts
one whose new version alerts).

Rounds are numbered by the clock: round N starts at the N-th multiple of the interval. Before it
runs a round, a worker claims it in the store (`store.monitoring.take_round`: one row, moved
forward by the first claimant only), so two workers over one store never both run a round, and a
server restarted within a round does not run it again. An alert open from an earlier round stays
open in the store, so it is never notified twice either. The row keeps what the last round found,
which the dashboard shows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from store import monitoring as rounds
from store.errors import InvalidInput

from . import config
from .deploy import rollout
from .monitoring import alerts
from .monitoring.call_metrics import parse_duration

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("promstack.watchdog")
log.addHandler(logging.NullHandler())

SCHEDULE = "checks"
ACTOR = "promstack-watchdog"
DEFAULT_EVERY = "60s"
MIN_EVERY_S = 1.0


def interval(client: Client) -> float | None:
    """Seconds between rounds from `[monitoring] check_every` ("60s", "5m"; "off" or 0: none)."""
    value = config.of_client(client).section("monitoring").get("check_every", DEFAULT_EVERY)
    if value in (0, False, "off", "0", "never"):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(str(value)).total_seconds()
        except InvalidInput as exc:
            raise InvalidInput(f"check_every in [monitoring]: {exc}") from None
    if seconds < MIN_EVERY_S:
        raise InvalidInput(f"check_every in [monitoring] must be at least {MIN_EVERY_S:g}s, or \"off\"")
    return seconds


def run_checks(client: Client) -> dict[str, Any]:
    """One round's checks, now: alerts and budgets (notifying on changes), then rollouts.
    Returns what they found; a check that fails is reported in `errors`, never raised."""
    found: dict[str, Any] = {"rules": 0, "firing": [], "changes": [], "rollouts": 0, "halted": [], "errors": []}
    try:
        result = alerts.check(client.store.db, getattr(client.store, "path", None), notify=True)
        found["rules"] = result["rules"]
        found["firing"] = [r["message"] for r in result["results"] if r["firing"]]
        found["changes"] = [r["message"] for r in result["results"] if r["change"]]
    except Exception as exc:  # a broken config must not stop the rollout checks or the server
        found["errors"].append(f"alerts: {exc}")
        log.error("scheduled alert check failed: %s", exc)
    try:
        checked = rollout.check_all(client)
        found["rollouts"] = len(checked)
        found["halted"] = [f"rollout {r['id']} of {r['name']} halted" for r in checked if r["halted"]]
    except Exception as exc:
        found["errors"].append(f"rollouts: {exc}")
        log.error("scheduled rollout check failed: %s", exc)
    return found


def last_round(db: Any) -> dict[str, Any] | None:
    """When the checks last ran, who ran them and what they found (None: never)."""
    return rounds.last_round(db, SCHEDULE)


class Watchdog:
    """Runs `run_checks` once per round on a background thread, in whichever worker claims the
    round first. `borrow(actor)` lends a Client acting as `actor` for a round (a ClientPool's
    `client`): what the checks do (a halted rollout) is recorded as ACTOR's."""

    def __init__(self, borrow: Callable[[str], contextlib.AbstractContextManager[Client]], *,
                 every: float | None = None, holder: str | None = None) -> None:
        self.borrow = borrow
        self.fixed_every = every
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checker: Any = None

    def every(self, client: Client) -> float | None:
        return self.fixed_every if self.fixed_every is not None else interval(client)

    def tick(self, at: float | None = None) -> tuple[float | None, dict[str, Any] | None]:
        """Claim and run the round `at` (default now) falls in. Returns (the interval, what the
        round found), or (interval, None) when another worker has the round or checks are off."""
        at = time.time() if at is None else at
        with self.borrow(ACTOR) as client:
            every = self.every(client)
            if every is None:
                return None, None
            number = int(at // every * every * 1000)  # the round's start, in ms: grows whatever `every` is
            if not rounds.take_round(client.store.db, SCHEDULE, number, self.holder):
                return every, None
            found = run_checks(client)
            rounds.finish_round(client.store.db, SCHEDULE, number, found)
            return every, found

    def _run(self) -> None:
        self._start_checker()  # here, not in start(): its imports stay off the server's start-up
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                every, _found = self.tick()
            except Exception as exc:  # a locked store, a bad config: try again in a minute
                log.error("scheduled checks failed: %s", exc)
                every = None
            # sleep to the next round's start (re-reading the config there, "off" included)
            every = every or parse_duration(DEFAULT_EVERY).total_seconds()
            delay = every - (time.time() % every) + 0.05

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="promstack-watchdog", daemon=True)
            self._thread.start()

    def _start_checker(self) -> None:
        """The quick checks of new versions (promstack.evals.check) run beside the rounds,
        on their own thread: a save is checked within moments, not at the next round."""
        from .evals.check import ACTOR as CHECK_ACTOR
        from .evals.check import start_checker

        try:
            with self.borrow(CHECK_ACTOR) as client:
                self._checker = start_checker(client)
        except Exception as exc:  # the server runs without them; the log says why
            log.error("the checks of new versions did not start: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._checker is not None:  # after the thread: it is what starts the checker
            self._checker.stop(timeout)
            self._checker = None
