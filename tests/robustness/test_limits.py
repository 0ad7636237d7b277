"""No input can hold a thread or fill the disk: templates that would run for hours or allocate
gigabytes, YAML alias bombs in prompt files, oversized and deeply nested input on every face,
out-of-range numbers and durations, and a server token too short to be a secret. Each case
either works or is refused with one sentence, within a generous bound of time that proves it
ends (the machine is shared and noisy). Each test prints a line `limits: ...` for `make torture`."""

from __future__ import annotations

import contextlib
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
def test_a_recursive_macro_stops_with_a_sentence(client, monkeypatch, template, words):
    monkeypatch.setenv("PROMSTACK_RENDER_TIMEOUT", "600")  # the step and depth limits stop these, not the clock
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
    "{{ [1]|slice(10**12)|list|length }}",
    "{{ [1]|batch(10**12, 'x')|list|length }}",
    "{{ [1, 2]|tojson(indent=10**12) }}",
    "{% set l = ['x' * 10**6] %}{% for i in range(40) %}{% set _ = l.extend(l) %}{% endfor %}{{ l|length }}",
    "{% set l = ['x' * 10**6] %}{% for i in range(10) %}{% set _ = l.extend(l) %}{% endfor %}{{ l }}",
    "{% set l = ['x' * 10**6] %}{% for i in range(10) %}{% set _ = l.extend(l) %}{% endfor %}{{ l|tojson }}",
])
def test_huge_widths_are_refused_before_they_allocate(client, template):
    saved = client.create_prompt("p", template)
    # Each asks for a terabyte (the last two for 20 and 100 MB): today a MemoryError, so exit 70
    # or an HTTP 500, or the memory itself. Now each is refused before it allocates.
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput, match="over the limit|more than the") as caught:
            saved.render()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30_000_000, f"{template} allocated {peak:,} bytes before refusing"
    assert any(w in str(caught.value) for w in ("use a smaller number", "repeat less", "add less")), caught.value
    _report(f"{template}", "refused before allocating")


@pytest.mark.parametrize("template", [
    "{{ 'x'|center(9) }}|{{ '%5s' % 'y' }}|{{ '%-3d'|format(7) }}|{{ '{:>4}'.format('z') }}|{{ 'a'|indent(2) }}",
])
def test_ordinary_widths_still_work(client, template):
    assert client.create_prompt("p", template).render() == "    x    |    y|7  |   z|a"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


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
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=render_over_mcp, daemon=True)
        thread.start()
        time.sleep(2)
        # The render is under way: the request has not returned and the server is busy with it.
        busy_from = _cpu_seconds(proc.pid)
        time.sleep(1)
        assert _cpu_seconds(proc.pid) - busy_from > 0.1, "the server is idle: the render never started"
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


# ---- YAML: alias bombs and what a prompt file may store ----------------------------------------


def _bomb(levels: int) -> str:
    """A .prompt.yml whose modelParameters hold 9**levels strings through nine aliases a level."""
    names = "abcdefghijkl"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for parent, child in zip(names[:levels - 1], names[1:levels], strict=True):
        lines.append(f"{child}: &{child} [" + ",".join([f"*{parent}"] * 9) + "]")
    return ("messages:\n  - role: user\n    content: 'hi {{ q }}'\nmodelParameters:\n  "
            + "\n  ".join(lines) + "\n")


FINE = "messages:\n  - role: user\n    content: 'fine {{ q }}'\nmodelParameters:\n  temperature: 0.2\n"


