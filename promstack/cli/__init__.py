"""`promstack ...`: thin commands over the engine. Parsing, one engine call, printing.

Exit codes: 0 ok, 1 a check failed (tests, a gate, a conflict), 2 usage or input error.
Errors are one sentence on stderr, never a traceback (PROMSTACK_DEBUG=1 shows it).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from store.bounds import too_deep
from store.errors import ARG, MergeConflict, PromStackError, Step, plain_words, word_step

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2


def warn(message: str) -> None:
    """A warning on stderr, in every command's words."""
    click.secho(f"promstack: WARNING: {message}", err=True, fg="yellow", bold=True)


class Context:
    """What every command shares: where the store is and who is acting."""

    def __init__(self, db: str | None, json_output: bool = False) -> None:
        self.db = db
        self.json = json_output
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from promstack.client import Client

            self._client = Client(self.db)
            # A command exits right after a save: its check runs in a detached process.
            self._client.check_mode = "process"
        return self._client

    def close(self) -> None:
        """Close the client this command made, if any: the call log drained and the store closed
        here, while the command's objects are still alive, instead of at the interpreter's
        teardown (measured: ~0.15 s after a 10,000-case `promstack test`, against ~0.01 s here)."""
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


# The steps an engine error suggests (store.errors.Step), as a CLI user takes them.
CLI_ACTIONS = {
    "list_prompts": "'promstack prompt list'",
    "restore_prompt": "'promstack prompt restore {prompt}'",
    "create_branch": "'promstack branch create {prompt} {branch}'",
    "import_suite": "'promstack suite import FILE --name {suite}'",
    "get_run": "'promstack runs RUN'",
    "run_tests": "'promstack test --suite SUITE --prompt {prompt} --model A --model B'",
    "judge_run": "'promstack judge'",
    "list_deployments": "'promstack deploy list'",
    "deploy_version": "'promstack deploy --prompt {prompt} --version {version} --env {environment}'",
    "approve_deployment": "'promstack deploy approve {id}'",
    "promote_rollout": "'promstack rollout promote --prompt {prompt} --env {environment}'",
    "start_rollout": "'promstack deploy --prompt {prompt} --version N --env {environment} --rollout 10'",
    "start_ab_test": "'promstack ab start --prompt {prompt} --a N --b M --split 50'",
    "stop_ab_test": "'promstack ab stop --prompt {prompt}'",
    "abort_rollout": "'promstack rollout abort --prompt {prompt}'",
}
# An argument's flag; "<of>.<name>" when one command spells it differently.
CLI_FLAGS = {
    "models": "--model",
    "arena.models": "--models",
    "environment": "--env",
    "criteria": "--criteria FILE",
}


def cli_words(step: Step) -> str:
    if step.action != ARG:
        return word_step(CLI_ACTIONS, step, plain_words)
    name, of, example = step.params["name"], step.params.get("of"), step.params.get("example")
    flag = CLI_FLAGS.get(f"{of}.{name}") or CLI_FLAGS.get(name) or "--" + name.replace("_", "-")
    if example is None or example is True:
        return flag
    return f"{flag} {','.join(example) if isinstance(example, list) else example}"


def error_text(exc: BaseException) -> str:
    """An engine error's sentence in the CLI's words (commands and flags)."""
    return exc.worded(cli_words) if isinstance(exc, PromStackError) else str(exc)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"promstack: {message}", err=True)
    sys.exit(code)


