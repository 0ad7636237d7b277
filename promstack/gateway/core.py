"""The one gateway every model call goes through: render, guard, cache, call, cost, log, audit.

Two routes behind one interface and one error model:

- the lean route: providers that speak OpenAI's chat-completions API (OpenAI, vLLM, Ollama,
  LM Studio, OpenRouter, Groq, Together, DeepSeek, Mistral, any server given as `api_base`) go
  through one pooled aiohttp session. (httpx was the first choice; measured here, its pool
  serialises 100 concurrent requests on reused keep-alive connections, ~35 ms each, the known
  encode/httpx#3215, while aiohttp overlaps them: see docs/gateway.md);
- the litellm route: everything that needs translation (Anthropic, Gemini, Bedrock, Azure, ...)
  goes through `litellm.acompletion`. litellm takes seconds to import and ~5 ms of CPU a call,
  so it is imported here only, lazily, the first time such a model is called.

Prices come from the model config, the workspace's `[prices]`, the prices PromStack ships, then
litellm's packaged price map read as JSON (`promstack.gateway.pricing`); a model none of them prices is
logged with an unknown cost (NULL, `CallResult.priced` False), never $0. Retries for
429/5xx/timeouts are tenacity's, bounded in attempts and time, and honour Retry-After. The
cache is ours for both routes (disk under `.promstack/cache`, or Redis at PROMSTACK_REDIS_URL):
litellm's cache would need litellm imported on the lean route, and 1.110 dropped its disk
backend. Every call, hit or miss, success or failure, is one call-log row plus one audit row,
written in batches off the calling thread (`store.calls.CallLogWriter`).

API keys are read from the environment at call time and never stored, logged or put in an error
message: every error text goes through `_redact` first. A key goes only to a base URL the
server trusts, from a variable it allows (`promstack.gateway.keys`, docs/security.md).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from store import Store, audit, secrets
from store.calls import CallLogWriter
from store.clock import now
from store.db import connect
from store.errors import InvalidInput, PromStackError, Step
from store.workspace import DIRNAME, workspace_root

from .. import config as config_module
from .. import guard
from ..monitoring import otel
from . import budgets, keys, pricing

# provider -> (default base URL or None when api_base is required, API-key variable or None)
LEAN_PROVIDERS: dict[str, tuple[str | None, str | None]] = {
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "together_ai": ("https://api.together.xyz/v1", "TOGETHERAI_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "mistral": ("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "fireworks_ai": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_AI_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
    "perplexity": ("https://api.perplexity.ai", "PERPLEXITYAI_API_KEY"),
    "hosted_vllm": (None, "HOSTED_VLLM_API_KEY"),
    "vllm": (None, "HOSTED_VLLM_API_KEY"),
    "lm_studio": ("http://localhost:1234/v1", "LM_STUDIO_API_KEY"),
    "ollama": ("http://localhost:11434/v1", None),
    "ollama_chat": ("http://localhost:11434/v1", None),
}
# model_config keys that are request parameters, passed to the provider as they are
REQUEST_PARAMS = (
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "seed",
    "presence_penalty", "frequency_penalty", "response_format", "logprobs", "top_logprobs",
    "logit_bias", "user", "reasoning_effort", "extra_body",
)
GATEWAY_DEFAULTS: dict[str, Any] = {
    "timeout": 60.0,  # seconds per attempt
    "max_retries": 3,  # attempts after the first, for 429/5xx/timeouts/connection errors
    "retry_initial": 0.5,  # first backoff in seconds (exponential with jitter)
    "retry_max_wait": 20.0,  # cap on one wait, Retry-After included
    "retry_deadline": 120.0,  # no new attempt after this many seconds
    "environment": None,
    "max_connections": 256,
    "record_input": True,  # the audit row keeps the (masked) variables: "who asked what"
}
CACHE_DEFAULTS: dict[str, Any] = {"enabled": True, "ttl": 3600, "backend": None, "dir": None}
_AUDIT_INPUT_LIMIT = 2000


# ---- results and errors -------------------------------------------------------------------

@dataclass
class CallResult:
    output: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None  # None: the model has no price (see `priced`), never a silent $0
    cache_hit: bool
    guards: dict[str, Any]
    call_id: str
    status: str = "ok"
    prompt_id: int | None = None
    prompt_version: int | None = None
    prompt_name: str | None = None
    provider: str | None = None
    route: str | None = None
    user_id: str | None = None
    run_id: str | None = None
    environment: str | None = None
    logprobs: Any = None
    # On a cache hit: the latency of the call that filled the cache (evals report it).
    original_latency_ms: float | None = None

    @property
    def priced(self) -> bool:
        """False when the model has no price: `cost_usd` is None and `unpriced` says what to do."""
        return self.cost_usd is not None

    @property
    def unpriced(self) -> str | None:
        return None if self.priced else pricing.unpriced_note(1, [self.model])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "priced": self.priced, "unpriced": self.unpriced}


class GatewayError(PromStackError):
    """A model call failed. `provider` and `cause` say where and why; the call is logged as
    `call_id`. `cause` is one of: unknown_model, missing_api_key, auth, bad_request,
    not_found, rate_limited, server_error, timeout, connection, malformed_response,
    empty_response, provider_error."""

    def __init__(
        self, message: str, *, provider: str, cause: str, status: int | None = None,
        retryable: bool = False, retry_after: float | None = None,
    ):
        super().__init__(message)
        self.provider = provider
        self.cause = cause
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.call_id: str | None = None
        self.attempts = 1


_RETRYABLE = {"rate_limited", "server_error", "timeout", "connection"}
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


def _error(provider: str, model: str, cause: str, detail: str = "", *, status: int | None = None,
           retry_after: float | None = None) -> GatewayError:
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
                        retryable=cause in _RETRYABLE, retry_after=retry_after)


# The one redaction (store.secrets): known keys, anything key-shaped, `NAME=secret` lines.
_redact = secrets.redact


# ---- routing ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    route: str  # "lean" or "litellm"
    provider: str
    model: str  # as the caller named it (logged)
    upstream: str  # as the provider is sent it
    api_base: str | None
    key_env: str | None
    # The api_base came from a stored model config and is neither the provider's own nor one
    # config.toml lists (promstack.gateway.keys): it is called with no key at all. Anyone who may edit
    # a prompt (an MCP client, a model) could otherwise point it at a server that collects keys.
    keyless: bool = False


def provider_of(model: str, api_base: Any = None) -> tuple[str, str]:
    """(provider, the model's name at that provider) for `model`, as routing reads it."""
    if "/" in model:
        provider, _, rest = model.partition("/")
        return provider, rest
    entry = pricing.lookup(model)
    provider = ((entry or {}).get("litellm_provider") or pricing.shipped_provider(model)
                or ("openai" if api_base else ""))
    if provider in ("text-completion-openai", "azure_text"):
        provider = "openai"
    return provider, model


def resolve_route(model: str, model_config: dict[str, Any], providers: dict[str, Any],
                  gateway: dict[str, Any] | None = None) -> Route:
    """Which route and endpoint serve `model`, and which key goes there. `providers` is
    config.toml's [providers] table, `gateway` its [gateway] table (allowed_key_env)."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput("no model to call: give ", Step.arg("model"), ", or set 'model' in the prompt's model config")
    secrets.refuse(model_config)
    forced = model_config.get("route")
    stored_base = model_config.get("api_base") or model_config.get("base_url")
    if stored_base is not None and not isinstance(stored_base, str):
        raise InvalidInput("model_config.api_base must be a URL such as 'http://localhost:8000/v1'")
    provider, rest = provider_of(model, stored_base)
    if not provider:
        raise _unknown_model(model)
    settings = providers.get(provider, {}) if isinstance(providers.get(provider), dict) else {}
    default_base, default_key = LEAN_PROVIDERS.get(provider, (None, None))
    # A stored base gets a key only if it is one the server trusts; then the request goes to
    # the server's own spelling of it, so no URL parser can read the two differently.
    bases = keys.trusted_bases(provider, settings, default_base)
    api_base = None
    keyless = False
    if stored_base:
        api_base = keys.trusted(stored_base, bases)
        keyless = api_base is None
        api_base = api_base or stored_base
    api_base = api_base or settings.get("api_base") or keys.env_base(provider)
    key_env = model_config.get("api_key_env")
    if key_env:
        keys.check_key_env(key_env, provider, settings, gateway or {}, default_key)
    key_env = key_env or settings.get("api_key_env")
    lean = provider in LEAN_PROVIDERS
    if forced not in (None, "auto", "lean", "litellm"):
        raise InvalidInput(f"route {forced!r} is not one of auto, lean, litellm")
    if forced == "litellm" or (forced != "lean" and not lean):
        return Route("litellm", provider, model, model, api_base, None if keyless else key_env, keyless)
    base = api_base or default_base
    if base is None:
        raise InvalidInput(
            f"model {model!r}: provider {provider} needs an api_base (the server's /v1 URL) in the "
            f"model config or in [providers.{provider}] of .promstack/config.toml"
        )
    return Route("lean", provider, model, rest, base.rstrip("/"), None if keyless else (key_env or default_key),
                 keyless)


def check_model_config(model_config: dict[str, Any], conf: config_module.Config) -> None:
    """What the store cannot check when a model config is saved, because it needs the server's
    config: an `api_key_env` the server does not allow for the config's provider."""
    name = model_config.get("api_key_env")
    if not name:
        return
    model = model_config.get("model")
    provider = None
    if isinstance(model, str) and model.strip():
        provider = provider_of(model, model_config.get("api_base") or model_config.get("base_url"))[0] or None
    providers = conf.view("providers")
    settings = providers.get(provider, {}) if provider and isinstance(providers.get(provider), dict) else {}
    keys.check_key_env(name, provider, settings, conf.view("gateway", GATEWAY_DEFAULTS),
                       LEAN_PROVIDERS.get(provider or "", (None, None))[1])


def _unknown_model(model: str) -> InvalidInput:
    return InvalidInput(
        f"unknown model {model!r}: name it as provider/model (e.g. openai/gpt-4o-mini, "
        "anthropic/claude-3-5-haiku-latest), or give an api_base for an OpenAI-compatible server"
    )


# ---- cache --------------------------------------------------------------------------------

def cache_key(route: Route, messages: list[dict[str, Any]], params: dict[str, Any],
              extra: str | None = None) -> str:
    """The guide's hash(prompt + input): the rendered messages, the model and its parameters.
    `extra` separates requests that are identical on purpose (an eval's repeat index)."""
    parts: list[Any] = [route.provider, route.upstream, route.api_base, messages, params]
    if extra:
        parts.append(extra)
    body = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return "promstack:llm:" + hashlib.sha256(body.encode()).hexdigest()


class DiskCache:
    """diskcache (SQLite files under `.promstack/cache`), shared by every process of a workspace."""

    def __init__(self, folder: Path):
        import diskcache

        self.cache = diskcache.Cache(str(folder), size_limit=2**30)

    async def get(self, key: str) -> dict[str, Any] | None:
        return self.cache.get(key)

    async def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        self.cache.set(key, value, expire=ttl)

    def close(self) -> None:
        self.cache.close()


class RedisCache:
    """Redis at PROMSTACK_REDIS_URL, as the guide writes it: get, then set with `ex` = TTL.
    One asyncio client per event loop (a client is bound to the loop it connects on)."""

    def __init__(self, url: str):
        self.url = url
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _client(self):  # noqa: ANN202 - redis.asyncio.Redis
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import redis.asyncio as redis

            client = redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._clients[loop] = client
        return client

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._client().get(key)
        return json.loads(raw) if raw else None

    async def set(self, key: str, value: dict[str, Any], ttl: float) -> None:
        await self._client().set(key, json.dumps(value, ensure_ascii=False), ex=max(1, int(ttl)))

    def close(self) -> None:
        self._clients = weakref.WeakKeyDictionary()


# ---- litellm, lazily -------------------------------------------------------------------------

_litellm_module = None
_litellm_lock = threading.Lock()


def load_litellm():  # noqa: ANN201 - the litellm module
    """Import litellm once, offline: the local price map, no hub downloads, no telemetry."""
    global _litellm_module
    if _litellm_module is None:
        with _litellm_lock:
            if _litellm_module is None:
                os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import litellm

                litellm.telemetry = False
                litellm.suppress_debug_info = True
                litellm.drop_params = True
                _litellm_module = litellm
    return _litellm_module


def warm_litellm() -> threading.Thread:
    """Import litellm on a background thread (servers call this at start-up)."""
    thread = threading.Thread(target=load_litellm, name="promstack-litellm-import", daemon=True)
    thread.start()
    return thread


# ---- the sync bridge -----------------------------------------------------------------------

class _Portal:
    """One long-lived event loop on a daemon thread where every gateway call runs, sync or
    async: the HTTP pool, the Redis client and the cache live on one loop for the life of the
    process, whatever loops (or `asyncio.run`s) the callers come from."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="promstack-gateway", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_portal: _Portal | None = None
_portal_lock = threading.Lock()


def portal() -> _Portal:
    global _portal
    if _portal is None:
        with _portal_lock:
            if _portal is None:
                _portal = _Portal()
    return _portal


def run_sync(coro: Awaitable[Any]) -> Any:
    here = portal()
    if threading.current_thread() is here.thread:
        coro.close()
        raise RuntimeError("a sync gateway call from inside the gateway's own loop; await arun/acomplete")
    return here.run(coro)


async def on_portal(coro: Awaitable[Any]) -> Any:
    """Await `coro` on the gateway's loop from any loop (cancellation carries across)."""
    here = portal()
    if asyncio.get_running_loop() is here.loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, here.loop))


