"""Each file format read into the version model and written back."""

from __future__ import annotations

import json

import pytest

from store import formats
from store.formats import FormatError
from store.formats.handlebars import from_jinja
from store.models import content_hash
from store.template import normalize


def roundtrip(fmt, parsed, existing=None):
    text = formats.render(fmt, parsed.template, parsed.model_config or {}, existing=existing)
    again = formats.parse(fmt, text)
    assert again.template == parsed.template
    assert (again.model_config or {}) == (parsed.model_config or {})
    return text, again


@pytest.mark.parametrize(("filename", "fmt", "name"), [
    ("support/refund.prompt.md", "prompt.md", "support/refund"),
    ("a.prompt.yml", "github", "a"),
    ("a.prompt.yaml", "github", "a"),
    ("x/b.prompty", "prompty", "x/b"),
    ("c.prompt", "dotprompt", "c"),
    ("d.txt", "text", "d"),
    ("e.md", "text", "e"),
    ("f.j2", "text", "f"),
    ("notes.json", None, None),
    (".prompt", None, None),
])
def test_format_and_name_from_the_path(filename, fmt, name):
    assert formats.format_of(filename.rsplit("/", 1)[-1]) == fmt
    if name:
        assert formats.name_for(filename) == name


def test_plain_text_is_the_whole_file_and_has_no_config():
    parsed = formats.parse("text", "---\nnot: front matter\n---\nHi {{ name }}\n")
    assert parsed.template == "---\nnot: front matter\n---\nHi {{ name }}\n"
    assert parsed.model_config is None
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}]
    text = formats.render("text", chat, {})
    assert normalize(formats.parse("text", text).template).value == chat


VSCODE = """---
description: Explain the refund policy
mode: agent
tools: ['codebase', 'fetch']
model: gpt-4o
temperature: 0.3
message: first cut
---
Explain the refund policy for ${input:product:Which product?}.
"""


def test_prompt_md_front_matter_and_body():
    parsed = formats.parse("prompt.md", VSCODE)
    assert parsed.template == "Explain the refund policy for {{ product }}.\n"
    assert parsed.model_config == {"model": "gpt-4o", "temperature": 0.3}
    assert parsed.description == "Explain the refund policy"
    assert parsed.message == "first cut"
    assert formats.parse("prompt.md", "Just a body").model_config == {}


def test_prompt_md_write_back_keeps_unknown_keys_and_drops_the_message():
    parsed = formats.parse("prompt.md", VSCODE)
    text = formats.render("prompt.md", "New body {{ product }}\n", {"model": "gpt-4o-mini"}, existing=VSCODE)
    assert text.endswith("---\nNew body ${input:product:Which product?}\n")
    assert "mode: agent" in text and "codebase" in text and "message" not in text
    again = formats.parse("prompt.md", text)
    assert again.model_config == {"model": "gpt-4o-mini"}
    assert again.description == parsed.description
    roundtrip("prompt.md", parsed, VSCODE)


GITHUB = """name: Text Summarizer
description: Summarizes input text concisely
model: openai/gpt-4o-mini
modelParameters:
  temperature: 0.5
  max_tokens: 200
messages:
  - role: system
    content: You are a text summarizer.
  - role: user
    content: |
      Summarize the given text, beginning with "Summary -":
      <text>
      {{input}}
      </text>
testData:
  - input: |
      The quick brown fox jumped over the lazy dog.
    expected: Summary - A fox jumped over a lazy dog.
evaluators:
  - name: Output should start with 'Summary -'
    string:
      startsWith: 'Summary -'
"""


def test_github_prompt_yml_messages_parameters_and_test_data():
    parsed = formats.parse("github", GITHUB)
    assert parsed.template[0] == {"role": "system", "content": "You are a text summarizer."}
    assert parsed.template[1]["content"].endswith("{{input}}\n</text>")
    assert parsed.model_config == {"model": "openai/gpt-4o-mini", "temperature": 0.5, "max_tokens": 200}
    assert parsed.test_data["testData"][0]["expected"] == "Summary - A fox jumped over a lazy dog."
    assert parsed.test_data["evaluators"][0]["string"] == {"startsWith": "Summary -"}
    text, _ = roundtrip("github", parsed, GITHUB)
    assert "testData" in text and "name: Text Summarizer" in text
    camel = formats.parse("github", GITHUB.replace("max_tokens", "maxTokens"))
    assert camel.model_config["max_tokens"] == 200
    assert "maxTokens" in formats.render("github", camel.template, {**camel.model_config, "max_tokens": 9},
                                         existing=GITHUB.replace("max_tokens", "maxTokens"))


def test_github_prompt_yml_without_messages_is_refused():
    with pytest.raises(FormatError, match="messages"):
        formats.parse("github", "name: x\nmodel: gpt-4o\n")


