"""Costs: where the money goes, and how many tokens a prompt is.

- `cost_report`: spend by prompt, model, environment or user over a window, each group with the
  previous window of the same length (the trend), plus the daily series. Spend is split
  (`call_metrics.EVALUATION_SQL`, one definition): the report's groups and totals are the
  prompts' own traffic; test, arena and judge calls are reported apart as evaluation spend. A call
  whose model has no price has an unknown cost: every total carries how many such calls it could
  not count and their models (`unpriced`), never a silent $0. `report_lines` words a report's
  totals, as every face shows them.
- `tokenizer_name`, `count_tokens`, `version_tokens`: tokens of a text or of each version of a
  prompt, with the model's tokenizer.

What to do about the money (a cheaper model, a shorter prompt) is `advice`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from store.errors import InvalidInput, NotFound, Step

from ..gateway.tokens import count_tokens, tokenizer_name
from .call_metrics import (
    INTERNAL_SQL,
    UNPRICED_SQL,
    Window,
    filters_sql,
    group_columns,
    parse_groups,
    prompt_names,
    split_models,
    sum_unpriced,
    unpriced_fields,
    window,
)

if TYPE_CHECKING:
    from ..client import Client


# ---- the report -------------------------------------------------------------------------------


def _spend(db: sqlite_utils.Database, win: Window, keys: list[tuple[str, str]],
           filters: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    where, params = filters_sql(db, win, **filters)
    exprs = [e for _, e in keys]
    select = "".join(f"{e}, " for e in exprs)
    group = f" GROUP BY {', '.join(exprs)}" if exprs else ""
    sql = (f"SELECT {select}COUNT(*), COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens), 0), "
           f"COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cache_hit != 0), 0), "
           f"{UNPRICED_SQL} FROM calls WHERE {where}{group}")
    n = len(exprs)
    out = {}
    for row in db.execute(sql, params).fetchall():
        if row[n] == 0:
            continue
        out[tuple(row[:n])] = {"requests": row[n], "cost_usd": float(row[n + 1]),
                               "input_tokens": int(row[n + 2]), "output_tokens": int(row[n + 3]),
                               "cache_hits": int(row[n + 4]),
                               **unpriced_fields(int(row[n + 5]), split_models(row[n + 6]))}
    return out


# What kind of evaluation a call belongs to, for the evaluation side of the report.
_EVAL_KIND = (
    f"CASE WHEN {INTERNAL_SQL} THEN 'judge' "
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
    win = window(since, until, now=now)
    if win.since is None:
        raise InvalidInput("a cost report needs a window with a start, such as ", Step.arg("since", example="30d"))
    length = win.until - win.since
    previous = Window(win.since - length, win.since)
    groups = parse_groups(by)
    keys = group_columns(groups)
    names = [n for n, _ in keys]
    filters = {k: v for k, v in filters.items() if k not in ("traffic", "unpriced")}
    current = _spend(db, win, keys, {**filters, "traffic": "own"})
    before = _spend(db, previous, keys, {**filters, "traffic": "own"})
    total = sum(g["cost_usd"] for g in current.values())
    total_before = sum(g["cost_usd"] for g in before.values())
    evaluation = _spend(db, win, [("kind", _EVAL_KIND)], {**filters, "traffic": "evaluation"})
    evaluation_before = _spend(db, previous, [], {**filters, "traffic": "evaluation"})
    labels = prompt_names(db) if "prompt_id" in names else {}
    rows = []
    for key in set(current) | set(before):
        now_g = current.get(key, {"requests": 0, "cost_usd": 0.0, "input_tokens": 0,
                                  "output_tokens": 0, "cache_hits": 0, **unpriced_fields(0, [])})
        was = before.get(key, {}).get("cost_usd", 0.0)
        item: dict[str, Any] = dict(zip(names, key, strict=True))
        if "prompt_id" in item:
            item["prompt_name"] = labels.get(item["prompt_id"])
        item.update(now_g)
        item["share"] = now_g["cost_usd"] / total if total else 0.0
        item["previous_cost_usd"] = was
        item["change"] = _change(now_g["cost_usd"], was)
        item["trend"] = _trend(now_g["cost_usd"], was)
        rows.append(item)
    rows.sort(key=lambda r: (-r["cost_usd"], -r["previous_cost_usd"], [str(r[k]) for k in names]))
    daily = _spend(db, win, group_columns(["day"]), {**filters, "traffic": "own"})
    daily_eval = _spend(db, win, group_columns(["day"]), {**filters, "traffic": "evaluation"})
    eval_total = sum(g["cost_usd"] for g in evaluation.values())
    return {
        "since": win.since_iso, "until": win.until_iso,
        "previous": {"since": previous.since_iso, "until": previous.until_iso},
        "by": groups,
        # the prompts' own spend: test, arena and judge calls are in "evaluation" below
        "total_usd": total, "previous_total_usd": total_before,
        "change": _change(total, total_before), "trend": _trend(total, total_before),
        **sum_unpriced(current.values()),
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
            **sum_unpriced(evaluation.values()),
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


def usd(value: float | None) -> str:
    """Money as monitoring's sentences and tables write it: cents from $100, else four digits,
    and six for the fractions of a cent one call costs."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"${value:,.2f}"
    return f"${value:,.4f}" if abs(value) >= 0.01 or value == 0 else f"${value:,.6f}"


def report_headline(report: dict[str, Any]) -> str:
    """A cost report's total in one line: the window, the prompts' own spend, its change."""
    change = report["change"]
    return (f"{report['since']} .. {report['until']}: ${report['total_usd']:,.4f} of the prompts' own calls "
            f"({'new' if change is None else f'{change:+.1%}'} against the window before)")


def report_notes(report: dict[str, Any]) -> list[str]:
    """The lines under a cost report's groups: the calls it could not price, and the evaluation
    spend, which the total leaves out."""
    lines = [report["unpriced"]] if report["unpriced"] else []
    evaluation = report["evaluation"]
    kinds = ", ".join(f"{kind} {usd(v['cost_usd'])}" for kind, v in evaluation["by_kind"].items())
    lines.append(f"evaluation (tests, arena, judge; not in the total above): {usd(evaluation['cost_usd'])} "
                 f"in {evaluation['requests']:,} calls" + (f" ({kinds})" if kinds else ""))
    if evaluation["unpriced"]:
        lines.append(f"evaluation: {evaluation['unpriced']}")
    return lines


# ---- tokens: the gateway's one counter ----------------------------------------------------------


def template_text(template: Any) -> str:
    if isinstance(template, str):
        return template
    return "\n".join(str(m.get("content") or "") for m in template)


def version_tokens(client: Client, prompt: int | str, *, model: str | None = None) -> dict[str, Any]:
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


