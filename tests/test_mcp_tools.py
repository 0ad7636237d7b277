"""The MCP tools, driven in-process through the SDK's in-memory client: every tool, the
`model_config` argument on the wire, authorship, and a bad input per tool answered with one
sentence while the server keeps serving."""

from __future__ import annotations

import re
import time
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import Implementation

from mcp_server.engine import Call, Engine
from mcp_server.models import PromptOnlyArgs, PromptSummary
from mcp_server.registry import ToolSpec, build_tool
from mcp_server.server import PromStackServer, build_server

pytestmark = pytest.mark.anyio

TOOLS = {
    "list_prompts", "get_prompt", "create_prompt", "update_prompt", "delete_prompt", "restore_prompt",
    "get_history", "diff_versions", "rollback_prompt", "create_branch", "merge_branch", "set_label",
}
READS = {"list_prompts", "get_prompt", "get_history", "diff_versions"}
# The monitoring and cost tools (mcp_server/tools_monitor.py; their own tests: test_monitor_mcp.py)
TOOLS |= {"get_metrics", "check_alerts", "cost_report", "recommend_model", "suggest_shorter"}
READS |= {"get_metrics", "cost_report", "recommend_model"}
# The test, judge and arena tools (mcp_server/tools_evals.py; their own tests: test_evals_mcp.py)
TOOLS |= {"import_test_cases", "run_tests", "get_run", "judge_run", "run_arena", "evaluate_prompt", "record_vote"}
READS |= {"get_run"}
# Bisect (mcp_server/tools_bisect.py; its own tests: test_bisect_faces.py)
TOOLS |= {"bisect_prompt"}
# The deploy tool (mcp_server/tools_deploy.py; its own tests: test_deploy_gate.py)
TOOLS |= {"deploy_prompt"}
# The gateway's tool (mcp_server/tools_run.py)
TOOLS |= {"run_prompt"}


@pytest.fixture
def refund(client):
    client.create_prompt("support/refund", "환불 절차를 안내하세요: {{ question }}", model_config={"model": "gpt-4o-mini"})
    client.save("support/refund", "환불 절차를 친절하게 안내하세요: {{ question }}", message="kinder")
    return "support/refund"


async def ok(mcp: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await mcp.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    assert result.content[0].text.strip()
    return result.structured_content


async def fails(mcp: Client, tool: str, arguments: dict[str, Any], expected: str) -> str:
    result = await mcp.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0].text
    # The engine's (or the argument check's) sentence arrives, not just the SDK's generic line.
    assert text.strip() != f"Error executing tool {tool}"
    assert expected in text, text
    assert "Traceback" not in text and "\n" not in text.strip()
    # ... and the server keeps serving.
    assert (await mcp.call_tool("list_prompts", {})).is_error is False
    return text


# Tools that reach past the workspace: a model provider (paid) or a webhook. The paid ones are
# the six plus the two that run a gate (the gate runs the suite on models).
PAID = {"run_prompt", "run_tests", "judge_run", "run_arena", "evaluate_prompt", "suggest_shorter"}
OPEN_WORLD = PAID | {"deploy_prompt", "set_label"} | {"check_alerts"}  # webhooks
OPEN_WORLD |= {"bisect_prompt", "diff_versions"}  # the suite runs (diff_versions: with behaviour)
# Arguments whose name does not say what to send: described wherever they appear.
NEEDS_A_DESCRIPTION = {"prompt", "template", "model_config", "criteria", "force", "cases", "file", "winner",
                       "match_id", "threshold", "tolerance", "rollback", "since", "failing"}


async def test_every_tool_is_listed_with_descriptions_schemas_and_honest_annotations(mcp):
    tools = {t.name: t for t in (await mcp.list_tools()).tools}
    assert set(tools) == TOOLS
    for name, t in tools.items():
        # One sentence, for the model that picks the tool: it reads every one in every conversation.
        sentences = [s for s in re.split(r"(?<=\.)\s+", t.description) if s]
        assert len(sentences) == 1 and len(t.description) <= 160, (name, t.description)
        assert t.output_schema and t.output_schema["type"] == "object"
        for prop, schema in t.input_schema["properties"].items():
            assert {"type", "anyOf", "$ref", "enum"} & schema.keys(), (name, prop)
            assert "title" not in schema, (name, prop)
            required = prop in t.input_schema.get("required", [])
            if prop in NEEDS_A_DESCRIPTION and (required or prop != "prompt"):  # an optional prompt filters
                assert schema.get("description"), (name, prop)
        assert t.annotations.destructive_hint is False
        assert t.annotations.read_only_hint is (name in READS)
        assert t.annotations.open_world_hint is (name in OPEN_WORLD), name
        if name in READS:
            assert t.annotations.idempotent_hint is True
    assert tools["set_label"].annotations.idempotent_hint is False
    for name in ("create_prompt", "update_prompt"):
        assert "model_config" in tools[name].input_schema["properties"]
    assert "model_config" in tools["get_prompt"].output_schema["properties"]


