"""Errors fit the face the person is in: a CLI user is told commands and flags, an MCP client
tools and arguments, a Python caller methods and keywords, each from the one engine error."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from promstack.cli import cli
from store.errors import NotFound

# Every MCP tool name; none may reach a CLI user.
MCP_TOOLS = re.compile(
    r"\b(list_prompts|get_prompt|create_prompt|update_prompt|delete_prompt|restore_prompt|get_history|"
    r"diff_versions|rollback_prompt|create_branch|merge_branch|set_label|run_prompt|import_test_cases|"
    r"run_tests|get_run|judge_run|run_arena|evaluate_prompt|get_metrics|check_alerts|cost_report|"
    r"deploy_prompt|record_vote|recommend_model|suggest_shorter)\b"
)
# A CLI command line or flag; none may reach an MCP client.
CLI_WORDS = re.compile(r"promstack [a-z]|(?<![\w-])--[a-z]")


@pytest.fixture
def seeded(client):
    client.create_prompt("support/refund", "환불: {{ question }}", model_config={"model": "gpt-4o-mini"})
    client.create_prompt("nomodel", "Hi {{ question }}")
    client.create_prompt("gone", "bye")
    client.delete_prompt("gone")
    (client.store.path.parent.parent / "tests" / "prompts").mkdir(parents=True)
    (client.store.path.parent.parent / "tests" / "prompts" / "plain.csv").write_text(
        "input,expected_output\nhello,hi\n", encoding="utf-8")
    client.close()


def cli_error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, (args, result.output)
    return result.stderr.strip()


CLI_CASES = [
    # (argv, what the sentence must say in the CLI's words)
    (["prompt", "show", "missing"], "'promstack prompt list' shows the ones that exist"),
    (["prompt", "show", "gone"], "'promstack prompt restore gone' brings it back"),
    (["prompt", "create", "gone", "--template", "x"], "'promstack prompt restore gone' brings it back"),
    (["prompt", "update", "support/refund", "--template", "x", "--branch", "nope"],
     "'promstack branch create support/refund nope' makes one"),
    (["test", "--suite", "nosuch", "--prompt", "support/refund"],
     "import one with 'promstack suite import FILE --name nosuch'"),
    (["test", "--suite", "plain", "--prompt", "nomodel"], "names no model: give --model,"),
    (["test", "--suite", "plain"], "is not tied to a prompt: give --prompt,"),
    (["run", "nomodel", "--var", "question=x"], "no model to call: give --model,"),
    (["prompt", "show", "support/refund", "--label", "nolabel"], ""),
]


@pytest.mark.parametrize(("argv", "expected"), CLI_CASES, ids=[" ".join(c[0][:2]) for c in CLI_CASES])
def test_a_cli_error_names_commands_and_flags_never_a_tool(seeded, argv, expected):
    text = cli_error(*argv)
    assert expected in text, text
    assert not MCP_TOOLS.search(text), text


MCP_CASES = [
    ("get_prompt", {"prompt": "missing"}, "list_prompts shows the ones that exist"),
    ("get_prompt", {"prompt": "gone"}, "restore_prompt brings it back"),
    ("create_prompt", {"prompt": "gone", "template": "x"}, "restore_prompt brings it back"),
    ("update_prompt", {"prompt": "support/refund", "template": "x", "branch": "nope"}, "create_branch makes one"),
    ("run_tests", {"suite": "nosuch", "prompt": "support/refund"}, "import one with import_test_cases"),
    ("run_tests", {"suite": "plain", "prompt": "nomodel"}, "names no model: give the argument 'models',"),
    ("run_tests", {"suite": "plain"}, "is not tied to a prompt: give the argument 'prompt',"),
    ("run_prompt", {"prompt": "nomodel", "variables": {"question": "x"}}, "no model to call: give the argument 'model',"),
    ("get_prompt", {"prompt": "support/refund", "label": "nolabel"}, ""),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "arguments", "expected"), MCP_CASES, ids=[c[0] for c in MCP_CASES])
async def test_an_mcp_tool_error_names_tools_and_arguments_never_a_cli_flag(seeded, mcp, tool, arguments, expected):
    result = await mcp.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0].text
    assert expected in text, text
    assert not CLI_WORDS.search(text), text


def test_the_sdk_is_told_methods_and_keywords(seeded):
    from promstack import Client

    with Client() as c, pytest.raises(NotFound, match=re.escape("Client.list_prompts() shows the ones")):
        c.get_prompt("missing")
    with Client() as c, pytest.raises(NotFound, match=re.escape("Client.restore_prompt('gone') brings it back")):
        c.get_prompt("gone")


def test_a_step_is_worded_by_each_face_from_one_error():
    from mcp_server.registry import error_text as mcp_text
    from promstack.cli import error_text as cli_text
    from store.errors import InvalidInput, Step

    exc = InvalidInput("the arena needs at least two models: give ",
                       Step.arg("models", of="arena", example=["gpt-4o", "claude-3-5-sonnet"]))
    assert cli_text(exc).endswith("give --models gpt-4o,claude-3-5-sonnet")
    assert mcp_text(exc).endswith("""give 'models': ["gpt-4o", "claude-3-5-sonnet"]""")
    assert str(exc).endswith("give models=['gpt-4o', 'claude-3-5-sonnet']")
    # A message replaced after it was raised (redaction does that) is shown as it now is.
    exc.args = ("redacted",)
    assert cli_text(exc) == mcp_text(exc) == "redacted"


def test_no_engine_message_names_a_cli_flag_or_command_by_hand():
    """Messages name their next step as a Step; a hand-written flag or tool name in an engine
    `raise` would reach the wrong face. (Help text, comments and docstrings may name them.)"""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for folder in ("store", "promstack"):
        for path in (root / folder).rglob("*.py"):
            if {"cli", "web"} & set(path.relative_to(root).parts):
                continue
            text = path.read_text(encoding="utf-8")
            for match in re.finditer(r"raise (?:NotFound|InvalidInput)\((?:[^()]|\([^()]*\))*\)", text):
                call = re.sub(r"Step(?:\.arg)?\((?:[^()]|\[[^\]]*\])*\)", "Step", match.group(0))
                if re.search(r"'promstack (?!init|export)[a-z]|\(--|\b--(model|models|prompt|suite|force|criteria|since|format)\b",
                             call) or MCP_TOOLS.search(call):
                    offenders.append(f"{path.relative_to(root)}: {call[:120]}")
    assert not offenders, "\n".join(offenders)


# ---- PROMSTACK_DB pointing at a folder that is not there --------------------------------------


def test_a_mistyped_promstack_db_is_an_error_not_a_new_empty_store(tmp_path, monkeypatch):
    typo = tmp_path / "projetc" / ".promstack" / "promstack.db"
    monkeypatch.setenv("PROMSTACK_DB", str(typo))
    result = CliRunner().invoke(cli, ["prompt", "list"])
    assert result.exit_code == 2
    sentence = result.stderr.strip()
    assert str(typo) in sentence and "promstack init" in sentence, sentence
    assert sentence.count("\n") == 0
    assert not typo.parent.exists()  # nothing was made at the typo
    # The SDK says the same, and so does `promstack mcp` before it serves anything.
    from promstack import Client

    with pytest.raises(NotFound, match="promstack init"):
        Client()
    mcp = CliRunner().invoke(cli, ["mcp"])
    assert mcp.exit_code == 2 and str(typo) in mcp.stderr
    served = CliRunner().invoke(cli, ["serve", "--no-watch"])
    assert served.exit_code == 2 and str(typo) in served.stderr
    assert not typo.parent.exists()


def test_a_promstack_db_in_a_missing_plain_folder_is_an_error_too(tmp_path, monkeypatch):
    typo = tmp_path / "nowhere" / "store.db"
    monkeypatch.setenv("PROMSTACK_DB", str(typo))
    result = CliRunner().invoke(cli, ["prompt", "list"])
    assert result.exit_code == 2 and str(typo.parent) in result.stderr and "promstack init" in result.stderr
    assert not typo.parent.exists()


def test_promstack_db_in_an_existing_folder_is_made_on_first_use(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir()
    monkeypatch.setenv("PROMSTACK_DB", str(folder / "team.db"))
    assert CliRunner().invoke(cli, ["prompt", "create", "p", "--template", "x"]).exit_code == 0
    assert (folder / "team.db").exists()


@pytest.mark.anyio
async def test_an_mcp_client_is_told_the_path_too(tmp_path, monkeypatch):
    from mcp import Client as MCPClient

    from mcp_server.server import build_server

    typo = tmp_path / "typo" / ".promstack" / "promstack.db"
    monkeypatch.setenv("PROMSTACK_DB", str(typo))
    async with MCPClient(build_server()) as mcp:
        result = await mcp.call_tool("list_prompts", {})
    assert result.is_error
    assert str(typo) in result.content[0].text and "promstack init" in result.content[0].text
    assert not typo.parent.exists()


# ---- a closed pipe -----------------------------------------------------------------------------


def test_a_command_piped_into_head_exits_quietly(isolated_store, client):
    for i in range(1500):  # well over a pipe's 64 KiB, so the writer meets the closed end
        client.create_prompt(f"support/p{i:04d}", "x", description="a prompt " * 5)
    client.close()
    code = ("import sys; sys.argv = ['promstack'] + sys.argv[1:]; "
            "from promstack.cli import main; main()")
    for argv in (["prompt", "list"], ["prompt", "list", "--json"]):
        args = " ".join(argv)
        proc = subprocess.run(
            f"{sys.executable} -c \"{code}\" {args} | head -1", shell=True, capture_output=True,
            text=True, check=False,
        )
        assert proc.stdout.count("\n") == 1, proc.stdout
        assert proc.stderr == "", proc.stderr  # no "unexpected error: BrokenPipeError", no "Exception ignored"


def test_the_rest_api_names_neither_a_cli_command_nor_a_tool(seeded, isolated_store):
    from starlette.testclient import TestClient

    from promstack.web.app import create_app

    with TestClient(create_app(isolated_store), base_url="http://127.0.0.1") as http:
        missing = http.get("/api/prompts/missing")
        gone = http.get("/api/prompts/gone", params={"version": 1})
    assert missing.status_code == 404 and gone.status_code == 404
    for response in (missing, gone):
        text = response.json()["error"]
        assert not CLI_WORDS.search(text) and not MCP_TOOLS.search(text) and "Client." not in text, text
    assert "GET /api/prompts" in missing.json()["error"]


def test_a_cost_recommendation_says_what_to_run_in_the_cli_words(seeded):
    text = cli_error("cost", "recommend", "--prompt", "support/refund")
    assert "two or more models first: 'promstack test --suite SUITE --prompt 1 --model A --model B'" in text, text