PROMPTY_V1 = """---
name: Basic Prompt
description: A basic prompt that uses the chat API
authors: [me]
model:
  api: chat
  configuration:
    type: azure_openai
    azure_endpoint: ${env:AZURE_OPENAI_ENDPOINT}
    azure_deployment: gpt-35-turbo
  parameters:
    max_tokens: 128
    temperature: 0.2
inputs:
  question:
    type: string
    sample: Who is the most famous person in the world?
  hint: be brief
---
system:
You are an AI assistant who helps people find information.

user:
{{question}} {{hint}}
"""

PROMPTY_NEW = """---
name: basic-prompt
model:
  id: gpt-4o
  provider: openai
  apiType: chat
  connection:
    kind: key
    apiKey: ${env:OPENAI_API_KEY}
  options:
    temperature: 0.7
    maxOutputTokens: 1000
inputSchema:
  properties:
    - name: firstName
      kind: string
      default: Jane
    - name: question
      kind: string
      description: what to answer
---
system:
You help {{firstName}}.

assistant:
Hello!

user:
{{question}}
"""


def test_prompty_v1_keys():
    parsed = formats.parse("prompty", PROMPTY_V1)
    assert parsed.template == [
        {"role": "system", "content": "You are an AI assistant who helps people find information."},
        {"role": "user", "content": "{{question}} {{hint}}"},
    ]
    assert parsed.model_config["model"] == "gpt-35-turbo"
    assert parsed.model_config["max_tokens"] == 128 and parsed.model_config["temperature"] == 0.2
    assert parsed.model_config["variables"]["hint"] == {"type": "string", "default": "be brief"}
    assert parsed.model_config["variables"]["question"]["default"].startswith("Who is")
    text, _ = roundtrip("prompty", parsed, PROMPTY_V1)
    changed = formats.render("prompty", parsed.template, {**parsed.model_config, "temperature": 0.9},
                             existing=PROMPTY_V1)
    assert "azure_endpoint" in changed and "parameters:" in changed and "options:" not in changed
    assert formats.parse("prompty", changed).model_config["temperature"] == 0.9


def test_prompty_new_keys():
    parsed = formats.parse("prompty", PROMPTY_NEW)
    assert [m["role"] for m in parsed.template] == ["system", "assistant", "user"]
    assert parsed.model_config["model"] == "gpt-4o"
    assert parsed.model_config["provider"] == "openai"
    assert parsed.model_config["max_tokens"] == 1000
    assert parsed.model_config["variables"] == {
        "firstName": {"type": "string", "default": "Jane"},
        # Neither a default nor `required: true`: the Prompty runtime renders it empty.
        "question": {"type": "string", "description": "what to answer", "default": ""},
    }
    text, _ = roundtrip("prompty", parsed, PROMPTY_NEW)
    assert "apiKey" in text and "maxOutputTokens" in text
    fresh = formats.render("prompty", "Hi {{ x }}", {"model": "gpt-4o", "temperature": 0.1})
    assert "id: gpt-4o" in fresh and formats.parse("prompty", fresh).template == "Hi {{ x }}"


def test_prompty_content_hash_is_stable_through_a_write_back():
    parsed = formats.parse("prompty", PROMPTY_NEW)
    text = formats.render("prompty", parsed.template, parsed.model_config, existing=PROMPTY_NEW)
    again = formats.parse("prompty", text)
    assert content_hash(normalize(again.template), again.model_config) == \
        content_hash(normalize(parsed.template), parsed.model_config)


DOTPROMPT = """---
model: googleai/gemini-1.5-flash
config:
  temperature: 0.9
  maxOutputTokens: 256
input:
  schema:
    location: string, where the guest is
    style?: string
  default:
    location: a restaurant
---
{{role "system"}}
You are the world's most welcoming AI assistant at {{location}}.
{{role "user"}}
Greet a guest{{#if style}} in the style of {{style}}{{else}} warmly{{/if}}.
{{! a comment }}
{{#each dishes}}- {{this}} ({{@index}})
{{/each}}
"""


def test_dotprompt_roles_variables_and_config():
    # The body is the template as written (Handlebars, rendered as Handlebars: test_dotprompt.py);
    # this test used to pin a translation to Jinja, which changed what Handlebars means.
    parsed = formats.parse("dotprompt", DOTPROMPT)
    assert parsed.template == DOTPROMPT.split("---\n", 2)[2].strip()
    assert parsed.model_config["template_format"] == "handlebars"
    assert parsed.model_config["model"] == "googleai/gemini-1.5-flash"
    assert parsed.model_config["max_tokens"] == 256
    assert parsed.model_config["variables"]["location"] == {
        "type": "string", "description": "where the guest is", "default": "a restaurant"}
    assert parsed.model_config["variables"]["style"]["default"] == ""
    text, _ = roundtrip("dotprompt", parsed, DOTPROMPT)
    assert text == DOTPROMPT
    # What the store renders from it
    from store import Store

    store = Store(None, actor="t")
    v = store.prompts.create_prompt("greet", parsed.template, model_config=parsed.model_config)
    rendered = v.render(dishes=["soup", "bread"])
    assert rendered[0] == {"role": "system",
                           "content": "\nYou are the world's most welcoming AI assistant at a restaurant.\n"}
    assert rendered[1]["content"] == "\nGreet a guest warmly.\n- soup (0)\n- bread (1)\n"


