"""OpenTelemetry in: OTLP/HTTP trace exports become call-log rows (`POST /v1/traces`).

An app already instrumented with OpenTelemetry points its exporter at `promstack serve`
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://server:8787/v1/traces`); each span that carries
`gen_ai.*` attributes (the GenAI semantic conventions, and the older names instrumentation
libraries still send) is one row of the call log with `source = 'otlp'`:

| call log          | span                                                                        |
|-------------------|-----------------------------------------------------------------------------|
| model             | gen_ai.request.model (else gen_ai.response.model)                            |
| operation         | gen_ai.operation.name (else llm.request.type)                                |
| provider          | gen_ai.provider.name (else gen_ai.system)                                    |
| input/output tokens | gen_ai.usage.input_tokens / output_tokens (else prompt_tokens / completion_tokens) |
| timestamp, latency | start time, end - start                                                     |
| status, error     | the span's status ERROR or an `error.type` attribute -> 'error'              |
| prompt, version   | promstack.prompt.id (an id or a name), promstack.prompt.version              |
| user, environment | user.id / enduser.id; deployment.environment(.name) of the span or resource  |
| cost_usd          | priced by the server's prices (response model first); NULL when unpriced     |

Spans without gen_ai attributes (an app's own HTTP spans, a workflow's parent span) are ignored
and counted; a gen_ai span that names no model is a tool or agent step, not a model call, and is
ignored the same way. A span is rejected, by its index in the request, when it cannot be a call
(no start or end time, an end before its start, negative tokens) or when its clock is more than
`MAX_FUTURE` ahead of the server's. The rest are stored, in one transaction, before the answer:
an acknowledged span is in the store. A span's row is keyed by its trace and span ids, so an
exporter that retries a batch stores each span once. A prompt id the store does not know is
stored and flagged (`flags: ["unknown_prompt"]`), never refused: the call happened.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlite_utils

from store import calls
from store.clock import current, iso
from store.errors import InvalidInput

from ..gateway import pricing

if TYPE_CHECKING:
    from ..config import Config

SOURCE = "otlp"
MAX_BODY_BYTES = 10 * 1024 * 1024  # a request body, compressed or not: the exporters' batches are far smaller
MAX_FUTURE = timedelta(hours=1)
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_STATUS_ERROR = 2  # Status.STATUS_CODE_ERROR
_NOT_MODEL_CALLS = {"execute_tool", "invoke_agent", "create_agent"}
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_ID_FIELDS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}


class TooLarge(InvalidInput):
    """The request body is over MAX_BODY_BYTES (HTTP 413)."""


class Unsupported(InvalidInput):
    """The request is not in an encoding OTLP/HTTP defines (HTTP 415)."""


@dataclass
class Report:
    """What one export did: stored, already stored (a retry), ignored, and rejected by index."""

    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    flagged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def message(self, noun: str = "span") -> str:
        """A sentence for the sender's log (an exporter's spans, or an app's reported calls);
        empty when every one was stored."""
        parts = []
        if self.rejected:
            shown = "; ".join(f"{noun} {i}: {why}" for i, why in self.rejected[:5])
            more = f" (and {len(self.rejected) - 5} more)" if len(self.rejected) > 5 else ""
            parts.append(f"rejected {len(self.rejected)} {noun}(s): {shown}{more}")
        if self.ignored:
            parts.append(f"ignored {self.ignored} {noun}(s) without gen_ai model attributes")
        if self.flagged:
            parts.append(f"stored {self.flagged} {noun}(s) naming a prompt or version this server lacks (flagged)")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "duplicates": self.duplicates, "ignored": self.ignored,
                "flagged": self.flagged, "rejected": [{"index": i, "reason": r} for i, r in self.rejected]}


# ---- decoding ------------------------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    """PROTOBUF or JSON from a Content-Type header; anything else is refused (415)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in (PROTOBUF, JSON):
        return kind
    raise Unsupported(f"send OTLP traces as {PROTOBUF} or {JSON}, not {kind or 'no Content-Type'!r}")


def inflate(body: bytes, encoding: str | None) -> bytes:
    """The body without its Content-Encoding (gzip or deflate), never past MAX_BODY_BYTES."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise Unsupported(f"Content-Encoding {encoding!r} is not supported; send gzip or none")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidInput(f"the body is not valid {encoding} data: {exc}") from None
    if len(out) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is over {MAX_BODY_BYTES:,} bytes once decompressed; send smaller batches")
    return out


def _hex_ids(node: Any) -> Any:
    """OTLP/JSON spells trace and span ids in hex where protobuf's JSON mapping has base64."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            size = _ID_FIELDS.get(key)
            if size and isinstance(value, str) and len(value) == size and _HEX.match(value):
                value = base64.b64encode(binascii.unhexlify(value)).decode("ascii")
            out[key] = _hex_ids(value)
        return out
    if isinstance(node, list):
        return [_hex_ids(item) for item in node]
    return node


