"""The remote client's prompt cache against a real `promstack serve`: label state cached with the
user's A/B arm picked as the server picks it, fresh -> stale with one background refresh, the
last good copy on disk for a process that starts while the server is down, the fallback, and
each change of state logged once. (The outage under load, with real app processes and a slow
proxy, is tests/test_prompt_outage.py.)"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time

import pytest
from gates_off import gates_off
from team_server import free_port, serve

from promstack import Client
from promstack.deploy import abtest
from promstack.prompt_cache import ServedPrompt
from promstack.remote import Unreachable


@pytest.fixture
def team(spawn, tmp_path):
    """A server over prompt 'support/answer' v1-v3, production -> 2, staging -> 3."""
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    gates_off(db)
    with (db.parent / "config.toml").open("a", encoding="utf-8") as config:
        config.write("[deploy]\ncache_ttl = 0\n")  # the server's own label cache off: a move shows at once
    with Client(db) as client:
        client.create_prompt("support/answer", "v1 {{ input }}", model_config={"model": "openai/good"})
        client.save("support/answer", "v2 {{ input }}")
        client.save("support/answer", "v3 {{ input }}")
        client.set_label("support/answer", "production", 2)
        client.set_label("support/answer", "staging", 3)
    started = []

    def tracked(*args, **kwargs):
        started.append(spawn(*args, **kwargs))
        return started[-1]

    url = serve(tracked, root)
    return {"root": root, "db": db, "url": url, "server": started[0]}


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_a_label_read_is_cached_and_refreshed_in_the_background(team, tmp_path):
    with Client(url=team["url"], cache_ttl=0.3, cache_dir=tmp_path / "c") as client:
        first = client.get_prompt("support/answer", label="production")
        assert isinstance(first, ServedPrompt) and (first.version, first.served_from) == (2, "fresh")
        assert first.render(input="x") == "v2 x"
        assert client.get_prompt("support/answer", label="production") is first  # no copy on a cached read
        # another client moves the label: this one sees it once its copy is older than its TTL
        with Client(team["db"]) as other:
            other.set_label("support/answer", "production", 1)
        time.sleep(0.35)
        old = client.get_prompt("support/answer", label="production")
        assert (old.version, old.served_from) == (2, "stale")
        fresh = wait_for(lambda: (p := client.get_prompt("support/answer", label="production")).served_from == "fresh" and p)
        assert fresh.version == 1


def test_a_users_arm_is_picked_as_the_server_picks_it(team, tmp_path):
    with Client(team["db"]) as local:
        abtest.start(local, "support/answer", a=3, b=1, split=40, env="staging")
        users = [f"user-{i}" for i in range(300)]
        expected = {u: local.get_prompt("support/answer", label="staging", user_id=u).version for u in users}
    assert set(expected.values()) == {1, 3}
    with Client(url=team["url"], cache_dir=tmp_path / "c") as client:
        served = {u: client.get_prompt("support/answer", label="staging", user_id=u) for u in users}
        assert {u: p.version for u, p in served.items()} == expected
        assert {p.served_from for p in served.values()} == {"fresh"}
        # one request for the label's state, not one per user: the server's answer is the same
        # for every user, so the client held it once
        assert len(client.prompt_cache.entries) == 1


def test_a_process_started_while_the_server_is_down_serves_the_disk_copy(team, tmp_path, caplog):
    folder = tmp_path / "copies"
    with Client(url=team["url"], cache_dir=folder) as client:
        assert client.get_prompt("support/answer", label="production").version == 2
        assert client.get_prompt("support/answer", version=3).version == 3
    copies = list(folder.glob("*.json"))
    assert len(copies) == 2
    for path in copies:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert team["url"] not in path.read_text() and "Bearer" not in path.read_text()
    team["server"].kill()
    team["server"].wait()
    with Client(url=team["url"], cache_dir=folder) as client:
        with caplog.at_level(logging.WARNING, logger="promstack.prompt_cache"):
            for _ in range(50):
                found = client.get_prompt("support/answer", label="production")
                assert (found.version, found.served_from) == (2, "disk")
            assert client.get_prompt("support/answer", version=3).served_from == "disk"
            assert found.render(input="x") == "v2 x"
        said = [r.getMessage() for r in caplog.records if "label 'production'" in r.getMessage()]
        assert len(said) == 1 and "kept on disk" in said[0]  # once, not per call


def test_a_prompt_never_fetched_gets_the_fallback_until_the_server_answers(team, spawn, tmp_path, caplog):
    port = free_port()  # nothing listens there yet
    with Client(url=f"http://127.0.0.1:{port}", cache_dir=tmp_path / "c") as client:
        client.prompt_cache.retry = 0.05
        with pytest.raises(Unreachable, match="fallback"):
            client.get_prompt("support/answer", label="production")
        with caplog.at_level(logging.WARNING, logger="promstack.prompt_cache"):
            found = client.get_prompt("support/answer", label="production", fallback="Answer kindly: {{ input }}")
            assert found.served_from == "fallback" and found.render(input="hi") == "Answer kindly: hi"
            assert client.get_prompt("support/answer", label="production").served_from == "fallback"
            serve(spawn, team["root"], port=port)
            fresh = wait_for(lambda: (p := client.get_prompt("support/answer", label="production")).served_from == "fresh" and p)
            assert fresh.version == 2
        said = [r.getMessage() for r in caplog.records]
        assert [m for m in said if "fallback" in m] and [m for m in said if "answers again" in m]


def test_an_error_the_server_answers_is_raised_not_hidden(team, tmp_path):
    from promstack import NotFound

    with Client(url=team["url"], cache_dir=tmp_path / "c") as client:
        with pytest.raises(NotFound):
            client.get_prompt("support/answer", label="nowhere", fallback="unused")
        with pytest.raises(NotFound):
            client.get_prompt("no/such", label="production")


def test_a_label_this_client_moves_is_read_again(team, tmp_path):
    with Client(url=team["url"], cache_dir=tmp_path / "c") as client:
        assert client.get_prompt("support/answer", label="production").version == 2
        client.set_label("support/answer", "production", 3)
        assert client.get_prompt("support/answer", label="production").version == 3


def test_the_editing_view_is_not_cached(team, tmp_path):
    with Client(url=team["url"], cache_dir=tmp_path / "c") as client:
        assert client.get_prompt("support/answer").version == 3
        client.save("support/answer", "v4 {{ input }}")
        head = client.get_prompt("support/answer")
        assert head.version == 4 and not isinstance(head, ServedPrompt)


def test_the_disk_copy_is_written_atomically_in_the_users_cache_dir(team, tmp_path):
    """With no directory given, copies go to the platform's user cache dir (XDG_CACHE_HOME on Linux)."""
    env = {k: v for k, v in os.environ.items() if k != "PROMSTACK_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    code = (f"from promstack import Client; c = Client(url={team['url']!r}); "
            "print(c.get_prompt('support/answer', label='production').served_from)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "fresh"
    folder = tmp_path / "xdg" / "promstack"
    assert [p.suffix for p in folder.iterdir()] == [".json"]  # no temporary file left behind
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_an_include_renders_from_the_copies_too(team, tmp_path):
    with Client(team["db"]) as local:
        local.create_prompt("shared/tone", "Tone: kind.")
        local.create_prompt("support/inc", '{% include "shared/tone" %} Q: {{ input }}')
        local.set_label("support/inc", "production", 1)
    folder = tmp_path / "copies"
    with Client(url=team["url"], cache_dir=folder) as client:
        assert client.get_prompt("support/inc", label="production").render(input="x") == "Tone: kind. Q: x"
    team["server"].kill()
    team["server"].wait()
    with Client(url=team["url"], cache_dir=folder) as client:
        found = client.get_prompt("support/inc", label="production")
        assert found.served_from == "disk" and found.render(input="y") == "Tone: kind. Q: y"


def test_a_bad_ttl_is_one_sentence(monkeypatch):
    from promstack import InvalidInput

    monkeypatch.setenv("PROMSTACK_CACHE_TTL", "half a minute")
    with pytest.raises(InvalidInput, match="PROMSTACK_CACHE_TTL is seconds, e.g. 30; got 'half a minute'"):
        Client(url="http://127.0.0.1:9")
    with pytest.raises(InvalidInput, match="0 or more"):
        Client(url="http://127.0.0.1:9", cache_ttl=-1)
