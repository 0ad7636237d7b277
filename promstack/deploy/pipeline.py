"""Deployments: environments as ordered labels, gates, approvals, rollback, and label resolution.

A prompt moves development -> test -> staging -> production (the guide's flow). Each environment
is a label; `.promstack/config.toml` says their order and what gates each one:

    [deploy]
    environments = ["development", "test", "staging", "production"]   # the default
    cache_ttl = 5                      # seconds the resolver keeps a label's state
    require_previous = false           # true: a version reaches an environment only after
                                       # passing the one before it
    [environments.production]
    suite = "regression"               # default: the suite tied to the prompt
    min_pass = "100%"                  # the batch tests must pass at this rate (omit: no check)
    min_score = 80                     # the judge score from `evaluate` (omit: no check)
    check_alerts = true                # no alert firing on the version (its calls so far)
    approval = true                    # a person runs `promstack deploy approve ID`
    allow_self_approval = false

`deploy()` holds the prompt's lock row while the gate runs (a second deploy of the same prompt
is refused with who holds it), then moves the label, its history, the deployment row and the
audit rows in one write transaction: a label is never half-moved. `--force` skips the gate and
says so in the audit log. `rollback()` puts the environment back on the version it had before
its last deployment, in one step.

A gated environment (one with a check or an approval) is reached only through its gate: every
other way a label moves (`Client.set_label` and the faces over it, an A/B test's winner, a
rollout reaching 100%, an import) either runs the gate, checks the gate was passed, or is
forced with a reason (promstack.deploy.gates: `move_label`, the store's `label_guard`, `import_store`).

`Resolver` is the one place that turns (prompt, label, user id) into a version: the label, or
the A/B arm or rollout share the user falls in (promstack.deploy.abtest, promstack.deploy.rollout). The SDK
(`Client.get_prompt(..., label=, user_id=)`) and the REST API use it, with a short TTL cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput, NotFound, PromStackError, Step

DEFAULT_ENVIRONMENTS = ["development", "test", "staging", "production"]
# The guide's pipeline: batch tests at the test stage, the quality score (`evaluate`, >= 80)
# before staging, and before production all three: the batch tests pass, the score is high
# enough and no alert fires on the version being promoted.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "development": {},
    "test": {"min_pass": "100%"},
    "staging": {"min_score": 80, "check_alerts": True},
    "production": {"min_pass": "100%", "min_score": 80, "check_alerts": True},
}
CHECKS = ("previous", "tests", "score", "alerts")
# Deployment statuses in which a version reached its environment through the gate.
REACHED = ("deployed", "rolled_back", "rolling_out")
DEFAULT_CACHE_TTL = 5.0
ROLLOUT_CHECK_EVERY = 5.0
LOCK_TIMEOUT = timedelta(hours=2)
RUN_REUSE = timedelta(hours=24)


class DeployBusy(PromStackError):
    """Another deploy of the same prompt holds its lock."""


class GateFailed(PromStackError):
    """The gate refused a deployment (returned, not raised, by `deploy`; raised by callers who want it)."""

    exit_code = 1  # the CLI: a check failed, not bad input


class DeployPending(PromStackError):
    """The gate passed, and the move waits for a person's approval (`deploy approve ID`)."""

    exit_code = 0


@dataclass
class Environment:
    name: str
    index: int
    suite: str | None = None
    min_pass: float | None = None
    min_score: float | None = None
    check_alerts: bool = False
    approval: bool = False
    allow_self_approval: bool = False
    models: list[str] = field(default_factory=list)
    after: str | None = None  # with [deploy] require_previous: the environment a version must pass first

    @property
    def checks(self) -> list[str]:
        out = []
        if self.after is not None:
            out.append("previous")
        if self.min_pass is not None:
            out.append("tests")
        if self.min_score is not None:
            out.append("score")
        if self.check_alerts:
            out.append("alerts")
        return out

    @property
    def gated(self) -> bool:
        """Whether the label moves only through the gate (any check, or an approval)."""
        return bool(self.checks) or self.approval

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checks": self.checks, "gated": self.gated}


# ---- configuration ----------------------------------------------------------------------------


def _config(client: Any) -> Any:
    from .. import config

    return config.of_client(client)


def deploy_settings(client: Any) -> dict[str, Any]:
    return _config(client).section("deploy")


