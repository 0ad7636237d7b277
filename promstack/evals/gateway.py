"""The one door from evals to models: every case, judge and arena call goes through
`promstack.gateway` (render, guards, cache, cost, one call-log row per call, tagged with the run id).

`Gateway` is the small interface the runner needs; `LiveGateway` implements it over the real
gateway, and tests may hand the runner any object with the same two coroutines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import promstack.gateway
    from promstack.client import Client


class GatewayError(Exception):
    """A model call that failed after the gateway's own retries (never cached)."""


class EmbeddingUnavailable(GatewayError):
    """No embedding model is configured or reachable; callers fall back to a local measure."""


@dataclass
class Reply:
    output: str
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cache_hit: bool = False
    call_id: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Gateway(Protocol):
    async def complete(
        self, *, prompt: int | str, version: int | None = None, variables: dict[str, Any] | None = None,
        model: str | None = None, run_id: str | None = None, temperature: float | None = None,
        response_format: dict[str, Any] | None = None, logprobs: bool = False, cache_extra: str = "",
        cache: bool | None = None, cache_accept: Callable[[str], bool] | None = None,
    ) -> Reply: ...

    async def embed(self, texts: list[str], *, model: str | None = None, run_id: str | None = None) -> list[list[float]]: ...


class LiveGateway:
    """Over `promstack.gateway.Gateway`: the run id tags every call-log row; `cache_extra` (the
    repeat index) is part of the cache key, so a repeat is a fresh sample; `cache=False` (a
    caller that wants it) skips the cache; `cache_accept` (the judge's validator) keeps a reply that
    fails validation out of the cache, so a malformed judgement is never cached and a good retry is. Errors are
    never cached by the gateway; a cache hit reports the latency of the call that filled it."""

    def __init__(self, client: Client, *, environment: str | None = None, user_id: str | None = None) -> None:
        self.client = client
        self.environment = environment
        self.user_id = user_id
        self._own: promstack.gateway.Gateway | None = None
        if client.store.path is not None:
            # A gateway of its own: it reads the store (the prompt version, its includes) over a
            # connection of its own, on its own thread, while the runner writes results on this
            # one (one sqlite3 connection must not be used by two threads at once).
            # It runs on the loop of the run that awaits it (no hop to the portal's thread and
            # back for every call); `aclose()` closes its HTTP pool there.
            self._own = client.open_gateway(environment=environment, batch=True)
            self.gateway = self._own
        else:
            self.gateway = client.gateway

    def backlog(self) -> int:
        """Call-log rows waiting to be written."""
        return self.gateway.backlog()

    def share_rates(self, processes: int) -> None:
        """This gateway is one of `processes` sharing a run: `[gateway] rpm`/`tpm` are split."""
        self.gateway.limits.share = processes

    def flush_journal(self) -> None:
        """Write out the call log's journal lines still held for this turn of the loop."""
        self.gateway.log.flush_journal()

    def flush(self) -> None:
        """Wait until every call so far is in the call log (a run's summary reads it)."""
        self.gateway.flush()

    async def aclose(self) -> None:
        """`close()`, the HTTP pool closed first on the loop that used it."""
        if self._own is not None:
            await self._own.aclose()
            self._own = None

    def close(self) -> None:
        """Drain the call log and close the gateway's connection (if this made a gateway); the
        gateway closes the connection it opened, once."""
        if self._own is not None:
            self._own.close()
            self._own = None

    async def complete(
        self, *, prompt: int | str, version: int | None = None, variables: dict[str, Any] | None = None,
        model: str | None = None, run_id: str | None = None, temperature: float | None = None,
        response_format: dict[str, Any] | None = None, logprobs: bool = False, cache_extra: str = "",
        cache: bool | None = None, cache_accept: Callable[[str], bool] | None = None,
    ) -> Reply:
        from store.errors import PromStackError

        overrides: dict[str, Any] = {}
        if temperature is not None:
            overrides["temperature"] = temperature
        if response_format is not None:
            overrides["response_format"] = response_format
        if logprobs:
            overrides["logprobs"] = True
            overrides["top_logprobs"] = 5
        try:
            result = await self.gateway.arun(
                prompt, variables or {}, version=version, model=model, run_id=run_id,
                environment=self.environment, user_id=self.user_id,
                model_config=overrides or None, cache_extra=cache_extra or None, cache=cache,
                cache_accept=cache_accept,
            )
        except PromStackError as exc:
            # A failed or blocked call (already in the call log), or a case whose variables
            # don't render: an error for this case, not for the run.
            raise GatewayError(str(exc)) from exc
        latency = result.latency_ms
        if result.cache_hit and getattr(result, "original_latency_ms", None) is not None:
            latency = result.original_latency_ms
        return Reply(
            output=result.output or "", model=result.model, input_tokens=result.input_tokens or 0,
            output_tokens=result.output_tokens or 0, cost_usd=result.cost_usd or 0.0,
            latency_ms=latency, cache_hit=bool(result.cache_hit), call_id=result.call_id,
            logprobs=_token_logprobs(result.logprobs),
        )

    async def embed(self, texts: list[str], *, model: str | None = None, run_id: str | None = None) -> list[list[float]]:
        aembed = getattr(self.gateway, "aembed", None)
        if aembed is None or not model:
            raise EmbeddingUnavailable("the gateway has no embedding call" if model else "no embedding model is configured")
        try:
            return await aembed(texts, model=model, run_id=run_id)
        except Exception as exc:
            raise EmbeddingUnavailable(str(exc)) from exc


def _token_logprobs(value: Any) -> list[dict[str, Any]] | None:
    """OpenAI's `choice.logprobs` is {"content": [{token, logprob, top_logprobs}, ...]}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, list) else None
