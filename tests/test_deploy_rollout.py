"""Gradual rollout: a stable, growing share of users; promote to 100% moves the label; a firing
alert on the new version halts it and everyone is back on the stable version."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from promstack import InvalidInput, NotFound, deploy
from promstack.cli import cli
from promstack.deploy import rollout, splits
from store import calls
from store.clock import now


@pytest.fixture
def live(client, monkeypatch):
    """Prompt 42, production -> v1; v2 is the new version. The rollout's salt is fixed, so the
    shares below are exact numbers of this test, not a draw."""
    monkeypatch.setattr(splits.secrets, "token_hex", lambda n: "0123456789abcdef")
    client.create_prompt("support/answer", "v1 {{ input }}", id=42, model_config={"model": "openai/good"})
    client.save(42, "v2 {{ input }}")
    deploy.deploy(client, 42, version=1, env="production", force=True)
    return client


def served(client, n=2000):
    return {f"u{i}": client.get_prompt(42, label="production", user_id=f"u{i}").version for i in range(n)}


def test_rollout_shares_grow_and_users_keep_the_new_version(live):
    client = live
    started = deploy.deploy(client, 42, version=2, env="production", force=True, rollout=10)
    assert started["status"] == "rolling_out"
    assert client.labels(42)["production"] == 1  # the label stays on the stable version
    first = served(client)
    assert abs(sum(v == 2 for v in first.values()) / len(first) - 0.10) < 0.03
    assert client.get_prompt(42, label="production").version == 1  # no user id: the stable version
    step = rollout.promote(client, 42)
    assert step["percent"] == 25
    second = served(client)
    assert abs(sum(v == 2 for v in second.values()) / len(second) - 0.25) < 0.03
    assert all(second[u] == 2 for u, v in first.items() if v == 2)  # nobody who had v2 loses it
    assert rollout.promote(client, 42, to=50)["percent"] == 50
    done = rollout.promote(client, 42, to=100)
    assert done["status"] == "completed"
    assert client.labels(42)["production"] == 2
    assert set(served(client, 200).values()) == {2}
    d = deploy.get_deployment(client, started["id"])
    assert d["status"] == "deployed" and d["kind"] == "rollout"
    actions = [e["action"] for e in client.audit_log(42, limit=100)]
    assert actions.count("rollout_promote") == 3 and "rollout_start" in actions


def _errors(client, version, n=20, failing=10):
    calls.insert(client.store.db, [
        ({"timestamp": now(), "prompt_id": 42, "prompt_version": version, "model": "openai/good",
          "latency_ms": 50.0, "status": "error" if i < failing else "ok", "environment": "production",
          "error": "boom" if i < failing else None, "call_id": uuid.uuid4().hex, "user_id": f"u{i}"}, None)
        for i in range(n)
    ])


def test_a_firing_alert_on_the_new_version_halts_and_rolls_back(live):
    client = live
    started = deploy.deploy(client, 42, version=2, env="production", force=True, rollout=10)
    _errors(client, 1, failing=0)  # the stable version is healthy
    _errors(client, 2)  # the new one fails half its calls: over the 1% error-rate rule
    halted = rollout.promote(client, 42)
    assert halted["halted"] and halted["status"] == "halted"
    assert "error_rate" in halted["outcome"]
    assert set(served(client, 500).values()) == {1}
    assert client.labels(42)["production"] == 1
    assert deploy.get_deployment(client, started["id"])["status"] == "rolled_back"
    assert deploy.list_deployments(client, 42)[0]["kind"] == "rollback"
    assert "rollout_halt" in [e["action"] for e in client.audit_log(42)]
    from store import monitoring

    firing = [a for a in monitoring.open_alerts(client.store.db) if a["scope"].startswith("version:support/answer@v2")]
    assert firing and firing[0]["rule"] == "error_rate"
    with pytest.raises(NotFound, match="no rollout"):
        rollout.promote(client, 42)


def test_serving_halts_a_bad_rollout_without_anyone_asking(live):
    client = live
    deploy.deploy(client, 42, version=2, env="production", force=True, rollout=50)
    assert 2 in set(served(client, 200).values())
    _errors(client, 2)
    deploy.forget(client)  # the cache's TTL passing
    assert set(served(client, 200).values()) == {1}
    assert rollout.rows.active_split(client.store.db, 42, "production") is None


def test_rollout_check_command(live):
    client = live
    deploy.deploy(client, 42, version=2, env="production", force=True, rollout=10)
    runner = CliRunner()
    ok = runner.invoke(cli, ["rollout", "check"])
    assert ok.exit_code == 0 and "v2 serves 10% of users" in ok.output
    _errors(client, 2)
    bad = runner.invoke(cli, ["rollout", "check"])
    assert bad.exit_code == 1 and "HALTED" in bad.output


def test_the_rest_api_serves_the_same_shares(live, isolated_store):
    client = live
    deploy.deploy(client, 42, version=2, env="production", force=True, rollout=25)
    from promstack.web.app import create_app

    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        for i in range(50):
            body = http.get(f"/api/prompts/42?user_id=u{i}").json()
            assert body["version"] == client.get_prompt(42, label="production", user_id=f"u{i}").version
            assert body["resolved"]["kind"] == "rollout"
            assert body["resolved"]["arm"] == ("new" if body["version"] == 2 else "stable")


def test_cli_rollout_flow(live):
    runner = CliRunner()
    out = runner.invoke(cli, ["deploy", "--prompt", "42", "--version", "2", "--force", "--rollout", "10"])
    assert out.exit_code == 0 and "Rolling out support/answer v2 to production: 10% of users" in out.output
    out = runner.invoke(cli, ["rollout", "promote", "--prompt", "42", "--json"])
    assert json.loads(out.output)["percent"] == 25
    out = runner.invoke(cli, ["rollout", "abort", "--prompt", "42", "--reason", "changed our minds"])
    assert out.exit_code == 0 and "HALTED" in out.output and "changed our minds" in out.output
    assert live.labels(42)["production"] == 1


def test_bad_input(live):
    client = live
    for share in (0, 101, True):
        with pytest.raises(InvalidInput, match="rollout share"):
            deploy.deploy(client, 42, version=2, env="production", force=True, rollout=share)
    with pytest.raises(InvalidInput, match="already serves v1"):
        deploy.deploy(client, 42, version=1, env="production", force=True, rollout=10)
    with pytest.raises(InvalidInput, match="serves no version"):
        deploy.deploy(client, 42, version=2, env="staging", force=True, rollout=10)
    deploy.deploy(client, 42, version=2, env="production", force=True, rollout=10)
    with pytest.raises(InvalidInput, match="more than that"):
        rollout.promote(client, 42, to=5)
