"""litellm, lazily: imported here only, the first time a model the lean route does not speak is
called. It takes seconds to import and ~5 ms of CPU a call (docs/gateway.md)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from .errors import GatewayError, error, retry_after_seconds, shorten, status_error
from .routing import LEAN_PROVIDERS, unknown_model

if TYPE_CHECKING:
    from .routing import Route

_litellm_module = None
_litellm_lock = threading.Lock()


def load_litellm() -> Any:  # the litellm module
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


def litellm_kwargs(route: Route, api_key: str | None, **request: Any) -> dict[str, Any]:
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


def litellm_error(route: Route, exc: Exception) -> GatewayError:
    """litellm's exceptions (openai's underneath) in our one error model."""
    litellm = load_litellm()
    status = getattr(exc, "status_code", None)
    detail = shorten(str(getattr(exc, "message", None) or exc))
    lowered = detail.lower()
    if isinstance(exc, litellm.Timeout):
        return error(route.provider, route.model, "timeout", detail)
    if isinstance(exc, litellm.APIConnectionError):
        if "json" in lowered or "decode" in lowered or "expecting" in lowered:
            return error(route.provider, route.model, "malformed_response", detail)
        return error(route.provider, route.model, "connection", detail)
    if isinstance(exc, litellm.APIResponseValidationError):
        return error(route.provider, route.model, "malformed_response", detail)
    # litellm reports a body it could not parse, or one without choices, as a 500
    if "no 'choices'" in lowered or "no choices" in lowered:
        return error(route.provider, route.model, "empty_response", detail)
    if "expecting value" in lowered or "jsondecodeerror" in lowered or "unterminated string" in lowered:
        return error(route.provider, route.model, "malformed_response", detail)
    if isinstance(exc, litellm.BadRequestError) and "LLM Provider NOT provided" in detail:
        return GatewayError(str(unknown_model(route.model)), provider=route.provider, cause="unknown_model")
    if isinstance(status, int) and status >= 400:
        retry_after = None
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = retry_after_seconds(getattr(response, "headers", {}).get("retry-after"))
        return status_error(route, status, detail, retry_after)
    if isinstance(exc, ValueError | KeyError | TypeError):
        return error(route.provider, route.model, "malformed_response", f"{type(exc).__name__}: {detail}")
    return error(route.provider, route.model, "provider_error", f"{type(exc).__name__}: {detail}")
