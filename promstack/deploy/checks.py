"""The gate's checks: what `run_gate` asks of a version before it may reach an environment.

`previous` (with [deploy] require_previous: the version passed the environment before),
`tests` (the suite's pass rate at least `min_pass`), `score` (the judge's score at least
`min_score`) and `alerts` (no latency or error-rate alert firing on the version's calls).
The tests and score checks read one test run: a passing run of exactly this version, suite,
judge and models from the last day is reused (CI just ran it), else the suite runs now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from store.errors import PromStackError

from .environments import Environment, environment, passed, previous_environment

if TYPE_CHECKING:
    from ..client import Client

RUN_REUSE = timedelta(hours=24)
SUITE_CHECKS = ("tests", "score")


def suite_checks(result: dict[str, Any], env: Environment, wanted: list[str]) -> list[dict[str, Any]]:
    """The tests and score checks (those `wanted`) of one test run's result {"run_id",
    "reused", "suite", "pass_rate", "score", "unscored", "unscored_reason"}: the one rule
    for a fresh run and for a run the gate would reuse."""
    from ..evals.score import score_verdict

    out = []
    where = f"run {result['run_id']}" + (" (reused)" if result["reused"] else "")
    if "tests" in wanted:
        rate = result.get("pass_rate") or 0.0
        ok = rate + 1e-12 >= (env.min_pass or 0.0)
        out.append({"check": "tests", "passed": ok, "run_id": result["run_id"], "reused": result["reused"],
                    "value": rate, "threshold": env.min_pass,
                    "detail": f"suite {result['suite']!r}: pass rate {rate:.0%} "
                              f"{'>=' if ok else '<'} {env.min_pass or 0:.0%} ({where})"})
    if "score" in wanted:
        ok, said = score_verdict(result, env.min_score or 0)
        out.append({"check": "score", "passed": ok, "run_id": result["run_id"], "value": result.get("score"),
                    "threshold": env.min_score, "detail": f"judge {said} ({where})"})
    return out


def _reusable_run(client: Client, prompt_id: int, version: int, suite: dict[str, Any], env: Environment,
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
        summary = engine.get_run(client, run_id)["summary"]
        if not summary.get("complete", True) or not summary.get("results"):
            continue
        if all(c["passed"] for c in suite_checks({**summary, "run_id": run_id, "reused": True,
                                                  "suite": suite["name"]}, env, wanted)):
            return run_id
    return None


def _suite_result(client: Client, prompt: dict[str, Any], version: int, env: Environment,
                  progress: Any, warn: Any, *, wanted: list[str], rerun: bool = False) -> dict[str, Any]:
    from ..evals import engine
    from ..evals.score import run_score

    suite = engine.get_suite(client, env.suite) if env.suite else engine.suite_for_prompt(client, prompt["id"])
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


def previous_check(client: Client, prompt: dict[str, Any], version: int, env: Environment) -> dict[str, Any]:
    """[deploy] require_previous: has `version` passed the environment before `env`?"""
    before = environment(client, env.after)
    ok = passed(client, prompt["id"], before, version)
    # The stored detail keeps the words it always had (machine output is stable); every face
    # words this check through promstack.deploy.results.check_text instead.
    detail = (f"v{version} passed {before.name}" if ok else
              f"v{version} has not passed {before.name}; run `promstack deploy --prompt {prompt['id']} "
              f"--version {version} --env {before.name}` first")
    return {"check": "previous", "passed": ok, "environment": before.name, "version": version, "detail": detail}


def version_alerts(client: Client, prompt: dict[str, Any], version: int, env: str | None) -> list[dict[str, Any]]:
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


def _skipped(skip: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"check": name, "passed": True, "skipped": True, "detail": "skipped with --force"} for name in skip]


def run_gate(client: Client, prompt: dict[str, Any], version: int, env: Environment, *,
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
            return {"passed": False, "checks": checks + _skipped(skip)}
    suite_wanted = [c for c in wanted if c in SUITE_CHECKS]
    if suite_wanted:
        try:
            result = _suite_result(client, prompt, version, env, progress, warn, wanted=suite_wanted, rerun=rerun)
        except PromStackError as exc:
            checks += [{"check": name, "passed": False, "detail": f"could not run the suite: {exc}"}
                       for name in suite_wanted]
        else:
            used = {"id": result["run_id"], "reused": result["reused"], "suite": result["suite"]}
            checks += suite_checks(result, env, suite_wanted)
    if "alerts" in wanted:
        previous = previous_environment(client, env)
        firing = version_alerts(client, prompt, version, previous.name if previous else None)
        checks.append({"check": "alerts", "passed": not firing,
                       "detail": "; ".join(r["message"] for r in firing) if firing
                       else f"no alert firing on v{version}" + (f" (thresholds of {previous.name})" if previous else "")})
    checks += _skipped(skip)
    gate: dict[str, Any] = {"passed": all(c["passed"] for c in checks), "checks": checks}
    if used is not None:
        gate["run"] = used
    return gate
