"""A/B tests in staging: two versions, users split between them by a stable hash of their id.

    promstack ab start --prompt 42 --a 3 --b 4 --split 50     # 50% of users get B
    promstack ab report --prompt 42                           # latency, errors, cost, judge score
    promstack ab stop --prompt 42 --winner b                  # staging serves B; the test ends

While a test runs, `get_prompt(42, label="staging", user_id=...)` (SDK and REST) serves each user
their arm (promstack.deploy.resolver.Resolver); without a user id it serves what the label points at.

In a gated environment a test puts B in front of real users, so `start` runs the environment's
gate for each arm the environment does not already serve and refuses when one fails; `stop`
with a winner moves the label only for a version that passed (or a test forced with a reason).

Which calls belong to which arm: the two arms are two versions, and the call log records the
version of every call, so the report counts the test's calls by `prompt_version` between its
start and its end, in its environment (`PROMSTACK_ENV=staging` in the staging app; when no call
carries that environment, calls from every environment are counted and the report says so).
The judge score per arm comes from each version's latest finished test run of the prompt's
suite (`ab report --evaluate` runs the missing ones).

Tests: latency by Mann-Whitney U (latencies are skewed), cost and judge score by Welch's t,
error rate by a two-proportion z-test; alpha 0.05, two-sided.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from store import audit
from store import deploy as rows
from store.clock import now
from store.db import write
from store.errors import InvalidInput, NotFound, Step

from .checks import run_gate
from .environments import (
    environment,
    environments,
    forget,
    gated_environment,
    label_version,
    move_env_label,
    need_reason,
    passed,
)
from .results import GateFailed

if TYPE_CHECKING:
    from ..client import Client

ALPHA = 0.05
DEFAULT_ENV = "staging"
MIN_SAMPLES = 5
# name, lower is better, shown as
METRICS = (("score", False, "score"), ("latency", True, "latency"), ("error_rate", True, "error rate"),
           ("cost", True, "cost"))


@dataclass
class Arm:
    latencies: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    errors: int = 0
    calls: int = 0
    scores: list[float] = field(default_factory=list)


def _env(client: Client, env: str | None) -> str:
    names = [e.name for e in environments(client)]
    return environment(client, env or (DEFAULT_ENV if DEFAULT_ENV in names else None)).name


def start(client: Client, prompt: Any, *, a: int | None = None, b: int, split: float = 50,
          env: str | None = None, reason: str | None = None, force: bool = False, rerun: bool = False,
          progress: Any = None, warn: Any = None) -> dict[str, Any]:
    """Start serving B to `split`% of users (and A to the rest) under `env`'s label. In a gated
    environment each arm it does not serve yet must pass its gate first (GateFailed names the
    failing checks and the run they used); `force` with a reason skips that, audited."""
    target = _env(client, env)
    row = client.store.prompts.prompt_row(prompt)
    if a is None:
        a = label_version(client, row["id"], target)
        if a is None:
            raise InvalidInput(f"{target} serves no version of {row['name']!r}: give ", Step.arg("a"),
                               " as well as ", Step.arg("b"))
    va = client.store.prompts.get(row["id"], version=a).version
    vb = client.store.prompts.get(row["id"], version=b).version
    if va == vb:
        raise InvalidInput(f"A and B are both v{va}; an A/B test compares two different versions")
    if isinstance(split, bool) or not isinstance(split, int | float) or not 0 < split < 100:
        raise InvalidInput(Step.arg("split"), f" is the percentage of users who get B, above 0 and below 100; "
                           f"got {split!r}")
    gated = gated_environment(client, target)
    gates: dict[str, Any] = {}
    if gated is not None and force:
        reason = need_reason(target, reason)
    elif gated is not None:
        serving = label_version(client, row["id"], target)
        for arm, version in (("a", va), ("b", vb)):
            if version == serving:
                continue  # the environment serves it already
            if gated.approval and not passed(client, row["id"], gated, version):
                raise InvalidInput(f"{target} needs a person's approval for each version it serves, and "
                                   f"v{version} (arm {arm.upper()}) has none there: deploy it to {target} first, "
                                   "or start the test forced with a reason")
            gate = run_gate(client, row, version, gated, rerun=rerun, progress=progress, warn=warn)
            gates[arm] = gate
            if not gate["passed"]:
                failed = "; ".join(c["detail"] for c in gate["checks"] if not c["passed"])
                raise GateFailed(f"v{version} (arm {arm.upper()}) did not pass the {target} gate: {failed}; "
                                 "no A/B test was started")
    detail: dict[str, Any] = {"reason": reason} if reason else {}
    if gates:
        detail["gates"] = gates
    if gated is not None and force:
        detail["forced"] = True
    db = client.store.db
    with write(db):
        found = rows.active_split(db, row["id"], target)
        if found is not None:
            what = "an A/B test" if found["kind"] == "ab" else "a rollout"
            stop = Step("stop_ab_test" if found["kind"] == "ab" else "abort_rollout", prompt=row["id"])
            raise InvalidInput(f"{what} (id {found['id']}) of {row['name']!r} is running in {target}; "
                               "stop it first (", stop, ")")
        split_id = rows.insert_split(
            db, prompt_id=row["id"], environment=target, kind="ab", version_a=va, version_b=vb,
            percent=float(split), salt=secrets.token_hex(8), status="active", started_by=client.actor,
            detail=detail,
        )
        if detail.get("forced"):
            audit.record(db, client.actor, "deploy_forced", prompt_id=row["id"], version=vb,
                         detail={"split": split_id, "environment": target, "a": va, "b": vb, "reason": reason,
                                 "skipped": gated.checks, "via": "ab start"})
        audit.record(db, client.actor, "ab_start", prompt_id=row["id"], version=vb,
                     detail={"split": split_id, "environment": target, "a": va, "b": vb, "percent_b": split,
                             **({"forced": True, "reason": reason} if detail.get("forced") else {})})
    forget(client)
    return {**rows.split(db, split_id), "name": row["name"]}  # type: ignore[dict-item]


def _find(client: Client, prompt: Any, env: str | None, *, active_only: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    target = _env(client, env)
    row = client.store.prompts.prompt_row(prompt)
    found = rows.active_split(client.store.db, row["id"], target)
    if found is None or found["kind"] != "ab":
        found = None if active_only else next(
            (s for s in rows.splits(client.store.db, prompt_id=row["id"], kind="ab") if s["environment"] == target), None)
    if found is None:
        raise NotFound(f"no A/B test of {row['name']!r} is {'running' if active_only else 'recorded'} in {target}; "
                       "start one with ", Step("start_ab_test", prompt=row["id"]))
    return row, found


def _winner_cleared(client: Client, row: dict[str, Any], split: dict[str, Any], arm: str) -> dict[str, Any] | None:
    """Why the winner may take a gated environment's label: the gate it passed when the test
    started, a test forced with a reason, or a deployment there that passed. None: it did not."""
    env = gated_environment(client, split["environment"])
    version = split[f"version_{arm}"]
    if env is None:
        return {"ab_test": split["id"]}
    gate = split["detail"].get("gates", {}).get(arm)
    if gate is not None and gate.get("passed"):
        return {"ab_test": split["id"], **gate}
    if split["detail"].get("forced"):
        return {"ab_test": split["id"], "forced_at_start": True, "passed": False, "checks": []}
    if passed(client, row["id"], env, version):
        return {"ab_test": split["id"], "passed": True, "checks": [],
                "detail": f"v{version} reached {env.name} through its gate before"}
    return None


def stop(client: Client, prompt: Any, *, winner: str | None = None, env: str | None = None,
         reason: str | None = None, force: bool = False) -> dict[str, Any]:
    """End the test; with a winner ('a' or 'b') the environment's label moves to it (recorded
    as a deployment, with the label's history and audit rows), in the same transaction. In a
    gated environment the winner must have passed the gate (at `start`, or deployed there
    before); else GateFailed, unless `force` with a reason (a forced deployment, audited)."""
    if winner is not None and winner.lower() not in ("a", "b"):
        raise InvalidInput(Step.arg("winner"), f" is a or b, not {winner!r} (leave it out to stop without a winner)")
    row, split = _find(client, prompt, env, active_only=True)
    gate: dict[str, Any] | None = {"ab_test": split["id"]}
    forced = False
    if winner:
        arm = winner.lower()
        version = split[f"version_{arm}"]
        before = label_version(client, row["id"], split["environment"])
        gate = _winner_cleared(client, row, split, arm) if before != version else {"ab_test": split["id"]}
        if gate is None and not force:
            raise GateFailed(f"v{version} (arm {arm.upper()}) has not passed the {split['environment']} gate, so "
                             f"it cannot take {split['environment']}'s label; deploy it through the gate, or stop "
                             "the test forced with a reason; the test is still running")
        if gate is None:
            reason = need_reason(split["environment"], reason)
            gate = {"ab_test": split["id"], "passed": False, "checks": []}
        forced = bool(gate.get("forced_at_start")) or force and gate.get("passed") is False
    db = client.store.db
    with write(db):
        current = rows.split(db, split["id"])
        if current is None or current["status"] != "active":
            raise InvalidInput(f"A/B test {split['id']} was stopped meanwhile")
        outcome = f"winner {winner.lower()}" if winner else "stopped without a winner"
        rows.update_split(db, split["id"], status="stopped", ended_at=now(), ended_by=client.actor, outcome=outcome)
        deployment_id = None
        if winner:
            version = split[f"version_{winner.lower()}"]
            before = label_version(client, row["id"], split["environment"])
            why = reason or f"A/B test {split['id']}: {winner.upper()} (v{version}) won"
            deployment_id = rows.insert_deployment(
                db, prompt_id=row["id"], environment=split["environment"], kind="ab_winner",
                from_version=before, to_version=version, status="deployed", reason=why,
                requested_by=client.actor, decided_at=now(), gate=gate, forced=forced,
            )
            if forced:
                audit.record(db, client.actor, "deploy_forced", prompt_id=row["id"], version=version,
                             detail={"deployment": deployment_id, "environment": split["environment"],
                                     "from": before, "to": version, "reason": why, "split": split["id"],
                                     "via": "ab stop"})
            if before != version:
                move_env_label(client, row, split["environment"], version, why, cleared=f"deployment {deployment_id}")
        audit.record(db, client.actor, "ab_stop", prompt_id=row["id"], version=split["version_b"],
                     detail={"split": split["id"], "environment": split["environment"], "outcome": outcome,
                             **({"deployment": deployment_id} if deployment_id else {})})
    forget(client)
    return {**rows.split(db, split["id"]), "name": row["name"], "deployment": deployment_id}  # type: ignore[dict-item]


# ---- the report -------------------------------------------------------------------------------


def _collect(client: Client, split: dict[str, Any]) -> tuple[dict[str, Arm], str | None]:
    client.flush_calls()
    db = client.store.db
    where = "prompt_id = ? AND prompt_version IN (?, ?) AND timestamp >= ? AND status != 'blocked'"
    params: list[Any] = [split["prompt_id"], split["version_a"], split["version_b"], split["started_at"]]
    if split["ended_at"]:
        where += " AND timestamp <= ?"
        params.append(split["ended_at"])
    note = None
    in_env = db.execute(f"SELECT count(*) FROM calls WHERE {where} AND environment = ?",
                        [*params, split["environment"]]).fetchone()[0]
    if in_env:
        where += " AND environment = ?"
        params.append(split["environment"])
    else:
        note = (f"no call was logged with environment {split['environment']!r}; calls from every environment "
                f"are counted (set PROMSTACK_ENV={split['environment']} in the {split['environment']} app)")
    arms = {"a": Arm(), "b": Arm()}
    version_arm = {split["version_a"]: "a", split["version_b"]: "b"}
    for version, status, latency, cost in db.execute(
        f"SELECT prompt_version, status, latency_ms, cost_usd FROM calls WHERE {where}", params
    ):
        arm = arms[version_arm[version]]
        arm.calls += 1
        if status == "error":
            arm.errors += 1
        else:
            arm.latencies.append(float(latency))
            arm.costs.append(float(cost))
    return arms, note


def _scores(client: Client, prompt_id: int, version: int, evaluate: bool) -> tuple[list[float], str | None]:
    from ..evals import engine

    try:
        suite = engine.suite_for_prompt(client, prompt_id)
    except Exception as exc:  # no suite: the report says so and compares the calls
        return [], str(exc)
    run = client.store.db.execute(
        "SELECT id FROM runs WHERE kind = 'test' AND status = 'done' AND prompt_id = ? AND prompt_version = ? "
        "AND suite_name = ? ORDER BY started_at DESC LIMIT 1", [prompt_id, version, suite["name"]],
    ).fetchone()
    run_id = run[0] if run else None
    if run_id is None and evaluate:
        run_id = engine.evaluate(client, prompt_id, suite=suite["name"], version=version)["run"]["id"]
    if run_id is None:
        return [], f"v{version} has no finished run of suite {suite['name']!r} (ab report --evaluate runs it)"
    values = [r[0] for r in client.store.db.execute(
        "SELECT score FROM results WHERE run_id = ? AND score IS NOT NULL", [run_id])]
    return [float(v) for v in values], None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare(a: Arm, b: Arm, *, alpha: float = ALPHA) -> dict[str, Any]:
    """Each metric's means, test, p-value and which arm is better (None: not significant)."""
    from scipy import stats

    out: dict[str, Any] = {}

    def numeric(name: str, xa: list[float], xb: list[float], test: str) -> None:
        item = {"a": _mean(xa), "b": _mean(xb), "n_a": len(xa), "n_b": len(xb), "test": test, "p": None,
                "better": None, "significant": False}
        if len(xa) >= MIN_SAMPLES and len(xb) >= MIN_SAMPLES:
            if test == "mann-whitney":
                p = stats.mannwhitneyu(xa, xb, alternative="two-sided").pvalue
            elif len(set(xa)) == 1 and len(set(xb)) == 1:  # no variance: equal or certainly different
                p = 1.0 if xa[0] == xb[0] else 0.0
            else:
                p = stats.ttest_ind(xa, xb, equal_var=False).pvalue
            item["p"] = None if p is None or math.isnan(p) else float(p)
        out[name] = item

    numeric("score", a.scores, b.scores, "welch-t")
    numeric("latency", a.latencies, b.latencies, "mann-whitney")
    # error rate: two-proportion z-test
    item = {"a": a.errors / a.calls if a.calls else None, "b": b.errors / b.calls if b.calls else None,
            "n_a": a.calls, "n_b": b.calls, "test": "two-proportion-z", "p": None, "better": None,
            "significant": False}
    if a.calls >= MIN_SAMPLES and b.calls >= MIN_SAMPLES:
        pooled = (a.errors + b.errors) / (a.calls + b.calls)
        se = math.sqrt(pooled * (1 - pooled) * (1 / a.calls + 1 / b.calls))
        if se == 0:
            item["p"] = 1.0
        else:
            z = (item["a"] - item["b"]) / se
            item["p"] = float(2 * stats.norm.sf(abs(z)))
    out["error_rate"] = item
    numeric("cost", a.costs, b.costs, "welch-t")
    for name, lower_better, _shown in METRICS:
        item = out[name]
        if item["p"] is not None and item["p"] < alpha and item["a"] != item["b"]:
            b_lower = item["b"] < item["a"]
            item["better"] = "b" if b_lower == lower_better else "a"
            item["significant"] = True
    return out


