"""API tokens for a team server: `promstack token create|list|revoke`, run on the server's machine
against its store (no server needs to be running).

    promstack token create alice --role editor --expires 90d
    promstack token list
    promstack token revoke alice
"""

from __future__ import annotations

from typing import Any

import click

from . import cli, command_context, emit, fail

_ROLES_HELP = "viewer, runner, editor, deployer or admin"


@cli.group("token")
def token_group() -> None:
    """API tokens: who may use a team server (`promstack serve`), and as whom.

    A token's name is the actor in every version, label move, deployment and audit row its
    requests write; its role says what it may do (viewer < runner < editor < deployer < admin).

    \b
    promstack token create alice --role editor --expires 90d
    promstack token list
    promstack token revoke alice
    """


@token_group.command("create")
@click.argument("name")
@click.option("--role", required=True, help=f"What the token may do: {_ROLES_HELP}.")
@click.option("--expires", help="Expire after this long: 30m, 12h, 90d, 8w (default: never).")
@command_context
def token_create(ctx: Any, name: str, role: str, expires: str | None) -> None:
    """Make a token for NAME and print it, the only time it is shown (only its hash is kept).

    \b
    promstack token create alice --role editor
    promstack token create ci --role deployer --expires 90d
    """
    from promstack import access
    from store import tokens
    from store.clock import current, iso

    try:
        access.rank(role)
    except ValueError as exc:
        fail(f"--role: {exc}")
    expires_at = None
    if expires:
        from promstack.monitoring.call_metrics import parse_duration

        expires_at = iso(current() + parse_duration(expires))
    client = ctx.client
    token = tokens.create(client.store.db, name, role, actor=client.actor, expires_at=expires_at)
    result = {"name": name.strip(), "role": role, "expires_at": expires_at, "token": token}

    def show(_: Any) -> None:
        click.echo(token)
        until = f", until {expires_at}" if expires_at else ""
        click.echo(f"promstack: token {name.strip()!r} ({role}{until}) created. It is shown this once and kept "
                   "only as a hash: copy it now.\n"
                   "Use it against `promstack serve`:\n"
                   f"  curl -H 'Authorization: Bearer {tokens.PREFIX}...' http://HOST:8787/api/prompts\n"
                   "  claude mcp add --transport http promstack http://HOST:8787/mcp "
                   f"--header 'Authorization: Bearer {tokens.PREFIX}...'\n"
                   "  the dashboard: open http://HOST:8787/ and sign in with it", err=True)

    emit(ctx, result, show)


@token_group.command("list")
@command_context
def token_list(ctx: Any) -> None:
    """Every token: name, role, state (active, expired, revoked), dates. Never the token itself.

    \b
    promstack token list
    """
    from store import tokens

    found = tokens.rows(ctx.client.store.db)

    def show(rows: list[dict[str, Any]]) -> None:
        if not rows:
            click.echo("no tokens: this server is open on loopback only "
                       "(promstack token create NAME --role ROLE makes one)")
            return
        headers = ("NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "LAST USED")
        cells = [headers] + [(r["name"], r["role"], r["state"], _day(r["created_at"]), _day(r["expires_at"]),
                              _day(r["last_used_at"])) for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    emit(ctx, found, show)


def _day(value: str | None) -> str:
    return value.replace("T", " ")[:16] if value else "-"


@token_group.command("revoke")
@click.argument("name")
@command_context
def token_revoke(ctx: Any, name: str) -> None:
    """Revoke NAME's token: its next request gets 401, its dashboard sessions end.

    \b
    promstack token revoke alice
    """
    from store import tokens

    client = ctx.client
    found = tokens.revoke(client.store.db, name, actor=client.actor)
    emit(ctx, {"name": found["name"], "role": found["role"], "revoked": True},
         f"promstack: token {found['name']!r} ({found['role']}) revoked")
