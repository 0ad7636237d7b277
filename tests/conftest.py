"""Every test gets its own store: PROMSTACK_DB points into a temporary directory, so no test
ever touches a real workspace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch):
    path = tmp_path / ".promstack" / "promstack.db"
    path.parent.mkdir()  # a PROMSTACK_DB whose folder is missing is refused as a typo
    monkeypatch.setenv("PROMSTACK_DB", str(path))
    monkeypatch.setenv("PROMSTACK_USER", "tester")
    monkeypatch.delenv("PROMSTACK_AUDIT_KEY", raising=False)  # each store makes its own key file
    # An unexpected exception in a CLI command re-raises instead of becoming one friendly line,
    # so a bug fails its test with a traceback rather than hiding behind exit code 70.
    monkeypatch.setenv("PROMSTACK_DEBUG", "1")
    # the remote client's last good copies of prompts: in the test's folder, not ~/.cache
    monkeypatch.setenv("PROMSTACK_CACHE_DIR", str(tmp_path / "prompt-cache"))
    monkeypatch.chdir(tmp_path)
    return path


class Clock:
    """A clock that moves only when told: `store.clock.current` while the `clock` fixture is on."""

    def __init__(self, start: datetime) -> None:
        self.time = start

    def __call__(self) -> datetime:
        return self.time

    def advance(self, seconds: float = 1.0) -> None:
        self.time += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    """The store's timestamps from a clock the test moves, so events are ordered without sleeping."""
    import store.clock

    fake = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    monkeypatch.setattr(store.clock, "current", fake)
    return fake


@pytest.fixture
def anyio_backend():
    """The async tests (`@pytest.mark.anyio`) run on asyncio, the loop the faces and the gateway use."""
    return "asyncio"


@pytest.fixture
def client(isolated_store):
    from promstack import Client

    with Client(isolated_store) as c:
        yield c


# ---- the prompt files' fixtures: a store without the engine, a prompts/ folder, the file sync --


@pytest.fixture
def store(isolated_store):
    from store import Store

    s = Store(isolated_store)
    yield s
    s.close()


@pytest.fixture
def prompts_dir(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    return folder


@pytest.fixture
def sync(store, tmp_path, prompts_dir):
    from store.filesync import FileSync

    return FileSync(store, prompts_dir, root=tmp_path)


# ---- the gateway's fixtures (promstack/gateway): a fake OpenAI-compatible server, a real Redis --
import os  # noqa: E402

# Wherever litellm may load in a test: its local price map, never a hub download.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def _fake_llm_server():
    from fake_llm import FakeLLM

    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(_fake_llm_server, isolated_store):
    """The fake server, reset; the workspace's gateway set to retry fast."""
    _fake_llm_server.reset()
    config = isolated_store.parent / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[gateway]\nretry_initial = 0.01\nretry_max_wait = 0.05\n", encoding="utf-8")
    yield _fake_llm_server
    _fake_llm_server.reset()


@pytest.fixture(scope="session")
def redis_url():
    """A real redis-server on a free loopback port (`make test` installs Debian's)."""
    from fake_llm import start_redis

    server, url = start_redis()
    if server is None:
        pytest.skip(url)
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture
async def mcp(isolated_store):
    """The MCP server over the test's store, through the SDK's in-memory client (async tests;
    files whose server needs more set-up define their own)."""
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    server = build_server(isolated_store)
    async with MCPClient(server, client_info=Implementation(name="pytest-client", version="1")) as client:
        yield client
    server.engine.close()


# ---- child processes: SIGINT at its default in each, none left behind (tests/procs.py) --------
from procs import spawn  # noqa: E402, F401
