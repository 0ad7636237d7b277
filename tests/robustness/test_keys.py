"""Keys go only where the user sent them: an attacker who can edit a prompt (over MCP, a prompt
file, an import) tries to make the server send its provider keys, or any secret in its
environment, to a server of theirs, to store a key where every reader sees it, and to read
`.env` through a test-case import.

Each test here failed on the code before promstack.gateway.keys: a host name starting with `127.` was
trusted as loopback, `api_key_env` could name any variable, a model config kept an `api_key`
and served it back, and the import tool echoed a `.env` line as "the header"."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client as MCPClient

from mcp_server.server import build_server
from promstack import Client, InvalidInput
from promstack.evals import engine
from promstack.gateway import GatewayError, resolve_route
from store.filesync import open_errors
from store.watch import Watcher

PROMSTACK = str(Path(sys.executable).with_name("promstack"))
OPENAI_KEY = "sk-live-OPENAI-0123456789abcdefSECRET"
ANTHROPIC_KEY = "sk-ant-api03-ANTHROPIC-0123456789SECRET"
DB_PASSWORD = "hunter2-db-password-SECRET"


class Recorder:
    """An HTTP server on 127.0.0.1 that records every request's headers and answers as OpenAI's
    chat completions or Anthropic's messages would: where a key would land if it leaked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                recorder.requests.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
                if self.path.rstrip("/").endswith("/messages"):
                    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                            "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                            "usage": {"input_tokens": 3, "output_tokens": 1}}
                else:
                    body = {"id": "c1", "object": "chat.completion", "model": "m", "created": 1,
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": "hi"}}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sent(self) -> str:
        """Every header value every request carried, as one text to search for a key."""
        return "\n".join(f"{k}: {v}" for r in self.requests for k, v in r.items())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    found = Recorder()
    yield found
    found.close()


@pytest.fixture
def attacker_dns(monkeypatch):
    """`127.attacker.test` resolves where its owner says: here, to the recorder on 127.0.0.1."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".attacker.test"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def keys_in_env(monkeypatch, isolated_store):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("DB_PASSWORD", DB_PASSWORD)
    config = isolated_store.parent / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[gateway]\nmax_retries = 0\n", encoding="utf-8")
    return config


async def _tools(db: Path, *calls: tuple[str, dict]) -> list[tuple[bool, str]]:
    server = build_server(db)
    out = []
    try:
        async with MCPClient(server) as mcp:
            for tool, arguments in calls:
                result = await mcp.call_tool(tool, arguments)
                text = result.content[0].text if result.content else ""
                out.append((result.is_error, text + json.dumps(result.structured_content or {})))
        return out
    finally:
        server.engine.close()


def _mcp(db: Path, *calls: tuple[str, dict]) -> list[tuple[bool, str]]:
    return anyio.run(_tools, db, *calls)


def _db_bytes(db: Path) -> bytes:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
        return "\n".join(conn.iterdump()).encode()
    finally:
        conn.close()


# ---- a key goes only to a base the server trusts ----------------------------------------------


def test_a_host_that_only_starts_with_127_gets_no_key_over_mcp(isolated_store, keys_in_env, recorder, attacker_dns):
    base = f"http://127.attacker.test:{recorder.port}/v1"
    [(bad, text), (failed, ran)] = _mcp(
        isolated_store,
        ("create_prompt", {"prompt": "p", "template": "Hi {{ q }}",
                           "model_config": {"model": "openai/gpt-4o-mini", "api_base": base}}),
        ("run_prompt", {"prompt": "p", "variables": {"q": "x"}}))
    assert not bad, text
    assert recorder.requests, ran  # the call went out (keyless: a keyless server still answers)
    assert OPENAI_KEY not in recorder.sent() and "authorization" not in recorder.requests[0]
    print(f"keys: a 127.* host name got {len(recorder.requests)} call(s) and no key (lean route)")


def test_the_litellm_route_sends_no_anthropic_key_to_an_untrusted_base(client, keys_in_env, recorder, attacker_dns):
    """litellm reads ANTHROPIC_API_KEY by itself when given no key: the gateway gives it a dummy."""
    base = f"http://127.attacker.test:{recorder.port}"
    client.create_prompt("p", "Hi {{ q }}", model_config={"model": "anthropic/claude-3-5-haiku-latest",
                                                          "api_base": base})
    with contextlib.suppress(Exception):  # what the call returns does not matter; what it sent does
        client.run("p", {"q": "x"})
    assert recorder.requests, "the litellm route never reached the recorder"
    assert ANTHROPIC_KEY not in recorder.sent() and OPENAI_KEY not in recorder.sent()
    print(f"keys: an untrusted base on the litellm route got {len(recorder.requests)} call(s) and no key")


@pytest.mark.parametrize("route", ["lean", "litellm"])
def test_a_literal_loopback_base_in_a_model_config_is_no_reason_to_send_a_key(client, keys_in_env, recorder, route):
    config = {"model": "openai/gpt-4o-mini", "api_base": f"http://127.0.0.1:{recorder.port}/v1"}
    if route == "litellm":
        config["route"] = "litellm"
    client.create_prompt("p", "Hi {{ q }}", model_config=config)
    assert client.run("p", {"q": "x"}).output == "hi"
    assert OPENAI_KEY not in recorder.sent()


@pytest.mark.parametrize("route", ["lean", "litellm"])
def test_a_base_the_server_config_lists_gets_the_key(client, keys_in_env, recorder, route):
    base = f"http://127.0.0.1:{recorder.port}/v1"
    with keys_in_env.open("a", encoding="utf-8") as f:
        f.write(f'[providers.openai]\ntrusted_api_bases = ["{base}"]\n')
    config = {"model": "openai/gpt-4o-mini", "api_base": base + "/", "api_key_env": "OPENAI_API_KEY"}
    if route == "litellm":
        config["route"] = "litellm"
    client.create_prompt("p", "Hi {{ q }}", model_config=config)
    client.run("p", {"q": "x"})
    assert recorder.requests[-1]["authorization"] == f"Bearer {OPENAI_KEY}"


@pytest.mark.parametrize("route", ["lean", "litellm"])
def test_a_401_from_an_untrusted_base_says_how_to_trust_it(client, fake_llm, route, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    fake_llm.require_key = OPENAI_KEY
    config = {"model": "openai/fake-model", "api_base": fake_llm.base_url}
    if route == "litellm":
        config["route"] = "litellm"
    client.create_prompt("p", "Hi {{ q }}", model_config=config)
    with pytest.raises(GatewayError) as caught:
        client.run("p", {"q": "x"})
    assert caught.value.cause == "auth" and "trusted_api_bases" in str(caught.value), str(caught.value)
    assert OPENAI_KEY not in str(caught.value)
    assert all(r["headers"].get("authorization") != f"Bearer {OPENAI_KEY}" for r in fake_llm.requests)


HOSTILE_BASES = [
    "http://127.attacker.test/v1",
    "https://api.openai.com.evil.test/v1",
    "https://api.openai.com@evil.test/v1",
    "https://evil.test\\@api.openai.com/v1",
    "https://evil.test/api.openai.com/v1",
    "https://api.openai.com:8443/v1",
    "http://api.openai.com/v1",
    "https://api.openai.com/v1?x=https://api.openai.com/v1",
    "https://api.openai.com/v1/../../evil",
    "http://localhost:8000/v1",
    "http://127.0.0.1:11434/v1",
    "http://[::1]:8000/v1",
]


def test_no_prefix_or_spelling_trick_makes_a_base_trusted(monkeypatch):
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    for base in HOSTILE_BASES:
        route = resolve_route("openai/gpt-4o", {"api_base": base, "api_key_env": "OPENAI_API_KEY"}, {})
        assert route.keyless and route.key_env is None, base
    same = resolve_route("openai/gpt-4o", {"api_base": "HTTPS://API.OpenAI.com:443/v1/"}, {})
    assert not same.keyless and same.api_base == "https://api.openai.com/v1"
    print(f"keys: {len(HOSTILE_BASES)} spellings of a hostile api_base tried, none trusted")


# ---- api_key_env names only variables the server allows ---------------------------------------


def test_api_key_env_naming_any_other_variable_is_refused_when_saved(client, keys_in_env, isolated_store):
    with pytest.raises(InvalidInput, match="allowed_key_env"):
        client.create_prompt("p", "Hi {{ q }}", model_config={"model": "openai/gpt-4o-mini", "api_key_env": "DB_PASSWORD"})
    with pytest.raises(InvalidInput, match="allowed_key_env"):  # another provider's key, too
        client.create_prompt("p", "Hi {{ q }}", model_config={"model": "openai/gpt-4o-mini",
                                                              "api_key_env": "ANTHROPIC_API_KEY"})
    [(is_error, text)] = _mcp(isolated_store, ("create_prompt", {
        "prompt": "p", "template": "Hi {{ q }}", "model_config": {"model": "openai/gpt-4o-mini", "api_key_env": "DB_PASSWORD"}}))
    assert is_error and "allowed_key_env" in text and DB_PASSWORD not in text, text
    assert client.list_prompts() == []
    print("keys: api_key_env naming a password or another provider's key refused when saved (SDK, MCP)")


def test_api_key_env_naming_any_other_variable_is_refused_at_run_time(client, keys_in_env, recorder, isolated_store):
    """A prompt file the watcher versions is not checked against the server's config when saved
    (the watcher has no engine); the gateway refuses it before anything is sent."""
    base = f"http://127.0.0.1:{recorder.port}/v1"
    with keys_in_env.open("a", encoding="utf-8") as f:
        f.write(f'[providers.openai]\ntrusted_api_bases = ["{base}"]\n')
    prompts = isolated_store.parent.parent / "prompts"
    prompts.mkdir()
    (prompts / "p.prompt").write_text(
        f"---\nmodel: openai/gpt-4o-mini\nconfig:\n  api_base: {base}\n  api_key_env: DB_PASSWORD\n---\nHi {{{{q}}}}\n",
        encoding="utf-8")
    with Watcher(isolated_store, prompts):
        pass
    with pytest.raises(InvalidInput, match="allowed_key_env"):
        client.run("p", {"q": "x"})
    assert DB_PASSWORD not in recorder.sent() and not recorder.requests
    print("keys: api_key_env = DB_PASSWORD from a prompt file refused at run time, nothing sent")


def test_a_variable_the_server_allows_is_sent(client, keys_in_env, recorder, monkeypatch):
    monkeypatch.setenv("TEAM_PROXY_KEY", "team-proxy-key-0123456789")
    base = f"http://127.0.0.1:{recorder.port}/v1"
    keys_in_env.write_text(f'[gateway]\nmax_retries = 0\nallowed_key_env = ["TEAM_PROXY_KEY"]\n'
                           f'[providers.openai]\ntrusted_api_bases = ["{base}"]\n', encoding="utf-8")
    client.create_prompt("p", "Hi {{ q }}", model_config={"model": "openai/gpt-4o-mini", "api_base": base,
                                                          "api_key_env": "TEAM_PROXY_KEY"})
    client.run("p", {"q": "x"})
    assert recorder.requests[-1]["authorization"] == "Bearer team-proxy-key-0123456789"


# ---- no key is kept in a model config ---------------------------------------------------------

KEYED_CONFIGS = [
    {"model": "gpt-4o-mini", "api_key": OPENAI_KEY},
    {"model": "gpt-4o-mini", "apiKey": "plain-words-but-a-key-field"},
    {"model": "gpt-4o-mini", "extra_body": {"headers": {"Authorization": "Bearer abcdefghijklmnop"}}},
    {"model": "gpt-4o-mini", "password": "hunter2"},
    {"model": "gpt-4o-mini", "access_token": "abc"},
    {"model": "gpt-4o-mini", "stop": ["ghp_0123456789abcdefghijklmnopqrstuvwxyz"]},
]


@pytest.mark.parametrize("config", KEYED_CONFIGS)
def test_a_key_in_a_model_config_is_refused_by_the_sdk(client, config):
    with pytest.raises(InvalidInput, match="api_key_env"):
        client.create_prompt("p", "Hi {{ q }}", model_config=config)
    client.create_prompt("p", "Hi {{ q }}", model_config={"model": "gpt-4o-mini"})
    with pytest.raises(InvalidInput, match="api_key_env"):
        client.save("p", "Hi {{ q }}", model_config=config)
    assert [v.version for v in client.history("p")] == [1]


def test_a_config_that_only_names_secrets_is_kept(client):
    """No false alarm on configs that talk about tokens and keys without holding one."""
    config = {
        "model": "openai/gpt-4o-mini", "max_tokens": 10, "max_completion_tokens": 20,
        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "prompt_cache_key": "support",
        "api_key_env": "OPENAI_API_KEY", "api_key": None,
        "variables": {"token": {"description": "the reset token the user pasted"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "reset", "schema": {
            "type": "object", "properties": {"password": {"type": "string"}, "api_key": {"type": "string"}}}}},
    }
    saved = client.create_prompt("p", "Reset with {{ token }}", model_config=config)
    assert client.get_prompt("p").model_config == saved.model_config == config


def test_a_key_in_a_model_config_is_refused_on_every_way_in(client, isolated_store, tmp_path):
    keyed = {"model": "gpt-4o-mini", "api_key": OPENAI_KEY}
    tried = 0
    # MCP
    results = _mcp(isolated_store,
                   ("create_prompt", {"prompt": "m", "template": "Hi {{ q }}", "model_config": keyed}),
                   ("create_prompt", {"prompt": "ok", "template": "Hi {{ q }}"}),
                   ("update_prompt", {"prompt": "ok", "template": "Hi {{ q }}", "model_config": keyed}))
    assert results[0][0] and results[2][0] and not results[1][0], results
    assert all("api_key_env" in text and OPENAI_KEY not in text for _, text in (results[0], results[2]))
    tried += 2
    # the CLI
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store)}
    cli = subprocess.run([PROMSTACK, "prompt", "create", "c", "-t", "Hi {{ q }}", "--config", json.dumps(keyed)],
                         capture_output=True, text=True, timeout=120, env=env, check=False)
    assert cli.returncode == 2 and "api_key_env" in cli.stderr and OPENAI_KEY not in cli.stderr, cli.stderr
    tried += 1
    # a whole-store import
    document = client.export()
    document["prompts"][0]["name"], document["prompts"][0]["id"] = "imported", 99
    document["prompts"][0]["versions"][0]["model_config"] = keyed
    with pytest.raises(InvalidInput, match="api_key_env"):
        client.import_(document)
    tried += 1
    # the watcher's prompt files (Dotprompt passes any config key through)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "w.prompt").write_text(f"---\nmodel: openai/gpt-4o-mini\nconfig:\n  api_key: {OPENAI_KEY}\n---\n"
                                      "Hi {{q}}\n", encoding="utf-8")
    (prompts / "v.prompt.md").write_text("---\nmodel: gpt-4o-mini\n---\nHi ${input:q}\n", encoding="utf-8")
    with Watcher(isolated_store, prompts):
        pass
    tried += 1
    assert sorted(p.name for p in client.list_prompts()) == ["ok", "v"]
    [error] = open_errors(client.store.db)
    assert "api_key_env" in json.dumps(error) and OPENAI_KEY not in json.dumps(error), error
    assert OPENAI_KEY.encode() not in _db_bytes(isolated_store).replace(b"''", b"'")
    print(f"keys: a key in a model config tried on {tried} ways in (MCP create/update, CLI, import, watcher): "
          "all refused")


def _legacy_key(db: Path) -> None:
    """A key stored before keys were refused (written straight into the table)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE versions SET model_config = ? WHERE number = 2",
                     [json.dumps({"model": "gpt-4o-mini", "api_key": OPENAI_KEY,
                                  "extra_body": {"note": f"Bearer {OPENAI_KEY}"}})])
    conn.close()


