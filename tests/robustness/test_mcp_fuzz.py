"""Random JSON for every MCP tool's arguments, through the SDK's in-memory client: each call
either works or is an isError result carrying a sentence (never the SDK's bare "Error
executing tool X", which is what an unexpected exception becomes, never a traceback), the
server keeps serving, and the store stays consistent. Arguments mix plausible values (an
existing prompt, small numbers, known labels) with arbitrary JSON, so calls reach past the
argument check into the engine. Models are routed to the fake server: nothing leaves the
machine. One hand-written bad input per tool: tests/test_mcp_tools.py."""

from __future__ import annotations

import os

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client as MCPClient

from mcp_server.server import build_server
from promstack import Client

from .helpers import integrity_ok, version_invariants

EXAMPLES = int(os.environ.get("PROMSTACK_FUZZ_EXAMPLES", "60"))

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_plausible = st.sampled_from([
    "support/refund", "support/refund@2", 1, 2, 3, 0, -1, 99, "main", "exp", "production", "staging",
    "development", "latest", "regression", "s", "openai/fake-model", ["openai/fake-model", "openai/fake-500"],
    {"model": "openai/fake-model"}, {"temperature": 3}, "{{ question }}", "{% for %}", "../../etc/passwd",
    {"question": "hi"}, ["ok?"], "r-nope", True, None, "",
])


_strings = st.sampled_from([
    "support/refund", "support/refund@2", "main", "exp", "production", "staging", "development", "latest",
    "regression", "s", "openai/fake-model", "openai/fake-500", "{{ question }}", "{% for %}", "../../etc/passwd",
    "/etc/passwd", "suites/x.csv", "input,expected_output\nhi,contains:echo\n", "1h", "24h", "7d", "x" * 5000,
    "r-nope", "", "csv", "json", "tests", "A", "B", "tie", "응답이 적절한가?", "p50", "model", "prompt",
])


def _typed(schema: dict, defs: dict, depth: int = 0) -> st.SearchStrategy:
    """Values of the schema's shape (plausible more often than not), and sometimes not."""
    if "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if "anyOf" in schema:
        return st.one_of([_typed(s, defs, depth) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return st.one_of(_strings, st.text(max_size=40))
    if kind == "integer":
        return st.one_of(st.integers(-1, 5), st.integers())
    if kind == "number":
        return st.one_of(st.floats(0, 2), st.floats(allow_nan=False))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array" and depth < 3:
        return st.lists(_typed(schema.get("items") or {}, defs, depth + 1), max_size=3)
    if kind == "object" and depth < 3:
        props = schema.get("properties") or {}
        if props:
            return st.fixed_dictionaries({k: _typed(v, defs, depth + 1) for k, v in props.items()
                                          if k in schema.get("required", [])},
                                         optional={k: _typed(v, defs, depth + 1) for k, v in props.items()
                                                   if k not in schema.get("required", [])})
        return st.dictionaries(st.one_of(_strings, st.text(max_size=8)), st.one_of(_plausible, _json), max_size=3)
    return st.one_of(_plausible, _json)


_KEYED = {  # values that name what exists, so calls get past "not found" into the engine
    "prompt": st.sampled_from(["support/refund", 1, "new/one"]),
    "template": st.sampled_from(["환불 안내: {{ question }}", "v {{ question }} {{ extra }}", "{% if %}"]),
    "version": st.integers(1, 3), "from_version": st.integers(1, 3), "to_version": st.integers(1, 3),
    "label": st.sampled_from(["production", "staging", "latest"]), "branch": st.sampled_from(["exp", "main"]),
    "suite": st.sampled_from(["s", "regression"]), "environment": st.sampled_from(["development", "staging"]),
    "models": st.sampled_from([["openai/fake-model", "openai/fake-500"], ["openai/fake-model"]]),
    "model": st.sampled_from(["openai/fake-model", "openai/fake-empty"]),
    "variables": st.sampled_from([{"question": "hi"}, {}]), "since": st.sampled_from(["1h", "24h", "7d"]),
    "cases": st.sampled_from(["input,expected_output\nhi,contains:echo\n", "nope"]),
    "criteria": st.sampled_from([["응답이 적절한가?"], []]),
}


def _arguments(schema: dict) -> st.SearchStrategy:
    defs = schema.get("$defs") or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])

    def clean(key: str, prop: dict) -> st.SearchStrategy:
        return st.one_of(_KEYED[key], _KEYED[key], _typed(prop, defs)) if key in _KEYED else _typed(prop, defs)

    def noisy(key: str, prop: dict) -> st.SearchStrategy:
        return st.one_of(clean(key, prop), clean(key, prop), _plausible, _json)

    def shaped(value) -> st.SearchStrategy:
        return st.fixed_dictionaries({k: value(k, v) for k, v in props.items() if k in required},
                                     optional={k: value(k, v) for k, v in props.items() if k not in required})

    extra = st.dictionaries(st.text(max_size=10), _json, min_size=1, max_size=2)
    return st.one_of(shaped(clean), shaped(clean), shaped(clean), shaped(noisy),
                     st.builds(lambda a, b: {**a, **b}, shaped(clean), extra), _json)


