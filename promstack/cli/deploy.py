"""Deployments: `promstack deploy`, `deploy approve|reject|list|status`, `ab ...`, `rollout ...`, `ci init`.

    promstack deploy --prompt 42                          # head of main -> production, through the gate
    promstack deploy --prompt 42 --version 3 --env staging
    promstack deploy --prompt 42 --rollback               # production back to its previous version
    promstack deploy approve 7
    promstack ab start --prompt 42 --a 3 --b 4 --split 50
    promstack rollout promote --prompt 42

Exit codes: 0 deployed (or waiting for approval), 1 the gate refused or another deploy of the
prompt is running, 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from store.errors import InvalidInput

from . import (
    EXIT_CHECK_FAILED,
    as_json,
    cli,
    cli_words,
    command_context,
    emit,
    error_text,
    fail,
    warn,
)

# The workflows' pieces (str.format templates: {{ and }} are literal braces). CI installs
# PromStack from where this copy came from (promstack.install_source: it is not on PyPI).
_INSTALL = """\
      - uses: actions/setup-python@v5
        with:
          python-version: '3.12'
      - name: Install PromStack
{install_note}        run: pip install "promstack @ {source}"
"""
_PLACEHOLDER_NOTE = """\
        # PLACEHOLDER: where PromStack installs from was unknown to `promstack ci init`; run it
        # again with --source (a git URL with a tag, or a wheel's URL), or put that URL here.
"""
_IMPORT = """\
      - name: Version the prompt files
        run: find prompts -type f -exec promstack import {{}} +
"""
_DEPLOY = """\
      - name: Deploy to production
        run: promstack deploy --prompt ${{{{ env.PROMPT_ID }}}}
"""
# The audit log's head (COUNT:HASH) printed in the job's log, outside the store's reach: a later
# `promstack audit verify --expect COUNT:HASH` catches rows cut off since (the job fails if the
# log was tampered with). Over a team server it is checked there, with the server's key.
_VERIFY = """\
      - name: Verify the audit log and print its head
        run: promstack audit verify
"""
_ON = """\
name: Prompt Deployment
on:
  push:
    paths: ['prompts/**']
env:
  PROMPT_ID: {prompt_id}
"""
# The guide's three lines: test, the score gate (in the test job), deploy (in the deploy job).
_TEST_JOB = """\
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
""" + _INSTALL + _IMPORT + """\
      - name: Run batch tests
        run: promstack test --suite regression
      - name: Check quality score
        run: |
          score=$(promstack evaluate --prompt ${{{{ env.PROMPT_ID }}}})
          if [ $score -lt 80 ]; then exit 1; fi
  deploy:
    needs: test
    runs-on: ubuntu-latest
"""

WORKFLOW = """\
# PromStack: test, gate and deploy a prompt on every push to prompts/ (promstack ci init),
# against the team's PromStack server: nothing is committed back, no database lives in git.
# The prompt files of the checkout become versions on the server, the suite runs there, and
# the deploy moves the server's label. Repository secrets: PROMSTACK_URL (the server, e.g.
# https://promstack.example.com), PROMSTACK_TOKEN (a token with the deployer role, made on the
# server's machine) and the model keys the tests run with (OPENAI_API_KEY). After the deploy the
# server's audit log is checked and its head printed here, outside the server's reach.
""" + _ON + """\
  PROMSTACK_URL: ${{{{ secrets.PROMSTACK_URL }}}}
  PROMSTACK_TOKEN: ${{{{ secrets.PROMSTACK_TOKEN }}}}
  OPENAI_API_KEY: ${{{{ secrets.OPENAI_API_KEY }}}}
""" + _TEST_JOB + """\
    steps:
