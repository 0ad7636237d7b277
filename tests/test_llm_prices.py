"""A price is known or it is flagged: the shipped prices of the models the guide names, the
workspace's [prices] over them, and a call to a model nobody priced logged as unpriced (NULL),
with one sentence in every face instead of a silent $0."""

from __future__ import annotations

import json
import os
import re
import tomllib

import pytest
from click.testing import CliRunner

from promstack.cli import cli
from promstack.gateway import pricing
from store.errors import InvalidInput

# The models the guide names, with the ids people call them by, and their published list prices
# in US dollars per million tokens (input, output).
GUIDE_MODELS = {
    "gpt-4o-mini": (0.15, 0.60), "openai/gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00), "openai/gpt-4o": (2.50, 10.00),
    "claude-3-5-haiku-20241022": (0.80, 4.00), "anthropic/claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-3-5-sonnet-20241022": (3.00, 15.00), "anthropic/claude-3-5-sonnet-latest": (3.00, 15.00),
    "anthropic/claude-3-5-sonnet-20240620": (3.00, 15.00),
    "gemini/gemini-1.5-pro": (1.25, 5.00), "gemini-1.5-pro-002": (1.25, 5.00),
    "gemini/gemini-1.5-flash": (0.075, 0.30), "gemini-1.5-flash": (0.075, 0.30),
}
NOTE = "add a price in config"


def write_config(root, text):
    path = root / ".promstack" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
    os.utime(path, ns=(os.stat(path).st_mtime_ns + 10**9,) * 2)  # re-read even within one tick


@pytest.mark.parametrize("model", sorted(GUIDE_MODELS))
def test_the_guides_models_are_priced_by_the_shipped_file(model):
    found = pricing.price(model)
    assert found is not None, f"{model} has no price"
    per_in, per_out = GUIDE_MODELS[model]
    assert found.input * 1e6 == pytest.approx(per_in) and found.output * 1e6 == pytest.approx(per_out)
    assert found.source == "shipped prices"


def test_the_shipped_file_is_config_a_user_can_read_and_copy():
    text = pricing.SHIPPED_FILE.read_text(encoding="utf-8")
    assert "published" in text and re.search(r"\b20\d\d-\d\d-\d\d\b", text)  # whose prices, and as of when
    data = tomllib.loads(text)
    assert set(data) == {"prices"}                             # the same tables config.toml takes
    assert data["prices"]["claude-3-5-sonnet-20241022"]["input_per_million"] == 3.0
    # Gemini 1.5 costs more for prompts over 128k tokens
    assert pricing.cost("gemini/gemini-1.5-pro", 200_000, 1000) == pytest.approx(200_000 * 2.5e-6 + 1000 * 1e-5)
    assert pricing.cost("gemini/gemini-1.5-pro", 1000, 1000) == pytest.approx(1000 * 1.25e-6 + 1000 * 5e-6)
    # a provider prefix that is not the model's own provider is not the same price
    assert pricing.price("vertex_ai/claude-3-5-sonnet-20241022") is None  # Vertex is not Anthropic
    assert pricing.price("groq/gemini-1.5-pro") is None


def test_workspace_prices_win_over_shipped_and_model_config_over_both(tmp_path):
    from promstack import config

    write_config(tmp_path, '[prices."claude-3-5-sonnet-20241022"]\ninput_per_million = 1\noutput_per_million = 2\n'
                           '[prices."my-local-model"]\ninput_per_million = 0\noutput_per_million = 0\n')
    conf = config.load(tmp_path)
    mine = pricing.price("anthropic/claude-3-5-sonnet-20241022", config=conf)
    assert (mine.input, mine.output, mine.source) == (1e-6, 2e-6, "workspace config")
    assert pricing.cost("my-local-model", 10, 10, config=conf) == 0.0     # free, and known to be
    assert pricing.cost("my-local-model", 10, 10) is None                  # unknown without it
    over = pricing.price("claude-3-5-sonnet-20241022", config=conf, model_config={"input_cost_per_token": 5e-6})
    assert (over.input, over.output, over.source) == (5e-6, 2e-6, "model config")


@pytest.mark.parametrize("table, words", [
    ('[prices."x"]\ninput_per_million = 1\n', "needs output_per_million"),
    ('[prices."x"]\ninput_per_million = -1\noutput_per_million = 1\n', "non-negative"),
    ('[prices."x"]\ninput_per_million = 1\noutput_per_million = 1\ninput_per_milion = 2\n', "unknown key"),
    ('[prices]\nx = 3\n', 'must be a table'),
])
def test_a_bad_prices_table_refuses_the_call_in_one_sentence(client, fake_llm, tmp_path, table, words):
    client.create_prompt("p", "hi {{ x }}", model_config={"model": "openai/fake-model", "api_base": fake_llm.base_url})
    write_config(tmp_path, table)
    with pytest.raises(InvalidInput, match=words) as caught:
        client.run("p", {"x": "1"})
    assert "[prices" in str(caught.value) and "\n" not in str(caught.value)
    assert fake_llm.requests == []  # refused before the provider was paid


