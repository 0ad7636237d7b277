"""Prompty files as the Prompty runtime reads them: configuration in all its spellings, inputs in
both forms, references, rendering first and splitting at role lines after, and write-backs that
change only what changed."""

from __future__ import annotations

import pytest

from promstack import Client
from store import Store, formats
from store.filesync import FileSync, open_errors
from store.formats import FormatError


def _render(store, text, values=None, name="p", path=None):
    parsed = formats.parse("prompty", text, path=path)
    version = store.prompts.create_prompt(name, parsed.template, model_config=parsed.model_config)
    return version.render(**(values or {}))


# ---- configuration ---------------------------------------------------------------------

V1_AZURE = """---
name: Basic Prompt
description: A basic prompt that uses the chat API to answer questions
authors:
  - sethjuarez
model:
  api: chat
  configuration:
    type: azure_openai
    azure_deployment: gpt-35-turbo
    azure_endpoint: ${env:AZURE_OPENAI_ENDPOINT}
    api_key: ${env:AZURE_OPENAI_KEY}
  parameters:
    max_tokens: 128
    temperature: 0.2
inputs:
  firstName:
    type: string
    sample: Jane
  question:
    type: string
    sample: What is the meaning of life?
sample:
  firstName: Jane
  question: What is the meaning of life?
---
system:
You are an AI assistant who helps {{firstName}} find information.

user:
{{question}}
"""


def test_v1_configuration_mapping_reads_the_deployment_and_never_stores_references():
    parsed = formats.parse("prompty", V1_AZURE)
    config = parsed.model_config
    assert config["model"] == "gpt-35-turbo" and config["provider"] == "azure"
    assert config["max_tokens"] == 128 and config["temperature"] == 0.2
    assert "${env" not in repr(config) and "api_key" not in repr(config)


@pytest.mark.parametrize("configuration", ["${env:AZURE_OPENAI_CONFIG}", "my-shared-connection"])
def test_configuration_given_as_a_reference_or_a_name_loads(configuration):
    text = f"---\nmodel:\n  api: chat\n  configuration: {configuration}\n  parameters:\n    max_tokens: 50\n---\nuser:\nhi\n"
    parsed = formats.parse("prompty", text)
    assert parsed.model_config == {"max_tokens": 50}
    assert formats.render("prompty", parsed.template, parsed.model_config, existing=text) == text


def test_connection_azure_deployment_is_the_model():
    text = ("---\nmodel:\n  provider: azure\n  connection:\n    kind: key\n    endpoint: ${env:AZURE_ENDPOINT}\n"
            "    azure_deployment: gpt-4o-mini\n---\nuser:\nhi\n")
    assert formats.parse("prompty", text).model_config == {"model": "gpt-4o-mini", "provider": "azure"}


def test_model_as_a_string_and_options_in_camel_case():
    assert formats.parse("prompty", "---\nmodel: gpt-4o\n---\nhi\n").model_config == {"model": "gpt-4o"}
    text = "---\nmodel:\n  id: gpt-4o\n  options:\n    maxOutputTokens: 200\n    topP: 0.9\n---\nhi\n"
    assert formats.parse("prompty", text).model_config == {"model": "gpt-4o", "max_tokens": 200, "top_p": 0.9}


def test_an_env_reference_where_a_value_is_needed_is_refused_naming_the_field():
    with pytest.raises(FormatError, match=r"'model\.id' is a reference \(\$\{env:MODEL\}\)"):
        formats.parse("prompty", "---\nmodel:\n  id: ${env:MODEL}\n---\nhi\n")


# ---- inputs ----------------------------------------------------------------------------

NEW_LIST_INPUTS = """---
name: basic
model:
  id: gpt-4o
inputs:
  - name: firstName
    kind: string
    default: Jane
  - name: context
    kind: string
    description: optional context
  - name: question
    kind: string
    required: true
---
system:
Help {{firstName}}.{{context}}

user:
{{question}}
"""


