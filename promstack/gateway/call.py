"""The one gateway every model call goes through: render, guard, cache, call, cost, log, audit.

Two routes behind one interface and one error model (`promstack.gateway.transport`): providers
that speak OpenAI's chat-completions API (OpenAI, vLLM, Ollama, LM Studio, OpenRouter, Groq,
Together, DeepSeek, Mistral, any server given as `api_base`) go through one pooled aiohttp
session; everything that needs translation (Anthropic, Gemini, Bedrock, Azure, ...) through
litellm, imported lazily (`promstack.gateway.litellm_loader`).

Prices come from the model config, the workspace's `[prices]`, the prices PromStack ships, then
litellm's packaged price map read as JSON (`promstack.gateway.pricing`); a model none of them
prices is logged with an unknown cost (NULL, `CallResult.priced` False), never $0. Retries for
429/5xx/timeouts are bounded in attempts and time, and honour Retry-After
(`promstack.gateway.retries`). The cache is ours for both routes (`promstack.gateway.cache`).
Every call, hit or miss, success or failure, is one call-log row plus one audit row
(`promstack.gateway.record`). Embeddings are in `promstack.gateway.embeddings`.

API keys are read from the environment at call time and never stored, logged or put in an error
message: every error text goes through `redact` first. A key goes only to a base URL the
server trusts, from a variable it allows (`promstack.gateway.keys`, docs/security.md).
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store import Store, audit
from store.calls import CallLogWriter
from store.clock import now
from store.db import connect
from store.workspace import workspace_root

from .. import config as config_module
from .. import guard
from . import budgets, pricing, tokens
from .cache import CACHE_DEFAULTS, DiskCache, RedisCache, cache_key, open_cache, output_rule
from .errors import GatewayError, error, redact, shorten
from .limits import Limits, estimate_tokens
from .portal import on_portal, run_sync
from .record import Call, CallResult, Recorder, audit_input, new_call_id
from .retries import with_retries
from .routing import GATEWAY_DEFAULTS, LEAN_PROVIDERS, resolve_route
from .transport import CHAT, REQUEST_PARAMS, Transport

INPUT_MEMO = 512  # distinct inputs a batch gateway remembers guarded and rendered (the last ones)


class Gateway:
    """The gateway over one store. `Client.run` uses one; engines (tests, judge, arena) too."""

    def __init__(self, store: Store, *, environment: str | None = None, batch: bool = False) -> None:
        # `batch`: the gateway of one batch run (tests, judge, arena), fixed when the run starts.
        # Its async calls run on the loop of whoever awaits them rather than hopping to the
        # portal's thread and back (two wake-ups of two threads a call); it belongs to that loop:
        # its connections are made there, and its owner closes them there with `aclose()`. It
        # reads a numbered prompt version once (versions are immutable) and the workspace's
        # config at most once a second.
        self._batch = batch
        self._versions: dict[tuple[Any, int], Any] = {}
        self._inputs: OrderedDict[Any, tuple[dict[str, Any], tuple[Any, Any, Any]]] = OrderedDict()
        self._conf: tuple[float, config_module.Config] | None = None
        # The gateway reads on its own loop thread while its caller keeps using the caller's
        # store: one SQLite connection must not serve two threads at once, so a file store
        # gets a connection of the gateway's own (an in-memory one can only be shared).
        self._own_store = store.path is not None
        self.store = Store(store.path, actor=store.actor) if self._own_store else store
        self.root = workspace_root(store.path) if store.path is not None else None
        self._environment = environment
        self.transport = Transport()
        self.limits = Limits()
        self._cache: DiskCache | RedisCache | None = None
        self._cache_made = False
        if store.path is not None:
            path = store.path
            self.log = CallLogWriter(lambda: connect(path), journal=Path(path).parent / "journal")
        else:
            self.log = CallLogWriter(db=store.db)
        self.recorder = Recorder(self.log, self.store.actor)

    # ---- settings ---------------------------------------------------------------------

    def config(self) -> config_module.Config:
        if not self._batch:
            return config_module.load(self.root)
        at = time.monotonic()
        if self._conf is None or at - self._conf[0] > 1.0:
            self._conf = (at, config_module.load(self.root))
        return self._conf[1]

    def _input_key(self, found: Any, settings: dict[str, Any], variables: dict[str, Any] | None) -> Any:
        if not self._batch:
            return None
        try:
            # flat values (the usual case) as they are, with their types (1, 1.0 and True
            # render differently); nested ones as JSON text
            key: Any = tuple(sorted((k, v.__class__, v) for k, v in (variables or {}).items()))
            hash(key)
        except TypeError:
            try:
                key = json.dumps(variables, sort_keys=True, ensure_ascii=False)
            except (TypeError, ValueError):
                return None  # not plain data: guarded and rendered afresh
        return (found.prompt_id, found.version, id(settings), key)

    def _seen_input(self, found: Any, settings: dict[str, Any], variables: dict[str, Any] | None) -> Any:
        """A batch gateway guards and renders each distinct input once: the same case sent to
        several models, or repeated, reuses what the guards found and the rendered messages
        (under the same guard settings; a blocked input is never remembered, so it is refused,
        and logged, every time)."""
        key = self._input_key(found, settings, variables)
        seen = self._inputs.get(key) if key is not None else None
        if seen is None or seen[0] is not settings:
            return None
        self._inputs.move_to_end(key)
        return seen[1]

    def _remember_input(self, found: Any, settings: dict[str, Any], variables: dict[str, Any] | None,
                        outcome: tuple[Any, Any, Any]) -> None:
        key = self._input_key(found, settings, variables)
        if key is None:
            return
        self._inputs[key] = (settings, outcome)
        if len(self._inputs) > INPUT_MEMO:
            self._inputs.popitem(last=False)

    def _prompt_version(self, prompt: int | str, version: int | None, label: str | None,
                        branch: str | None) -> Any:
        if not self._batch or version is None or label is not None or branch is not None:
            return self.store.prompts.get(prompt, version=version, label=label, branch=branch)
        key = (prompt, version)
        found = self._versions.get(key)
        if found is None:
            found = self._versions[key] = self.store.prompts.get(prompt, version=version)
        return found

    def settings(self, conf: config_module.Config) -> dict[str, Any]:
        """The [gateway] table: timeouts, retries, connections."""
        return conf.view("gateway", GATEWAY_DEFAULTS)

    def environment(self, conf: config_module.Config) -> str:
        return (self._environment or os.environ.get("PROMSTACK_ENV")
                or self.settings(conf).get("environment") or "development")

    def _cache_backend(self, settings: dict[str, Any]) -> DiskCache | RedisCache | None:
        if not self._cache_made:
            self._cache = open_cache(settings, self.root)
            self._cache_made = True
        return self._cache

    # ---- the public calls ---------------------------------------------------------------

    async def arun(self, prompt: int | str, variables: dict[str, Any] | None = None, **kwargs: Any) -> CallResult:
        """Render a stored prompt version with `variables` and call its model; keyword
        arguments as `_arun` (version, label, branch, model, user_id, run_id, environment,
        cache, model_config, cache_extra)."""
        if self._batch:
            return await self._arun(prompt, variables, **kwargs)
        return await on_portal(self._arun(prompt, variables, **kwargs))

    async def acomplete(self, messages: list[dict[str, Any]] | str, **kwargs: Any) -> CallResult:
        """Call a model with ready messages; keyword arguments as `_acomplete`."""
        if self._batch:
            return await self._acomplete(messages, **kwargs)
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
        call = Call(new_call_id(), now(), time.perf_counter(), model or "",
                     user_id=user_id, run_id=run_id,
                     environment=environment or self.environment(conf))
        try:
            found = self._prompt_version(prompt, version, label, branch)
            call.prompt_id, call.prompt_version, call.prompt_name = found.prompt_id, found.version, found.name
            merged = {**found.model_config, **(model_config or {})}
            call.model = model or merged.get("model") or ""
            settings = conf.view("guard", guard.DEFAULTS, found.name)
            seen = self._seen_input(found, settings, variables)
            if seen is not None:
                call.guards, call.audit_input, rendered = seen
            else:
                try:
                    clean, call.guards = guard.sanitize_input(dict(variables or {}), settings)
                except guard.GuardBlocked as exc:
                    call.guards = exc.report
                    call.audit_input = audit_input(variables, conf)  # masked there: never the raw ones
                    raise
                call.audit_input = audit_input(clean, conf, settings)
                rendered = self.store.prompts.render(found, clean)
                self._remember_input(found, settings, variables, (call.guards, call.audit_input, rendered))
        except BaseException as exc:
            self.recorder.failed(call, exc)
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
        call = Call(new_call_id(), now(), time.perf_counter(), model, prompt_id, prompt_version,
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
                call.audit_input = audit_input(clean, conf, settings)
        except BaseException as exc:
            if isinstance(exc, guard.GuardBlocked):
                call.guards = exc.report
                call.audit_input = audit_input(users, conf)
            self.recorder.failed(call, exc)
            raise
        return await self._execute(call, messages, dict(model_config or {}), conf, settings, cache,
                                   cache_extra)

    def run(self, prompt: int | str, variables: dict[str, Any] | None = None, **kwargs: Any) -> CallResult:
        return run_sync(self._arun(prompt, variables, **kwargs))

    def complete(self, messages: list[dict[str, Any]] | str, **kwargs: Any) -> CallResult:
        return run_sync(self._acomplete(messages, **kwargs))

    # ---- one call ---------------------------------------------------------------------

    # ---- one call ---------------------------------------------------------------------

    async def _execute(
        self,
        call: Call,
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
        gw = self.settings(conf)
        secrets: tuple[str, ...] = ()
        try:
            route = resolve_route(call.model, model_config, conf.view("providers"), gw)
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
                    call.guards = {**call.guards, "cache_error": shorten(redact(f"{type(exc).__name__}: {exc}"), 200)}
            if cached is not None and cache_accept is not None and not cache_accept(cached["output"]):
                cached = None  # a reply its caller rejects (a malformed judgement) is asked again
            shown_before = None
            if cached is not None and cached.get("output_guard") is not None:
                # The entry holds what the output filter let through, not the reply: valid only
                # under the filter settings it was made with (the raw reply is not there to redo it).
                if cached.get("output_rule") == output_rule(guard_settings):
                    shown_before = (cached["output"], cached["output_guard"])
                else:
                    cached = None
            if cached is not None:
                hit = self.recorder.finish(call, route, cached["output"], cached.get("input_tokens", 0),
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
            if (route.route == "lean" and route.key_env and not api_key
                    and route.api_base == LEAN_PROVIDERS.get(route.provider, (None,))[0]
                    and not route.api_base.startswith(("http://localhost", "http://127."))):
                raise error(route.provider, route.model, "missing_api_key",
                            f"set {route.key_env} in the environment")
            limiter = self.limits.get(route.model, gw)
            estimate = estimate_tokens(messages) if limiter.tpm else 0

            async def once() -> Any:
                # Each attempt takes a slot of the model's limiter: the up-front rpm/tpm pace and
                # the window a 429 narrows (promstack.gateway.limits).
                await limiter.acquire(estimate)
                try:
                    answer = await self.transport.send(CHAT, route, messages, params, api_key, timeout,
                                                       int(gw["max_connections"]))
                except GatewayError as exc:
                    limiter.release(throttled=exc.cause == "rate_limited", retry_after=exc.retry_after)
                    raise
                except BaseException:
                    limiter.release()
                    raise
                used = (answer[1] or 0) + (answer[2] or 0)
                limiter.release(tokens_unestimated=max(0, used - estimate) if limiter.tpm else 0)
                return answer

            output, tokens_in, tokens_out, logprobs = await with_retries(once, gw)
            if tokens_in is None:
                tokens_in = tokens.count_tokens(messages, route.model)
            if tokens_out is None:
                tokens_out = tokens.count_tokens(output, route.model)
            # Filtered before it is cached: a reply the output filter blocked or masked is kept
            # as the caller was shown it, never raw (the cache outlives the call, on disk or in Redis).
            shown = guard.filter_output(output, guard_settings)
            if backend is not None and (cache_accept is None or cache_accept(shown[0])):
                value = {"output": shown[0], "input_tokens": tokens_in, "output_tokens": tokens_out,
                         "latency_ms": round((time.perf_counter() - call.started) * 1000, 3)}
                if shown[0] != output:
                    value.update(output_guard=shown[1], output_rule=output_rule(guard_settings))
                elif logprobs is not None:  # a filtered reply's token log-probabilities spell it out
                    value["logprobs"] = logprobs
                try:
                    await backend.set(key, value, float(cache_settings.get("ttl", 3600)))
                except Exception as exc:  # a cache that fails costs a hit later, not this call
                    call.guards = {**call.guards, "cache_error": redact(str(exc))}
            return self.recorder.finish(call, route, output, tokens_in, tokens_out, False, guard_settings,
                                price, logprobs, shown)
        except BaseException as exc:
            if isinstance(exc, GatewayError):
                exc.args = (redact(str(exc), secrets),)
            self.recorder.failed(call, exc, secrets)
            raise

    # ---- embeddings (evals' semantic similarity) -----------------------------------------

    async def aembed(self, texts: list[str], *, model: str, **kwargs: Any) -> list[list[float]]:
        """Embedding vectors for `texts`, one call-log row; PII is masked first. Keyword
        arguments: model_config, run_id, user_id, environment."""
        from .embeddings import embed

        if self._batch:
            return await embed(self, list(texts), model=model, **kwargs)
        return await on_portal(embed(self, list(texts), model=model, **kwargs))

    def embed(self, texts: list[str], *, model: str, **kwargs: Any) -> list[list[float]]:
        from .embeddings import embed

        return run_sync(embed(self, list(texts), model=model, **kwargs))

    # ---- lifecycle ----------------------------------------------------------------------

    def backlog(self) -> int:
        """Call-log rows waiting to be written (a batch run slows down when they pile up)."""
        return self.log.backlog()

    def flush(self) -> None:
        """Wait until every call so far is in the call log."""
        self.log.flush()

    async def aclose(self) -> None:
        """Close the HTTP pool on the loop that is running (a `batch` gateway's), then the rest."""
        await self.transport.aclose()
        self.close()

    def close(self) -> None:
        self.log.close()
        if self._own_store:
            self.store.close()
        self.transport.close()
        if self._cache is not None:
            self._cache.close()