# ---- the gateway -----------------------------------------------------------------------------

@dataclass
class _Call:
    """What one call accumulates on its way to the log."""

    call_id: str
    timestamp: str
    started: float
    model: str
    prompt_id: int | None = None
    prompt_version: int | None = None
    prompt_name: str | None = None
    user_id: str | None = None
    run_id: str | None = None
    environment: str | None = None
    provider: str | None = None
    route: str | None = None
    guards: dict[str, Any] = field(default_factory=dict)
    audit_input: Any = None


def _litellm_kwargs(route: Any, api_key: str | None, **request: Any) -> dict[str, Any]:
    """A litellm call's arguments: the request, the endpoint, and the key."""
    kwargs: dict[str, Any] = {"model": route.upstream, **request}
    if route.api_base:
        kwargs["api_base"] = route.api_base
    if api_key:
        kwargs["api_key"] = api_key
    elif route.keyless or (route.api_base and route.provider in LEAN_PROVIDERS):
        # a self-hosted OpenAI-compatible server needs no key, but the openai SDK wants one
        kwargs["api_key"] = "no-key"
    return kwargs


class Gateway:
    """The gateway over one store. `Client.run` uses one; engines (tests, judge, arena) too."""

    def __init__(self, store: Store, *, environment: str | None = None):
        # The gateway reads on its own loop thread while its caller keeps using the caller's
        # store: one SQLite connection must not serve two threads at once, so a file store
        # gets a connection of the gateway's own (an in-memory one can only be shared).
        self._own_store = store.path is not None
        self.store = Store(store.path, actor=store.actor) if self._own_store else store
        self.root = workspace_root(store.path) if store.path is not None else None
        self._environment = environment
        self._http = None  # one aiohttp session, on the portal's loop
        self._cache = None
        self._cache_made = False
        if store.path is not None:
            path = store.path
            self.log = CallLogWriter(lambda: connect(path), journal=Path(path).parent / "journal")
            otel.start_background(path)  # opt-in OTLP export of the call log (promstack.monitoring.otel)
        else:
            self.log = CallLogWriter(db=store.db)

    # ---- settings ---------------------------------------------------------------------

    def config(self) -> config_module.Config:
        return config_module.load(self.root)

    def _gateway_settings(self, conf: config_module.Config) -> dict[str, Any]:
        return conf.view("gateway", GATEWAY_DEFAULTS)

    def environment(self, conf: config_module.Config) -> str:
        return (self._environment or os.environ.get("PROMSTACK_ENV")
                or self._gateway_settings(conf).get("environment") or "development")

    def _cache_backend(self, settings: dict[str, Any]):  # noqa: ANN202
        if not self._cache_made:
            self._cache_made = True
            url = os.environ.get("PROMSTACK_REDIS_URL")
            backend = settings.get("backend") or ("redis" if url else "disk")
            if backend == "redis":
                url = url or settings.get("redis_url")
                if not url:
                    raise InvalidInput("[cache] backend = \"redis\" needs PROMSTACK_REDIS_URL or [cache] redis_url")
                self._cache = RedisCache(url)
            elif backend == "disk":
                folder = settings.get("dir") or (
                    self.root / DIRNAME / "cache" if self.root is not None else None)
                self._cache = DiskCache(Path(folder)) if folder else None
            elif backend not in ("off", "none"):
                raise InvalidInput(f"[cache] backend {backend!r} is not one of disk, redis, off")
        return self._cache

    def _session(self, max_connections: int):  # noqa: ANN202 - aiohttp.ClientSession
        if self._http is None or self._http.closed:
            import aiohttp

            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=max_connections,
                                               ttl_dns_cache=300),
            )
            _open_sessions.add(self._http)  # closed at exit even if this gateway is collected
        return self._http

    # ---- the public calls ---------------------------------------------------------------

    async def arun(self, prompt: int | str, variables: dict[str, Any] | None = None, **kwargs: Any) -> CallResult:
        """Render a stored prompt version with `variables` and call its model; keyword
        arguments as `_arun` (version, label, branch, model, user_id, run_id, environment,
        cache, model_config, cache_extra)."""
        return await on_portal(self._arun(prompt, variables, **kwargs))

    async def acomplete(self, messages: list[dict[str, Any]] | str, **kwargs: Any) -> CallResult:
        """Call a model with ready messages; keyword arguments as `_acomplete`."""
        return await on_portal(self._acomplete(messages, **kwargs))

    async def _arun(
        self,
        prompt: int | str,
        variables: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
        branch: str | None = None,
        model: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
        environment: str | None = None,
        cache: bool | None = None,
        model_config: dict[str, Any] | None = None,
        cache_extra: str | None = None,
        cache_accept: Callable[[str], bool] | None = None,
    ) -> CallResult:
        """Render a stored prompt version with `variables` and call its model. `cache_accept`
        (the judge's validator) decides whether a reply may be cached, or served from the cache."""
        # A store whose audit key is not here cannot log the call: refuse before paying for it.
        audit.require_key(self.store.db)
        conf = self.config()
        call = _Call(uuid.uuid4().hex, now(), time.perf_counter(), model or "",
                     user_id=user_id, run_id=run_id,
                     environment=environment or self.environment(conf))
        try:
            found = self.store.prompts.get(prompt, version=version, label=label, branch=branch)
            call.prompt_id, call.prompt_version, call.prompt_name = found.prompt_id, found.version, found.name
            merged = {**found.model_config, **(model_config or {})}
            call.model = model or merged.get("model") or ""
            settings = conf.view("guard", guard.DEFAULTS, found.name)
            try:
                clean, call.guards = guard.sanitize_input(dict(variables or {}), settings)
            except guard.GuardBlocked as exc:
                call.guards = exc.report
                call.audit_input = _audit_input(variables, conf)  # masked there: never the raw ones
                raise
            call.audit_input = _audit_input(clean, conf, settings)
            rendered = self.store.prompts.render(found, clean)
        except BaseException as exc:
            self._log_failure(call, exc)
            raise
        messages = [{"role": "user", "content": rendered}] if isinstance(rendered, str) else rendered
        return await self._execute(call, messages, merged, conf, settings, cache, cache_extra, cache_accept)

    async def _acomplete(
        self,
        messages: list[dict[str, Any]] | str,
        *,
        model: str,
        model_config: dict[str, Any] | None = None,
        prompt_id: int | None = None,
        prompt_version: int | None = None,
        prompt_name: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
        environment: str | None = None,
        cache: bool | None = None,
        guard_input: bool = True,
        cache_extra: str | None = None,
    ) -> CallResult:
        """Call a model with ready messages (the judge, the arena): guards see the user turns."""
        conf = self.config()
        call = _Call(uuid.uuid4().hex, now(), time.perf_counter(), model, prompt_id, prompt_version,
                     prompt_name, user_id, run_id, environment or self.environment(conf))
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        settings = conf.view("guard", guard.DEFAULTS, prompt_name)
        users: dict[str, Any] = {}
        try:
            if guard_input:
                # a turn's content is a text or a list of parts ({"type": "text", "text": ...})
                users = {str(i): m["content"] for i, m in enumerate(messages)
                         if m.get("role") == "user" and isinstance(m.get("content"), str | list)}
                clean, call.guards = guard.sanitize_input(users, settings)
                messages = [{**m, "content": clean[str(i)]} if str(i) in clean else m
                            for i, m in enumerate(messages)]
                call.audit_input = _audit_input(clean, conf, settings)
        except BaseException as exc:
            if isinstance(exc, guard.GuardBlocked):
                call.guards = exc.report
                call.audit_input = _audit_input(users, conf)
            self._log_failure(call, exc)
            raise
        return await self._execute(call, messages, dict(model_config or {}), conf, settings, cache,
                                   cache_extra)

    def run(self, prompt: int | str, variables: dict[str, Any] | None = None, **kwargs: Any) -> CallResult:
        return run_sync(self._arun(prompt, variables, **kwargs))

    def complete(self, messages: list[dict[str, Any]] | str, **kwargs: Any) -> CallResult:
        return run_sync(self._acomplete(messages, **kwargs))

    # ---- one call ---------------------------------------------------------------------

    async def _execute(
        self,
        call: _Call,
        messages: list[dict[str, Any]],
        model_config: dict[str, Any],
        conf: config_module.Config,
        guard_settings: dict[str, Any],
        use_cache: bool | None,
        cache_extra: str | None = None,
        cache_accept: Callable[[str], bool] | None = None,
    ) -> CallResult:
        # A rendered message may carry Dotprompt's `metadata` (`purpose: history`): it says where
        # the message came from, and providers refuse keys their API does not define.
        messages = [{k: v for k, v in m.items() if k != "metadata"} if "metadata" in m else m for m in messages]
        gw = self._gateway_settings(conf)
        secrets: tuple[str, ...] = ()
        try:
            route = resolve_route(call.model, model_config, conf.view("providers"), self._gateway_settings(conf))
            call.provider, call.route = route.provider, route.route
            params = {k: model_config[k] for k in REQUEST_PARAMS if k in model_config}
            # Priced before the call: a bad [prices] table refuses it rather than being paid for.
            price = pricing.price(route.model, config=conf, model_config=model_config)
            cache_settings = conf.view("cache", CACHE_DEFAULTS)
            enabled = cache_settings.get("enabled", True) if use_cache is None else use_cache
            if model_config.get("cache") is False:
                enabled = False
            backend = self._cache_backend(cache_settings) if enabled else None
            key = cache_key(route, messages, params, cache_extra) if backend is not None else None
            cached = None
            if backend is not None:
                try:
                    cached = await backend.get(key)
                except Exception as exc:  # a cache that is down costs a miss, not the call
                    call.guards = {**call.guards, "cache_error": _shorten(_redact(f"{type(exc).__name__}: {exc}"), 200)}
            if cached is not None and cache_accept is not None and not cache_accept(cached["output"]):
                cached = None  # a reply its caller rejects (a malformed judgement) is asked again
            shown_before = None
            if cached is not None and cached.get("output_guard") is not None:
                # The entry holds what the output filter let through, not the reply: valid only
                # under the filter settings it was made with (the raw reply is not there to redo it).
                if cached.get("output_rule") == _output_rule(guard_settings):
                    shown_before = (cached["output"], cached["output_guard"])
                else:
                    cached = None
            if cached is not None:
                hit = self._finish(call, route, cached["output"], cached.get("input_tokens", 0),
                                   cached.get("output_tokens", 0), True, guard_settings,
                                   price, cached.get("logprobs"), shown_before)
                hit.original_latency_ms = cached.get("latency_ms")
                return hit
            # Hard budgets (promstack.gateway.budgets, monitoring): refuse before the provider is paid;
            # the refusal is logged below by _log_failure as a 'blocked' row.
            budgets.check_budget(
                self.store.db, conf, prompt_name=call.prompt_name, environment=call.environment,
                estimate=lambda: budgets.estimate_call(route.model, messages, model_config, price),
                call_id=call.call_id, model=route.model)
            api_key = os.environ.get(route.key_env) if route.key_env else None
            secrets = (api_key,) if api_key else ()
            timeout = float(model_config.get("timeout") or gw["timeout"])
            if route.route == "lean":
                if route.key_env and not api_key and route.api_base == LEAN_PROVIDERS.get(route.provider, (None,))[0] \
                        and not route.api_base.startswith(("http://localhost", "http://127.")):
                    raise _error(route.provider, route.model, "missing_api_key",
                                 f"set {route.key_env} in the environment")
                once = self._lean_once
            else:
                once = self._litellm_once
            output, tokens_in, tokens_out, logprobs = await self._with_retries(
                once, route, messages, params, api_key, timeout, gw)
            if tokens_in is None:
                tokens_in = pricing.count_tokens(messages)
            if tokens_out is None:
                tokens_out = pricing.count_tokens(output)
            # Filtered before it is cached: a reply the output filter blocked or masked is kept
            # as the caller was shown it, never raw (the cache outlives the call, on disk or in Redis).
            shown = guard.filter_output(output, guard_settings)
            if backend is not None and (cache_accept is None or cache_accept(shown[0])):
                value = {"output": shown[0], "input_tokens": tokens_in, "output_tokens": tokens_out,
                         "latency_ms": round((time.perf_counter() - call.started) * 1000, 3)}
                if shown[0] != output:
                    value.update(output_guard=shown[1], output_rule=_output_rule(guard_settings))
                elif logprobs is not None:  # a filtered reply's token log-probabilities spell it out
                    value["logprobs"] = logprobs
                try:
                    await backend.set(key, value, float(cache_settings.get("ttl", 3600)))
                except Exception as exc:  # a cache that fails costs a hit later, not this call
                    call.guards = {**call.guards, "cache_error": _redact(str(exc))}
            return self._finish(call, route, output, tokens_in, tokens_out, False, guard_settings,
                                price, logprobs, shown)
        except BaseException as exc:
            if isinstance(exc, GatewayError):
                exc.args = (_redact(str(exc), secrets),)
            self._log_failure(call, exc, secrets)
            raise

    # ---- embeddings (evals' semantic similarity) -----------------------------------------

    async def aembed(self, texts: list[str], *, model: str, **kwargs: Any) -> list[list[float]]:
        """Embedding vectors for `texts`, one call-log row; PII is masked first. Keyword
        arguments: model_config, run_id, user_id, environment."""
        return await on_portal(self._aembed(list(texts), model=model, **kwargs))

    def embed(self, texts: list[str], *, model: str, **kwargs: Any) -> list[list[float]]:
        return run_sync(self._aembed(list(texts), model=model, **kwargs))

    async def _aembed(
        self, texts: list[str], *, model: str, model_config: dict[str, Any] | None = None,
        run_id: str | None = None, user_id: str | None = None, environment: str | None = None,
    ) -> list[list[float]]:
        conf = self.config()
        call = _Call(uuid.uuid4().hex, now(), time.perf_counter(), model, user_id=user_id,
                     run_id=run_id, environment=environment or self.environment(conf))
        model_config = dict(model_config or {})
        secrets: tuple[str, ...] = ()
        try:
            settings = conf.view("guard", guard.DEFAULTS)
            if settings.get("pii", "mask") == "mask":
                masked = [guard.mask_pii(t, settings.get("pii_entities"))[0] for t in texts]
                if masked != texts:
                    call.guards = {"pii": {"action": "masked"}}
                texts = masked
            route = resolve_route(model, model_config, conf.view("providers"), self._gateway_settings(conf))
            call.provider, call.route = route.provider, route.route
            price = pricing.price(route.model, config=conf, model_config=model_config)
            api_key = os.environ.get(route.key_env) if route.key_env else None
            secrets = (api_key,) if api_key else ()
            gw = self._gateway_settings(conf)
            timeout = float(model_config.get("timeout") or gw["timeout"])
            once = self._lean_embed_once if route.route == "lean" else self._litellm_embed_once
            vectors, tokens, _, _ = await self._with_retries(once, route, texts, {}, api_key, timeout, gw)
        except BaseException as exc:
            if isinstance(exc, GatewayError):
                exc.args = (_redact(str(exc), secrets),)
            self._log_failure(call, exc, secrets)
            raise
        self._finish(call, route, "", tokens or 0, 0, False, {"output": "off"}, price, None)
        return vectors

    async def _lean_embed_once(self, route, texts, params, api_key, timeout, gw):  # noqa: ANN001, ANN202
        import aiohttp

        session = self._session(int(gw["max_connections"]))
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        try:
            async with session.post(f"{route.api_base}/embeddings",
                                    data=json.dumps({"model": route.upstream, "input": texts}).encode(),
                                    headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                status, raw = response.status, await response.read()
                retry_after = response.headers.get("retry-after")
        except TimeoutError:
            raise _error(route.provider, route.model, "timeout", f"no answer within {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise _error(route.provider, route.model, "connection", f"{type(exc).__name__} to {route.api_base}") from None
        if status >= 400:
            raise _status_error(route, status, _provider_message(raw), _retry_after(retry_after))
        try:
            data = json.loads(raw)
            vectors = [item["embedding"] for item in sorted(data["data"], key=lambda d: d.get("index", 0))]
        except (ValueError, KeyError, TypeError):
            raise _error(route.provider, route.model, "malformed_response", "not an embeddings list") from None
        return vectors, (data.get("usage") or {}).get("prompt_tokens"), 0, None

    async def _litellm_embed_once(self, route, texts, params, api_key, timeout, gw):  # noqa: ANN001, ANN202
        litellm = load_litellm()
        kwargs = _litellm_kwargs(route, api_key, input=texts, timeout=timeout)
        try:
            response = await litellm.aembedding(**kwargs)
        except Exception as exc:
            raise _litellm_error(route, exc) from None
        data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
        vectors = [item["embedding"] for item in data.get("data") or []]
        return vectors, (data.get("usage") or {}).get("prompt_tokens"), 0, None

    async def _with_retries(self, once, route, messages, params, api_key, timeout, gw):  # noqa: ANN001, ANN202
        import tenacity

        retrying = tenacity.AsyncRetrying(
            stop=(tenacity.stop_after_attempt(int(gw["max_retries"]) + 1)
                  | tenacity.stop_after_delay(float(gw["retry_deadline"]))),
            wait=_RetryAfterWait(float(gw["retry_initial"]), float(gw["retry_max_wait"])),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, GatewayError) and e.retryable),
            reraise=True,
        )
        attempts = 0
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await once(route, messages, params, api_key, timeout, gw)
        except GatewayError as exc:
            exc.attempts = attempts
            if attempts > 1:
                exc.args = (f"{exc} (after {attempts} attempts)",)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _lean_once(self, route, messages, params, api_key, timeout, gw):  # noqa: ANN001, ANN202
        import aiohttp

        session = self._session(int(gw["max_connections"]))
        extra_body = params.get("extra_body") or {}
        body = {"model": route.upstream, "messages": messages,
                **{k: v for k, v in params.items() if k != "extra_body"}, **extra_body}
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        try:
            async with session.post(f"{route.api_base}/chat/completions",
                                    data=json.dumps(body, ensure_ascii=False).encode(), headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                status = response.status
                raw = await response.read()
                retry_after = response.headers.get("retry-after")
        except TimeoutError:
            raise _error(route.provider, route.model, "timeout", f"no answer within {timeout:g} s") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise _error(route.provider, route.model, "malformed_response", type(exc).__name__) from None
        except aiohttp.ClientError as exc:
            raise _error(route.provider, route.model, "connection", f"{type(exc).__name__} to {route.api_base}") from None
        if status >= 400:
            raise _status_error(route, status, _provider_message(raw), _retry_after(retry_after))
        try:
            data = json.loads(raw)
            choices = data["choices"]
        except (ValueError, KeyError, TypeError):
            raise _error(route.provider, route.model, "malformed_response",
                         f"not a chat completion: {_shorten(raw[:480].decode('utf-8', 'replace'), 120)!r}") from None
        return _parse_choice(route, choices, data.get("usage"))

    async def _litellm_once(self, route, messages, params, api_key, timeout, gw):  # noqa: ANN001, ANN202
        litellm = load_litellm()
        kwargs = _litellm_kwargs(route, api_key, **{"messages": messages, "timeout": timeout, "max_retries": 0,
                                                    "num_retries": 0, "caching": False, **params})
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise _litellm_error(route, exc) from None
        try:
            data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
            choices = data["choices"]
        except (KeyError, TypeError, AttributeError):
            raise _error(route.provider, route.model, "malformed_response", "not a chat completion") from None
        return _parse_choice(route, choices, data.get("usage"))

    # ---- finishing ----------------------------------------------------------------------

    def _finish(self, call, route, output, tokens_in, tokens_out, hit, guard_settings, price, logprobs,  # noqa: ANN001, ANN202
                shown=None):
        # `shown`: the output filter's (text, report), when the caller has it already
        shown, out_report = shown or guard.filter_output(output, guard_settings)
        if shown != output:
            logprobs = None  # token by token they would spell out what the filter took away
        guards = {**call.guards, "output": out_report}
        # A cache hit paid nothing; an unpriced model's call cost is unknown (None, logged NULL).
        cost = 0.0 if hit else (None if price is None else price.cost(tokens_in, tokens_out))
        latency = (time.perf_counter() - call.started) * 1000
        result = CallResult(
            output=shown, model=route.model, input_tokens=int(tokens_in), output_tokens=int(tokens_out),
            latency_ms=round(latency, 3), cost_usd=cost, cache_hit=hit, guards=guards,
            call_id=call.call_id, prompt_id=call.prompt_id, prompt_version=call.prompt_version,
            prompt_name=call.prompt_name, provider=route.provider, route=route.route,
            user_id=call.user_id, run_id=call.run_id, environment=call.environment, logprobs=logprobs,
        )
        row = {"timestamp": call.timestamp, "error": None, **{k: getattr(result, k) for k in (
            "prompt_id", "prompt_version", "model", "input_tokens", "output_tokens", "latency_ms",
            "user_id", "cost_usd", "cache_hit", "status", "environment", "run_id", "guards",
            "call_id", "prompt_name", "provider", "route")}}
        self.log.submit(row, self._audit_entry(call, row))
        return result

    def _log_failure(self, call: _Call, exc: BaseException, secrets: tuple[str, ...] = ()) -> None:
        blocked = isinstance(exc, guard.GuardBlocked) or getattr(exc, "blocked", False) is True
        message = _redact(f"{type(exc).__name__}: {exc}" if not isinstance(exc, PromStackError) else str(exc), secrets)
        row = {
            "timestamp": call.timestamp, "prompt_id": call.prompt_id,
            "prompt_version": call.prompt_version, "model": call.model or "(none)",
            "input_tokens": 0, "output_tokens": 0,
            "latency_ms": round((time.perf_counter() - call.started) * 1000, 3),
            "user_id": call.user_id, "cost_usd": 0.0, "cache_hit": False,
            "status": "blocked" if blocked else "error", "error": message,
            "environment": call.environment, "run_id": call.run_id, "guards": call.guards,
            "call_id": call.call_id, "prompt_name": call.prompt_name,
            "provider": call.provider or getattr(exc, "provider", None), "route": call.route,
        }
        if isinstance(exc, GatewayError | guard.GuardBlocked):
            exc.call_id = call.call_id
        self.log.submit(row, self._audit_entry(call, row))

    def _audit_entry(self, call: _Call, row: dict[str, Any]) -> dict[str, Any]:
        detail = {k: row[k] for k in ("call_id", "model", "provider", "status", "cache_hit",
                                      "environment", "run_id", "prompt_name") if row.get(k) is not None}
        if row.get("error"):
            detail["error"] = row["error"]
        if call.user_id:
            detail["user_id"] = call.user_id
        actions = {name: g.get("action") for name, g in (call.guards or {}).items() if isinstance(g, dict)}
        if actions:
            detail["guards"] = actions
        if call.audit_input is not None:
            detail["input"] = call.audit_input
        return {
            "actor": call.user_id or self.store.actor, "action": "llm_call",
            "prompt_id": call.prompt_id, "version": call.prompt_version, "detail": detail,
            "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
            "cost_usd": row["cost_usd"],
        }

    # ---- lifecycle ----------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until every call so far is in the call log."""
        self.log.flush()

    def close(self) -> None:
        self.log.close()
        if self._own_store:
            self.store.close()
        if self._http is not None and not self._http.closed and _portal is not None:
            # closing idle sockets at shutdown: a failure leaves nothing to lose
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._http.close(), _portal.loop).result(timeout=5)
            _open_sessions.discard(self._http)
        self._http = None
        if self._cache is not None:
            self._cache.close()