def test_a_key_stored_before_is_never_served(client, isolated_store):
    from test_dashboard_fixtures import serve

    from promstack.web.app import create_app

    client.create_prompt("p", "Hi {{ q }}", model_config={"model": "gpt-4o-mini"})
    client.save("p", "Hello {{ q }}", model_config={"model": "gpt-4o-mini", "temperature": 0.5})
    _legacy_key(isolated_store)
    with Client(isolated_store) as fresh:
        assert OPENAI_KEY not in json.dumps(fresh.get_prompt("p").model_config)
        assert OPENAI_KEY not in json.dumps(fresh.export())
        diff = fresh.diff("p", 1, 2)
        assert OPENAI_KEY not in json.dumps(dataclass_dict(diff), default=str)
        with pytest.raises(InvalidInput, match="api_key_env"):
            fresh.run("p", {"q": "x"})  # nor sent
    [(is_error, text)] = _mcp(isolated_store, ("get_prompt", {"prompt": "p"}))
    assert not is_error and OPENAI_KEY not in text and "***" in text, text
    with serve(create_app(isolated_store)) as url:
        rest = httpx.get(f"{url}/api/prompts/p?version=2", timeout=30)
        page = httpx.get(f"{url}/prompts/1/diff?a=1&b=2", timeout=30)
        shown = httpx.get(f"{url}/prompts/1", timeout=30)
    assert rest.status_code == 200 and OPENAI_KEY not in rest.text, rest.text
    assert page.status_code == 200 and OPENAI_KEY not in page.text
    assert shown.status_code == 200 and OPENAI_KEY not in shown.text
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store)}
    exported = subprocess.run([PROMSTACK, "export"], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert exported.returncode == 0 and OPENAI_KEY not in exported.stdout
    print("keys: a key stored before was served by none of REST, MCP get_prompt, the dashboard, diff and export")


def dataclass_dict(value):
    import dataclasses

    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


# ---- imports read suite files only, and never echo a secret -----------------------------------

ENV_TEXT = f"OPENAI_API_KEY={OPENAI_KEY}\nDB_PASSWORD={DB_PASSWORD}\n"


@pytest.mark.parametrize("path", [".env", ".env.local", "config/.env", "deploy.key", "server.pem", "id_rsa",
                                  ".promstack/promstack.db", ".promstack/audit.key", ".git/config", "cases.csv"])
def test_the_mcp_import_tool_refuses_env_keys_and_the_store(isolated_store, path):
    root = isolated_store.parent.parent
    with Client(isolated_store):
        pass
    for name in (".env", ".env.local", "config/.env", "deploy.key", "server.pem", "id_rsa", ".git/config"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(ENV_TEXT, encoding="utf-8")
    (root / "cases.csv").symlink_to(root / ".env")  # a suite's name, the secret's bytes
    for fmt in (None, "csv"):
        args = {"suite": "s", "file": path, **({"format": fmt} if fmt else {})}
        [(is_error, text)] = _mcp(isolated_store, ("import_test_cases", args))
        assert is_error, text
        assert OPENAI_KEY not in text and DB_PASSWORD not in text and "OPENAI_API_KEY" not in text, text
        assert "never read" in text or "outside the workspace" in text, text


def test_an_error_that_quotes_a_file_redacts_its_secrets(client, isolated_store):
    root = isolated_store.parent.parent
    (root / "notes.csv").write_text(ENV_TEXT, encoding="utf-8")
    [(is_error, text)] = _mcp(isolated_store, ("import_test_cases", {"suite": "s", "file": "notes.csv"}))
    assert is_error and "header" in text, text
    assert OPENAI_KEY not in text and DB_PASSWORD not in text and "OPENAI_API_KEY=***" in text, text
    [(is_error, text)] = _mcp(isolated_store, ("import_test_cases", {"suite": "s", "cases": ENV_TEXT}))
    assert is_error and OPENAI_KEY not in text and DB_PASSWORD not in text, text
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store)}
    (root / ".env").write_text(ENV_TEXT, encoding="utf-8")
    for args in (["suite", "import", ".env", "--format", "csv"], ["suite", "import", "notes.csv"]):
        cli = subprocess.run([PROMSTACK, *args], capture_output=True, text=True, timeout=120, env=env,
                             cwd=root, check=False)
        assert cli.returncode == 2 and cli.stderr.strip(), cli.stderr
        assert OPENAI_KEY not in cli.stderr + cli.stdout and DB_PASSWORD not in cli.stderr + cli.stdout, cli.stderr
    print("keys: .env, keys, the store and .git refused by name on import; quoted file text redacted")


def test_a_suite_sidecar_cannot_name_env_as_its_judge(client, isolated_store):
    root = isolated_store.parent.parent
    (root / ".env").write_text('{"criteria": "' + OPENAI_KEY + '"}\n', encoding="utf-8")
    suites = root / "tests" / "prompts"
    suites.mkdir(parents=True)
    (suites / "s.csv").write_text("input,expected_output\nhi,hello\n", encoding="utf-8")
    (suites / "s.yml").write_text("judge: ../../.env\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="never read") as caught:
        engine.import_suite(client, suites / "s.csv")
    assert OPENAI_KEY not in str(caught.value)
    assert OPENAI_KEY.encode() not in _db_bytes(isolated_store)