async def test_the_version_control_round_trip(mcp):
    created = await ok(mcp, "create_prompt", prompt="support/refund", template="환불 절차를 안내하세요: {{ question }}",
                       model_config={"model": "gpt-4o-mini", "temperature": 0.2}, description="refunds", message="first")
    assert created["version"] == 1 and created["model_config"] == {"model": "gpt-4o-mini", "temperature": 0.2}
    assert created["variables"][0]["name"] == "question" and created["source"] == "mcp"

    v2 = await ok(mcp, "update_prompt", prompt="support/refund", template="환불을 친절하게 안내하세요: {{ question }}",
                  message="kinder")
    assert v2["version"] == 2 and v2["created"] is True and v2["model_config"]["temperature"] == 0.2
    same = await ok(mcp, "update_prompt", prompt="support/refund", template="환불을 친절하게 안내하세요: {{ question }}")
    assert same["created"] is False and same["version"] == 2
    v3 = await ok(mcp, "update_prompt", prompt=created["prompt_id"], model_config={"model": "gpt-4o", "temperature": 0.5})
    assert v3["version"] == 3 and v3["template"] == v2["template"]

    got = await ok(mcp, "get_prompt", prompt="support/refund", version=1)
    assert got["template"] == "환불 절차를 안내하세요: {{ question }}"
    assert (await ok(mcp, "get_prompt", prompt=str(created["prompt_id"])))["version"] == 3

    history = await ok(mcp, "get_history", prompt="support/refund")
    assert [v["version"] for v in history["versions"]] == [3, 2, 1]
    assert "template" not in history["versions"][0]

    diff = await ok(mcp, "diff_versions", prompt="support/refund", from_version=1, to_version=3)
    assert diff["added"] == 1 and diff["removed"] == 1 and "친절하게" in diff["unified"]
    assert diff["config_changes"]["model"] == {"from": "gpt-4o-mini", "to": "gpt-4o"}

    branch = await ok(mcp, "create_branch", prompt="support/refund", branch="experiment/short", from_version=3)
    assert branch["head"] == 3
    v4 = await ok(mcp, "update_prompt", prompt="support/refund", branch="experiment/short",
                  template="환불: {{ question }}")
    assert v4["branch"] == "experiment/short"
    assert (await ok(mcp, "get_prompt", prompt="support/refund"))["version"] == 3  # main did not move
    merged = await ok(mcp, "merge_branch", prompt="support/refund", branch="experiment/short")
    assert merged["version"] == 5 and merged["template"] == "환불: {{ question }}" and merged["source"] == "merge"

    # production is gated: with no suite to pass the move is refused with the gate's reasons;
    # force needs a reason; forced with one it moves (a forced deployment, audited).
    await fails(mcp, "set_label", {"prompt": "support/refund", "label": "production", "version": 2},
                "the production gate refused support/refund v2")
    await fails(mcp, "set_label", {"prompt": "support/refund", "label": "production", "version": 2, "force": True},
                "needs a reason")
    move = await ok(mcp, "set_label", prompt="support/refund", label="production", version=2, reason="ship it",
                    force=True)
    assert move["from_version"] is None and move["to_version"] == 2 and move["reason"] == "ship it"
    assert (await ok(mcp, "get_prompt", prompt="support/refund", label="production"))["version"] == 2

    back = await ok(mcp, "rollback_prompt", prompt="support/refund", version=1, message="too short")
    assert back["version"] == 6 and back["source"] == "rollback" and back["template"] == created["template"]

    deleted = await ok(mcp, "delete_prompt", prompt="support/refund")
    assert deleted["archived"] is True
    assert (await ok(mcp, "list_prompts"))["prompts"] == []
    assert [p["name"] for p in (await ok(mcp, "list_prompts", include_deleted=True))["prompts"]] == ["support/refund"]
    restored = await ok(mcp, "restore_prompt", prompt="support/refund")
    assert restored["archived"] is False and restored["versions"] == 6


