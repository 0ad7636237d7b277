"""Monitoring commands: metrics, alerts, cost. Each parses, calls the engine, prints."""

from __future__ import annotations

import sys
from typing import Any

import click

from . import EXIT_CHECK_FAILED, as_json, cli, command_context


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "ms":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{value:.1%}"
    if kind == "usd":
        from promstack.monitoring.costs import usd

        return usd(value)
    if kind == "num":
        return f"{value:,.6g}"
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


def _filter_options(func):
    func = click.option("--user", "user_id", help="Only this user_id.")(func)
    func = click.option("--environment", "--env", "environment", help="Only this environment.")(func)
    func = click.option("--model", help="Only this model.")(func)
    func = click.option("--prompt", help="Only this prompt (id or name).")(func)
    func = click.option("--until", help="End of the window (ISO time or a duration back from now).")(func)
    return func


@cli.command("metrics")
@click.option("--since", default="24h", show_default=True,
              help="Start of the window: a duration back from now (30m, 24h, 7d) or an ISO time.")
@click.option("--by", default="", help="Group by any of: prompt, version, model, environment, user, day, hour, status, source (comma-separated).")
@_filter_options
@command_context
def metrics_command(state, since: str, by: str, until: str | None, prompt: str | None,
                    model: str | None, environment: str | None, user_id: str | None) -> None:
    """Requests, latency p50/p95/p99, error rate, tokens, cost and cache hit rate.

    \b
    promstack metrics                        # the last 24 hours, all traffic
    promstack metrics --since 7d --by prompt,model
    promstack metrics --by day --prompt support/refund --json
    """
    result = state.client.monitoring.metrics(since=since, until=until, by=by, prompt=prompt, model=model,
                                             environment=environment, user_id=user_id)
    if as_json(state, result):
        return
    click.echo(f"{result['since'] or 'the beginning'} .. {result['until']}  (percentiles: nearest rank)")
    _table(result["groups"], _group_columns(result["by"]) + [
        ("requests", "requests", "int"), ("errors", "error_rate", "pct"),
        ("p50 ms", "latency_p50_ms", "ms"), ("p95 ms", "latency_p95_ms", "ms"),
        ("p99 ms", "latency_p99_ms", "ms"), ("in tok", "input_tokens", "int"),
        ("out tok", "output_tokens", "int"), ("own cost", "own_cost_usd", "usd"),
        ("eval cost", "evaluation_cost_usd", "usd"), ("cache", "cache_hit_rate", "pct"),
    ])
    if result["unpriced"]:
        click.echo(result["unpriced"])


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
def alerts_check(state, no_notify: bool) -> None:
    """Evaluate every rule now; record firings and resolutions; exit 1 if any is firing.

    \b
    promstack alerts check || echo "something is wrong"
    promstack alerts check --json
    """
    from promstack.monitoring import alerts

    result = state.client.monitoring.check_alerts(notify=not no_notify)
    if not as_json(state, result):
        for line in alerts.check_lines(result):
            click.echo(line)
    if result["firing"]:
        sys.exit(EXIT_CHECK_FAILED)


@alerts_group.command("list")
@click.option("--state", "which", type=click.Choice(["firing", "resolved", "all"]), default="all",
              show_default=True, help="Which alerts to show.")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@command_context
def alerts_list(state, which: str, limit: int) -> None:
    """Alerts, newest first: when each fired and resolved, and its value.

    \b
    promstack alerts list --state firing
    """
    rows = state.client.monitoring.alert_history(state=None if which == "all" else which, limit=limit)
    if as_json(state, rows):
        return
    if not rows:
        click.echo("No alerts.")
        return
    _table(rows, [
        ("id", "id", "text"), ("state", "state", "text"), ("rule", "rule", "text"),
        ("scope", "scope", "text"), ("fired at", "fired_at", "text"),
        ("resolved at", "resolved_at", "text"), ("value", "last_value", "num"),
        ("threshold", "threshold", "num"),
    ])