def handle_errors(func: Callable) -> Callable:
    """Translate engine errors into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MergeConflict as exc:
            fail(error_text(exc), EXIT_CHECK_FAILED)
        except PromStackError as exc:  # a gate that refused says so (exit 1); else bad input
            fail(error_text(exc), getattr(exc, "exit_code", EXIT_USAGE))
        except BrokenPipeError:
            raise  # the reader went away (`| head`): main() ends quietly
        except RecursionError:  # only input nested thousands deep gets here: it is bad input
            fail(str(too_deep("the input")))
        except Exception as exc:
            if os.environ.get("PROMSTACK_DEBUG"):
                raise
            fail(f"unexpected error: {exc.__class__.__name__}: {exc} (PROMSTACK_DEBUG=1 shows where)", 70)

    return wrapper


def db_option(func: Callable) -> Callable:
    # No envvar here: PROMSTACK_DB is read where the store is opened, so an explicit --db
    # (before or after the command name) always wins over the environment.
    return click.option(
        "--db", "db", type=click.Path(dir_okay=False),
        help="Store file (default: PROMSTACK_DB, else the nearest .promstack/promstack.db).",
    )(func)


def json_option(func: Callable) -> Callable:
    return click.option("--json", "json_output", is_flag=True, help="Print stable JSON for machines.")(func)


def command_context(func: Callable) -> Callable:
    """Shared flags (--db, --json) and error handling for a command that uses the store."""

    @db_option
    @json_option
    @click.pass_context
    @handle_errors
    @functools.wraps(func)
    def wrapper(ctx: click.Context, *args: Any, db: str | None = None, json_output: bool = False, **kwargs: Any):
        parent = ctx.find_object(Context)
        state = Context(db or (parent.db if parent else None), json_output)
        try:
            return func(state, *args, **kwargs)
        finally:
            state.close()

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def as_json(state: Context, data: Any) -> bool:
    """Under --json, print a command's result `data` as stable JSON and say so (True); else
    print nothing (False), for the command to print its text: `if as_json(state, found): return`."""
    if state.json:
        emit_json(data)
    return state.json


def emit(state: Context, data: Any, text: str | Callable[[Any], object]) -> None:
    """A command's result: `data` as stable JSON under --json, else `text` for people (a line,
    or a function that prints `data`)."""
    if as_json(state, data):
        return
    if callable(text):
        text(data)
    else:
        click.echo(text)


def json_object_option(value: str, flag: str, example: str) -> dict[str, Any]:
    """An option that takes a JSON object (`--config '{"model": ...}'`); InvalidInput, naming
    the flag with an example, when it is not one."""
    from store.bounds import parse_json
    from store.errors import InvalidInput

    parsed = parse_json(value, flag)
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{flag} must be a JSON object such as {example}")
    return parsed


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="promstack")
@db_option
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """PromStack: version control, tests and deploys for LLM prompts.

    \b
    promstack init
    promstack prompt create support/refund --template "환불 절차를 안내하세요: {{ question }}"
    promstack history support/refund
    promstack diff support/refund 1 2
    promstack rollback support/refund 1
    """
    ctx.obj = Context(db)


def main() -> None:
    code: object = EXIT_OK
    try:
        cli(prog_name="promstack")
    except SystemExit as done:  # click ends every command this way, success included
        code = done.code
    except BrokenPipeError:
        _reader_gone()
        code = EXIT_CHECK_FAILED
    finally:
        # click answers a closed pipe itself (exit 1) but leaves the unwritten output buffered;
        # flushing it at exit would print "Exception ignored ... BrokenPipeError".
        try:
            if sys.__stdout__ is not None:
                sys.__stdout__.flush()
        except (BrokenPipeError, ValueError):
            _reader_gone()
    # Only a command that ended (any other exception goes on to Python's usual exit and its
    # traceback): the command closed its client, so its writes are in the store.
    from .quick_exit import quick_exit

    quick_exit(code)


def _reader_gone() -> None:
    """Python's recipe for SIGPIPE: whatever is left goes to devnull, so nothing is reported."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.__stdout__.fileno())
    except (OSError, ValueError):  # stdout already closed: nothing is left to flush
        pass
    finally:
        os.close(devnull)


def _register_commands() -> None:
    """Each module of this package is one family of commands that adds itself to `cli`.
    They import the engine only inside command bodies, so `promstack --help` stays fast."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_register_commands()
