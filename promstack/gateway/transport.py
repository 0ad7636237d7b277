"""How a request reaches a provider, for chat and embeddings alike: the lean route's one pooled
aiohttp session for providers that speak OpenAI's API, litellm for the rest. (httpx was the first
choice; measured here, its pool serialises 100 concurrent requests on reused keep-alive
connections, ~35 ms each, the known encode/httpx#3215, while aiohttp overlaps them: see
docs/gateway.md.) A request kind (`CHAT`, `EMBEDDINGS`) says only what differs: the path, the
body's field, litellm's function and how the answer is read; sending, error mapping and the
pool are one code path."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import DETAIL_LIMIT, error, retry_after_seconds, shorten, status_error
from .litellm_loader import litellm_error, litellm_kwargs, load_litellm
from .portal import running
from .routing import Route

# model_config keys that are request parameters, passed to the provider as they are
REQUEST_PARAMS = (
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "seed",
    "presence_penalty", "frequency_penalty", "response_format", "logprobs", "top_logprobs",
    "logit_bias", "user", "reasoning_effort", "extra_body",
)

# What a provider answered: (output, input tokens, output tokens, log-probabilities); the output
# is the reply's text for chat, the vectors for embeddings. Tokens are None when not reported.
Answer = tuple[Any, int | None, int | None, Any]


def parse_choice(route: Route, data: dict[str, Any]) -> Answer:
    """A chat completion's first choice and its usage."""
    choices = data["choices"]
    if not choices:
        raise error(route.provider, route.model, "empty_response")
    try:
        choice = choices[0]
        message = choice["message"]
        output = message.get("content")
    except (KeyError, TypeError, IndexError):
        raise error(route.provider, route.model, "malformed_response", "choice without a message") from None
    if output is None:
        output = ""
    usage = data.get("usage") or {}
    return (str(output), usage.get("prompt_tokens"), usage.get("completion_tokens"),
            choice.get("logprobs"))


def parse_embeddings(route: Route, data: dict[str, Any]) -> Answer:
    """An embeddings list in the order of the inputs, and its usage."""
    vectors = [item["embedding"] for item in sorted(data["data"] or [], key=lambda d: d.get("index", 0))]
    return vectors, (data.get("usage") or {}).get("prompt_tokens"), 0, None


@dataclass(frozen=True)
class Kind:
    path: str  # after the api_base, on the lean route
    field: str  # the body's field that carries the input
    what: str  # what a malformed answer is not, for the error
    parse: Callable[[Route, dict[str, Any]], Answer]
    litellm_call: str  # litellm's coroutine for it
    litellm_options: dict[str, Any] = field(default_factory=dict)


# litellm's own retries and cache stay off: ours wrap every route alike.
CHAT = Kind("/chat/completions", "messages", "a chat completion", parse_choice, "acompletion",
            {"max_retries": 0, "num_retries": 0, "caching": False})
EMBEDDINGS = Kind("/embeddings", "input", "an embeddings list", parse_embeddings, "aembedding")


def provider_message(body: bytes) -> str:
    """The sentence in a provider's error body, shortened; the body itself when it has none."""
    try:
        data = json.loads(body)
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        return shorten(str(message or ""))
    except (ValueError, AttributeError):
        return shorten(body[: DETAIL_LIMIT * 4].decode("utf-8", "replace"))


_open_sessions: set[Any] = set()


class Transport:
    """One gateway's connections: an aiohttp session on the portal's loop, made on first use."""

    def __init__(self) -> None:
        self._http = None
        self._http_loop: asyncio.AbstractEventLoop | None = None  # the loop the pool was made on

    def session(self, max_connections: int) -> Any:
        """The aiohttp.ClientSession of the lean route."""
        if self._http is None or self._http.closed:
            import aiohttp

            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections,
                                               ttl_dns_cache=300),
            )
            self._http_loop = asyncio.get_running_loop()
            _open_sessions.add(self._http)  # closed at exit even if this gateway is collected
        return self._http

    async def send(self, kind: Kind, route: Route, payload: Any, params: dict[str, Any],
                   api_key: str | None, timeout: float, max_connections: int) -> Answer:
        """One attempt: `payload` (messages, or texts to embed) with `params` to `route`."""
        if route.route == "lean":
            return await self._lean(kind, route, payload, params, api_key, timeout, max_connections)
        return await self._litellm(kind, route, payload, params, api_key, timeout)

    async def _lean(self, kind: Kind, route: Route, payload: Any, params: dict[str, Any],
                    api_key: str | None, timeout: float, max_connections: int) -> Answer:
        import aiohttp

        session = self.session(max_connections)
        extra_body = params.get("extra_body") or {}
        body = {"model": route.upstream, kind.field: payload,
                **{k: v for k, v in params.items() if k != "extra_body"}, **extra_body}
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        try:
            async with session.post(f"{route.api_base}{kind.path}",
                                    data=json.dumps(body, ensure_ascii=False).encode(), headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                status = response.status
                raw = await response.read()
                retry_after = response.headers.get("retry-after")
        except TimeoutError:
            raise error(route.provider, route.model, "timeout", f"no answer within {timeout:g} s") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise error(route.provider, route.model, "malformed_response", type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise error(route.provider, route.model, "connection", f"{type(exc).__name__} to {route.api_base}") from None
        if status >= 400:
            raise status_error(route, status, provider_message(raw), retry_after_seconds(retry_after))
        try:
            return kind.parse(route, json.loads(raw))
        except (ValueError, KeyError, TypeError):
            raise error(route.provider, route.model, "malformed_response",
                        f"not {kind.what}: {shorten(raw[:480].decode('utf-8', 'replace'), 120)!r}") from None

    async def _litellm(self, kind: Kind, route: Route, payload: Any, params: dict[str, Any],
                       api_key: str | None, timeout: float) -> Answer:
        litellm = load_litellm()
        kwargs = litellm_kwargs(route, api_key, **{kind.field: payload, "timeout": timeout,
                                                   **kind.litellm_options, **params})
        try:
            response = await getattr(litellm, kind.litellm_call)(**kwargs)
        except Exception as exc:
            raise litellm_error(route, exc) from None
        try:
            data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
            return kind.parse(route, data)
        except (KeyError, TypeError, AttributeError):
            raise error(route.provider, route.model, "malformed_response", f"not {kind.what}") from None

    async def aclose(self) -> None:
        """Close the pool from the loop it was made on."""
        if self._http is not None and not self._http.closed:
            with contextlib.suppress(Exception):
                await self._http.close()
            _open_sessions.discard(self._http)
        self._http = None

    def close(self) -> None:
        here = running()
        if (self._http is not None and not self._http.closed and here is not None
                and self._http_loop is here.loop):
            # closing idle sockets at shutdown: a failure leaves nothing to lose
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._http.close(), here.loop).result(timeout=5)
            _open_sessions.discard(self._http)
        self._http = None


@atexit.register
def _close_sessions_at_exit() -> None:
    # the HTTP pool's sockets, closed on their own loop rather than warned about by aiohttp
    here = running()
    for session in list(_open_sessions):
        if not session.closed and here is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(session.close(), here.loop).result(timeout=2)
    _open_sessions.clear()
