"""The version-control commands: init, prompt, history, diff, rollback, branch, merge, label, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from store.bounds import read_bounded
from store.errors import InvalidInput

from . import (
    EXIT_CHECK_FAILED,
    as_json,
    cli,
    command_context,
    emit,
    handle_errors,
    json_object_option,
)


def _read_template(template: str | None, file: str | None) -> Any:
    """The template from --template, or --file (a path, or '-' for standard input: never read
    implicitly, since CI jobs run with a stdin that is not a terminal), as given: bytes from
    files, so the engine can tell a non-UTF-8 or binary file from text."""
    if template is not None and file is not None:
        raise InvalidInput("give the template with --template or --file, not both")
    # Measured before it is read: a template is at most 1 MB, and a prompt file at most 2 MB.
    from store.filesync import MAX_FILE_BYTES

    if file == "-":
        return read_bounded(sys.stdin.buffer, MAX_FILE_BYTES, "standard input")
    if file is not None:
        return read_bounded(file, MAX_FILE_BYTES, file)
    return template


def _model_config(config: str | None, model: str | None, temperature: float | None) -> dict | None:
    if config is None and model is None and temperature is None:
        return None
    parsed: dict[str, Any] = {}
    if config is not None:
        parsed = json_object_option(config, "--config", '{"model": "gpt-4o-mini"}')
    if model is not None:
        parsed["model"] = model
    if temperature is not None:
        parsed["temperature"] = temperature
    return parsed


def _config_options(func):
    func = click.option("--temperature", type=float, help="Sampling temperature (0-2).")(func)
    func = click.option("--model", help="Model name, e.g. gpt-4o-mini.")(func)
    func = click.option("--config", help='Model config as JSON, e.g. \'{"model": "gpt-4o", "max_tokens": 300}\'.')(func)
    return func


def _template_options(func):
    func = click.option("--file", "-f", type=click.Path(dir_okay=False, allow_dash=True),
                        help="Read the template from a file ('-' for standard input).")(func)
    func = click.option("--template", "-t", help="The template text; {{ variable }} for inputs.")(func)
    return func


def _say_version(version, verb: str = "Saved") -> None:
    if not version.created:
        click.echo(f"No change: {version.name} v{version.version} already has this content.")
        return
    click.echo(f"{verb} {version.name} v{version.version} on {version.branch} ({version.sha256[:12]})")
    for warning in version.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.command("init")
@click.argument("folder", required=False, type=click.Path(file_okay=False))
@handle_errors
def init_workspace(folder: str | None) -> None:
    """Create a workspace (.promstack/ with its store) in FOLDER or here.

    \b
    promstack init
    """
    from promstack.client import Client
    from store.workspace import init

    path = init(folder)
    Client(path).close()  # creates and migrates the store
    click.echo(f"Initialised PromStack workspace in {path.parent}")


@cli.group("prompt")
def prompt_group() -> None:
    """Create, update, show, list, delete and restore prompts."""


@prompt_group.command("create")
@click.argument("name")
@_template_options
@_config_options
@click.option("--description", "-d", help="What the prompt is for.")
@click.option("--message", "-m", help="Why this version exists.")
@click.option("--id", "prompt_id", type=int, help="Ask for a specific prompt id.")
@command_context
def prompt_create(state, name, template, file, config, model, temperature, description, message, prompt_id) -> None:
    """Create prompt NAME with its first version.

    \b
    promstack prompt create support/refund -t "환불 절차를 안내하세요: {{ question }}" --model gpt-4o-mini
    """
    if template is None and file is None:
        raise InvalidInput("give the first version's text with --template TEXT or --file PATH ('-' for stdin)")
    version = state.client.create_prompt(
        name, _read_template(template, file), model_config=_model_config(config, model, temperature),
        description=description, message=message, source="cli", id=prompt_id,
    )
    emit(state, version.to_dict(), f"Created {version.name} (id {version.prompt_id}) v{version.version}")


@prompt_group.command("update")
@click.argument("prompt")
@_template_options
@_config_options
@click.option("--message", "-m", help="Why this version exists.")
@click.option("--branch", "-b", default="main", show_default=True, help="Branch to save on.")
@command_context
def prompt_update(state, prompt, template, file, config, model, temperature, message, branch) -> None:
    """Save a new version of PROMPT (identical content creates none).

    \b
    promstack prompt update support/refund -f refund.txt -m "shorter"
    """
    has_template = template is not None or file is not None
    version = state.client.save(
        prompt, _read_template(template, file) if has_template else None,
        model_config=_merged_config(state, prompt, branch, config, model, temperature),
        message=message, branch=branch, source="cli", keep_kind=True,
    )
    if not as_json(state, version.to_dict()):
        _say_version(version)


def _merged_config(state, prompt, branch, config, model, temperature):
    """--model/--temperature change one key of the head's config; --config replaces it."""
    changes = _model_config(None, model, temperature)
    if config is not None:
        return {**_model_config(config, None, None), **(changes or {})}
    if changes is None:
        return None
    return {**state.client.get_prompt(prompt, branch=branch).model_config, **changes}