def test_inputs_in_the_list_form(store):
    variables = formats.parse("prompty", NEW_LIST_INPUTS).model_config["variables"]
    assert variables == {"firstName": {"type": "string", "default": "Jane"},
                         "context": {"type": "string", "description": "optional context", "default": ""},
                         "question": {"type": "string"}}
    # As the runtime: `context` is neither given nor required, so it renders empty; `question`
    # is required and must be given.
    assert _render(store, NEW_LIST_INPUTS, {"question": "Why?"}) == [
        {"role": "system", "content": "Help Jane."}, {"role": "user", "content": "Why?"}]
    with pytest.raises(Exception, match="'question'"):
        _render(store, NEW_LIST_INPUTS, name="q")


def test_inputs_from_a_file_reference_next_to_the_prompty(tmp_path, store):
    (tmp_path / "schema.json").write_text('[{"name": "question", "kind": "string", "default": "What is AI?"}]')
    path = tmp_path / "ref.prompty"
    text = "---\nmodel:\n  id: gpt-4\ninputs: ${file:schema.json}\n---\nuser:\n{{question}}\n"
    path.write_text(text)
    assert _render(store, text, path=path) == [{"role": "user", "content": "What is AI?"}]
    with pytest.raises(FormatError, match="'inputs' refers to a file"):
        formats.parse("prompty", text)  # no path: nothing to resolve it against
    outside = "---\ninputs: ${file:../../etc/passwd}\n---\nhi\n"
    with pytest.raises(FormatError, match="'inputs' refers to ../../etc/passwd, outside the workspace"):
        formats.parse("prompty", outside, path=path, root=tmp_path)


def test_nunjucks_is_read_as_jinja_and_what_is_not_supported_names_its_field():
    text = "---\ntemplate:\n  format:\n    kind: nunjucks\n  parser:\n    kind: prompty\n---\nuser:\n{{ q }}\n"
    assert formats.parse("prompty", text).template == [{"role": "user", "content": "{{ q }}"}]
    with pytest.raises(FormatError, match=r"^'template: handlebars' is not supported"):
        formats.parse("prompty", "---\ntemplate: handlebars\n---\nuser:\n{{q}}\n")
    with pytest.raises(FormatError, match=r"^'template.format.kind: liquid' is not supported"):
        formats.parse("prompty", "---\ntemplate:\n  format:\n    kind: liquid\n---\nuser:\n{{q}}\n")
    with pytest.raises(FormatError, match=r"^'base' refers to a file \(../shared.prompty\)"):
        formats.parse("prompty", "---\nbase: ../shared.prompty\n---\nuser:\nhi\n")  # no path: no workspace


# ---- rendering: the whole text first, the messages after --------------------------------

HISTORY = """---
model:
  id: gpt-4o
inputs:
  - name: history
    kind: object
  - name: question
    kind: string
---
system:
You are a helpful assistant.

{% for item in history %}
{{item.role}}:
{{item.content}}
{% endfor %}

user:
{{question}}
"""


def test_a_history_loop_printing_role_lines_makes_separate_messages(store):
    parsed = formats.parse("prompty", HISTORY)
    assert isinstance(parsed.template, str) and parsed.model_config["template_roles"] == "prompty"
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    assert _render(store, HISTORY, {"history": history, "question": "Refunds?"}) == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Refunds?"},
    ]


def test_literal_role_lines_inside_a_condition_split_after_rendering(store):
    text = "---\n---\nsystem:\nBe brief.\n{% if example %}\nuser:\n2+2?\nassistant:\n4\n{% endif %}\nuser:\n{{ q }}\n"
    assert [m["role"] for m in _render(store, text, {"example": True, "q": "3+3?"})] == \
        ["system", "user", "assistant", "user"]
    assert [m["role"] for m in _render(store, text, {"example": False, "q": "3+3?"}, name="p2")] == \
        ["system", "user"]


