"""The security edges: paths that leave the workspace (`..`, absolute, symlinks) through the
watcher, the MCP import tool and the CLI; Jinja sandbox escapes; oversized inputs (a 10 MB
template on every face, a 100,000-row CSV in bounded memory); API keys never in an error the
user sees; audit tampering caught by `promstack audit verify`; a network-bound server refusing
requests without its token on the dashboard, the REST API and /mcp.

Covered elsewhere and not repeated: Call.workspace_file's refusals (tests/test_mcp_tools.py),
a symlinked prompt file and a watch folder outside the workspace (tests/test_watch_sync.py),
keys kept out of the store, logs and gateway errors on both routes (tests/test_llm_gateway.py),
the audit chain's detection in the engine (tests/test_audit.py), Origin and Host checks and the
token on /mcp and dashboard pages (tests/test_mcp_http.py, tests/test_dashboard_guard.py)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import anyio
import httpx
import pytest
from click.testing import CliRunner
from mcp import Client as MCPClient

from mcp_server.server import build_server
from promstack import Client, InvalidInput, PromStackError
from promstack.cli import cli
from promstack.evals import engine
from store.watch import Watcher

from .helpers import integrity_ok

PROMSTACK = str(Path(sys.executable).with_name("promstack"))
TEN_MB = "x" * (10 * 1024 * 1024) + " {{ q }}"


async def _tool(db: Path, tool: str, arguments: dict) -> tuple[bool, str]:
    server = build_server(db)
    try:
        async with MCPClient(server) as mcp:
            result = await mcp.call_tool(tool, arguments)
            return result.is_error, result.content[0].text if result.content else ""
    finally:
        server.engine.close()


# ---- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../outside.csv", "/etc/passwd", "suites/../../outside.csv", "link/secret.csv",
                                  "linkfile.csv", "a\x00b.csv"])
def test_the_mcp_import_tool_reads_only_inside_the_workspace(isolated_store, tmp_path_factory, path):
    root = isolated_store.parent.parent
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.csv").write_text("input,expected_output\nSECRET,x\n", encoding="utf-8")
    (root / "outside.csv").write_text("input,expected_output\nSECRET,x\n", encoding="utf-8")
    (root / "suites").mkdir(exist_ok=True)
    (root / "link").symlink_to(outside)
    (root / "linkfile.csv").symlink_to(outside / "secret.csv")
    with Client(isolated_store):
        pass
    is_error, text = anyio.run(_tool, isolated_store, "import_test_cases", {"suite": "s", "file": path})
    assert is_error and "SECRET" not in text, text
    assert "outside the workspace" in text or "argument" in text, text
    with Client(isolated_store) as client:
        assert engine.list_suites(client) == []


def test_a_symlinked_folder_inside_prompts_is_not_followed_out(isolated_store, tmp_path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "stolen.txt").write_text("SECRET prompt", encoding="utf-8")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "ok.txt").write_text("fine {{ q }}", encoding="utf-8")
    (prompts / "escape").symlink_to(outside, target_is_directory=True)
    with Watcher(isolated_store, prompts, debounce=0.05) as watcher:
        (outside / "stolen.txt").write_text("SECRET prompt, changed", encoding="utf-8")
        (prompts / "ok.txt").write_text("fine again {{ q }}", encoding="utf-8")
        deadline = time.monotonic() + 20
        with Client(isolated_store) as client:
            while client.get_prompt("ok").template != "fine again {{ q }}":
                assert time.monotonic() < deadline, "the watcher never versioned ok.txt"
                time.sleep(0.02)
            while not watcher.idle():
                time.sleep(0.02)
            names = [p.name for p in client.list_prompts()]
    assert names == ["ok"]
    conn = sqlite3.connect(isolated_store)
    try:
        assert not conn.execute("SELECT count(*) FROM versions WHERE template LIKE '%SECRET%'").fetchone()[0]
    finally:
        conn.close()


def test_the_cli_refuses_to_write_a_prompt_file_through_a_symlink(isolated_store, tmp_path, tmp_path_factory):
    """Write-back (a save rewriting the prompt's file) never follows a link out of the workspace."""
    outside = tmp_path_factory.mktemp("victim")
    victim = outside / "victim.txt"
    victim.write_text("do not touch", encoding="utf-8")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "p.txt").write_text("start {{ q }}", encoding="utf-8")
    with Watcher(isolated_store, prompts):
        pass  # reconciled: p is tracked in prompts/p.txt
    (prompts / "p.txt").unlink()
    (prompts / "p.txt").symlink_to(victim)
    result = CliRunner().invoke(cli, ["prompt", "update", "p", "-t", "new {{ q }}"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert victim.read_text(encoding="utf-8") == "do not touch"


# ---- the template sandbox ---------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ x|attr('__class__')|attr('__base__') }}",
    "{{ x|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ '{0.__class__.__mro__}'.format(x) }}",
    "{{ '%s'.format_map(x) }}",
    "{{ x.__class__.__init__.__globals__ }}",
    "{{ (x|map(attribute='__class__')|list) }}",
    "{% set f = x.format %}{{ f('{0.__globals__}') }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ range.__self__ }}",
    "{{ x.pop() }}",
    "{{ 'x' * 100000000 }}",
    "{{ 2 ** 2 ** 2 ** 2 ** 2 ** 2 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused_with_a_sentence(client, template):
    try:
        version = client.save("p", template) if client.list_prompts() else client.create_prompt("p", template)
        rendered = _bounded_render(version, x=["a"])
    except PromStackError as exc:
        assert str(exc).strip() and "Traceback" not in str(exc)
        return
    # rendered, then harmless: no object internals, no command output
    for leak in ("<class", "__globals__", "uid=", "function", "module", "builtins", "Context"):
        assert leak not in rendered, rendered[:300]


def _bounded_render(version, **values):
    from .helpers import within

    return within(30, lambda: version.render(**values), "the render")


# ---- oversized inputs -------------------------------------------------------------------------


def test_a_10_mb_template_is_refused_on_every_face(client, isolated_store, tmp_path):
    client.create_prompt("p", "small {{ q }}")
    with pytest.raises(InvalidInput, match="MB"):
        client.save("p", TEN_MB)
    big = tmp_path / "big.txt"
    big.write_text(TEN_MB, encoding="utf-8")
    cli_result = subprocess.run([PROMSTACK, "prompt", "update", "p", "-f", str(big)], capture_output=True, text=True,
                                timeout=120, env=dict(os.environ), check=False)
    assert cli_result.returncode == 2 and "Traceback" not in cli_result.stderr
    assert len(cli_result.stderr.strip().splitlines()) == 1 and len(cli_result.stderr) < 500
    is_error, text = anyio.run(_tool, isolated_store, "update_prompt", {"prompt": "p", "template": TEN_MB})
    assert is_error and len(text) < 1000 and "Traceback" not in text, text[:300]
    assert [v.version for v in client.history("p")] == [1]
    integrity_ok(isolated_store)


def test_a_100000_row_csv_imports_in_bounded_memory(client, isolated_store, tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("input,expected_output,topic\n")
        for i in range(100_000):
            fh.write(f"\"question number {i}, with a comma\",contains:answer {i},t{i % 7}\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        suite = engine.import_suite(client, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert suite["case_count"] == 100_000
    print(f"100,000-row CSV ({size / 1e6:.1f} MB): import peak Python memory {peak / 1e6:.1f} MB")
    assert peak < 64 * 1024 * 1024  # streamed: not the whole file as Python objects at once
    last = engine.show_suite(client, suite["name"], limit=1, offset=99_999)["cases"][0]
    assert last["input"] == "question number 99999, with a comma"
    integrity_ok(isolated_store)


def test_a_huge_cell_or_line_is_a_sentence_not_a_crash(client, tmp_path):
    path = tmp_path / "cell.csv"
    path.write_text("input,expected_output\n\"" + "y" * (20 * 1024 * 1024) + "\",x\n", encoding="utf-8")
    try:
        engine.import_suite(client, path)
    except PromStackError as exc:
        assert "Traceback" not in str(exc) and len(str(exc)) < 1000
    else:
        assert engine.get_suite(client, "cell")["case_count"] == 1


# ---- keys, audit, tokens ----------------------------------------------------------------------


def test_an_api_key_never_reaches_the_cli_output(client, fake_llm, isolated_store, monkeypatch):
    secret = "sk-live-TOPSECRET-0123456789abcdef"
    monkeypatch.setenv("FAKE_PROVIDER_KEY", secret)
    # The key is sent only to a base and from a variable the server's config trusts (this test
    # relied on any loopback base and any variable being trusted before promstack.gateway.keys).
    with (isolated_store.parent / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f'allowed_key_env = ["FAKE_PROVIDER_KEY"]\n[providers.openai]\n'
                f'trusted_api_bases = ["{fake_llm.base_url}"]\n')
    client.create_prompt("k", "Q: {{ q }}", model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url,
                                                           "api_key_env": "FAKE_PROVIDER_KEY"})
    fake_llm.require_key = "another-key"
    env = {**os.environ, "FAKE_PROVIDER_KEY": secret}
    proc = subprocess.run([PROMSTACK, "run", "k", "--var", "q=hi"], capture_output=True, text=True, timeout=120,
                          env=env, check=False)
    assert proc.returncode != 0 and proc.stderr.strip()
    assert secret not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([PROMSTACK, "logs", "--json"], capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("tamper", [
    "UPDATE audit SET actor = 'mallory' WHERE id = 2",
    "UPDATE audit SET detail = detail || ' ' WHERE id = (SELECT max(id) FROM audit)",
    "DELETE FROM audit WHERE id = 2",
    # (Deleting the newest rows is caught against a head remembered outside the database:
    # `audit verify --expect COUNT:HASH`, tests/test_audit_keyed.py.)
    "UPDATE audit SET at = '2001-01-01T00:00:00Z' WHERE id = 1",
    "UPDATE audit SET id = id + 100",
    "UPDATE versions SET template = 'pwned' WHERE number = 1",
    "UPDATE label_history SET to_version = 2",
    "UPDATE labels SET version = 2",
])
def test_audit_tampering_is_caught_by_the_cli(client, isolated_store, tamper):
    client.create_prompt("p", "one")
    client.save("p", "two")
    client.set_label("p", "production", 1, force=True, reason="release")  # no suite: forced
    ok = subprocess.run([PROMSTACK, "audit", "verify"], capture_output=True, text=True, timeout=60,
                        env=dict(os.environ), check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    conn = sqlite3.connect(isolated_store)
    with conn:
        conn.execute(tamper)
    conn.close()
    caught = subprocess.run([PROMSTACK, "audit", "verify"], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ), check=False)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "Traceback" not in caught.stderr and (caught.stdout + caught.stderr).strip()


@pytest.fixture
def networked(isolated_store):
    from test_dashboard_fixtures import serve

    from promstack.web.app import create_app

    with Client(isolated_store) as client:
        client.create_prompt("p", "hello {{ q }}")
        client.set_label("p", "production", 1, force=True, reason="release")  # no suite: forced
    with serve(create_app(isolated_store, host="0.0.0.0", token="tok-123")) as url:
        yield url


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/prompts"), ("GET", "/api/prompts/p"), ("GET", "/api/prompts/1?version=1"),
    ("POST", "/mcp"), ("GET", "/prompts"), ("GET", "/"),
])
def test_a_network_bind_refuses_every_route_without_the_token(networked, method, path):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"} if method == "POST" else None
    headers = {"accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic Og=="}, {"X-Token": "tok-123"}):
        refused = httpx.request(method, networked + path, json=body, headers={**headers, **auth}, timeout=30)
        assert refused.status_code == 401, (path, auth, refused.status_code)
        assert "hello" not in refused.text
    allowed = httpx.request(method, networked + path, json=body,
                            headers={**headers, "Authorization": "Bearer tok-123"}, timeout=30)
    assert allowed.status_code != 401, (path, allowed.status_code)
