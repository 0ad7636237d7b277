"""What one call leaves behind: its result (`CallResult`), and its call-log row plus audit row,
written in batches off the calling thread (`store.calls.CallLogWriter`), hit or miss, success or
failure. API keys never reach either: every error text goes through `redact` first."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from store.calls import CallLogWriter
from store.errors import PromStackError

from .. import config as config_module
from .. import guard
from . import pricing
from .errors import GatewayError, redact
from .routing import GATEWAY_DEFAULTS

if TYPE_CHECKING:
    from .routing import Route

_AUDIT_INPUT_LIMIT = 2000
_ids: tuple[int, int, itertools.count] | None = None
_STEP = 0x9E3779B97F4A7C15F39CC0605CEDC835  # odd: n -> base + n * _STEP is one-to-one mod 2**128


def new_call_id() -> str:
    """A call's id: 32 hex digits that look like a uuid4's (no long runs of zeros or digits a
    personal-data recognizer could take for a phone number), unique across processes (a random
    128-bit start drawn once per process) and within one (a Weyl sequence), without a system
    call per call."""
    global _ids
    if _ids is None or _ids[0] != os.getpid():
        _ids = (os.getpid(), int.from_bytes(os.urandom(16), "big"), itertools.count(1))
    return f"{(_ids[1] + next(_ids[2]) * _STEP) & ((1 << 128) - 1):032x}"


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


@dataclass
class Call:
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


class Recorder:
    """Turns a finished or failed call into its result and its two rows, in the call log
    `log` with `actor` as the audit row's actor when the call names no user."""

    def __init__(self, log: CallLogWriter, actor: str) -> None:
        self.log = log
        self.actor = actor

    def finish(self, call: Call, route: Route, output: str, tokens_in: int, tokens_out: int, hit: bool,
               guard_settings: dict[str, Any], price: pricing.Price | None, logprobs: Any,
               shown: tuple[str, dict[str, Any]] | None = None) -> CallResult:
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
        self.log.submit(row, self.audit_entry(call, row))
        return result

    def failed(self, call: Call, exc: BaseException, secrets: tuple[str, ...] = ()) -> None:
        blocked = isinstance(exc, guard.GuardBlocked) or getattr(exc, "blocked", False) is True
        message = redact(f"{type(exc).__name__}: {exc}" if not isinstance(exc, PromStackError) else str(exc), secrets)
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
        self.log.submit(row, self.audit_entry(call, row))

    def audit_entry(self, call: Call, row: dict[str, Any]) -> dict[str, Any]:
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
            "actor": call.user_id or self.actor, "action": "llm_call",
            "prompt_id": call.prompt_id, "version": call.prompt_version, "detail": detail,
            "input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"],
            "cost_usd": row["cost_usd"],
        }

    # ---- lifecycle ----------------------------------------------------------------------


def audit_input(variables: dict[str, Any] | None, conf: config_module.Config,
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