def _selector(version: int | None, label: str | None, branch: str | None) -> dict[str, Any]:
    return {"version": version, "label": label, "branch": branch}


@prompt_group.command("show")
@click.argument("prompt")
@click.option("--version", "-v", "version", type=int, help="A version number.")
@click.option("--label", "-l", help="A label such as production.")
@click.option("--branch", "-b", help="The head of a branch.")
@click.option("--resolved", is_flag=True, help="Expand {% include %}s.")
@command_context
def prompt_show(state, prompt, version, label, branch, resolved) -> None:
    """Show a version of PROMPT (default: the head of main).

    \b
    promstack prompt show 42 --version 3
    """
    found = state.client.get_prompt(prompt, resolved=resolved, **_selector(version, label, branch))
    if as_json(state, found.to_dict()):
        return
    click.echo(f"{found.name} (id {found.prompt_id}) v{found.version} on {found.branch} "
               f"by {found.author}, {found.created_at}")
    if found.message:
        click.echo(f"  {found.message}")
    if found.model_config:
        click.echo(f"  config: {json.dumps(found.model_config, ensure_ascii=False)}")
    if found.variables:
        click.echo("  variables: " + ", ".join(
            v["name"] + ("" if v["required"] else f"={v.get('default')!r}") for v in found.variables))
    click.echo("")
    if found.kind == "text":
        click.echo(found.template)
    else:
        for message in found.template:
            click.echo(f"[{message['role']}]\n{message['content']}\n")


@prompt_group.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include deleted (archived) prompts.")
@command_context
def prompt_list(state, include_archived) -> None:
    """List prompts, grouped in folders by the '/' in their names.

    \b
    promstack prompt list --json
    """
    prompts = state.client.list_prompts(include_archived=include_archived)
    if as_json(state, [p.to_dict() for p in prompts]):
        return
    if not prompts:
        click.echo("No prompts yet: promstack prompt create NAME -t 'text'")
        return
    folder_shown: set[str] = set()
    for p in prompts:
        parts = p.name.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in folder_shown:
                folder_shown.add(folder)
                click.echo("  " * (depth - 1) + parts[depth - 1] + "/")
        labels = " ".join(f"{k}=v{v}" for k, v in p.labels.items() if k != "latest")
        archived = " (deleted)" if p.archived else ""
        click.echo(f"{'  ' * (len(parts) - 1)}{parts[-1]}  #{p.id}  v{p.head}  "
                   f"{p.versions} versions{archived}  {labels}".rstrip())


@prompt_group.command("delete")
@click.argument("prompt")
@command_context
def prompt_delete(state, prompt) -> None:
    """Archive PROMPT (nothing is lost; `promstack prompt restore` brings it back)."""
    summary = state.client.delete_prompt(prompt)
    emit(state, summary.to_dict(), f"Deleted {summary.name} (archived; restore with: promstack prompt restore {summary.id})")


