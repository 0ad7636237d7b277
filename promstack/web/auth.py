"""Who is asking: the principal of every request `promstack serve` answers, from a token.

    gate = Gate(pool, serve_token=None, loopback_only=True)
    principal = gate.principal(headers)      # a Principal, or Unauthorized with a sentence

The rules, in order:

- `Authorization: Bearer ps_...` (or the token as the password of HTTP Basic) names a token made
  by `promstack token create`: the principal is that token's name and role. A wrong, revoked or
  expired token is refused (401), whatever else the request carries.
- The dashboard's session cookie, set by signing in at /signin with a token, stands for the
  same token until it expires (`SESSION_LIFETIME`, or the token's own expiry) or the token is
  revoked.
- The server's shared token (`promstack serve --token`, PROMSTACK_SERVE_TOKEN) is the one
  person's password from before named tokens: it stands for `access.LOCAL`, and writes are
  attributed as on a local server.
- Nothing: `access.LOCAL` on a server bound to loopback that has no shared token and no live
  named token (one person, no sign-in, as ever); else 401. Bound to any other address there is
  no way in without a token, /healthz included.

`RequestGuard` (app.py) asks the gate on every request and puts the answer in
`request.state.principal`; the routes, the dashboard and MCP over HTTP read it from there.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from promstack import access
from promstack.access import LOCAL, Principal
from store.errors import Unauthorized

if TYPE_CHECKING:
    from starlette.requests import Request

    from promstack.pool import ClientPool

SESSION_COOKIE = "promstack_session"
SESSION_LIFETIME = timedelta(hours=12)
SIGNIN_PATH = "/signin"
# Requests that need no principal: the form that makes one.
OPEN_PATHS = frozenset({SIGNIN_PATH})
NO_TOKEN = ("this server needs a token: send 'Authorization: Bearer <token>' "
            "(an admin makes one on the server with: promstack token create NAME --role ROLE)")


def principal_of(request: Request) -> Principal:
    """The caller `RequestGuard` found (`access.LOCAL` for an app built without it)."""
    return getattr(request.state, "principal", LOCAL)


def actor_of(principal: Principal) -> str | None:
    """The name a principal's writes carry: a token's name; None (the store's default actor,
    PROMSTACK_USER or the OS user, as on a local server) for `access.LOCAL`."""
    return None if principal is LOCAL else principal.name


def credential(headers: Mapping[str, str]) -> str | None:
    """The token an Authorization header carries (Bearer, or the password of Basic), or None."""
    sent = headers.get("authorization")
    if sent is None:
        return None
    scheme, _, value = sent.partition(" ")
    if scheme.lower() == "basic":  # a browser asked for it: any user name, the token as password
        try:
            return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return value.strip() if scheme.lower() == "bearer" else ""


def session_value(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no session, not a server error
        return None
    found = jar.get(SESSION_COOKIE)
    return found.value if found is not None else None


class Gate:
    """Finds the principal of a request from the store's tokens (read on every request, so a
    token revoked on the command line is refused at its next request)."""

    def __init__(self, pool: ClientPool, *, serve_token: str | None, loopback_only: bool) -> None:
        self.pool = pool
        self.serve_token = serve_token
        self.loopback_only = loopback_only

    def principal(self, headers: Mapping[str, str]) -> Principal:
        """Who sent `headers`; Unauthorized with a sentence when no one may be assumed."""
        sent = credential(headers)
        if sent is not None:
            return self.from_token(sent)
        session = session_value(headers)
        if session:
            with self.pool.client() as client:
                return _principal(_tokens().from_session(client.store.db, session))
        if self.open_locally():
            return LOCAL
        raise Unauthorized(NO_TOKEN)

    def from_token(self, sent: str) -> Principal:
        tokens = _tokens()
        if self.serve_token is not None and hmac.compare_digest(sent.encode(), self.serve_token.encode()):
            return LOCAL
        if not tokens.looks_like_token(sent):
            raise Unauthorized(f"the token is not one this server knows (its tokens start {tokens.PREFIX}); "
                               "send 'Authorization: Bearer <token>' with a token from "
                               "'promstack token create NAME --role ROLE'")
        with self.pool.client() as client:
            return _principal(tokens.verify(client.store.db, sent))

    def open_locally(self) -> bool:
        """No token needed: bound to loopback, no shared token, and no live named token."""
        if not self.loopback_only or self.serve_token is not None:
            return False
        with self.pool.client() as client:
            return not _tokens().any_live(client.store.db)

    def session(self, token: str) -> tuple[Principal, str, int]:
        """Sign in with `token`: its principal, a session cookie's value and its max-age."""
        tokens = _tokens()
        if not tokens.looks_like_token(token.strip()):
            raise Unauthorized(f"that is not a PromStack token (they start {tokens.PREFIX}); "
                               "paste the token 'promstack token create' printed")
        with self.pool.client() as client:
            row = tokens.verify(client.store.db, token.strip())
            value, max_age = tokens.session(client.store.db, row, SESSION_LIFETIME)
        return _principal(row), value, max_age


def _tokens() -> Any:
    from store import tokens

    return tokens


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(row["name"], row["role"])


def require(request: Request, operation: str, *, role: str | None = None) -> Principal:
    """The request's principal, if it may do `operation` (else `access.Forbidden`)."""
    found = principal_of(request)
    access.require(found, operation, role=role)
    return found
