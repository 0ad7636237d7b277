"""The gateway's commands: run a prompt, read the call log, read and verify the audit log."""

from __future__ import annotations

import sys
from typing import Any

import click

from store.errors import InvalidInput
from store.refs import prompt_ref

from . import EXIT_CHECK_FAILED, as_json, cli, command_context, json_object_option


def _parse_vars(pairs: tuple[str, ...], vars_json: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if vars_json is not None:
        values.update(json_object_option(vars_json, "--vars", '{"question": "환불하고 싶어요"}'))
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--var {pair!r} must look like name=value")
        values[name.strip()] = value
    return values


@cli.command("run")
@click.argument("prompt")
@click.option("--var", "pairs", multiple=True, metavar="NAME=VALUE", help="A template variable (repeatable).")
@click.option("--vars", "vars_json", help='All variables as a JSON object.')
@click.option("--version", type=int, help="Run this version.")
@click.option("--label", help="Run the version this label points at (e.g. production).")
@click.option("--branch", help="Run the head of this branch.")
@click.option("--model", help="Override the version's model, e.g. gpt-4o-mini.")
@click.option("--user", "user_id", help="Who this call is for (logged as user_id).")
@click.option("--run-id", help="Group this call under a run id in the call log.")
@click.option("--env", "environment", help="Environment to log (default: PROMSTACK_ENV or development).")
@click.option("--no-cache", is_flag=True, help="Always call the model; do not read or fill the cache.")
@command_context
def run_prompt(state, prompt: str, pairs, vars_json, version, label, branch, model, user_id,
               run_id, environment, no_cache) -> None:
    """Render PROMPT (a name or id) with its variables and call its model.

    \b
    promstack run support/refund --var question="환불하고 싶어요"
    promstack run 42 --label production --var question=hi --json
    """
    from promstack.gateway import GatewayError
    from promstack.guard import GuardBlocked

    variables = _parse_vars(pairs, vars_json)
    try:
        result = _run_and_flush(state.client,
            prompt_ref(prompt), variables, version=version, label=label, branch=branch,
            model=model, user_id=user_id, run_id=run_id, environment=environment,
            cache=False if no_cache else None,
        )
    except (GatewayError, GuardBlocked) as exc:
        detail = {"status": "blocked" if isinstance(exc, GuardBlocked) else "error",
                  "error": str(exc), "call_id": exc.call_id}
        if isinstance(exc, GatewayError):
            detail.update(provider=exc.provider, cause=exc.cause)
        else:
            detail["guards"] = exc.report
        as_json(state, detail)
        click.echo(f"promstack: {exc}", err=True)
        sys.exit(EXIT_CHECK_FAILED)
    if as_json(state, result.to_dict()):
        return
    click.echo(result.output)
    fired = [f"{name} {g.get('action')}" for name, g in result.guards.items()
             if isinstance(g, dict) and g.get("action") not in (None, "passed", "off")]
    cost = "cost unknown" if result.cost_usd is None else f"${result.cost_usd:.6f}"
    footer = (f"{result.model} · {result.input_tokens}+{result.output_tokens} tokens · "
              f"{result.latency_ms:.0f} ms · {cost}"
              + (" · cache hit" if result.cache_hit else "")
              + (f" · guards: {', '.join(fired)}" if fired else ""))
    click.echo(footer, err=True)
    if result.unpriced:
        click.echo(result.unpriced, err=True)


def _usd(value: float | None) -> str:
    """A logged cost; None is a call whose model has no price, not $0."""
    return "unpriced" if value is None else f"${value:.6f}"


def _run_and_flush(client, *args, **kwargs):
    """A command is one call: its log row is in the store before the command returns."""
    try:
        return client.run(*args, **kwargs)
    finally:
        client.flush_calls()


@cli.command("logs")
@click.option("--prompt", help="Only calls of this prompt (name or id).")
@click.option("--version", "prompt_version", type=int, help="Only calls of this prompt version.")
@click.option("--model", help="Only calls to this model.")
@click.option("--status", type=click.Choice(["ok", "error", "blocked"]), help="Only calls with this outcome.")
@click.option("--user", "user_id", help="Only calls for this user_id.")
@click.option("--run-id", help="Only calls of this run.")
@click.option("--env", "environment", help="Only calls in this environment.")
@click.option("--cache-hit/--cache-miss", "cache_hit", default=None, help="Only hits, or only misses.")
@click.option("--since", help="Only calls at or after this time: a duration back (24h, 7d) or an ISO time.")
@click.option("--until", help="Only calls before this time: a duration back or an ISO time.")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many rows.")
@command_context
def logs_list(state, prompt, prompt_version, model, status, user_id, run_id, environment,
              cache_hit, since, until, limit) -> None:
    """The call log, newest first. --json prints each row in the guide's call-log shape
    (timestamp, prompt_id, prompt_version, model, input_tokens, output_tokens, latency_ms,
    user_id) followed by cost_usd, cache_hit, status, error, environment, run_id, guards.

    \b
    promstack logs --prompt 42 --status error
    promstack logs --user user_123 --json
    """
    from store import calls

    rows = state.client.call_log(
        prompt=prompt_ref(prompt) if prompt else None, prompt_version=prompt_version, model=model,
        status=status, user_id=user_id, run_id=run_id, environment=environment,
        cache_hit=cache_hit, since=since, until=until, limit=limit,
    )
    if as_json(state, [calls.as_json(r) for r in rows]):
        return
    if not rows:
        click.echo("No calls logged yet.")
        return
    for r in rows:
        where = f"{r['prompt_name'] or r['prompt_id'] or '-'}" + (f"@v{r['prompt_version']}" if r["prompt_version"] else "")
        line = (f"{r['timestamp']}  {r['status']:<7} {where:<24} {r['model']:<24} "
                f"{r['input_tokens']:>6}+{r['output_tokens']:<6} {r['latency_ms']:>8.0f} ms  "
                f"{_usd(r['cost_usd'])}{'  hit' if r['cache_hit'] else ''}"
                f"{'  ' + r['user_id'] if r['user_id'] else ''}")
        if r["error"]:
            line += f"\n    {r['error']}"
        click.echo(line)


@cli.group("audit", invoke_without_command=True)
@click.option("--prompt", help="Only rows about this prompt (name or id).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many rows.")
@command_context
def audit_group(state, prompt, limit) -> None:
    """The audit log, newest first: who did or asked what, when, with which prompt version,
    model, tokens and cost. `promstack audit verify` checks it and prints its head.

    \b
    promstack audit --prompt support/refund
    promstack audit verify
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        return
    rows = state.client.audit_log(prompt_ref(prompt) if prompt else None, limit=limit)
    if as_json(state, rows):
        return
    if not rows:
        click.echo("The audit log is empty.")
        return
    for r in rows:
        detail = r["detail"]
        what = r["action"]
        if r["action"] == "llm_call":
            what += f" {detail.get('model', '')} {detail.get('status', '')}"
            if detail.get("cache_hit"):
                what += " (cache hit)"
        elif r["action"] == "llm_calls":  # one row for a batch of calls an app reported
            what += f" {detail.get('calls', 0)} calls from {detail.get('source', 'an app')}"
        target = ""
        if r["prompt_id"] is not None:
            target = f"{detail.get('name') or detail.get('prompt_name') or r['prompt_id']}" + (
                f" v{r['version']}" if r["version"] is not None else "")
        usage = ""
        if r["input_tokens"] is not None or r["cost_usd"] is not None:
            usage = f"  {r['input_tokens'] or 0}+{r['output_tokens'] or 0} tokens {_usd(r['cost_usd'])}"
        click.echo(f"{r['at']}  {r['actor']:<12} {what:<40} {target}{usage}")


@audit_group.command("verify")
@click.option("--expect", metavar="COUNT:HASH",
              help="A head printed by an earlier 'audit verify': fail if the log no longer starts with it "
                   "(rows cut off its end, or history rewritten).")
@command_context
def audit_verify(state, expect) -> None:
    """Check the audit log: the keyed hash chain, every version's sha256 against its content and
    the log, and the label history against the label moves the log recorded (exit 1 if anything
    was edited, deleted or added behind PromStack's back). Prints the head, COUNT:HASH: keep it
    somewhere the database's writers cannot reach (a CI log) and pass it back with --expect.

    \b
    promstack audit verify
    promstack audit verify --expect 12:3fa4...
    """
    state.client.flush_calls()
    report = state.client.audit_report(expect=expect)
    if not as_json(state, {"ok": report.ok, "message": report.message, "count": report.count, "head": report.head,
                           "problems": list(report.problems)}):
        for problem in report.problems or (report.message,):
            click.echo(problem)
        click.echo(f"audit head {report.head}")
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)
