"""What `promstack test` loads and leaves behind: nothing the command does not use is imported
(numpy, pydantic, httpx, the prompt file formats), and every call is in the call log by the
time the command returns, not at the interpreter's exit."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading

from click.testing import CliRunner

from promstack.cli import cli

pytest_plugins = ("test_evals_fake",)

# The modules `promstack test` loads: the CLI, the engine's facade, a local client, the gateway.
TEST_PATH = ("import sys, json; import promstack.cli, promstack.cli.evals, promstack.evals.engine, "
             "promstack.gateway.call; from promstack import Client; Client().list_prompts(); "
             "print(json.dumps(sorted(sys.modules)))")


def test_the_test_command_imports_nothing_it_does_not_use():
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", TEST_PATH], capture_output=True, text=True,
                                           check=True).stdout))
    assert "sqlite_utils.db" in loaded and "promstack.evals.runner" in loaded  # the path itself ran
    unused = {"numpy", "pandas", "pydantic", "httpx", "promstack.remote", "store.formats", "yaml",
              "ruamel.yaml", "promstack.evals.judgement", "promstack.evals.report"}
    assert unused & loaded == set()


def test_sqlite_utils_loads_without_numpy_yet_numpy_still_imports():
    code = ("import sys, store.db, sqlite_utils.db; before = 'numpy' in sys.modules; import numpy; "
            "print(before, sqlite_utils.db.np is None, numpy.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "numpy"]


def test_a_judge_reply_still_validates_with_its_models_loaded_on_use():
    from promstack.evals.judge import parse_judgement, parse_pair

    judged = parse_judgement('{"scores": [{"criterion": 1, "score": 4, "reason": "clear"}]}', 1, (1, 5))
    assert judged.scores[0].score == 4 and parse_pair('{"winner": "b", "reason": "shorter"}').winner == "B"


def test_every_call_is_logged_when_the_command_returns(workspace, client, scripted, isolated_store):
    (workspace / "tests/prompts/some.csv").write_text(
        "input,expected_output\n" + "".join(f'"질문 {i}","contains:GOOD"\n' for i in range(12)), encoding="utf-8")
    (workspace / "tests/prompts/some.yml").write_text("prompt: 42\n", encoding="utf-8")
    before = {t.ident for t in threading.enumerate()}
    result = CliRunner().invoke(cli, ["test", "--suite", "some", "--concurrency", "4", "-q"])
    assert result.exit_code == 0, result.output
    # the command closed what it opened (the gateway's loop and writers, the store): nothing is
    # left for the interpreter's exit to wait on
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []
    # read from another connection, before this process exits: the command closed its client
    with sqlite3.connect(isolated_store) as db:
        run_id = db.execute("SELECT id FROM runs ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        logged = db.execute("SELECT count(*) FROM calls WHERE run_id = ?", [run_id]).fetchone()[0]
        stored = db.execute("SELECT count(*) FROM results WHERE run_id = ?", [run_id]).fetchone()[0]
    assert stored == 12 and logged == 12
