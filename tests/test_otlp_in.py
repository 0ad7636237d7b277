"""OpenTelemetry in: spans made by the real OpenTelemetry SDK, exported over OTLP/HTTP to the app on
a real port (protobuf from the SDK's exporter, OTLP/JSON made from the same proto classes), become
call-log rows; a span set shaped like OpenLLMetry's; and every bad input the issue names."""

from __future__ import annotations

import base64
import gzip
import json
import time

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from starlette.testclient import TestClient
from test_mcp_http import serving

from promstack.monitoring import metrics, otlp_in
from promstack.web.app import create_app
from store import calls

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def chat(tracer, model="gpt-4o", tokens=(120, 30), **extra):
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                  "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": tokens[0],
                  "gen_ai.usage.output_tokens": tokens[1], **extra}
    with tracer.start_as_current_span(f"chat {model}", attributes=attributes) as span:
        time.sleep(0.005)
        return span


def captured(make) -> list:
    """The SDK's finished spans for what `make(tracer)` does (kept in memory, not exported)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop",
                                                        "deployment.environment.name": "production"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    make(provider.get_tracer("test"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def protobuf_body(spans) -> bytes:
    return encode_spans(spans).SerializeToString()


def hex_ids(node):
    """protobuf's JSON mapping spells bytes in base64; OTLP/JSON spells trace and span ids in hex."""
    if isinstance(node, dict):
        return {k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v else hex_ids(v))
                for k, v in node.items()}
    return [hex_ids(v) for v in node] if isinstance(node, list) else node


def json_body(spans) -> bytes:
    return json.dumps(hex_ids(json_format.MessageToDict(encode_spans(spans)))).encode()


@pytest.fixture
def app(client):
    return create_app(client.store.path)


@pytest.fixture
def web(app):
    return TestClient(app, base_url="http://127.0.0.1")


def otlp_rows(client):
    return [r for r in calls.query(client.store.db, limit=None, oldest_first=True) if r["source"] == "otlp"]