def environments(client: Any) -> list[Environment]:
    """The workspace's environments in order, with their rules."""
    from ..evals.score import parse_min_pass

    conf = _config(client)
    names = conf.section("deploy").get("environments", DEFAULT_ENVIRONMENTS)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidInput("[deploy] environments in config.toml must be a list of names, e.g. "
                           '["development", "test", "staging", "production"]')
    if len(set(names)) != len(names):
        raise InvalidInput("[deploy] environments names an environment twice")
    tables = conf.data.get("environments", {})
    ordered = conf.section("deploy").get("require_previous", False)
    if not isinstance(ordered, bool):
        raise InvalidInput(f"require_previous in [deploy] must be true or false, not {ordered!r}")
    out = []
    for index, name in enumerate(names):
        table = tables.get(name) if isinstance(tables, dict) else None
        settings = dict(DEFAULT_RULES.get(name, {})) if table is None else {}
        if isinstance(table, dict):
            settings.update({k: v for k, v in table.items() if not isinstance(v, dict)})
        where = f"[environments.{name}]"
        env = Environment(name, index)
        env.suite = settings.get("suite") or None
        if settings.get("min_pass") is not None:
            env.min_pass = parse_min_pass(settings["min_pass"], f"min_pass in {where}")
        if settings.get("min_score") is not None:
            score = settings["min_score"]
            if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
                raise InvalidInput(f"min_score in {where} is a judge score from 0 to 100, not {score!r}")
            env.min_score = float(score)
        for key in ("check_alerts", "approval", "allow_self_approval"):
            value = settings.get(key, getattr(env, key))
            if not isinstance(value, bool):
                raise InvalidInput(f"{key} in {where} must be true or false, not {value!r}")
            setattr(env, key, value)
        models = settings.get("models") or []
        env.models = [models] if isinstance(models, str) else list(models)
        if ordered and index > 0:
            env.after = names[index - 1]
        out.append(env)
    return out


def environment(client: Any, name: str | None) -> Environment:
    envs = environments(client)
    if name is None:
        return envs[-1]
    for env in envs:
        if env.name == name:
            return env
    raise InvalidInput(
        f"there is no environment {name!r}; the environments are {', '.join(e.name for e in envs)} "
        "([deploy] environments in .promstack/config.toml)"
    )


def previous_environment(client: Any, env: Environment) -> Environment | None:
    return environments(client)[env.index - 1] if env.index > 0 else None


def gated_environment(client: Any, label: str) -> Environment | None:
    """The environment `label` names when it has a gate; None for any other label."""
    return next((e for e in environments(client) if e.name == label and e.gated), None)


def passed(client: Any, prompt_id: int, env: Environment, version: int) -> bool:
    """Whether `version` reached `env` through its gate (a deployment that was not forced), or,
    for an environment without a gate, was ever put there. A rollout halted there (its version
    alerted) did not pass; one rolled back later by hand had."""
    db = client.store.db
    if db.execute(
        f"SELECT 1 FROM deployments WHERE prompt_id = ? AND environment = ? AND to_version = ? AND forced = 0 "
        f"AND kind != 'rollback' AND status IN ({', '.join('?' * len(REACHED))}) "
        "AND NOT (kind = 'rollout' AND status = 'rolled_back' AND error IS NOT NULL) LIMIT 1",
        [prompt_id, env.name, version, *REACHED],
    ).fetchone():
        return True
    if env.gated:
        return False
    return db.execute("SELECT 1 FROM label_history WHERE prompt_id = ? AND label = ? AND to_version = ? LIMIT 1",
                      [prompt_id, env.name, version]).fetchone() is not None


def need_reason(env: str, reason: str | None) -> str:
    """A forced move past a gate needs a reason: it is what the audit log keeps."""
    if reason is None or not str(reason).strip():
        raise InvalidInput(f"forcing {env} past its gate needs a reason; it is kept with the deployment "
                           "and in the audit log")
    return str(reason).strip()


# ---- small shared pieces ----------------------------------------------------------------------


