"""The tool list an assistant carries in every conversation: small (tokens counted as
bench/bench_mcp_context.py counts them), honest about which tools reach past the workspace,
free of this repository's own words, and clean under MCP Inspector's `--strict` schema rules."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_server.models import Args

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_mcp_context import GOAL_TOKENS, count_tokens, model_facing, wire  # noqa: E402

pytestmark = pytest.mark.anyio

# The tools that call a paid model (the issue names them), and the others that reach past the
# workspace: set_label and deploy_prompt run an environment's gate (its suite, on models),
# check_alerts posts to the configured webhooks.
PAID = {"run_prompt", "run_tests", "judge_run", "run_arena", "evaluate_prompt", "suggest_shorter"}
OPEN_WORLD = PAID | {"set_label", "deploy_prompt", "check_alerts"}
OPEN_WORLD |= {"bisect_prompt", "diff_versions"}  # they run the suite (diff_versions: with behaviour)


async def listed(mcp) -> list[dict[str, Any]]:
    return wire((await mcp.list_tools()).tools)


async def test_the_tool_list_costs_a_model_at_most_4000_tokens(mcp):
    tools = await listed(mcp)
    assert len(tools) == 27  # every capability kept
    tokens = count_tokens(model_facing(tools))
    assert tokens <= GOAL_TOKENS, f"tools/list costs {tokens} tokens; the goal is {GOAL_TOKENS}"
    # The figure is the model-facing part: name, description and inputSchema, nothing else.
    assert {key for t in model_facing(tools) for key in t} == {"name", "description", "inputSchema"}


async def test_tools_that_call_a_paid_model_say_open_world_and_no_other_does(mcp):
    hints = {t.name: t.annotations.open_world_hint for t in (await mcp.list_tools()).tools}
    assert set(hints) >= PAID
    assert {name for name, hint in hints.items() if hint is True} == OPEN_WORLD
    assert all(hint is False for name, hint in hints.items() if name not in OPEN_WORLD)


def descriptions(node: Any, where: str = "") -> list[tuple[str, str]]:
    """Every description in a schema (or any JSON), with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                found.append((where, value))
            else:
                found.extend(descriptions(value, f"{where}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(descriptions(value, f"{where}[{i}]"))
    return found


async def test_no_description_says_the_seed(mcp):
    """Users know the CSV format or the guide's examples, not this repository's source document."""
    texts: list[tuple[str, str]] = []
    for tool in await listed(mcp):
        texts.append((tool["name"], tool["description"]))
        texts += descriptions(tool["inputSchema"], f"{tool['name']}.inputSchema")
        texts += descriptions(tool.get("outputSchema"), f"{tool['name']}.outputSchema")
    for item in (await mcp.list_prompts()).prompts:
        texts.append((f"prompt {item.name}", item.description or ""))
        texts += [(f"prompt {item.name} argument", a.description or "") for a in item.arguments or []]
    for item in (await mcp.list_resource_templates()).resource_templates:
        texts.append((f"resource {item.uri_template}", item.description or ""))
    texts.append(("instructions", mcp.instructions or ""))
    said = [(where, text) for where, text in texts if re.search(r"\bseed", text, re.IGNORECASE)]
    assert not said
    assert len(texts) > 100


# ---- MCP Inspector's --strict, in Python -------------------------------------------------------
# `npx @modelcontextprotocol/inspector --cli <server> --method tools/list --strict` (v2.12.0)
# reports tool-schema portability findings, over inputSchema and outputSchema alike: a bare
# true/false where a schema belongs (error), `type` as an array (warning), a `$ref` outside the
# document (warning), and a schema with no validation keyword at all (warning: it accepts any
# value). The rules below are the same, so `make test` checks them without Node or the network.

CONSTRAINING = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "contentMediaType", "contentEncoding", "contentSchema",
    "maxItems", "minItems", "uniqueItems", "maxContains", "minContains", "maxProperties", "minProperties",
    "required", "dependentRequired", "allOf", "anyOf", "oneOf", "not", "items", "prefixItems", "contains",
    "additionalItems", "unevaluatedItems", "properties", "patternProperties", "additionalProperties",
    "unevaluatedProperties", "propertyNames", "dependentSchemas", "dependencies", "$ref", "$dynamicRef",
    "$recursiveRef",
}
BOOLEAN_ALLOWED = {"additionalProperties", "unevaluatedProperties", "additionalItems", "unevaluatedItems"}
SUB_ONE = ["items", "contains", "not", "propertyNames", "if", "then", "else", "additionalProperties",
           "unevaluatedProperties", "additionalItems", "unevaluatedItems", "contentSchema"]
SUB_LIST = ["allOf", "anyOf", "oneOf", "prefixItems"]
SUB_MAP = ["properties", "patternProperties", "dependentSchemas", "dependencies", "$defs", "definitions"]


def strict_findings(node: Any, path: str = "", keyword: str | None = None) -> list[str]:
    if isinstance(node, bool):
        return [] if keyword in BOOLEAN_ALLOWED else [f"error {path}: bare {node} where a schema belongs"]
    if not isinstance(node, dict):
        return []
    found = []
    if isinstance(node.get("type"), list):
        found.append(f"warning {path}: type is an array")
    ref = node.get("$ref")
    if isinstance(ref, str) and ref and not ref.startswith("#"):
        found.append(f"warning {path}: remote $ref")
    constrains = bool(CONSTRAINING & node.keys()) or ("if" in node and ("then" in node or "else" in node))
    if not constrains and keyword != "not":
        found.append(f"warning {path}: no validation keyword, accepts any value")
    for key in SUB_MAP:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                found += strict_findings(sub, f"{path}.{key}.{name}", key)
    for key in SUB_LIST:
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key]):
                found += strict_findings(sub, f"{path}.{key}[{i}]", key)
    for key in SUB_ONE:
        if key in node:
            if key == "items" and isinstance(node[key], list):
                for i, sub in enumerate(node[key]):
                    found += strict_findings(sub, f"{path}.items[{i}]", key)
            else:
                found += strict_findings(node[key], f"{path}.{key}", key)
    return found