@prompt_group.command("restore")
@click.argument("prompt")
@command_context
def prompt_restore(state, prompt) -> None:
    """Bring back an archived PROMPT."""
    summary = state.client.restore_prompt(prompt)
    emit(state, summary.to_dict(), f"Restored {summary.name} at v{summary.head}")


@cli.command("history")
@click.argument("prompt")
@click.option("--branch", "-b", help="Only this branch's line of ancestry.")
@click.option("--limit", "-n", type=int, help="Show at most N versions.")
@click.option("--checkpoints", is_flag=True,
              help="Fold unnamed saves: show named, labelled, first and newest versions.")
@command_context
def history(state, prompt, branch, limit, checkpoints) -> None:
    """Versions of PROMPT, newest first.

    \b
    promstack history support/refund -n 10
    promstack history support/refund --checkpoints
    """
    if checkpoints:
        _folded_history(state, prompt, branch)
        return
    versions = state.client.history(prompt, branch=branch, limit=limit)
    checks = state.client.version_checks(prompt, [v.version for v in versions]) if versions else {}
    if as_json(state, [{**v.to_dict(), "check": checks[v.version].to_dict() if v.version in checks else None}
                       for v in versions]):
        return
    labels: dict[int, list[str]] = {}
    for name, number in state.client.labels(prompt).items():
        labels.setdefault(number, []).append(name)
    # The quick check of each save (promstack.evals.check), as every face words it; a column
    # only once some version of the prompt had a suite to be checked with.
    shown = any(c.status != "no_suite" for c in checks.values())
    texts = {n: _clipped(c.text, CHECK_COLUMN) for n, c in checks.items()}
    width = max((len(t) for t in texts.values()), default=0) if shown else 0
    for v in versions:
        tags = f" [{', '.join(labels[v.version])}]" if v.version in labels else ""
        check = f"{texts.get(v.version, ''):<{width}}  " if width else ""
        click.echo(f"v{v.version:<4} {check}{v.created_at[:19].replace('T', ' ')}  {v.branch:<12} "
                   f"{v.author:<12} {v.source:<10} {v.message or ''}{tags}")


CHECK_COLUMN = 30  # a longer check ("not checked: <why>") is clipped; `promstack check` shows it whole


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _folded_history(state, prompt, branch) -> None:
    entries = state.client.folded_history(prompt, branch=branch)
    if as_json(state, [{**e, "version": e["version"].to_dict()} if e["kind"] == "version" else e
                   for e in entries]):
        return
    for e in entries:
        if e["kind"] == "folded":
            plural = "s" if e["count"] > 1 else ""
            click.echo(f"      ... {e['count']} unnamed save{plural} (v{e['from_version']}-v{e['to_version']})")
            continue
        v = e["version"]
        names = "; ".join(e["checkpoints"]) or v.message or ""
        tags = f" [{', '.join(e['labels'])}]" if e["labels"] else ""
        click.echo(f"v{v.version:<4} {v.created_at[:19].replace('T', ' ')}  {v.author:<12} {names}{tags}")


@cli.command("diff")
@click.argument("prompt")
@click.argument("from_version", type=int)
@click.argument("to_version", type=int, required=False)
@click.option("--words", is_flag=True, help="Show a word-level diff instead of lines.")
@click.option("--behaviour", "--behavior", "behaviour", is_flag=True,
              help="Compare what the two versions do: run both on the suite, judge each case's outputs.")
