"""The one parser of JSON in a model's reply, shared by the JSON assertions and the judge."""

import pytest

from promstack.evals.assertions import check_deterministic
from promstack.evals.json_reply import parse_json_reply, unfence
from promstack.evals.judge import MalformedJudgement, parse_pair


def test_plain_and_fenced_json():
    assert parse_json_reply(' {"a": 1} ') == {"a": 1}
    assert parse_json_reply('```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}
    assert parse_json_reply("```\n[1]\n```\n") == [1]
    assert unfence("```json\nnot json\n```") == "not json"


def test_prose_around_an_object_only_when_embedded():
    reply = 'Here is my verdict: {"winner": "A", "reason": "shorter"} Hope it helps.'
    assert parse_json_reply(reply, embedded=True) == {"winner": "A", "reason": "shorter"}
    with pytest.raises(ValueError, match="line 1 column 1"):
        parse_json_reply(reply)


def test_the_error_says_where_the_json_broke():
    with pytest.raises(ValueError, match=r"Expecting ',' delimiter at line 2 column 1"):
        parse_json_reply('{"a": 1\n"b": 2}')
    with pytest.raises(ValueError):
        parse_json_reply("no braces at all", embedded=True)


def test_assertions_and_judge_use_it():
    assert check_deterministic({"type": "is-json"}, '```json\n{"ok": true}\n```').passed
    check = check_deterministic({"type": "is-json"}, 'sure: {"ok": true}')
    assert not check.passed and "line 1 column 1" in check.reason
    assert parse_pair('The better one: {"winner": "b", "reason": "clearer"}').winner == "B"
    with pytest.raises(MalformedJudgement, match="did not answer in JSON: 'no json'"):
        parse_pair("```json\nno json\n```")