def test_dotprompt_model_role_is_assistant_and_plain_body_is_text():
    from store import Store

    parsed = formats.parse("dotprompt", '{{role "user"}}\nHi\n{{role "model"}}\nHello\n')
    store = Store(None, actor="t")
    v = store.prompts.create_prompt("p", parsed.template, model_config=parsed.model_config)
    assert v.render() == [{"role": "user", "content": "\nHi\n"}, {"role": "assistant", "content": "\nHello\n"}]
    assert '{{role "model"}}' in formats.render("dotprompt", [{"role": "assistant", "content": "x"}], {})
    assert formats.parse("dotprompt", "Hello {{name}}!").template == "Hello {{name}}!"


@pytest.mark.parametrize("source", [
    "{{#with person}}{{name}}{{/with}}",
    "{{media url=photo}}",
    "{{history}}",
    "{{section 'x'}}",
    "{{lookup a b}}",
    "{{#each xs}}{{../name}}{{/each}}",
    "{{#each m}}{{@key}}{{/each}}",
])
def test_handlebars_once_refused_is_read(source):
    # These were refused while .prompt bodies were translated to Jinja; Handlebars renders them.
    from store import Store

    store = Store(None, actor="t")
    store.prompts.create_prompt("p", source, model_config={"template_format": "handlebars"})


def test_jinja_that_handlebars_cannot_express_is_not_written():
    with pytest.raises(FormatError, match="Handlebars"):
        from_jinja("{{ name | upper }}")
    with pytest.raises(FormatError):
        from_jinja("{% set x = 1 %}")
    assert from_jinja("{% if a == 'x' %}A{% elif b %}B{% endif %}") == "{{#ifEquals a 'x'}}A{{else if b}}B{{/ifEquals}}"


@pytest.mark.parametrize(("fmt", "text", "match"), [
    ("prompt.md", "---\nmodel: [unclosed\n---\nbody", "not valid YAML"),
    ("prompt.md", "---\nmodel: x\nbody without a closing fence", "not closed"),
    ("prompty", "---\n- a\n- b\n---\nbody", "keys and values"),
    ("github", "messages: {role: user}", "messages"),
])
def test_bad_front_matter_says_what_to_fix(fmt, text, match):
    with pytest.raises(FormatError, match=match):
        formats.parse(fmt, text)


def test_a_bom_and_windows_newlines_are_read():
    parsed = formats.parse("prompt.md", "\ufeff---\r\nmodel: gpt-4o\r\n---\r\nHi\r\n")
    assert parsed.model_config == {"model": "gpt-4o"} and parsed.template == "Hi\n"


def test_chat_in_a_prompt_md_cannot_be_written():
    with pytest.raises(FormatError, match="chat"):
        formats.render("prompt.md", [{"role": "user", "content": "x"}], {})


def test_github_test_data_is_json_serialisable():
    parsed = formats.parse("github", GITHUB)
    assert json.loads(json.dumps(parsed.test_data)) == parsed.test_data


# A file saved on Windows (CRLF, often with a BOM) in each format: a template edit through
# PromStack changes only the template's bytes; the line endings and BOM stay as the editor wrote.
_WINDOWS_FILES = {
    "prompt.md": "---\ndescription: Refunds\nmodel: gpt-4o-mini\n---\nAnswer about ${input:order}.\n",
    "github": "name: Refunds\nmodel: openai/gpt-4o-mini\nmessages:\n  - role: user\n    content: Answer about {{order}}.\n",
    "prompty": "---\nname: Refunds\nmodel:\n  api: chat\n  configuration:\n    type: openai\n    name: gpt-4o-mini\n"
               "inputs:\n  order:\n    type: string\n---\nsystem:\nAnswer about {{order}}.\n",
    "dotprompt": "---\nmodel: openai/gpt-4o-mini\ninput:\n  schema:\n    order: string\n---\nAnswer about {{order}}.\n",
    "text": "Answer about {{ order }}.\n",
}


@pytest.mark.parametrize("fmt", sorted(_WINDOWS_FILES))
def test_a_windows_file_keeps_its_line_endings_and_bom_on_write_back(fmt):
    original = "\ufeff" + _WINDOWS_FILES[fmt].replace("\n", "\r\n")
    parsed = formats.parse(fmt, original)
    same = formats.render(fmt, parsed.template, parsed.model_config or {}, description=parsed.description,
                          existing=original)
    assert same == original  # nothing changed: not a byte either
    template = parsed.template
    edited = (template.replace("Answer", "Reply") if isinstance(template, str)
              else [{**m, "content": m["content"].replace("Answer", "Reply")} for m in template])
    written = formats.render(fmt, edited, parsed.model_config or {}, description=parsed.description,
                             existing=original)
    assert written == original.replace("Answer", "Reply")