@click.option("--suite", "-s", help="With --behaviour: the suite (default: the one tied to the prompt).")
@click.option("--judge-model", help="With --behaviour: the model that compares the outputs.")
@command_context
def diff(state, prompt, from_version, to_version, words, behaviour, suite, judge_model) -> None:
    """What changed in PROMPT between FROM_VERSION and TO_VERSION (default: the head of main);
    with --behaviour, what they do differently on the suite, case by case.

    \b
    promstack diff support/refund 1 3
    promstack diff support/refund 1 3 --behaviour --suite regression
    """
    if (suite or judge_model) and not behaviour:
        raise click.UsageError("--suite and --judge-model go with --behaviour")
    if behaviour:
        from promstack.evals.behaviour import behaviour_diff
        from promstack.schemas import BehaviourDiff

        from .bisect import show_behaviour

        found = behaviour_diff(state.client, prompt, from_version, to_version, suite=suite, judge_model=judge_model)
        if not as_json(state, BehaviourDiff.model_validate(found).model_dump()):
            show_behaviour(found)
        return
    result = state.client.diff(prompt, from_version, to_version)
    if as_json(state, result.to_dict()):
        return
    color = sys.stdout.isatty()
    if words:
        for op, text in result.words:
            if op == 0:
                click.echo(text, nl=False)
            elif op == 1:
                click.echo(click.style(f"{{+{text}+}}", fg="green") if color else f"{{+{text}+}}", nl=False)
            else:
                click.echo(click.style(f"[-{text}-]", fg="red") if color else f"[-{text}-]", nl=False)
        click.echo("")
    else:
        for line in result.unified.splitlines():
            fg = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            click.echo(click.style(line, fg=fg) if color and fg else line)
    for key, change in result.config_changes.items():
        click.echo(f"config {key}: {change['from']!r} -> {change['to']!r}")
    click.echo(f"{result.added} lines added, {result.removed} removed "
               f"({result.added_words} words added, {result.removed_words} removed)", err=True)


@cli.command("rollback")
@click.argument("prompt")
@click.argument("version", type=int)
@click.option("--branch", "-b", default="main", show_default=True)
@click.option("--message", "-m", help="Why.")
@command_context
def rollback(state, prompt, version, branch, message) -> None:
    """Make VERSION's content the new head (a new version; history is kept).

    \b
    promstack rollback support/refund 2
    """
    saved = state.client.rollback(prompt, version, branch=branch, message=message)
    if not as_json(state, saved.to_dict()):
        _say_version(saved, f"Rolled back to v{version}: new")


@cli.group("branch")
def branch_group() -> None:
    """Branches: experiment without moving main."""


@branch_group.command("create")
@click.argument("prompt")
@click.argument("name")
@click.option("--from", "from_version", type=int, help="Fork from this version (default: head of main).")
@command_context
def branch_create(state, prompt, name, from_version) -> None:
    """Create branch NAME of PROMPT.

    \b
    promstack branch create support/refund shorter
    """
    branch = state.client.create_branch(prompt, name, from_version=from_version)
    emit(state, branch.to_dict(), f"Created branch {branch.name} at v{branch.head}")


@branch_group.command("list")
@click.argument("prompt")
@command_context
def branch_list(state, prompt) -> None:
    """Branches of PROMPT with their heads."""
    branches = state.client.list_branches(prompt)
    if as_json(state, [b.to_dict() for b in branches]):
        return
    for b in branches:
        fork = f" (forked from v{b.forked_from})" if b.forked_from else ""
        click.echo(f"{b.name:<20} v{b.head}{fork}")


@cli.command("merge")
@click.argument("prompt")
@click.argument("branch")
@click.option("--into", default="main", show_default=True)
@click.option("--message", "-m")
@command_context
def merge(state, prompt, branch, into, message) -> None:
    """Apply BRANCH's change onto INTO (a 3-way merge; exit 1 on a conflict).

    \b
    promstack merge support/refund shorter
    """
    merged = state.client.merge(prompt, branch, into=into, message=message)
    if not as_json(state, merged.to_dict()):
        _say_version(merged, "Merged into")


@cli.group("label")
def label_group() -> None:
    """Labels (production, staging, ...): pointers at versions, every move recorded."""


