"""API tokens of a team server: made once, kept as a hash, checked in constant time, revoked.

    token = create(db, "alice", "editor", actor="admin", expires_at="2027-01-01T00:00:00.000000Z")
    row = verify(db, token)            # {"name": "alice", "role": "editor", ...}, or Unauthorized
    revoke(db, "alice", actor="admin")
    rows(db)                           # every token, newest first: never the token itself

A token is `ps_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits); the prefix
lets `store.secrets.redact` recognise one in any text, so a token is never logged. Only its
SHA-256 is stored: with that much entropy a fast hash cannot be reversed, and a password hash
would only slow every request. Creating and revoking write an audit row naming the token, never
its value. `session`/`from_session` sign a browser's sign-in with a key derived from the store's
audit key, bound to the token's hash, so revoking a token ends its sessions too.

Roles are checked by the engine (`promstack.access`); the table's CHECK holds the same five.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from . import audit
from .clock import current, iso, now
from .errors import InvalidInput, NotFound, Unauthorized
from .tx import write

PREFIX = "ps_"
MAX_NAME = 64
_COLUMNS = ("id", "name", "role", "created_at", "created_by", "expires_at", "revoked_at", "revoked_by",
            "last_used_at")
# A token's last use is written at most this often: a busy client must not write on every request.
LAST_USED_EVERY = timedelta(seconds=60)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_token(text: str) -> bool:
    return text.startswith(PREFIX)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not all(c.isalnum() or c in "-_.@" for c in name):
        raise InvalidInput(
            f"a token's name is 1 to {MAX_NAME} letters, digits and - _ . @ (it is the actor in the "
            f"history, e.g. alice or ci-deploy); got {name!r}")
    return name


def _row(values: tuple) -> dict[str, Any]:
    return dict(zip(_COLUMNS, values, strict=True))


def _select(where: str = "") -> str:
    return f"SELECT {', '.join(_COLUMNS)} FROM tokens {where}"


def create(db: sqlite_utils.Database, name: str, role: str, *, actor: str,
           expires_at: str | None = None) -> str:
    """A new token for `name` with `role`; returns the token, the only time it is seen."""
    name = _check_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    with write(db):
        if live(db, name) is not None:
            raise InvalidInput(f"there is already a token named {name!r}; revoke it first "
                               f"(promstack token revoke {name}) or choose another name")
        db.execute(
            "INSERT INTO tokens (name, role, hash, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            [name, role, digest(token), now(), actor, expires_at])
        audit.record(db, actor, "token_create", detail={"name": name, "role": role, "expires_at": expires_at})
    return token


def live(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """The token named `name` that is not revoked (it may have expired), or None."""
    found = db.execute(_select("WHERE name = ? AND revoked_at IS NULL"), [name]).fetchone()
    return _row(found) if found else None


def rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every token, live ones first, newest first; with `state`: active, expired or revoked."""
    found = [_row(r) for r in db.execute(_select("ORDER BY revoked_at IS NOT NULL, id DESC")).fetchall()]
    moment = now()
    for row in found:
        row["state"] = state(row, moment)
    return found


def state(row: dict[str, Any], moment: str | None = None) -> str:
    if row["revoked_at"]:
        return "revoked"
    if row["expires_at"] and row["expires_at"] <= (moment or now()):
        return "expired"
    return "active"


def any_live(db: sqlite_utils.Database) -> bool:
    """True once a token that is not revoked exists: the server then asks every request for one."""
    return db.execute("SELECT 1 FROM tokens WHERE revoked_at IS NULL LIMIT 1").fetchone() is not None


def revoke(db: sqlite_utils.Database, name: str, *, actor: str) -> dict[str, Any]:
    with write(db):
        found = live(db, name)
        if found is None:
            names = [r[0] for r in db.execute("SELECT name FROM tokens WHERE revoked_at IS NULL ORDER BY name")]
            raise NotFound(f"there is no live token named {name!r}; the live ones are: "
                           f"{', '.join(names) or 'none'} (promstack token list)")
        db.execute("UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?", [now(), actor, found["id"]])
        audit.record(db, actor, "token_revoke", detail={"name": name, "role": found["role"]})
    return found


def verify(db: sqlite_utils.Database, token: str) -> dict[str, Any]:
    """The live token row `token` is, or Unauthorized with a sentence. Every stored hash is
    compared, with `hmac.compare_digest`, so the time taken says nothing about which one (or
    which part of one) came close."""
    sent = digest(token)
    match = None
    for values in db.execute(f"SELECT hash, {', '.join(_COLUMNS)} FROM tokens").fetchall():
        if hmac.compare_digest(values[0], sent):
            match = _row(values[1:])
    if match is None:
        raise Unauthorized("the token is not one this server knows: check it was copied whole, "
                           "or ask an admin for one (promstack token create NAME --role ROLE)")
    return _usable(db, match)


def _usable(db: sqlite_utils.Database, row: dict[str, Any]) -> dict[str, Any]:
    moment = now()
    if row["revoked_at"]:
        raise Unauthorized(f"the token {row['name']!r} was revoked at {row['revoked_at']}; ask an admin for a new one")
    if row["expires_at"] and row["expires_at"] <= moment:
        raise Unauthorized(f"the token {row['name']!r} expired at {row['expires_at']}; ask an admin for a new one")
    if row["last_used_at"] is None or row["last_used_at"] <= iso(current() - LAST_USED_EVERY):
        with write(db):
            db.execute("UPDATE tokens SET last_used_at = ? WHERE id = ?", [moment, row["id"]])
    return row


# ---- browser sessions ---------------------------------------------------------------------------


def _session_mac(db: sqlite_utils.Database, token_id: int, expires: int) -> str:
    key = hmac.new(audit.require_key(db).key, b"promstack dashboard sessions", hashlib.sha256).digest()
    stored = db.execute("SELECT hash FROM tokens WHERE id = ?", [token_id]).fetchone()
    body = f"{token_id}.{expires}.{stored[0] if stored else ''}"
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def session(db: sqlite_utils.Database, row: dict[str, Any], lifetime: timedelta) -> tuple[str, int]:
    """A signed session value for a signed-in browser and its lifetime in seconds: `lifetime`,
    or less when the token expires sooner."""
    ends = current() + lifetime
    if row["expires_at"]:
        ends = min(ends, datetime.fromisoformat(row["expires_at"].replace("Z", "+00:00")))
    expires = int(ends.astimezone(UTC).timestamp())
    seconds = max(0, expires - int(current().timestamp()))
    return f"{row['id']}.{expires}.{_session_mac(db, row['id'], expires)}", seconds


def from_session(db: sqlite_utils.Database, value: str) -> dict[str, Any]:
    """The live token a session value names, or Unauthorized (forged, expired, or its token
    revoked or expired since)."""
    token_id, _, rest = value.partition(".")
    expires, _, mac = rest.partition(".")
    if not (token_id.isdigit() and expires.isdigit() and mac):
        raise Unauthorized("the sign-in is not valid; sign in again with your token")
    if int(expires) <= int(current().timestamp()):
        raise Unauthorized("the sign-in has expired; sign in again with your token")
    if not hmac.compare_digest(_session_mac(db, int(token_id), int(expires)), mac):
        raise Unauthorized("the sign-in is not valid; sign in again with your token")
    found = db.execute(_select("WHERE id = ?"), [int(token_id)]).fetchone()
    return _usable(db, _row(found))