def verdict(results: dict[str, Any]) -> str:
    """One sentence: "B is better on score, p=0.010; not significant on latency (p=0.41) ..."."""
    better, flat, thin = [], [], []
    for name, _lower, shown in METRICS:
        item = results[name]
        if item["p"] is None:
            thin.append(shown)
        elif item["significant"]:
            better.append(f"{item['better'].upper()} is better on {shown}, p={_p(item['p'])}")
        else:
            flat.append(f"{shown} (p={_p(item['p'])})")
    parts = list(better)
    if flat:
        parts.append("not significant on " + ", ".join(flat))
    if thin:
        parts.append(f"too little data for {', '.join(thin)} (fewer than {MIN_SAMPLES} per arm)")
    sentence = "; ".join(parts) + "."
    return sentence[0].upper() + sentence[1:]


def recommendation(results: dict[str, Any]) -> str | None:
    wins = {item["better"] for item in results.values() if item["significant"]}
    if wins == {"b"}:
        return "b"
    if wins == {"a"}:
        return "a"
    return None


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def report(client: Client, prompt: Any, *, env: str | None = None, evaluate: bool = False) -> dict[str, Any]:
    """The running (else the latest) A/B test of `prompt` in `env`, compared arm by arm."""
    row, split = _find(client, prompt, env, active_only=False)
    arms, note = _collect(client, split)
    notes = [note] if note else []
    for arm in ("a", "b"):
        scores, why = _scores(client, row["id"], split[f"version_{arm}"], evaluate)
        arms[arm].scores = scores
        if why:
            notes.append(why)
    results = compare(arms["a"], arms["b"])
    pick = recommendation(results)
    return {
        "split": split, "name": row["name"], "environment": split["environment"],
        "a": {"version": split["version_a"], "calls": arms["a"].calls, "errors": arms["a"].errors},
        "b": {"version": split["version_b"], "calls": arms["b"].calls, "errors": arms["b"].errors},
        "metrics": results, "verdict": verdict(results), "recommend": pick, "notes": list(dict.fromkeys(notes)),
        "alpha": ALPHA,
    }
