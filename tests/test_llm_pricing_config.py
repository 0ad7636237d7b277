"""Prices from litellm's packaged JSON (litellm not imported) and the config.toml loader."""

from __future__ import annotations

import subprocess
import sys

import pytest

from promstack import config
from promstack.gateway import pricing, tokens
from store.errors import InvalidInput


def test_prices_come_from_litellms_json_without_importing_it():
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; from promstack.gateway import pricing; "
         "print(pricing.cost('gpt-4o', 150, 200), pricing.provider_of('gpt-4o-mini'), 'litellm' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    cost, provider, imported = done.stdout.split()
    assert float(cost) == pytest.approx(150 * 2.5e-06 + 200 * 1e-05)
    assert provider == "openai" and imported == "False"


def test_cost_lookups():
    assert pricing.cost("openai/gpt-4o", 1000, 0) == pytest.approx(pricing.cost("gpt-4o", 1000, 0))
    # a model nobody priced has an unknown cost, not $0 (this line used to expect 0.0)
    assert pricing.cost("my-local-model", 1000, 1000) is None
    assert pricing.cost("x", 10, 10, input_cost_per_token=1.0, output_cost_per_token=2.0) == 30.0
    assert pricing.lookup("gpt-4o-mini")["input_cost_per_token"] == pytest.approx(1.5e-07)  # the seed's $0.15/1M


def test_token_counts_offline():
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens([{"role": "user", "content": "hello world"}]) == 2 + 4 + 3


def test_one_token_counter_picks_the_model_s_tokenizer():
    # the gateway, budgets and the cost advice count with one counter, by model
    assert tokens.tokenizer_name("openai/gpt-4o-mini") == "o200k_base"
    assert tokens.tokenizer_name("gpt-3.5-turbo") == "cl100k_base"
    text = "토큰은 모델마다 다르게 센다 " * 20
    assert tokens.count_tokens(text, "gpt-4o") != tokens.count_tokens(text, "gpt-3.5-turbo")
    messages = [{"role": "user", "content": text}]
    assert tokens.count_tokens(messages, "gpt-4o") == tokens.count_tokens(text, "gpt-4o") + 4 + 3
    from promstack.monitoring import costs

    assert costs.count_tokens is tokens.count_tokens and costs.tokenizer_name is tokens.tokenizer_name


def test_config_sections_and_per_prompt_overrides(tmp_path):
    (tmp_path / ".promstack").mkdir(exist_ok=True)
    path = config.config_path(tmp_path)
    path.write_text('[cache]\nttl = 60\n[guard]\ninjection = "flag"\n'
                    '[prompts."support/refund".guard]\ninjection = "block"\n[other]\nkept = 1\n',
                    encoding="utf-8")
    conf = config.load(tmp_path)
    assert conf.section("cache", {"ttl": 3600, "enabled": True}) == {"ttl": 60, "enabled": True}
    assert conf.for_prompt("support/refund", "guard")["injection"] == "block"
    assert conf.for_prompt("other/prompt", "guard")["injection"] == "flag"
    assert conf.section("other") == {"kept": 1} and conf.section("missing") == {}
    assert config.load(tmp_path) is conf  # re-read only when the file changes
    path.write_text("[cache\n", encoding="utf-8")
    import os
    os.utime(path, ns=(1, 1))
    with pytest.raises(InvalidInput, match="not valid TOML"):
        config.load(tmp_path)
    assert config.load(None).section("cache") == {}
