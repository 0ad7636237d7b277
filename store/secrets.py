"""Secrets that must not be stored, served or echoed: what a key looks like, and one redaction.

A model config is stored, versioned, exported and shown to everyone who can read the prompt,
so it may name where a key lives (`api_key_env`) but never hold one: `find` names the fields
that look like a secret, by name (`api_key`, `*_key`, `token`, `secret`, `password`, ...) or by
value (`sk-...`, `ghp_...`, `Bearer ...`). `mask` hides them in a config stored before that rule,
so no face serves it. `redact` is the one text scrubber: gateway errors, and any error that
quotes a file a person pointed at.

It lives in the store, the lowest layer, because the store's validation needs it and the
store imports nothing of the engine; the engine imports it from here.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidInput

MASK = "***"

# Key-shaped values: PromStack API tokens, provider keys, GitHub/Slack/AWS/Google tokens, bearer headers, JWTs.
KEYLIKE = re.compile(
    r"(?:sk-|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|AKIA|AIza|xox[abpr]-|glpat-|hf_)[A-Za-z0-9_\-]{8,}"
    # a PromStack API token (store/tokens.py); not inside a word, so `groups_...` is no token
    r"|(?<![A-Za-z0-9])ps_[A-Za-z0-9_\-]{32,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+"
)
# `NAME=value` where the name says secret (a .env line, a shell line, a URL's query).
_ASSIGNED = re.compile(
    r"(?i)\b([A-Za-z0-9_.-]*(?:key|token|secret|passw(?:or)?d|pwd|credentials?|auth)(?:[_.-][A-Za-z0-9_.-]*)?)"
    r"(\s*=\s*)(['\"]?)[^\s'\",;&]+"
)
# Field names that hold a secret: `api_key`, `*_key`, `secret`, `password`, `token` and the
# kinds of token that authenticate (`access_token`, ...). `api_key_env` names a variable and is
# allowed (it ends in `_env`); `max_tokens` and `input_cost_per_token` count tokens.
_SECRET_NAME = re.compile(
    r"(?i)^(?:.*[_\-.])?(?:api_?key|key|secret|passw(?:or)?d|pwd|passphrase|credentials?|authorization"
    r"|auth|bearer|cookie)$"
    r"|^(?:.*[_\-.])?(?:access|auth|api|bearer|refresh|id|session|oauth|pat|github|hf)[_\-.]?token$|^token$"
)
# Names that match the pattern above but are no secret.
_NOT_SECRET = frozenset({"prompt_cache_key", "cache_key", "idempotency_key"})
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")


def redact(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """`text` with the given secrets, anything key-shaped and `NAME=value` secrets replaced."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = KEYLIKE.sub(MASK, text)
    return _ASSIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)


def secret_name(name: str) -> bool:
    return name.lower() not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


# Under these keys, names are names: a JSON schema's fields (`{"properties": {"token": {"type":
# "string"}}}`) and the prompt's own `variables` (a template may well ask for a `{{ token }}`).
_SCHEMA_KEYS = frozenset({"properties", "patternProperties", "$defs", "definitions", "variables"})


def _holds_secret(key: Any, value: Any, in_schema: bool) -> bool:
    return (isinstance(key, str) and not in_schema and secret_name(key)
            and value is not None and not isinstance(value, bool))


def find(value: Any, where: str = "model_config", _in_schema: bool = False) -> list[str]:
    """Dotted paths of the fields of `value` that hold (or look like) a secret."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            if _holds_secret(key, item, _in_schema):
                found.append(here)
            else:
                found.extend(find(item, here, not _in_schema and key in _SCHEMA_KEYS))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(find(item, f"{where}[{i}]"))
    elif isinstance(value, str) and KEYLIKE.search(value):
        found.append(where)
    return found


def mask(value: Any, _in_schema: bool = False) -> Any:
    """A copy of `value` whose secret fields read MASK: for a config stored before they were
    refused. Returns `value` itself when there is nothing to hide."""
    if not find(value, _in_schema=_in_schema):
        return value
    if isinstance(value, dict):
        return {k: (MASK if _holds_secret(k, v, _in_schema) else mask(v, not _in_schema and k in _SCHEMA_KEYS))
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str):
        return KEYLIKE.sub(MASK, value)
    return value


def refuse(model_config: Any) -> None:
    """The one refusal of a model config that holds a key: every way a config is saved, and a
    call with a config stored before keys were refused, say it the same way."""
    found = find(model_config)
    if found:
        raise InvalidInput(
            f"{found[0]} looks like a secret (an API key, token or password); a model config is "
            "stored, versioned and shown to everyone who can read the prompt, so keys are never "
            "kept in it: put the key in an environment variable on the server and name that "
            "variable with 'api_key_env'"
        )
