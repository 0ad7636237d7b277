"""CI without a database in git: the workflow `promstack ci init` writes, run as `bash -e`
scripts in a checkout that holds only prompt files and a suite, against a real `promstack serve`
(the fake LLM as the model): the prompt files become versions on the server, the suite runs
there, the score gates, and the deploy moves the server's production label. Nothing is written
into the checkout's git. Also: the CLI with PROMSTACK_URL, and a server that is down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from team_server import free_port, serve
from test_deploy_fixtures import _scripted_server, scripted  # noqa: F401 - fixtures
from test_deploy_workflow import run_job
from test_evals_fake import SEED_CSV, write_config

from promstack import Client
from promstack.cli.deploy import workflow_text

TOKEN = "ci-token-of-at-least-sixteen-chars"
BIN = Path(sys.executable).parent


def team_server(spawn, tmp_path, scripted):  # noqa: F811
    from store.workspace import init

    root = tmp_path / "team"
    db = init(root)
    write_config(root, scripted.base_url)
    with Client(db) as client:
        client.create_prompt("support/answer", "전문가로서 답변하세요.\n질문: {{ input }}\n", id=42,
                             model_config={"model": "openai/good"})
        client.set_label(42, "production", 1, force=True, reason="the first release, before any suite")
    return serve(spawn, root, token=TOKEN)


def checkout(tmp_path: Path) -> Path:
    """A clone of the prompts repository: prompt files and the regression suite, no store."""
    work = tmp_path / "checkout"
    (work / "prompts" / "support").mkdir(parents=True)
    (work / "prompts" / "support" / "answer.txt").write_text("전문가로서 답변하세요. 예시 포함.\n질문: {{ input }}\n",
                                                             encoding="utf-8")
    (work / "tests" / "prompts").mkdir(parents=True)
    (work / "tests" / "prompts" / "regression.csv").write_text(SEED_CSV, encoding="utf-8")
    (work / "tests" / "prompts" / "regression.yml").write_text("prompt: 42\njudge_model: openai/judge\n",
                                                               encoding="utf-8")
    return work


def test_the_workflow_tests_gates_and_deploys_on_the_server(spawn, tmp_path, scripted, monkeypatch):  # noqa: F811
    url = team_server(spawn, tmp_path, scripted)
    work = checkout(tmp_path)
    workflow = yaml.safe_load(workflow_text(42))
    assert "git push" not in workflow_text(42) and ".promstack/promstack.db" not in workflow_text(42)
    # The CI job's own model key and provider: its tests run where the job runs (here the fake LLM).
    monkeypatch.setenv("OPENAI_API_BASE", scripted.base_url)
    secrets = {"PROMSTACK_URL": url, "PROMSTACK_TOKEN": TOKEN, "OPENAI_API_KEY": "sk-the-ci-jobs-own"}

    tested = run_job(workflow, "test", work, secrets)
    for name, result in tested:
        assert result.returncode == 0, (name, result.stdout, result.stderr)
    assert [name for name, _ in tested] == ["Version the prompt files", "Run batch tests",
                                            "Check quality score"]
    assert "Imported support/answer v2" in tested[0][1].stdout
    assert "PASSED" in tested[1][1].stdout
    assert int(tested[2][1].stdout.strip() or 0) >= 80 or tested[2][1].returncode == 0

    deployed = run_job(workflow, "deploy", work, secrets)
    for name, result in deployed:
        assert result.returncode == 0, (name, result.stdout, result.stderr)
    assert "Deployed support/answer v2 to production (was v1)" in deployed[0][1].stdout
    # The gate used the run the CI job made and uploaded (evaluate's), not a run of its own.
    assert "(reused)" in deployed[0][1].stdout
    # The server's audit log, checked there, its head printed in the job's log.
    assert [name for name, _ in deployed] == ["Deploy to production", "Verify the audit log and print its head"]
    assert re.search(r"^audit head \d+:[0-9a-f]{64}$", deployed[1][1].stdout, re.M), deployed[1][1].stdout
    run_id = re.search(r"^Run (r\S+):", tested[1][1].stdout, re.M).group(1)
    with Client(url=url, token=TOKEN) as client:
        assert client.get_run(run_id)["status"] == "done" and client.get_run(run_id)["prompt_version"] == 2
        assert client.labels(42)["production"] == 2
        assert client.get_prompt(42, label="production").template.startswith("전문가로서 답변하세요. 예시 포함.")
    assert not (work / ".promstack").exists()  # no store in the checkout


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("PROMSTACK_DB",)}
    full.update(env)
    return subprocess.run([str(BIN / "promstack"), *args], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=120)


def test_the_cli_over_a_server_prints_what_it_prints_locally(spawn, tmp_path, scripted):  # noqa: F811
    url = team_server(spawn, tmp_path, scripted)
    remote = {"PROMSTACK_URL": url, "PROMSTACK_TOKEN": TOKEN}
    local = {"PROMSTACK_DB": str(tmp_path / "team" / ".promstack" / "promstack.db")}
    for args in (["prompt", "list"], ["history", "42"], ["prompt", "show", "42", "--version", "1"]):
        there, here = cli(*args, env=remote, cwd=tmp_path), cli(*args, env=local, cwd=tmp_path)
        assert there.returncode == here.returncode == 0, there.stderr + here.stderr
        assert there.stdout == here.stdout
    saved = cli("prompt", "update", "42", "--template", "새 버전: {{ input }}", env=remote, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    missing = cli("history", "nothing/here", env=remote, cwd=tmp_path)
    assert missing.returncode == 2 and "nothing/here" in missing.stderr and "Traceback" not in missing.stderr


def test_a_server_that_is_down_is_named_with_exit_2(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("prompt", "list", env={"PROMSTACK_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"promstack: could not reach {url}: connection refused"


def test_a_run_uploaded_twice_is_stored_once(spawn, tmp_path, scripted):  # noqa: F811
    import httpx

    url = team_server(spawn, tmp_path, scripted)
    with Client(url=url, token=TOKEN) as client:
        client.import_suite(SEED_CSV, fmt="csv", name="regression", prompt=42)
    run = {"id": "r20261205-120000-abcdef", "kind": "test", "suite_name": "regression", "prompt_id": 42,
           "prompt_version": 1, "models": ["openai/good"], "status": "done", "total": 0,
           "summary": {"results": 0, "total": 0}}
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    first = api.post("/runs/upload", json={"run": run, "results": []})
    assert first.status_code == 201 and first.json()["created"] is True, first.text
    again = api.post("/runs/upload", json={"run": {**run, "prompt_version": 9}, "results": []})
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["run"]["prompt_version"] == 1  # kept as it was
    stranger = api.post("/runs/upload", json={"run": {**run, "id": "r20261205-120001-abcdef"},
                                              "results": [{"case_key": "not-a-case", "model": "m", "repeat": 0}]})
    assert stranger.status_code == 400 and "upload the suite file" in stranger.json()["error"]["message"]
    bad = api.post("/runs/upload", json={"run": {**run, "id": "../x"}, "results": []})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "InvalidInput"
    api.close()


def test_an_interrupted_run_uploaded_is_completed_by_its_resumed_upload(spawn, tmp_path, scripted):  # noqa: F811
    """A run interrupted here is uploaded as it stands (to be resumed on any machine); the upload
    of the same run resumed completes it, and after that an upload changes nothing."""
    import httpx

    url = team_server(spawn, tmp_path, scripted)
    with Client(url=url, token=TOKEN) as client:
        client.import_suite(SEED_CSV, fmt="csv", name="regression", prompt=42)
        keys = [c["case_key"] for c in client.show_suite("regression")["cases"]]
    result = {"case_idx": 0, "case_key": keys[0], "model": "openai/good", "repeat": 0, "status": "pass", "output": "ok",
              "finished_at": "2026-12-05T13:00:00Z"}
    run = {"id": "r20261205-130000-abcdef", "kind": "test", "suite_name": "regression", "prompt_id": 42,
           "prompt_version": 1, "models": ["openai/good"], "status": "interrupted", "total": 3}
    api = httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert api.post("/runs/upload", json={"run": run, "results": [result]}).status_code == 201
    assert [r["case_key"] for r in api.get(f"/runs/{run['id']}/results").json()] == keys[:1]
    finished = [{**result, "case_idx": i, "case_key": key} for i, key in enumerate(keys)]
    done = api.post("/runs/upload", json={"run": {**run, "status": "done"}, "results": finished})
    assert done.status_code == 201 and done.json()["run"]["status"] == "done", done.text
    assert sorted(r["case_key"] for r in api.get(f"/runs/{run['id']}/results").json()) == sorted(keys)
    again = api.post("/runs/upload", json={"run": {**run, "status": "interrupted"}, "results": [result]})
    assert again.status_code == 200 and again.json()["run"]["status"] == "done"
    assert len(api.get(f"/runs/{run['id']}/results").json()) == 3
    missing = api.get("/runs/r20000101-000000-000000/results")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    api.close()