async def test_chat_templates_and_model_config_sent_as_json_text(mcp):
    chat = [{"role": "system", "content": "You are polite."}, {"role": "user", "content": "{{ question }}"}]
    created = await ok(mcp, "create_prompt", prompt="chat/support", template=chat)
    assert created["kind"] == "chat" and created["template"] == chat
    # Some clients send objects as JSON inside a string; the argument still arrives.
    saved = await ok(mcp, "update_prompt", prompt="chat/support", model_config='{"model": "gpt-4o-mini"}')
    assert saved["model_config"] == {"model": "gpt-4o-mini"}
    # ... but a text template that happens to be JSON stays text.
    json_text = '{"instruction": "answer {{ question }}", "format": "json"}'
    made = await ok(mcp, "create_prompt", prompt="json/shaped", template=json_text)
    assert made["kind"] == "text" and made["template"] == json_text
    # A chat template sent as JSON text is still a chat template (the engine reads it so).
    as_text = await ok(mcp, "create_prompt", prompt="chat/as-text", template='[{"role": "user", "content": "hi"}]')
    assert as_text["kind"] == "chat"


async def test_author_is_the_configured_user(mcp, client):
    saved = await ok(mcp, "create_prompt", prompt="a/b", template="hi")
    assert saved["author"] == "tester"  # PROMSTACK_USER, set by conftest
    assert client.audit_log("a/b")[0]["actor"] == "tester"


async def test_author_falls_back_to_the_client_name_and_is_never_empty(isolated_store, monkeypatch, client):
    monkeypatch.delenv("PROMSTACK_USER")
    server = build_server(isolated_store)
    async with Client(server, client_info=Implementation(name="claude-ai", version="0.1")) as mcp:
        saved = await ok(mcp, "create_prompt", prompt="a/b", template="hi")
        assert saved["author"] == "claude-ai"
        branch = await ok(mcp, "create_branch", prompt="a/b", branch="x")
        assert branch["created_by"] == "claude-ai"
    async with Client(server, client_info=Implementation(name=" \x00 ", version="0.1")) as mcp:
        saved = await ok(mcp, "update_prompt", prompt="a/b", template="hello")
        assert saved["author"].strip()
    server.engine.close()


