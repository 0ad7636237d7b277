"""The serving commands: `promstack mcp` (MCP on stdio) and `promstack serve` (HTTP)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from . import Context, cli, db_option, error_text, fail, handle_errors


def _db(ctx: click.Context, db: str | None) -> str | None:
    parent = ctx.find_object(Context)
    return db or (parent.db if parent else None)


def remote_url() -> str | None:
    from promstack.remote import server_url

    return server_url()


@contextlib.contextmanager
def saving_to_server(folder: str) -> Iterator[None]:
    """With PROMSTACK_URL, saves of prompt files in `folder` become versions on the server."""
    from promstack.client import Client
    from promstack.remote import FileSaver

    target = Path(folder).resolve()
    if not target.is_dir():
        fail(f"there is no folder {target} to watch; create it or pass --watch DIR")
    client = Client()

    def saved(path: str, version: Any) -> None:
        click.echo(f"promstack: {path}: saved {version.name} v{version.version} on {client.url}", err=True)

    def refused(path: str, exc: Exception) -> None:
        click.echo(f"promstack: {path}: {error_text(exc)}", err=True)

    saver = FileSaver(client, target, on_saved=saved, on_error=refused)
    saver.start()
    click.echo(f"promstack: saving prompt files in {target} to {client.url}", err=True)
    try:
        yield
    finally:
        saver.stop()
        client.close()


@contextlib.contextmanager
def _watching(db: str | None, folder: str | None) -> Iterator[None]:
    """Run the file watcher (store/watch.py) beside a server while it serves; `folder` None
    means no watcher. It writes through its own connection, so it never blocks a request."""
    if folder is None:
        yield
        return
    if db is None and remote_url() is not None:
        with saving_to_server(folder):
            yield
        return
    from store.watch import start_watcher
    from store.workspace import require_db, workspace_root

    path = Path(db) if db else require_db()
    target = Path(folder) if Path(folder).is_absolute() else workspace_root(path) / folder
    if not target.is_dir():
        fail(f"there is no folder {target} to watch; create it or pass --watch DIR")
    watcher = start_watcher(path, target)
    click.echo(f"promstack: watching {target} for prompt files", err=True)
    try:
        yield
    finally:
        watcher.stop()


@cli.command("mcp")
@db_option
@click.option("--watch", "watch_dir", is_flag=False, flag_value="prompts", default=None,
              help="Also version saves of prompt files in DIR (default prompts/) while serving.")
@click.pass_context
@handle_errors
def server_mcp(ctx: click.Context, db: str | None, watch_dir: str | None) -> None:
    """Serve MCP on stdio, for Claude Desktop, VS Code and Claude Code.

    Run it from inside a workspace, or point it at one with --db or PROMSTACK_DB. Versions saved
    through it are authored by PROMSTACK_USER, else by the MCP client's name.

    \b
    claude mcp add promstack -e PROMSTACK_DB=$PWD/.promstack/promstack.db -- promstack mcp
    """
    # Imported here: the engine loads on the first request, so `initialize` is answered fast.
    from mcp_server.server import main
    from store.workspace import find_db

    if _db(ctx, db) is None and remote_url() is None:
        find_db()  # a PROMSTACK_DB into a missing folder is a typo: say so now, not "no prompts"
    with _watching(_db(ctx, db), watch_dir):
        main(_db(ctx, db))


@cli.command("serve")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback asks every request for a token.")
@click.option("--port", default=8787, type=click.IntRange(1, 65535), show_default=True, help="Port to bind.")
@click.option("--token", envvar=["PROMSTACK_SERVE_TOKEN", "PROMSTACK_TOKEN"], default=None,
              help="A shared token for one person's server: 'Authorization: Bearer TOKEN' then acts as the "
                   "local user (env: PROMSTACK_SERVE_TOKEN, or PROMSTACK_TOKEN); 16 characters or more. "
                   "For a team, use named tokens instead: promstack token create NAME --role ROLE.")
@click.option("--watch", "watch_dir", default="prompts", show_default=True,
              help="Version saves of prompt files in this folder of the workspace (when it exists).")
@click.option("--no-watch", is_flag=True, help="Serve without the file watcher.")
@click.option("--workers", default=1, type=click.IntRange(1, 64), show_default=True,
              help="Worker processes over the one store (a poll of a long operation is answered by any).")
@click.pass_context
@handle_errors
def server_serve(ctx: click.Context, db: str | None, host: str, port: int, token: str | None,
                 watch_dir: str, no_watch: bool, workers: int) -> None:
    """Serve the MCP endpoint (/mcp) and the dashboard over HTTP, on http://127.0.0.1:8787.

    Outside a workspace, a new one is made here with the examples. Once a token exists
    (promstack token create), every request needs one: `Authorization: Bearer <token>`, or the
    dashboard's sign-in. Binding another address than loopback (e.g. --host 0.0.0.0) needs a
    token always, so it needs one made first (or --token).

    \b
    promstack serve
    promstack token create alice --role admin && promstack serve --host 0.0.0.0
    """
    from promstack.web.app import create_app, is_loopback, token_problem
    from store.tokens import looks_like_token

    if token is not None and looks_like_token(token):
        # A named token in the environment is a client's (PROMSTACK_URL + PROMSTACK_TOKEN), not
        # the server's shared secret: the server checks named tokens against its store itself.
        click.echo("promstack: PROMSTACK_TOKEN holds a named token (ps_...): not used as the server's "
                   "shared token; named tokens are checked against the store", err=True)
        token = None
    problem = token_problem(token)
    if problem is not None:
        fail(f"--token (or PROMSTACK_SERVE_TOKEN) refused: {problem}")
    path = _db(ctx, db)
    if path is None:
        from promstack.workspace import ensure_workspace

        path = str(ensure_workspace())
    if not is_loopback(host) and not token and not _has_tokens(path):
        fail(f"serving on {host} exposes the store to the network, and it has no token anyone could use: "
             "make one first (promstack token create NAME --role admin) or pass --token")
    from store.workspace import workspace_root

    folder = Path(watch_dir)
    folder = folder if folder.is_absolute() else workspace_root(Path(path)) / folder
    app = create_app(path, host=host, token=token) if workers == 1 else None
    many = f", {workers} workers" if workers > 1 else ""
    click.echo(f"promstack: serving {path} on http://{host}:{port} (MCP at /mcp{many})", err=True)
    with _watching(path, None if no_watch or not folder.is_dir() else str(folder)):
        if app is not None:
            _run(app, host, port)
        else:
            _run_workers(path, host, port, token, workers)


def _run_workers(path: str, host: str, port: int, token: str | None, workers: int) -> None:
    """uvicorn's worker processes, each making the app (promstack.web.app.app_for_workers); the
    file watcher stays in this process, so a file is versioned once."""
    import uvicorn

    os.environ.update({"PROMSTACK_DB": str(Path(path).resolve()), "PROMSTACK_SERVE_HOST": host})
    if token:
        os.environ["PROMSTACK_SERVE_TOKEN"] = token
    else:  # a named token found there was refused above
        os.environ.pop("PROMSTACK_SERVE_TOKEN", None)
    uvicorn.run("promstack.web.app:app_for_workers", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)


def _has_tokens(path: str) -> bool:
    from promstack.client import Client
    from store.tokens import any_live

    with Client(path) as client:
        return any_live(client.store.db)


SHUTDOWN_GRACE_S = 5  # seconds a stopping server gives requests in flight (and open streams)


def _run(app, host: str, port: int) -> None:
    """uvicorn's server, except that on SIGTERM or Ctrl-C every render in progress stops at its
    next step: a slow template must not keep the server, or its event loop, from stopping."""
    import uvicorn

    from store.sandbox import abort_renders

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame) -> None:
            abort_renders()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
    Server(config).run()
