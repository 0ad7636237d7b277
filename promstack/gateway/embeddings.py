"""Embeddings (the evals' semantic similarity): the same route, keys, retries, transport and call
log as a chat call, with PII masked before the texts leave; one call-log row per request."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from store.clock import now

from .. import guard
from . import pricing
from .errors import GatewayError, redact
from .record import Call, new_call_id
from .retries import with_retries
from .routing import resolve_route
from .transport import EMBEDDINGS

if TYPE_CHECKING:
    from .call import Gateway


async def embed(
    gateway: Gateway, texts: list[str], *, model: str, model_config: dict[str, Any] | None = None,
    run_id: str | None = None, user_id: str | None = None, environment: str | None = None,
) -> list[list[float]]:
    """Embedding vectors for `texts` through `gateway` (on its loop: `Gateway.aembed`)."""
    conf = gateway.config()
    call = Call(new_call_id(), now(), time.perf_counter(), model, user_id=user_id,
                run_id=run_id, environment=environment or gateway.environment(conf))
    model_config = dict(model_config or {})
    secrets: tuple[str, ...] = ()
    try:
        settings = conf.view("guard", guard.DEFAULTS)
        if settings.get("pii", "mask") == "mask":
            masked = [guard.mask_pii(t, settings.get("pii_entities"))[0] for t in texts]
            if masked != texts:
                call.guards = {"pii": {"action": "masked"}}
            texts = masked
        gw = gateway.settings(conf)
        route = resolve_route(model, model_config, conf.view("providers"), gw)
        call.provider, call.route = route.provider, route.route
        price = pricing.price(route.model, config=conf, model_config=model_config)
        api_key = os.environ.get(route.key_env) if route.key_env else None
        secrets = (api_key,) if api_key else ()
        timeout = float(model_config.get("timeout") or gw["timeout"])
        vectors, tokens, _, _ = await with_retries(
            lambda: gateway.transport.send(EMBEDDINGS, route, texts, {}, api_key, timeout,
                                           int(gw["max_connections"])), gw)
    except BaseException as exc:
        if isinstance(exc, GatewayError):
            exc.args = (redact(str(exc), secrets),)
        gateway.recorder.failed(call, exc, secrets)
        raise
    gateway.recorder.finish(call, route, "", tokens or 0, 0, False, {"output": "off"}, price, None)
    return vectors