BAD_INPUTS = [
    ("list_prompts", {"include_deleted": "maybe"}, "argument 'include_deleted'"),
    ("get_prompt", {"prompt": "support/refnd"}, "there is no prompt 'support/refnd' (did you mean 'support/refund'?)"),
    ("get_prompt", {"prompt": "support/refund", "version": 99}, "has no version 99; its newest is 2"),
    ("get_prompt", {"prompt": "support/refund", "version": "two"}, "argument 'version' of get_prompt"),
    ("get_prompt", {"prompt": True}, "not true or false"),
    ("get_prompt", {"prompt": "support/refund", "label": "production"}, "has no label 'production'"),
    ("get_prompt", {}, "get_prompt needs the argument 'prompt'"),
    ("get_prompt", {"name": "support/refund"}, "get_prompt has no argument 'name'"),
    ("create_prompt", {"prompt": "bad name!", "template": "x"}, "is not a valid prompt name"),
    ("create_prompt", {"prompt": "evil", "template": "{{ ''.__class__.__mro__ }}"}, "private attribute"),
    ("create_prompt", {"prompt": "support/refund", "template": "x"}, "exists already"),
    ("update_prompt", {"prompt": "support/refund", "template": "{% if question %}unclosed"}, "does not parse"),
    ("update_prompt", {"prompt": "support/refund", "template": 42}, "argument 'template' of update_prompt"),
    ("update_prompt", {"prompt": "support/refund", "model_config": {"temperature": 9}}, "temperature must be a number from 0 to 2"),
    ("update_prompt", {"prompt": "support/refund", "template": [{"role": "boss", "content": "x"}]}, "argument 'template"),
    ("delete_prompt", {"prompt": 404}, "there is no prompt 404"),
    ("restore_prompt", {"prompt": "support/refund"}, "is not deleted"),
    ("get_history", {"prompt": "support/refund", "limit": 0}, "argument 'limit'"),
    ("get_history", {"prompt": "support/refund", "branch": "nope"}, "has no branch 'nope'"),
    ("diff_versions", {"prompt": "support/refund", "from_version": 7}, "has no version 7"),
    ("diff_versions", {"prompt": "support/refund", "from_version": 0}, "argument 'from_version'"),
    ("rollback_prompt", {"prompt": "support/refund", "version": 2}, "already the head"),
    ("rollback_prompt", {"prompt": "support/refund", "version": 12}, "has no version 12"),
    ("create_branch", {"prompt": "support/refund", "branch": "has space"}, "is not a valid branch name"),
    ("create_branch", {"prompt": "support/refund", "branch": "main"}, "already has a branch 'main'"),
    ("merge_branch", {"prompt": "support/refund", "branch": "nobranch"}, "has no branch 'nobranch'"),
    ("merge_branch", {"prompt": "support/refund", "branch": "main"}, "into itself"),
    ("set_label", {"prompt": "support/refund", "label": "production", "version": "two"}, "argument 'version'"),
    ("set_label", {"prompt": "support/refund", "label": "latest", "version": 1}, "'latest' always follows"),
    ("set_label", {"prompt": "support/refund", "label": "production", "version": 9}, "has no version 9"),
]
BAD_INPUTS += [
    ("get_metrics", {"since": "yesterday-ish"}, "is neither a duration"),
    ("get_metrics", {"by": ["colour"]}, "argument 'by"),
    ("check_alerts", {"notify": "loudly"}, "argument 'notify'"),
    ("cost_report", {"since": "soon"}, "is neither a duration"),
    ("recommend_model", {"prompt": "support/refund"}, "no test or arena results"),
    ("suggest_shorter", {"prompt": 404}, "no prompt 404"),
]
BAD_INPUTS += [
    ("import_test_cases", {"suite": "s", "cases": "question\nhi\n"}, "there is no 'input' column"),
    ("run_tests", {"suite": "nope"}, "there is no test suite 'nope'"),
    ("get_run", {"run_id": "r-nope"}, "there is no run 'r-nope'"),
    ("judge_run", {"run_id": "r-nope", "criteria": ["ok?"]}, "there is no run 'r-nope'"),
    ("run_arena", {"suite": "s", "models": ["openai/a"]}, "argument 'models'"),
    ("evaluate_prompt", {"prompt": 404}, "no prompt 404"),
    ("record_vote", {"match_id": 1, "winner": "x"}, "there is no arena match 1"),
]
BAD_INPUTS += [
    ("bisect_prompt", {"prompt": "support/refund"}, "say what broke: give the argument 'case'"),
    ("bisect_prompt", {"prompt": "support/refund", "case": "1", "good": 2, "bad": 1}, "must come before"),
    ("diff_versions", {"prompt": "support/refund", "from_version": 1, "behaviour": True}, "no test suite is tied"),
]
BAD_INPUTS += [
    ("deploy_prompt", {"prompt": "support/refund", "environment": "prod"}, "there is no environment 'prod'"),
]
BAD_INPUTS += [
    ("run_prompt", {"prompt": "support/refund"}, "needs the variable 'question'"),
    ("run_prompt", {"prompt": "support/refund", "variables": "question=hi"}, "argument 'variables'"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), BAD_INPUTS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD_INPUTS)])
async def test_bad_input_is_one_sentence_and_the_server_keeps_serving(mcp, refund, tool, arguments, expected):
    await fails(mcp, tool, arguments, expected)


def test_every_tool_has_a_bad_input_case():
    assert {tool for tool, _, _ in BAD_INPUTS} == TOOLS


async def test_a_bad_input_leaves_the_store_as_it_was(mcp, refund, client):
    before = client.export()
    await fails(mcp, "update_prompt", {"prompt": refund, "template": "{{ ''.__class__.__mro__ }}"}, "sandbox")
    assert client.export() == before


async def test_a_merge_conflict_says_where(mcp, refund):
    await ok(mcp, "create_branch", prompt=refund, branch="x")
    await ok(mcp, "update_prompt", prompt=refund, branch="x", template="브랜치: {{ question }}")
    await ok(mcp, "update_prompt", prompt=refund, template="메인: {{ question }}")
    await fails(mcp, "merge_branch", {"prompt": refund, "branch": "x"}, "conflicts")


async def test_an_unexpected_error_does_not_leak_or_stop_the_server(mcp, refund, monkeypatch):
    from promstack.client import Client as Engine_

    def boom(self, *a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Engine_, "history", boom)
    result = await mcp.call_tool("get_history", {"prompt": refund})
    assert result.is_error and "secret internals" not in result.content[0].text
    monkeypatch.undo()
    assert (await ok(mcp, "get_history", prompt=refund))["versions"]


