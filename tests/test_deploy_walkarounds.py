"""Gates that cannot be walked around: every way a gated environment's label moves (label set
from the SDK, CLI, MCP and the dashboard, an A/B test's winner, a rollout reaching 100%, an
import, the store itself) goes through the gate or is forced with a reason; the optional order
of environments; the production gate's batch tests; which test run a gate may reuse.

The model under test and the judge are the scripted fake (tests/test_evals_fake.py): prompt 42
v1 (`openai/good`) passes the seed's suite, v2 (`openai/bad`) does not, v3 (`openai/good`) does."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_deploy_fixtures import _scripted_server, scripted, workspace  # noqa: F401 - fixtures

from promstack import Client, InvalidInput, deploy
from promstack.cli import cli
from promstack.deploy import GateFailed, abtest, rollout
from promstack.evals import engine

ROOT = Path(__file__).resolve().parent.parent


def add_config(root, text: str) -> None:
    path = root / ".promstack" / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def dump(client) -> str:
    return "\n".join(client.store.db.conn.iterdump())


def served(client) -> list:
    """What users are served: labels, their history and splits (a gate's own test run may be new)."""
    db = client.store.db
    return [db.execute(f"SELECT * FROM {table}").fetchall() for table in ("labels", "label_history", "splits")]


def actions(client, prompt=42):
    return [e["action"] for e in client.audit_log(prompt, limit=500)]


@pytest.fixture
def seeded(workspace, client):  # noqa: F811
    """Prompt 42: v1 answers well, v2 badly, v3 well again."""
    client.save(42, "나쁜 버전: {{ input }}", model_config={"model": "openai/bad"}, message="worse")
    client.save(42, "다시 좋은 버전: {{ input }}", model_config={"model": "openai/good"}, message="better")
    return workspace


# ---- label set: SDK, store, CLI, MCP, dashboard ------------------------------------------------


def test_sdk_set_label_on_production_runs_the_gate(seeded, client):
    before = client.label_history(42)
    with pytest.raises(GateFailed) as refused:
        client.set_label(42, "production", 2)
    text = str(refused.value)
    assert "the production gate refused support/answer v2" in text and "production still serves nothing" in text
    assert "(run " in text  # which run it used
    assert "production" not in client.labels(42) and client.label_history(42) == before
    [d] = deploy.list_deployments(client, 42, env="production")
    assert (d["kind"], d["status"]) == ("label", "refused")
    move = client.set_label(42, "production", 1, reason="release 1")
    assert (move.label, move.from_version, move.to_version, move.reason) == ("production", None, 1, "release 1")
    passed = deploy.list_deployments(client, 42, env="production")[0]
    assert (passed["kind"], passed["status"], passed["forced"]) == ("label", "deployed", False)
    assert passed["gate"]["passed"] and passed["gate"]["run"]["id"]
    # A label that is not an environment, and an environment without a gate, move freely.
    assert client.set_label(42, "canary", 2).to_version == 2
    assert client.set_label(42, "development", 2).to_version == 2


def test_force_needs_a_reason_and_is_recorded_and_audited(seeded, client):
    before = dump(client)
    for reason in (None, "  "):
        with pytest.raises(InvalidInput, match="needs a reason"):
            client.set_label(42, "production", 2, force=True, reason=reason)
    assert dump(client) == before
    move = client.set_label(42, "production", 2, force=True, reason="hotfix, judge is down")
    assert move.to_version == 2 and move.reason == "hotfix, judge is down"
    [d] = deploy.list_deployments(client, 42, env="production")
    assert (d["kind"], d["status"], d["forced"], d["reason"]) == ("label", "deployed", True, "hotfix, judge is down")
    forced = [e for e in client.audit_log(42) if e["action"] == "deploy_forced"]
    assert forced and forced[0]["detail"]["reason"] == "hotfix, judge is down"


def test_the_store_refuses_a_move_the_engine_did_not_clear(seeded, client):
    before = dump(client)
    with pytest.raises(InvalidInput, match="production is a gated environment"):
        client.store.prompts.set_label(42, "production", 2)
    assert dump(client) == before
    client.store.prompts.set_label(42, "beta", 2)  # any other label: free
    # Removing a label, and rolling a label back to a version it served, stay allowed.
    client.set_label(42, "production", 1, force=True, reason="first")
    client.set_label(42, "production", 3, force=True, reason="second")
    assert client.rollback_label(42, "production").to_version == 1
    assert client.remove_label(42, "production").to_version is None


def test_cli_label_set_goes_through_the_gate(seeded):
    runner = CliRunner()
    refused = runner.invoke(cli, ["label", "set", "42", "production", "2"])
    assert refused.exit_code == 1, refused.output
    assert "the production gate refused" in refused.output and "judge score" in refused.output
    no_reason = runner.invoke(cli, ["label", "set", "42", "production", "2", "--force"])
    assert no_reason.exit_code == 2 and "needs a reason (--reason)" in no_reason.output
    ok = runner.invoke(cli, ["label", "set", "42", "production", "1", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["to_version"] == 1 and json.loads(ok.output)["deployment"]
    forced = runner.invoke(cli, ["label", "set", "42", "production", "2", "--force", "-r", "hotfix"])
    assert forced.exit_code == 0 and "FORCED" in forced.output
    with Client() as client:
        assert client.labels(42)["production"] == 2


@pytest.mark.anyio
async def test_mcp_set_label_goes_through_the_gate(seeded, mcp):
    refused = await mcp.call_tool("set_label", {"prompt": 42, "label": "production", "version": 2})
    assert refused.is_error and "the production gate refused support/answer v2" in refused.content[0].text
    assert "force with a reason" in refused.content[0].text
    moved = await mcp.call_tool("set_label", {"prompt": 42, "label": "production", "version": 1})
    assert not moved.is_error and moved.structured_content["to_version"] == 1


def test_dashboard_label_form_goes_through_the_gate(seeded, client):
    from promstack.web.dashboard import do_label

    with pytest.raises(GateFailed, match="production gate refused"):
        do_label(client, 42, "production", 2, "from the page")
    with pytest.raises(InvalidInput, match="needs a reason"):
        do_label(client, 42, "production", 2, "", force=True)
    assert "production" not in client.labels(42)
    assert "forced" in do_label(client, 42, "production", 2, "hotfix", force=True)
    assert client.labels(42)["production"] == 2


def test_an_environment_that_waits_for_approval_keeps_waiting(seeded, client):
    add_config(seeded, "[environments.production]\nmin_score = 80\napproval = true\n")
    with pytest.raises(deploy.DeployPending, match="waits for approval"):
        client.set_label(42, "production", 1)
    assert "production" not in client.labels(42)
    assert deploy.list_deployments(client, 42, status="pending_approval")


# ---- A/B tests, rollouts, merge, import ---------------------------------------------------------


def test_ab_start_in_a_gated_environment_checks_the_arms(seeded, client):
    deploy.deploy(client, 42, version=1, env="production")
    before = served(client)
    with pytest.raises(GateFailed, match=r"v2 \(arm B\) did not pass the production gate.*no A/B test"):
        abtest.start(client, 42, a=1, b=2, env="production")
    assert served(client) == before
    runner = CliRunner()
    cli_refused = runner.invoke(cli, ["ab", "start", "--prompt", "42", "--a", "1", "--b", "2", "--env",
                                      "production", "-q"])
    assert cli_refused.exit_code == 1 and "did not pass the production gate" in cli_refused.output
    started = abtest.start(client, 42, a=1, b=3, env="production")
    assert started["detail"]["gates"]["b"]["passed"]
    stopped = abtest.stop(client, 42, winner="b", env="production")
    assert client.labels(42)["production"] == 3
    winner = deploy.get_deployment(client, stopped["deployment"])
    assert winner["kind"] == "ab_winner" and not winner["forced"] and winner["gate"]["passed"]


def test_ab_stop_winner_must_have_passed_the_gate(seeded, client):
    # The test starts while staging has no gate; by the time it stops, staging has one again.
    add_config(seeded, "[environments.staging]\n")
    deploy.deploy(client, 42, version=1, env="staging")
    abtest.start(client, 42, a=1, b=2)
    (seeded / ".promstack" / "config.toml").write_text(
        (seeded / ".promstack" / "config.toml").read_text(encoding="utf-8").replace("[environments.staging]\n", ""),
        encoding="utf-8")
    before = dump(client)
    with pytest.raises(GateFailed, match=r"v2 \(arm B\) has not passed the staging gate"):
        abtest.stop(client, 42, winner="b")
    assert dump(client) == before
    with pytest.raises(InvalidInput, match="needs a reason"):
        abtest.stop(client, 42, winner="b", force=True)
    out = CliRunner().invoke(cli, ["ab", "stop", "--prompt", "42", "--winner", "b"])
    assert out.exit_code == 1 and "has not passed the staging gate" in out.output
    stopped = abtest.stop(client, 42, winner="b", force=True, reason="users prefer it")
    assert client.labels(42)["staging"] == 2
    assert deploy.get_deployment(client, stopped["deployment"])["forced"]
    assert "deploy_forced" in actions(client)


def test_ab_start_forced_with_a_reason(seeded, client):
    with pytest.raises(InvalidInput, match="needs a reason"):
        abtest.start(client, 42, a=1, b=2, env="production", force=True)
    abtest.start(client, 42, a=1, b=2, env="production", force=True, reason="measure the bad one")
    assert "deploy_forced" in actions(client)
    stopped = abtest.stop(client, 42, winner="b", env="production")
    assert deploy.get_deployment(client, stopped["deployment"])["forced"]  # it never passed


def test_a_rollout_reaches_100_only_with_its_gate_on_record(seeded, client):
    deploy.deploy(client, 42, version=1, env="production")
    started = deploy.deploy(client, 42, version=3, env="production", rollout=10)
    assert started["status"] == "rolling_out" and started["gate"]["passed"]
    # A rollout whose deployment has no passing gate (a record changed behind the engine's back)
    from store import deploy as rows
    from store.db import write

    with write(client.store.db):
        rows.update_deployment(client.store.db, started["id"], gate={"passed": False, "checks": []})
    before = dump(client)
    with pytest.raises(GateFailed, match="no passing production gate on record for v3"):
        rollout.promote(client, 42, to=100)
    assert dump(client) == before
    with write(client.store.db):
        rows.update_deployment(client.store.db, started["id"], gate=started["gate"])
    done = rollout.promote(client, 42, to=100)
    assert done["status"] == "completed" and client.labels(42)["production"] == 3


def test_a_merge_never_moves_a_gated_label(seeded, client):
    deploy.deploy(client, 42, version=1, env="production")
    client.create_branch(42, "shorter", from_version=3)
    client.save(42, "짧게: {{ input }}", branch="shorter")
    merged = client.merge(42, "shorter")
    assert merged.source == "merge"
    assert client.labels(42)["production"] == 1
    assert [m.to_version for m in client.label_history(42, "production")] == [1]


def test_an_import_does_not_take_gated_labels_silently(seeded, client, tmp_path):
    client.set_label(42, "production", 1)
    client.set_label(42, "canary", 3)
    document = json.loads(json.dumps(client.export()))
    with Client(tmp_path / "fresh" / ".promstack" / "promstack.db") as fresh:
        before = dump(fresh)
        with pytest.raises(InvalidInput, match="points production of 'support/answer' at v1.*nothing was imported"):
            fresh.import_(document)
        with pytest.raises(InvalidInput, match="needs a reason"):
            fresh.import_(document, force=True)
        assert dump(fresh) == before
        counts = fresh.import_(document, force=True, reason="restore the backup")
        assert counts["labels"] == 2 and fresh.labels(42)["production"] == 1
        [d] = deploy.list_deployments(fresh, 42)
        assert (d["kind"], d["environment"], d["forced"], d["reason"]) == ("import", "production", True,
                                                                            "restore the backup")
        assert "deploy_forced" in [e["action"] for e in fresh.audit_log()]
        assert fresh.verify_audit()[0]


def test_cli_import_of_a_store_needs_force_and_a_reason(seeded, client, tmp_path, monkeypatch):
    client.set_label(42, "production", 1)
    backup = tmp_path / "backup.json"
    backup.write_text(json.dumps(client.export()), encoding="utf-8")
    (tmp_path / "other" / ".promstack").mkdir(parents=True)
    monkeypatch.setenv("PROMSTACK_DB", str(tmp_path / "other" / ".promstack" / "promstack.db"))
    Client().close()
    runner = CliRunner()
    refused = runner.invoke(cli, ["import", str(backup)])
    assert refused.exit_code == 2 and "gated environment" in refused.output
    assert runner.invoke(cli, ["import", str(backup), "--force"]).exit_code == 2
    ok = runner.invoke(cli, ["import", str(backup), "--force", "--reason", "move machines"])
    assert ok.exit_code == 0, ok.output


def test_the_example_workspace_still_builds(tmp_path):
    spec = importlib.util.spec_from_file_location("make_workspace", ROOT / "examples" / "make_workspace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document = module.build(tmp_path / ".promstack" / "promstack.db")
    labels = {item["name"]: item["version"] for item in document["prompts"][1]["labels"]}
    assert labels == {"production": 2, "staging": 3}


# ---- require_previous ---------------------------------------------------------------------------


def test_require_previous_names_the_missing_environment(seeded, client, scripted):  # noqa: F811
    add_config(seeded, "[deploy]\nrequire_previous = true\n")
    assert [e.after for e in deploy.environments(client)] == [None, "development", "test", "staging"]
    calls = sum(scripted.counts.values())
    refused = deploy.deploy(client, 42, version=1, env="production")
    assert refused["status"] == "refused"
    [check] = [c for c in refused["gate"]["checks"] if not c["passed"]]
    assert check["check"] == "previous"
    assert check["detail"] == "v1 has not passed staging; run `promstack deploy --prompt 42 --version 1 --env staging` first"
    assert sum(scripted.counts.values()) == calls  # out of order: no model was asked
    with pytest.raises(GateFailed, match="v1 has not passed staging"):
        client.set_label(42, "production", 1)
    out = CliRunner().invoke(cli, ["deploy", "--prompt", "42", "--version", "1", "--env", "staging", "-q"])
    assert out.exit_code == 1 and "v1 has not passed test; deploy it there first ('promstack deploy --prompt 42" in out.output
    # In order: development (no gate: being there is enough), test, staging, production.
    client.set_label(42, "development", 1)
    for env in ("test", "staging", "production"):
        assert deploy.deploy(client, 42, version=1, env=env)["status"] == "deployed", env
    # A version forced into staging has not passed it.
    client.set_label(42, "development", 3)
    deploy.deploy(client, 42, version=3, env="test")
    deploy.deploy(client, 42, version=3, env="staging", force=True, reason="hotfix")
    again = deploy.deploy(client, 42, version=3, env="production")
    assert again["status"] == "refused" and "v3 has not passed staging" in again["gate"]["checks"][0]["detail"]


@pytest.mark.anyio
async def test_mcp_says_the_missing_environment_in_its_own_words(seeded, mcp):
    add_config(seeded, "[deploy]\nrequire_previous = true\n")
    result = await mcp.call_tool("deploy_prompt", {"prompt": 42, "version": 1, "environment": "production"})
    text = result.content[0].text
    assert result.structured_content["status"] == "refused"
    assert "v1 has not passed staging; deploy it there first (deploy_prompt" in text and "promstack" not in text


def test_require_previous_must_be_true_or_false(seeded, client):
    add_config(seeded, '[deploy]\nrequire_previous = "yes"\n')
    before = dump(client)
    with pytest.raises(InvalidInput, match="require_previous in \\[deploy\\] must be true or false"):
        deploy.deploy(client, 42, version=1, env="staging")
    assert dump(client) == before


# ---- the production gate: tests AND score AND alerts --------------------------------------------


def extra_cases(root) -> None:
    """Two more cases: one every good answer passes, one no answer passes. v1 then scores 80
    (the mean of 100, 100, 100, 100 and 0) with a pass rate of 80%."""
    csv = root / "tests" / "prompts" / "regression.csv"
    csv.write_text(csv.read_text(encoding="utf-8") + '"좋은 답?","contains: GOOD"\n'
                   '"주문 번호는?","contains: 절대 나오지 않는 문장"\n', encoding="utf-8")


def test_production_checks_the_batch_tests_as_well(seeded, client):
    assert deploy.environment(client, "production").checks == ["tests", "score", "alerts"]
    extra_cases(seeded)
    result = deploy.deploy(client, 42, version=1, env="production")
    assert result["status"] == "refused"
    checks = {c["check"]: c for c in result["gate"]["checks"]}
    assert not checks["tests"]["passed"] and "pass rate 80% < 100%" in checks["tests"]["detail"]
    assert checks["score"]["passed"] and checks["alerts"]["passed"]


# ---- which run a gate may reuse -----------------------------------------------------------------


def test_a_failing_run_is_not_reused(seeded, client):
    failing = engine.evaluate(client, 42, version=2)["run"]["id"]
    result = deploy.deploy(client, 42, version=2, env="staging")
    assert result["status"] == "refused"
    assert result["gate"]["run"]["id"] != failing and result["gate"]["run"]["reused"] is False  # ran afresh
    assert f"(run {result['gate']['run']['id']})" in deploy.refusal(result)


def test_a_passing_run_is_reused_and_rerun_runs_afresh(seeded, client, scripted):  # noqa: F811
    passing = engine.evaluate(client, 42, version=1)["run"]["id"]
    calls = sum(scripted.counts.values())
    reused = deploy.deploy(client, 42, version=1, env="staging")
    assert reused["gate"]["run"] == {"id": passing, "reused": True, "suite": "regression"}
    assert sum(scripted.counts.values()) == calls
    fresh = deploy.deploy(client, 42, version=1, env="production", rerun=True)
    assert fresh["status"] == "deployed" and fresh["gate"]["run"]["id"] != passing
    assert fresh["gate"]["run"]["reused"] is False
    out = CliRunner().invoke(cli, ["deploy", "--prompt", "42", "--version", "1", "--env", "test", "--rerun", "-q",
                                   "--json"])
    assert out.exit_code == 0 and json.loads(out.output)["gate"]["run"]["reused"] is False


def test_a_run_with_another_judge_is_not_reused(seeded, client):
    other = engine.evaluate(client, 42, version=1, judge_model="openai/judge-logprobs")["run"]["id"]
    result = deploy.deploy(client, 42, version=1, env="staging")
    assert result["status"] == "deployed" and result["gate"]["run"]["id"] != other
    assert result["gate"]["run"]["reused"] is False


def test_a_run_that_misses_this_environments_bar_is_not_reused(seeded, client):
    # A run of v1 passes staging (score only), not production (the tests too).
    extra_cases(seeded)
    staging = deploy.deploy(client, 42, version=1, env="staging")
    assert staging["status"] == "deployed"
    production = deploy.deploy(client, 42, version=1, env="production")
    assert production["status"] == "refused"
    assert production["gate"]["run"]["id"] != staging["gate"]["run"]["id"]
    assert production["gate"]["run"]["reused"] is False


@pytest.mark.anyio
async def test_mcp_deploy_prompt_can_rerun(seeded, client, mcp):
    import anyio

    passing = (await anyio.to_thread.run_sync(lambda: engine.evaluate(client, 42, version=1)))["run"]["id"]
    reused = await mcp.call_tool("deploy_prompt", {"prompt": 42, "version": 1, "environment": "staging"})
    assert f"run {passing} (reused)" in json.dumps(reused.structured_content, ensure_ascii=False)
    fresh = await mcp.call_tool("deploy_prompt", {"prompt": 42, "version": 1, "environment": "production",
                                                  "rerun": True})
    assert fresh.structured_content["status"] == "deployed"
    assert "(reused)" not in json.dumps(fresh.structured_content, ensure_ascii=False)
