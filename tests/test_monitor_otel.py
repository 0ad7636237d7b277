"""OTLP export: call-log rows arrive as spans with gen_ai.* attributes at a local receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from promstack.cli import cli
from promstack.monitoring import otel
from store import calls, monitoring
from store.db import connect


class _Collector(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        server = self.server
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        self.send_response(server.status)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.requests = []
    server.status = 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def spans_of(server):
    return [s for r in server.requests for rs in r["body"]["resourceSpans"]
            for ss in rs["scopeSpans"] for s in ss["spans"]]


def attrs(span):
    return {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}


ROW = {"call_id": "0123456789abcdef0123456789abcdef", "timestamp": "2026-01-09T12:00:00.000000Z",
       "prompt_id": 42, "prompt_version": 3, "model": "gpt-4o", "input_tokens": 150,
       "output_tokens": 200, "latency_ms": 1200, "user_id": "user_123", "cost_usd": 0.002375,
       "status": "ok", "environment": "production", "provider": "openai", "prompt_name": "support/refund"}


def test_rows_become_gen_ai_spans(collector, isolated_store, monkeypatch):
    server, base = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base + "/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20ecret,team=llm")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "refund-bot")
    db = connect(isolated_store)
    calls.insert(db, [(ROW, None), ({**ROW, "call_id": "c2", "status": "error", "error": "timeout",
                                     "latency_ms": 5.5}, None), ({**ROW, "call_id": "from-an-app", "source": "otlp"}, None)])
    result = otel.export_pending(db)  # not the row that came in as a span: the app has it already
    assert result == {"sent": 2, "batches": 1, "error": None}
    (request,) = server.requests
    assert request["path"] == "/v1/traces"
    assert request["headers"]["x-api-key"] == "s ecret" and request["headers"]["team"] == "llm"
    resource = {a["key"]: a["value"]["stringValue"] for a in request["body"]["resourceSpans"][0]["resource"]["attributes"]}
    assert resource["service.name"] == "refund-bot"
    ok, failed = spans_of(server)
    assert ok["name"] == "chat gpt-4o" and ok["kind"] == 3
    assert ok["traceId"] == ROW["call_id"] and len(ok["spanId"]) == 16
    assert int(ok["endTimeUnixNano"]) - int(ok["startTimeUnixNano"]) == 1_200_000_000
    assert ok["startTimeUnixNano"] == str(1767960000 * 10**9)
    a = attrs(ok)
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "gpt-4o"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] == "150" and a["gen_ai.usage.output_tokens"] == "200"
    assert a["promstack.prompt.id"] == "42" and a["promstack.prompt.version"] == "3"
    assert a["user.id"] == "user_123" and a["promstack.cost_usd"] == 0.002375
    assert ok["status"] == {"code": 0} and "error.type" not in a
    assert failed["status"] == {"code": 2, "message": "timeout"} and attrs(failed)["error.type"] == "error"
    assert len(failed["traceId"]) == 32
    # the cursor moved: nothing is sent twice
    assert otel.export_pending(db)["sent"] == 0
    assert monitoring.get_cursor(db, otel.CURSOR) == 2
    db.close()


def test_a_refusing_collector_keeps_rows_for_later(collector, isolated_store):
    server, base = collector
    server.status = 503
    db = connect(isolated_store)
    calls.insert(db, [(ROW, None)])
    result = otel.export_pending(db, endpoint=base + "/v1/traces")
    assert result["sent"] == 0 and result["error"] == "HTTP 503"
    assert monitoring.get_cursor(db, otel.CURSOR) == 0
    server.status = 200
    assert otel.export_pending(db, endpoint=base + "/v1/traces")["sent"] == 1
    down = otel.export_pending(db, endpoint="http://127.0.0.1:9/v1/traces")  # nothing new: no call
    assert down["error"] is None
    db.close()


def test_off_unless_configured(monkeypatch):
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert not otel.enabled() and otel.start_background("/tmp/x.db") is None
    assert otel.traces_endpoint({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h/t"}) == "http://h/t"
    assert otel.traces_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318",
                                 "OTEL_SDK_DISABLED": "true"}) is None


def test_gateway_calls_reach_the_collector(collector, client, fake_llm, monkeypatch):
    server, base = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    client.create_prompt("support/refund", "환불: {{ question }}",
                         model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url})
    fake_llm.usage = (150, 200)
    result = client.run("support/refund", {"question": "환불하고 싶어요"}, user_id="user_123")
    client.gateway.flush()
    exporter = otel.start_background(client.store.path)
    exporter.stop()          # stopping sends what is left
    otel._exporters.pop(str(client.store.path), None)
    (span,) = [s for s in spans_of(server) if attrs(s)["promstack.call_id"] == result.call_id]
    a = attrs(span)
    assert a["gen_ai.request.model"] == "openai/fake-model" and a["gen_ai.usage.output_tokens"] == "200"
    assert a["user.id"] == "user_123"


def test_cli_export(collector, isolated_store, monkeypatch):
    server, base = collector
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    db = connect(isolated_store)
    calls.insert(db, [(ROW, None)])
    db.close()
    runner = CliRunner()
    missing = runner.invoke(cli, ["otel", "export"])
    assert missing.exit_code == 2 and "OTEL_EXPORTER_OTLP_ENDPOINT" in missing.output
    ok = runner.invoke(cli, ["otel", "export", "--endpoint", base + "/v1/traces", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["sent"] == 1 and len(spans_of(server)) == 1
