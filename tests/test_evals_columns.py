"""A suite whose columns do not give the prompt's variables is refused before any model call: the
walkthrough's `{{ question }}` against a suite of `input,expected_output` would otherwise call,
bill and fail every case as a model error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from promstack import InvalidInput
from promstack.cli import cli
from promstack.evals import engine

pytest_plugins = ("test_evals_fake",)


def _asked(server) -> int:
    return len(server.requests)


def test_a_variable_no_column_gives_refuses_the_run_before_any_call(workspace, client, scripted):
    client.save(42, "환불 절차를 안내하세요: {{ question }}", message="question")
    with pytest.raises(InvalidInput) as err:
        engine.run_tests(client, "regression")
    assert str(err.value) == (
        "prompt 'support/answer' v2 needs {{ question }}; the suite 'regression' has columns "
        "input, expected_output: rename the column or the variable"
    )
    assert _asked(scripted) == 0
    assert client.evals.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    result = CliRunner().invoke(cli, ["test", "--suite", "regression"])
    assert result.exit_code == 2
    assert "needs {{ question }}" in result.stderr and "columns input, expected_output" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _asked(scripted) == 0


def test_a_column_or_a_default_gives_the_variable(workspace, client, scripted):
    (workspace / "tests" / "prompts" / "regression.csv").write_text(
        'input,question,expected_output\n"a","환불하고 싶어요","contains:환불"\n', encoding="utf-8")
    client.save(42, "{{ question }} / {{ input }} / {{ tone }}",
                model_config={"model": "openai/good", "variables": {"tone": {"default": "polite"}}})
    run = engine.run_tests(client, "regression")
    assert run["status"] == "done" and _asked(scripted) >= 1


def test_the_arena_checks_the_columns_too(workspace, client, scripted):
    client.save(42, "환불 절차를 안내하세요: {{ question }}")
    from promstack.evals.arena import run_arena

    with pytest.raises(InvalidInput, match=r"needs \{\{ question \}\}; the suite 'regression' has columns input"):
        run_arena(client, suite="regression", models=["openai/good", "openai/bad"])
    assert _asked(scripted) == 0


@pytest.mark.anyio
async def test_an_mcp_client_reads_the_sentence(workspace, client, scripted, isolated_store):
    from mcp import Client as MCPClient
    from mcp_types import Implementation

    from mcp_server.server import build_server

    client.save(42, "환불 절차를 안내하세요: {{ question }}")
    server = build_server(isolated_store)
    try:
        async with MCPClient(server, client_info=Implementation(name="pytest-client", version="1")) as mcp:
            result = await mcp.call_tool("run_tests", {"suite": "regression"})
    finally:
        server.engine.close()
    assert result.is_error
    assert "needs {{ question }}; the suite 'regression' has columns input, expected_output" in result.content[0].text
    assert _asked(scripted) == 0