""" + _INSTALL + _DEPLOY + _VERIFY

# For one person without a server: the store of record committed to git (`ci init --local`).
LOCAL_WORKFLOW = """\
# PromStack: test, gate and deploy a prompt on every push to prompts/ (promstack ci init --local).
# The store of record is .promstack/promstack.db, committed with the prompts
# (git add -f .promstack/promstack.db); the deploy job commits the moved label back.
# Its audit log is keyed with .promstack/audit.key, which is never committed: store that file as
# the repository secret PROMSTACK_AUDIT_KEY (gh secret set PROMSTACK_AUDIT_KEY < .promstack/audit.key).
# After each deploy the log's head (COUNT:HASH) is printed here, so the history of heads lives
# outside the database: `promstack audit verify --expect COUNT:HASH` catches rows cut off since.
""" + _ON + """\
  PROMSTACK_USER: github-actions
  OPENAI_API_KEY: ${{{{ secrets.OPENAI_API_KEY }}}}
  PROMSTACK_AUDIT_KEY: ${{{{ secrets.PROMSTACK_AUDIT_KEY }}}}
""" + _TEST_JOB + """\
    permissions:
      contents: write
    steps:
      - uses: actions/checkout@v4
""" + _INSTALL + _IMPORT + _DEPLOY + _VERIFY + """\
      - name: Keep the deployment
        run: |
          git config user.name github-actions
          git config user.email github-actions@users.noreply.github.com
          git add -f .promstack/promstack.db
          git commit -m "promstack: deploy prompt $PROMPT_ID" || exit 0
          git push
"""


def workflow_text(prompt_id: str | int = 42, *, local: bool = False, source: str | None = None) -> str:
    """The workflow `ci init` writes: against the team server, or (`local`) with the store
    committed to git; PromStack installed from `source` (None: a marked placeholder)."""
    from promstack.install_source import PLACEHOLDER

    note = "" if source else _PLACEHOLDER_NOTE
    return (LOCAL_WORKFLOW if local else WORKFLOW).format(prompt_id=prompt_id, source=source or PLACEHOLDER,
                                                          install_note=note)


def gate_progress(quiet: bool, json_output: bool) -> Any:
    from .evals import progress_bar

    return progress_bar("gate", quiet or json_output)


def print_deployment(d: dict[str, Any]) -> None:
    """The gate's checks, one a line, then the engine's sentence for the deployment (in CLI words)."""
    from promstack.deploy import check_text, describe

    for check in d.get("gate", {}).get("checks", []):
        mark = "SKIPPED" if check.get("skipped") else "ok" if check["passed"] else "FAILED"
        click.echo(f"  {check['check']:7} {mark:8} {check_text(check, d['prompt_id'], cli_words)}")
    click.echo(describe(d, cli_words))


def _exit_for(d: dict[str, Any]) -> None:
    if d["status"] == "refused":
        sys.exit(EXIT_CHECK_FAILED)


def _busy(func: Any) -> Any:
    """Another deploy running is a check that failed (exit 1), not bad input."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from promstack.deploy import DeployBusy

        try:
            return func(*args, **kwargs)
        except DeployBusy as exc:
            fail(error_text(exc), EXIT_CHECK_FAILED)

    return wrapper


@cli.group("deploy", invoke_without_command=True)
@click.option("--prompt", help="Prompt id or name, e.g. 42.")
@click.option("--version", type=int, help="Version to deploy (default: the head of main).")
@click.option("--env", "env", help="Environment (default: the last one, production).")
@click.option("--force", is_flag=True, help="Skip the gate (all checks, or those named by --skip); audited.")
@click.option("--skip", multiple=True, type=click.Choice(["previous", "tests", "score", "alerts"]),
              help="Skip one gate check (needs --force).")