@cli.group("cost", invoke_without_command=True)
@click.option("--since", default="30d", show_default=True, help="Window: a duration back from now or an ISO time.")
@click.option("--until", help="End of the window (default now).")
@click.option("--by", default="prompt", show_default=True, help="Group by prompt, model, environment, user (comma-separated).")
@command_context
def cost_group(state, since: str, until: str | None, by: str) -> None:
    """Spend by prompt, model, environment or user, with the trend against the window before.

    The groups are the prompts' own calls; test, arena and judge calls are shown apart as
    evaluation spend. Calls to a model without a price are counted and named, never taken as $0.

    \b
    promstack cost                          # the last 30 days by prompt
    promstack cost --since 7d --by model,environment --json
    promstack cost recommend --prompt support/refund
    promstack cost compare --prompt support/refund 3 4
    promstack cost tokens --prompt support/refund
    promstack cost shorter --prompt support/refund --model gpt-4o-mini
    promstack cost prices                   # the price of each model, and where it comes from
    """
    if click.get_current_context().invoked_subcommand is not None:
        return
    from promstack.monitoring import costs

    report = state.client.monitoring.cost_report(since=since, until=until, by=by)
    if as_json(state, report):
        return
    click.echo(costs.report_headline(report))
    rows = [{**g, "trend_text": g["trend"] + ("" if g["change"] is None else f" {g['change']:+.0%}")}
            for g in report["groups"]]
    _table(rows, _group_columns(report["by"]) + [
        ("requests", "requests", "int"), ("cost", "cost_usd", "usd"), ("share", "share", "pct"),
        ("before", "previous_cost_usd", "usd"), ("trend", "trend_text", "text"),
    ])
    for line in costs.report_notes(report):
        click.echo(line)


@cost_group.command("recommend")
@click.option("--prompt", required=True, help="The prompt (id or name).")
@click.option("--tolerance", default=2.0, show_default=True, help="Score points (0-100) a cheaper model may lose.")
@click.option("--days", default=30, show_default=True, help="Days of traffic to project from.")
@command_context
def cost_recommend(state, prompt: str, tolerance: float, days: int) -> None:
    """The cheapest tested model scoring within TOLERANCE of the best, and the monthly saving.

    \b
    promstack cost recommend --prompt 42 --tolerance 3
    """
    from promstack.monitoring import advice

    result = state.client.monitoring.recommend_model(prompt, tolerance=tolerance, days=days)
    if as_json(state, result):
        return
    click.echo(f"{result['prompt_name']}: scores from {result['basis']}; "
               f"{result['traffic']['monthly_calls']:,.0f} paid calls a month")
    rows = [{**c, "mark": ("<- recommended" if c["model"] == result["recommended"] else "")
             + (" (current)" if c["current"] else "")} for c in result["candidates"]]
    _table(rows, [("model", "model", "text"), ("score", "score", "text"),
                  ("per call", "per_call_usd", "usd"), ("per month", "monthly_usd", "usd"),
                  ("", "mark", "text")])
    click.echo(advice.recommendation_text(result))


@cost_group.command("compare")
@click.option("--prompt", required=True, help="The prompt (id or name).")
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option("--model", help="Price with this model (default: the one in use).")
@command_context
def cost_compare(state, prompt: str, a: int, b: int, model: str | None) -> None:
    """What version B costs against version A at current traffic.

    \b
    promstack cost compare --prompt support/refund 3 4
    """
    result = state.client.monitoring.compare_versions(prompt, a, b, model=model)
    if as_json(state, result):
        return
    change = result["template_token_change"]
    click.echo(f"{result['prompt_name']} with {result['model']} ({result['tokenizer']}):")
    for side in ("a", "b"):
        item = result[side]
        click.echo(f"  v{item['version']}: {item['template_tokens']:,} tokens, "
                   f"{_fmt(item['per_call_usd'], 'usd')} a call, {_fmt(item['monthly_usd'], 'usd')} a month")
    if change is not None:
        click.echo(f"  template tokens {change:+.1%}; "
                   + ((result.get("unpriced") or "price unknown") if result.get("cost_change") is None else
                      f"cost per call {result['cost_change']:+.1%}, "
                      f"{_fmt(result['monthly_saving_usd'], 'usd')} saved a month"))


