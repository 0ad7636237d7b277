"""The gateway: every model call, from any face, goes render -> guard -> cache -> call -> price -> log.

`Gateway` (`call`) is the one way to call a model. One module per idea: `errors` (GatewayError),
`routing` (which route, endpoint and key), `cache`, `litellm_loader` (litellm, lazily: only for
providers the lean HTTP path does not speak), `portal` (the sync bridge), `transport` (chat and
embeddings, lean or litellm), `retries`, `record` (the result and its call-log and audit rows),
`embeddings`, `tokens` (the one token counter), `pricing`, `budgets` (refuses calls that would
exceed a budget) and `keys` (which provider key a call may use).
"""

from .call import Gateway
from .errors import GatewayError
from .litellm_loader import load_litellm
from .portal import run_sync
from .record import CallResult
from .routing import check_model_config, resolve_route

__all__ = ["CallResult", "Gateway", "GatewayError", "check_model_config", "load_litellm",
           "resolve_route", "run_sync"]