def decode(body: bytes, kind: str) -> Any:
    """An ExportTraceServiceRequest from a protobuf or OTLP/JSON body; InvalidInput when it is not."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeWarning, ValueError) as exc:
            raise InvalidInput(f"the body is not an OTLP ExportTraceServiceRequest in protobuf: {exc}") from None
        return request
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInput("the body is not an OTLP/JSON ExportTraceServiceRequest: expected an object with resourceSpans")
    try:
        json_format.ParseDict(_hex_ids(document), request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise InvalidInput(f"the body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None
    return request


def response(report: Report, kind: str) -> bytes:
    """The ExportTraceServiceResponse for `report`, in the request's encoding."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    answer = ExportTraceServiceResponse()
    message = report.message()
    if report.rejected or message:
        answer.partial_success.rejected_spans = len(report.rejected)
        answer.partial_success.error_message = message
    if kind == PROTOBUF:
        return answer.SerializeToString()
    return json.dumps(json_format.MessageToDict(answer)).encode("utf-8")


def error_status(message: str, kind: str) -> bytes:
    """A google.rpc.Status body (what OTLP/HTTP answers a refused request with)."""
    from google.rpc.status_pb2 import Status

    status = Status(code=3, message=message)  # INVALID_ARGUMENT
    if kind == PROTOBUF:
        return status.SerializeToString()
    return json.dumps({"code": 3, "message": message}).encode("utf-8")


# ---- spans -> rows -------------------------------------------------------------------------


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    value = getattr(any_value, kind)
    if kind == "array_value":
        return [_value(v) for v in value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.values}
    return value


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value not in (None, ""):
            return value
    return None


def _tokens(attrs: dict[str, Any], *keys: str) -> int:
    value = _first(attrs, *keys)
    if value is None:
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{keys[0]} is {value!r}, not a count of tokens")
    if value >= 2**63:
        raise ValueError(f"{keys[0]} is {value}, more tokens than the call log can count")
    return value


def _nanos(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e9, UTC)


class PromptLinks:
    """The store's prompts, to link spans to versions, and the prices of their models (each looked
    up once per export)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.found: dict[Any, tuple[int | None, str | None, bool]] = {}
        self.versions: dict[tuple[int, int], bool] = {}
        self.prices: dict[tuple[Any, Any], pricing.Price | None] = {}

    def price(self, response_model: Any, model: Any, config: Config | None) -> pricing.Price | None:
        """The server's price for the response model, else the request model (once per export)."""
        key = (response_model, model)
        if key not in self.prices:
            found = None
            for name in dict.fromkeys(m for m in key if isinstance(m, str)):
                found = pricing.price(name, config=config)
                if found is not None:
                    break
            self.prices[key] = found
        return self.prices[key]

    def link(self, ref: Any, version: Any) -> tuple[int | None, str | None, int | None, list[str]]:
        """(prompt id, name, version, flags) for a span's promstack.prompt.id and .version."""
        if ref is None:
            return None, None, None, []
        if isinstance(ref, str) and ref.strip().isdigit():
            ref = int(ref)
        if isinstance(version, str) and version.strip().isdigit():
            version = int(version)
        if isinstance(version, float) and version.is_integer():
            version = int(version)
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**63:
            version = None
        if isinstance(ref, float) and ref.is_integer():
            ref = int(ref)
        if ref not in self.found:
            if isinstance(ref, int) and not isinstance(ref, bool) and 0 < ref < 2**63:
                row = self.db.execute("SELECT name FROM prompts WHERE id = ?", [ref]).fetchone()
                self.found[ref] = (ref, row[0] if row else None, row is not None)
            else:
                row = self.db.execute("SELECT id, name FROM prompts WHERE name = ?", [str(ref)]).fetchone()
                self.found[ref] = (row[0], row[1], True) if row else (None, str(ref)[:200], False)
        prompt_id, name, known = self.found[ref]
        if not known:
            return prompt_id, name, version, ["unknown_prompt"]
        if version is not None:
            key = (prompt_id, version)
            if key not in self.versions:
                self.versions[key] = self.db.execute(
                    "SELECT 1 FROM versions WHERE prompt_id = ? AND number = ? LIMIT 1", key).fetchone() is not None
            if not self.versions[key]:
                return prompt_id, name, version, ["unknown_version"]
        return prompt_id, name, version, []


