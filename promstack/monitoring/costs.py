"""Cost optimisation: where the money goes, which model is good enough for less, and what a
shorter prompt saves.

- `cost_report`: spend by prompt, model, environment or user over a window, each group with the
  previous window of the same length (the trend), plus the daily series.
Spend is split (`monitor.EVALUATION_SQL`, one definition): the report's groups and totals are the
prompts' own traffic; test, arena and judge calls are reported apart as evaluation spend. A call
whose model has no price has an unknown cost: every total carries how many such calls it could
not count and their models (`unpriced`), never a silent $0.

- `recommend_model`: the guide's "작업 복잡도별 추천 모델" table as a measured answer for one
  prompt: among the models tested on its suite (test runs; arena runs when there are none), the
  cheapest whose score is within `tolerance` points (0-100) of the best, priced at the prompt's
  current traffic, with the projected monthly saving against the model in use.
- `version_tokens`, `compare_versions`: tokens of each version with the model's tokenizer and the
  cost difference of two versions at current traffic ("30% shorter = 30% cheaper", measured:
  the input side scales with the prompt, the output side does not).
- `suggest_shorter`: asks a model (through the gateway) for a shorter rewrite, saves it as a
  version on a branch (main never moves), runs the prompt's suite on it and on the current
  version, and says whether the rewrite keeps the score. Adopting it is a merge a person does.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from store.errors import InvalidInput, NotFound, Step

from .. import config as config_module
from ..gateway import pricing
from ..gateway.tokens import count_tokens, tokenizer_name
from . import call_metrics as monitor

DAYS_PER_MONTH = 30
DEFAULT_TOLERANCE = 2.0  # score points out of 100


# ---- the report -------------------------------------------------------------------------------


def _spend(db: sqlite_utils.Database, win: monitor.Window, keys: list[tuple[str, str]],
           filters: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    where, params = monitor.filters_sql(db, win, **filters)
    exprs = [e for _, e in keys]
    select = "".join(f"{e}, " for e in exprs)
    group = f" GROUP BY {', '.join(exprs)}" if exprs else ""
    sql = (f"SELECT {select}COUNT(*), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens), 0), "
           f"COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_hit != 0), 0), "
           f"{monitor.UNPRICED_SQL} FROM calls WHERE {where}{group}")
    n = len(exprs)
    out = {}
    for row in db.execute(sql, params).fetchall():
        if row[n] == 0:
            continue
        out[tuple(row[:n])] = {"requests": row[n], "cost_usd": float(row[n + 1]),
                               "input_tokens": int(row[n + 2]), "output_tokens": int(row[n + 3]),
                               "cache_hits": int(row[n + 4]),
                               **monitor.unpriced_fields(int(row[n + 5]), monitor.split_models(row[n + 6]))}
    return out


def _sum_unpriced(groups: Any) -> dict[str, Any]:
    groups = list(groups)
    return monitor.unpriced_fields(sum(g["unpriced_calls"] for g in groups),
                                   sorted({m for g in groups for m in g["unpriced_models"]}))


# What kind of evaluation a call belongs to, for the evaluation side of the report.
_EVAL_KIND = (
    f"CASE WHEN {monitor.INTERNAL_SQL} THEN 'judge' "
    "ELSE COALESCE((SELECT kind FROM runs WHERE runs.id = calls.run_id), 'test') END"
)


def _change(now: float, before: float) -> float | None:
    return None if not before else (now - before) / before


def cost_report(
    db: sqlite_utils.Database,
    *,
    since: Any = "30d",
    until: Any = None,
    by: str | list[str] | None = "prompt",
    now: datetime | None = None,
    **filters: Any,
) -> dict[str, Any]:
    """Spend per group in [since, until) and in the window of the same length before it."""
    win = monitor.window(since, until, now=now)
    if win.since is None:
        raise InvalidInput("a cost report needs a window with a start, such as ", Step.arg("since", example="30d"))
    length = win.until - win.since
    previous = monitor.Window(win.since - length, win.since)
    groups = monitor.parse_groups(by)
    keys = monitor._keys(groups)
    names = [n for n, _ in keys]
    filters = {k: v for k, v in filters.items() if k not in ("traffic", "unpriced")}
    current = _spend(db, win, keys, {**filters, "traffic": "own"})
    before = _spend(db, previous, keys, {**filters, "traffic": "own"})
    total = sum(g["cost_usd"] for g in current.values())
    total_before = sum(g["cost_usd"] for g in before.values())
    evaluation = _spend(db, win, [("kind", _EVAL_KIND)], {**filters, "traffic": "evaluation"})
    evaluation_before = _spend(db, previous, [], {**filters, "traffic": "evaluation"})
    prompt_names = monitor._prompt_names(db) if "prompt_id" in names else {}
    rows = []
    for key in set(current) | set(before):
        now_g = current.get(key, {"requests": 0, "cost_usd": 0.0, "input_tokens": 0,
                                  "output_tokens": 0, "cache_hits": 0, **monitor.unpriced_fields(0, [])})
        was = before.get(key, {}).get("cost_usd", 0.0)
        item: dict[str, Any] = dict(zip(names, key, strict=True))
        if "prompt_id" in item:
            item["prompt_name"] = prompt_names.get(item["prompt_id"])
        item.update(now_g)
        item["share"] = now_g["cost_usd"] / total if total else 0.0
        item["previous_cost_usd"] = was
        item["change"] = _change(now_g["cost_usd"], was)
        item["trend"] = _trend(now_g["cost_usd"], was)
        rows.append(item)
    rows.sort(key=lambda r: (-r["cost_usd"], -r["previous_cost_usd"], [str(r[k]) for k in names]))
    daily = _spend(db, win, monitor._keys(["day"]), {**filters, "traffic": "own"})
    daily_eval = _spend(db, win, monitor._keys(["day"]), {**filters, "traffic": "evaluation"})
    eval_total = sum(g["cost_usd"] for g in evaluation.values())
    return {
        "since": win.since_iso, "until": win.until_iso,
        "previous": {"since": previous.since_iso, "until": previous.until_iso},
        "by": groups,
        # the prompts' own spend: test, arena and judge calls are in "evaluation" below
        "total_usd": total, "previous_total_usd": total_before,
        "change": _change(total, total_before), "trend": _trend(total, total_before),
        **_sum_unpriced(current.values()),
        "groups": rows,
        "daily": [{"day": day, "cost_usd": daily.get((day,), {}).get("cost_usd", 0.0),
                   "requests": daily.get((day,), {}).get("requests", 0),
                   "evaluation_cost_usd": daily_eval.get((day,), {}).get("cost_usd", 0.0)}
                  for (day,) in sorted(set(daily) | set(daily_eval))],
        "evaluation": {
            "cost_usd": eval_total,
            "previous_cost_usd": sum(g["cost_usd"] for g in evaluation_before.values()),
            "requests": sum(g["requests"] for g in evaluation.values()),
            "by_kind": {k[0]: {"cost_usd": g["cost_usd"], "requests": g["requests"]}
                        for k, g in sorted(evaluation.items())},
            **_sum_unpriced(evaluation.values()),
        },
    }


def _trend(now: float, before: float) -> str:
    if not before:
        return "new" if now else "flat"
    ratio = (now - before) / before
    if ratio > 0.05:
        return "up"
    if ratio < -0.05:
        return "down"
    return "flat"


# ---- tokens: the gateway's one counter ----------------------------------------------------------


def template_text(template: Any) -> str:
    if isinstance(template, str):
        return template
    return "\n".join(str(m.get("content") or "") for m in template)


def version_tokens(client: Any, prompt: Any, *, model: str | None = None) -> dict[str, Any]:
    """Tokens of every version's template (variables unfilled), with its model's tokenizer."""
    history = client.history(prompt)
    if not history:
        raise NotFound(f"prompt {prompt!r} has no versions")
    rows = []
    for v in sorted(history, key=lambda v: v.version):
        used = model or v.model_config.get("model")
        text = template_text(v.template)
        rows.append({"version": v.version, "branch": v.branch, "model": used,
                     "tokenizer": tokenizer_name(used), "tokens": count_tokens(text, used),
                     "characters": len(text), "message": v.message})
    return {"prompt_id": history[0].prompt_id, "prompt_name": history[0].name, "versions": rows}


# ---- traffic ------------------------------------------------------------------------------------


def traffic(db: sqlite_utils.Database, prompt_id: int, *, days: int = DAYS_PER_MONTH,
            version: int | None = None, now: datetime | None = None,
            prefer_model: str | None = None) -> dict[str, Any]:
    """The prompt's paid production calls (its own traffic, `monitor.OWN_SQL`: no test, arena or
    judge call; served, not cache hits) over the last `days`, scaled to a month."""
    now = now or datetime.now(UTC)
    since = monitor.iso(now - timedelta(days=days))
    where = ("prompt_id = ? AND timestamp >= ? AND timestamp < ? AND status != 'blocked' AND cache_hit = 0 "
             f"AND {monitor.OWN_SQL}")
    params: list[Any] = [prompt_id, since, monitor.iso(now)]
    if version is not None:
        where += " AND prompt_version = ?"
        params.append(version)
    calls, tin, tout, cost, unpriced, unpriced_models = db.execute(
        f"SELECT COUNT(*), AVG(input_tokens), AVG(output_tokens), COALESCE(SUM(cost_usd), 0), "
        f"{monitor.UNPRICED_SQL} FROM calls WHERE {where}", params).fetchone()
    model = db.execute(
        # the model in use: the most called; on a tie, the one the prompt names
        f"SELECT model FROM calls WHERE {where} GROUP BY model "
        "ORDER BY COUNT(*) DESC, model = ? DESC, model LIMIT 1",
        [*params, prefer_model]).fetchone()
    return {
        "days": days, "calls": calls, "monthly_calls": calls * DAYS_PER_MONTH / days,
        "avg_input_tokens": float(tin or 0.0), "avg_output_tokens": float(tout or 0.0),
        "cost_usd": float(cost), "monthly_cost_usd": float(cost) * DAYS_PER_MONTH / days,
        "model": model[0] if model else None,
        **monitor.unpriced_fields(int(unpriced or 0), monitor.split_models(unpriced_models)),
    }


def per_call_cost(model: str, input_tokens: float, output_tokens: float, *,
                  config: Any = None, model_config: dict[str, Any] | None = None) -> float | None:
    """USD for one call of this shape, or None when the model has no price."""
    found = pricing.price(model, config=config, model_config=model_config)
    if found is None:
        return None
    return found.input * input_tokens + found.output * output_tokens


# ---- model recommendation -------------------------------------------------------------------


def model_scores(db: sqlite_utils.Database, prompt_id: int) -> tuple[str, list[dict[str, Any]]]:
    """Each model's score on the prompt's suite: from its latest test run (the suite of the
    prompt's latest test run), else arena win rates x 100. Returns (basis, rows)."""
    latest = db.execute(
        "SELECT suite_name FROM runs WHERE kind = 'test' AND prompt_id = ? "
        "AND EXISTS (SELECT 1 FROM results WHERE run_id = runs.id) ORDER BY started_at DESC LIMIT 1",
        [prompt_id]).fetchone()
    if latest is not None:
        rows = db.execute(
            "SELECT r.id, r.started_at, r.prompt_version, x.model, COUNT(*), AVG(COALESCE(x.score, 0)), "
            "AVG(x.status = 'pass'), AVG(x.input_tokens), AVG(x.output_tokens) "
            "FROM runs r JOIN results x ON x.run_id = r.id "
            "WHERE r.kind = 'test' AND r.prompt_id = ? AND r.suite_name = ? "
            "GROUP BY r.id, x.model ORDER BY r.started_at DESC, r.id DESC",
            [prompt_id, latest[0]]).fetchall()
        found: dict[str, dict[str, Any]] = {}
        for run_id, _started, version, model, n, score, pass_rate, tin, tout in rows:
            if model not in found:  # the newest run that tested this model
                found[model] = {"model": model, "score": round(float(score), 2),
                                "pass_rate": round(float(pass_rate), 4), "results": n,
                                "run_id": run_id, "prompt_version": version,
                                "eval_input_tokens": float(tin or 0), "eval_output_tokens": float(tout or 0)}
        return f"test runs of suite {latest[0]!r}", list(found.values())
    arena = db.execute(
        "SELECT id FROM runs WHERE kind = 'arena' AND prompt_id = ? ORDER BY started_at DESC LIMIT 1",
        [prompt_id]).fetchone()
    if arena is not None:
        from store.evals import EvalStore

        from ..evals.arena import arena_report

        report = arena_report(EvalStore(db, actor="promstack"), arena[0], resamples=0)
        rows = [{"model": m, "score": round(100 * (o.get("win_rate") or 0), 2), "pass_rate": None,
                 "results": o.get("games") or o.get("matches"), "run_id": arena[0]}
                for m, o in report["overall"].items()]
        return f"arena run {arena[0]} (score = win rate x 100)", rows
    return "none", []


def recommend_model(
    client: Any,
    prompt: Any,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    days: int = DAYS_PER_MONTH,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The cheapest tested model whose score is within `tolerance` points of the best."""
    if tolerance < 0:
        raise InvalidInput("tolerance is a number of score points (0-100) and cannot be negative")
    db = client.store.db
    head = client.get_prompt(prompt)
    basis, scored = model_scores(db, head.prompt_id)
    if not scored:
        raise NotFound(
            f"prompt {head.name!r} has no test or arena results to compare models on; test it on two "
            "or more models first: ", Step("run_tests", prompt=head.prompt_id),
        )
    conf = config_module.of_client(client)
    configured = head.model_config.get("model")
    load = traffic(db, head.prompt_id, days=days, now=now, prefer_model=configured)
    # Start from the model the prompt is configured with (what the next call will use), not the
    # one the log shows most: old traffic of a model since replaced must not be the baseline.
    current = configured or load["model"]
    tin, tout = load["avg_input_tokens"], load["avg_output_tokens"]
    if not load["calls"]:  # no traffic yet: price the eval's request shape, save nothing
        tin = max((s.get("eval_input_tokens") or 0) for s in scored)
        tout = max((s.get("eval_output_tokens") or 0) for s in scored)
    best = max(s["score"] for s in scored)
    for s in scored:
        s["per_call_usd"] = per_call_cost(s["model"], tin, tout, config=conf,
                                          model_config=head.model_config if s["model"] == configured else None)
        s["monthly_usd"] = None if s["per_call_usd"] is None else s["per_call_usd"] * load["monthly_calls"]
        s["within_tolerance"] = s["score"] >= best - tolerance
        s["current"] = s["model"] == current
    priced = [s for s in scored if s["within_tolerance"] and s["per_call_usd"] is not None]
    scored.sort(key=lambda s: (-s["score"], s["per_call_usd"] if s["per_call_usd"] is not None else float("inf")))
    current_per_call = per_call_cost(current, tin, tout, config=conf, model_config=head.model_config
                                     if current == configured else None) if current else None
    current_monthly = None if current_per_call is None else current_per_call * load["monthly_calls"]
    result: dict[str, Any] = {
        "prompt_id": head.prompt_id, "prompt_name": head.name, "basis": basis,
        "tolerance": tolerance, "best_score": best, "current_model": current,
        "traffic": load, "current_monthly_usd": current_monthly, "candidates": scored,
        "recommended": None, "monthly_saving_usd": None, "saving_ratio": None,
        "unpriced": pricing.no_price_note(
            {s["model"] for s in scored if s["per_call_usd"] is None}
            | ({current} if current and current_per_call is None else set())),
    }
    if not priced:
        result["note"] = "no model within the tolerance has a known price: " + (result["unpriced"] or "")
        return result
    pick = min(priced, key=lambda s: (s["per_call_usd"], -s["score"], s["model"]))
    result["recommended"] = pick["model"]
    result["recommended_score"] = pick["score"]
    if current_monthly is not None and pick["monthly_usd"] is not None:
        saving = current_monthly - pick["monthly_usd"]
        result["monthly_saving_usd"] = saving
        result["saving_ratio"] = saving / current_monthly if current_monthly else None
    result["advice"] = _advice(result, pick)
    return result


def _advice(result: dict[str, Any], pick: dict[str, Any]) -> str:
    if pick["model"] == result["current_model"]:
        return f"keep {pick['model']}: no cheaper model scores within {result['tolerance']:g} points of the best"
    saving = result.get("monthly_saving_usd")
    money = f", saving ${saving:,.2f} a month at current traffic" if saving else ""
    return (f"switch to {pick['model']} (score {pick['score']:g} vs best {result['best_score']:g})"
            f"{money}; test it on your suite before deploying")


# ---- prompt slimming --------------------------------------------------------------------------


def compare_versions(
    client: Any, prompt: Any, a: int, b: int, *, days: int = DAYS_PER_MONTH,
    model: str | None = None, now: datetime | None = None,
) -> dict[str, Any]:
    """What version `b` would cost against version `a` at the prompt's current traffic.

    The template's tokens change the input side of every call; output tokens are kept as
    observed. Where both versions have their own traffic, their measured per-call figures are
    shown too.
    """
    va, vb = client.get_prompt(prompt, version=a), client.get_prompt(prompt, version=b)
    db = client.store.db
    load = traffic(db, va.prompt_id, days=days, now=now)
    # The model the versions are configured with (b's, else a's), not the log's most called one.
    configured = vb.model_config.get("model") or va.model_config.get("model")
    used = model or configured or load["model"]
    if not used:
        raise InvalidInput("no model to price with: the prompt has no traffic and names no model; give ",
                           Step.arg("model"))
    ta, tb = (count_tokens(template_text(v.template), used) for v in (va, vb))
    conf = config_module.of_client(client)
    own_config = next((v.model_config for v in (vb, va) if v.model_config.get("model") == used), None)
    price_known = pricing.price(used, config=conf, model_config=own_config) is not None
    base_in = load["avg_input_tokens"] if load["calls"] else float(ta)
    shape_a = (base_in, load["avg_output_tokens"])
    shape_b = (max(0.0, base_in - ta + tb), load["avg_output_tokens"])
    cost_a = per_call_cost(used, *shape_a, config=conf, model_config=own_config)
    cost_b = per_call_cost(used, *shape_b, config=conf, model_config=own_config)
    monthly = load["monthly_calls"]
    out: dict[str, Any] = {
        "prompt_id": va.prompt_id, "prompt_name": va.name, "model": used,
        "tokenizer": tokenizer_name(used), "price_known": price_known,
        "unpriced": None if price_known else pricing.no_price_note([used]),
        "a": {"version": a, "template_tokens": ta, "per_call_usd": cost_a,
              "monthly_usd": None if cost_a is None else cost_a * monthly},
        "b": {"version": b, "template_tokens": tb, "per_call_usd": cost_b,
              "monthly_usd": None if cost_b is None else cost_b * monthly},
        "template_token_change": (tb - ta) / ta if ta else None,
        "input_token_change": (shape_b[0] - shape_a[0]) / shape_a[0] if shape_a[0] else None,
        "traffic": load,
    }
    if cost_a is not None and cost_b is not None:
        out["per_call_saving_usd"] = cost_a - cost_b
        out["monthly_saving_usd"] = (cost_a - cost_b) * monthly
        out["cost_change"] = (cost_b - cost_a) / cost_a if cost_a else None
    for side, version in (("a", a), ("b", b)):
        measured = traffic(db, va.prompt_id, days=days, version=version, now=now)
        if measured["calls"]:
            out[side]["measured"] = {
                "calls": measured["calls"], "avg_input_tokens": measured["avg_input_tokens"],
                "avg_output_tokens": measured["avg_output_tokens"],
                "per_call_usd": (measured["cost_usd"] / measured["calls"]
                                 if not measured["unpriced_calls"] else None),
                "unpriced": measured["unpriced"],
            }
    return out


SHORTER_INSTRUCTIONS = (
    "You shorten LLM prompts without changing what they make a model do. Rewrite the prompt the "
    "user gives you to use as few tokens as possible while keeping every instruction that changes "
    "the answer, the language it is written in, and every template variable exactly as written "
    "(such as {{ question }}). Answer with the rewritten prompt only: no preface, no quotes, no "
    "code fence."
)
_VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*}}")


def _clean_rewrite(text: str) -> str:
    text = text.strip()
    fence = re.match(r"^```[A-Za-z]*\n(.*)\n```$", text, re.S)
    if fence:
        text = fence.group(1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def suggest_shorter(
    client: Any,
    prompt: Any,
    *,
    model: str | None = None,
    version: int | None = None,
    suite: str | None = None,
    run_suite: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    branch: str | None = None,
) -> dict[str, Any]:
    """Ask `model` for a shorter rewrite, save it on a branch, and test it against the current
    version on the prompt's suite. Nothing reaches main: adopting it is `promstack merge`."""
    current = client.get_prompt(prompt, version=version)
    if not isinstance(current.template, str):
        raise InvalidInput("only a text template can be rewritten shorter; this version is a chat template")
    writer = model or os.environ.get("PROMSTACK_SLIM_MODEL") or current.model_config.get("model")
    if not writer:
        raise InvalidInput("name the model that should write the shorter version: give ", Step.arg("model"))
    reply = client.gateway.complete(
        [{"role": "system", "content": SHORTER_INSTRUCTIONS},
         {"role": "user", "content": current.template}],
        model=writer, model_config={k: v for k, v in current.model_config.items()
                                    if k in ("api_base", "route", "input_cost_per_token",
                                             "output_cost_per_token", "timeout")}
        if writer == current.model_config.get("model") else None,
        prompt_name=current.name, guard_input=False, cache=False,
    )
    candidate = _clean_rewrite(reply.output)
    used = current.model_config.get("model") or writer
    before, after = count_tokens(current.template, used), count_tokens(candidate, used)
    result: dict[str, Any] = {
        "prompt_id": current.prompt_id, "prompt_name": current.name, "from_version": current.version,
        "writer_model": writer, "candidate": candidate, "tokens_before": before, "tokens_after": after,
        "token_change": (after - before) / before if before else None, "rewrite_cost_usd": reply.cost_usd,
        "version": None, "branch": None, "verdict": None,
    }
    missing = sorted(set(_VARIABLE.findall(current.template)) - set(_VARIABLE.findall(candidate)))
    if not candidate or missing or after >= before:
        result["verdict"] = "rejected"
        result["reason"] = (
            f"the rewrite drops the variable(s) {', '.join(missing)}" if missing else
            "the model answered nothing" if not candidate else
            f"the rewrite is not shorter ({after} tokens vs {before})")
        return result
    branch = branch or f"shorter-v{current.version}"
    if branch not in {b.name for b in client.list_branches(current.prompt_id)}:
        client.create_branch(current.prompt_id, branch, from_version=current.version)
    saved = client.save(current.prompt_id, candidate, model_config=current.model_config, branch=branch,
                        message=f"shorter rewrite of v{current.version} by {writer} ({before} -> {after} tokens)")
    result.update(version=saved.version, branch=branch)
    result["cost"] = compare_versions(client, current.prompt_id, current.version, saved.version)
    if not run_suite:
        result["verdict"] = "untested"
        return result
    from ..evals import engine

    found = engine.get_suite(client, suite) if suite else engine.suite_for_prompt(client, current.prompt_id)
    runs = {}
    for label, v in (("baseline", current.version), ("candidate", saved.version)):
        run = engine.run_tests(client, found["name"], prompt=current.prompt_id, version=v)
        runs[label] = {"run_id": run["id"], "version": v, "score": (run.get("summary") or {}).get("score"),
                       "pass_rate": (run.get("summary") or {}).get("pass_rate")}
    result["suite"] = found["name"]
    result["runs"] = runs
    base, cand = runs["baseline"]["score"] or 0.0, runs["candidate"]["score"] or 0.0
    keeps = cand >= base - tolerance
    result["verdict"] = "adoptable" if keeps else "rejected"
    result["reason"] = (
        f"scores {cand:g} vs {base:g} (tolerance {tolerance:g}); "
        + (f"merge branch {branch!r} to adopt it" if keeps else "the shorter prompt scores worse"))
    return result
