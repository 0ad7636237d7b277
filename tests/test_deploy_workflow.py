"""The seed's GitHub Actions job, run here: `.github/workflows/prompts.yml` is parsed and each
job's `run:` steps execute with bash, in fresh clones of a temporary git repository, against the
scripted fake model server. Steps that only exist on GitHub's runners (`uses:` actions and
`pip install promstack`: PromStack is already installed here) are skipped; `${{ env.X }}` and
`${{ secrets.X }}` are substituted as Actions would (secrets are empty unless a test sets them:
the repository's PROMSTACK_AUDIT_KEY secret holds the key of the store's audit log)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from test_deploy_fixtures import _scripted_server, respond, scripted  # noqa: F401 - fixtures
from test_evals_fake import SEED_CSV, write_config

from promstack import Client
from promstack.cli import cli
from promstack.cli.deploy import workflow_text

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def substitute(text: str, env: dict[str, str], secrets: dict[str, str] | None = None) -> str:
    def value(match: re.Match) -> str:
        scope, name = match.group(1), match.group(2)
        return env.get(name, "") if scope == "env" else (secrets or {}).get(name, "")

    return re.sub(r"\$\{\{\s*(env|secrets)\.(\w+)\s*\}\}", value, text)


def run_job(workflow: dict, job: str, cwd: Path,
            secrets: dict[str, str] | None = None) -> list[tuple[str, subprocess.CompletedProcess]]:
    """Run a job's `run:` steps like Actions' default shell (bash -eo pipefail); stop at the first failure."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROMSTACK_DB", "PROMSTACK_USER", "PROMSTACK_AUDIT_KEY")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    workflow_env = {k: str(v) for k, v in (workflow.get("env") or {}).items()}
    env.update({k: substitute(v, {**env, **workflow_env}, secrets) for k, v in workflow_env.items()})
    env.update({"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
                "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com"})
    done = []
    for step in workflow["jobs"][job]["steps"]:
        script = step.get("run")
        if script is None or script.strip().startswith("pip install"):
            continue
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", substitute(script, env)],
                                cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        done.append((step.get("name", script), result))
        if result.returncode != 0:
            break
    return done


@pytest.fixture
def repo(scripted, tmp_path, monkeypatch):  # noqa: F811
    """origin.git (bare) and a developer's clone with a workspace: prompt 42 in prompts/, its
    suite, the store (committed, as the workflow expects) and the workflow from `ci init`."""
    origin, dev = tmp_path / "origin.git", tmp_path / "dev"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    db = dev / ".promstack" / "promstack.db"
    monkeypatch.setenv("PROMSTACK_DB", str(db))
    write_config(dev, scripted.base_url)
    (dev / "prompts" / "support").mkdir(parents=True)
    (dev / "prompts" / "support" / "answer.txt").write_text("전문가로서 답변하세요.\n질문: {{ input }}\n", encoding="utf-8")
    with Client(db) as client:
        client.create_prompt("support/answer", "전문가로서 답변하세요.\n질문: {{ input }}\n", id=42,
                             model_config={"model": "openai/good"})
        client.set_label(42, "production", 1, force=True, reason="the first release, before any suite")
    (dev / "tests" / "prompts").mkdir(parents=True)
    (dev / "tests" / "prompts" / "regression.csv").write_text(SEED_CSV, encoding="utf-8")
    (dev / "tests" / "prompts" / "regression.yml").write_text("prompt: 42\njudge_model: openai/judge\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ci", "init", "--prompt", "42", "--local", "--dir", str(dev)])
    assert result.exit_code == 0, result.output
    git(dev, "add", "prompts", "tests", ".github", ".promstack/config.toml")
    git(dev, "add", "-f", ".promstack/promstack.db")
    git(dev, "commit", "-q", "-m", "workspace")
    git(dev, "push", "-q", "origin", "main")
    return origin, dev


def audit_secret(dev: Path) -> dict[str, str]:
    """The repository's secrets as the developer set them: the store's audit key (never in git)."""
    return {"PROMSTACK_AUDIT_KEY": (dev / ".promstack" / "audit.key").read_text(encoding="utf-8").strip()}


def push_change(dev: Path, text: str) -> None:
    (dev / "prompts" / "support" / "answer.txt").write_text(text, encoding="utf-8")
    git(dev, "commit", "-q", "-am", "edit the prompt")
    git(dev, "push", "-q", "origin", "main")


def fresh_clone(origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), str(where))
    return where


def test_this_repository_ships_the_workflow_ci_init_writes():
    shipped = (REPO_ROOT / ".github" / "workflows" / "prompts.yml").read_text(encoding="utf-8")
    assert shipped == workflow_text(42)
    workflow = yaml.safe_load(shipped)
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert on == {"push": {"paths": ["prompts/**"]}}
    runs = [s.get("run", "") for job in workflow["jobs"].values() for s in job["steps"]]
    # The seed's three lines, as written.
    assert "promstack test --suite regression" in runs
    assert any("score=$(promstack evaluate --prompt ${{ env.PROMPT_ID }})" in r
               and "if [ $score -lt 80 ]; then exit 1; fi" in r for r in runs)
    assert "promstack deploy --prompt ${{ env.PROMPT_ID }}" in runs
    assert workflow["jobs"]["deploy"]["needs"] == "test"


