"""The model side misbehaves during a batch run: a 429 storm, 500s, answers that never come,
truncated JSON and empty choices. The run completes, every case has exactly one result, the
failing ones are marked as errors with a sentence naming the cause, retries stay within their
bound, and nothing hangs (each run is bounded by `within`, not by hope).

Test of one model at a time erroring: tests/test_evals_runner.py (fake-500, a short 429 run);
the gateway's own error model per behaviour: tests/test_llm_gateway.py."""

from __future__ import annotations

import sqlite3

from promstack.evals import engine

from .helpers import integrity_ok, within

CASES = 12
FAULTS = {  # model -> the words its error result must carry
    "openai/fake-429": "rate limited",
    "openai/fake-500": "server error",
    "openai/fake-timeout": "timed out",
    "openai/fake-malformed": "malformed response",
    "openai/fake-empty": "empty response",
}
MAX_RETRIES = 2  # the gateway's, per call
RUNNER_RETRIES = 1  # the runner's, per case


def _workspace(client, fake, isolated_store) -> None:
    folder = isolated_store.parent
    (folder / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{fake.base_url}"\n\n'
        f"[gateway]\nretry_initial = 0.01\nretry_max_wait = 0.05\nmax_retries = {MAX_RETRIES}\n"
        "timeout = 0.4\nretry_deadline = 5\n",
        encoding="utf-8")
    client.create_prompt("faulty", "Answer: {{ input }}", model_config={"model": "openai/fake-model"})
    rows = "input,expected_output\n" + "".join(f"question {i},contains:echo\n" for i in range(CASES))
    engine.import_suite(client, text=rows, fmt="csv", name="faults", prompt="faulty")


def test_every_fault_is_marked_and_the_run_completes(client, fake_llm, isolated_store):
    _workspace(client, fake_llm, isolated_store)
    fake_llm.retry_after = "0.01"
    # a storm on the healthy model too: its first 24 requests are 429s, the next 6 are 500s
    storm = 30
    fake_llm.script(*["429"] * 24, *["500"] * 6)
    models = ["openai/fake-model", *FAULTS]
    run = within(120, lambda: engine.run_tests(client, "faults", models=models, concurrency=16,
                                                retries=RUNNER_RETRIES), "the faulty batch run")
    assert run["status"] == "done"
    results = list(client.evals.iter_results(run["id"]))
    assert len(results) == CASES * len(models)
    assert len({(r["case_key"], r["model"], r["repeat"]) for r in results}) == len(results)
    by_model: dict[str, list[dict]] = {}
    for r in results:
        by_model.setdefault(r["model"], []).append(r)
    for model, words in FAULTS.items():
        marked = by_model[model]
        assert [r["status"] for r in marked] == ["error"] * CASES, model
        for r in marked:
            assert words in r["error"] and model in r["error"], r["error"]
            assert "Traceback" not in r["error"] and "\n" not in r["error"]
            assert r["attempts"] == RUNNER_RETRIES + 1
    # the healthy model rode out its storm: the storm cost retries, and every case still answered
    # or is an error that says why (a case can draw more 429s in a row than its attempts allow)
    healthy = by_model["openai/fake-model"]
    assert all(r["status"] in ("pass", "error") for r in healthy)
    # a case ends as an error only after (runner x gateway) attempts all drew the storm
    assert sum(r["status"] == "pass" for r in healthy) >= CASES - storm // ((RUNNER_RETRIES + 1) * (MAX_RETRIES + 1))
    assert all(r["error"] for r in healthy if r["status"] == "error")
    # retries are bounded: never more requests than cases x runner attempts x gateway attempts
    per_model: dict[str, int] = {}
    for request in fake_llm.requests:
        name = request["json"]["model"]
        per_model[name] = per_model.get(name, 0) + 1
    bound = CASES * (RUNNER_RETRIES + 1) * (MAX_RETRIES + 1)
    for model in models:
        assert 0 < per_model[model.removeprefix("openai/")] <= bound, (model, per_model)
    assert run["summary"]["results"] == CASES * len(models)
    integrity_ok(isolated_store)


def test_the_call_log_has_one_row_per_call_with_its_cause(client, fake_llm, isolated_store):
    _workspace(client, fake_llm, isolated_store)
    run = within(60, lambda: engine.run_tests(client, "faults", models=list(FAULTS), concurrency=8),
                 "the all-failing batch run")
    assert run["status"] == "done" and run["summary"]["results"] == CASES * len(FAULTS)
    client.gateway.flush()
    conn = sqlite3.connect(isolated_store)
    try:
        rows = conn.execute("SELECT status, error FROM calls WHERE run_id = ?", [run["id"]]).fetchall()
    finally:
        conn.close()
    # one row per gateway call (its retries inside it), each an error that says why
    assert len(rows) == CASES * len(FAULTS)
    assert all(status == "error" and error for status, error in rows)


def test_a_cancelled_storm_is_resumed_to_exactly_n_results(client, fake_llm, isolated_store):
    """Half the cases fail on a storm that outlasts the retries; after the storm a new run of the
    same suite answers all of them, and the error results of the first run stay as they were."""
    _workspace(client, fake_llm, isolated_store)
    fake_llm.script(*["503"] * 200)
    first = within(60, lambda: engine.run_tests(client, "faults", concurrency=4), "the stormy run")
    statuses = [r["status"] for r in client.evals.iter_results(first["id"])]
    assert len(statuses) == CASES and "error" in statuses
    fake_llm.reset()
    second = within(60, lambda: engine.run_tests(client, "faults", concurrency=4), "the calm run")
    assert second["summary"]["results"] == CASES and second["summary"]["passed"] == CASES
    assert [r["status"] for r in client.evals.iter_results(first["id"])] == statuses