_open_sessions: set[Any] = set()


@atexit.register
def _close_sessions_at_exit() -> None:
    # the HTTP pool's sockets, closed on their own loop rather than warned about by aiohttp
    for session in list(_open_sessions):
        if not session.closed and _portal is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(session.close(), _portal.loop).result(timeout=2)
    _open_sessions.clear()


def _audit_input(variables: dict[str, Any] | None, conf: config_module.Config,
                 masked_with: dict[str, Any] | None = None) -> Any:
    """What the audit row keeps of a call's variables: PII masked with every recognizer, whatever
    the prompt's [guard] says (the audit log is append-only: what lands there stays), and
    whether or not the call went out (a blocked one never did; its input is still masked).
    `masked_with`: the guard settings the variables were already masked under, if they were."""
    if not variables or not conf.view("gateway", GATEWAY_DEFAULTS).get("record_input", True):
        return None
    done = (masked_with is not None and masked_with.get("pii", "mask") == "mask"
            and set(masked_with.get("pii_entities") or guard.ENTITIES) >= set(guard.ENTITIES))
    if not done:
        variables = guard.mask_value(variables)
    text = json.dumps(variables, ensure_ascii=False, default=str)
    return variables if len(text) <= _AUDIT_INPUT_LIMIT else text[:_AUDIT_INPUT_LIMIT] + "…"


