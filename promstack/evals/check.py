"""A score delta on every save: each new version of a prompt with a tied suite is checked in the
background against its parent, and annotated (score, delta, the cases that broke and got fixed,
what the check cost).

The store queues the check with the version itself (store.checks: 'pending', or 'no_suite' when
no suite is tied), so no face can save around it. A checker — a thread in `promstack serve`, the
watcher, the MCP server and a long-lived SDK client, or a detached `promstack check --pending`
that a one-shot CLI save starts — claims pending rows with a lease and runs the suite's fixed
sample (`[check] sample`, default 20; the same cases every time, so the parent's outputs and
judgements come from the gateway's cache) through the test runner's own unit of work, judged
as the suite says. Saving never waits for it and never fails because of it.

A burst of saves checks only the last: older pending saves of the same branch are closed as
not checked, and a save made within `[check] debounce_s` of the one before it waits until the
burst has been quiet that long. `[check] daily_budget_usd` caps what the checks spend a day;
`[check] enabled = false` turns them off (everywhere, or for one prompt under
`[prompts."<name>".check]`), and so does `check: false` in a suite's settings; a model that fails makes the annotation "not checked: <why>".

    [check]
    enabled = true
    sample = 20
    daily_budget_usd = 1.0
    debounce_s = 1.0
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store import calls
from store import checks as rows
from store.clock import current
from store.errors import InvalidInput, NotFound, PromStackError

from .. import config
from .catalog import suite_for_prompt
from .gateway import LiveGateway
from .plans import build_plan, check_columns
from .pool import run_pool
from .runner import Runner

if TYPE_CHECKING:
    from ..client import Client
    from .runner import Plan

log = logging.getLogger("promstack.check")
log.addHandler(logging.NullHandler())

DEFAULTS: dict[str, Any] = {"enabled": True, "sample": 20, "daily_budget_usd": None, "debounce_s": 1.0,
                            "concurrency": 10, "lease_s": 300.0}
ACTOR = "promstack-check"
POLL_S = 0.5  # how often a checker looks for saves made by other processes
IDLE_EXIT_S = 5.0  # a checker a save started (not a server's) stops after this long with nothing to do
CLIP = 200
OFF_REASON = "checks are off for this prompt ([check] enabled = false)"


# ---- the annotation ----------------------------------------------------------------------


@dataclass
class CaseChange:
    case: str
    input: str
    parent_score: float | None
    score: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VersionCheck:
    status: str  # pending | checked | not_checked | no_suite | off
    suite: str | None = None
    score: float | None = None
    parent_version: int | None = None
    parent_score: float | None = None
    delta: float | None = None
    broke: list[CaseChange] = field(default_factory=list)
    fixed: list[CaseChange] = field(default_factory=list)
    sample: int = 0
    cost_usd: float | None = None
    reason: str | None = None
    text: str = ""
    checked_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "broke": [c.to_dict() for c in self.broke], "fixed": [c.to_dict() for c in self.fixed]}


def wording(check: VersionCheck) -> str:
    """The one line every face shows: "82 (-9: 2 broke)", "82 (+3: 1 fixed)", "82 (=)",
    "checking…", "not checked: <why>", "no suite", "check off"."""
    if check.status == "pending":
        return "checking…"
    if check.status == "no_suite":
        return "no suite"
    if check.status == "off":
        return "check off"
    if check.status != "checked" or check.score is None:
        return f"not checked: {check.reason or 'no reason recorded'}"
    score = f"{check.score:.0f}"
    if check.delta is None:
        return score
    delta = round(check.delta)
    sign = "=" if delta == 0 else f"{delta:+d}"
    changes = [f"{len(check.broke)} broke"] if check.broke else []
    changes += [f"{len(check.fixed)} fixed"] if check.fixed else []
    return f"{score} ({sign}{': ' + ', '.join(changes) if changes else ''})"


def from_row(row: dict[str, Any]) -> VersionCheck:
    status = "pending" if row["status"] in (rows.PENDING, rows.RUNNING) else row["status"]
    result = dict(row.get("result") or {})
    result.pop("status", None)
    if status == "no_suite" and not result.get("reason"):
        result["reason"] = "no test suite is tied to this prompt"
    check = VersionCheck(
        status=status, **{k: v for k, v in result.items() if k in VersionCheck.__dataclass_fields__
                          and k not in ("broke", "fixed", "text", "checked_at")},
        broke=[CaseChange(**c) for c in result.get("broke") or []],
        fixed=[CaseChange(**c) for c in result.get("fixed") or []],
        checked_at=row.get("finished_at") if status != "pending" else None,
    )
    if check.cost_usd is None and row.get("cost_usd") is not None:
        check.cost_usd = row["cost_usd"]
    check.text = wording(check)
    return check


def check_from_dict(data: dict[str, Any]) -> VersionCheck:
    """A check as `VersionCheck.to_dict` (or the REST API) gave it."""
    fields = {k: v for k, v in data.items() if k in VersionCheck.__dataclass_fields__}
    fields["broke"] = [CaseChange(**c) for c in data.get("broke") or []]
    fields["fixed"] = [CaseChange(**c) for c in data.get("fixed") or []]
    return VersionCheck(**fields)


def version_checks(client: Client, prompt: Any, versions: list[int] | None = None) -> dict[int, VersionCheck]:
    """version -> its check, for the versions given (every checked one when None); a version
    saved before checks existed has none. Faces pass the id they just read (no lookup)."""
    known = isinstance(prompt, int) and not isinstance(prompt, bool)
    prompt_id = prompt if known else client.store.prompts.prompt_id(prompt)
    return {v: from_row(r) for v, r in rows.read(client.store.db, prompt_id, versions).items()}


# ---- settings ----------------------------------------------------------------------------


def settings(client: Client, prompt_name: str | None) -> dict[str, Any]:
    """`[check]`, with `[prompts."<name>".check]` over it; a bad value is one sentence."""
    found = config.of_client(client).for_prompt(prompt_name, "check", DEFAULTS)
    for key in ("sample", "concurrency"):
        value = found[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{key} in [check] must be a whole number from 1; got {value!r}")
    for key in ("debounce_s", "lease_s", "daily_budget_usd"):
        value = found[key]
        if value is None and key == "daily_budget_usd":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidInput(f"{key} in [check] must be a number of at least 0; got {value!r}")
    if not isinstance(found["enabled"], bool):
        raise InvalidInput(f"enabled in [check] is true or false; got {found['enabled']!r}")
    return found


def is_enabled(client: Client, prompt_name: str) -> bool:
    """Whether saves of the prompt are checked; a bad setting counts as on (the check says why)."""
    try:
        return settings(client, prompt_name)["enabled"]
    except InvalidInput:
        return True


def spent_today(client: Client) -> float:
    midnight = current().strftime("%Y-%m-%dT00:00:00")
    return rows.spent_since(client.store.db, midnight)


# ---- one check ---------------------------------------------------------------------------


def sample_cases(client: Client, suite: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The suite's fixed sample: the n cases whose keys hash lowest, the same every time (so a
    parent's outputs are cached) and mostly the same when cases are added."""
    cases = list(client.evals.iter_cases(suite["id"]))
    cases.sort(key=lambda c: hashlib.sha256(c["case_key"].encode()).hexdigest())
    return cases[:n]