def span_row(span: Any, resource: dict[str, Any], prompts: PromptLinks, config: Config | None,
             now: datetime) -> dict[str, Any] | None:
    """A span's call-log row; None for a span that is not a model call; ValueError (saying why)
    for one that cannot be stored."""
    attrs = _attributes(span.attributes)
    if not any(key.startswith("gen_ai.") for key in attrs):
        return None
    model = _first(attrs, "gen_ai.request.model", "gen_ai.response.model")
    operation = _first(attrs, "gen_ai.operation.name", "llm.request.type")
    if model is None:
        if operation in _NOT_MODEL_CALLS or operation is None:
            return None
        raise ValueError(f"a {operation} span with no gen_ai.request.model")
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    if len(trace_id) != 32 or len(span_id) != 16 or not int(trace_id, 16) or not int(span_id, 16):
        raise ValueError("no valid trace id and span id (16 and 8 bytes, not all zero)")
    if not span.start_time_unix_nano or not span.end_time_unix_nano:
        raise ValueError("no start or end time")
    if span.end_time_unix_nano < span.start_time_unix_nano:
        raise ValueError("it ends before it starts")
    start, end = _nanos(span.start_time_unix_nano), _nanos(span.end_time_unix_nano)
    if end - now > MAX_FUTURE:
        ahead = (end - now).total_seconds() / 3600
        raise ValueError(f"its clock is {ahead:,.1f} h ahead of the server's (more than "
                         f"{MAX_FUTURE.total_seconds() / 3600:g} h): check the sending host's clock")
    tokens_in = _tokens(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    tokens_out = _tokens(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
    error_type = _first(attrs, "error.type")
    failed = span.status.code == _STATUS_ERROR or error_type is not None
    error = (span.status.message or (str(error_type) if error_type is not None else "the span's status is ERROR")
             ) if failed else None
    prompt_id, prompt_name, version, flags = prompts.link(
        _first(attrs, "promstack.prompt.id", "promstack.prompt.name"), attrs.get("promstack.prompt.version"))
    response_model = _first(attrs, "gen_ai.response.model")
    cost: float | None = 0.0
    if tokens_in or tokens_out:
        price = prompts.price(response_model, model, config)
        cost = None if price is None else price.cost(tokens_in, tokens_out)
    environment = _first(attrs, "deployment.environment.name", "deployment.environment") or _first(
        resource, "deployment.environment.name", "deployment.environment")
    return {
        "call_id": f"otlp-{trace_id}-{span_id}", "timestamp": iso(start), "prompt_id": prompt_id,
        "prompt_name": prompt_name, "prompt_version": version, "model": str(model)[:200],
        "provider": clipped(_first(attrs, "gen_ai.provider.name", "gen_ai.system")),
        "route": None, "input_tokens": tokens_in, "output_tokens": tokens_out,
        "latency_ms": round((span.end_time_unix_nano - span.start_time_unix_nano) / 1e6, 3),
        "user_id": clipped(_first(attrs, "user.id", "enduser.id")), "cost_usd": cost, "cache_hit": False,
        "status": "error" if failed else "ok", "error": clipped(error, 2000), "environment": clipped(environment),
        "run_id": None, "guards": {}, "source": SOURCE, "operation": clipped(operation), "flags": flags,
    }


def clipped(value: Any, limit: int = 200) -> str | None:
    """A reported field as text of at most `limit` characters (None stays None)."""
    return None if value is None else str(value)[:limit]


def audit_entry(row: dict[str, Any], actor: str) -> dict[str, Any]:
    """The audit row a reported call gets beside its call-log row, as the gateway's calls do."""
    detail = {k: row[k] for k in ("call_id", "model", "provider", "status", "operation", "environment",
                                  "prompt_name", "source") if row.get(k) is not None}
    if row.get("error"):
        detail["error"] = row["error"]
    if row.get("flags"):
        detail["flags"] = row["flags"]
    return {"actor": actor, "action": "llm_call", "prompt_id": row["prompt_id"],
            "version": row["prompt_version"], "detail": detail, "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"], "cost_usd": row["cost_usd"]}


def ingest(db: sqlite_utils.Database, request: Any, *, actor: str, config: Config | None = None,
           now: datetime | None = None) -> Report:
    """Store the model-call spans of a decoded ExportTraceServiceRequest; returns the Report.
    Spans are numbered in the order they appear in the request, from 0."""
    now = now or current()
    report = Report()
    prompts = PromptLinks(db)
    rows = []
    index = -1
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                index += 1
                try:
                    row = span_row(span, resource, prompts, config, now)
                except ValueError as exc:
                    report.rejected.append((index, str(exc)))
                    continue
                if row is None:
                    report.ignored += 1
                    continue
                rows.append(row)
    if rows:
        new = calls.insert_new(db, [(row, audit_entry(row, actor)) for row in rows])
        report.stored = sum(new)
        report.duplicates = len(new) - report.stored
        report.flagged = sum(1 for row, fresh in zip(rows, new, strict=True) if fresh and row["flags"])
    return report


def receive(db: sqlite_utils.Database, body: bytes, content_type: str | None, content_encoding: str | None,
            *, actor: str, config: Config | None = None) -> tuple[Report, bytes]:
    """One `POST /v1/traces`: decode, store, and the answer's body (in the request's encoding).
    Raises TooLarge, Unsupported or InvalidInput (a sentence) for a request it cannot take."""
    kind = media_type(content_type)
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is over {MAX_BODY_BYTES:,} bytes; send smaller batches")
    report = ingest(db, decode(inflate(body, content_encoding), kind), actor=actor, config=config)
    return report, response(report, kind)
