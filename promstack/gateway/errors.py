"""The gateway's one error model: `GatewayError` with a cause, the sentence it carries, and the
redaction every error text goes through before anyone sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from store import secrets
from store.errors import PromStackError

if TYPE_CHECKING:
    from .routing import Route


class GatewayError(PromStackError):
    """A model call failed. `provider` and `cause` say where and why; the call is logged as
    `call_id`. `cause` is one of: unknown_model, missing_api_key, auth, bad_request,
    not_found, rate_limited, server_error, timeout, connection, malformed_response,
    empty_response, provider_error."""

    def __init__(
        self, message: str, *, provider: str, cause: str, status: int | None = None,
        retryable: bool = False, retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.cause = cause
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.call_id: str | None = None
        self.attempts = 1


RETRYABLE = {"rate_limited", "server_error", "timeout", "connection"}
_ADVICE = {
    "rate_limited": "wait and retry, or lower the concurrency",
    "server_error": "the provider is failing; retry later",
    "timeout": "raise [gateway] timeout in .promstack/config.toml or retry later",
    "connection": "check the provider's api_base and that it is reachable",
    "malformed_response": "the provider answered with a body that is not a chat completion",
    "empty_response": "the provider answered with no choices",
    "auth": "check the API key in the environment",
    "bad_request": "check the model name and the model config's parameters",
    "not_found": "check the model name and the api_base",
}


def error(provider: str, model: str, cause: str, detail: str = "", *, status: int | None = None,
          retry_after: float | None = None) -> GatewayError:
    """The GatewayError for `cause`, worded as every route words it."""
    what = {
        "rate_limited": "rate limited", "server_error": "server error", "timeout": "timed out",
        "connection": "could not connect", "malformed_response": "malformed response",
        "empty_response": "empty response", "auth": "authentication failed",
        "bad_request": "rejected the request", "not_found": "not found",
    }.get(cause, cause.replace("_", " "))
    text = f"provider {provider} (model {model}): {what}"
    if status:
        text += f" (HTTP {status})"
    if detail:
        text += f": {detail}"
    if cause in _ADVICE:
        text += f"; {_ADVICE[cause]}"
    return GatewayError(text, provider=provider, cause=cause, status=status,
                        retryable=cause in RETRYABLE, retry_after=retry_after)


# The one redaction (store.secrets): known keys, anything key-shaped, `NAME=secret` lines.
redact = secrets.redact

DETAIL_LIMIT = 400  # characters of a provider's message kept in an error (and the call log)


def shorten(text: str, limit: int = DETAIL_LIMIT) -> str:
    """At most `limit` characters, cut after a sentence or between words, never inside one: a
    word cut in half reads as the real value ("Please set ANTHROPIC_API_KEY or ANTHR"), and a key
    cut short no longer looks like a key to the redaction that runs after this."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    sentence = max(head.rfind(". "), head.rfind("; "), head.rfind("! "), head.rfind("? "))
    if sentence >= limit // 2:
        return head[: sentence + 1] + " …"
    space = head.rfind(" ")
    if space >= limit // 4:
        return head[:space].rstrip(",;:") + " …"
    return head + "…"  # one unbroken run (a blob): there is no word to keep whole


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header in seconds; None for none, or for an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def status_error(route: Route, status: int, detail: str, retry_after: float | None = None) -> GatewayError:
    """The GatewayError for an HTTP error status from `route`'s provider."""
    if status in (401, 403) and route.keyless:
        detail += (f" (no key was sent to {route.api_base}, which only the model config names: list it "
                   f"under [providers.{route.provider}] trusted_api_bases in .promstack/config.toml)")
    if status == 429:
        cause = "rate_limited"
    elif status in (401, 403):
        cause = "auth"
    elif status == 404:
        cause = "not_found"
    elif status == 408:
        cause = "timeout"
    elif status >= 500:
        cause = "server_error"
    else:
        cause = "bad_request"
    return error(route.provider, route.model, cause, detail, status=status, retry_after=retry_after)
