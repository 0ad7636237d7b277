"""The runner: concurrency and limits, errors and retries, 429s, repeats and the cache, resume after
a cancelled task and after kill -9, unchecked cases, summaries and report files."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from promstack.cli import cli
from promstack.evals import engine

pytest_plugins = ("test_evals_fake",)
PROMSTACK = os.path.join(os.path.dirname(sys.executable), "promstack")


def _suite(workspace, name, n, expected="contains:GOOD"):
    rows = "input,expected_output\n" + "".join(f'"질문 {i}","{expected}"\n' for i in range(n))
    (workspace / "tests" / "prompts" / f"{name}.csv").write_text(rows, encoding="utf-8")
    (workspace / "tests" / "prompts" / f"{name}.yml").write_text("prompt: 42\n", encoding="utf-8")


def _results(client, run_id):
    return list(client.evals.iter_results(run_id))


def _run_until(spawn, workspace, suite, cases, results, db, scripted):
    """`promstack test` on a new suite of `cases` in its own process (see `start_until`)."""
    _suite(workspace, suite, cases)
    scripted.latency = 0.03
    return start_until(spawn, workspace, suite, db, results)


def start_until(spawn, workspace, suite, db, results, *options):
    """`promstack test --suite SUITE [options]` in its own process, returned once it has stored
    `results` results (or ended, or a minute passed), with a connection to watch it."""
    env = {**os.environ, "PROMSTACK_DB": str(db)}
    proc = spawn([PROMSTACK, "test", "--suite", suite, "--concurrency", "4", *options],
                 cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watcher = sqlite3.connect(db, timeout=10)
    deadline = time.monotonic() + 60
    count = 0
    while count < results and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
        try:
            count = watcher.execute("SELECT count(*) FROM results").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0
    return proc, watcher


def _answer_inputs(scripted, model="good"):
    return [r["json"]["messages"][-1]["content"].split("질문: ")[-1].strip()
            for r in scripted.requests if r["json"]["model"] == model]


def test_the_seed_suite_passes_and_fails_by_answer_quality(workspace, client, scripted):
    good = engine.run_tests(client, "regression")
    assert good["status"] == "done" and good["summary"]["pass_rate"] == 1.0 and good["summary"]["score"] == 100
    bad = engine.run_tests(client, "regression", models=["openai/bad"])
    s = bad["summary"]
    assert s["pass_rate"] == 0 and s["failed"] == 3 and len(s["failing"]) == 3
    assert s["failing"][0]["input"] == "이 제품의 장점은?" and "judge gave 1" in s["failing"][0]["why"]
    assert s["input_tokens"] > 0 and s["latency_ms"]["p50"] is not None and "p95" in s["latency_ms"]


def test_bounded_concurrency_and_per_model_limits(workspace, client, scripted):
    _suite(workspace, "many", 40)
    scripted.latency = 0.02
    run = engine.run_tests(client, "many", models=["openai/good", "openai/bad"], concurrency=6,
                           model_limits={"openai/bad": 2})
    assert run["summary"]["results"] == 80
    assert 2 <= scripted.peak <= 6
    assert scripted.peak_by_model["bad"] <= 2
    per_model = run["summary"]["models"]
    assert per_model["openai/good"]["pass_rate"] == 1.0 and per_model["openai/bad"]["pass_rate"] == 0.0


def test_model_errors_are_error_results_retried_and_never_cached(workspace, client, scripted):
    _suite(workspace, "errs", 3)
    run = engine.run_tests(client, "errs", models=["openai/fake-500"], retries=1)
    results = _results(client, run["id"])
    assert [r["status"] for r in results] == ["error"] * 3 and run["status"] == "done"
    assert all("provider openai (model openai/fake-500): server error" in r["error"] for r in results)
    assert all(r["attempts"] == 2 for r in results)
    calls = scripted.counts["fake-500"]
    assert calls == 3 * 2 * 3  # cases x runner attempts x gateway attempts (max_retries=2)
    engine.run_tests(client, "errs", models=["openai/fake-500"])
    assert scripted.counts["fake-500"] == calls + 3 * 3  # asked again: errors are not cached


def test_429_with_retry_after_is_waited_out(workspace, client, scripted):
    _suite(workspace, "limited", 1)
    scripted.retry_after = "0.01"
    scripted.script("429", "429")
    run = engine.run_tests(client, "limited")
    assert run["summary"]["passed"] == 1 and scripted.counts["good"] == 3


def test_repeat_index_is_part_of_the_cache_key(workspace, client, scripted):
    _suite(workspace, "rep", 2)
    scripted.latency = 0.05
    first = engine.run_tests(client, "rep", repeat=3)
    scripted.latency = 0.0
    assert first["summary"]["results"] == 6 and first["summary"]["cache_hits"] == 0
    assert scripted.counts["good"] == 6  # three fresh samples per case
    again = engine.run_tests(client, "rep", repeat=3)
    assert again["summary"]["cache_hits"] == 6 and scripted.counts["good"] == 6
    hit = _results(client, again["id"])[0]
    # a hit reports the latency of the call that filled the cache (at least the server's 50 ms)
    assert hit["cache_hit"] and hit["latency_ms"] >= 50


def test_cancel_mid_run_then_resume_exactly(workspace, client, scripted):
    _suite(workspace, "long", 40)
    scripted.latency = 0.02
    evals = client.evals

    async def interrupt() -> str:
        task = asyncio.create_task(engine.arun_tests(client, "long", concurrency=4))
        while not evals.runs(limit=1) or evals.result_count(evals.runs(limit=1)[0]["id"]) < 8:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return evals.runs(limit=1)[0]["id"]

    run_id = asyncio.run(interrupt())
    run = evals.run(run_id)
    done_before = {r["input"] for r in _results(client, run_id)}
    assert run["status"] == "interrupted" and 8 <= len(done_before) < 40
    asked_before = len(_answer_inputs(scripted))
    finished = engine.resume_run(client, run_id)
    assert finished["status"] == "done" and finished["summary"]["results"] == 40
    assert finished["summary"]["passed"] == 40
    asked_after = _answer_inputs(scripted)[asked_before:]
    assert not done_before & set(asked_after)  # nothing finished was asked again
    assert len(asked_after) == 40 - len(done_before)


def test_kill_9_mid_run_then_resume(workspace, client, scripted, isolated_store, spawn):
    proc, watcher = _run_until(spawn, workspace, "big", 120, 12, isolated_store, scripted)
    assert proc.poll() is None, proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id, status = watcher.execute("SELECT id, status FROM runs").fetchone()
    assert status == "running"  # killed: nothing could mark it
    done_before = {r[0] for r in watcher.execute(
        "SELECT c.input FROM results r JOIN cases c ON c.case_key = r.case_key")}
    watcher.close()
    assert 12 <= len(done_before) < 120
    asked_before = len(_answer_inputs(scripted))
    result = CliRunner().invoke(cli, ["test", "--resume", run_id], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + result.stderr
    run = engine.get_run(client, run_id)
    assert run["status"] == "done" and run["summary"]["results"] == 120 and run["summary"]["passed"] == 120
    asked_after = _answer_inputs(scripted)[asked_before:]
    assert not done_before & set(asked_after)


def test_resume_refuses_a_run_that_is_still_running(workspace, client, scripted):
    run = engine.run_tests(client, "regression")
    from store.db import write

    evals = client.evals
    with write(evals.db):
        evals.db.execute("UPDATE runs SET status = 'running', pid = 1 WHERE id = ?", [run["id"]])
    with pytest.raises(Exception, match="still running in process 1"):
        engine.resume_run(client, run["id"])


def test_unchecked_cases_are_warned_loudly_and_never_pass(workspace, client, scripted):
    (workspace / "tests/prompts/bare.csv").write_text("input\n안녕\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["test", "--suite", "bare", "--prompt", "42"])
    assert result.exit_code == 1
    assert "WARNING" in result.stderr and "never pass" in result.stderr
    assert "UNCHECKED" in result.stdout and "passed 0/1" in result.stdout


def test_cli_exit_codes_min_pass_and_reports(workspace, client, scripted):
    runner = CliRunner()
    ok = runner.invoke(cli, ["test", "--suite", "regression"])
    assert ok.exit_code == 0 and "PASSED" in ok.stdout
    bad = runner.invoke(cli, ["test", "--suite", "regression", "--model", "openai/bad"])
    assert bad.exit_code == 1 and "FAILED" in bad.stdout and "why:" in bad.stdout
    lenient = runner.invoke(cli, ["test", "--suite", "regression", "--model", "openai/bad", "--min-pass", "0"])
    assert lenient.exit_code == 0
    for name in ("results.json", "junit.xml", "results.csv"):
        out = runner.invoke(cli, ["test", "--suite", "regression", "--model", "openai/good,openai/bad",
                                  "--output", str(workspace / name)])
        assert out.exit_code == 1
    data = json.loads((workspace / "results.json").read_text(encoding="utf-8"))
    assert data["summary"]["results"] == 6 and len(data["results"]) == 6
    assert {r["status"] for r in data["results"]} == {"pass", "fail"}
    suite = ET.parse(workspace / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "6" and suite.get("failures") == "3"
    assert len(suite.findall("testcase/failure")) == 3
    rows = list(csv.DictReader((workspace / "results.csv").open(encoding="utf-8")))
    assert len(rows) == 6 and rows[0]["input"] == "이 제품의 장점은?"
    usage = runner.invoke(cli, ["test", "--suite", "regression", "--min-pass", "lots"])
    assert usage.exit_code == 2 and "--min-pass" in usage.stderr
    missing = runner.invoke(cli, ["test", "--suite", "nope"])
    assert missing.exit_code == 2 and "there is no test suite 'nope'" in missing.stderr


def test_every_call_is_logged_with_the_run_id(workspace, client, scripted):
    run = engine.run_tests(client, "regression")
    client.gateway.flush()
    rows = client.store.db.execute("SELECT model, status FROM calls WHERE run_id = ?", [run["id"]]).fetchall()
    assert sorted(m for m, _ in rows) == ["openai/good"] * 3 + ["openai/judge"] * 3
    assert {s for _, s in rows} == {"ok"}


def test_progress_bar_on_a_terminal_only(workspace, client, scripted, isolated_store, spawn):
    import pty

    env = {**os.environ, "PROMSTACK_DB": str(isolated_store), "COLUMNS": "100"}
    piped = subprocess.run([PROMSTACK, "test", "--suite", "regression"], cwd=workspace, env=env,
                           capture_output=True, timeout=60)
    assert piped.returncode == 0 and b"\x1b[" not in piped.stderr and b"testing" not in piped.stderr
    master, slave = pty.openpty()
    proc = spawn([PROMSTACK, "test", "--suite", "regression"], cwd=workspace, env=env,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    stdout = proc.stdout.read()
    proc.wait(timeout=60)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0 and b"PASSED" in stdout
    assert b"testing" in seen and b"3/3" in seen


def test_ctrl_c_keeps_finished_results_and_says_how_to_resume(workspace, client, scripted, isolated_store,
                                                               spawn):
    proc, watcher = _run_until(spawn, workspace, "sigint", 80, 8, isolated_store, scripted)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    run_id, status = watcher.execute("SELECT id, status FROM runs").fetchone()
    kept = watcher.execute("SELECT count(*) FROM results").fetchone()[0]
    watcher.close()
    assert proc.returncode == 130, stderr.decode()
    assert status == "interrupted" and 8 <= kept < 80
    assert f"promstack test --resume {run_id}" in stderr.decode()
    finished = engine.resume_run(client, run_id)
    assert finished["summary"]["results"] == 80 and finished["status"] == "done"


def test_a_runs_cost_names_the_calls_it_could_not_price(workspace, client, scripted):
    # openai/good and openai/judge (the fake server's) have no price anywhere: the run's cost
    # is what the priced calls cost, and the summary says how many calls it leaves out.
    run = engine.run_tests(client, "regression")
    s = run["summary"]
    assert s["unpriced"] == 6 and s["cost_usd"] == 0  # three answers and three judgements
    assert "6 calls unpriced" in s["unpriced_note"] and "add a price in config" in s["unpriced_note"]
    shown = CliRunner().invoke(cli, ["runs", run["id"]])
    assert "cost leaves out 6 calls unpriced" in shown.output
    (workspace / ".promstack" / "config.toml").open("a", encoding="utf-8").write(
        '\n[prices."openai/good"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n')
    os.utime(workspace / ".promstack" / "config.toml", ns=(time.time_ns() + 10**9,) * 2)
    # repeat 2: the first repeat is served from the cache (free, so priced), the second is new
    priced = engine.run_tests(client, "regression", repeat=2)["summary"]
    assert priced["unpriced"] == 3 and priced["cost_usd"] > 0  # the judge's new calls still have none
    assert "(model judge)" in priced["unpriced_note"] or "openai/judge" in priced["unpriced_note"]