def _score(row: dict[str, Any]) -> float:
    # As a run's score: a case with nothing to check counts 0 (it can never pass).
    return row["score"] if row.get("score") is not None else 0.0


def _change(case: dict[str, Any], parent: dict[str, Any], new: dict[str, Any]) -> CaseChange:
    text = str(case.get("input") if case.get("input") is not None else case.get("variables") or "")
    return CaseChange(case=case["case_key"], input=text if len(text) <= CLIP else text[: CLIP - 1] + "…",
                      parent_score=parent.get("score"), score=new.get("score"), reason=new.get("reason"))


async def _keep_lease(renew: Callable[[], object], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        renew()


async def _run_sample(client: Client, plans: list[Plan], cases: list[dict[str, Any]], run_tag: str,
                      concurrency: int, renew: Callable[[], object] | None = None,
                      lease_s: float = DEFAULTS["lease_s"]) -> list[dict[tuple[int, str], dict[str, Any]]]:
    """Each plan's result per case (the runner's unit of work: call, assertions, judge). While
    it runs, `renew()` extends the checker's lease every third of it: a slow check keeps it."""
    live = LiveGateway(client)
    found: list[dict[tuple[int, str], dict[str, Any]]] = [{} for _ in plans]
    keeper = asyncio.create_task(_keep_lease(renew, max(lease_s / 3, 0.1))) if renew is not None else None
    try:
        runners = [Runner(client.evals, live, plan, {"id": run_tag, "judge_key": plan.judge.key() if plan.judge else ""})
                   for plan in plans]

        async def work(unit: tuple[int, dict[str, Any]]) -> None:
            i, case = unit
            found[i][(case["idx"], case["case_key"])] = await runners[i].run_unit(case, plans[i].models[0], 0)

        await run_pool([(i, c) for c in cases for i in range(len(plans))], work, concurrency=concurrency,
                       backlog=max(2 * concurrency, 16))
        live.flush()
    finally:
        if keeper is not None:
            keeper.cancel()
        await live.aclose()
    return found


def _cost(client: Client, run_tag: str) -> float | None:
    logged = calls.query(client.store.db, run_id=run_tag, limit=None)
    if any(r.get("cost_usd") is None for r in logged):
        return None  # a call could not be priced
    return round(sum(r["cost_usd"] for r in logged), 6)


def compared_with(client: Client, found: Any) -> int | None:
    """The version a check compares with: the parent, or, when the parent was a save of a burst
    that was never checked, the nearest ancestor that was (its outputs are cached, and it is
    the last version anyone saw a score for)."""
    parent = found.parent
    for _ in range(1000):
        if parent is None:
            return None
        row = rows.read(client.store.db, found.prompt_id, [parent]).get(parent)
        if row is None or not row["result"].get("superseded_by"):
            return parent
        parent = client.get_prompt(found.prompt_id, version=parent).parent
    return found.parent


async def acheck_version(client: Client, prompt_id: int, version: int, *, holder: str | None = None
                         ) -> tuple[str, dict[str, Any], float | None]:
    """Check one version against its parent now: (status, annotation, cost). Raises nothing a
    model or the suite causes: those are a not_checked annotation with the reason. `holder`:
    the checker whose lease on the version is kept while the calls run."""
    found = client.get_prompt(prompt_id, version=version)
    try:
        cfg = settings(client, found.name)
    except InvalidInput as exc:
        return "not_checked", {"reason": str(exc)}, None
    if not cfg["enabled"]:
        return "off", {"reason": OFF_REASON}, None
    try:
        suite = suite_for_prompt(client, prompt_id)
    except NotFound:
        return "no_suite", {"reason": "no test suite is tied to this prompt"}, None
    except PromStackError as exc:
        return "not_checked", {"reason": str(exc)}, None
    base = {"suite": suite["name"]}
    if (suite.get("config") or {}).get("check") is False:
        return "off", {**base, "reason": f"suite {suite['name']!r} says 'check: false'"}, None
    if not suite.get("case_count"):
        return "not_checked", {**base, "reason": f"suite {suite['name']!r} has no cases"}, None
    try:
        check_columns(client.evals, suite, found)  # refused before any call: nothing billed
    except InvalidInput as exc:
        return "not_checked", {**base, "reason": str(exc)}, None
    cap = cfg["daily_budget_usd"]
    if cap is not None:
        spent = spent_today(client)
        if spent >= cap:
            return "not_checked", {**base, "reason": f"today's checks have spent ${spent:.4f} of the "
                                   f"${cap:g} daily budget ([check] daily_budget_usd)"}, None
    parent = compared_with(client, found)
    try:
        plans = [build_plan(client, suite, prompt=prompt_id, version=version, concurrency=cfg["concurrency"])]
    except InvalidInput as exc:
        return "not_checked", {**base, "reason": str(exc)}, None
    if parent is not None:
        try:
            plans.append(build_plan(client, suite, prompt=prompt_id, version=parent, concurrency=cfg["concurrency"]))
        except InvalidInput:
            parent = None  # the parent's own variables do not fit the suite: this version's score alone
    cases = sample_cases(client, suite, cfg["sample"])
    run_tag = f"check-{prompt_id}-v{version}-{secrets.token_hex(3)}"
    lease_s = float(cfg["lease_s"])
    renew = (lambda: rows.renew(client.store.db, prompt_id, version, holder, lease_s)) if holder else None
    results = await _run_sample(client, plans, cases, run_tag, cfg["concurrency"], renew, lease_s)
    cost = _cost(client, run_tag)
    base.update(sample=len(cases), cost_usd=cost, parent_version=parent)
    failed = [r for side in results for r in side.values() if r["status"] == "error"]
    if failed:
        first = failed[0].get("error") or failed[0].get("reason") or "a call failed"
        return "not_checked", {**base, "reason": f"{len(failed)} of {sum(len(s) for s in results)} answers "
                               f"could not be scored ({first})"}, cost
    new = results[0]
    score = round(sum(_score(r) for r in new.values()) / len(new), 2)
    out = {**base, "score": score}
    if parent is not None:
        old = results[1]
        parent_score = round(sum(_score(r) for r in old.values()) / len(old), 2)
        by_key = {(c["idx"], c["case_key"]): c for c in cases}
        broke = [_change(by_key[k], old[k], r) for k, r in new.items() if old[k]["status"] == "pass" and r["status"] != "pass"]
        fixed = [_change(by_key[k], old[k], r) for k, r in new.items() if old[k]["status"] != "pass" and r["status"] == "pass"]
        out.update(parent_score=parent_score, delta=round(score - parent_score, 2),
                   broke=[c.to_dict() for c in broke], fixed=[c.to_dict() for c in fixed])
    return "checked", out, cost


def _run(fn: Callable[..., Any], *args: Any) -> Any:
    """`asyncio.run(fn(*args))`, on a helper thread when this one already runs a loop (a
    notebook, an async test): the store's connection may be used from another thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(fn(*args))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(fn(*args))).result()


def check_now(client: Client, prompt_id: int, version: int, holder: str) -> VersionCheck | None:
    """Run the claimed check of one version and record it (only while `holder` holds it)."""
    try:
        status, result, cost = _run(functools.partial(acheck_version, holder=holder), client, prompt_id, version)
    except Exception as exc:  # the version must never be blocked by a bug here: say so on it
        log.exception("checking prompt %s v%s failed", prompt_id, version)
        status, result, cost = "not_checked", {"reason": f"the check failed: {exc}"}, None
    if not rows.finish(client.store.db, prompt_id, version, status, result, cost_usd=cost, holder=holder):
        return None
    return version_checks(client, prompt_id, [version]).get(version)


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
