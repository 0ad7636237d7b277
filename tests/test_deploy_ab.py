"""A/B tests: stable assignment by user id, split accuracy, the report's significance tests on
data with a known answer, and `stop --winner` promoting through the label."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from click.testing import CliRunner
from gates_off import gates_off

from promstack import InvalidInput, NotFound, deploy
from promstack.cli import cli
from promstack.deploy import abtest
from promstack.deploy.abtest import Arm, compare, verdict
from store import calls
from store.clock import now


@pytest.fixture
def prompt42(client, isolated_store):
    """Prompt 42 with versions 1-3, staging -> 3 (as in examples/workspace.json). The subject
    here is the split itself: staging and production have no gate (test_deploy_walkarounds.py
    tests an A/B test against the gates)."""
    gates_off(isolated_store)
    client.create_prompt("support/answer", "v1 {{ input }}", id=42, model_config={"model": "openai/good"})
    client.save(42, "v2 {{ input }}")
    client.save(42, "v3 {{ input }}")
    client.set_label(42, "staging", 3)
    client.set_label(42, "production", 2)
    return client


def test_assignment_is_stable_and_the_split_is_accurate(prompt42, monkeypatch):
    client = prompt42
    monkeypatch.setattr(abtest.secrets, "token_hex", lambda n: "fedcba9876543210")  # a fixed draw
    abtest.start(client, 42, a=3, b=1, split=30)
    users = [f"user_{i}" for i in range(10_000)]
    first = {u: client.get_prompt(42, label="staging", user_id=u).version for u in users}
    share_b = sum(v == 1 for v in first.values()) / len(users)
    assert abs(share_b - 0.30) < 0.02
    assert set(first.values()) == {1, 3}
    # The same user gets the same arm: again, from another client (process-independent hash), after the cache.
    deploy.forget(client)
    from promstack import Client

    with Client(client.store.path) as other:
        for u in random.Random(7).sample(users, 500):
            assert client.get_prompt(42, label="staging", user_id=u).version == first[u]
            assert other.get_prompt(42, label="staging", user_id=u).version == first[u]
    # Without a user id: what the label points at; other labels are untouched by the test.
    assert client.get_prompt(42, label="staging").version == 3
    assert client.get_prompt(42, label="production", user_id="user_1").version == 2


@pytest.mark.parametrize(("split", "salt"), [(10, "a1"), (50, "b2"), (90, "c3"), (50, uuid.UUID(int=7).hex)])
def test_split_accuracy_at_other_shares(split, salt):
    inside = sum(deploy.bucket(salt, f"u{i}") < split for i in range(10_000))
    assert abs(inside / 10_000 - split / 100) < 0.02


def test_the_verdict_on_synthetic_data_with_a_known_answer():
    rng = random.Random(42)
    a, b = Arm(), Arm()
    # B scores clearly higher; latency and cost come from the same distributions; error rates 2% vs 2.2%.
    a.scores = [min(100, max(0, rng.gauss(60, 15))) for _ in range(200)]
    b.scores = [min(100, max(0, rng.gauss(80, 15))) for _ in range(200)]
    a.latencies = [rng.lognormvariate(6.5, 0.4) for _ in range(500)]
    b.latencies = [rng.lognormvariate(6.5, 0.4) for _ in range(500)]
    a.costs = [rng.uniform(0.001, 0.002) for _ in range(500)]
    b.costs = [rng.uniform(0.001, 0.002) for _ in range(500)]
    a.calls, a.errors, b.calls, b.errors = 500, 10, 500, 11
    results = compare(a, b)
    assert results["score"]["better"] == "b" and results["score"]["p"] < 0.001
    for name in ("latency", "error_rate", "cost"):
        assert not results[name]["significant"], (name, results[name])
        assert results[name]["p"] > 0.05
    sentence = verdict(results)
    assert sentence.startswith("B is better on score, p=<0.001; not significant on latency (p=")
    assert "error rate (p=" in sentence and "cost (p=" in sentence
    assert abtest.recommendation(results) == "b"

    # A known loss: B is 400 ms slower and fails 10% of the time.
    b.latencies = [x + 400 for x in a.latencies]
    b.errors = 50
    results = compare(a, b)
    assert results["latency"]["better"] == "a" and results["latency"]["test"] == "mann-whitney"
    assert results["error_rate"]["better"] == "a" and results["error_rate"]["test"] == "two-proportion-z"
    assert abtest.recommendation(results) is None  # B wins on score, loses on latency and errors
    assert "A is better on latency" in verdict(results) and "A is better on error rate" in verdict(results)


def test_too_little_data_says_so():
    results = compare(Arm(latencies=[1.0, 2.0], calls=2), Arm(latencies=[3.0], calls=1))
    assert all(item["p"] is None for item in results.values())
    assert verdict(results).startswith("Too little data for score, latency, error rate, cost")


def _log(client, version, n, *, errors=0, latency=100.0, environment="staging"):
    rows = []
    for i in range(n):
        rows.append(({"timestamp": now(), "prompt_id": 42, "prompt_version": version, "model": "openai/good",
                      "input_tokens": 10, "output_tokens": 20, "latency_ms": latency + i % 7,
                      "user_id": f"u{i}", "cost_usd": 0.001, "status": "error" if i < errors else "ok",
                      "environment": environment, "call_id": uuid.uuid4().hex}, None))
    calls.insert(client.store.db, rows)


def test_report_reads_the_call_log_by_arm(prompt42):
    client = prompt42
    _log(client, 3, 50, environment="production")  # before the test: not counted
    abtest.start(client, 42, a=3, b=1, split=50)
    _log(client, 3, 200, errors=1)
    _log(client, 1, 200, errors=40)
    _log(client, 2, 100)  # another version: not an arm
    found = abtest.report(client, 42)
    assert (found["a"]["calls"], found["b"]["calls"]) == (200, 200)
    assert (found["a"]["errors"], found["b"]["errors"]) == (1, 40)
    assert found["metrics"]["error_rate"]["better"] == "a"
    assert "A is better on error rate" in found["verdict"]
    assert any("no test suite is tied" in n for n in found["notes"])
    # The CLI prints the table and the sentence.
    out = CliRunner().invoke(cli, ["ab", "report", "--prompt", "42"])
    assert out.exit_code == 0, out.output
    assert "error_rate" in out.output and "A is better on error rate" in out.output


def test_report_counts_every_environment_when_none_is_tagged(prompt42):
    client = prompt42
    abtest.start(client, 42, a=3, b=1)
    _log(client, 3, 10, environment="development")
    _log(client, 1, 10, environment="development")
    found = abtest.report(client, 42)
    assert found["a"]["calls"] == 10 and "PROMSTACK_ENV=staging" in found["notes"][0]


def test_stop_with_a_winner_promotes_it(prompt42):
    client = prompt42
    split = abtest.start(client, 42, a=3, b=1, split=50)
    stopped = abtest.stop(client, 42, winner="b")
    assert stopped["status"] == "stopped" and stopped["outcome"] == "winner b"
    assert client.labels(42)["staging"] == 1
    assert client.get_prompt(42, label="staging", user_id="anyone").version == 1
    move = client.label_history(42, "staging")[0]
    assert (move.from_version, move.to_version) == (3, 1) and f"A/B test {split['id']}" in move.reason
    d = deploy.list_deployments(client, 42)[0]
    assert d["kind"] == "ab_winner" and d["status"] == "deployed"
    assert {"ab_start", "ab_stop", "set_label"} <= {e["action"] for e in client.audit_log(42)}
    # A rollback undoes the promotion like any deployment.
    assert deploy.rollback(client, 42, env="staging")["to_version"] == 3


def test_stop_without_a_winner_leaves_the_label(prompt42):
    client = prompt42
    abtest.start(client, 42, a=3, b=1)
    abtest.stop(client, 42)
    assert client.labels(42)["staging"] == 3
    assert client.get_prompt(42, label="staging", user_id="u1").version == 3


def test_bad_input(prompt42):
    client = prompt42
    with pytest.raises(InvalidInput, match="both v3"):
        abtest.start(client, 42, a=3, b=3)
    with pytest.raises(NotFound, match="no version 9"):
        abtest.start(client, 42, b=9)
    for split in (0, 100, -5):
        with pytest.raises(InvalidInput, match="the argument 'split' is the percentage"):
            abtest.start(client, 42, b=1, split=split)
    with pytest.raises(InvalidInput, match="no environment 'qa'"):
        abtest.start(client, 42, b=1, env="qa")
    with pytest.raises(NotFound, match="no A/B test"):
        abtest.stop(client, 42)
    abtest.start(client, 42, b=1)
    with pytest.raises(InvalidInput, match="is running in staging; stop it first"):
        abtest.start(client, 42, b=2)
    with pytest.raises(InvalidInput, match="the argument 'winner' is a or b"):
        abtest.stop(client, 42, winner="c")


def test_cli_start_and_stop(prompt42):
    runner = CliRunner()
    out = runner.invoke(cli, ["ab", "start", "--prompt", "42", "--a", "3", "--b", "1", "--split", "50"])
    assert out.exit_code == 0, out.output
    assert "A = v3 (50% of users), B = v1 (50%)" in out.output
    out = runner.invoke(cli, ["ab", "stop", "--prompt", "42", "--winner", "b", "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["outcome"] == "winner b"
    out = runner.invoke(cli, ["deploy", "status", "--prompt", "42"])
    assert "staging      v1" in out.output


def test_run_serves_each_user_their_arm_and_logs_it_under_the_label(prompt42, fake_llm):
    client = prompt42
    client.save(42, "v4 {{ input }}", model_config={"model": "gpt-4o-mini", "api_base": fake_llm.base_url})
    client.save(42, "v5 {{ input }}")
    gates_off(client.store.path)  # the fake_llm fixture wrote a config of its own
    client.set_label(42, "staging", 5)
    abtest.start(client, 42, a=5, b=4, split=50)
    served = {}
    for i in range(40):
        user = f"user_{i}"
        result = client.run(42, {"input": "hi"}, label="staging", user_id=user, cache=False)
        served[user] = result.prompt_version
        assert result.prompt_version == client.get_prompt(42, label="staging", user_id=user).version
    assert set(served.values()) == {4, 5}
    client.close()
    from promstack import Client

    with Client(client.store.path) as again:
        rows = again.call_log(prompt=42)
    assert {r["environment"] for r in rows} == {"staging"}
    assert {(r["user_id"], r["prompt_version"]) for r in rows} == set(served.items())
