"""Cost report with trend, model recommendation on a case whose answer is known, prompt slimming
("30% shorter = 30% cheaper", measured), and suggest_shorter through the gateway and the suite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from promstack import monitoring
from promstack.cli import cli
from promstack.monitoring import advice, costs
from store import calls
from store.errors import NotFound

NOW = datetime.now(UTC).replace(microsecond=0)
_seq = iter(range(10**9))

GPT4O = 150 * 2.5e-06 + 200 * 1e-05       # $0.002375 a call of 150 in / 200 out
MINI = 150 * 1.5e-07 + 200 * 6e-07        # $0.0001425
NANO = 150 * 1e-07 + 200 * 4e-07          # $0.000095

SEED_LONG = ("당신은 세계 최고의 전문가로서, 사용자의 모든 질문에\n친절하고 전문적으로 답변해야 합니다. "
             "답변할 때는\n항상 구체적인 예시를 들어주세요.\n질문: {{ input }}")
SEED_SHORT = "전문가로서 답변하세요. 예시 포함.\n질문: {{ input }}"


def row(at: datetime, **fields):
    base = {"call_id": f"k{next(_seq)}", "timestamp": monitoring.iso(at), "prompt_id": 1,
            "prompt_name": "support/answer", "prompt_version": 1, "model": "gpt-4o",
            "input_tokens": 150, "output_tokens": 200, "latency_ms": 500.0, "user_id": "u1",
            "cost_usd": GPT4O, "cache_hit": False, "status": "ok", "environment": "production"}
    base.update(fields)
    return base


def add(db, rows):
    calls.insert(db, [(r, None) for r in rows])


def add_run(db, run_id, prompt_id, model_scores, *, suite="regression", started="2026-01-01T00:00:00Z"):
    db.execute(
        "INSERT INTO runs (id, kind, suite_name, prompt_id, prompt_version, models, status, total, "
        "started_at, actor) VALUES (?, 'test', ?, ?, 1, ?, 'done', 0, ?, 't')",
        [run_id, suite, prompt_id, json.dumps(list(model_scores)), started])
    for model, scores in model_scores.items():
        for i, score in enumerate(scores):
            db.execute(
                "INSERT INTO results (run_id, case_key, model, status, score, input_tokens, output_tokens, "
                "finished_at) VALUES (?, ?, ?, ?, ?, 150, 200, ?)",
                [run_id, f"case{i}", model, "pass" if score >= 50 else "fail", score, started])


@pytest.fixture
def answer(client):
    return client.create_prompt("support/answer", SEED_LONG, model_config={"model": "gpt-4o"})


def test_cost_report_groups_shares_and_trend(client, answer):
    db = client.store.db
    add(db, [row(NOW - timedelta(days=1), cost_usd=3.0), row(NOW - timedelta(days=2), cost_usd=1.0),
             row(NOW - timedelta(days=2), model="gpt-4o-mini", cost_usd=1.0, environment="staging",
                 user_id="u2")])
    add(db, [row(NOW - timedelta(days=10), cost_usd=2.0),                       # previous week
             row(NOW - timedelta(days=9), model="gpt-4o-mini", cost_usd=2.0)])
    report = costs.cost_report(db, since="7d", by="model", now=NOW)
    assert report["total_usd"] == pytest.approx(5.0) and report["previous_total_usd"] == pytest.approx(4.0)
    assert report["change"] == pytest.approx(0.25) and report["trend"] == "up"
    models = {g["model"]: g for g in report["groups"]}
    assert models["gpt-4o"]["cost_usd"] == pytest.approx(4.0) and models["gpt-4o"]["share"] == pytest.approx(0.8)
    assert models["gpt-4o"]["trend"] == "up" and models["gpt-4o"]["change"] == pytest.approx(1.0)
    assert models["gpt-4o-mini"]["trend"] == "down" and models["gpt-4o-mini"]["change"] == pytest.approx(-0.5)
    assert sum(d["cost_usd"] for d in report["daily"]) == pytest.approx(5.0)
    by_env = {g["environment"]: g["cost_usd"] for g in costs.cost_report(db, since="7d", by="environment", now=NOW)["groups"]}
    assert by_env == {"production": pytest.approx(4.0), "staging": pytest.approx(1.0)}
    by_user = {g["user_id"]: g["requests"] for g in costs.cost_report(db, since="7d", by="user", now=NOW)["groups"]}
    assert by_user == {"u1": 2, "u2": 1}
    by_prompt = costs.cost_report(db, since="7d", by="prompt", now=NOW)["groups"]
    assert by_prompt[0]["prompt_name"] == "support/answer"


def test_recommendation_known_answer(client, answer):
    db = client.store.db
    # 300 paid calls of gpt-4o in the last 30 days (cache hits cost nothing and do not count)
    add(db, [row(NOW - timedelta(hours=2 * i + 1)) for i in range(300)])
    add(db, [row(NOW - timedelta(hours=1), cache_hit=True, cost_usd=0.0) for _ in range(50)])
    add_run(db, "run-old", 1, {"gpt-4o-mini": [10, 10]}, started="2025-12-01T00:00:00Z")  # superseded
    add_run(db, "run-1", 1, {"gpt-4o": [90, 90, 90], "gpt-4o-mini": [89, 89, 89], "gpt-4.1-nano": [80, 80, 80]})
    rec = advice.recommend_model(client, "support/answer", tolerance=2, now=NOW)
    assert rec["current_model"] == "gpt-4o" and rec["best_score"] == 90
    assert rec["recommended"] == "gpt-4o-mini"         # nano is cheaper but 10 points worse
    assert rec["traffic"]["calls"] == 300 and rec["traffic"]["monthly_calls"] == 300
    assert rec["current_monthly_usd"] == pytest.approx(300 * GPT4O)
    assert rec["monthly_saving_usd"] == pytest.approx(300 * (GPT4O - MINI))
    assert rec["saving_ratio"] == pytest.approx(1 - MINI / GPT4O)
    scores = {c["model"]: c["score"] for c in rec["candidates"]}
    assert scores == {"gpt-4o": 90, "gpt-4o-mini": 89, "gpt-4.1-nano": 80}
    assert "switch to gpt-4o-mini" in rec["advice"]
    wide = advice.recommend_model(client, 1, tolerance=10, now=NOW)
    assert wide["recommended"] == "gpt-4.1-nano"
    assert wide["monthly_saving_usd"] == pytest.approx(300 * (GPT4O - NANO))
    strict = advice.recommend_model(client, 1, tolerance=0, now=NOW)
    assert strict["recommended"] == "gpt-4o" and strict["monthly_saving_usd"] == pytest.approx(0)
    assert strict["advice"].startswith("keep gpt-4o")


def test_recommendation_without_results_says_what_to_run(client, answer):
    with pytest.raises(NotFound, match=r"two or more models first: promstack\.evals\.engine\.run_tests\(client, SUITE, prompt="):
        advice.recommend_model(client, "support/answer")


def test_shorter_prompt_is_cheaper_in_proportion(client, answer):
    short = client.save("support/answer", SEED_SHORT)
    tokens = costs.version_tokens(client, "support/answer")
    (v1, v2) = tokens["versions"]
    assert v1["tokenizer"] == "o200k_base" and v2["tokens"] < v1["tokens"]
    # no traffic: a call's input is the template itself, output priced at 0 tokens, so the
    # cost changes exactly as the tokens do: "30% shorter = 30% cheaper"
    cmp = advice.compare_versions(client, "support/answer", 1, short.version)
    assert cmp["a"]["template_tokens"] == v1["tokens"] and cmp["b"]["template_tokens"] == v2["tokens"]
    assert cmp["cost_change"] == pytest.approx(cmp["template_token_change"])
    assert cmp["template_token_change"] < -0.3
    # with traffic: the template's saved tokens come off every call's input; output stays
    db = client.store.db
    add(db, [row(NOW - timedelta(hours=i + 1), input_tokens=1000, output_tokens=100, cost_usd=0.0035)
             for i in range(30)])
    saved = v1["tokens"] - v2["tokens"]
    cmp = advice.compare_versions(client, "support/answer", 1, short.version, now=NOW)
    per_call = saved * 2.5e-06
    assert cmp["per_call_saving_usd"] == pytest.approx(per_call)
    assert cmp["monthly_saving_usd"] == pytest.approx(per_call * 30)
    assert cmp["input_token_change"] == pytest.approx(-saved / 1000)
    assert cmp["a"]["measured"]["calls"] == 30 and "measured" not in cmp["b"]


def test_tokenizers_per_model():
    assert costs.tokenizer_name("gpt-4o-mini") == "o200k_base"
    assert costs.tokenizer_name("openai/gpt-4.1") == "o200k_base"
    assert costs.tokenizer_name("gpt-3.5-turbo") == "cl100k_base"
    assert costs.count_tokens("hello world", "gpt-4o") == 2
    assert costs.count_tokens("hello world", "claude-3-5-haiku") > 0


def test_suggest_shorter_runs_the_suite_before_anyone_adopts(client, fake_llm):
    from promstack.evals import engine

    config = {"model": "openai/fake-model", "api_base": fake_llm.base_url,
              "input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}
    client.create_prompt("support/answer", SEED_LONG, model_config=config)
    engine.import_suite(client, text='input,expected_output\n"환불하고 싶어요","contains:전문가"\n',
                        fmt="csv", name="regression", prompt="support/answer")
    fake_llm.reply = SEED_SHORT
    result = advice.suggest_shorter(client, "support/answer")
    assert result["candidate"] == SEED_SHORT
    assert result["tokens_after"] < result["tokens_before"]
    assert result["verdict"] == "adoptable", result
    assert result["branch"] == "shorter-v1" and result["version"] == 2
    assert result["runs"]["baseline"]["score"] == result["runs"]["candidate"]["score"] == 100
    assert client.get_prompt("support/answer").version == 1      # main never moved
    assert client.get_prompt("support/answer", branch="shorter-v1").template == SEED_SHORT
    assert result["cost"]["b"]["template_tokens"] == result["tokens_after"]
    # a rewrite that drops a variable is rejected before anything is saved
    fake_llm.reply = "전문가로서 답변하세요."
    bad = advice.suggest_shorter(client, "support/answer", run_suite=False)
    assert bad["verdict"] == "rejected" and "input" in bad["reason"] and bad["version"] is None


def test_cli_cost_commands(client, answer):
    db = client.store.db
    add(db, [row(NOW - timedelta(hours=2 * i)) for i in range(30)])
    add_run(db, "run-1", 1, {"gpt-4o": [90], "gpt-4o-mini": [89]})
    client.save("support/answer", SEED_SHORT)
    runner = CliRunner()
    report = runner.invoke(cli, ["cost", "--since", "7d", "--by", "model", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["groups"][0]["model"] == "gpt-4o"
    assert runner.invoke(cli, ["cost"]).exit_code == 0
    rec = runner.invoke(cli, ["cost", "recommend", "--prompt", "support/answer", "--json"])
    assert rec.exit_code == 0, rec.output
    assert json.loads(rec.stdout)["recommended"] == "gpt-4o-mini"
    human = runner.invoke(cli, ["cost", "recommend", "--prompt", "support/answer"])
    assert "switch to gpt-4o-mini" in human.stdout
    cmp = runner.invoke(cli, ["cost", "compare", "--prompt", "support/answer", "1", "2"])
    assert cmp.exit_code == 0, cmp.output
    assert "tokens" in cmp.stdout
    tokens = runner.invoke(cli, ["cost", "tokens", "--prompt", "support/answer", "--json"])
    assert [v["version"] for v in json.loads(tokens.stdout)["versions"]] == [1, 2]
    missing = runner.invoke(cli, ["cost", "recommend", "--prompt", "nope"])
    assert missing.exit_code == 2


def test_recommendation_from_arena_when_there_are_no_test_runs(client, answer):
    db = client.store.db
    add(db, [row(NOW - timedelta(hours=i + 1)) for i in range(30)])
    db.execute("INSERT INTO runs (id, kind, suite_name, prompt_id, prompt_version, models, status, total, "
               "started_at, actor) VALUES ('arena-1', 'arena', 'regression', 1, 1, ?, 'done', 10, "
               "'2026-01-01T00:00:00Z', 't')", [json.dumps(["gpt-4o", "gpt-4o-mini"])])
    for i in range(10):
        db.execute("INSERT INTO arena_matches (run_id, case_key, model_a, model_b, winner, at) "
                   "VALUES ('arena-1', ?, 'gpt-4o', 'gpt-4o-mini', ?, '2026-01-01T00:00:00Z')",
                   [f"c{i}", "gpt-4o" if i < 6 else "gpt-4o-mini"])
    rec = advice.recommend_model(client, "support/answer", tolerance=25, now=NOW)
    assert rec["basis"].startswith("arena run arena-1")
    assert {c["model"]: c["score"] for c in rec["candidates"]} == {"gpt-4o": 60.0, "gpt-4o-mini": 40.0}
    assert rec["recommended"] == "gpt-4o-mini"
    assert advice.recommend_model(client, "support/answer", tolerance=10, now=NOW)["recommended"] == "gpt-4o"
