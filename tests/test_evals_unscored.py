"""A score is a score; an error is not a zero. The judge's answer has a fixed shape; a case it
could not score is unscored (never 0) on every face; one pass threshold; per-criterion scores and
reasons everywhere; a malformed judgement is never cached; the judge's own prompts are not the
user's; the arena's judge is not a contestant and a leaderboard without separation says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from test_evals_fake import SEED_JUDGE

from promstack import InvalidInput, deploy
from promstack.cli import cli
from promstack.evals import engine
from promstack.evals.arena import FLIP_LIMIT, run_arena
from promstack.evals.judge import JUDGE_PROMPT, PAIR_PROMPT, MalformedJudgement, parse_judgement

pytest_plugins = ("test_evals_fake",)
BIN = os.path.dirname(sys.executable)
CRITERIA = SEED_JUDGE["criteria"]


def judged_by(workspace, model: str) -> None:
    """The regression suite's judge model (its sidecar), e.g. 'openai/judge-short'."""
    (workspace / "tests" / "prompts" / "regression.yml").write_text(
        f"prompt: 42\njudge_model: {model}\n", encoding="utf-8")


def judge_requests(scripted) -> list[dict[str, Any]]:
    return [r["json"] for r in scripted.requests
            if "strict, fair evaluator" in (r["json"].get("messages") or [{}])[0].get("content", "")]


# ---- the shape of the judge's answer ------------------------------------------------------------