@cost_group.command("prices")
@click.option("--model", "models", multiple=True, help="Only this model (repeatable); any model id, priced or not.")
@command_context
def cost_prices(state, models: tuple[str, ...]) -> None:
    """The price of each model (USD per million tokens) and where it comes from.

    Order: a prompt's model config, then [prices] in .promstack/config.toml, then the prices
    PromStack ships (the file shown), then litellm's price map. A model none of them prices is
    logged as unpriced. To change a price, copy its table from the shipped file into config.toml.

    \b
    promstack cost prices
    promstack cost prices --model anthropic/claude-3-5-sonnet-latest --json
    """
    table = state.client.monitoring.price_table(list(models))
    if as_json(state, table):
        return
    _table([{**r, "source": r["source"] or "unpriced: add a price in config"} for r in table["prices"]], [
        ("model", "model", "text"), ("input $/1M", "input_per_million", "num"),
        ("output $/1M", "output_per_million", "num"), ("source", "source", "text")])
    click.echo(f"shipped prices: {table['shipped_file']}")
    click.echo("override or add one in .promstack/config.toml: [prices.\"<model>\"] input_per_million = ..., "
               "output_per_million = ...")


@cost_group.command("tokens")
@click.option("--prompt", required=True, help="The prompt (id or name).")
@click.option("--model", help="Count with this model's tokenizer (default: each version's model).")
@command_context
def cost_tokens(state, prompt: str, model: str | None) -> None:
    """Tokens of every version's template, with its model's tokenizer.

    \b
    promstack cost tokens --prompt support/refund
    """
    from promstack.monitoring import costs

    result = costs.version_tokens(state.client, prompt, model=model)
    if as_json(state, result):
        return
    _table(result["versions"], [("version", "version", "text"), ("branch", "branch", "text"),
                                ("model", "model", "text"), ("tokenizer", "tokenizer", "text"),
                                ("tokens", "tokens", "int"), ("chars", "characters", "int")])


@cost_group.command("shorter")
@click.option("--prompt", required=True, help="The prompt (id or name).")
@click.option("--model", help="The model that writes the rewrite (default: the prompt's).")
@click.option("--version", type=int, help="Rewrite this version (default: main's head).")
@click.option("--suite", help="Test with this suite (default: the prompt's).")
@click.option("--no-test", is_flag=True, help="Save the rewrite on a branch without running the suite.")
@command_context
def cost_shorter(state, prompt: str, model: str | None, version: int | None, suite: str | None,
                 no_test: bool) -> None:
    """Ask a model for a shorter rewrite, save it on a branch, and test it against the current one.

    Nothing is adopted: merge the branch yourself if the verdict is 'adoptable'.

    \b
    promstack cost shorter --prompt support/refund --model gpt-4o-mini
    """
    from promstack.monitoring import advice

    result = state.client.monitoring.suggest_shorter(prompt, model=model, version=version, suite=suite,
                                                     run_suite=not no_test)
    if not as_json(state, result):
        for line in advice.shorter_summary(result):
            click.echo(line)
        click.echo("---")
        click.echo(result["candidate"])
    if result["verdict"] == "rejected":
        sys.exit(EXIT_CHECK_FAILED)


@cli.group("otel")
def otel_group() -> None:
    """OpenTelemetry export of the call log (OTLP/HTTP JSON; opt-in by OTEL_EXPORTER_OTLP_ENDPOINT).

    \b
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 promstack otel export
    """


@otel_group.command("export")
@click.option("--endpoint", help="Traces URL (default: from OTEL_EXPORTER_OTLP_ENDPOINT, + /v1/traces).")
@command_context
def otel_export(state, endpoint: str | None) -> None:
    """Send every call-log row not sent yet as a span; exit 1 if the collector refused.

    \b
    promstack otel export --endpoint http://127.0.0.1:4318/v1/traces
    """
    from promstack.monitoring import otel
    from store.errors import InvalidInput

    if endpoint is None and not otel.enabled():
        raise InvalidInput("set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4318) or pass --endpoint")
    result = otel.export_pending(state.client.store.db, endpoint=endpoint)
    if not as_json(state, result):
        click.echo(f"sent {result['sent']} span(s) in {result['batches']} batch(es)"
                   + (f"; stopped: {result['error']}" if result["error"] else ""))
    if result["error"]:
        sys.exit(EXIT_CHECK_FAILED)
