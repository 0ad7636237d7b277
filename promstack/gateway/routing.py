"""Which route and endpoint serve a model, and which key may go there.

The lean route serves providers that speak OpenAI's chat-completions API through one pooled
aiohttp session; everything else goes through litellm. A key goes only to a base URL the server
trusts, from a variable it allows (`promstack.gateway.keys`, docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store import secrets
from store.errors import InvalidInput, Step

from .. import config as config_module
from . import keys, pricing

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
# The [gateway] table of config.toml: read by routing (allowed_key_env) and by every call.
GATEWAY_DEFAULTS: dict[str, Any] = {
    "timeout": 60.0,  # seconds per attempt
    "max_retries": 3,  # attempts after the first, for 429/5xx/timeouts/connection errors
    "retry_initial": 0.5,  # first backoff in seconds (exponential with jitter)
    "retry_max_wait": 20.0,  # cap on one wait, Retry-After included
    "retry_deadline": 120.0,  # no new attempt after this many seconds
    "environment": None,
    "max_connections": 256,
    "record_input": True,  # the audit row keeps the (masked) variables: "who asked what"
    "rpm": None,  # requests a minute per model, at most (promstack.gateway.limits)
    "tpm": None,  # tokens a minute per model, at most
    # "models": {"<model>": {"rpm": ..., "tpm": ...}}: one model's caps over the two above
}


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
        raise unknown_model(model)
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


def unknown_model(model: str) -> InvalidInput:
    return InvalidInput(
        f"unknown model {model!r}: name it as provider/model (e.g. openai/gpt-4o-mini, "
        "anthropic/claude-3-5-haiku-latest), or give an api_base for an OpenAI-compatible server"
    )