def test_name_attributes_are_kept_through_the_store_and_the_file(store):
    text = '---\nmodel: gpt-4o\n---\nsystem:\nYou answer.\n\nuser[name="Alice"]:\n{{q}}\n'
    parsed = formats.parse("prompty", text)
    assert parsed.template[1] == {"role": "user", "name": "Alice", "content": "{{q}}"}
    assert _render(store, text, {"q": "hi"})[1] == {"role": "user", "name": "Alice", "content": "hi"}
    fresh = formats.render("prompty", parsed.template, parsed.model_config)
    assert 'user[name="Alice"]:' in fresh


def test_text_before_the_first_role_line_is_a_system_message():
    assert formats.parse("prompty", "---\n---\nBe brief.\n\nuser:\nhi\n").template == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


# ---- round trip: only what changed -------------------------------------------------------

# Shapes the runtime's own samples have: comments, key order, quoting, tools, flow lists.
NEW_SHAPE = """---
# A chat prompt for the support desk.
name: support-chat
description: "Answers support questions"
metadata:
  authors: [alice, bob]
model:
  id: gpt-4o   # the deployment we pay for
  provider: openai
  apiType: chat
  connection:
    kind: key
    apiKey: ${env:OPENAI_API_KEY}
  options:
    temperature: 0.7
    maxOutputTokens: 1000
tools:
  - name: get_weather
    kind: function
    parameters:
      - name: city
        kind: string
inputs:
  - name: question
    kind: string
    default: 'Where is my order?'
---
system:
You are a support assistant.

user:
{{question}}
"""

MODEL_STRING_SHAPE = """---
name: quick
model: gpt-4o  # fast enough
---
user:
{{q}}
"""


@pytest.mark.parametrize("text", [V1_AZURE, NEW_SHAPE, MODEL_STRING_SHAPE, HISTORY],
                         ids=["v1", "newer", "model-string", "history-loop"])
def test_editing_the_template_changes_only_the_body(text):
    parsed = formats.parse("prompty", text)
    front_end = text.index("---\n", 4) + 4
    unchanged = formats.render("prompty", parsed.template, parsed.model_config, existing=text)
    assert unchanged == text
    if isinstance(parsed.template, str):
        template = parsed.template.replace("helpful", "very helpful")
    else:
        template = [{**m, "content": m["content"] + " Be brief."} for m in parsed.template]
    edited = formats.render("prompty", template, parsed.model_config, existing=text)
    assert edited[:front_end] == text[:front_end]  # the front matter, byte for byte
    assert formats.parse("prompty", edited).template == template


def test_a_config_change_rewrites_only_that_key():
    parsed = formats.parse("prompty", NEW_SHAPE)
    changed = formats.render("prompty", parsed.template, {**parsed.model_config, "temperature": 0.3},
                             existing=NEW_SHAPE)
    assert changed == NEW_SHAPE.replace("temperature: 0.7", "temperature: 0.3")
    added = formats.render("prompty", parsed.template, {**parsed.model_config, "top_p": 0.5}, existing=NEW_SHAPE)
    assert added == NEW_SHAPE.replace("    maxOutputTokens: 1000\n", "    maxOutputTokens: 1000\n    topP: 0.5\n")


def test_v1_keeps_parameters_snake_case_and_the_deployment_key():
    parsed = formats.parse("prompty", V1_AZURE)
    config = {**parsed.model_config, "model": "gpt-4o", "max_tokens": 256}
    changed = formats.render("prompty", parsed.template, config, existing=V1_AZURE)
    assert changed == V1_AZURE.replace("azure_deployment: gpt-35-turbo", "azure_deployment: gpt-4o") \
        .replace("max_tokens: 128", "max_tokens: 256")


