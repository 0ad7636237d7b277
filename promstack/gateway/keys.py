"""Keys go only where the server's owner sent them: which base URL may receive a provider key,
and which environment variable a model config may name as its key.

A model config is prompt content: anyone who may edit a prompt (an MCP client, a model, a
prompt file in a pull request) writes it. So it may *point* at a server (`api_base`), but a
provider key goes there only when that server is the provider's own or one the server's
`.promstack/config.toml` lists (`[providers.NAME] api_base` or `trusted_api_bases`), compared as
normalised URLs (scheme, host, port, path). Anything else, loopback included, is called with
no key. And `api_key_env` may name only the provider's standard variable, the variable config.toml
sets for the provider, or one `[gateway] allowed_key_env` lists: never a database password.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from store.errors import InvalidInput

# Where litellm sends a provider's calls when no api_base is given (the lean providers' own
# are in promstack.gateway.routing.LEAN_PROVIDERS): a stored api_base equal to one of these is trusted.
LITELLM_DEFAULT_BASES: dict[str, tuple[str, ...]] = {
    "anthropic": ("https://api.anthropic.com", "https://api.anthropic.com/v1"),
    "gemini": ("https://generativelanguage.googleapis.com", "https://generativelanguage.googleapis.com/v1beta"),
    "cohere": ("https://api.cohere.ai", "https://api.cohere.com"),
}
# The variables litellm (or our lean route) reads for a provider: a model config may name these
# for that provider only.
STANDARD_KEY_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "azure": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
    "openrouter": ("OPENROUTER_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "fireworks_ai": ("FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY"),
    "xai": ("XAI_API_KEY",),
    "perplexity": ("PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"),
    "hosted_vllm": ("HOSTED_VLLM_API_KEY",),
    "vllm": ("HOSTED_VLLM_API_KEY",),
    "lm_studio": ("LM_STUDIO_API_KEY",),
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(url: Any) -> str | None:
    """`scheme://host:port/path` of an http(s) URL, lower-cased where case does not matter and
    with the default port written out; None for anything that is not a plain http(s) URL
    (user info, a query, a fragment, a backslash or whitespace: no guessing what a client
    library would make of it)."""
    if not isinstance(url, str) or not url or any(c.isspace() or c == "\\" for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc or parts.query or parts.fragment:
        return None
    if ":" in host:
        host = f"[{host}]"
    path = parts.path.rstrip("/")
    if "/../" in f"{path}/" or "/./" in f"{path}/" or "%" in path:
        return None
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}{path}"


def env_base(provider: str) -> str | None:
    """The provider's base URL as the server's environment sets it (`NAME_API_BASE`)."""
    return os.environ.get(f"{provider.upper()}_API_BASE") or (
        os.environ.get("OPENAI_BASE_URL") if provider == "openai" else None)


def trusted_bases(provider: str, settings: dict[str, Any], default_base: str | None) -> list[str]:
    """The base URLs that may receive `provider`'s key, as the server's owner spelled them:
    the provider's default, config.toml's `[providers.NAME] api_base` and `trusted_api_bases`,
    and the provider's base URL variable in the server's environment."""
    listed = settings.get("trusted_api_bases") or []
    if isinstance(listed, str):
        listed = [listed]
    return [str(b) for b in (default_base, *LITELLM_DEFAULT_BASES.get(provider, ()), settings.get("api_base"),
                             env_base(provider), *listed) if b]


def trusted(base: Any, bases: Iterable[str]) -> str | None:
    """The trusted spelling of `base` (the request goes there, not to the stored text), or None."""
    wanted = normalise(base)
    if wanted is None:
        return None
    for candidate in bases:
        if normalise(candidate) == wanted:
            return candidate.rstrip("/")
    return None


def allowed_key_env(provider: str | None, settings: dict[str, Any], gateway: dict[str, Any],
                    default_key: str | None = None) -> set[str]:
    """The variables a model config may name with `api_key_env` for `provider`."""
    names = {str(n) for n in gateway.get("allowed_key_env") or [] if n}
    if provider:
        names.update(STANDARD_KEY_ENV.get(provider, ()))
        if default_key:
            names.add(default_key)
        if settings.get("api_key_env"):
            names.add(str(settings["api_key_env"]))
    return names


def check_key_env(name: Any, provider: str | None, settings: dict[str, Any], gateway: dict[str, Any],
                  default_key: str | None = None) -> str:
    """`name` if a model config may send it as `provider`'s key; otherwise InvalidInput."""
    allowed = allowed_key_env(provider, settings, gateway, default_key)
    if isinstance(name, str) and name in allowed:
        return name
    who = f"provider {provider}" if provider else "this model"
    standard = sorted(STANDARD_KEY_ENV.get(provider or "", ()))
    usual = f" ({who}'s usual variable is {standard[0]})" if standard else ""
    raise InvalidInput(
        f"model_config.api_key_env {name!r} is not a variable this server sends as a key for {who}{usual}; "
        f"to allow it, list it in .promstack/config.toml under [gateway] allowed_key_env = [{name!r}] "
        f"or set [providers.{provider or 'NAME'}] api_key_env"
    )
