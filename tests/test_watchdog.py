"""The server watches itself: rounds of alert, budget and rollout checks on a schedule, one worker
per round over one store, no second notification after a restart, and a real `promstack serve`
that notices errors reported as OpenTelemetry spans and calls the webhook on its own."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode
from test_deploy_rollout import _errors, live  # noqa: F401 - the rollout fixture
from test_mcp_http import free_port
from test_monitor_alerts import receiver  # noqa: F401 - the webhook fixture

from promstack import deploy, watchdog
from promstack.client import Client
from store import InvalidInput

T0 = 1_800_000_000.0  # a round's start for every interval below (a multiple of 60 s)


def configure(path: Path, text: str) -> None:
    (path.parent / "config.toml").write_text(text, encoding="utf-8")


def dog(client, **kwargs) -> watchdog.Watchdog:
    return watchdog.Watchdog(lambda actor: contextlib.nullcontext(client), **kwargs)


def fail_calls(client, n=5):
    _errors(client, None, n=n, failing=n)


def test_a_round_notifies_once_and_a_restarted_server_does_not_notify_again(client, receiver, isolated_store):  # noqa: F811
    handler, url = receiver
    configure(isolated_store, f'[alerts]\nwebhooks = ["{url}"]\n[monitoring]\ncheck_every = "60s"\n')
    fail_calls(client)
    every, found = dog(client).tick(T0)
    assert every == 60 and found["rules"] >= 2 and len(found["changes"]) == 1
    assert "error_rate for workspace" in found["firing"][0]
    assert [body["event"] for _, body in handler.received] == ["fired"]
    # a restart within the round: the round ran already, it does not run again
    assert dog(client).tick(T0 + 30) == (60, None)
    # the next round, by the restarted server: the alert is still open in the store, not notified again
    _every, again = dog(client).tick(T0 + 60)
    assert again["firing"] and again["changes"] == []
    assert len(handler.received) == 1
    last = watchdog.last_round(client.store.db)
    assert last["finished_at"] and last["result"]["firing"] == again["firing"]


def test_two_workers_over_one_store_never_both_run_a_round(isolated_store):
    configure(isolated_store, '[monitoring]\ncheck_every = "60s"\n')
    clients = [Client(isolated_store), Client(isolated_store)]
    dogs = [dog(c, holder=f"worker-{i}") for i, c in enumerate(clients)]
    ran: dict[int, list[str]] = {}
    for n in range(15):
        barrier = threading.Barrier(2)

        def work(d, n=n, barrier=barrier):
            barrier.wait()
            if d.tick(T0 + 60 * n + 1)[1] is not None:
                ran.setdefault(n, []).append(d.holder)

        threads = [threading.Thread(target=work, args=(d,)) for d in dogs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(ran) == list(range(15)) and all(len(h) == 1 for h in ran.values()), ran
    for c in clients:
        c.close()


def test_a_rollout_whose_new_version_alerts_is_halted_on_schedule(live):  # noqa: F811
    client = live
    deploy.deploy(client, 42, version=2, env="production", force=True, rollout=10)
    _errors(client, 2)
    _every, found = dog(client, every=60).tick(T0)
    assert found["rollouts"] == 1 and found["halted"] and "halted" in found["halted"][0]
    assert client.labels(42)["production"] == 1


def test_the_server_checks_as_its_own_actor(isolated_store):
    from promstack.pool import ClientPool

    pool = ClientPool(isolated_store)
    seen = []

    def borrow(actor):
        seen.append(actor)
        return pool.client(actor)

    watchdog.Watchdog(borrow, every=60).tick(T0)
    with pool.client(watchdog.ACTOR) as client:
        assert client.actor == "promstack-watchdog" and seen == ["promstack-watchdog"]
    pool.close()


def test_check_every_off_and_a_bad_value(client, isolated_store):
    configure(isolated_store, '[monitoring]\ncheck_every = "off"\n')
    assert dog(client).tick(T0) == (None, None)
    assert watchdog.last_round(client.store.db) is None
    configure(isolated_store, '[monitoring]\ncheck_every = "often"\n')
    with pytest.raises(InvalidInput, match="check_every in \\[monitoring\\]"):
        dog(client).tick(T0)
    configure(isolated_store, '[monitoring]\ncheck_every = "100ms"\n')
    with pytest.raises(InvalidInput):
        dog(client).tick(T0)


def test_a_broken_rule_config_still_checks_rollouts(client, isolated_store):
    configure(isolated_store, '[alerts]\nwindow = "soon"\n')
    _every, found = dog(client, every=60).tick(T0)
    assert found["errors"] and found["errors"][0].startswith("alerts: window")
    assert found["rollouts"] == 0


@contextlib.contextmanager
def promstack_serve(store: Path):
    """A real `promstack serve` process over `store`: (the process, its base URL)."""
    Client(store).close()  # the store exists before the server opens it
    port = free_port()
    promstack = Path(sys.executable).parent / "promstack"
    server = subprocess.Popen([str(promstack), "serve", "--port", str(port), "--no-watch"],
                              env={**os.environ, "PROMSTACK_DB": str(store), "PROMSTACK_DEBUG": "0"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline and server.poll() is None, server.stderr.read().decode()
            time.sleep(0.1)
        yield server, base
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(15)


def kill_while_posting(server: subprocess.Popen, post, at_least: int) -> list[int]:
    """Run `post(acknowledged)` in a thread (it appends the count of each batch the server
    answered 200 for, and returns when a post fails), SIGKILL the server once `at_least` are
    acknowledged, and return the counts acknowledged."""
    import signal

    acknowledged: list[int] = []
    sender = threading.Thread(target=post, args=(acknowledged,))
    sender.start()
    deadline = time.monotonic() + 20
    while sum(acknowledged) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    sender.join(20)
    assert sum(acknowledged) >= at_least
    return acknowledged


def test_promstack_serve_watches_itself(isolated_store, receiver):  # noqa: F811
    """A real server process: spans with errors come in over OTLP, the server's own schedule
    fires the error-rate alert and calls the webhook; the dashboard says when the checks ran."""
    handler, url = receiver
    configure(isolated_store, f'[alerts]\nwebhooks = ["{url}"]\n[monitoring]\ncheck_every = "1s"\n')
    with promstack_serve(isolated_store) as (_server, base):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        with provider.get_tracer("app").start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}) as span:
            span.set_status(Status(StatusCode.ERROR, "rate limited"))
        provider.shutdown()
        deadline = time.monotonic() + 20
        while not handler.received:
            assert time.monotonic() < deadline, "no webhook from the server's own checks"
            time.sleep(0.1)
        assert handler.received[0][1]["event"] == "fired" and handler.received[0][1]["rule"] == "error_rate"
        page = httpx.get(f"{base}/monitoring?since=1h", timeout=10).text
        assert "Scheduled checks" in page and "Last ran" in page and "firing" in page
        assert "<code>otlp</code>" in page  # the sources' split