def test_the_schema_fixes_one_integer_score_per_criterion(workspace, client, scripted):
    engine.run_tests(client, "regression", criteria=SEED_JUDGE)
    request = judge_requests(scripted)[0]
    scores = request["response_format"]["json_schema"]["schema"]["properties"]["scores"]
    # three criteria and the case's expectation: exactly four entries
    assert scores["minItems"] == scores["maxItems"] == 4
    item = scores["items"]["properties"]
    assert item["score"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert item["criterion"] == {"type": "integer", "minimum": 1, "maximum": 4}
    for reply, message in [
        ('{"scores": [{"criterion": 1, "score": 4.5, "reason": "x"}]}', "does not fit the schema"),
        ('{"scores": [{"criterion": 2, "score": 4, "reason": "x"}, {"criterion": 1, "score": 4, "reason": "y"}]}',
         "one score per criterion, in order"),
    ]:
        with pytest.raises(MalformedJudgement, match=message):
            parse_judgement(reply, 2 if "y" in reply else 1, (1, 5))


def test_a_reply_of_the_wrong_shape_is_retried_never_cached_and_the_good_retry_is(workspace, client, scripted):
    judged_by(workspace, "openai/judge-badonce")
    run = engine.run_tests(client, "regression")
    assert run["summary"]["passed"] == 3 and run["summary"]["unscored"] == 0
    assert scripted.counts["judge-badonce"] == 6  # per case: a short reply, then a good one
    again = engine.run_tests(client, "regression")
    assert again["summary"]["passed"] == 3
    # The good retries were cached and the short replies were not: no judge call this time.
    assert scripted.counts["judge-badonce"] == 6


# ---- unscored, not 0 -----------------------------------------------------------------------------


def test_a_case_the_judge_could_not_score_is_unscored_never_zero(workspace, client, scripted):
    judged_by(workspace, "openai/judge-short")
    result = engine.evaluate(client, 42)
    assert result["score"] is None and result["unscored"] == 3
    assert result["unscored_reason"] == "the judge's replies did not match the schema after 3 tries"
    summary = result["run"]["summary"]
    assert summary["score"] is None and summary["passed"] == 0 and summary["unscored"] == 3
    assert scripted.counts["judge-short"] == 9  # 1 + 2 retries per case
    # A scored run says so too: unscored 0.
    judged_by(workspace, "openai/judge")
    assert engine.evaluate(client, 42)["unscored"] == 0


def test_unscored_cases_are_left_out_of_every_mean(workspace, client, scripted):
    run = engine.run_tests(client, "regression", models=["openai/good", "openai/fake-500"])
    s = run["summary"]
    assert s["unscored"] == 3 and s["score"] is None
    assert s["unscored_reason"].startswith("the model call failed")
    assert s["models"]["openai/good"]["score"] == 100.0  # its cases, not dragged down by 0s
    assert s["models"]["openai/fake-500"]["score"] is None


def test_cli_evaluate_unscored_prints_nothing_on_stdout_and_exits_1(workspace, client, scripted):
    judged_by(workspace, "openai/judge-short")
    result = CliRunner().invoke(cli, ["evaluate", "--prompt", "42"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "could not score: 3 case(s) unscored" in result.stderr
    assert "did not match the schema after 3 tries" in result.stderr
    # The guide's line under bash -e stops at the assignment and never compares an empty string.
    env = {k: v for k, v in os.environ.items() if k != "PROMSTACK_DB"}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    script = 'score=$(promstack evaluate --prompt 42); if [ $score -lt 80 ]; then echo LOW; fi; echo REACHED'
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-c", script], cwd=workspace, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "REACHED" not in proc.stdout and "LOW" not in proc.stdout
    assert "integer expression expected" not in proc.stderr
    # Usage errors stay 2; a scored prompt prints the bare integer and exits 0.
    assert CliRunner().invoke(cli, ["evaluate"]).exit_code == 2
    judged_by(workspace, "openai/judge")
    ok = CliRunner().invoke(cli, ["evaluate", "--prompt", "42"])
    assert ok.exit_code == 0 and ok.stdout == "100\n"


def test_the_gate_says_could_not_score_rather_than_zero(workspace, client, scripted):
    judged_by(workspace, "openai/judge-short")
    result = deploy.deploy(client, 42, version=1, env="staging")
    assert result["status"] == "refused"
    score = next(c for c in result["gate"]["checks"] if c["check"] == "score")
    assert not score["passed"] and score["value"] is None
    assert "could not score: 3 case(s) unscored (the judge's replies did not match the schema" in score["detail"]
    assert "0/100" not in score["detail"] and "< 80" not in score["detail"]
    assert "staging" not in client.labels(42)


@pytest.mark.anyio
async def test_mcp_evaluate_and_judge_run_say_could_not_score(workspace, scripted, mcp, client):
    judged_by(workspace, "openai/judge-short")
    result = await mcp.call_tool("evaluate_prompt", {"prompt": 42})
    assert not result.is_error
    data, text = result.structured_content, result.content[0].text
    assert data["score"] is None and data["unscored"] == 3
    assert "did not match the schema" in data["unscored_reason"]
    assert text.startswith("Could not score: 3 case(s) unscored")
    source = await engine.arun_tests(client, "regression", criteria=SEED_JUDGE, judge_model="openai/judge")
    judged = await mcp.call_tool("judge_run", {"run_id": source["id"], "criteria": SEED_JUDGE,
                                               "judge_model": "openai/judge-short"})
    data, text = judged.structured_content, judged.content[0].text
    assert data["score"] is None and data["unscored"] == 3 and "no score" in text
    assert "Could not score 3 case(s): the judge's replies did not match the schema" in text
    assert text.lower().count("could not score") == 1  # said once, by the verdict


# ---- one pass threshold --------------------------------------------------------------------------


def test_one_pass_threshold_the_gates_and_it_is_printed_with_the_verdict(workspace, client, scripted):
    judged_by(workspace, "openai/judge-four")  # 4 of 5 everywhere: 75/100
    out = CliRunner().invoke(cli, ["test", "--suite", "regression"])
    # Today's 75 would have PASSED this run while the gate refuses it; one rule now.
    assert out.exit_code == 1
    assert "FAILED: pass rate 0% < minimum 100% (a judged case passes at 80/100)" in out.stdout
    ok = CliRunner().invoke(cli, ["test", "--suite", "regression", "--threshold", "70"])
    assert ok.exit_code == 0 and "PASSED: pass rate 100% >= minimum 100% (a judged case passes at 70/100)" in ok.stdout
    gate = deploy.deploy(client, 42, version=1, env="staging")
    score = next(c for c in gate["gate"]["checks"] if c["check"] == "score")
    assert not score["passed"] and "score 75/100 < 80" in score["detail"]


@pytest.mark.anyio
async def test_mcp_run_tests_verdict_names_its_thresholds(workspace, scripted, mcp):
    judged_by(workspace, "openai/judge-four")
    result = await mcp.call_tool("run_tests", {"suite": "regression"})
    data, text = result.structured_content, result.content[0].text
    assert data["passed"] is False and data["threshold"] == 80
    assert "Verdict: FAILED: pass rate 0% < minimum 100% (a judged case passes at 80/100)." in text


# ---- per-criterion scores and reasons --------------------------------------------------------------


def test_per_criterion_scores_and_reasons_in_every_result(workspace, client, scripted):
    run = engine.run_tests(client, "regression", criteria=SEED_JUDGE, models=["openai/bad"])
    shown = engine.get_run(client, run["id"])
    means = {c["criterion"]: c for c in shown["summary"]["criteria"]}
    assert list(means)[:3] == CRITERIA
    assert means["톤이 일관적인가?"]["score"] == 1 and means["톤이 일관적인가?"]["judged"] == 3
    failing = shown["summary"]["failing"][0]
    tone = next(c for c in failing["criteria"] if c["criterion"] == "톤이 일관적인가?")
    assert tone == {"criterion": "톤이 일관적인가?", "score": 1, "percent": 0.0, "reason": "Off target."}
    result = next(iter(client.evals.iter_results(run["id"])))
    assert [c["criterion"] for c in result["criteria"]][:3] == CRITERIA
    out = CliRunner().invoke(cli, ["runs", run["id"]])
    assert out.exit_code == 0
    assert "Judge, per criterion" in out.stdout and "톤이 일관적인가?" in out.stdout
    assert "1 (0/100) 톤이 일관적인가?: Off target." in out.stdout


@pytest.mark.anyio
async def test_mcp_get_run_and_judge_run_carry_criteria(workspace, scripted, mcp, client):
    source = await engine.arun_tests(client, "regression", models=["openai/good"])
    judged = await mcp.call_tool("judge_run", {"run_id": source["id"], "criteria": SEED_JUDGE})
    data = judged.structured_content
    assert [c["criterion"] for c in data["criteria"]] == CRITERIA
    assert all(c["percent"] == 100 for c in data["criteria"])
    got = await mcp.call_tool("get_run", {"run_id": data["run_id"]})
    assert [c["criterion"] for c in got.structured_content["test"]["criteria"]] == CRITERIA
    assert "Judge per criterion: 응답이 질문에 적절한가? 100/100" in got.content[0].text
    bad = await engine.arun_tests(client, "regression", criteria=SEED_JUDGE, models=["openai/bad"])
    got = await mcp.call_tool("get_run", {"run_id": bad["id"]})
    case = got.structured_content["test"]["failing"][0]
    assert {"criterion": "톤이 일관적인가?", "score": 1, "percent": 0.0, "reason": "Off target."} in case["criteria"]


def test_dashboard_run_page_shows_criteria_and_could_not_score(workspace, client, scripted, isolated_store):
    from promstack.web.app import create_app

    judged = engine.run_tests(client, "regression", criteria=SEED_JUDGE, models=["openai/bad"])
    judged_by(workspace, "openai/judge-short")
    unscored = engine.run_tests(client, "regression")
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        page = http.get(f"/runs/{judged['id']}").text
        assert 'id="criteria-table"' in page and "톤이 일관적인가?" in page and "Off target." in page
        assert "Score 0/100 &lt; 80" in page
        page = http.get(f"/runs/{unscored['id']}").text
        assert "Could not score: 3 case(s) unscored (the judge&#39;s replies did not match the schema" in page
        assert ">unscored<" in page
        listing = http.get("/runs").text
        assert "None" not in listing.split("<tbody>", 1)[1]


# ---- the judge's prompts are not the user's --------------------------------------------------------


@pytest.mark.anyio
async def test_judge_prompts_are_hidden_from_prompt_lists_but_reachable_by_name(workspace, scripted, mcp, client,
                                                                                 isolated_store):
    from promstack.web.app import create_app

    await engine.arun_tests(client, "regression", criteria=SEED_JUDGE)
    assert client.get_prompt(JUDGE_PROMPT).version == 1  # still there, to be tuned
    assert [p.name for p in client.list_prompts()] == ["support/answer"]
    assert {JUDGE_PROMPT, PAIR_PROMPT} <= {p.name for p in client.list_prompts(include_internal=True)}
    listed = CliRunner().invoke(cli, ["prompt", "list", "--json"])
    assert [p["name"] for p in json.loads(listed.stdout)] == ["support/answer"]
    tool = await mcp.call_tool("list_prompts", {})
    assert [p["name"] for p in tool.structured_content["prompts"]] == ["support/answer"]
    assert [p.name for p in (await mcp.list_prompts(cache_mode="bypass")).prompts] == ["support/answer"]
    uris = [str(r.uri) for r in (await mcp.list_resources()).resources]
    assert not any("promstack/judge" in u for u in uris) and any("support/answer" in u for u in uris)
    shown = await mcp.call_tool("get_prompt", {"prompt": JUDGE_PROMPT})
    assert not shown.is_error and "strict, fair evaluator" in shown.content[0].text
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        page = http.get("/").text + http.get("/prompts").text
        assert "support/answer" in page and "promstack/judge" not in page


# ---- the arena -------------------------------------------------------------------------------------


def test_the_arena_default_judge_is_never_a_contestant(workspace, client, scripted, monkeypatch):
    judged_by(workspace, "openai/q1")  # the suite's judge model is one of the contestants
    monkeypatch.setenv("PROMSTACK_JUDGE_MODEL", "openai/judge")
    run = run_arena(client, suite="regression", models=["openai/q1", "openai/q2"], seed=1)
    assert run["config"]["judge"]["model"] == "openai/judge"
    assert run["arena"]["judged"] == 3 and "judge" in scripted.counts
    monkeypatch.delenv("PROMSTACK_JUDGE_MODEL")
    before = len(client.evals.runs(limit=100))
    with pytest.raises(InvalidInput, match="a judge model that is not one of the models it compares"):
        run_arena(client, suite="regression", models=["openai/q1", "openai/good"])
    assert len(client.evals.runs(limit=100)) == before  # refused before anything was written
    out = CliRunner().invoke(cli, ["arena", "--suite", "regression", "--models", "openai/q1,openai/good"])
    assert out.exit_code == 2 and "not one of the models it compares" in out.stderr
    # Named explicitly, any judge is used as asked.
    named = run_arena(client, suite="regression", models=["openai/q1", "openai/judge"], judge_model="openai/judge")
    assert named["config"]["judge"]["model"] == "openai/judge"


def test_no_separation_when_the_judge_prefers_a_position_or_everything_ties(workspace, client, scripted,
                                                                            isolated_store):
    from promstack.web.app import create_app

    biased = run_arena(client, suite="regression", models=["openai/q1", "openai/q2"],
                       judge_model="openai/judge-biased", seed=4)
    a = biased["arena"]
    assert a["order_flip_rate"] > FLIP_LIMIT and a["separated"] is False
    assert a["no_separation"].startswith("no separation: the judge changed its verdict when the order was swapped")
    assert all(r["ci_low"] is None and r["ci_high"] is None for r in a["ratings"].values())
    out = CliRunner().invoke(cli, ["runs", biased["id"]])
    assert "No separation: the judge changed its verdict" in out.stdout and ".." not in out.stdout
    ties = run_arena(client, suite="regression", models=["openai/q1", "openai/q3"], judge_model="openai/judge-tie")
    assert ties["arena"]["no_separation"] == "no separation: every match was a tie; the ratings do not rank the models"
    separated = run_arena(client, suite="regression", models=["openai/q1", "openai/q3"], judge_model="openai/judge")
    assert separated["arena"]["separated"] is True and separated["arena"]["no_separation"] is None
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        assert 'id="no-separation"' in http.get(f"/arena/{ties['id']}").text
        assert 'id="no-separation"' not in http.get(f"/arena/{separated['id']}").text


@pytest.mark.anyio
async def test_mcp_arena_says_no_separation(workspace, scripted, mcp):
    result = await mcp.call_tool("run_arena", {"suite": "regression", "models": ["openai/q1", "openai/q3"],
                                               "judge_model": "openai/judge-tie"})
    data, text = result.structured_content, result.content[0].text
    assert data["separated"] is False and "No separation: every match was a tie" in text
    assert "95% CI" not in text