def test_the_strict_rules_catch_what_the_inspector_catches():
    assert strict_findings({"type": "object", "properties": {"x": {}}}) == [
        "warning .properties.x: no validation keyword, accepts any value"]
    assert strict_findings({"type": "object", "properties": {"x": True}})[0].startswith("error")
    assert strict_findings({"type": ["string", "null"]}) == ["warning : type is an array"]
    assert strict_findings({"type": "object", "additionalProperties": True}) == []
    assert strict_findings({"$ref": "https://example.com/s.json"})[0].endswith("remote $ref")


async def test_mcp_inspector_strict_finds_nothing(mcp):
    findings = []
    for tool in await listed(mcp):
        for kind in ("inputSchema", "outputSchema"):
            if kind in tool:
                findings += [f"{tool['name']} {kind}{f}" for f in strict_findings(tool[kind])]
    assert findings == []


# ---- the rarely used knobs, folded into `options` -----------------------------------------------


def folding_models() -> list[type[Args]]:
    from mcp_server.registry import TOOLS

    return [spec.args for spec in TOOLS if spec.args.FOLDED]


def test_every_folded_knob_is_an_option_and_still_accepted_on_its_own():
    models = folding_models()
    assert {m.__name__ for m in models} >= {"RunTestsArgs", "RunArenaArgs", "GetMetricsArgs", "DeployPromptArgs"}
    for model in models:
        options = model.model_fields["options"].annotation
        assert set(options.model_fields) == model.FOLDED, model.__name__
        assert "options" in model.model_json_schema(by_alias=True)["properties"]