@label_group.command("set")
@click.argument("prompt")
@click.argument("label")
@click.argument("version", type=int)
@click.option("--reason", "-r", help="Why, for the record (required with --force on a gated environment).")
@click.option("--force", is_flag=True, help="Move a gated environment's label without its gate; needs --reason, audited.")
@click.option("--rerun", is_flag=True, help="Run the gate's suite afresh instead of reusing a passing run.")
@command_context
def label_set(state, prompt, label, version, reason, force, rerun) -> None:
    """Point LABEL of PROMPT at VERSION. A gated environment's label (staging, production, ...)
    moves only if VERSION passes that environment's gate, as `promstack deploy` runs it.

    \b
    promstack label set support/refund production 3 -r "passed regression"
    promstack label set support/refund production 2 --force -r "hotfix, judge is down"
    """
    from promstack.deploy import gates

    from . import warn
    from .deploy import gate_progress, print_deployment

    with gate_progress(False, state.json) as progress:  # a gate's suite may take a while: a bar on a terminal
        result = gates.move_label(state.client, prompt, label, version, reason=reason, force=force, rerun=rerun,
                                  progress=progress, warn=warn)
    move, found = result["move"], result["deployment"]
    # JSON: the move as before; a deployment that moved nothing instead
    if as_json(state, {**move.to_dict(), "deployment": found["id"] if found else None} if move else found):
        pass
    elif found is not None and result["status"] != "moved":
        print_deployment(found)
    else:
        was = f" (was v{move.from_version})" if move.from_version else ""
        forced = " (FORCED past the gate, audited)" if found and found.get("forced") else ""
        click.echo(f"{label} -> v{move.to_version}{was}{forced}")
    if result["status"] == "refused":
        sys.exit(EXIT_CHECK_FAILED)


@label_group.command("list")
@click.argument("prompt")
@command_context
def label_list(state, prompt) -> None:
    """Labels of PROMPT and the versions they point at."""
    labels = state.client.labels(prompt)
    if as_json(state, labels):
        return
    for name, number in labels.items():
        click.echo(f"{name:<20} v{number}")


@label_group.command("history")
@click.argument("prompt")
@click.argument("label", required=False)
@command_context
def label_history(state, prompt, label) -> None:
    """Every move of PROMPT's labels (or of LABEL), newest first."""
    moves = state.client.label_history(prompt, label)
    if as_json(state, [m.to_dict() for m in moves]):
        return
    for m in moves:
        old = f"v{m.from_version}" if m.from_version else "-"
        new = f"v{m.to_version}" if m.to_version else "-"
        click.echo(f"{m.at[:19].replace('T', ' ')}  {m.label:<12} {old} -> {new}  {m.actor}  {m.reason or ''}")


@label_group.command("at")
@click.argument("prompt")
@click.argument("label")
@click.argument("when")
@command_context
def label_at(state, prompt, label, when) -> None:
    """Which version LABEL pointed at, at time WHEN (ISO 8601).

    \b
    promstack label at support/refund production 2026-01-09T14:00:00Z
    """
    number = state.client.label_at(prompt, label, when)
    emit(state, {"label": label, "at": when, "version": number},
         f"{label} pointed at no version then" if number is None else f"v{number}")


@label_group.command("rollback")
@click.argument("prompt")
@click.argument("label")
@click.option("--reason", "-r")
@command_context
def label_rollback(state, prompt, label, reason) -> None:
    """Point LABEL back where it pointed before its last move."""
    move = state.client.rollback_label(prompt, label, reason=reason)
    emit(state, move.to_dict(), f"{label} -> v{move.to_version} (was v{move.from_version})")


@cli.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@command_context
def export(state, file) -> None:
    """Write the whole store as JSON to FILE (default: standard output).

    \b
    promstack export backup.json
    """
    text = json.dumps(state.client.export(), ensure_ascii=False, indent=1)
    if file in (None, "-"):
        click.echo(text)
    else:
        Path(file).write_text(text + "\n", encoding="utf-8")
        click.echo(f"Exported to {file}", err=True)