def test_the_workflow_tests_gates_and_deploys_a_pushed_prompt(repo, tmp_path):
    origin, dev = repo
    push_change(dev, "전문가로서 답변하세요. 예시 포함.\n질문: {{ input }}\n")
    workflow = yaml.safe_load((dev / ".github" / "workflows" / "prompts.yml").read_text(encoding="utf-8"))

    test_job = run_job(workflow, "test", fresh_clone(origin, tmp_path / "runner-test"), audit_secret(dev))
    for name, result in test_job:
        assert result.returncode == 0, (name, result.stdout, result.stderr)
    assert [name for name, _ in test_job] == ["Version the prompt files", "Run batch tests", "Check quality score"]
    assert "PASSED" in test_job[1][1].stdout

    deploy_job = run_job(workflow, "deploy", fresh_clone(origin, tmp_path / "runner-deploy"), audit_secret(dev))
    for name, result in deploy_job:
        assert result.returncode == 0, (name, result.stdout, result.stderr)
    assert "Deployed support/answer v2 to production (was v1)" in deploy_job[1][1].stdout
    # The audit log's head went into the job's log, outside the database.
    name, verified = deploy_job[2]
    assert name == "Verify the audit log and print its head"
    printed = re.search(r"^audit head (\d+:[0-9a-f]{64})$", verified.stdout, re.M).group(1)

    # The deployment reached the repository: a new commit with the store, production -> v2.
    check = fresh_clone(origin, tmp_path / "after")
    assert git(check, "log", "-1", "--format=%s").strip() == "promstack: deploy prompt 42"
    with Client(check / ".promstack" / "promstack.db") as client:
        assert client.labels(42)["production"] == 2
        move = client.label_history(42, "production")[0]
        assert (move.from_version, move.to_version, move.actor) == (1, 2, "github-actions")
        assert client.get_prompt(42, label="production").template.startswith("전문가로서 답변하세요. 예시 포함.")
    # With the key the developer holds, the committed store matches the head the log printed.
    shutil.copy(dev / ".promstack" / "audit.key", check / ".promstack" / "audit.key")
    with Client(check / ".promstack" / "promstack.db") as client:
        assert client.audit_report(expect=printed).ok
        assert client.audit_report().head == printed


def test_without_the_audit_key_secret_the_workflow_stops_and_writes_nothing(repo, tmp_path):
    origin, dev = repo
    push_change(dev, "전문가로서 답변하세요. 예시 포함.\n질문: {{ input }}\n")
    workflow = yaml.safe_load((dev / ".github" / "workflows" / "prompts.yml").read_text(encoding="utf-8"))
    runner = fresh_clone(origin, tmp_path / "runner-test")
    before = (runner / ".promstack" / "promstack.db").read_bytes()
    (name, failed), = run_job(workflow, "test", runner)  # the secret is not set
    assert name == "Version the prompt files" and failed.returncode != 0
    assert "PROMSTACK_AUDIT_KEY" in failed.stderr and "Traceback" not in failed.stderr
    assert (runner / ".promstack" / "promstack.db").read_bytes() == before
    # No second chain was started with a key of the runner's own, and no key file was made.
    assert not (runner / ".promstack" / "audit.key").exists()
    with Client(runner / ".promstack" / "promstack.db") as client:
        assert [v.version for v in client.history(42)] == [1]
    shutil.copy(dev / ".promstack" / "audit.key", runner / ".promstack" / "audit.key")
    with Client(runner / ".promstack" / "promstack.db") as client:
        assert client.verify_audit()[0]


def test_a_failing_quality_score_stops_the_workflow(repo, tmp_path, scripted):  # noqa: F811
    origin, dev = repo
    push_change(dev, "짧게 답하세요: {{ input }}\n")
    # The model under test now answers badly; the judge still judges.
    scripted.responder = lambda request: "bad answer" if request.get("model") == "good" else respond(request)
    workflow = yaml.safe_load((dev / ".github" / "workflows" / "prompts.yml").read_text(encoding="utf-8"))
    test_job = run_job(workflow, "test", fresh_clone(origin, tmp_path / "runner-test"), audit_secret(dev))
    name, failed = test_job[-1]
    assert name == "Run batch tests" and failed.returncode == 1 and "FAILED" in failed.stdout
    # The score gate on its own refuses too (the seed's `[ $score -lt 80 ]`).
    score_step = next(s["run"] for s in workflow["jobs"]["test"]["steps"] if s.get("name") == "Check quality score")
    fake_job = {"env": workflow["env"], "jobs": {"t": {"steps": [{"name": "score", "run": score_step}]}}}
    (_, result), = run_job(fake_job, "t", tmp_path / "runner-test", audit_secret(dev))
    assert result.returncode == 1
    # `needs: test`: the deploy job does not run; production still serves v1 in the repository.
    check = fresh_clone(origin, tmp_path / "after")
    with Client(check / ".promstack" / "promstack.db") as client:
        assert client.labels(42)["production"] == 1
