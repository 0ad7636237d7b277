"""A prompt file keeps what the user wrote, and what it does not carry stays as it was: saving a
file without a model config (or with part of one) over a prompt that has one keeps the rest."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from promstack.cli import cli

CONFIG = {"model": "gpt-4o-mini", "temperature": 0.2}


# (file name, first text, an edit that carries no model config)
NO_CONFIG = [
    ("refund.prompt.md", "Refund ${input:item}\n", "Refund the ${input:item} today\n"),
    ("refund.prompt.md", "---\ndescription: refunds\n---\nRefund ${input:item}\n",
     "---\ndescription: refunds, kindly\n---\nRefund ${input:item} kindly\n"),
    ("refund.prompty", "---\nname: refund\n---\nsystem:\nYou help.\n\nuser:\nRefund {{ item }}\n",
     "---\nname: refund\n---\nsystem:\nYou help kindly.\n\nuser:\nRefund {{ item }}\n"),
    ("refund.prompt", "Refund {{item}}\n", "Refund the {{item}} now\n"),
    ("refund.prompt.yml", "messages:\n  - role: user\n    content: Refund {{item}}\n",
     "messages:\n  - role: user\n    content: Refund the {{item}} now\n"),
    ("refund.txt", "Refund {{ item }}", "Refund {{ item }} today"),
]


@pytest.mark.parametrize(("name", "first", "edit"), NO_CONFIG,
                         ids=["prompt.md", "prompt.md-front-matter", "prompty", "dotprompt", "prompt.yml", "txt"])
def test_a_file_without_a_model_config_keeps_the_prompts(sync, store, prompts_dir, name, first, edit):
    path = prompts_dir / name
    path.write_text(first, encoding="utf-8")
    sync.sync(path)
    store.prompts.save("refund", model_config=CONFIG)  # set elsewhere: the CLI, MCP, the dashboard
    path.write_text(edit, encoding="utf-8")
    result = sync.sync(path)
    assert result.action == "saved", result
    head = store.prompts.get("refund")
    assert "now" in str(head.template) or "today" in str(head.template) or "kindly" in str(head.template)
    assert {k: head.model_config.get(k) for k in CONFIG} == CONFIG, head.model_config


def test_keys_the_file_sets_win_and_the_others_are_kept(sync, store, prompts_dir):
    path = prompts_dir / "refund.prompt.md"
    path.write_text("Refund {{ item }}\n", encoding="utf-8")
    sync.sync(path)
    store.prompts.save("refund", model_config={**CONFIG, "max_tokens": 300})
    path.write_text("---\nmodel: gpt-4o\ntemperature: 0.7\n---\nRefund {{ item }}\n", encoding="utf-8")
    sync.sync(path)
    assert store.prompts.get("refund").model_config == {"model": "gpt-4o", "temperature": 0.7, "max_tokens": 300}


def test_promstack_test_still_finds_the_model_after_a_bare_save(sync, store, prompts_dir, tmp_path):
    """The issue's failure: the next `promstack test` said the prompt 'names no model'."""
    path = prompts_dir / "refund.prompt.md"
    path.write_text("---\nmodel: gpt-4o-mini\n---\nRefund {{ input }}\n", encoding="utf-8")
    sync.sync(path)
    path.write_text("Refund {{ input }}, kindly\n", encoding="utf-8")
    sync.sync(path)
    assert store.prompts.get("refund").model_config["model"] == "gpt-4o-mini"


def test_importing_a_bare_file_over_a_prompt_keeps_its_config(client, tmp_path):
    client.create_prompt("refund", "Refund {{ item }}", model_config=CONFIG)
    bare = tmp_path / "refund.prompt.md"
    bare.write_text("Refund the ${input:item} now\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["import", str(bare), "--name", "refund"])
    assert result.exit_code == 0, result.output
    head = client.get_prompt("refund")
    assert head.template.startswith("Refund the") and head.model_config == CONFIG


def test_the_sdk_can_ask_for_the_same_keep(client):
    client.create_prompt("refund", "Refund {{ item }}", model_config=CONFIG)
    kept = client.save("refund", "Refund {{ item }}!", model_config={"temperature": 0.9}, keep_config=True)
    assert kept.model_config == {"model": "gpt-4o-mini", "temperature": 0.9}
    replaced = client.save("refund", "Refund {{ item }}?", model_config={"model": "gpt-4o"})
    assert replaced.model_config == {"model": "gpt-4o"}  # without it, a model_config is the whole config