def bucket(salt: str, user_id: str) -> float:
    """Where a user falls in [0, 100): a hash, so the same user lands in the same place every
    time, in every process, and on the TypeScript side's server alike."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def prompt_row(client: Any, prompt: Any) -> dict[str, Any]:
    return client.store.prompts._prompt_row(prompt)  # noqa: SLF001 - the store's own resolution, errors included


def label_version(client: Any, prompt_id: int, env: str) -> int | None:
    row = client.store.db.execute(
        "SELECT version FROM labels WHERE prompt_id = ? AND name = ?", [prompt_id, env]
    ).fetchone()
    return row[0] if row else None


def move_env_label(client: Any, prompt: dict[str, Any], env: str, version: int, reason: str, *, cleared: str) -> None:
    """Inside the caller's transaction: the store's own label move (history + audit row).
    `cleared` says what allowed it (the deployment whose gate passed, a forced one, a rollback)."""
    client.store.prompts.set_label(prompt["id"], env, version, reason=reason, cleared=cleared)


def forget(client: Any) -> None:
    """Drop what this client's resolver cached (after a change made through it)."""
    client.forget_resolved()


def _end_split(client: Any, prompt_id: int, env: str, status: str, outcome: str) -> dict[str, Any] | None:
    split = rows.active_split(client.store.db, prompt_id, env)
    if split is not None:
        rows.update_split(client.store.db, split["id"], status=status, ended_at=now(),
                          ended_by=client.actor, outcome=outcome)
    return split


# ---- the lock ---------------------------------------------------------------------------------


def _lock_is_stale(lock: dict[str, Any]) -> bool:
    if lock["host"] == socket.gethostname():
        try:
            os.kill(int(lock["pid"]), 0)
        except ProcessLookupError:
            return True  # its process is gone: it will never finish
        except (PermissionError, OSError):
            pass
    try:
        taken = datetime.fromisoformat(lock["acquired_at"].replace("Z", "+00:00"))
    except ValueError:
        return True
    return datetime.now(UTC) - taken > LOCK_TIMEOUT


def _acquire(client: Any, prompt: dict[str, Any], **deployment: Any) -> int:
    """One transaction: refuse if a live deploy holds the prompt, else a deployment row and the lock."""
    db = client.store.db
    with write(db):
        lock = rows.lock_holder(db, prompt["id"])
        if lock is not None and lock["pid"] != os.getpid() and not _lock_is_stale(lock):
            raise DeployBusy(
                f"prompt {prompt['name']!r} is being deployed by {lock['holder']} (deployment "
                f"{lock['deployment_id']}, started {lock['acquired_at']}); wait for it to finish and try again"
            )
        if lock is not None and lock["pid"] == os.getpid() and lock["host"] == socket.gethostname():
            raise DeployBusy(f"prompt {prompt['name']!r} is already being deployed by this process "
                             f"(deployment {lock['deployment_id']})")
        if lock is not None and lock["deployment_id"] is not None:  # a stale lock: its deploy died mid-gate
            stale = rows.deployment(db, lock["deployment_id"])
            if stale is not None and stale["status"] == "running":
                rows.update_deployment(db, stale["id"], status="abandoned", decided_at=now(),
                                       error=f"its process ({lock['host']} pid {lock['pid']}) ended before it finished")
        deployment_id = rows.insert_deployment(db, prompt_id=prompt["id"], requested_by=client.actor, **deployment)
        rows.take_lock(db, prompt["id"], client.actor, deployment_id)
    return deployment_id


def _still_holding(client: Any, prompt_id: int, deployment_id: int) -> None:
    lock = rows.lock_holder(client.store.db, prompt_id)
    if lock is None or lock["deployment_id"] != deployment_id:
        raise DeployBusy(f"deployment {deployment_id} lost its lock to another deploy (it was stale); "
                         "nothing was moved; run the deploy again")


def _release(client: Any, prompt_id: int, deployment_id: int, **changes: Any) -> None:
    with write(client.store.db):
        rows.update_deployment(client.store.db, deployment_id, **changes)
        rows.release_lock(client.store.db, prompt_id, deployment_id)


# ---- the gate ---------------------------------------------------------------------------------


def _passes(summary: dict[str, Any], env: Environment, wanted: list[str]) -> bool:
    """Whether a finished run meets `env`'s thresholds for the checks wanted."""
    if not summary.get("complete", True) or not summary.get("results"):
        return False
    if "tests" in wanted and not (summary.get("pass_rate") or 0) + 1e-12 >= (env.min_pass or 0):
        return False
    if "score" in wanted:
        score = summary.get("score")  # None when the judge could not score every case
        if score is None or int(round(score)) < (env.min_score or 0):
            return False
    return True


