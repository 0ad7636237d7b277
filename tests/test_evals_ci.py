"""The seed's GitHub Actions lines, run with bash as Actions runs them, against a test workspace
whose model answers well (both steps pass) or badly (both fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

pytest_plugins = ("test_evals_fake",)
WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "prompts.yml"
BIN = os.path.dirname(sys.executable)

# The seed's lines, as written in the document (GitHub substitutes ${{ env.PROMPT_ID }} first).
SEED_TEST_STEP = "promstack test --suite regression"
SEED_SCORE_STEP = (
    "score=$(promstack evaluate --prompt ${{ env.PROMPT_ID }})\n"
    "if [ $score -lt 80 ]; then exit 1; fi\n"
)


def actions_bash(script: str, cwd: Path, *, prompt_id: str = "42", extra_env: dict | None = None):
    """`run:` as GitHub Actions runs it: expressions substituted, then bash -eo pipefail."""
    script = script.replace("${{ env.PROMPT_ID }}", prompt_id)
    env = {k: v for k, v in os.environ.items() if k != "PROMSTACK_DB"}  # found from the cwd, as in CI
    env.update({"PATH": BIN + os.pathsep + env.get("PATH", ""), "PROMPT_ID": prompt_id, "CI": "true"})
    env.update(extra_env or {})
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_seed_lines_pass_with_good_answers(workspace, client, scripted):
    step = actions_bash(SEED_TEST_STEP, workspace)
    assert step.returncode == 0, step.stdout + step.stderr
    assert "PASSED" in step.stdout
    score = actions_bash(SEED_SCORE_STEP, workspace)
    assert score.returncode == 0, score.stdout + score.stderr
    printed = actions_bash("promstack evaluate --prompt 42", workspace)
    assert printed.stdout == "100\n"  # a bare integer on stdout; details went to stderr
    assert "score 100/100" in printed.stderr


def test_seed_lines_fail_with_bad_answers(workspace, client, scripted):
    client.save(42, model_config={"model": "openai/bad", "temperature": 0.2}, message="a worse model")
    step = actions_bash(SEED_TEST_STEP, workspace)
    assert step.returncode == 1, step.stdout + step.stderr
    assert "FAILED" in step.stdout and "why:" in step.stdout
    score = actions_bash(SEED_SCORE_STEP, workspace)
    assert score.returncode == 1
    assert actions_bash("promstack evaluate --prompt 42", workspace).stdout == "0\n"


def test_seed_lines_with_only_the_workflow_env(workspace, client, scripted):
    # No sidecar tying the suite to a prompt: the workflow's env.PROMPT_ID is used.
    (workspace / "tests" / "prompts" / "regression.yml").unlink()
    step = actions_bash(SEED_TEST_STEP, workspace, extra_env={"PROMSTACK_JUDGE_MODEL": "openai/judge"})
    assert step.returncode == 0, step.stdout + step.stderr
    score = actions_bash(SEED_SCORE_STEP, workspace, extra_env={"PROMSTACK_JUDGE_MODEL": "openai/judge"})
    assert score.returncode == 0, score.stderr
    untied = actions_bash(SEED_TEST_STEP, workspace, extra_env={"PROMPT_ID": ""})
    assert untied.returncode == 2 and "not tied to a prompt" in untied.stderr


def test_the_shipped_workflow_runs_the_seed_lines_as_written(workspace, client, scripted):
    # The repository's workflow (what `promstack ci init` writes) holds the seed's two steps, in
    # order and unchanged; test_deploy_workflow.py runs the whole workflow end to end.
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    runs = [s["run"] for s in workflow["jobs"]["test"]["steps"] if "run" in s]
    steps = [r for r in runs if r in (SEED_TEST_STEP, SEED_SCORE_STEP)]
    assert steps == [SEED_TEST_STEP, SEED_SCORE_STEP]
    for script in steps:
        result = actions_bash(script, workspace, prompt_id=str(workflow["env"]["PROMPT_ID"]))
        assert result.returncode == 0, script + result.stdout + result.stderr


def test_evaluate_usage_errors_exit_2(workspace, client, scripted):
    missing = actions_bash("promstack evaluate --prompt 999", workspace)
    assert missing.returncode == 2 and "there is no prompt 999" in missing.stderr and missing.stdout == ""
    unsuited = actions_bash("promstack evaluate --prompt 42 --suite nope", workspace)
    assert unsuited.returncode == 2 and "there is no test suite 'nope'" in unsuited.stderr
