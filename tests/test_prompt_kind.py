"""`promstack prompt update` edits a prompt in place: plain text for a chat prompt is refused with a
sentence, never saved as a silent change of the prompt's kind."""

from __future__ import annotations

import json

from click.testing import CliRunner

from promstack.cli import cli

CHAT = [{"role": "system", "content": "환불 규정을 따르세요."}, {"role": "user", "content": "{{ input }}"}]


def test_text_for_a_chat_prompt_is_refused_with_a_sentence(client):
    client.create_prompt("support/refund", CHAT, model_config={"model": "gpt-4o-mini"})
    runner = CliRunner()
    result = runner.invoke(cli, ["prompt", "update", "support/refund", "-t", "환불 절차: {{ question }}"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "promstack: prompt 'support/refund' is a chat prompt (messages: system, user) and this template is plain "
        'text; give the messages as JSON, such as [{"role": "system", "content": "..."}, '
        '{"role": "user", "content": "{{ input }}"}], or make a new text prompt'
    )
    head = client.get_prompt("support/refund")
    assert head.version == 1 and head.kind == "chat"
    # messages as JSON keep it a chat prompt
    kinder = [CHAT[0], {"role": "user", "content": "친절하게: {{ input }}"}]
    ok = runner.invoke(cli, ["prompt", "update", "support/refund", "-t", json.dumps(kinder, ensure_ascii=False)])
    assert ok.exit_code == 0, ok.stderr
    assert client.get_prompt("support/refund").kind == "chat"


def test_messages_for_a_text_prompt_are_refused(client):
    client.create_prompt("plain", "hello {{ input }}")
    result = CliRunner().invoke(cli, ["prompt", "update", "plain", "-t", json.dumps(CHAT)])
    assert result.exit_code == 2 and "is a text prompt" in result.stderr
    assert client.get_prompt("plain").kind == "text"