async def test_progress_from_the_engine_thread_reaches_the_client(isolated_store, refund):
    def slow(call: Call, args: PromptOnlyArgs) -> tuple[PromptSummary, str]:
        for done in range(3):
            call.progress(done + 1, 3, f"step {done + 1} of 3")
        found = next(p for p in call.client.list_prompts() if p.name == args.prompt)
        return PromptSummary.model_validate(found.to_dict()), "done"

    spec = ToolSpec(name="slow_tool", title="Slow", description="A long tool. Returns a summary.",
                    args=PromptOnlyArgs, result=PromptSummary, handler=slow, read_only=True,
                    idempotent=True, changes_prompts=False, long=True)
    engine = Engine(isolated_store)
    server = PromStackServer(engine, name="progress-test", tools=[build_tool(spec, engine)])
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    for mode in ("auto", "legacy"):
        seen.clear()
        async with Client(server, mode=mode) as mcp:
            result = await mcp.call_tool("slow_tool", {"prompt": refund}, progress_callback=on_progress)
        assert not result.is_error
        assert [s[0] for s in seen] == [1, 2, 3] and seen[-1][2] == "step 3 of 3"
    engine.close()


def test_files_named_by_a_client_stay_in_the_workspace(client, isolated_store, tmp_path):
    from store.errors import InvalidInput

    call = Call(client, "tester")
    root = isolated_store.parent.parent
    (root / "suites").mkdir()
    assert call.workspace_file("suites/regression.csv") == (root / "suites" / "regression.csv").resolve()
    (root / "escape").symlink_to("/etc")
    for bad in ("../outside.csv", "/etc/passwd", "suites/../../x", "escape/passwd", "a\x00b"):
        with pytest.raises(InvalidInput, match="outside the workspace"):
            call.workspace_file(bad)


def test_a_tool_is_a_plain_function_over_the_engine(client, refund):
    from mcp_server import tools
    from mcp_server.models import GetPromptArgs, UpdatePromptArgs

    call = Call(client, "tester")
    result, text = tools.get_prompt(call, GetPromptArgs(prompt=refund, version=1))
    assert result.version == 1 and result.config == {"model": "gpt-4o-mini"}
    assert text.startswith("support/refund v1 on main") and "{{ question }}" in text
    saved, text = tools.update_prompt(call, UpdatePromptArgs(prompt=refund, model_config={"temperature": 0.1}))
    assert saved.created and saved.source == "mcp" and saved.author == "tester"
    assert saved.model_dump(mode="json", by_alias=True)["model_config"] == {"temperature": 0.1}


async def test_run_prompt_answers_through_the_gateway_and_logs_the_call(mcp, client, fake_llm):
    client.create_prompt("support/answer", "질문: {{ input }}",
                         model_config={"model": "gpt-4o-mini", "api_base": fake_llm.base_url})
    fake_llm.usage = (150, 200)
    first = await ok(mcp, "run_prompt", prompt="support/answer", variables={"input": "환불하고 싶어요"},
                     user_id="user_123")
    assert first["output"] and first["model"] == "gpt-4o-mini"
    assert (first["input_tokens"], first["output_tokens"], first["cache_hit"]) == (150, 200, False)
    again = await ok(mcp, "run_prompt", prompt="support/answer", variables={"input": "환불하고 싶어요"})
    assert again["cache_hit"] is True and again["cost_usd"] == 0
    # The server's gateway writes its call log in batches (within ~50 ms): wait for both rows.
    deadline = time.monotonic() + 5
    while len(rows := client.call_log(prompt="support/answer")) < 2 and time.monotonic() < deadline:
        await anyio.sleep(0.02)
    assert len(rows) == 2 and {r["user_id"] for r in rows} == {"user_123", None}
    assert "환불하고 싶어요" in fake_llm.requests[-1]["json"]["messages"][0]["content"]


async def test_update_prompt_never_turns_a_chat_prompt_into_text(mcp):
    await ok(mcp, "create_prompt", prompt="chat/support", template=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ question }}"}])
    await fails(mcp, "update_prompt", {"prompt": "chat/support", "template": "Just text now: {{ question }}"},
                "is a chat prompt")
    head = await ok(mcp, "get_prompt", prompt="chat/support")
    assert head["version"] == 1 and isinstance(head["template"], list)