def test_model_as_a_string_stays_a_string():
    parsed = formats.parse("prompty", "---\nname: quick\nmodel: gpt-4o\n---\nuser:\n{{q}}\n")
    changed = formats.render("prompty", parsed.template, {**parsed.model_config, "model": "gpt-4o-mini"},
                             existing="---\nname: quick\nmodel: gpt-4o\n---\nuser:\n{{q}}\n")
    assert changed == "---\nname: quick\nmodel: gpt-4o-mini\n---\nuser:\n{{q}}\n"


def test_a_save_through_the_sdk_keeps_the_front_matter(isolated_store, tmp_path):
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    path = prompts_dir / "support.prompty"
    path.write_text(NEW_SHAPE)
    with Client(isolated_store) as client:
        FileSync(client.store, prompts_dir, root=tmp_path).sync(path)
        head = client.get_prompt("support")
        client.save("support", [head.template[0], {"role": "user", "content": "Q: {{question}}"}])
        assert path.read_text() == NEW_SHAPE.replace("user:\n{{question}}", "user:\nQ: {{question}}")
        client.save("support", model_config={**head.model_config, "temperature": 0.1})
        assert path.read_text() == NEW_SHAPE.replace("user:\n{{question}}", "user:\nQ: {{question}}") \
            .replace("temperature: 0.7", "temperature: 0.1")


# ---- the watcher's status -------------------------------------------------------------------

def test_a_refused_file_is_listed_with_its_sentence_in_the_watchers_words(store, tmp_path):
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "derived.prompty").write_text("---\nbase: shared.prompty\n---\nuser:\nhi\n")
    sync = FileSync(store, prompts_dir, root=tmp_path)
    results = sync.reconcile()
    assert [r.action for r in results] == ["error"]
    errors = open_errors(store.db)
    assert [e["path"] for e in errors] == ["prompts/derived.prompty"]
    reason = errors[0]["error"]
    assert reason.startswith("'base' refers to shared.prompty, which cannot be read")
    assert reason.count(". ") == 0 and "update_prompt" not in reason and "--" not in reason


THREADED = """---
name: threaded-chat
model:
  id: gpt-4
  apiType: chat
inputs:
  - name: question
    kind: string
    default: Hello
  - name: conversation
    kind: thread
---
system:
You are a helpful assistant.

{{conversation}}

user:
{{question}}
"""


