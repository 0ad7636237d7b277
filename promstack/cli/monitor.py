"""Monitoring commands: metrics, alerts, cost. Each parses, calls the engine, prints."""

from __future__ import annotations

import sys
from typing import Any

import click

from . import EXIT_CHECK_FAILED, cli, command_context, emit_json


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "usd":
        return f"${value:,.4f}"
    if kind == "int":
        return f"{int(value):,}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> None:
    """Print rows as aligned columns: (header, key, kind)."""
    cells = [[header for header, _, _ in columns]]
    for row in rows:
        cells.append([_fmt(row.get(key), kind) for _, key, kind in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        line = "  ".join(
            cell.ljust(w) if columns[i][2] == "text" else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        click.echo(line.rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def _group_columns(by: list[str]) -> list[tuple[str, str, str]]:
    columns = []
    for group in by:
        if group in ("prompt", "version") and ("prompt", "prompt_name", "text") not in columns:
            columns.append(("prompt", "prompt_name", "text"))
            columns.append(("id", "prompt_id", "text"))
        if group == "version":
            columns.append(("version", "prompt_version", "text"))
        elif group == "user":
            columns.append(("user", "user_id", "text"))
        elif group != "prompt":
            columns.append((group, group, "text"))
    return columns


def _filter_options(func):  # noqa: ANN001, ANN201
    func = click.option("--user", "user_id", help="Only this user_id.")(func)
    func = click.option("--environment", "--env", "environment", help="Only this environment.")(func)
    func = click.option("--model", help="Only this model.")(func)
    func = click.option("--prompt", help="Only this prompt (id or name).")(func)
    func = click.option("--until", help="End of the window (ISO time or a duration back from now).")(func)
    return func


@cli.command("metrics")
@click.option("--since", default="24h", show_default=True,
              help="Start of the window: a duration back from now (30m, 24h, 7d) or an ISO time.")
@click.option("--by", default="", help="Group by any of: prompt, version, model, environment, user, day, hour, status (comma-separated).")
@_filter_options
@command_context
def metrics_command(state, since: str, by: str, until: str | None, prompt: str | None,  # noqa: ANN001
                    model: str | None, environment: str | None, user_id: str | None) -> None:
    """Requests, latency p50/p95/p99, error rate, tokens, cost and cache hit rate.

    \b
    promstack metrics                        # the last 24 hours, all traffic
    promstack metrics --since 7d --by prompt,model
    promstack metrics --by day --prompt support/refund --json
    """
    from promstack import monitor

    result = monitor.metrics(
        state.client.store.db, since=since, until=until, by=by, prompt=prompt, model=model,
        environment=environment, user_id=user_id,
    )
    if state.json:
        emit_json(result)
        return
    click.echo(f"{result['since'] or 'the beginning'} .. {result['until']}  (percentiles: nearest rank)")
    _table(result["groups"], _group_columns(result["by"]) + [
        ("requests", "requests", "int"), ("errors", "error_rate", "pct"),
        ("p50 ms", "latency_p50_ms", "ms"), ("p95 ms", "latency_p95_ms", "ms"),
        ("p99 ms", "latency_p99_ms", "ms"), ("in tok", "input_tokens", "int"),
        ("out tok", "output_tokens", "int"), ("cost", "cost_usd", "usd"),
        ("cache", "cache_hit_rate", "pct"),
    ])


@cli.group("alerts")
def alerts_group() -> None:
    """Alert rules over the call log (latency p95, error rate, daily tokens, budget).

    \b
    promstack alerts check      # exit 1 while any alert is firing: use it in cron or CI
    promstack alerts list
    """


@alerts_group.command("check")
@click.option("--no-notify", is_flag=True, help="Evaluate and record, but send no notifications.")
@command_context
def alerts_check(state, no_notify: bool) -> None:  # noqa: ANN001
    """Evaluate every rule now; record firings and resolutions; exit 1 if any is firing.

    \b
    promstack alerts check || echo "something is wrong"
    promstack alerts check --json
    """
    from promstack import alerts

    result = alerts.check(state.client.store.db, state.client.store.path, notify=not no_notify)
    if state.json:
        emit_json(result)
    else:
        if not result["results"]:
            click.echo("No rules to check.")
        for item in result["results"]:
            click.echo(item["message"])
    if result["firing"]:
        sys.exit(EXIT_CHECK_FAILED)


@alerts_group.command("list")
@click.option("--state", "which", type=click.Choice(["firing", "resolved", "all"]), default="all",
              show_default=True, help="Which alerts to show.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@command_context
def alerts_list(state, which: str, limit: int) -> None:  # noqa: ANN001
    """Alerts, newest first: when each fired and resolved, and its value.

    \b
    promstack alerts list --state firing
    """
    from promstack import alerts

    rows = alerts.history(state.client.store.db, state=None if which == "all" else which, limit=limit)
    if state.json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No alerts.")
        return
    _table(rows, [
        ("id", "id", "text"), ("state", "state", "text"), ("rule", "rule", "text"),
        ("scope", "scope", "text"), ("fired at", "fired_at", "text"),
        ("resolved at", "resolved_at", "text"), ("value", "last_value", "text"),
        ("threshold", "threshold", "text"),
    ])
