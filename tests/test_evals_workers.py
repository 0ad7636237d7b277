"""`promstack test --workers N`: the run shared by N processes, each with its own gateway, gives
the same summary as one process, never has more calls in flight than --concurrency, logs every
call once, and a Ctrl-C to the parent leaves a run that resumes to exactly N results."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from test_evals_runner import start_until

from promstack.evals import engine

pytest_plugins = ("test_evals_fake",)

PROMSTACK = os.path.join(os.path.dirname(sys.executable), "promstack")
SAME = ("total", "results", "passed", "failed", "errors", "pass_rate", "score", "complete", "unscored")


def _suite(workspace, name, count, word="질문"):
    # every third case expects what the model never says: the run has failures to report
    rows = "input,expected_output\n" + "".join(
        f'"{word} {i}","{"contains:NEVER" if i % 3 == 0 else "contains:GOOD"}"\n' for i in range(count))
    (workspace / "tests" / "prompts" / f"{name}.csv").write_text(rows, encoding="utf-8")
    (workspace / "tests" / "prompts" / f"{name}.yml").write_text("prompt: 42\n", encoding="utf-8")


def _call_ids(db, run_id):
    return [r[0] for r in db.execute("SELECT call_id FROM calls WHERE run_id = ?", [run_id]).fetchall()]


def _result_keys(db, run_id):
    return db.execute("SELECT case_key, model, repeat FROM results WHERE run_id = ?", [run_id]).fetchall()


def test_two_workers_give_the_summary_one_gives_and_log_every_call_once(workspace, client, scripted):
    _suite(workspace, "shared", 60)
    _suite(workspace, "alone", 60, word="문제")  # other inputs: none of its calls is a cache hit
    scripted.latency = 0.005
    seen = {2: [], 1: []}
    two = engine.run_tests(client, "shared", concurrency=8, workers=2,
                           progress=lambda done, total, status: seen[2].append((done, total, status)))
    one = engine.run_tests(client, "alone", concurrency=8,
                           progress=lambda done, total, status: seen[1].append((done, total, status)))
    for calls in seen.values():  # the bar: every result counted, each one not passed told once
        assert calls[-1][:2] == (60, 60) and sum(status not in ("", "pass") for _, _, status in calls) == 20
    assert two["status"] == one["status"] == "done"
    assert {k: two["summary"][k] for k in SAME} == {k: one["summary"][k] for k in SAME}
    assert two["summary"]["results"] == 60 and two["summary"]["failed"] == 20
    assert sorted(f["case"] for f in two["summary"]["failing"]) == sorted(f["case"] for f in one["summary"]["failing"])
    calls = _call_ids(client.store.db, two["id"])
    assert len(calls) == len(set(calls)) == 60  # one call-log row a call, none doubled
    assert len(set(_result_keys(client.store.db, two["id"]))) == 60


def test_the_workers_together_never_pass_the_concurrency(workspace, client, scripted):
    _suite(workspace, "wide", 96)
    scripted.hold = 12  # the first requests wait until 12 are in flight: the cap is reached
    scripted.latency = 0.005
    run = engine.run_tests(client, "wide", concurrency=12, workers=2)
    assert run["summary"]["results"] == 96
    assert scripted.peak == 12


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8")
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_the_workers_share_an_rpm_cap_rather_than_each_taking_it_whole(workspace, client, scripted):
    config = workspace / ".promstack" / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("[gateway]\n", "[gateway]\nrpm = 600\n"),
                      encoding="utf-8")  # 10 a second in all
    _suite(workspace, "paced", 30)
    run = engine.run_tests(client, "paced", concurrency=10, workers=2)
    assert run["summary"]["results"] == 30
    assert scripted.max_in_window(1.0) <= 12  # 5 a second each, one more at a window's edge each
    assert scripted.throttled == 0


def test_ctrl_c_stops_every_worker_and_the_run_resumes_to_exactly_n(workspace, client, scripted, isolated_store,
                                                                    spawn):
    _suite(workspace, "stopped", 120)
    scripted.latency = 0.03
    proc, watcher = start_until(spawn, workspace, "stopped", isolated_store, 10, "--workers", "2")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    run_id, status = watcher.execute("SELECT id, status FROM runs").fetchone()
    kept = watcher.execute("SELECT count(*) FROM results").fetchone()[0]
    watcher.close()
    assert proc.returncode == 130, stderr.decode()
    assert status == "interrupted" and 10 <= kept < 120
    assert f"promstack test --resume {run_id}" in stderr.decode()
    finished = engine.resume_run(client, run_id, workers=2)
    assert finished["status"] == "done" and finished["summary"]["results"] == 120
    keys = _result_keys(client.store.db, run_id)
    assert len(keys) == len(set(keys)) == 120  # nothing run twice
    calls = _call_ids(client.store.db, run_id)
    assert len(calls) == len(set(calls)) >= 120  # every call logged once (a call cut short is redone)


def test_a_worker_that_dies_fails_the_run_in_one_sentence_and_keeps_its_results(workspace, client, scripted,
                                                                                isolated_store, spawn):
    _suite(workspace, "broken", 120)
    scripted.latency = 0.03
    proc, watcher = start_until(spawn, workspace, "broken", isolated_store, 10, "--workers", "2")
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    run_id, status = watcher.execute("SELECT id, status FROM runs").fetchone()
    kept = watcher.execute("SELECT count(*) FROM results").fetchone()[0]
    watcher.close()
    said = stderr.decode()
    assert proc.returncode not in (0, None) and status == "interrupted" and kept >= 10
    assert "failed" in said and f"promstack test --resume {run_id}" in said and "Traceback" not in said, said
    finished = engine.resume_run(client, run_id, workers=2)
    assert finished["status"] == "done" and finished["summary"]["results"] == 120
    keys = _result_keys(client.store.db, run_id)
    assert len(keys) == len(set(keys)) == 120


def test_workers_need_a_whole_number(workspace, client, scripted):
    _suite(workspace, "few", 3)
    import pytest

    from store.errors import InvalidInput

    with pytest.raises(InvalidInput, match="workers must be a whole number"):
        engine.run_tests(client, "few", workers=0)
    config = workspace / ".promstack" / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[tests]\nworkers = \"lots\"\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"\[tests\] workers in .*config.toml must be a whole number"):
        engine.run_tests(client, "few")


def test_tests_workers_in_config_shares_the_run(workspace, client, scripted, monkeypatch):
    config = workspace / ".promstack" / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[tests]\nworkers = 2\n", encoding="utf-8")
    _suite(workspace, "configured", 24)
    shared = []
    original = engine.arun_sharded

    async def counted(client, plan, run, workers, **kwargs):
        shared.append(workers)
        return await original(client, plan, run, workers, **kwargs)

    monkeypatch.setattr(engine, "arun_sharded", counted)
    scripted.latency = 0.005
    run = engine.run_tests(client, "configured", concurrency=8)
    assert run["summary"]["results"] == 24 and shared == [2]
    assert engine.run_tests(client, "configured", concurrency=8, workers=1)["summary"]["results"] == 24
    assert shared == [2]  # --workers 1 over the config: one process
