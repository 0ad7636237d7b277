"""The quick check of a save: `promstack check PROMPT [VERSION]` shows it, `--pending` runs
what is waiting (a CLI save starts this in the background)."""

from __future__ import annotations

import click

from store.errors import InvalidInput

from . import cli, command_context, emit


@cli.command("check")
@click.argument("prompt", required=False)
@click.argument("version", type=int, required=False)
@click.option("--pending", is_flag=True,
              help="Check every save still waiting for its check, then exit (a save starts this itself).")
@command_context
def check(state, prompt, version, pending) -> None:
    """The quick check of a version of PROMPT (default: the head of main): its score on the
    suite's sample and the change against its parent.

    \b
    promstack check support/refund
    promstack check support/refund 7
    """
    from promstack.evals import check as engine

    client = state.client
    if pending:
        if client.remote:
            raise InvalidInput("the team server checks its own saves; 'promstack check --pending' runs on a local store")
        client.check_mode = "none"
        _drain(state, engine)
        return
    if prompt is None:
        raise InvalidInput("say which prompt: 'promstack check PROMPT [VERSION]'")
    number = version if version is not None else client.get_prompt(prompt).version
    found = client.version_checks(prompt, [number]).get(number)
    if found is None:
        emit(state, {"version": number, "check": None}, f"v{number}  not checked: saved before checks existed")
        return
    emit(state, {"version": number, "check": found.to_dict()}, lambda _: _show(number, found))


def _show(number, found) -> None:
    click.echo(f"v{number}  {found.text}")
    for word, cases in (("broke", found.broke), ("fixed", found.fixed)):
        for c in cases:
            click.echo(f"  {word}: {c.case}  {c.input!r}: {c.reason or ''}")
    if found.status == "checked":
        cost = f"${found.cost_usd:.4f}" if found.cost_usd is not None else "not known (a call could not be priced)"
        against = f" against v{found.parent_version}" if found.parent_version else ""
        click.echo(f"  {found.sample} cases of suite {found.suite}{against}, cost {cost}")


def _drain(state, engine) -> None:
    client = state.client
    path = client.store.path
    if path is None:
        raise InvalidInput("checking needs a store file; run 'promstack init' or set PROMSTACK_DB")
    while True:
        with engine.only_checker(path) as mine:
            if not mine:
                return  # another `check --pending` holds the store's checks: it sees this save too
            engine.drain(client)
        # A save made while the lock was being let go started a process that found it taken.
        if not engine.pending_left(client):
            return
