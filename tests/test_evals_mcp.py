"""The eval tools over MCP (in-memory client): import, run with progress, get, judge, evaluate,
arena and votes, with readable text and the engine's sentence on bad input."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp_types import Implementation
from test_evals_fake import SEED_CSV, SEED_JUDGE

from mcp_server.server import build_server

pytest_plugins = ("test_evals_fake",)
pytestmark = pytest.mark.anyio


@pytest.fixture
async def mcp(workspace, isolated_store):
    server = build_server(isolated_store)
    async with Client(server, client_info=Implementation(name="pytest-client", version="1")) as client:
        yield client
    server.engine.close()


async def call(mcp: Client, tool: str, progress: list | None = None, **arguments: Any) -> tuple[dict, str]:
    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    result = await mcp.call_tool(tool, arguments, progress_callback=on_progress if progress is not None else None)
    assert not result.is_error, result.content[0].text
    return result.structured_content, result.content[0].text


async def test_import_run_get_and_evaluate(mcp, scripted, workspace):
    suite, text = await call(mcp, "import_test_cases", suite="inline", cases=SEED_CSV, prompt=42)
    assert suite["cases"] == 3 and "tied to prompt 42" in text
    listed, _ = await call(mcp, "import_test_cases", suite="fromfile", file="tests/prompts/regression.csv")
    assert listed["cases"] == 3 and listed["prompt_id"] == 42
    progress: list = []
    run, text = await call(mcp, "run_tests", progress, suite="regression", models=["openai/good", "openai/bad"])
    assert run["results"] == 6 and run["pass_rate"] == 0.5 and run["passed"] is False
    assert "Verdict: FAILED" in text and "judge gave 1" in text
    assert progress and progress[-1][0] == 6 and progress[-1][1] == 6
    got, text = await call(mcp, "get_run", run_id=run["run_id"])
    assert got["kind"] == "test" and got["test"]["results"] == 6 and run["run_id"] in text
    scored, text = await call(mcp, "evaluate_prompt", prompt=42)
    assert scored["score"] == 100 and text.startswith("Score 100/100 >= 80 (the deploy gate's default minimum).")


async def test_judge_run_with_the_seed_criteria(mcp, scripted):
    run, _ = await call(mcp, "run_tests", suite="regression")
    judged, text = await call(mcp, "judge_run", run_id=run["run_id"], criteria=SEED_JUDGE)
    assert judged["score"] == 100 and judged["results"] == 3


async def test_arena_and_votes(mcp, scripted, client):
    arena, text = await call(mcp, "run_arena", suite="regression", models=["openai/q1", "openai/q3"],
                             judge_model="openai/judge", seed=4)
    assert arena["headline"]["models"] == "openai/q3 vs openai/q1" and "Win rate: 100% / 0%" in text

    match = client.evals.matches(arena["run_id"])[0]
    vote, text = await call(mcp, "record_vote", match_id=match["id"], winner="openai/q1")
    assert vote["voter"] == "tester" and vote["winner"] == "openai/q1"
    got, _ = await call(mcp, "get_run", run_id=arena["run_id"])
    assert got["arena"]["human"]["votes"] == 1


async def test_bad_input_is_the_engines_sentence(mcp, scripted):
    result = await mcp.call_tool("import_test_cases", {"suite": "x", "file": "../outside.csv"})
    assert result.is_error and "outside the workspace" in result.content[0].text
    result = await mcp.call_tool("run_tests", {"suite": "regression", "prompt": "nope/prompt"})
    assert result.is_error and "there is no prompt 'nope/prompt'" in result.content[0].text