def _output_rule(settings: dict[str, Any]) -> str:
    """The output filter's settings as one string: a cache entry holding a filtered reply is
    served only under the rule that filtered it."""
    return json.dumps([settings.get("output", "filter"),
                       sorted(settings.get("output_sensitive") or guard.OUTPUT_SENSITIVE)])


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


DETAIL_LIMIT = 400  # characters of a provider's message kept in an error (and the call log)


def _shorten(text: str, limit: int = DETAIL_LIMIT) -> str:
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


def _provider_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        return _shorten(str(message or ""))
    except (ValueError, AttributeError):
        return _shorten(body[: DETAIL_LIMIT * 4].decode("utf-8", "replace"))


def _status_error(route: Route, status: int, detail: str, retry_after: float | None = None) -> GatewayError:
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
    return _error(route.provider, route.model, cause, detail, status=status, retry_after=retry_after)


def _parse_choice(route: Route, choices: Any, usage: Any) -> tuple[str, int | None, int | None, Any]:
    if not choices:
        raise _error(route.provider, route.model, "empty_response")
    try:
        choice = choices[0]
        message = choice["message"]
        output = message.get("content")
    except (KeyError, TypeError, IndexError):
        raise _error(route.provider, route.model, "malformed_response", "choice without a message") from None
    if output is None:
        output = ""
    usage = usage or {}
    return (str(output), usage.get("prompt_tokens"), usage.get("completion_tokens"),
            choice.get("logprobs"))