def _reusable_run(client: Any, prompt_id: int, version: int, suite: dict[str, Any], env: Environment,
                  wanted: list[str]) -> str | None:
    """A finished, *passing* test run of exactly this version, suite, judge and models from the
    last day (CI just ran it). A failing run is never reused: the gate runs the suite again, so
    a fixed judge or a flaky model gets a fresh chance and a refusal is never a day old."""
    import json

    from ..evals import engine

    since = (datetime.now(UTC) - RUN_REUSE).isoformat().replace("+00:00", "Z")
    candidates = client.store.db.execute(
        "SELECT id, models, judge_key FROM runs WHERE kind = 'test' AND status = 'done' AND prompt_id = ? "
        "AND prompt_version = ? AND suite_name = ? AND suite_sha = ? AND started_at >= ? "
        "ORDER BY started_at DESC LIMIT 20",
        [prompt_id, version, suite["name"], suite["sha256"], since],
    ).fetchall()
    if not candidates:
        return None
    # What a fresh run would be: the same judge (criteria, model, prompt) and the same models.
    plan = engine.build_plan(client, suite, prompt=prompt_id, version=version, models=env.models or None)
    judge_key = plan.judge.key() if plan.judge else ""
    for run_id, models, key in candidates:
        if key != judge_key or json.loads(models or "[]") != plan.models:
            continue
        if _passes(engine.get_run(client, run_id)["summary"], env, wanted):
            return run_id
    return None


def _suite_result(client: Any, prompt: dict[str, Any], version: int, env: Environment,
                  progress: Any, warn: Any, *, wanted: list[str] | None = None, rerun: bool = False) -> dict[str, Any]:
    from ..evals import engine
    from ..evals.score import run_score

    suite = engine.get_suite(client, env.suite) if env.suite else engine.suite_for_prompt(client, prompt["id"])
    wanted = wanted if wanted is not None else [c for c in env.checks if c in ("tests", "score")]
    reuse = None if rerun else _reusable_run(client, prompt["id"], version, suite, env, wanted)
    if reuse is not None:
        summary = engine.get_run(client, reuse)["summary"]
        return {"run_id": reuse, "suite": suite["name"], "reused": True,
                "pass_rate": summary["pass_rate"], "score": run_score(summary),
                "unscored": summary.get("unscored", 0), "unscored_reason": summary.get("unscored_reason")}
    result = engine.evaluate(client, prompt["id"], suite=suite["name"], version=version,
                             models=env.models or None, progress=progress, warn=warn)
    return {"run_id": result["run"]["id"], "suite": suite["name"], "reused": False,
            "pass_rate": result["pass_rate"], "score": result["score"],
            "unscored": result.get("unscored", 0), "unscored_reason": result.get("unscored_reason")}


def previous_check(client: Any, prompt: dict[str, Any], version: int, env: Environment) -> dict[str, Any]:
    """[deploy] require_previous: has `version` passed the environment before `env`?"""
    before = environment(client, env.after)
    ok = passed(client, prompt["id"], before, version)
    detail = (f"v{version} passed {before.name}" if ok else
              f"v{version} has not passed {before.name}; run `promstack deploy --prompt {prompt['id']} "
              f"--version {version} --env {before.name}` first")
    return {"check": "previous", "passed": ok, "environment": before.name, "version": version, "detail": detail}


def version_alerts(client: Any, prompt: dict[str, Any], version: int, env: str | None) -> list[dict[str, Any]]:
    """Evaluate the latency and error-rate rules (the environment's thresholds, else the
    workspace's) over this version's calls, as alerts of their own scope; returns the firing ones."""
    from ..monitoring import alerts

    ruleset = alerts.load_rules(client.store.path)
    wanted = ("latency_p95", "error_rate")
    scoped = [r for r in ruleset.rules if r.scope == f"environment:{env}" and r.name in wanted]
    base = scoped or [r for r in ruleset.rules if r.scope == "workspace" and r.name in wanted]
    scope = f"version:{prompt['name']}@v{version}" + (f":{env}" if env else "")
    rules = [alerts.Rule(r.name, scope, r.threshold, r.window, r.min_calls,
                         filters={"prompt": prompt["id"], "version": version}) for r in base]
    if not rules:
        return []
    client.flush_calls()  # this process's own calls count too
    result = alerts.evaluate(client.store.db, alerts.RuleSet(rules, ruleset.webhooks, ruleset.webhook_timeout))
    return [r for r in result["results"] if r["firing"]]


