"""The file commands: watch, status, checkpoint, import."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click

from store.errors import InvalidInput

from . import as_json, cli, command_context, emit

_VERBS = {"created": "new", "saved": "saved", "renamed": "renamed", "archived": "archived", "error": "skipped"}


def _line(result) -> str:
    if result.action == "error":
        return f"skipped {result.path}: {result.error}"
    version = f" v{result.version}" if result.version else ""
    return f"{_VERBS.get(result.action, result.action):<8} {result.prompt}{version}  ({result.path})"


@cli.command("watch")
@click.argument("folder", required=False, default="prompts", type=click.Path(file_okay=False))
@click.option("--debounce", type=click.FloatRange(0.01, 10), default=0.1, show_default=True,
              help="Seconds a file must stay quiet before its save is versioned.")
@click.option("--branch", envvar="PROMSTACK_BRANCH", default=None,
              help="Branch that file saves go to and write-backs follow (env: PROMSTACK_BRANCH; default main).")
@click.option("--no-reconcile", is_flag=True, help="Skip versioning what changed while nobody watched.")
@command_context
def watch(state, folder, debounce, branch, no_reconcile) -> None:
    """Version every save of the prompt files in FOLDER (default: prompts/) until Ctrl-C.

    A file's prompt is its path under FOLDER without the suffix: prompts/support/refund.prompt.md
    is 'support/refund'. Formats: .txt .md .j2, .prompt.md, .prompt.yml, .prompty, .prompt.

    \b
    promstack watch
    promstack watch prompts --debounce 0.2
    """
    from store.watch import Watcher

    logging.basicConfig(level=logging.WARNING, format="promstack: %(message)s")
    if state.client.remote:  # PROMSTACK_URL: the saves become versions on the team server
        from .server import saving_to_server

        with saving_to_server(folder):
            _until_interrupted()
        return
    db_path = state.client.store.path
    if db_path is None:
        raise InvalidInput("watching needs a store file; run 'promstack init' or set PROMSTACK_DB")
    quiet = state.json

    def report(result) -> None:
        if result.action == "unchanged":
            return
        if quiet:
            click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            click.echo(_line(result))

    checker = _start_checks(state)

    def report_and_check(result) -> None:
        report(result)
        if checker is not None and result.action in ("created", "saved"):
            checker.nudge()

    watcher = Watcher(db_path, folder, debounce=debounce, branch=branch, actor=state.client.actor,
                      on_result=report_and_check)
    results = watcher.start(reconcile=not no_reconcile)
    if not quiet:
        changed = sum(r.action in ("created", "saved", "renamed", "archived") for r in results)
        click.echo(f"Watching {watcher.watch_dir} ({changed} change{'s' if changed != 1 else ''} reconciled); "
                   "Ctrl-C stops.", err=True)
    try:
        _until_interrupted()
    finally:
        watcher.stop()
        if checker is not None:
            checker.stop()


def _start_checks(state):
    """Each saved file's quick check (promstack.evals.check) runs here; its line is printed
    when it finishes."""
    from promstack.evals.check import start_checker

    def done(name, version, found) -> None:
        if found.status in ("no_suite", "off"):
            return
        if state.json:
            click.echo(json.dumps({"action": "checked", "prompt": name, "version": version,
                                   "check": found.to_dict()}, ensure_ascii=False))
        else:
            click.echo(f"checked  {name} v{version}  {found.text}")

    return start_checker(state.client, on_done=done)


def _until_interrupted() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@cli.command("status")
@command_context
def status(state) -> None:
    """Tracked prompt files and the files the watcher could not version.

    \b
    promstack status
    """
    from store.filesync import open_errors, tracked_files

    db = state.client.store.db
    files, errors = tracked_files(db), open_errors(db)
    if as_json(state, {"files": files, "errors": errors}):
        return
    if not files:
        click.echo("No tracked prompt files; 'promstack watch' tracks the files under prompts/.")
    for f in files:
        note = " (file deleted; prompt archived)" if f["missing_since"] else \
            " (prompt archived)" if f["archived_at"] else ""
        click.echo(f"{f['path']:<48} {f['prompt']} v{f['version']}{note}")
    if errors:
        click.echo(f"\n{len(errors)} file{'s' if len(errors) != 1 else ''} not versioned:")
        for e in errors:
            click.echo(f"  {e['path']}: {e['error']} ({e['at'][:19].replace('T', ' ')})")


@cli.command("checkpoint")
@click.argument("prompt")
@click.option("--message", "-m", required=True, help="What this version is (names the checkpoint).")
@click.option("--version", "-v", "version", type=int, help="Name this version instead of the head.")
@click.option("--branch", "-b", help="Name the head of this branch (default main).")
@command_context
def checkpoint(state, prompt, message, version, branch) -> None:
    """Name the head of PROMPT (or --version N): history --checkpoints folds the saves between names.

    \b
    promstack checkpoint support/refund -m "tone approved by legal"
    """
    from store.checkpoints import checkpoint as make

    made = make(state.client.store, prompt, message, version=version, branch=branch)
    emit(state, made, f"Checkpoint {made['name']} v{made['version']}: {made['message']}")


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--name", help="Prompt name for a single FILE (default: its path under prompts/, without the suffix).")
@click.option("--base", type=click.Path(file_okay=False), default=None,
              help="Folder that names are relative to (default: the workspace's prompts/).")
@click.option("--force", is_flag=True,
              help="Take a whole-store JSON's labels of gated environments as they are; needs --reason, audited.")
@click.option("--reason", help="Why the labels are taken without their gates (required with --force).")
@command_context
def import_files(state, files, name, base, force, reason) -> None:
    """Add prompt files to the store, or a whole-store JSON written by 'promstack export'.

    Prompt files are read by the watcher's parsers (.txt .md .j2, .prompt.md, .prompt.yml,
    .prompty, .prompt); a file whose prompt exists becomes a new version of it.

    \b
    promstack import prompts/support/refund.prompt.md
    promstack import backup.json
    promstack import backup.json --force --reason "restore after disk loss"

    A whole-store JSON that points a gated environment (staging, production, ...) at a version
    is refused, nothing imported, unless --force --reason: each such label is then recorded
    as a forced deployment.
    """
    from store.filesync import import_name
    from store.workspace import workspace_root

    if name and len(files) > 1:
        raise InvalidInput("--name names one file; import several files without it")
    if force and not (reason or "").strip():
        raise InvalidInput("--force needs --reason: say why the labels skip their gates (it goes into the audit log)")
    client = state.client
    root = workspace_root(client.store.path) if not client.remote and client.store.path else Path.cwd()
    base_dir = Path(base).resolve() if base else root / "prompts"
    done = []
    for file in files:
        path = Path(file)
        if path.suffix.lower() == ".json":
            document = _load_json(path)
            counts = client.import_(document, force=force, reason=reason)
            done.append({"file": file, "imported": counts})
            if not state.json:
                click.echo(f"Imported {file}: {counts['prompts']} prompts, {counts['versions']} versions")
            continue
        fmt, saved = client.import_file(path, name=name or import_name(path, base_dir),
                                        source=f"file:{_shown(path, root)}")
        done.append({"file": file, "format": fmt, "prompt": saved.name, "prompt_id": saved.prompt_id,
                     "version": saved.version, "created": saved.created})
        if not state.json:
            verb = "Imported" if saved.created else "Unchanged"
            click.echo(f"{verb} {saved.name} v{saved.version} from {file}")
    as_json(state, done)


def _load_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a JSON file PromStack can read ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != "promstack/1":
        raise InvalidInput(f"{path} is not a PromStack export (its top has no \"format\": \"promstack/1\")")
    return document


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.name
