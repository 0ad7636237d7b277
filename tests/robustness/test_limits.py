"""No input can hold a thread or fill the disk: templates that would run for hours or allocate
gigabytes, YAML alias bombs in prompt files, oversized and deeply nested input on every face,
out-of-range numbers and durations, and a server token too short to be a secret. Each case
either works or is refused with one sentence, within a generous bound of time that proves it
ends (the machine is shared and noisy). Each test prints a line `limits: ...` for `make torture`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from promstack import Client, InvalidInput

from .helpers import integrity_ok, within

PROMSTACK = str(Path(sys.executable).with_name("promstack"))


def _report(what: str, outcome: str) -> None:
    print(f"limits: {what}: {outcome}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(db: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    port = _free_port()
    proc = subprocess.Popen(
        [PROMSTACK, "serve", "--db", str(db), "--port", str(port), "--no-watch", *args],
        cwd=db.parent.parent, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"promstack serve exited early: {proc.communicate()[1]}"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "promstack serve did not start within 60 s"
            time.sleep(0.1)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


# ---- templates --------------------------------------------------------------------------------

DOUBLING = "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}"
ENDLESS = "{% macro f(n) %}{{ f(n+1) }}{% endmacro %}{{ f(0) }}"
# A render that is slow per step: it stays inside the step budget for many minutes.
SLOW = "{% for i in range(100000) %}{{ ('x' * 1000000)|replace('x', 'yz')|length }}{% endfor %}"


@pytest.mark.parametrize(("template", "words"), [
    (DOUBLING, "steps"),
    (ENDLESS, "deep"),
])
def test_a_recursive_macro_stops_with_a_sentence(client, template, words):
    saved = client.create_prompt("p", template)
    started = time.monotonic()
    with pytest.raises(InvalidInput, match=words) as caught:
        within(60, saved.render, "a recursive macro")
    assert "'p' v1" in str(caught.value) and len(str(caught.value)) < 400
    _report(f"recursive macro {template[-12:]!r}", f"stopped after {time.monotonic() - started:.1f} s")


def test_a_slow_render_stops_at_its_deadline(client, monkeypatch):
    monkeypatch.setenv("PROMSTACK_RENDER_TIMEOUT", "1")
    saved = client.create_prompt("p", SLOW)
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="1-second limit"):
        within(60, saved.render, "a slow render")
    _report("a render past its deadline", f"stopped after {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("template", [
    "{{ 'x'|center(10**12) }}",
    "{{ 'x'.center(10**12) }}",
    "{{ 'x'.ljust(10**12) }}",
    "{{ 'x'|indent(10**12) }}",
    "{{ '%1000000000000s' % 'x' }}",
    "{{ '%*s' % (10**12, 'x') }}",
    "{{ '%1000000000000s'|format('x') }}",
    "{{ '{:>1000000000000}'.format('x') }}",
    "{{ '{:{w}}'.format('x', w=10**12) }}",
    "{{ '{:.1000000000000f}'.format(1.5) }}",
    "{{ ('x' * 10**7).replace('x', 'xx') }}",
    "{{ (['x' * 10**6] * 100)|join }}",
])
def test_huge_widths_are_refused_before_they_allocate(client, template):
    saved = client.create_prompt("p", template)
    # Each asks for a terabyte (the last two for 20 and 100 MB): today a MemoryError, so exit 70
    # or an HTTP 500, or the memory itself. Now each is refused before it allocates.
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="over the limit") as caught:
            saved.render()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30_000_000, f"{template} allocated {peak:,} bytes before refusing"
    assert "use a smaller number" in str(caught.value) or "repeat less" in str(caught.value)
    _report(f"{template}", "refused before allocating")


@pytest.mark.parametrize("template", [
    "{{ 'x'|center(9) }}|{{ '%5s' % 'y' }}|{{ '%-3d'|format(7) }}|{{ '{:>4}'.format('z') }}|{{ 'a'|indent(2) }}",
])
def test_ordinary_widths_still_work(client, template):
    assert client.create_prompt("p", template).render() == "    x    |    y|7  |   z|a"


def test_serve_stops_on_sigterm_while_a_render_runs(isolated_store):
    with Client(isolated_store) as client:
        client.create_prompt("slow", SLOW)
    # The render would run for many minutes: the deadline is lifted to show that SIGTERM stops it.
    with _serve(isolated_store, env={"PROMSTACK_RENDER_TIMEOUT": "3600"}) as (proc, url):
        outcome: dict[str, object] = {}

        def render_over_mcp() -> None:
            from mcp import Client as MCPClient

            async def go() -> None:
                async with MCPClient(f"{url}/mcp") as mcp:
                    outcome["result"] = await mcp.get_prompt("slow", {})

            try:
                anyio.run(go)
            except BaseException as exc:  # noqa: BLE001 - the server going away ends it either way
                outcome["error"] = exc

        thread = threading.Thread(target=render_over_mcp, daemon=True)
        thread.start()
        time.sleep(3)  # the render is under way
        assert thread.is_alive() and proc.poll() is None
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("promstack serve did not stop within 15 s of SIGTERM while a render ran")
        took = time.monotonic() - started
    integrity_ok(isolated_store)
    _report("SIGTERM to promstack serve during a render", f"stopped in {took:.1f} s")