def test_a_claude_call_is_priced_not_zero(client, fake_llm):
    """litellm's map no longer lists Claude 3.5 by these ids: it used to cost $0 here."""
    client.create_prompt("p", "hi {{ x }}", model_config={
        "model": "anthropic/claude-3-5-sonnet-20241022", "api_base": fake_llm.base_url, "route": "lean"})
    result = client.run("p", {"x": "1"})
    assert result.priced and result.cost_usd == pytest.approx(result.input_tokens * 3e-6 + result.output_tokens * 15e-6)
    assert result.cost_usd > 0
    client.gateway.flush()
    (row,) = client.call_log(limit=None)
    assert row["cost_usd"] == pytest.approx(result.cost_usd)


@pytest.fixture
def unpriced(client, fake_llm):
    client.create_prompt("local/answer", "hi {{ x }}", model_config={"model": "openai/fake-model",
                                                                     "api_base": fake_llm.base_url}, id=7)
    return "local/answer"


def test_an_unpriced_call_is_logged_unknown_and_every_cli_total_says_so(client, unpriced):
    result = client.run(unpriced, {"x": "1"})
    assert result.cost_usd is None and result.priced is False
    assert result.unpriced == f"1 call unpriced (model openai/fake-model): {NOTE} " \
        "([prices] in .promstack/config.toml; 'promstack cost prices' shows the table)"
    assert result.to_dict()["priced"] is False
    client.gateway.flush()
    (row,) = client.call_log(limit=None)
    assert row["cost_usd"] is None                       # NULL in the log, not 0
    runner = CliRunner()
    ran = runner.invoke(cli, ["run", unpriced, "--var", "x=2"])
    assert ran.exit_code == 0 and "cost unknown" in ran.stderr and NOTE in ran.stderr
    assert json.loads(runner.invoke(cli, ["run", unpriced, "--var", "x=3", "--json"]).stdout)["cost_usd"] is None
    metrics = runner.invoke(cli, ["metrics"])
    assert "3 calls unpriced (model openai/fake-model): add a price in config" in metrics.stdout
    data = json.loads(runner.invoke(cli, ["metrics", "--json", "--by", "model"]).stdout)
    assert data["unpriced_calls"] == 3 and data["groups"][0]["unpriced_models"] == ["openai/fake-model"]
    cost = runner.invoke(cli, ["cost"])
    assert "3 calls unpriced (model openai/fake-model): add a price in config" in cost.stdout
    assert json.loads(runner.invoke(cli, ["cost", "--json"]).stdout)["unpriced_calls"] == 3
    shown = json.loads(runner.invoke(cli, ["cost", "prices", "--model", "openai/fake-model", "--json"]).stdout)
    assert shown["prices"] == [{"model": "openai/fake-model", "source": None, "input_per_million": None,
                                "output_per_million": None}]
    assert shown["shipped_file"].endswith("prices.toml")
    # a price in config prices the next call; the calls already logged stay unknown, and say so
    write_config(client.store.path.parent.parent,
                 '[prices."openai/fake-model"]\ninput_per_million = 1\noutput_per_million = 1\n')
    assert client.run(unpriced, {"x": "4"}).priced
    assert json.loads(runner.invoke(cli, ["cost", "--json"]).stdout)["unpriced_calls"] == 3



@pytest.mark.anyio
async def test_mcp_tools_say_the_sentence(mcp, client, unpriced):
    ran = await mcp.call_tool("run_prompt", {"prompt": unpriced, "variables": {"x": "1"}})
    assert not ran.is_error, ran.content[0].text
    assert ran.structured_content["cost_usd"] is None and ran.structured_content["priced"] is False
    assert NOTE in ran.content[0].text
    import time

    for _ in range(100):  # the server's gateway writes its row off the calling thread
        if client.store.db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]:
            break
        time.sleep(0.05)
    metrics = await mcp.call_tool("get_metrics", {"since": "1h"})
    assert "1 call unpriced (model openai/fake-model)" in metrics.content[0].text
    assert metrics.structured_content["unpriced_calls"] == 1
    report = await mcp.call_tool("cost_report", {"since": "1d"})
    assert "1 call unpriced (model openai/fake-model)" in report.content[0].text
    assert report.structured_content["unpriced_models"] == ["openai/fake-model"]


def test_a_bare_shipped_id_routes_to_its_provider_and_exports_without_a_made_up_cost():
    from promstack.gateway import resolve_route
    from promstack.monitoring import otel

    route = resolve_route("claude-3-5-haiku-latest", {}, {})
    assert (route.provider, route.route) == ("anthropic", "litellm")
    span = otel.span({"call_id": "a" * 32, "timestamp": "2026-01-09T12:00:00Z", "model": "x",
                      "latency_ms": 1.0, "status": "ok", "cost_usd": None})
    assert "promstack.cost_usd" not in {a["key"] for a in span["attributes"]}  # unknown, not 0