def test_a_thread_input_becomes_messages_where_the_template_prints_it(store):
    conversation = [{"role": "user", "name": "Bo", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert _render(store, THREADED, {"conversation": conversation, "question": "Refunds?"}) == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "name": "Bo", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Refunds?"},
    ]
    # No conversation yet: it renders empty, as in the runtime.
    assert _render(store, THREADED, name="t2") == [
        {"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello"}]
    parsed = formats.parse("prompty", THREADED)
    assert formats.render("prompty", parsed.template, parsed.model_config, existing=THREADED) == THREADED


# Shaped like the runtime's docs samples: a folded plain scalar under `sample`, sequences at the
# margin, double quotes on an empty default.
DOCS_SHAPE = """---
name: ExamplePrompt
description: A prompt that uses context to ground an incoming question
authors:
- Seth Juarez
model:
  api: chat
  configuration:
    type: azure_openai
    azure_deployment: gpt-4o
  parameters:
    max_tokens: 3000
inputs:
  context:
    type: string
    sample: ""
  question:
    type: string
    description: what is asked
    sample: What kind of clothing do you suggest?
sample:
  context: >
    The Alpine Explorer Tent boasts a detachable divider for privacy,<SP>
    numerous mesh windows and adjustable vents for ventilation.
  note: plain text folded
    over two lines
---
system:
Use the context: {{context}}

user:
{{question}}
""".replace("<SP>", " ")  # a trailing space, as the docs sample has


def test_changes_rewrite_only_their_lines_in_a_docs_shaped_file():
    parsed = formats.parse("prompty", DOCS_SHAPE)
    config = {**parsed.model_config, "max_tokens": 1000}
    assert formats.render("prompty", parsed.template, config, existing=DOCS_SHAPE) == \
        DOCS_SHAPE.replace("max_tokens: 3000", "max_tokens: 1000")
    variables = dict(config["variables"])
    variables["question"] = {**variables["question"], "description": "the customer's question"}
    changed = formats.render("prompty", parsed.template, {**config, "variables": variables}, existing=DOCS_SHAPE)
    assert changed == DOCS_SHAPE.replace("max_tokens: 3000", "max_tokens: 1000") \
        .replace("description: what is asked", "description: the customer's question")


def test_a_change_is_not_written_over_a_reference(tmp_path):
    (tmp_path / "schema.json").write_text('[{"name": "q", "kind": "string", "default": "x"}]')
    path = tmp_path / "ref.prompty"
    text = "---\nmodel:\n  id: gpt-4\ninputs: ${file:schema.json}\n---\nuser:\n{{q}}\n"
    parsed = formats.parse("prompty", text, path=path, root=tmp_path)
    edited = formats.render("prompty", [{"role": "user", "content": "Q: {{q}}"}], parsed.model_config,
                            existing=text, path=path, root=tmp_path)
    assert edited == text.replace("{{q}}", "Q: {{q}}")
    with pytest.raises(FormatError, match=r"^'inputs' in the file is a reference \(\$\{file:schema.json\}\)"):
        formats.render("prompty", parsed.template, {**parsed.model_config, "variables": {}},
                       existing=text, path=path, root=tmp_path)


def test_the_gateway_sends_the_runtimes_messages(client, fake_llm):
    parsed = formats.parse("prompty", HISTORY.replace("user:\n{{question}}", 'user[name="Alice"]:\n{{question}}'))
    config = {**parsed.model_config, "model": "openai/fake-model", "api_base": fake_llm.base_url,
              "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}
    client.create_prompt("history", parsed.template, model_config=config)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    client.run("history", {"history": history, "question": "Refunds?"})
    assert fake_llm.requests[-1]["json"]["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "name": "Alice", "content": "Refunds?"},
    ]


def test_a_write_back_removes_only_the_message_line():
    text = "---\nname: p  # keep\nmessage: tone approved\nmodel:\n  id: gpt-4o\n---\nuser:\nhi\n"
    parsed = formats.parse("prompty", text)
    assert parsed.message == "tone approved"
    assert formats.render("prompty", parsed.template, parsed.model_config, existing=text) == \
        text.replace("message: tone approved\n", "")


@pytest.mark.anyio
async def test_an_update_through_mcp_rewrites_only_the_body(mcp, isolated_store):
    root = isolated_store.parent.parent
    prompts_dir = root / "prompts"
    prompts_dir.mkdir(exist_ok=True)
    path = prompts_dir / "docs.prompty"
    path.write_text(DOCS_SHAPE)
    store = Store(isolated_store)
    try:
        FileSync(store, prompts_dir, root=root).sync(path)
    finally:
        store.close()
    template = '[{"role": "system", "content": "Use only the context: {{context}}"}, {"role": "user", "content": "{{question}}"}]'
    result = await mcp.call_tool("update_prompt", {"prompt": "docs", "template": template})
    assert not result.is_error
    assert path.read_text() == DOCS_SHAPE.replace("Use the context:", "Use only the context:")


def test_options_under_additional_properties_are_read_and_left_where_they_are():
    text = ("---\nmodel:\n  id: gpt-4o\n  options:\n    temperature: 0.5\n    additionalProperties:\n"
            "      seed: 7\n---\nuser:\nhi\n")
    parsed = formats.parse("prompty", text)
    assert parsed.model_config == {"model": "gpt-4o", "temperature": 0.5, "seed": 7}
    changed = formats.render("prompty", parsed.template, {**parsed.model_config, "temperature": 0.1}, existing=text)
    assert changed == text.replace("temperature: 0.5", "temperature: 0.1")