def run_gate(client: Any, prompt: dict[str, Any], version: int, env: Environment, *,
             skip: tuple[str, ...] = (), progress: Any = None, warn: Any = None,
             rerun: bool = False) -> dict[str, Any]:
    """Every check of `env` for `version`: {"passed", "checks": [{"check", "passed", "detail"}],
    "run": {"id", "reused"} (the test run the tests and score checks read, when they ran)}.
    `rerun` runs the suite afresh instead of reusing a passing run of the last day."""
    checks: list[dict[str, Any]] = []
    wanted = [c for c in env.checks if c not in skip]
    used: dict[str, Any] | None = None
    if "previous" in wanted:
        checks.append(previous_check(client, prompt, version, env))
        if not checks[-1]["passed"]:  # out of order: nothing else is worth a model call
            return {"passed": False, "checks": checks + [
                {"check": name, "passed": True, "skipped": True, "detail": "skipped with --force"} for name in skip]}
    if "tests" in wanted or "score" in wanted:
        try:
            result = _suite_result(client, prompt, version, env, progress, warn,
                                   wanted=[c for c in wanted if c in ("tests", "score")], rerun=rerun)
        except PromStackError as exc:
            for name in ("tests", "score"):
                if name in wanted:
                    checks.append({"check": name, "passed": False, "detail": f"could not run the suite: {exc}"})
        else:
            used = {"id": result["run_id"], "reused": result["reused"], "suite": result["suite"]}
            where = f"run {result['run_id']}" + (" (reused)" if result["reused"] else "")
            if "tests" in wanted:
                ok = result["pass_rate"] + 1e-12 >= env.min_pass
                checks.append({"check": "tests", "passed": ok, "run_id": result["run_id"],
                               "reused": result["reused"],
                               "value": result["pass_rate"], "threshold": env.min_pass,
                               "detail": f"suite {result['suite']!r}: pass rate {result['pass_rate']:.0%} "
                                         f"{'>=' if ok else '<'} {env.min_pass:.0%} ({where})"})
            if "score" in wanted:
                from ..evals.score import score_verdict

                ok, said = score_verdict(result, env.min_score)
                checks.append({"check": "score", "passed": ok, "run_id": result["run_id"],
                               "value": result["score"], "threshold": env.min_score,
                               "detail": f"judge {said} ({where})"})
    if "alerts" in wanted:
        previous = previous_environment(client, env)
        firing = version_alerts(client, prompt, version, previous.name if previous else None)
        checks.append({"check": "alerts", "passed": not firing,
                       "detail": "; ".join(r["message"] for r in firing) if firing
                       else f"no alert firing on v{version}" + (f" (thresholds of {previous.name})" if previous else "")})
    for name in skip:
        checks.append({"check": name, "passed": True, "skipped": True, "detail": "skipped with --force"})
    gate: dict[str, Any] = {"passed": all(c["passed"] for c in checks), "checks": checks}
    if used is not None:
        gate["run"] = used
    return gate


# ---- deploy, approve, reject, rollback --------------------------------------------------------


def _check_skip(skip: tuple[str, ...] | list[str], force: bool, env: Environment) -> tuple[str, ...]:
    unknown = [s for s in skip if s not in CHECKS]
    if unknown:
        raise InvalidInput(f"there is no gate check {unknown[0]!r}; the checks are {', '.join(CHECKS)}")
    if skip and not force:
        raise InvalidInput(f"skipping the {', '.join(skip)} check needs ", Step.arg("force", example=True),
                           " (a forced deploy is audited)")
    return tuple(env.checks) if force and not skip else tuple(skip)


