"""Every assertion type, deterministic and semantic, and the judged ones through a run."""

from __future__ import annotations

import asyncio
import json

import pytest

from promstack import InvalidInput
from promstack.evals import assertions as A
from promstack.evals import engine
from promstack.evals.gateway import EmbeddingUnavailable, Reply
from promstack.evals.judge import JudgeConfig
from promstack.evals.runner import Plan, Runner

pytest_plugins = ("test_evals_fake",)  # the scripted model and workspace fixtures


def check(spec, output):
    return A.check_deterministic(A.validate_assertion(spec), output)


@pytest.mark.parametrize(("spec", "output", "ok"), [
    ({"type": "equals", "value": "환불 절차 안내"}, "  환불 절차 안내\n", True),
    ({"type": "equals", "value": "a"}, "b", False),
    ("contains:환불", "환불은 7일 이내", True),
    ("contains:Refund", "refund in 7 days", False),
    ("icontains:Refund", "REFUND in 7 days", True),
    ("not-contains:욕설", "정중한 답변", True),
    ("not-icontains:SORRY", "sorry!", False),
    ({"type": "regex", "value": r"^\d{3}-\d{4}$"}, "010-12345", False),
    ({"type": "regex", "value": r"\d{3}-\d{4}"}, "call 010-1234", True),
    ({"type": "is-json"}, '{"a": 1}', True),
    ({"type": "is-json"}, '```json\n{"a": 1}\n```', True),
    ({"type": "is-json"}, "{a: 1}", False),
    ({"type": "max-length", "value": "5"}, "12345", True),
    ({"type": "max-length", "value": 5}, "123456", False),
])
def test_deterministic(spec, output, ok):
    result = check(spec, output)
    assert result.passed is ok and result.score == (1.0 if ok else 0.0) and result.reason


def test_json_schema():
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    assert check({"type": "json-schema", "value": schema}, '{"answer": "예"}').passed
    failed = check({"type": "json-schema", "value": json.dumps(schema)}, '{"answer": 3}')
    assert not failed.passed and "at answer" in failed.reason
    assert not check({"type": "json-schema", "value": schema}, "not json").passed
    with pytest.raises(InvalidInput, match="the JSON schema is invalid"):
        A.validate_assertion({"type": "json-schema", "value": {"type": "nonsense"}})


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "shout"}, "unknown assertion type 'shout'"),
    ({"type": "contains"}, "needs a value"),
    ({"type": "max-length", "value": "long"}, "whole number"),
    ({"type": "regex", "value": "("}, "does not compile"),
    ({"type": "similar", "value": "x", "threshold": "high"}, "threshold is a number"),
    (42, "an assertion is an object"),
])
def test_bad_specs(spec, message):
    with pytest.raises(InvalidInput, match=message):
        A.validate_assertion(spec)


def test_local_similarity_needs_no_model():
    same = A.local_similarity("환불 절차를 안내해 드립니다", "환불 절차를 안내해드립니다.")
    other = A.local_similarity("환불 절차를 안내해 드립니다", "오늘 날씨가 맑습니다")
    assert same > 0.9 > 0.3 > other
    assert A.local_similarity("", "") == 1.0 and A.local_similarity("a", "") == 0.0


class StubGateway:
    """An in-process gateway: the answer is fixed, the judge scores by a rule, embeddings fail
    or succeed as told."""

    def __init__(self, answer, *, judge_score=5, embeddings=None):
        self.answer = answer
        self.judge_score = judge_score
        self.embeddings = embeddings
        self.calls = []

    async def complete(self, *, prompt, variables=None, **kw):
        self.calls.append((prompt, variables, kw))
        if prompt == "promstack/judge":
            n = variables["criteria"].count("\n") + 1
            return Reply(json.dumps({"scores": [{"criterion": i + 1, "score": self.judge_score, "reason": "r"}
                                                for i in range(n)]}))
        return Reply(self.answer, input_tokens=3, output_tokens=2, latency_ms=5.0)

    async def embed(self, texts, *, model=None, run_id=None):
        if self.embeddings is None:
            raise EmbeddingUnavailable("no embedding model here")
        return [self.embeddings[t] for t in texts]


def _runner(gateway, *, embedding_model=None, criteria=()):
    suite = {"id": 0, "name": "s", "case_count": 1, "config": {}}
    plan = Plan(suite=suite, prompt_id=1, prompt_version=1, models=["m"], embedding_model=embedding_model,
                judge=JudgeConfig(criteria=list(criteria), model="judge"))
    return Runner(None, gateway, plan, {"id": "r1", "judge_key": "k"})


