"""The arena: blind pairs in both orders, ties on disagreement, win rates, Bradley-Terry ratings
recovered on synthetic data with a known order, and people's votes beside the judge's."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from promstack import InvalidInput
from promstack.cli import cli
from promstack.evals.arena import record_vote, run_arena
from promstack.evals.ratings import bradley_terry, ratings, win_rates

pytest_plugins = ("test_evals_fake",)
MODELS = ["openai/q1", "openai/q2", "openai/q3"]


def test_bradley_terry_recovers_a_known_order():
    rng = random.Random(7)
    strength = {"a": 4.0, "b": 2.0, "c": 1.0}
    matches = []
    for _ in range(400):
        x, y = rng.sample(sorted(strength), 2)
        p = strength[x] / (strength[x] + strength[y])
        matches.append((x, y, x if rng.random() < p else y))
    fitted = ratings(["c", "b", "a"], matches, resamples=300, seed=1)
    assert fitted["a"]["rating"] > fitted["b"]["rating"] > fitted["c"]["rating"]
    # ratios close to the truth: 4/1 is 241 rating points on the Elo-like scale
    assert 150 < fitted["a"]["rating"] - fitted["c"]["rating"] < 350
    assert fitted["a"]["ci_low"] > fitted["c"]["ci_high"]
    for m in "abc":
        assert fitted[m]["ci_low"] <= fitted[m]["rating"] <= fitted[m]["ci_high"]


def test_bradley_terry_is_the_maximum_likelihood_fit():
    # two models, 7 wins to 3: the MLE strength ratio is exactly 7/3 (before the weak prior)
    p = bradley_terry([[0, 7], [3, 0]], [[0, 10], [10, 0]])
    assert p[0] / p[1] == pytest.approx(7 / 3, rel=0.02)
    never = bradley_terry([[0, 5], [0, 0]], [[0, 5], [5, 0]])
    assert all(x > 0 for x in never)  # finite even for a model that never won


def test_win_rates_count_ties_as_half():
    pairs, overall = win_rates(["x", "y"], [("x", "y", "x"), ("x", "y", "tie"), ("y", "x", "y"), ("x", "y", "x")])
    assert pairs["x vs y"]["win_rate_a"] == pytest.approx((2 + 0.5) / 4)
    assert overall["y"]["win_rate"] == pytest.approx((1 + 0.5) / 4)
    assert overall["x"]["share"] + overall["y"]["share"] == pytest.approx(1)


def _pair_requests(scripted):
    return [r["json"] for r in scripted.requests if "compare two AI answers" in r["json"]["messages"][0]["content"]]


def test_every_pair_is_judged_blind_in_both_orders(workspace, client, scripted):
    run = run_arena(client, suite="regression", models=MODELS, judge_model="openai/judge", seed=3)
    arena = run["arena"]
    assert arena["judged"] == 9 and arena["errors"] == 0  # 3 cases x 3 pairs
    requests = _pair_requests(scripted)
    assert len(requests) == 18  # both orders of every pair of every case
    shown = set()
    for request in requests:
        user = request["messages"][-1]["content"]
        assert not any(m in user for m in MODELS)  # names hidden
        a = user.split("[Answer A]\n", 1)[1][:9]
        b = user.split("[Answer B]\n", 1)[1][:9]
        shown.add((user.split("\n")[1], a, b))
    for question, a, b in list(shown):
        assert (question, b, a) in shown  # the swapped order was shown too
    overall = arena["overall"]
    assert overall["openai/q3"]["win_rate"] == 1.0 and overall["openai/q1"]["win_rate"] == 0.0
    assert arena["order_flip_rate"] == 0.0
    assert arena["headline"]["models"] == "openai/q3 vs openai/q2 vs openai/q1"
    assert arena["headline"]["win_rates"] == "100% / 50% / 0%"
    r = arena["ratings"]
    assert r["openai/q3"]["rating"] > r["openai/q2"]["rating"] > r["openai/q1"]["rating"]


def test_position_bias_becomes_ties_and_shows_in_the_flip_rate(workspace, client, scripted):
    run = run_arena(client, suite="regression", models=MODELS, judge_model="openai/judge-biased", seed=5)
    arena = run["arena"]
    pairs = arena["pairs"]
    # adjacent qualities: the biased judge always says "A", so the two orders disagree -> tie
    assert pairs["openai/q1 vs openai/q2"]["ties"] == 3 and pairs["openai/q2 vs openai/q3"]["ties"] == 3
    assert pairs["openai/q1 vs openai/q3"]["wins_b"] == 3
    assert arena["order_flip_rate"] == pytest.approx(6 / 9, abs=1e-4)
    r = arena["ratings"]
    assert r["openai/q3"]["rating"] > r["openai/q2"]["rating"] > r["openai/q1"]["rating"]


def test_garbage_judge_and_failing_model_are_errors_not_verdicts(workspace, client, scripted):
    run = run_arena(client, suite="regression", models=["openai/q1", "openai/fake-500"], judge_model="openai/judge")
    assert run["arena"]["errors"] == 3 and run["arena"]["judged"] == 0
    assert "failed to answer" in run["arena"]["error_examples"][0]
    garbage = run_arena(client, suite="regression", models=["openai/q1", "openai/q2"],
                        judge_model="openai/judge-garbage")
    assert garbage["arena"]["errors"] == 3 and "judge error" in garbage["arena"]["error_examples"][0]
    with pytest.raises(InvalidInput, match="at least two models"):
        run_arena(client, suite="regression", models=["openai/q1"])


def test_human_votes_beside_the_judge(workspace, client, scripted):
    run = run_arena(client, suite="regression", models=MODELS[:2], judge_model="openai/judge", seed=1)
    from promstack.evals.engine import get_run

    matches = client.evals.matches(run["id"])
    record_vote(client, matches[0]["id"], "openai/q2")
    record_vote(client, matches[1]["id"], "openai/q1", voter="alice")
    record_vote(client, matches[1]["id"], "tie", voter="alice")  # a changed mind replaces the vote
    with pytest.raises(InvalidInput, match="names 'openai/q1', 'openai/q2' or 'tie'"):
        record_vote(client, matches[0]["id"], "gpt-5")
    human = get_run(client, run["id"])["arena"]["human"]
    assert human["votes"] == 2 and human["agreement_with_judge"] == 0.5
    assert human["overall"]["openai/q2"]["win_rate"] == pytest.approx(0.75)


def test_arena_cli(workspace, client, scripted):
    result = CliRunner().invoke(cli, ["arena", "--prompt", "42", "--suite", "regression", "--models",
                                      ",".join(MODELS), "--judge-model", "openai/judge", "--seed", "2"])
    assert result.exit_code == 0, result.stderr
    assert "openai/q3 vs openai/q2 vs openai/q1" in result.stdout
    assert "승률 (win rate): 100% / 50% / 0%" in result.stdout and "order-flip rate: 0%" in result.stdout
    run_id = result.stdout.split()[1].rstrip(":")
    shown = json.loads(CliRunner().invoke(cli, ["runs", run_id, "--json"]).stdout)
    assert shown["kind"] == "arena" and shown["arena"]["judged"] == 9
    vote = CliRunner().invoke(cli, ["vote", "1", "openai/q1"])
    assert vote.exit_code == 0 and "Recorded" in vote.stdout
