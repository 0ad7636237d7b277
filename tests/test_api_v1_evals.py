"""/api/v1 over the scripted fake LLM: run, suites (uploaded as the CLI reads them), a test run
started and polled to completion, judge, arena and votes, evaluate, deploy with its gate, force
and approvals, A/B tests, rollouts, metrics, alerts and costs."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient
from test_evals_fake import SEED_CSV, SEED_JUDGE

from promstack.web.app import create_app

pytest_plugins = ("test_evals_fake",)
V1 = "/api/v1"


@pytest.fixture
def http(workspace, isolated_store):
    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as test_client:
        yield test_client


def poll(http, started, seconds: float = 30) -> dict:
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        body = http.get(f"{V1}/runs/{run_id}").json()
        seen.append(body["progress"])
        if body["status"] != "running":
            body["seen"] = seen
            return body
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish in {seconds} s")


def test_run_a_prompt_through_the_gateway(http):
    response = http.post(f"{V1}/prompts/42/-/run", json={"variables": {"input": "환불하고 싶어요"}, "branch": "main"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "openai/good" and body["prompt_version"] == 1 and body["input_tokens"] > 0
    assert "GOOD" in body["output"].upper() or body["output"]


def test_suites_upload_csv_json_jsonl_and_inline(http):
    csv = http.put(f"{V1}/suites/uploaded?prompt=42", content=SEED_CSV.encode(), headers={"Content-Type": "text/csv"})
    assert csv.status_code == 201, csv.text
    assert (csv.json()["cases"], csv.json()["prompt_id"]) == (3, 42)
    jsonl = http.put(f"{V1}/suites/lines?format=jsonl",
                     content='{"input": "a", "expected_output": "b"}\n{"input": "c"}\n')
    assert jsonl.json()["cases"] == 2
    inline = http.post(f"{V1}/suites", json={"suite": "inline", "cases": [{"input": "q", "expected_output": "a"}]})
    assert inline.status_code == 201 and inline.json()["cases"] == 1
    names = {s["name"] for s in http.get(f"{V1}/suites").json()}
    assert {"uploaded", "lines", "inline", "regression"} <= names
    assert len(http.get(f"{V1}/suites/uploaded").json()["cases"]) == 3
    bad = http.put(f"{V1}/suites/broken", content=b"input\n\"unclosed", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidInput"
    unknown = http.put(f"{V1}/suites/x", content=b"{}", headers={"Content-Type": "application/pdf"})
    assert "format" in unknown.json()["error"]["message"]


def test_a_test_run_starts_and_is_polled_to_completion(http):
    started = http.post(f"{V1}/runs", json={"suite": "regression", "models": ["openai/good", "openai/bad"]})
    assert started.json()["status"] in ("running", "done") and started.json()["kind"] == "test"
    done = poll(http, started)
    assert done["status"] == "done", done
    assert done["progress"] == {"done": 6, "total": 6}
    test = done["result"]["test"]
    assert (test["results"], test["pass_rate"], test["passed"]) == (6, 0.5, False)
    # the store answers for the run too (another worker, a restart): same summary
    again = http.get(f"{V1}/runs/{done['run_id']}?failing=5").json()
    assert again["result"]["test"]["results"] == 6 and again["status"] == "done"


def test_an_unknown_suite_is_refused_before_a_run_starts(http):
    response = http.post(f"{V1}/runs", json={"suite": "nope"})
    assert response.status_code == 404 and "nope" in response.json()["error"]["message"]
    assert http.get(f"{V1}/runs/missing").status_code == 404


def test_judge_evaluate_arena_and_votes(http):
    run = poll(http, http.post(f"{V1}/runs", json={"suite": "regression"}))
    judged = poll(http, http.post(f"{V1}/runs/{run['run_id']}/judge", json={"criteria": SEED_JUDGE}))
    assert judged["status"] == "done" and judged["result"]["test"]["score"] == 100
    scored = poll(http, http.post(f"{V1}/prompts/42/-/evaluate", json={}))
    assert scored["kind"] == "evaluate" and scored["result"]["score"] == 100
    arena = poll(http, http.post(f"{V1}/arena", json={"suite": "regression", "models": ["openai/q1", "openai/q3"],
                                                       "judge_model": "openai/judge", "seed": 4}))
    assert arena["status"] == "done" and arena["result"]["kind"] == "arena"
    assert set(arena["result"]["arena"]["models"]) == {"openai/q1", "openai/q3"}
    from promstack import Client

    with Client() as client:
        match = client.store.db.execute("select id from arena_matches limit 1").fetchone()[0]
    vote = http.post(f"{V1}/arena/matches/{match}/votes", json={"winner": "openai/q3"})
    assert vote.status_code == 201 and vote.json()["voter"] == "tester"


def test_deploy_through_the_gate_force_and_rollback(http):
    deployed = http.post(f"{V1}/prompts/42/-/deploy", json={})
    assert deployed.status_code == 200, deployed.text
    assert (deployed.json()["status"], deployed.json()["to_version"]) == ("deployed", 1)
    assert http.get(f"{V1}/prompts/42").json()["version"] == 1
    http.post(f"{V1}/prompts/42/-/versions", json={"template": "{{ input }}", "model_config": {"model": "openai/bad"}})
    refused = http.post(f"{V1}/prompts/42/-/deploy", json={})
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "GateFailed"
    assert refused.json()["error"]["deployment"]["checks"]
    forced = http.post(f"{V1}/prompts/42/-/deploy", json={"force": True, "reason": "hotfix"})
    assert forced.json()["forced"] is True and forced.json()["to_version"] == 2
    back = http.post(f"{V1}/prompts/42/-/deploy", json={"rollback": True, "reason": "bad"})
    assert back.json()["to_version"] == 1
    listed = http.get(f"{V1}/deployments", params={"prompt": 42}).json()
    assert len(listed) >= 3 and http.get(f"{V1}/deployments/{listed[0]['id']}").status_code == 200
    assert http.get(f"{V1}/prompts/42/-/deployments").status_code == 200


def test_approvals(http, workspace):
    config = workspace / ".promstack" / "config.toml"
    config.write_text(config.read_text() + "\n[environments.production]\napproval = true\n"
                      "allow_self_approval = true\n", encoding="utf-8")
    pending = http.post(f"{V1}/prompts/42/-/deploy", json={})
    assert pending.status_code == 202 and pending.json()["status"] == "pending_approval"
    approved = http.post(f"{V1}/deployments/{pending.json()['deployment_id']}/approve", json={"reason": "ok"})
    assert approved.status_code == 200 and approved.json()["status"] == "deployed", approved.text
    http.post(f"{V1}/prompts/42/-/versions", json={"template": "v2 {{ input }}"})
    second = http.post(f"{V1}/prompts/42/-/deploy", json={})
    rejected = http.post(f"{V1}/deployments/{second.json()['deployment_id']}/reject", json={"reason": "no"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    again = http.post(f"{V1}/deployments/{second.json()['deployment_id']}/approve", json={})
    assert again.status_code in (400, 409) and again.json()["error"]["message"]


def test_ab_tests_and_rollouts(http):
    http.post(f"{V1}/prompts/42/-/deploy", json={})
    http.post(f"{V1}/prompts/42/-/versions", json={"template": "B {{ input }}"})
    started = http.post(f"{V1}/prompts/42/-/ab", json={"a": 1, "b": 2, "split": 50, "environment": "staging", "force": True,
                                                       "reason": "try"})
    assert started.status_code == 201, started.text
    report = http.get(f"{V1}/prompts/42/-/ab", params={"environment": "staging"})
    assert report.status_code == 200, report.text
    stopped = http.post(f"{V1}/prompts/42/-/ab/stop", json={"environment": "staging"})
    assert stopped.status_code == 200, stopped.text
    rollout = http.post(f"{V1}/prompts/42/-/rollout", json={"version": 2, "percent": 10})
    assert rollout.status_code in (200, 201) and rollout.json()["status"] == "rolling_out", rollout.text
    assert http.get(f"{V1}/prompts/42/-/rollout").json()["percent"] == 10
    promoted = http.post(f"{V1}/prompts/42/-/rollout/promote", json={})
    assert promoted.status_code == 200 and promoted.json()["percent"] == 25, promoted.text
    aborted = http.post(f"{V1}/prompts/42/-/rollout/abort", json={"reason": "enough"})
    assert aborted.status_code == 200 and aborted.json()["halted"] is True
    assert http.get(f"{V1}/prompts/42/-/rollout").status_code == 404


def test_metrics_alerts_and_costs(http):
    assert http.post(f"{V1}/prompts/42/-/run", json={"variables": {"input": "q"}, "branch": "main"}).status_code == 200
    deadline = time.monotonic() + 10
    while not (metrics := http.get(f"{V1}/metrics", params={"by": ["model"]}).json())["groups"]:
        assert time.monotonic() < deadline, "the call was not logged"  # the log is written in the background
        time.sleep(0.05)
    assert metrics["by"] == ["model"] and metrics["groups"][0]["requests"] >= 1
    bad = http.get(f"{V1}/metrics", params={"by": ["colour"]})
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith("by")
    alerts = http.get(f"{V1}/alerts").json()
    assert "firing" in alerts and "rules" in alerts
    assert http.post(f"{V1}/alerts/check", json={"notify": False}).status_code == 200
    costs = http.get(f"{V1}/costs", params={"by": ["model"]}).json()
    assert "total_usd" in costs and "trend" in costs