@pytest.fixture
def mcp_portal(isolated_store, fake_llm):
    (isolated_store.parent / "config.toml").write_text(
        f'[providers.openai]\napi_base = "{fake_llm.base_url}"\n\n'
        "[gateway]\nretry_initial = 0.01\nretry_max_wait = 0.05\nmax_retries = 1\ntimeout = 2\n",
        encoding="utf-8")
    with Client(isolated_store) as client:
        client.create_prompt("support/refund", "환불: {{ question }}", model_config={"model": "openai/fake-model"})
        client.save("support/refund", "환불 절차: {{ question }}")
        from promstack.evals import engine

        engine.import_suite(client, text="input,expected_output\nhi,contains:echo\nho,contains:echo\n", fmt="csv",
                            name="s", prompt="support/refund")
    server = build_server(isolated_store)
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(MCPClient(server)) as mcp:
        tools = {t.name: t.input_schema for t in portal.call(mcp.list_tools).tools}
        yield portal, mcp, tools
    server.engine.close()


TOOLS = [
    "list_prompts", "get_prompt", "create_prompt", "update_prompt", "delete_prompt", "restore_prompt",
    "get_history", "diff_versions", "rollback_prompt", "create_branch", "merge_branch", "set_label",
    "run_prompt", "import_test_cases", "run_tests", "get_run", "judge_run", "run_arena", "evaluate_prompt",
    "get_metrics", "check_alerts", "cost_report", "deploy_prompt", "recommend_model", "suggest_shorter",
    "record_vote", "bisect_prompt",
]


def test_the_fuzzed_tools_are_every_tool(mcp_portal):
    _, _, tools = mcp_portal
    assert set(TOOLS) == set(tools)


@pytest.mark.parametrize("tool", TOOLS)
def test_any_arguments_work_or_get_a_sentence(mcp_portal, isolated_store, data_strategy_tool, tool):
    portal, mcp, tools = mcp_portal
    data_strategy_tool(portal, mcp, tool, tools[tool])
    integrity_ok(isolated_store)
    version_invariants(isolated_store)
    with Client(isolated_store) as client:
        assert client.verify_audit()[0]


@pytest.fixture
def data_strategy_tool():
    def run(portal, mcp, tool, schema):
        outcomes = {"worked": 0, "refused with a sentence": 0}
        @settings(max_examples=EXAMPLES, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                         HealthCheck.data_too_large])
        @given(arguments=_arguments(schema))
        def one(arguments):
            if not isinstance(arguments, dict):
                arguments = {"arguments": arguments}
            result = portal.call(mcp.call_tool, tool, arguments)
            text = result.content[0].text if result.content else ""
            outcomes["refused with a sentence" if result.is_error else "worked"] += 1
            if result.is_error:
                assert text.strip() and text.strip() != f"Error executing tool {tool}", (arguments, text)
                assert "Traceback" not in text, text
            assert not portal.call(mcp.call_tool, "list_prompts", {}).is_error  # still serving

        one()
        print(f"{tool}: {outcomes}")

    return run


def test_a_match_id_past_64_bits_is_no_match(mcp_portal):
    """Found by the fuzz above: record_vote(match_id=2**63) crashed inside SQLite's binding."""
    portal, mcp, _ = mcp_portal
    result = portal.call(mcp.call_tool, "record_vote", {"match_id": 2**63, "winner": "tie"})
    assert result.is_error and "there is no arena match" in result.content[0].text
