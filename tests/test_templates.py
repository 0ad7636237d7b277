"""Templates: variables detected and declared, sandboxed rendering, includes of stored prompts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promstack import InvalidInput, NotFound


def test_variables_are_detected_from_the_template(client):
    v = client.create_prompt("p", "Dear {{ name }}, your order {{ order.id }} {% if vip %}(VIP){% endif %}")
    assert v.variables == [
        {"name": "name", "type": "string", "required": True},
        {"name": "order", "type": "string", "required": True},
        {"name": "vip", "type": "string", "required": True},
    ]


def test_loop_variables_are_not_inputs(client):
    v = client.create_prompt("p", "{% for item in items %}- {{ item }}\n{% endfor %}{% set x = 1 %}{{ x }}")
    assert [x["name"] for x in v.variables] == ["items"]


def test_type_description_and_default_come_from_model_config(client):
    v = client.create_prompt(
        "p",
        "Answer in {{ language }} within {{ limit }} words: {{ question }}",
        model_config={
            "model": "gpt-4o",
            "variables": {
                "language": {"type": "string", "description": "reply language", "default": "Korean"},
                "limit": {"type": "integer", "default": 50},
                "question": {"description": "what the customer asked"},
                "unused": {"type": "boolean", "default": False},
            },
        },
    )
    assert v.variables == [
        {"name": "language", "type": "string", "required": False, "description": "reply language",
         "default": "Korean"},
        {"name": "limit", "type": "integer", "required": False, "default": 50},
        {"name": "question", "type": "string", "required": True, "description": "what the customer asked"},
        {"name": "unused", "type": "boolean", "required": False, "default": False},
    ]
    assert v.render(question="Where?") == "Answer in Korean within 50 words: Where?"
    assert v.render(question="Where?", language="English", limit=10) == "Answer in English within 10 words: Where?"


def test_bad_variable_declarations(client):
    with pytest.raises(InvalidInput, match="'x' has type 'str'"):
        client.create_prompt("p", "{{ x }}", model_config={"variables": {"x": {"type": "str"}}})
    with pytest.raises(InvalidInput, match="model_config.variables must map"):
        client.create_prompt("p", "{{ x }}", model_config={"variables": ["x"]})
    assert client.list_prompts() == []


def test_missing_variable_is_an_error_that_names_it(client):
    v = client.create_prompt("p", "Hello {{ name }}, about {{ topic }}")
    with pytest.raises(InvalidInput, match="'topic'") as caught:
        v.render(name="Ana")
    assert "'name'" not in str(caught.value)
    with pytest.raises(InvalidInput, match="variables 'name', 'topic'"):
        v.render()
    assert client.render("p", {"name": "Ana", "topic": "refunds"}) == "Hello Ana, about refunds"


def test_missing_nested_attribute_names_it(client):
    v = client.create_prompt("p", "Order {{ order.id }}")
    with pytest.raises(InvalidInput, match="'id'"):
        v.render(order={})
    assert v.render(order={"id": 7}) == "Order 7"


def test_rendering_is_sandboxed(client):
    with pytest.raises(InvalidInput, match="private attribute"):
        client.create_prompt("p", "{{ x.__class__.__mro__ }}")
    with pytest.raises(InvalidInput, match="private attribute '__class__'"):
        client.create_prompt("r", "{{ ''.__class__ }}")
    v = client.create_prompt("q", "{{ x|attr('__class__') }}")  # only visible at render time
    with pytest.raises(InvalidInput, match="sandbox forbids"):
        v.render(x="s")


@pytest.mark.parametrize(
    ("template", "values", "words"),
    [
        ("{{ 1 / n }}", {"n": 0}, "division by zero"),
        ("{{ text + 1 }}", {"text": "a"}, "concatenate"),
        ("{{ range(n) | length }}", {"n": 10**7}, "Range too big"),
        ("{{ x.mro() }}", {"x": "s"}, "has no attribute 'mro'"),
    ],
)
def test_a_template_failing_on_its_values_is_invalid_input(client, template, values, words):
    v = client.create_prompt("p", template)
    with pytest.raises(InvalidInput, match=words) as caught:
        v.render(**values)
    assert "'p' v1" in str(caught.value)


def test_syntax_error_is_invalid_input(client):
    with pytest.raises(InvalidInput, match="does not parse at line 2"):
        client.create_prompt("p", "fine\n{{ broken ")
    assert client.list_prompts() == []


def test_no_html_escaping_and_trailing_newline_kept(client):
    v = client.create_prompt("p", "<b>{{ x }}</b>\n")
    assert v.render(x="a & b") == "<b>a & b</b>\n"


def test_include_head_of_main(client):
    client.create_prompt("shared/tone", "Be warm.")
    v = client.create_prompt("support/refund", 'Refund {{ order }}. {% include "shared/tone" %}')
    assert v.render(order=7) == "Refund 7. Be warm."
    client.save("shared/tone", "Be brief.")
    # unpinned: resolved at render time from the store
    assert client.get_prompt("support/refund").render(order=7) == "Refund 7. Be brief."


def test_include_pinned_to_a_version_or_a_label(client):
    client.create_prompt("shared/tone", "Be warm.")
    client.save("shared/tone", "Be brief.")
    client.save("shared/tone", "Be loud.")
    client.set_label("shared/tone", "production", 2, force=True, reason="release")  # no suite: forced
    v = client.create_prompt(
        "p", '{% include "shared/tone@1" %} / {% include "shared/tone@production" %} / {% include "shared/tone" %}'
    )
    assert v.render() == "Be warm. / Be brief. / Be loud."
    client.set_label("shared/tone", "production", 3, force=True, reason="release")
    assert v.render() == "Be warm. / Be loud. / Be loud."


def test_included_variables_are_declared_by_the_includer(client):
    client.create_prompt("shared/sign", "-- {{ agent }}", model_config={"variables": {"agent": {"default": "Bot"}}})
    v = client.create_prompt("p", 'Hi {{ name }}\n{% include "shared/sign" %}')
    assert [x["name"] for x in v.variables] == ["name", "agent"]
    assert v.render(name="Ana") == "Hi Ana\n-- Bot"


def test_include_of_unknown_prompt_or_selector_is_refused(client):
    with pytest.raises(NotFound, match="'shared/none'"):
        client.create_prompt("p", '{% include "shared/none" %}')
    client.create_prompt("shared/tone", "Be warm.")
    with pytest.raises(NotFound, match="no version 5"):
        client.create_prompt("p", '{% include "shared/tone@5" %}')
    with pytest.raises(NotFound, match="no label 'production'"):
        client.create_prompt("p", '{% include "shared/tone@production" %}')
    assert [p.name for p in client.list_prompts()] == ["shared/tone"]


def test_include_must_be_a_literal_name(client):
    with pytest.raises(InvalidInput, match="quoted string"):
        client.create_prompt("p", "{% include which %}")


def test_self_include_and_cycles_are_refused(client):
    with pytest.raises(InvalidInput, match="cannot include itself"):
        client.create_prompt("a", '{% include "a" %}')
    client.create_prompt("a", "plain a")
    client.create_prompt("b", 'b then {% include "a" %}')
    with pytest.raises(InvalidInput, match=r"cycle \(a -> b -> a\)"):
        client.save("a", 'a then {% include "b" %}')
    client.create_prompt("c", 'c then {% include "b" %}')
    with pytest.raises(InvalidInput, match=r"cycle \(a -> c -> b -> a\)"):
        client.save("a", 'a then {% include "c" %}')
    assert client.get_prompt("a").template == "plain a"


def test_pinned_include_of_an_old_version_is_no_cycle(client):
    client.create_prompt("a", "plain a")
    client.create_prompt("b", 'b then {% include "a@1" %}')
    # a's head may include b: b pins a@1, which includes nothing
    v = client.save("a", 'a then {% include "b" %}')
    assert v.render() == "a then b then plain a"


def test_pinned_include_that_leads_back_is_still_a_cycle(client):
    client.create_prompt("b", "plain b")
    client.create_prompt("a", 'a then {% include "b" %}')
    # a@1 includes b's head, so b including a@1 loops
    with pytest.raises(InvalidInput, match=r"cycle \(b -> a -> b\)"):
        client.save("b", 'b then {% include "a@1" %}')


def test_get_prompt_raw_or_resolved(client):
    client.create_prompt("shared/tone", "Be warm to {{ name }}.")
    client.create_prompt("p", 'Hello. {% include "shared/tone" %} Bye.')
    raw = client.get_prompt("p")
    resolved = client.get_prompt("p", resolved=True)
    assert raw.template == 'Hello. {% include "shared/tone" %} Bye.'
    assert resolved.template == "Hello. Be warm to {{ name }}. Bye."
    assert resolved.version == raw.version


def test_dependency_rows_are_recorded(client):
    client.create_prompt("shared/tone", "Be warm.")
    client.create_prompt("shared/sign", "Bye.")
    client.set_label("shared/tone", "production", 1, force=True, reason="release")  # no suite: forced
    client.create_prompt("p", '{% include "shared/tone" %}')
    client.save("p", '{% include "shared/tone@production" %} {% include "shared/sign@1" %}')
    assert client.dependents("shared/tone") == [
        {"name": "p", "version": 1, "selector": ""},
        {"name": "p", "version": 2, "selector": "production"},
    ]
    assert client.dependents("shared/sign") == [{"name": "p", "version": 2, "selector": "1"}]
    assert client.dependents("p") == []


def test_chat_messages_can_include_and_render(client):
    client.create_prompt("shared/tone", "Be warm.")
    v = client.create_prompt(
        "chat", [{"role": "system", "content": '{% include "shared/tone" %}'},
                 {"role": "user", "content": "{{ q }}"}],
    )
    assert v.render(q="Hi") == [{"role": "system", "content": "Be warm."}, {"role": "user", "content": "Hi"}]
    with pytest.raises(InvalidInput, match="'q'"):
        v.render()


def test_a_chat_prompt_cannot_be_included(client):
    client.create_prompt("chat", [{"role": "user", "content": "hi"}])
    with pytest.raises(InvalidInput, match="chat prompt"):
        client.create_prompt("p", '{% include "chat" %}')


def test_chat_message_validation(client):
    with pytest.raises(InvalidInput, match="role 'robot'"):
        client.create_prompt("p", [{"role": "robot", "content": "x"}])
    with pytest.raises(InvalidInput, match="no messages"):
        client.create_prompt("p", [])
    with pytest.raises(InvalidInput, match="message 2"):
        client.create_prompt("p", [{"role": "user", "content": "x"}, {"role": "user"}])
    with pytest.raises(InvalidInput, match="content of message 1 is empty"):
        client.create_prompt("p", [{"role": "user", "content": "  "}])
    assert client.list_prompts() == []


_bits = st.sampled_from([
    "{{ x }}", "{{ y }}", "{{ x.y }}", "{{x}}", "{", "}", "{{", "}}", "{%", "%}", "{% if x %}", "{% endif %}",
    "{% for i in xs %}", "{% endfor %}", "text", " ", "\n", '"', "'", "{# c #}", "{% raw %}", "{% endraw %}",
    "{{ x.__class__ }}", "{% include 'shared/a' %}", '{% include "b@2" %}', "{{ x | upper }}", "{{ x | nope }}",
    "{%- if y -%}", "#", "%", "{{ '}}' }}", "{{ {'a': 1} }}",
])


@settings(max_examples=400, deadline=None)
@given(sources=st.lists(st.lists(_bits, max_size=8).map("".join), min_size=2, max_size=8))
def test_analysis_cached_by_structure_equals_a_fresh_parse(sources):
    """Saves reuse the analysis of an earlier template with the same tags; it must be exactly
    what parsing this template afresh gives, errors included."""
    from store.template import _analyse_parsed, _analyse_source

    def outcome(analyse):
        try:
            return analyse(source)
        except InvalidInput:
            return "invalid"

    for source in sources:
        assert outcome(_analyse_source) == outcome(_analyse_parsed), source


def test_resolved_chat_prompt_expands_includes_in_each_message(client):
    client.create_prompt("shared/tone", "Be warm.")
    client.create_prompt(
        "chat", [{"role": "system", "content": 'Rules. {% include "shared/tone" %}'},
                 {"role": "user", "content": "{{ q }}"}],
    )
    assert client.get_prompt("chat", resolved=True).template == [
        {"role": "system", "content": "Rules. Be warm."},
        {"role": "user", "content": "{{ q }}"},
    ]
    assert client.get_prompt("chat").template[0]["content"] == 'Rules. {% include "shared/tone" %}'


def test_large_templates_are_not_kept_in_memory(client):
    from store.template import CACHED_SOURCE_MAX, _compile_cached, _parse_cached, _substitution

    big = "x" * CACHED_SOURCE_MAX + " {{ name }}"
    parsed, compiled = _parse_cached.cache_info().currsize, _compile_cached.cache_info().currsize
    plans = _substitution.cache_info().currsize
    v = client.create_prompt("big", big)
    assert v.render(name="n").endswith(" n")
    assert _parse_cached.cache_info().currsize == parsed
    assert _compile_cached.cache_info().currsize == compiled
    assert _substitution.cache_info().currsize == plans
    # a source new to the cache (with a filter, so Jinja compiles it rather than substituting)
    client.create_prompt("small", f"hi {{{{ name | lower }}}} {id(big)}").render(name="n")
    assert _compile_cached.cache_info().currsize == compiled + 1
