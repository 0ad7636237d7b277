"""Gated deploys: the gate passing and failing, approval, rollback, forced deploys, bad input,
and the same engine through the CLI, MCP and the REST API. The model under test and the judge
are the scripted fake (tests/test_evals_fake.py): `openai/good` passes the seed's suite, `openai/bad`
does not."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_deploy_fixtures import _scripted_server, scripted, workspace  # noqa: F401 - fixtures

from promstack import Client, InvalidInput, NotFound, deploy
from promstack.cli import cli
from store import deploy as deploy_rows


def add_config(root, text: str) -> None:
    path = root / ".promstack" / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


@pytest.fixture
def seeded(workspace, client):  # noqa: F811
    """Prompt 42: v1 answers well, v2 badly."""
    client.save(42, "나쁜 버전: {{ input }}", model_config={"model": "openai/bad"}, message="worse")
    return workspace


def audit_actions(client, prompt=42):
    return [e["action"] for e in client.audit_log(prompt, limit=200)]


def test_gate_passes_and_moves_the_label_with_who_what_why(seeded, client):
    result = deploy.deploy(client, 42, version=1, env="staging", reason="first release")
    assert result["status"] == "deployed"
    assert client.labels(42)["staging"] == 1
    checks = {c["check"]: c for c in result["gate"]["checks"]}
    assert checks["score"]["passed"] and checks["score"]["value"] == 100
    assert checks["alerts"]["passed"]
    move = client.label_history(42, "staging")[0]
    assert (move.from_version, move.to_version, move.actor, move.reason) == (None, 1, "tester", "first release")
    assert {"deploy", "set_label"} <= set(audit_actions(client))
    assert client.verify_audit()[0]


def test_gate_fails_and_nothing_moves(seeded, client):
    deploy.deploy(client, 42, version=1, env="staging")
    before = client.label_history(42)
    result = deploy.deploy(client, 42, version=2, env="staging")
    assert result["status"] == "refused"
    failed = [c for c in result["gate"]["checks"] if not c["passed"]]
    assert [c["check"] for c in failed] == ["score"] and "< 80" in failed[0]["detail"]
    assert client.labels(42)["staging"] == 1
    assert client.label_history(42) == before
    assert "deploy_refused" in audit_actions(client)
    assert deploy_rows.lock_holder(client.store.db, 42) is None


def test_tests_check_uses_min_pass(seeded, client):
    result = deploy.deploy(client, 42, version=2, env="test")
    assert result["status"] == "refused"
    assert result["gate"]["checks"][0]["check"] == "tests" and "pass rate 0%" in result["gate"]["checks"][0]["detail"]
    assert deploy.deploy(client, 42, version=1, env="test")["status"] == "deployed"


def test_a_finished_run_of_the_same_version_is_reused(seeded, client, scripted):  # noqa: F811
    from promstack.evals import engine

    engine.evaluate(client, 42, version=1)
    calls = sum(scripted.counts.values())
    result = deploy.deploy(client, 42, version=1, env="production")
    assert result["status"] == "deployed"
    assert "(reused)" in result["gate"]["checks"][0]["detail"]
    assert sum(scripted.counts.values()) == calls  # no model was called again


def test_force_skips_the_gate_and_is_audited(seeded, client):
    with pytest.raises(InvalidInput, match="needs force=True"):
        deploy.deploy(client, 42, version=2, env="staging", skip=["score"])
    result = deploy.deploy(client, 42, version=2, env="staging", force=True, skip=["score"], reason="judge down")
    assert result["status"] == "deployed" and result["forced"] and result["skipped"] == ["score"]
    assert [c for c in result["gate"]["checks"] if c.get("skipped")][0]["check"] == "score"
    forced = [e for e in client.audit_log(42, limit=50) if e["action"] == "deploy_forced"]
    assert forced and forced[0]["detail"]["skipped"] == ["score"] and forced[0]["detail"]["reason"] == "judge down"


def test_bad_input_leaves_everything_as_it_was(seeded, client):
    labels = client.labels(42)
    with pytest.raises(NotFound, match="no version 9; its newest is 2"):
        deploy.deploy(client, 42, version=9, env="staging")
    with pytest.raises(InvalidInput, match="no environment 'prod'.*development, test, staging, production"):
        deploy.deploy(client, 42, version=1, env="prod")
    with pytest.raises(NotFound, match="no prompt 4242"):
        deploy.deploy(client, 4242, env="staging")
    with pytest.raises(InvalidInput, match="no gate check 'vibes'"):
        deploy.deploy(client, 42, version=1, env="staging", force=True, skip=["vibes"])
    assert client.labels(42) == labels
    assert deploy.list_deployments(client, 42) == []


def test_approval_waits_for_another_person(seeded, client, isolated_store):
    add_config(seeded, "[environments.production]\nmin_score = 80\napproval = true\n")
    pending = deploy.deploy(client, 42, version=1, env="production", reason="release 1")
    assert pending["status"] == "pending_approval"
    assert "production" not in client.labels(42)
    with pytest.raises(InvalidInput, match="someone else must approve"):
        deploy.approve(client, pending["id"])
    with Client(isolated_store, actor="lead") as lead:
        done = deploy.approve(lead, pending["id"])
        assert done["status"] == "deployed" and done["decided_by"] == "lead"
        assert lead.labels(42)["production"] == 1
        with pytest.raises(InvalidInput, match="is deployed, not waiting"):
            deploy.approve(lead, pending["id"])
    move = client.label_history(42, "production")[0]
    assert move.reason == "release 1"
    assert "deploy_approve" in audit_actions(client)


def test_rejected_deployment_moves_nothing(seeded, client, isolated_store):
    add_config(seeded, "[environments.production]\napproval = true\n")
    pending = deploy.deploy(client, 42, version=1, env="production")
    with Client(isolated_store, actor="lead") as lead:
        assert deploy.reject(lead, pending["id"], reason="not today")["status"] == "rejected"
    assert "production" not in client.labels(42)


def test_rollback_returns_to_the_previous_version_in_one_step(seeded, client):
    deploy.deploy(client, 42, version=1, env="production", force=True)
    deploy.deploy(client, 42, version=2, env="production", force=True)
    result = deploy.rollback(client, 42, env="production", reason="bad answers")
    assert result["kind"] == "rollback" and (result["from_version"], result["to_version"]) == (2, 1)
    assert client.labels(42)["production"] == 1
    history = deploy.list_deployments(client, 42, env="production")
    assert [d["status"] for d in history] == ["deployed", "rolled_back", "deployed"]
    assert client.label_history(42, "production")[0].reason == "bad answers"


def test_rollback_with_nothing_before_is_an_error(seeded, client):
    deploy.deploy(client, 42, version=1, env="development")
    with pytest.raises(InvalidInput, match="served only v1"):
        deploy.rollback(client, 42, env="development")
    with pytest.raises(NotFound, match="serves no version"):
        deploy.rollback(client, 42, env="staging")


def test_redeploying_the_same_version_changes_nothing(seeded, client):
    deploy.deploy(client, 42, version=1, env="development")
    again = deploy.deploy(client, 42, version=1, env="development")
    assert again["status"] == "unchanged"
    assert len(client.label_history(42, "development")) == 1


def test_environments_and_rules_come_from_config(seeded, client):
    add_config(seeded, '[deploy]\nenvironments = ["dev", "prod"]\n[environments.prod]\nmin_score = 90\n'
                       'check_alerts = false\n')
    envs = deploy.environments(client)
    assert [e.name for e in envs] == ["dev", "prod"]
    assert envs[1].checks == ["score"] and envs[1].min_score == 90
    assert deploy.deploy(client, 42, version=1)["environment"] == "prod"  # default: the last one
    add_config(seeded, "[environments.dev]\nmin_score = 500\n")
    with pytest.raises(InvalidInput, match="min_score in \\[environments.dev\\]"):
        deploy.environments(client)


def test_a_stale_lock_of_a_dead_process_is_taken_over(seeded, client):
    from store import deploy as rows
    from store.db import write

    with write(client.store.db):
        rows.take_lock(client.store.db, 42, "ghost", 99)
        client.store.db.execute("UPDATE deploy_locks SET pid = 999999999")
    assert deploy.deploy(client, 42, version=1, env="development")["status"] == "deployed"
    with write(client.store.db):
        rows.take_lock(client.store.db, 42, "someone", 98)
        client.store.db.execute("UPDATE deploy_locks SET pid = 1, host = 'elsewhere'")
    with pytest.raises(deploy.DeployBusy, match="being deployed by someone"):
        deploy.deploy(client, 42, version=2, env="development")


# ---- the faces ------------------------------------------------------------------------------------


def test_cli_exit_codes_and_output(seeded):
    runner = CliRunner()
    ok = runner.invoke(cli, ["deploy", "--prompt", "42", "--version", "1", "--env", "staging", "-q"])
    assert ok.exit_code == 0, ok.output
    assert "Deployed support/answer v1 to staging" in ok.output
    refused = runner.invoke(cli, ["deploy", "--prompt", "42", "--version", "2", "--env", "staging", "-q"])
    assert refused.exit_code == 1 and "the staging gate refused" in refused.output
    bad = runner.invoke(cli, ["deploy", "--prompt", "42", "--version", "1", "--env", "nope"])
    assert bad.exit_code == 2 and "no environment 'nope'" in bad.output
    skip = runner.invoke(cli, ["deploy", "--prompt", "42", "--skip", "score"])
    assert skip.exit_code == 2 and "needs --force" in skip.output
    back = runner.invoke(cli, ["deploy", "--prompt", "42", "--env", "staging", "--rollback"])
    assert back.exit_code == 2 and "served only v1" in back.output
    as_json = runner.invoke(cli, ["deploy", "--prompt", "42", "--version", "2", "--env", "staging", "--force",
                                  "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.output)["forced"] is True
    back = runner.invoke(cli, ["deploy", "--prompt", "42", "--env", "staging", "--rollback"])
    assert back.exit_code == 0 and "Rolled back staging of support/answer: v2 -> v1" in back.output
    listing = runner.invoke(cli, ["deploy", "list", "--prompt", "42"])
    assert listing.exit_code == 0 and "rollback" in listing.output


def test_cli_approve(seeded, monkeypatch):
    add_config(seeded, "[environments.production]\napproval = true\n")
    runner = CliRunner()
    asked = runner.invoke(cli, ["deploy", "--prompt", "42", "--version", "1", "--json"])
    deployment = json.loads(asked.output)
    assert deployment["status"] == "pending_approval"
    monkeypatch.setenv("PROMSTACK_USER", "lead")
    done = runner.invoke(cli, ["deploy", "approve", str(deployment["id"])])
    assert done.exit_code == 0, done.output
    assert "Deployed support/answer v1 to production" in done.output


@pytest.mark.anyio
async def test_mcp_deploy_prompt(seeded, isolated_store):
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    server = build_server(isolated_store)
    async with MCPClient(server, client_info=Implementation(name="pytest-client", version="1")) as session:
        result = await session.call_tool("deploy_prompt", {"prompt": 42, "version": 1, "environment": "staging"})
        assert not result.is_error, result.content
        assert result.structured_content["status"] == "deployed"
        refused = await session.call_tool("deploy_prompt", {"prompt": 42, "version": 2, "environment": "staging"})
        assert refused.structured_content["status"] == "refused"
        assert "the staging gate refused support/answer v2" in refused.content[0].text
        bad = await session.call_tool("deploy_prompt", {"prompt": 42, "environment": "prod"})
        assert bad.is_error and "no environment 'prod'" in bad.content[0].text
        back = await session.call_tool("deploy_prompt", {"prompt": 42, "environment": "staging", "rollback": True})
        assert back.is_error and "served only v1" in back.content[0].text
    server.engine.close()