def _wait_idle(watcher, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not watcher.idle():
        assert time.monotonic() < deadline, "the watcher did not settle"
        time.sleep(0.05)


def test_a_yaml_alias_bomb_is_refused_and_the_watcher_keeps_running(isolated_store, tmp_path):
    from store.filesync import open_errors
    from store.watch import Watcher

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    bomb = _bomb(7)  # 9**7 strings: tens of MB as JSON today (nine levels: gigabytes)
    assert len(bomb) < 500
    (prompts / "bomb.prompt.yml").write_text(bomb, encoding="utf-8")
    watcher = Watcher(isolated_store, prompts, debounce=0.05)
    try:
        within(60, watcher.start, "the watcher's first pass")
        (prompts / "fine.prompt.yml").write_text(FINE, encoding="utf-8")
        time.sleep(0.3)
        _wait_idle(watcher)
        if os.environ.get("PROMSTACK_TORTURE_FULL_BOMB"):  # nine levels: 387 million strings, gigabytes today
            (prompts / "bomb.prompt.yml").write_text(_bomb(9), encoding="utf-8")
            time.sleep(0.3)
            _wait_idle(watcher, 60)
    finally:
        watcher.stop()
    with Client(isolated_store) as client:
        names = [p.name for p in client.list_prompts()]
        errors = open_errors(client.store.db)
    assert names == ["fine"], names
    assert [e["path"] for e in errors] == ["prompts/bomb.prompt.yml"], errors
    assert "aliases" in errors[0]["error"] and "\n" not in errors[0]["error"], errors
    assert isolated_store.stat().st_size < 5_000_000
    integrity_ok(isolated_store)
    _report(f"a {len(bomb)}-byte YAML alias bomb through the watcher", f"refused: {errors[0]['error'][:60]}...")


@pytest.mark.parametrize(("fmt", "text"), [
    ("prompt.md", "---\nmodel: gpt-4o\n{bomb}---\nhi ${{input:q}}\n"),
    ("prompty", "---\nname: p\n{bomb}---\nsystem:\nhi {{{{ q }}}}\n"),
    ("dotprompt", "---\nmodel: gpt-4o\n{bomb}---\nhi {{{{ q }}}}\n"),
])
def test_an_alias_bomb_in_any_front_matter_is_refused(fmt, text):
    from store import formats

    bomb = "x:\n" + _bomb(9).split("modelParameters:\n", 1)[1]
    with pytest.raises(InvalidInput, match="aliases"):
        within(30, lambda: formats.parse(fmt, text.format(bomb=bomb)), f"reading a {fmt} alias bomb")
    _report(f"an alias bomb in {fmt} front matter", "refused")


def test_what_one_version_may_store_is_bounded(client, tmp_path):
    big = {"model": "gpt-4o-mini", "notes": "x" * 300_000}
    with pytest.raises(InvalidInput, match="over the limit of 256,000 bytes"):
        client.create_prompt("p", "hi {{ q }}", model_config=big)
    file = tmp_path / "big.prompt.yml"
    file.write_text(FINE + f"  notes: {'y' * 300_000}\n", encoding="utf-8")
    from promstack.cli import cli

    result = _cli(["import", str(file)], cli)
    assert result.exit_code == 2 and "over the limit of 256,000 bytes" in result.output, result.output
    assert client.list_prompts() == []
    _report("a 300 KB model config (SDK, prompt file)", "refused")


def _cli(args: list[str], cli) -> object:
    from click.testing import CliRunner

    return CliRunner().invoke(cli, args)


# ---- the CLI, MCP and the web: sizes, nesting, out-of-range numbers ------------------------------


def _run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([PROMSTACK, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.fail(f"promstack {' '.join(a[:40] for a in args)} did not finish within {timeout:g} s")


def test_prompt_create_measures_a_file_before_reading_it(isolated_store, tmp_path):
    from promstack.cli import cli

    with Client(isolated_store):
        pass
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:  # sparse: 200 MB on paper, nothing on disk
        handle.truncate(200_000_000)
    tracemalloc.start()
    try:
        result = _cli(["prompt", "create", "p", "-f", str(huge)], cli)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    assert "200,000,000 bytes" in result.output and "limit" in result.output, result.output
    assert peak < 20_000_000, f"read {peak:,} bytes of a file it refuses"
    _report("prompt create -f with a 200 MB file", f"refused before reading (peak {peak / 1e6:.1f} MB)")


DEEP = 50_000  # as deep as one command-line argument can carry; files carry 100,000


@pytest.mark.parametrize("args", [
    ["run", "p", "--vars", "{\"q\": " + "[" * DEEP + "]" * DEEP + "}"],
    ["prompt", "create", "q", "-t", "hi", "--config", "{\"a\": " + "[" * DEEP + "]" * DEEP + "}"],
    ["prompt", "update", "p", "--config", "{\"a\": " + "{\"b\":" * 20_000 + "1" + "}" * 20_000 + "}"],
], ids=["run --vars", "prompt create --config", "prompt update --config"])
def test_json_nested_very_deep_gets_a_sentence_on_the_cli(isolated_store, args):
    with Client(isolated_store) as client:
        client.create_prompt("p", "hi {{ q }}")
    result = _run(*args)
    assert result.returncode == 2, (result.returncode, result.stderr[-300:])
    assert "deep" in result.stderr and "unexpected error" not in result.stderr, result.stderr[-300:]
    assert result.stderr.count("\n") == 1, result.stderr[-300:]
    _report(" ".join(a for a in args if len(a) < 30) + " JSON nested 20,000+ deep", "a sentence, exit 2")


@pytest.mark.parametrize("args", [["import", "{file}"], ["suite", "import", "{file}", "--name", "s"]],
                         ids=["import", "suite import"])
def test_a_json_file_nested_100000_deep_gets_a_sentence(isolated_store, tmp_path, args):
    with Client(isolated_store):
        pass
    file = tmp_path / "deep.json"
    file.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000, encoding="utf-8")
    result = _run(*[a.format(file=file) for a in args])
    assert result.returncode == 2, (result.returncode, result.stderr[-300:])
    assert "deep" in result.stderr and "unexpected error" not in result.stderr, result.stderr[-300:]
    _report(f"promstack {' '.join(a for a in args if a.isalpha() and len(a) > 1)} of JSON nested 100,000 deep", "a sentence, exit 2")


def test_a_template_file_of_brackets_nested_100000_deep_works_or_says_why(isolated_store, tmp_path):
    with Client(isolated_store):
        pass
    file = tmp_path / "deep.json"
    file.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    result = _run("prompt", "create", "p", "-f", str(file))
    assert result.returncode in (0, 2), (result.returncode, result.stderr[-300:])
    assert "unexpected error" not in result.stderr


@pytest.mark.parametrize("args", [
    ["metrics", "--since", "99999999d"],
    ["logs", "--since", "99999999d"],
    ["metrics", "--until", "9999-12-31T23:59:59-12:00"],
    ["logs", "--limit", "99999999999999999999999"],
    ["logs", "--version", "-99999999999999999999999"],
    ["runs", "--limit", "99999999999999999999999"],
    ["alerts", "list", "--limit", "99999999999999999999999"],
    ["deploy", "list", "--limit", "-99999999999999999999999"],
])
def test_out_of_range_durations_and_numbers_never_exit_70(isolated_store, args):
    with Client(isolated_store) as client:
        client.create_prompt("p", "hi {{ q }}")
    result = _run(*args)
    assert result.returncode in (0, 2), (args, result.returncode, result.stderr[-300:])
    if "--since" in args or "--until" in args:
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (args, result.stderr)
    assert "unexpected error" not in result.stderr, result.stderr[-300:]
    _report(" ".join(args), "exit 0" if result.returncode == 0 else f"exit 2: {result.stderr.strip()[:70]}")


def test_an_out_of_range_duration_is_a_sentence_over_mcp_and_on_the_dashboard(isolated_store):
    from mcp import Client as MCPClient
    from starlette.testclient import TestClient

    from mcp_server.server import build_server
    from promstack.web.app import create_app

    with Client(isolated_store):
        pass

    async def call() -> tuple[bool, str]:
        server = build_server(isolated_store)
        try:
            async with MCPClient(server) as mcp:
                result = await mcp.call_tool("get_metrics", {"since": "99999999d"})
                return result.is_error, result.content[0].text
        finally:
            server.engine.close()

    is_error, text = anyio.run(call)
    assert is_error and "99999999d" in text and "longer than" in text, text
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as web:
        page = web.get("/monitoring", params={"since": "99999999d"})
    assert page.status_code == 400 and "longer than" in page.text, (page.status_code, page.text[-300:])
    _report("get_metrics since=99999999d; /monitoring?since=99999999d", "a sentence; HTTP 400")


def test_mcp_over_http_answers_deeply_nested_arguments_with_a_sentence(isolated_store):
    with Client(isolated_store) as client:
        client.create_prompt("p", "hi {{ q }}")
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    with _serve(isolated_store) as (_, url):
        first = httpx.post(f"{url}/mcp", json=init, headers=headers, timeout=30)
        session = {"mcp-session-id": first.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
        httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                   headers={**headers, **session}, timeout=30)
        for depth in (150, 100_000):
            nested = "[" * depth + "1" + "]" * depth
            body = ('{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "run_prompt", '
                    '"arguments": {"prompt": "p", "variables": {"q": ' + nested + '}}}}')
            answer = httpx.post(f"{url}/mcp", content=body, headers={**headers, **session}, timeout=60)
            assert answer.status_code in (200, 400), answer.status_code
            assert "deep" in answer.text or "recursion limit" in answer.text, answer.text[:300]
            assert "Error executing tool run_prompt\"" not in answer.text
        big = httpx.post(f"{url}/mcp", content=b"x" * 17_000_000, headers={**headers, **session}, timeout=60)
        assert big.status_code == 413, big.status_code
    _report("MCP arguments nested 150 and 100,000 deep over HTTP; a 17 MB body", "a sentence; HTTP 413")


# ---- the server's token ---------------------------------------------------------------------------


@pytest.mark.parametrize(("how", "token"), [
    ("--token", " "), ("--token", "short"), ("PROMSTACK_TOKEN", "fifteen-chars.."), ("PROMSTACK_TOKEN", "   "),
])
def test_serve_refuses_a_blank_or_short_token(isolated_store, how, token):
    with Client(isolated_store):
        pass
    args = ["serve", "--db", str(isolated_store), "--port", str(_free_port()), "--no-watch"]
    if how == "--token":
        result = _run(*args, "--token", token, timeout=20)
    else:
        result = _run(*args, env={"PROMSTACK_TOKEN": token}, timeout=20)
    assert result.returncode == 2, result.stderr
    assert "secrets.token_urlsafe" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    _report(f"serve {how} {token!r}", "refused")
