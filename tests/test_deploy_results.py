"""One engine sentence per deploy outcome (promstack.deploy.results), worded by each face; the
rules the faces used to restate (a reason only where the engine demands one, the refusal as an
error); and the deploy package's own layering (rollout and A/B depend on the rest, never back).

The model under test and the judge are the scripted fake (tests/test_evals_fake.py): prompt 42
v1 (`openai/good`) passes the seed's suite, v2 (`openai/bad`) does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_deploy_fixtures import _scripted_server, scripted, workspace  # noqa: F401 - fixtures

from promstack import deploy
from promstack.cli import cli, cli_words
from promstack.deploy import GateFailed
from promstack.web import web_words
from promstack.web.dashboard import do_deploy, do_label

PACKAGE = Path(__file__).resolve().parent.parent / "promstack" / "deploy"


@pytest.fixture
def seeded(workspace, client):  # noqa: F811
    client.save(42, "나쁜 버전: {{ input }}", model_config={"model": "openai/bad"}, message="worse")
    return workspace


def test_the_dashboard_shows_why_the_gate_refused(seeded, client):
    # The dashboard once worded a refusal from a key the gate never sets, so it showed no reason.
    with pytest.raises(GateFailed) as refused:
        do_deploy(client, 42, 2, "staging", None)
    text = refused.value.worded(web_words)
    found = deploy.list_deployments(client, 42, status="refused")[0]
    [failed] = [c for c in found["gate"]["checks"] if not c["passed"]]
    assert failed["detail"] and failed["detail"] in text
    assert "the staging gate refused support/answer v2" in text and "staging still serves nothing" in text
    with pytest.raises(GateFailed) as label_refused:
        do_label(client, 42, "staging", 2, None)
    assert "judge score" in label_refused.value.worded(web_words)


def test_one_sentence_for_each_outcome_in_each_faces_words(seeded, client):
    deployed = deploy.deploy(client, 42, version=1, env="staging")
    assert deploy.describe(deployed) == deploy.describe(deployed, cli_words) == (
        f"Deployed support/answer v1 to staging (was nothing): deployment {deployed['id']}")
    assert do_deploy(client, 42, 1, "development", None).startswith("Deployed support/answer v1 to development")
    refused = deploy.deploy(client, 42, version=2, env="staging")
    assert deploy.describe(refused) == deploy.refusal(refused)
    assert "staging still serves v1" in deploy.describe(refused)
    pending = {**deployed, "status": "pending_approval"}
    assert f"'promstack deploy approve {deployed['id']}'" in deploy.describe(pending, cli_words)
    assert f"promstack.deploy.approve(client, {deployed['id']})" in deploy.describe(pending)
    with pytest.raises(deploy.DeployPending):
        deploy.raise_for(pending)
    assert deploy.raise_for(pending, pending_too=False) is pending
    assert deploy.raise_for(deployed) is deployed


def test_a_previous_check_is_worded_by_the_face(seeded, client):
    check = {"check": "previous", "passed": False, "version": 3, "environment": "staging",
             "detail": "v3 has not passed staging; run `promstack deploy --prompt 42 --version 3 --env staging` first"}
    assert deploy.check_text(check, 42, cli_words) == (
        "v3 has not passed staging; deploy it there first ('promstack deploy --prompt 42 --version 3 --env staging')")
    assert "promstack.deploy.deploy(client, 42, version=3, env='staging')" in deploy.check_text(check, 42)
    assert deploy.check_text({**check, "passed": True, "detail": "v3 passed staging"}, 42) == "v3 passed staging"


def test_force_needs_a_reason_only_where_the_engine_demands_one(seeded, client):
    # development has no gate: --force moves nothing past a gate, so no reason is asked for.
    out = CliRunner().invoke(cli, ["label", "set", "42", "development", "1", "--force"])
    assert out.exit_code == 0, out.output
    assert client.labels(42)["development"] == 1
    # production has one: the engine asks for the reason, in the CLI's words.
    out = CliRunner().invoke(cli, ["label", "set", "42", "production", "1", "--force"])
    assert out.exit_code == 2 and "needs a reason (--reason)" in out.output
    assert "production" not in client.labels(42)