def test_similar_by_embedding_and_local_fallback():
    spec = A.validate_assertion({"type": "similar", "value": "ref", "threshold": 0.9})
    by_embedding = _runner(StubGateway("out", embeddings={"ref": [1.0, 0.0], "out": [1.0, 0.1]}),
                           embedding_model="openai/text-embedding-3-small")
    checks, error, _, _ = asyncio.run(by_embedding.check({}, "out", [spec]))
    assert error is None and checks[0].passed and checks[0].detail["method"].startswith("embedding")
    fallback = _runner(StubGateway("out"), embedding_model="openai/text-embedding-3-small")
    checks, _, _, _ = asyncio.run(fallback.check({}, "completely different", [spec]))
    assert not checks[0].passed and "fallback" in checks[0].detail
    local = _runner(StubGateway("out"))
    checks, _, _, _ = asyncio.run(local.check({}, "ref", [spec]))
    assert checks[0].passed and checks[0].detail["method"].startswith("local")


def test_judged_assertions_share_one_judge_call():
    gateway = StubGateway("answer", judge_score=4)
    runner = _runner(gateway, criteria=["정확한가?"])
    specs = [{"type": "expected", "value": "환불 절차 안내"},
             A.validate_assertion({"type": "llm-rubric", "value": "공손한가?", "threshold": 90}),
             A.validate_assertion("contains:answer")]
    checks, error, _, _ = asyncio.run(runner.check({"input": "q", "expected": "환불 절차 안내"}, "answer", specs))
    assert error is None
    by_type = {c.type: c for c in checks}
    assert by_type["contains"].passed
    # 4 of 1-5 is 75/100: under the one pass threshold, 80 (the deploy gate's), so it fails.
    assert not by_type["judge"].passed and by_type["judge"].score == 0.75
    assert not by_type["expected"].passed and "75/100 < 80" in by_type["expected"].reason
    assert not by_type["llm-rubric"].passed  # its own threshold, 90
    judge_calls = [c for c in gateway.calls if c[0] == "promstack/judge"]
    assert len(judge_calls) == 1
    assert "환불 절차 안내" in judge_calls[0][1]["criteria"] and judge_calls[0][1]["reference"] == "환불 절차 안내"


def test_every_assertion_type_through_a_real_run(workspace, client, scripted):
    cases = [
        {"input": "a", "assert": [{"type": "equals", "value": "bad answer"}]},
        {"input": "b", "assert": ["contains:bad", "icontains:BAD", "regex:^bad", "max-length:20", "not-contains:GOOD"]},
        {"input": "c", "assert": [{"type": "similar", "value": "bad answers", "threshold": 0.6}]},
        {"input": "d", "assert": [{"type": "llm-rubric", "value": "Is it polite?"}]},
        {"input": "e", "expected_output": "a helpful answer"},
        {"input": "f", "assert": [{"type": "is-json"}]},
        {"input": "g", "assert": [{"type": "json-schema", "value": {"type": "object"}}]},
    ]
    (workspace / "tests/prompts/all.json").write_text(json.dumps(cases), encoding="utf-8")
    run = engine.run_tests(client, "all", prompt=42, models=["openai/bad"], judge_model="openai/judge")
    statuses = [r["status"] for r in client.evals.iter_results(run["id"])]
    by_case = {r["case_idx"]: r for r in client.evals.iter_results(run["id"])}
    assert len(statuses) == 7
    assert [by_case[i]["status"] for i in range(7)] == ["pass", "pass", "pass", "fail", "fail", "fail", "fail"]
    assert "judge gave 1" in by_case[3]["reason"] and "is-json" in by_case[5]["reason"]


def test_similar_through_the_gateways_embeddings(workspace, client, scripted, monkeypatch):
    monkeypatch.setenv("PROMSTACK_EMBEDDING_MODEL", "openai/embed")
    cases = [{"input": "a", "assert": [{"type": "similar", "value": "bad answer", "threshold": 0.99}]}]
    (workspace / "tests/prompts/emb.json").write_text(json.dumps(cases), encoding="utf-8")
    run = engine.run_tests(client, "emb", prompt=42, models=["openai/bad"])
    (result,) = client.evals.iter_results(run["id"])
    (check,) = result["checks"]
    assert result["status"] == "pass" and check["detail"]["method"] == "embedding openai/embed"
    assert any(r["path"] == "/v1/embeddings" for r in scripted.requests)