def test_the_sdks_exporter_sends_protobuf_spans_that_become_call_rows(client, app):
    prompt = client.create_prompt("support/refund", "Refund: {{ q }}")
    with serving(app) as url:
        provider = TracerProvider(resource=Resource.create({"deployment.environment.name": "production"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
        tracer = provider.get_tracer("app")
        with tracer.start_as_current_span("GET /refund"):  # the app's own span: no gen_ai, ignored
            chat(tracer, **{"promstack.prompt.id": prompt.prompt_id, "promstack.prompt.version": 1,
                            "user.id": "u1"})
            with tracer.start_as_current_span("chat mystery-model", attributes={
                    "gen_ai.request.model": "mystery-model", "gen_ai.system": "acme",
                    "gen_ai.usage.prompt_tokens": 5, "error.type": "timeout"}) as failed:
                failed.set_status(Status(StatusCode.ERROR, "the model timed out"))
        assert provider.force_flush()
        provider.shutdown()
    ok, bad = otlp_rows(client)
    assert ok["model"] == "gpt-4o" and ok["operation"] == "chat" and ok["provider"] == "openai"
    assert (ok["input_tokens"], ok["output_tokens"], ok["status"]) == (120, 30, "ok")
    assert ok["latency_ms"] >= 5 and ok["cost_usd"] > 0  # priced by the server's prices
    assert (ok["prompt_id"], ok["prompt_name"], ok["prompt_version"]) == (prompt.prompt_id, "support/refund", 1)
    assert (ok["user_id"], ok["environment"], ok["flags"]) == ("u1", "production", [])
    assert bad["status"] == "error" and bad["error"] == "the model timed out"
    assert bad["provider"] == "acme" and bad["input_tokens"] == 5 and bad["cost_usd"] is None  # unpriced
    # the audit chain has each call, as the gateway's calls do
    actions = [a["action"] for a in client.audit_log(limit=10)]
    assert actions.count("llm_call") == 2
    by_source = {g["source"]: g["requests"] for g in metrics(client.store.db, since="1h", by="source")["groups"]}
    assert by_source == {"otlp": 2}


def test_otlp_json_is_accepted_and_the_answer_is_json(client, app):
    spans = captured(lambda t: (chat(t), chat(t, model="claude-3-5-haiku-latest")))
    with serving(app) as url:
        answer = httpx.post(f"{url}/v1/traces", content=json_body(spans), headers=JSON)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json() == {}  # every span stored: no partial_success
    rows = otlp_rows(client)
    assert [r["model"] for r in rows] == ["gpt-4o", "claude-3-5-haiku-latest"]
    assert rows[0]["call_id"] == f"otlp-{spans[0].context.trace_id:032x}-{spans[0].context.span_id:016x}"


def test_a_span_sent_twice_is_stored_once(client, web):
    body = protobuf_body(captured(lambda t: [chat(t) for _ in range(3)]))
    for _ in range(2):
        assert web.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    gzipped = web.post("/v1/traces", content=gzip.compress(body), headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert gzipped.status_code == 200
    assert len(otlp_rows(client)) == 3


def test_an_openllmetry_shaped_span_set(client, web):
    """What Traceloop's OpenLLMetry writes for an OpenAI chat inside a workflow: the older usage
    names, gen_ai.system, llm.request.type, prompt and completion contents; a workflow and a tool
    span around it that are not model calls."""
    def make(tracer):
        with tracer.start_as_current_span("joke_workflow.workflow", attributes={
                "traceloop.span.kind": "workflow", "traceloop.entity.name": "joke_workflow"}):
            with tracer.start_as_current_span("openai.chat", attributes={
                    "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.request.temperature": 0.7,
                    "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "Tell me a joke",
                    "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "...",
                    "gen_ai.usage.prompt_tokens": 11, "gen_ai.usage.completion_tokens": 42,
                    "llm.usage.total_tokens": 53, "traceloop.workflow.name": "joke_workflow"}):
                pass
            with tracer.start_as_current_span("execute_tool get_weather", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}):
                pass

    answer = web.post("/v1/traces", content=protobuf_body(captured(make)), headers=PROTOBUF)
    parsed = ExportTraceServiceResponse.FromString(answer.content)
    assert parsed.partial_success.rejected_spans == 0
    assert "ignored 2 span(s)" in parsed.partial_success.error_message  # the workflow and the tool
    (row,) = otlp_rows(client)
    assert (row["model"], row["operation"], row["provider"]) == ("gpt-4o-mini", "chat", "openai")
    assert (row["input_tokens"], row["output_tokens"], row["status"]) == (11, 42, "ok")
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


def test_an_unknown_prompt_is_stored_and_flagged(client, web):
    client.create_prompt("known", "hi")
    spans = captured(lambda t: (chat(t, **{"promstack.prompt.id": 999}),
                                chat(t, **{"promstack.prompt.id": "known", "promstack.prompt.version": 7}),
                                chat(t, **{"promstack.prompt.id": "never/made"})))
    parsed = ExportTraceServiceResponse.FromString(
        web.post("/v1/traces", content=protobuf_body(spans), headers=PROTOBUF).content)
    assert parsed.partial_success.rejected_spans == 0
    assert "stored 3 span(s) naming a prompt or version this server lacks" in parsed.partial_success.error_message
    rows = otlp_rows(client)
    assert [(r["prompt_id"], r["prompt_name"], r["flags"]) for r in rows] == [
        (999, None, ["unknown_prompt"]), (1, "known", ["unknown_version"]), (None, "never/made", ["unknown_prompt"])]


def test_a_span_from_a_clock_far_ahead_is_refused_and_the_others_stored(client, web):
    request = encode_spans(captured(lambda t: [chat(t) for _ in range(3)]))
    span = request.resource_spans[0].scope_spans[0].spans[1]
    span.start_time_unix_nano += 3 * 3600 * 10**9
    span.end_time_unix_nano += 3 * 3600 * 10**9
    bad_tokens = request.resource_spans[0].scope_spans[0].spans[2]
    for kv in bad_tokens.attributes:
        if kv.key == "gen_ai.usage.input_tokens":
            kv.value.int_value = -4
    answer = web.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    parsed = ExportTraceServiceResponse.FromString(answer.content)
    assert answer.status_code == 200 and parsed.partial_success.rejected_spans == 2
    message = parsed.partial_success.error_message
    assert "span 1: its clock is 3.0 h ahead" in message and "span 2: gen_ai.usage.input_tokens is -4" in message
    assert len(otlp_rows(client)) == 1


@pytest.mark.parametrize(("body", "headers", "status", "says"), [
    (b"\xff\xff\xff not protobuf", PROTOBUF, 400, "not an OTLP ExportTraceServiceRequest in protobuf"),
    (b'{"resourceSpans": [', JSON, 400, "not JSON"),
    (b'{"resourceSpans": "many"}', JSON, 400, "not an OTLP/JSON ExportTraceServiceRequest"),
    (b"[1, 2]", JSON, 400, "expected an object with resourceSpans"),
    (b"spans", {"Content-Type": "text/plain"}, 415, "send OTLP traces as application/x-protobuf"),
    (b"\x1f\x8b not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "not valid gzip data"),
])
def test_a_malformed_body_is_refused_with_a_sentence(client, web, body, headers, status, says):
    answer = web.post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == status
    if status == 400 and headers["Content-Type"] == JSON["Content-Type"]:
        assert says in answer.json()["message"]
    else:
        assert says in answer.content.decode("utf-8", "replace")
    assert otlp_rows(client) == []


def test_a_50_mb_body_gets_413(client, app):
    with serving(app) as url:
        answer = httpx.post(f"{url}/v1/traces", content=b"\0" * (50 * 1024 * 1024), headers=PROTOBUF)
        assert answer.status_code == 413
        inflated = gzip.compress(b"\0" * (otlp_in.MAX_BODY_BYTES + 10))  # a small body that inflates past it
        answer = httpx.post(f"{url}/v1/traces", content=inflated, headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert answer.status_code == 413 and "once decompressed" in answer.text


def test_a_runner_may_report_and_a_viewer_may_not(client, app):
    body = protobuf_body(captured(chat))
    from store import tokens

    def signed(name: str, role: str) -> TestClient:
        token = tokens.create(client.store.db, name, role, actor="admin")
        return TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"})

    viewer = signed("dana", "viewer")
    refused = viewer.post("/v1/traces", content=body, headers=PROTOBUF)
    assert refused.status_code == 403 and "report calls needs the runner role" in refused.text
    runner = signed("ci-app", "runner")
    assert runner.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    (row,) = otlp_rows(client)
    assert client.audit_log(limit=1)[0]["actor"] == "ci-app"
    assert row["source"] == "otlp"


def test_killing_the_server_mid_batch_loses_no_acknowledged_span(isolated_store):
    """Batches posted one after another to a real `promstack serve`, killed with SIGKILL while
    they flow: every span the server answered 200 for is in the store."""
    from test_watchdog import kill_while_posting, promstack_serve

    from promstack.client import Client

    spans = captured(lambda t: [chat(t) for _ in range(100)])
    request = encode_spans(spans)
    with promstack_serve(isolated_store) as (server, base):
        def post(acknowledged):
            with httpx.Client(headers=PROTOBUF, timeout=10) as http:
                for n in range(10_000):
                    for i, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
                        span.span_id = (n * 1000 + i + 1).to_bytes(8, "big")
                    try:
                        answer = http.post(f"{base}/v1/traces", content=request.SerializeToString())
                    except httpx.HTTPError:
                        return
                    if answer.status_code == 200:
                        acknowledged.append(100)

        acknowledged = kill_while_posting(server, post, at_least=500)
    with Client(isolated_store) as client:
        assert len(otlp_rows(client)) >= sum(acknowledged)


def test_every_face_groups_metrics_by_source(client, web):
    from click.testing import CliRunner

    from promstack.cli import cli

    web.post("/v1/traces", content=protobuf_body(captured(chat)), headers=PROTOBUF)
    found = web.get("/api/v1/metrics", params={"since": "1h", "by": "source"})
    assert found.status_code == 200 and [g["source"] for g in found.json()["groups"]] == ["otlp"]
    printed = CliRunner().invoke(cli, ["metrics", "--by", "source", "--json"])
    assert printed.exit_code == 0 and '"source": "otlp"' in printed.output