async def test_old_top_level_knobs_and_the_options_object_mean_the_same(mcp):
    from mcp_server.tools_evals import RunArenaArgs, RunTestsArgs

    old = RunTestsArgs.model_validate({"suite": "s", "repeat": 2, "retries": 1, "concurrency": 3, "min_pass": 0.5})
    new = RunTestsArgs.model_validate({"suite": "s", "options": {"repeat": 2, "retries": 1, "concurrency": 3,
                                                                "min_pass": 0.5}})
    assert old == new and new.options.concurrency == 3
    mixed = RunArenaArgs.model_validate({"suite": "s", "models": ["a", "b"], "seed": 4, "options": {"concurrency": 2}})
    assert (mixed.options.seed, mixed.options.concurrency) == (4, 2)

    for arguments in ({"until": "1h", "model": "gpt-4o", "user_id": "u1"},
                      {"options": {"until": "1h", "model": "gpt-4o", "user_id": "u1"}}):
        result = await mcp.call_tool("get_metrics", arguments)
        assert not result.is_error, result.content[0].text
    twice = await mcp.call_tool("get_metrics", {"model": "a", "options": {"model": "b"}})
    assert twice.is_error
    assert twice.content[0].text.endswith("get_metrics: model is given both on its own and in options; send it "
                                          "once, in options")
    bad = await mcp.call_tool("run_tests", {"suite": "s", "concurrency": 0})
    assert bad.is_error and "argument 'options.concurrency' of run_tests" in bad.content[0].text
    unknown = await mcp.call_tool("run_tests", {"suite": "s", "options": {"concurency": 1}})
    assert unknown.is_error and unknown.content[0].text.endswith(
        "run_tests has no option 'concurency' (did you mean 'concurrency'?); its options are: repeat, retries, "
        "concurrency, min_pass")


def test_the_model_facing_schema_is_the_validated_one_made_compact():
    """Compaction removes only what a model does not need; every argument is still there."""
    from mcp_server.registry import TOOLS, input_schema

    for spec in TOOLS:
        full = spec.args.model_json_schema(by_alias=True)
        compact = input_schema(spec.args)
        assert list(compact["properties"]) == list(full["properties"]), spec.name
        assert compact.get("required", []) == full.get("required", []), spec.name
        assert '"title"' not in json.dumps(compact), spec.name


def test_options_sent_as_json_text_are_understood():
    """Some clients send objects and arrays as JSON inside a string; inside options too."""
    from mcp_server.registry import TOOLS, build_tool
    from mcp_server.server import build_server

    server = build_server(None)
    spec = next(s for s in TOOLS if s.name == "deploy_prompt")
    metadata = build_tool(spec, server.engine).fn_metadata
    for sent in ({"prompt": "p", "options": '{"skip": ["score"], "rerun": true}'},
                 {"prompt": "p", "options": {"skip": '["score"]', "rerun": True}},
                 {"prompt": "p", "skip": '["score"]', "rerun": True}):
        args = spec.args.model_validate(metadata.validate_arguments(sent)["arguments"])
        assert args.options.skip == ["score"] and args.options.rerun is True, sent
    metrics = next(s for s in TOOLS if s.name == "get_metrics")
    metadata = build_tool(metrics, server.engine).fn_metadata
    kept = metadata.validate_arguments({"options": {"user_id": '["not", "a", "list"]'}})["arguments"]
    assert kept["options"]["user_id"] == '["not", "a", "list"]'  # text stays text
    server.engine.close()


def test_the_real_inspector_strict_when_it_is_installed(tmp_path):
    """The same check with MCP Inspector itself, when PROMSTACK_INSPECTOR names its binary
    (`npm install @modelcontextprotocol/inspector` somewhere, then
    `PROMSTACK_INSPECTOR=<that folder>/node_modules/.bin/mcp-inspector`); skipped otherwise, so
    `make test` needs neither Node nor the network."""
    import os
    import subprocess

    inspector = os.environ.get("PROMSTACK_INSPECTOR")
    if not inspector:
        pytest.skip("PROMSTACK_INSPECTOR is not set")
    promstack = str(Path(sys.executable).with_name("promstack"))
    env = {**os.environ, "PROMSTACK_DB": str(tmp_path / ".promstack" / "promstack.db")}
    # The inspector starts the server with a minimal environment: pass on what it needs.
    passed = [f"{name}={env[name]}" for name in ("PROMSTACK_DB", "PYTHONPATH") if env.get(name)]
    done = subprocess.run([inspector, "--cli", "--strict", "--method", "tools/list",
                           *[arg for pair in passed for arg in ("-e", pair)], promstack, "mcp"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["tools"]) == 26
    assert "Warning" not in done.stderr and "Error" not in done.stderr, done.stderr