@click.option("--rollback", is_flag=True, help="Put the environment back on its previous version.")
@click.option("--rollout", type=float, metavar="PERCENT", help="Serve the new version to this share of users first.")
@click.option("--reason", help="Why: kept in the label's history and the audit log.")
@click.option("--rerun", is_flag=True, help="Run the suite afresh instead of reusing a passing run of the last 24 hours.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@command_context
@_busy
def deploy_cmd(ctx: Any, prompt: str | None, version: int | None, env: str | None, force: bool,
               skip: tuple[str, ...], rollback: bool, rollout: float | None, reason: str | None, rerun: bool,
               quiet: bool) -> None:
    """Deploy a prompt version to an environment through its gate (tests, judge score, alerts).

    \b
    promstack deploy --prompt 42
    promstack deploy --prompt 42 --version 3 --env staging --reason "fixes refunds"
    promstack deploy --prompt 42 --force --skip score --reason "judge is down"
    promstack deploy --prompt 42 --rollback
    promstack deploy --prompt 42 --version 4 --rollout 10
    promstack deploy approve 7
    """
    if click.get_current_context().invoked_subcommand is not None:
        return

    if not prompt:
        fail("say which prompt: promstack deploy --prompt 42")
    if rollback:
        if version is not None or force or skip or rollout is not None or rerun:
            fail("--rollback goes back one step: drop --version/--force/--skip/--rollout/--rerun")
        result = ctx.client.deploys.rollback(prompt, env=env, reason=reason)
    else:
        with gate_progress(quiet, ctx.json) as progress:
            result = ctx.client.deploys.deploy(prompt, version=version, env=env, force=force, skip=skip,
                                               reason=reason, rollout=rollout, rerun=rerun, progress=progress,
                                               warn=warn)
    if not as_json(ctx, result):
        print_deployment(result)
    _exit_for(result)


@deploy_cmd.command("approve")
@click.argument("deployment_id", type=int, metavar="ID")
@click.option("--reason", help="Why (kept in the audit log).")
@command_context
@_busy
def deploy_approve(ctx: Any, deployment_id: int, reason: str | None) -> None:
    """Approve a deployment that waits for it: its label moves now.

    \b
    promstack deploy approve 7
    """

    result = ctx.client.deploys.approve(deployment_id, reason=reason)
    emit(ctx, result, print_deployment)


@deploy_cmd.command("reject")
@click.argument("deployment_id", type=int, metavar="ID")
@click.option("--reason", help="Why (kept in the audit log).")
@command_context
def deploy_reject(ctx: Any, deployment_id: int, reason: str | None) -> None:
    """Reject a deployment that waits for approval."""

    result = ctx.client.deploys.reject(deployment_id, reason=reason)
    emit(ctx, result, f"Rejected deployment {deployment_id}")


@deploy_cmd.command("list")
@click.option("--prompt", help="Only this prompt.")
@click.option("--env", "env", help="Only this environment.")
@click.option("--status", help="Only this status (e.g. pending_approval).")
@click.option("--limit", default=20, show_default=True)
@command_context
def deploy_list(ctx: Any, prompt: str | None, env: str | None, status: str | None, limit: int) -> None:
    """Deployments, newest first."""

    found = ctx.client.deploys.list_deployments(prompt, env=env, status=status, limit=limit)
    if as_json(ctx, found):
        return
    for d in found:
        frm = f"v{d['from_version']}" if d["from_version"] is not None else "-"
        forced = " forced" if d["forced"] else ""
        click.echo(f"#{d['id']:<4} prompt {d['prompt_id']} {d['environment']:<12} {frm:>4} -> v{d['to_version']:<4} "
                   f"{d['kind']:<9} {d['status']:<17}{forced} by {d['requested_by']} {d['requested_at']}"
                   + (f"  {d['reason']}" if d["reason"] else ""))
    if not found:
        click.echo("No deployments yet.")


@deploy_cmd.command("status")
@click.option("--prompt", required=True, help="Prompt id or name.")
@command_context
def deploy_status(ctx: Any, prompt: str) -> None:
    """Which version each environment serves, its gate, and any A/B test or rollout there."""

    found = ctx.client.deploys.status(prompt)
    if as_json(ctx, found):
        return
    click.echo(f"{found['name']} (#{found['prompt_id']})")
    for e in found["environments"]:
        version = f"v{e['version']}" if e["version"] is not None else "-"
        gate = ", ".join(e["checks"]) or "no gate"
        extra = ""
        if e["split"]:
            s = e["split"]
            extra = (f"  A/B: v{s['version_a']} / v{s['version_b']} at {s['percent']:g}% B" if s["kind"] == "ab"
                     else f"  rollout: v{s['version_b']} to {s['percent']:g}% of users")
        click.echo(f"  {e['environment']:<12} {version:<5} gate: {gate}{' + approval' if e['approval'] else ''}{extra}")


# ---- A/B tests ----------------------------------------------------------------------------------


@cli.group("ab")
def ab_group() -> None:
    """A/B tests: two versions under one label, users split by a stable hash of their id.

    \b
    promstack ab start --prompt 42 --a 3 --b 4 --split 50
    promstack ab report --prompt 42
    promstack ab stop --prompt 42 --winner b
    """


@ab_group.command("start")
@click.option("--prompt", required=True, help="Prompt id or name.")
@click.option("--a", "a", type=int, help="Version A, the control (default: what the environment serves).")
@click.option("--b", "b", type=int, required=True, help="Version B.")
@click.option("--split", default=50.0, show_default=True, help="Percentage of users who get B.")
@click.option("--env", "env", help="Environment (default: staging).")
@click.option("--reason", help="Why (kept in the audit log; required with --force).")
@click.option("--force", is_flag=True, help="Start without running the environment's gate on the arms; needs --reason, audited.")
@click.option("--rerun", is_flag=True, help="Run the gate's suite afresh instead of reusing a passing run.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@command_context
def ab_start(ctx: Any, prompt: str, a: int | None, b: int, split: float, env: str | None, reason: str | None,
             force: bool, rerun: bool, quiet: bool) -> None:
    """Start an A/B test: get_prompt(..., label=ENV, user_id=...) serves A or B. In a gated
    environment each arm it does not serve yet must pass its gate first (exit 1 if one fails)."""

    if force and not (reason or "").strip():
        fail("--force needs --reason: say why the gate is skipped (it goes into the audit log)")
    with gate_progress(quiet, ctx.json) as progress:
        found = ctx.client.deploys.ab_start(prompt, a=a, b=b, split=split, env=env, reason=reason,
                                            force=force, rerun=rerun, progress=progress, warn=warn)
    if as_json(ctx, found):
        return
    click.echo(f"A/B test {found['id']} of {found['name']} in {found['environment']}: A = v{found['version_a']} "
               f"({100 - found['percent']:g}% of users), B = v{found['version_b']} ({found['percent']:g}%)")


def _fmt(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "latency":
        return f"{value:,.0f} ms"
    if name == "error_rate":
        return f"{value:.2%}"
    if name == "cost":
        return f"${value:.6f}"
    return f"{value:.1f}"


@ab_group.command("report")
@click.option("--prompt", required=True, help="Prompt id or name.")
@click.option("--env", "env", help="Environment (default: staging).")
@click.option("--evaluate", is_flag=True, help="Run the suite for an arm that has no finished run (judge score).")
@command_context
def ab_report(ctx: Any, prompt: str, env: str | None, evaluate: bool) -> None:
    """Compare the arms on judge score, latency, error rate and cost, with significance tests."""

    found = ctx.client.deploys.ab_report(prompt, env=env, evaluate=evaluate)
    if as_json(ctx, found):
        return
    s = found["split"]
    click.echo(f"A/B test {s['id']} of {found['name']} in {found['environment']} ({s['status']}, since {s['started_at']})")
    click.echo(f"  A = v{found['a']['version']}: {found['a']['calls']} calls   "
               f"B = v{found['b']['version']}: {found['b']['calls']} calls")
    click.echo(f"  {'metric':<11} {'A':>14} {'B':>14}  {'test':<17} {'p':>7}  better")
    for name, item in found["metrics"].items():
        p = "-" if item["p"] is None else f"{item['p']:.3f}"
        better = item["better"].upper() if item["better"] else "-"
        click.echo(f"  {name:<11} {_fmt(name, item['a']):>14} {_fmt(name, item['b']):>14}  {item['test']:<17} {p:>7}  {better}")
    for note in found["notes"]:
        click.echo(f"  note: {note}")
    click.echo(found["verdict"])
    if found["recommend"]:
        click.echo(f"Recommendation: promstack ab stop --prompt {s['prompt_id']} --winner {found['recommend']}")


@ab_group.command("stop")
@click.option("--prompt", required=True, help="Prompt id or name.")
@click.option("--winner", type=click.Choice(["a", "b"], case_sensitive=False), help="Promote this arm.")
@click.option("--env", "env", help="Environment (default: staging).")
@click.option("--reason", help="Why (kept in the label's history and the audit log; required with --force).")
@click.option("--force", is_flag=True, help="Let a winner that has not passed the gate take the label; needs --reason, audited.")
@command_context
def ab_stop(ctx: Any, prompt: str, winner: str | None, env: str | None, reason: str | None, force: bool) -> None:
    """End the A/B test; --winner moves the environment's label to that arm's version (in a
    gated environment only a version that passed its gate, unless --force --reason)."""

    if force and not (reason or "").strip():
        fail("--force needs --reason: say why the gate is skipped (it goes into the audit log)")
    found = ctx.client.deploys.ab_stop(prompt, winner=winner, env=env, reason=reason, force=force)
    if as_json(ctx, found):
        return
    if winner:
        version = found[f"version_{winner.lower()}"]
        click.echo(f"A/B test {found['id']} stopped: {winner.upper()} won; {found['environment']} serves "
                   f"{found['name']} v{version} (deployment {found['deployment']})")
    else:
        click.echo(f"A/B test {found['id']} stopped without a winner; {found['environment']} is unchanged")


# ---- rollouts -----------------------------------------------------------------------------------


@cli.group("rollout")
def rollout_group() -> None:
    """Gradual rollout: start one with `promstack deploy --prompt 42 --version 4 --rollout 10`.

    \b
    promstack rollout status --prompt 42
    promstack rollout promote --prompt 42            # 10 -> 25 -> 50 -> 100
    promstack rollout check                          # halt any rollout whose new version alerts
    promstack rollout abort --prompt 42
    """


def _print_split(found: dict[str, Any]) -> None:
    if found.get("halted") or found["status"] == "halted":
        click.echo(f"HALTED: rollout {found['id']} of {found['name']}; everyone is back on v{found['version_a']} "
                   f"({found['outcome']})")
    elif found["status"] == "completed":
        click.echo(f"Rollout {found['id']} complete: {found['environment']} serves {found['name']} v{found['version_b']}")
    else:
        click.echo(f"Rollout {found['id']} of {found['name']} in {found['environment']}: v{found['version_b']} serves "
                   f"{found['percent']:g}% of users, v{found['version_a']} the rest")


@rollout_group.command("status")
@click.option("--prompt", required=True)
@click.option("--env", "env", help="Environment (default: production).")
@command_context
def rollout_status(ctx: Any, prompt: str, env: str | None) -> None:
    """The running rollout of a prompt."""

    found = ctx.client.deploys.rollout_status(prompt, env=env)
    emit(ctx, found, _print_split)


@rollout_group.command("promote")
@click.option("--prompt", required=True)
@click.option("--env", "env", help="Environment (default: production).")
@click.option("--to", "to", type=float, metavar="PERCENT", help="Share to step up to (default: the next step).")
@command_context
def rollout_promote(ctx: Any, prompt: str, env: str | None, to: float | None) -> None:
    """Serve the new version to more users; at 100% the label moves. Halts instead if it alerts."""

    found = ctx.client.deploys.promote(prompt, env=env, to=to)
    emit(ctx, found, _print_split)
    if found.get("halted"):
        sys.exit(EXIT_CHECK_FAILED)


@rollout_group.command("check")
@command_context
def rollout_check(ctx: Any) -> None:
    """Check every running rollout; halt (and roll back) those whose new version alerts. Exit 1 if any halted."""

    found = ctx.client.deploys.check_rollouts()
    if not as_json(ctx, found):
        for item in found:
            _print_split(item)
        if not found:
            click.echo("No rollout is running.")
    if any(item["halted"] for item in found):
        sys.exit(EXIT_CHECK_FAILED)


@rollout_group.command("abort")
@click.option("--prompt", required=True)
@click.option("--env", "env", help="Environment (default: production).")
@click.option("--reason", help="Why (kept in the audit log).")
@command_context
def rollout_abort(ctx: Any, prompt: str, env: str | None, reason: str | None) -> None:
    """Stop a rollout: everyone back on the stable version."""

    found = ctx.client.deploys.abort(prompt, env=env, reason=reason)
    emit(ctx, found, _print_split)


# ---- CI ----------------------------------------------------------------------------------------


@cli.group("ci")
def ci_group() -> None:
    """Continuous integration: the GitHub Actions job of the guide's pipeline (test, score, deploy)."""


@ci_group.command("init")
@click.option("--prompt", "prompt_id", default="42", show_default=True, help="The PROMPT_ID the workflow deploys.")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=".", show_default=True,
              help="The repository's root.")
@click.option("--force", is_flag=True, help="Overwrite an existing workflow file.")
@click.option("--local", is_flag=True,
              help="For one person without a server: the store is committed to git and the deploy commits back.")
@click.option("--source", metavar="URL",
              help="Where the workflow installs PromStack from: a git URL with a tag "
                   "(git+https://github.com/you/promstack@v0.1.0) or a wheel's URL (env: PROMSTACK_SOURCE; "
                   "default: where this copy was installed from, when CI can reach it).")
def ci_init(prompt_id: str, folder: str, force: bool, local: bool, source: str | None) -> None:
    """Write .github/workflows/prompts.yml: on push to prompts/**, test, gate on the score, deploy,
    against the team server named by the repository secrets PROMSTACK_URL and PROMSTACK_TOKEN.
    The workflow installs PromStack from --source, else from where this copy came from (its git
    repository at the installed tag or commit, or the wheel's URL).

    \b
    promstack ci init --prompt 42
    promstack ci init --prompt 42 --source git+https://github.com/you/promstack@v0.1.0
    promstack ci init --prompt 42 --local
    """
    from promstack.install_source import chosen

    if not str(prompt_id).strip() or any(c in str(prompt_id) for c in "\n\r:{}#'\""):
        fail(f"--prompt {prompt_id!r} is not a prompt id or name the workflow can carry")
    path = Path(folder) / ".github" / "workflows" / "prompts.yml"
    if path.exists() and not force:
        fail(f"{path} exists; --force overwrites it")
    try:
        found = chosen(source)
    except InvalidInput as exc:
        fail(str(exc))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(workflow_text(prompt_id, local=local, source=found), encoding="utf-8")
    if found is None:
        warn(f"{path} installs PromStack from a placeholder: this copy was not installed from a git "
             "repository or a URL a CI job can reach, so give --source (a git URL with a tag, or a wheel's "
             "URL) and run 'promstack ci init --force' again")
    if not local:
        click.echo(f"Wrote {path}: commit it with your prompts, and set the repository secrets PROMSTACK_URL, "
                   "PROMSTACK_TOKEN (a deployer token) and your model keys")
        return
    click.echo(f"Wrote {path}: commit it with your prompts (and .promstack/promstack.db: git add -f), and "
               "store .promstack/audit.key as the repository secret PROMSTACK_AUDIT_KEY, never in git")