def _litellm_error(route: Route, exc: Exception) -> GatewayError:
    """litellm's exceptions (openai's underneath) in our one error model."""
    litellm = load_litellm()
    status = getattr(exc, "status_code", None)
    detail = _shorten(str(getattr(exc, "message", None) or exc))
    lowered = detail.lower()
    if isinstance(exc, litellm.Timeout):
        return _error(route.provider, route.model, "timeout", detail)
    if isinstance(exc, litellm.APIConnectionError):
        if "json" in lowered or "decode" in lowered or "expecting" in lowered:
            return _error(route.provider, route.model, "malformed_response", detail)
        return _error(route.provider, route.model, "connection", detail)
    if isinstance(exc, litellm.APIResponseValidationError):
        return _error(route.provider, route.model, "malformed_response", detail)
    # litellm reports a body it could not parse, or one without choices, as a 500
    if "no 'choices'" in lowered or "no choices" in lowered:
        return _error(route.provider, route.model, "empty_response", detail)
    if "expecting value" in lowered or "jsondecodeerror" in lowered or "unterminated string" in lowered:
        return _error(route.provider, route.model, "malformed_response", detail)
    if isinstance(exc, litellm.BadRequestError) and "LLM Provider NOT provided" in detail:
        return GatewayError(str(_unknown_model(route.model)), provider=route.provider, cause="unknown_model")
    if isinstance(status, int) and status >= 400:
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = _retry_after(getattr(response, "headers", {}).get("retry-after"))
        return _status_error(route, status, detail, retry_after)
    if isinstance(exc, ValueError | KeyError | TypeError):
        return _error(route.provider, route.model, "malformed_response", f"{type(exc).__name__}: {detail}")
    return _error(route.provider, route.model, "provider_error", f"{type(exc).__name__}: {detail}")


try:  # tenacity's wait protocol; imported here only for the base class
    from tenacity.wait import wait_base as _wait_base
except ImportError:  # pragma: no cover - tenacity is a dependency
    _wait_base = object


class _RetryAfterWait(_wait_base):
    """Honour a provider's Retry-After; otherwise exponential backoff with full jitter."""

    def __init__(self, initial: float, maximum: float):
        self.initial = initial
        self.maximum = maximum

    def __call__(self, retry_state) -> float:  # noqa: ANN001
        import random

        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(after, self.maximum)
        return min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1)) * random.uniform(0.5, 1.0)
