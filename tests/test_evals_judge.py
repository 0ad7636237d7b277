"""The judge: the seed's JSON, structured output, garbage and retries, G-Eval, versioned prompts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_evals_fake import SEED_JUDGE

from promstack import InvalidInput
from promstack.cli import cli
from promstack.evals import engine
from promstack.evals.judge import (
    JUDGE_PROMPT,
    MalformedJudgement,
    geval_scores,
    load_judge,
    parse_judgement,
    parse_pair,
)
from promstack.evals.score import PASS_SCORE

pytest_plugins = ("test_evals_fake",)


def test_seed_judge_json_as_is():
    config = load_judge(SEED_JUDGE)
    assert config.criteria == SEED_JUDGE["criteria"] and config.scale == (1, 5) and config.threshold == PASS_SCORE == 80
    assert load_judge(["정확한가?"]).criteria == ["정확한가?"]
    for bad, message in [({"criteria": ["a"], "scoring": "five"}, "scoring"),
                         ({"criteria": ["a"], "scoring": "5-1"}, "scoring"),
                         ({"criteria": [""]}, "cannot be empty"),
                         ({"criteria": ["a"], "weights": [1]}, "unknown judge setting")]:
        with pytest.raises(InvalidInput, match=message):
            load_judge(bad)


def test_parse_judgement_validates_and_ignores_a_pass_field():
    good = json.dumps({"pass": True, "scores": [{"criterion": 1, "score": 2, "reason": "Too vague."}]})
    parsed = parse_judgement(good, 1, (1, 5))
    assert parsed.scores[0].score == 2 and not hasattr(parsed, "pass")
    fenced = '```json\n{"scores": [{"criterion": 1, "score": 5, "reason": "ok"}]}\n```'
    assert parse_judgement(fenced, 1, (1, 5)).scores[0].score == 5
    prose = 'Here you go: {"scores": [{"criterion": 1, "score": 3, "reason": "ok"}]} Thanks!'
    assert parse_judgement(prose, 1, (1, 5)).scores[0].score == 3
    for garbage, message in [("Looks great to me!", "did not answer in JSON"),
                             ('{"scores": [{"score": 9, "reason": "x"}]}', "outside the scale"),
                             ('{"scores": [{"score": 3, "reason": "x"}]}', "scored 1 criteria where there are 2"),
                             ('{"scores": [{"score": 3}]}', "does not fit the schema"),
                             ('{"score": 3}', "does not fit the schema")]:
        with pytest.raises(MalformedJudgement, match=message):
            parse_judgement(garbage, 2 if "criteria where" in message else 1, (1, 5))
    assert parse_pair('{"winner": "b", "reason": "x"}').winner == "B"
    with pytest.raises(MalformedJudgement):
        parse_pair('{"winner": "both"}')


def test_geval_weights_score_tokens_and_says_when_it_cannot():
    from test_evals_fake import score_logprobs

    text = '{"scores": [{"criterion": 1, "score": 4, "reason": "a"}, {"criterion": 2, "score": 5, "reason": "b"}]}'
    weighted = geval_scores(text, score_logprobs(text), (1, 5), 2)
    assert weighted[0] == pytest.approx(4.4)
    assert weighted[1] == 5.0  # no alternatives offered: the token's own probability only
    assert geval_scores(text, None, (1, 5), 2) == [None, None]
    assert geval_scores(text, [{"token": "nope", "logprob": 0}], (1, 5), 2) == [None, None]


def _results(client, run_id):
    return list(client.evals.iter_results(run_id))


def test_garbage_judgements_are_retried_then_unscored_never_zero(workspace, client, scripted):
    run = engine.run_tests(client, "regression", judge_model="openai/judge-garbage")
    results = _results(client, run["id"])
    assert [r["status"] for r in results] == ["error"] * 3
    assert all(r["score"] is None and "did not answer in JSON" in r["reason"] for r in results)
    assert all("after 3 tries" in r["reason"] for r in results)  # the retries are counted
    assert scripted.counts["judge-garbage"] == 3 * 3  # the first try and two retries, per case
    # Unscored, not 0: the run has no score, and says how many cases and why.
    summary = run["summary"]
    assert summary["score"] is None and run["status"] == "done"
    assert summary["unscored"] == 3
    assert summary["unscored_reason"] == "the judge's replies did not match the schema after 3 tries"
    again = engine.run_tests(client, "regression", judge_model="openai/judge-garbage")
    assert again["summary"]["errors"] == 3
    # Garbage is never cached: every try of the second run asks the judge again.
    assert scripted.counts["judge-garbage"] == 9 + 9


def test_pass_comes_from_the_score_not_from_the_judge(workspace, client, scripted):
    run = engine.run_tests(client, "regression", judge_model="openai/judge-passfield")
    assert [r["status"] for r in _results(client, run["id"])] == ["fail"] * 3
    assert run["summary"]["score"] == 0


def test_geval_when_logprobs_come_back_and_the_fallback_flag(workspace, client, scripted):
    run = engine.run_tests(client, "regression", judge_model="openai/judge-logprobs")
    result = _results(client, run["id"])[0]
    (check,) = result["checks"]
    assert check["detail"]["geval"] is True and check["detail"]["weighted"] == pytest.approx(4.4)
    assert result["score"] == pytest.approx(85.0)  # (4.4 - 1) / 4
    raw = engine.run_tests(client, "regression", judge_model="openai/judge")
    (check,) = _results(client, raw["id"])[0]["checks"]
    assert check["detail"]["geval"] is False and check["detail"]["weighted"] is None


def test_judge_requests_are_temperature_zero_structured_and_blind(workspace, client, scripted):
    engine.run_tests(client, "regression", criteria=SEED_JUDGE)
    judge_requests = [r["json"] for r in scripted.requests if r["json"]["model"] == "judge"]
    assert len(judge_requests) == 3  # one call per case: criteria and expectation together
    request = judge_requests[0]
    assert request["temperature"] == 0 and request["response_format"]["type"] == "json_schema"
    assert request["logprobs"] is True
    user = request["messages"][-1]["content"]
    assert all(c in user for c in SEED_JUDGE["criteria"]) and "The answer satisfies this expectation" in user


def test_judge_prompts_are_versioned_and_editable(workspace, client, scripted):
    first = engine.run_tests(client, "regression")
    judge = client.get_prompt(JUDGE_PROMPT)
    assert judge.version == 1 and judge.model_config == {"temperature": 0}
    edited = judge.template
    edited[0]["content"] += "\nBe extra strict about tone."
    client.save(JUDGE_PROMPT, edited, message="stricter")
    second = engine.run_tests(client, "regression")
    assert first["judge_key"] != second["judge_key"]
    assert second["config"]["judge"]["prompt_version"] == 2
    last = [r["json"] for r in scripted.requests if r["json"]["model"] == "judge"][-1]
    assert "Be extra strict about tone." in last["messages"][0]["content"]


def test_judge_run_rejudges_outputs_without_calling_the_model(workspace, client, scripted):
    run = engine.run_tests(client, "regression", models=["openai/bad"])
    answers = scripted.counts["bad"]
    result = CliRunner().invoke(cli, ["judge", run["id"], "--criteria", str(workspace / "judge.json"), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    judged = json.loads(result.stdout)
    assert judged["config"]["source_run"] == run["id"] and judged["summary"]["results"] == 3
    assert judged["summary"]["failed"] == 3 and scripted.counts["bad"] == answers
    assert all(r["output"] == "bad answer" for r in _results(client, judged["id"]))