def deploy(
    client: Any,
    prompt: Any,
    *,
    version: int | None = None,
    env: str | None = None,
    force: bool = False,
    skip: tuple[str, ...] | list[str] = (),
    reason: str | None = None,
    rollout: float | None = None,
    rerun: bool = False,
    progress: Callable[..., Any] | None = None,
    warn: Callable[[str], Any] | None = None,
    kind: str | None = None,
) -> dict[str, Any]:
    """Run `env`'s gate for `version` (default: the head of main) and move the label if it passes.
    `rerun` runs the suite afresh rather than reuse a passing run of the last day; `kind` names
    the way in for the deployment list ('label' when a label was set through the gate).

    Returns the deployment: status 'deployed', 'refused' (the gate said no), 'pending_approval',
    'rolling_out' (with `rollout`, a percentage of users) or 'unchanged'. Raises DeployBusy when
    another deploy of the prompt is running, NotFound/InvalidInput for bad arguments."""
    target_env = environment(client, env)
    row = prompt_row(client, prompt)
    found = client.store.prompts.get(row["id"], version=version)
    skipped = _check_skip(tuple(skip), force, target_env)
    if rollout is not None:
        from .rollout import check_percent

        rollout = check_percent(rollout)
    current = label_version(client, row["id"], target_env.name)
    if current == found.version and rollout is None:
        return {"status": "unchanged", "prompt_id": row["id"], "name": row["name"],
                "environment": target_env.name, "from_version": current, "to_version": current,
                "message": f"{target_env.name} already serves {row['name']} v{current}; nothing to do"}
    if rollout is not None and current is None:
        raise InvalidInput(f"{target_env.name} serves no version of {row['name']!r} yet: deploy one "
                           "first; a rollout shifts users from the current version to the new one")
    if rollout is not None and current == found.version:
        raise InvalidInput(f"{target_env.name} already serves v{current}; roll out another version")
    why = reason or f"deploy v{found.version} to {target_env.name}"
    deployment_id = _acquire(
        client, row, environment=target_env.name, kind=kind or ("rollout" if rollout is not None else "deploy"),
        from_version=current, to_version=found.version, status="running", forced=bool(skipped) and force,
        skipped=list(skipped), reason=reason,
    )
    try:
        gate = run_gate(client, row, found.version, target_env, skip=skipped, progress=progress, warn=warn,
                        rerun=rerun)
        if rollout is not None:
            gate["rollout"] = rollout
        db = client.store.db
        if not gate["passed"]:
            with write(db):
                rows.update_deployment(db, deployment_id, status="refused", gate=gate, decided_at=now())
                rows.release_lock(db, row["id"], deployment_id)
                audit.record(db, client.actor, "deploy_refused", prompt_id=row["id"], version=found.version,
                             detail={"deployment": deployment_id, "environment": target_env.name,
                                     "failed": [c["check"] for c in gate["checks"] if not c["passed"]]})
            return get_deployment(client, deployment_id)
        if target_env.approval:
            with write(db):
                rows.update_deployment(db, deployment_id, status="pending_approval", gate=gate)
                rows.release_lock(db, row["id"], deployment_id)
                audit.record(db, client.actor, "deploy_requested", prompt_id=row["id"], version=found.version,
                             detail={"deployment": deployment_id, "environment": target_env.name,
                                     "forced": bool(skipped), "reason": why})
            return get_deployment(client, deployment_id)
        with write(db):
            _still_holding(client, row["id"], deployment_id)
            _finish(client, row, deployment_id, target_env.name, current, found.version, gate, why,
                    skipped, rollout, approved_by=None)
            rows.release_lock(db, row["id"], deployment_id)
    except BaseException as exc:
        # release_lock only removes our own row: a lock taken over by another deploy stays.
        with contextlib.suppress(Exception):  # the original error matters more than a failed clean-up
            _release(client, row["id"], deployment_id, status="failed", decided_at=now(),
                     error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    forget(client)
    return get_deployment(client, deployment_id)


def _finish(client: Any, prompt: dict[str, Any], deployment_id: int, env: str, current: int | None,
            version: int, gate: dict[str, Any], why: str, skipped: tuple[str, ...] | list[str],
            rollout: float | None, approved_by: str | None) -> None:
    """Inside one write transaction: the label moves (or the rollout starts), the deployment row
    says so, and the audit log has the who/what/why."""
    db = client.store.db
    if current != label_version(client, prompt["id"], env):
        raise DeployBusy(f"{env} of {prompt['name']!r} moved to v{label_version(client, prompt['id'], env)} while "
                         f"the gate ran (it was v{current}); nothing was moved; deploy again")
    detail = {"deployment": deployment_id, "environment": env, "from": current, "to": version,
              "reason": why, **({"approved_by": approved_by} if approved_by else {})}
    if rollout is not None:
        from .rollout import start_split

        split_id = start_split(client, prompt, env, current, version, rollout, deployment_id)
        rows.update_deployment(db, deployment_id, status="rolling_out", gate=gate, decided_at=now(),
                               decided_by=approved_by)
        audit.record(db, client.actor, "rollout_start", prompt_id=prompt["id"], version=version,
                     detail={**detail, "percent": rollout, "split": split_id})
        return
    _end_split(client, prompt["id"], env, "superseded", f"deployment {deployment_id} moved {env} to v{version}")
    move_env_label(client, prompt, env, version, why, cleared=f"deployment {deployment_id}")
    rows.update_deployment(db, deployment_id, status="deployed", gate=gate, decided_at=now(),
                           decided_by=approved_by)
    if skipped:
        audit.record(db, client.actor, "deploy_forced", prompt_id=prompt["id"], version=version,
                     detail={**detail, "skipped": list(skipped)})
    audit.record(db, client.actor, "deploy", prompt_id=prompt["id"], version=version, detail=detail)


def approve(client: Any, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
    """Complete a deployment that waits for approval: the label moves now (or its rollout starts)."""
    found = get_deployment(client, deployment_id)
    if found["status"] != "pending_approval":
        raise InvalidInput(f"deployment {deployment_id} is {found['status']}, not waiting for approval")
    env = environment(client, found["environment"])
    if found["requested_by"] == client.actor and not env.allow_self_approval:
        raise InvalidInput(
            f"{client.actor} asked for deployment {deployment_id}; someone else must approve it "
            f"(or set allow_self_approval = true in [environments.{env.name}])"
        )
    row = prompt_row(client, found["prompt_id"])
    db = client.store.db
    with write(db):
        lock = rows.lock_holder(db, row["id"])
        if lock is not None and not _lock_is_stale(lock):
            raise DeployBusy(f"prompt {row['name']!r} is being deployed by {lock['holder']} (deployment "
                             f"{lock['deployment_id']}); approve when it has finished")
        why = reason or found["reason"] or f"deploy v{found['to_version']} to {env.name}"
        _finish(client, row, deployment_id, env.name, found["from_version"], found["to_version"], found["gate"],
                why, found["skipped"], found["gate"].get("rollout"), approved_by=client.actor)
        audit.record(db, client.actor, "deploy_approve", prompt_id=row["id"], version=found["to_version"],
                     detail={"deployment": deployment_id, "environment": env.name, "reason": why})
    forget(client)
    return get_deployment(client, deployment_id)


def reject(client: Any, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
    found = get_deployment(client, deployment_id)
    if found["status"] != "pending_approval":
        raise InvalidInput(f"deployment {deployment_id} is {found['status']}, not waiting for approval")
    db = client.store.db
    with write(db):
        rows.update_deployment(db, deployment_id, status="rejected", decided_by=client.actor, decided_at=now(),
                               error=reason)
        audit.record(db, client.actor, "deploy_reject", prompt_id=found["prompt_id"], version=found["to_version"],
                     detail={"deployment": deployment_id, "reason": reason})
    return get_deployment(client, deployment_id)


def rollback(client: Any, prompt: Any, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """Put `env` back on the version it served before its last deployment, in one step (no gate:
    this is the way out). A rollout or A/B test running there ends."""
    target_env = environment(client, env)
    row = prompt_row(client, prompt)
    db = client.store.db
    with write(db):
        current = label_version(client, row["id"], target_env.name)
        split = _end_split(client, row["id"], target_env.name, "halted", "rolled back")
        if split is not None and split["detail"].get("deployment") is not None:  # a rollout's deployment
            rows.update_deployment(db, split["detail"]["deployment"], status="rolled_back")
        last = next((d for d in rows.deployments(db, prompt_id=row["id"], environment=target_env.name, limit=200)
                     if d["status"] == "deployed" and d["kind"] != "rollback"
                     and d["to_version"] == current and d["from_version"] is not None), None)
        if last is not None:
            previous = last["from_version"]
        else:
            moved = db.execute(
                "SELECT from_version FROM label_history WHERE prompt_id = ? AND label = ? ORDER BY id DESC LIMIT 1",
                [row["id"], target_env.name],
            ).fetchone()
            previous = moved[0] if moved else None
        if current is None:
            raise NotFound(f"{target_env.name} serves no version of {row['name']!r}; nothing to roll back")
        if previous is None or previous == current:
            if split is not None:  # a rollout or A/B test was the change: ending it is the rollback
                previous = current
            else:
                raise InvalidInput(f"{target_env.name} of {row['name']!r} has served only v{current}; "
                                   "there is no earlier version to go back to")
        why = reason or f"roll back {target_env.name} to v{previous}"
        deployment_id = rows.insert_deployment(
            db, prompt_id=row["id"], environment=target_env.name, kind="rollback", from_version=current,
            to_version=previous, status="deployed", reason=why, requested_by=client.actor, decided_at=now(),
        )
        if last is not None:
            rows.update_deployment(db, last["id"], status="rolled_back")
        if previous != current:
            move_env_label(client, row, target_env.name, previous, why, cleared=f"rollback {deployment_id}")
        audit.record(db, client.actor, "deploy_rollback", prompt_id=row["id"], version=previous,
                     detail={"deployment": deployment_id, "environment": target_env.name, "from": current,
                             "to": previous, "reason": why, **({"split": split["id"]} if split else {})})
    forget(client)
    return get_deployment(client, deployment_id)


def get_deployment(client: Any, deployment_id: int) -> dict[str, Any]:
    found = rows.deployment(client.store.db, int(deployment_id))
    if found is None:
        raise NotFound(f"there is no deployment {deployment_id}; ", Step("list_deployments"), " shows them")
    found["name"] = client.store.prompts._prompt_row(found["prompt_id"], archived_ok=True)["name"]  # noqa: SLF001
    return found


def list_deployments(client: Any, prompt: Any = None, *, env: str | None = None, status: str | None = None,
                     limit: int = 20) -> list[dict[str, Any]]:
    pid = client.store.prompts.prompt_id(prompt) if prompt is not None else None
    return rows.deployments(client.store.db, prompt_id=pid, environment=env, status=status, limit=limit)


def status(client: Any, prompt: Any) -> dict[str, Any]:
    """Which version each environment serves, and any split running there."""
    row = prompt_row(client, prompt)
    out = []
    for env in environments(client):
        split = rows.active_split(client.store.db, row["id"], env.name)
        out.append({"environment": env.name, "version": label_version(client, row["id"], env.name),
                    "checks": env.checks, "approval": env.approval, "split": split})
    return {"prompt_id": row["id"], "name": row["name"], "environments": out}


# ---- resolution: label -> version, with A/B arms and rollouts ---------------------------------


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

    def __init__(self, client: Any, ttl: float | None = None):
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
        row = prompt_row(self.client, prompt)
        version = label_version(self.client, row["id"], label)
        split = rows.active_split(self.client.store.db, row["id"], label)
        if split is not None and split["kind"] == "rollout" and split["id"] not in self._checked:
            from .rollout import auto_check

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
            in_b = user_id is not None and bucket(split["salt"], str(user_id)) < split["percent"]
            if split["kind"] == "ab":
                if user_id is None and version is not None:
                    return Resolution(row["id"], label, version)
                arm = "b" if in_b else "a"
                return Resolution(row["id"], label, split[f"version_{arm}"], arm, split["id"], "ab")
            arm = "new" if in_b else "stable"
            return Resolution(row["id"], label, split["version_b"] if in_b else split["version_a"], arm,
                              split["id"], "rollout")
        if version is None:
            self.client.store.prompts._label_target(row, label)  # noqa: SLF001 - raises its NotFound
        return Resolution(row["id"], label, version)

    def get(self, prompt: Any, label: str, user_id: str | None = None) -> Any:
        """The PromptVersion `user_id` is served under `label`."""
        found = self.resolve(prompt, label, user_id)
        key = (found.prompt_id, found.version)
        with self._lock:
            cached = self._versions.get(key)
        if cached is None:
            cached = self.client.store.prompts.get(found.prompt_id, version=found.version)
            with self._lock:
                self._versions[key] = cached
        return cached


def resolver_for(client: Any) -> Resolver:
    return client.resolver
