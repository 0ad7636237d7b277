"""A template of only text and `{{ name }}`s renders without Jinja's per-render set-up when every
name has text (store.template's substitution path); it must render exactly as Jinja does, and
anything else (a filter, a loop, a number, a missing name) must still go through Jinja."""

from __future__ import annotations

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from promstack import InvalidInput
from store.template import Template, render

JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
SOURCES = [
    "전문가로서 답변하세요.\n질문: {{ input }}\n",
    "{{input}}{{ input }} and {{ other }}",
    "  {{- input -}}  \n\n",
    "{# a note #}A {% raw %}{{ not_a_name }}{% endraw %} {{ input }}",
    "no names at all\n",
    "<b>{{ input }}</b> & {{ other }}",
]


@pytest.mark.parametrize("source", SOURCES)
def test_plain_substitution_renders_as_jinja_does(source):
    values = {"input": "환불 <절차> & {{ x }} {% if %}", "other": ""}
    assert render(Template("text", source), values, [], None, label="p") == JINJA.from_string(source).render(values)


@pytest.mark.parametrize(("source", "values"), [
    ("{{ input | upper }}", {"input": "abc"}),
    ("{% for c in input %}{{ c }},{% endfor %}", {"input": "abc"}),
    ("{{ n }} items", {"n": 3}),
    ("{{ items }}", {"items": ["a", 1]}),
    ("{{ input ~ '!' }}", {"input": "a"}),
])
def test_anything_else_still_renders_through_jinja(source, values):
    assert render(Template("text", source), values, [], None, label="p") == JINJA.from_string(source).render(values)


def test_a_missing_name_is_still_named():
    with pytest.raises(InvalidInput, match="'other'"):
        render(Template("text", "{{ input }} {{ other }}"), {"input": "x"}, [], None, label="p")


def test_chat_messages_take_the_same_path():
    chat = Template("chat", '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}]')
    assert render(chat, {"q": "왜?"}, [], None, label="p") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "왜?"}]
