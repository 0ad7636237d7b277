"""The gateway: every model call, from any face, goes render -> guard -> cache -> call -> price -> log.

`Gateway` (in `core`) is the one way to call a model; `pricing` prices calls, `budgets` refuses
calls that would exceed a budget, `keys` decides which provider key a call may use. litellm is
imported lazily (`load_litellm`), only for providers the lean HTTP path does not speak.
"""

from .core import CallResult, Gateway, GatewayError, load_litellm, run_sync

__all__ = ["CallResult", "Gateway", "GatewayError", "load_litellm", "run_sync"]
