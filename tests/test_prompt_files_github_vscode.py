"""GitHub Models' .prompt.yml and VS Code's .prompt.md: each read with its own syntax, its test
data usable as a suite, and a change made through PromStack rewriting only the template's bytes."""

from __future__ import annotations

import difflib

import pytest

from promstack import Client
from promstack.evals.assertions import check_deterministic
from promstack.evals.prompt_yml import cases_from_prompt_yml
from store import formats
from store.errors import InvalidInput
from store.filesync import FileSync, open_errors
from store.formats import FormatError
from store.formats.yamlrt import update
from store.template import analyse, normalize
from store.template import render as render_template

# ---- shapes the home tools write ---------------------------------------------------------------

# As GitHub Models' editor and the gh-models examples write them: a comment, camelCase
# parameters in their own order, quoted and block scalars, a list-valued `variables:`,
# test data and each evaluator kind.
GITHUB_FILE = """# Triage incoming support mail
name: "Mail triage"
description: Sorts a customer mail into a queue
model: openai/gpt-4.1-mini
modelParameters:
  maxTokens: 300   # enough for a label and a reason
  temperature: 0.2
  topP: 0.9
variables:
  - name: mail
  - name: queue_list
messages:
  - role: system
    content: |
      You sort customer mail into one of these queues: {{queue_list}}.
      Answer with the queue name first.

  - role: user
    content: 'Mail: {{mail}}'
testData:
  - mail: "My card was charged twice"
    queue_list: billing, shipping
    expected: billing
evaluators:
  - name: names the queue
    string:
      startsWith: '{{expected}}'
  - name: polite
    llm:
      modelId: openai/gpt-4o-mini
      prompt: "Is this reply polite? {{completion}}"
      choices:
        - choice: "yes"
          score: 1
        - choice: "no"
          score: 0
  - name: fluent
    uses: github/fluency
"""

# A shape the gh-models repository keeps next to its prompts: 4-space lists, quoted everything.
GITHUB_FOUR_SPACES = """name: "Joke rater"
model: "openai/gpt-4o-mini"
modelParameters:
    temperature: 0.2
messages:
    - role: system
      content: |
        You rate jokes as funny or not funny.
    - role: user
      content: |
        {{input}}
"""

# As VS Code and the awesome-copilot collection write prompt files: quoted values, inline lists,
# a wrapped description, a comment, `${input:...}` placeholders, VS Code's own variables, and code
# samples full of braces that are not templates.
VSCODE_FILE = """---
# shown in the / menu
mode: 'agent'
description: 'Write a GitHub Actions workflow that deploys the
  selected service'
tools: ['codebase', "githubRepo", 'editFiles']
model: Claude Sonnet 4
---
# Deploy workflow for ${input:service:Which service?}

Write `.github/workflows/deploy-${input:service}.yml` for the code in ${selection}.

```yaml
env:
  TOKEN: ${{ secrets.GITHUB_TOKEN }}
steps:
  - run: echo "{{step-name}} {% raw %}"
```

Keep ${workspaceFolder} paths relative; target ${input:environment}.
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


# ---- .prompt.yml ---------------------------------------------------------------------------------

def test_prompt_yml_edit_of_one_message_changes_only_its_bytes():
    parsed = formats.parse("github", GITHUB_FILE)
    messages = [dict(m) for m in parsed.template]
    messages[1]["content"] = "Customer mail: {{mail}}"
    text = formats.render("github", messages, parsed.model_config, existing=GITHUB_FILE)
    assert changed_lines(GITHUB_FILE, text) == ["-    content: 'Mail: {{mail}}'",
                                                "+    content: 'Customer mail: {{mail}}'"]
    # The untouched block message keeps its trailing newline and the blank line after it.
    messages = [dict(m) for m in parsed.template]
    messages[0]["content"] = messages[0]["content"].replace("one of these", "exactly one of these")
    text = formats.render("github", messages, parsed.model_config, existing=GITHUB_FILE)
    assert changed_lines(GITHUB_FILE, text) == [
        "-      You sort customer mail into one of these queues: {{queue_list}}.",
        "+      You sort customer mail into exactly one of these queues: {{queue_list}}."]
    assert formats.parse("github", text).template[0]["content"] == messages[0]["content"]


def test_prompt_yml_unchanged_version_is_the_file_byte_for_byte():
    for source in (GITHUB_FILE, GITHUB_FOUR_SPACES):
        parsed = formats.parse("github", source)
        assert formats.render("github", parsed.template, parsed.model_config, existing=source) == source


def test_prompt_yml_config_change_touches_only_that_value_and_keeps_the_order():
    parsed = formats.parse("github", GITHUB_FILE)
    config = {**parsed.model_config, "temperature": 0.7}
    text = formats.render("github", parsed.template, config, existing=GITHUB_FILE)
    assert changed_lines(GITHUB_FILE, text) == ["-  temperature: 0.2", "+  temperature: 0.7"]
    config.pop("top_p")
    text = formats.render("github", parsed.template, config, existing=GITHUB_FILE)
    assert "topP" not in text and "maxTokens: 300   # enough" in text and "- name: queue_list" in text


def test_prompt_yml_four_space_lists_keep_their_indentation():
    parsed = formats.parse("github", GITHUB_FOUR_SPACES)
    messages = [dict(m) for m in parsed.template]
    messages[0]["content"] = "You rate jokes: funny or not funny."
    text = formats.render("github", messages, parsed.model_config, existing=GITHUB_FOUR_SPACES)
    assert changed_lines(GITHUB_FOUR_SPACES, text) == ["-        You rate jokes as funny or not funny.",
                                                       "+        You rate jokes: funny or not funny."]
    assert formats.parse("github", text).template == messages


def test_prompt_yml_without_messages_says_what_it_holds_and_what_is_missing():
    evaluation_only = "name: checks\ntestData:\n  - input: hi\nevaluators:\n  - name: e\n    string: {contains: x}\n"
    with pytest.raises(FormatError) as refused:
        formats.parse("github", evaluation_only)
    sentence = str(refused.value)
    assert "no 'messages'" in sentence and "1 testData item, 1 evaluator" in sentence
    assert "add 'messages'" in sentence and "_prompt" not in sentence and "--" not in sentence
    with pytest.raises(FormatError, match="holds no prompt"):
        formats.parse("github", "name: x\nmodel: gpt-4o\n")


def test_prompt_yml_every_evaluator_shape_becomes_an_assertion():
    parsed = formats.parse("github", GITHUB_FILE)
    (case,) = cases_from_prompt_yml(parsed.test_data, "triage")
    starts, polite, fluent = case["assertions"]
    # GitHub Models compares startsWith, contains and endsWith ignoring case.
    assert check_deterministic(starts, "BILLING: a double charge").passed
    assert not check_deterministic(starts, "shipping").passed
    assert polite["type"] == "llm-rubric" and "Is this reply polite?" in polite["value"] and "yes (1)" in polite["value"]
    assert fluent == {"type": "llm-rubric", "value": "fluent (the answer's fluency)"}
    data = {"testData": [{"input": "x", "expected": "Done"}], "evaluators": [
        {"name": "c", "string": {"contains": "DONE"}}, {"name": "e", "string": {"endsWith": "done."}},
        {"name": "q", "string": {"equals": "Done"}}, {"name": "s", "uses": "github/similarity"}]}
    contains, ends, equals, similar = cases_from_prompt_yml(data, "p")[0]["assertions"]
    assert check_deterministic(contains, "all done").passed
    assert check_deterministic(ends, "All DONE.").passed and not check_deterministic(ends, "done. ok").passed
    assert check_deterministic(equals, "Done").passed and not check_deterministic(equals, "done").passed
    assert similar == {"type": "similar", "value": "Done"}
    unknown = {"testData": [{"input": "x"}], "evaluators": [{"name": "mine", "uses": "acme/tone"}]}
    with pytest.raises(InvalidInput, match="'acme/tone', which is not a GitHub Models built-in evaluator"):
        cases_from_prompt_yml(unknown, "p")


# ---- .prompt.md ----------------------------------------------------------------------------------

def test_prompt_md_placeholders_are_the_only_variables():
    parsed = formats.parse("prompt.md", VSCODE_FILE)
    template = normalize(parsed.template)
    used, _ = analyse(template)
    assert used == ["environment", "service"]  # not secrets, github, step, name
    rendered = render_template(template, {"service": "api", "environment": "prod"}, [], None, label="p")
    # What VS Code sends: the placeholders filled in, every other byte as written.
    body = VSCODE_FILE.split("---\n", 2)[2]
    expected = (body.replace("${input:service:Which service?}", "api").replace("${input:service}", "api")
                .replace("${input:environment}", "prod"))
    assert rendered == expected
    assert "${{ secrets.GITHUB_TOKEN }}" in rendered and "{{step-name}} {% raw %}" in rendered


@pytest.mark.parametrize("body", ["Use ${{ github.token }} here\n", "Run {{step-name}} now\n",
                                  "```\n{% for x in y %}{{ x }}{% endfor %}\n```\n", "{# not a comment #}"])
def test_prompt_md_braces_are_text(body):
    template = normalize(formats.parse("prompt.md", body).template)
    assert analyse(template) == ([], [])
    assert render_template(template, {}, [], None, label="p") == body


def test_prompt_md_opts_in_to_jinja_with_template_format():
    text = "---\ntemplate_format: jinja2\n---\n{% if vip %}Dear {{ name }}{% endif %} ${input:topic}\n"
    template = normalize(formats.parse("prompt.md", text).template)
    assert analyse(template)[0] == ["name", "topic", "vip"]
    back = formats.render("prompt.md", template.text + "More\n", {}, existing=text)
    assert back == text.replace("${input:topic}\n", "{{ topic }}\nMore\n")


def test_prompt_md_body_edit_keeps_front_matter_and_placeholder_spellings():
    parsed = formats.parse("prompt.md", VSCODE_FILE)
    edited = parsed.template.replace("Keep", "Always keep")
    text = formats.render("prompt.md", edited, parsed.model_config, existing=VSCODE_FILE)
    assert changed_lines(VSCODE_FILE, text) == [
        "-Keep ${workspaceFolder} paths relative; target ${input:environment}.",
        "+Always keep ${workspaceFolder} paths relative; target ${input:environment}."]
    # Unchanged: byte for byte.
    assert formats.render("prompt.md", parsed.template, parsed.model_config, existing=VSCODE_FILE) == VSCODE_FILE


def test_prompt_md_model_change_touches_only_that_line():
    parsed = formats.parse("prompt.md", VSCODE_FILE)
    text = formats.render("prompt.md", parsed.template, {"model": "GPT-5"}, existing=VSCODE_FILE)
    assert changed_lines(VSCODE_FILE, text) == ["-model: Claude Sonnet 4", "+model: GPT-5"]


def test_prompt_md_jinja_it_cannot_express_is_refused_with_a_sentence():
    with pytest.raises(FormatError) as refused:
        formats.render("prompt.md", "{% if x %}y{% endif %}", {}, existing="---\nmode: agent\n---\nHi\n")
    assert "template_format: jinja2" in str(refused.value) and "VS Code would send as text" in str(refused.value)
    # A variable the user wrote in the store's syntax comes back as VS Code's placeholder.
    assert formats.render("prompt.md", "Hi {{ who }}\n", {}, existing="Hi\n") == "Hi ${input:who}\n"


# ---- the round-trip helper -----------------------------------------------------------------------

def test_yamlrt_keeps_quotes_flow_lists_and_comments():
    text = "a: 'one'  # note\nb: [x, 'y']\nc:\n  d: \"two\"\n"
    assert update(text, {("c", "d"): "three"}) == "a: 'one'  # note\nb: [x, 'y']\nc:\n  d: \"three\"\n"
    assert update(text, {("a",): "it's"}) == "a: 'it''s'  # note\nb: [x, 'y']\nc:\n  d: \"two\"\n"
    assert update(text, {}, [("b",)]) == "a: 'one'  # note\nc:\n  d: \"two\"\n"
    assert update(text, {("e",): 5}) == text + "e: 5\n"


# ---- through the faces: a save through the SDK writes only the template back ---------------------

@pytest.mark.parametrize(("name", "source"), [("triage.prompt.yml", GITHUB_FILE),
                                              ("deploy.prompt.md", VSCODE_FILE)])
def test_a_save_through_the_sdk_rewrites_only_the_template(isolated_store, tmp_path, name, source):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    path = prompts / name
    path.write_text(source, encoding="utf-8")
    with Client(isolated_store) as client:
        FileSync(client.store, prompts, root=tmp_path).sync(path)
        head = client.get_prompt(name.split(".")[0])
        if isinstance(head.template, list):
            new = [dict(m) for m in head.template]
            new[1]["content"] = new[1]["content"].replace("Mail:", "Customer mail:")
        else:
            new = head.template.replace("relative", "relative to the repository")
        client.save(head.name, new)
        after = path.read_text(encoding="utf-8")
    lines = changed_lines(source, after)
    assert len(lines) == 2 and all("Customer mail" in line or "Mail:" in line or "relative" in line for line in lines)


def test_status_lists_the_refused_evaluation_only_file(isolated_store, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "checks.prompt.yml").write_text("testData:\n  - input: hi\n", encoding="utf-8")
    with Client(isolated_store) as client:
        FileSync(client.store, prompts, root=tmp_path).reconcile()
        (error,) = open_errors(client.store.db)
    assert error["path"] == "prompts/checks.prompt.yml" and "no 'messages'" in error["error"]
    assert "tool" not in error["error"]


def test_prompt_yml_messages_are_read_with_github_models_placeholders_only():
    """GitHub Models replaces `{{key}}` for each key of a test case and sends every other byte."""
    text = ("messages:\n  - role: user\n    content: \"Step {{step-name}} of {{ spaced }}: {% if x %}"
            " {{input}} ${{ github.token }}\"\n")
    template = normalize(formats.parse("github", text).template)
    assert analyse(template)[0] == ["input", "step_name"]
    (case,) = cases_from_prompt_yml({"testData": [{"input": "go", "step-name": "2"}], "evaluators": []}, "p")
    rendered = render_template(template, case["variables"] | {"input": case["input"]}, [], None, label="p")
    assert rendered[0]["content"] == "Step 2 of {{ spaced }}: {% if x %} go ${{ github.token }}"
    # Written back in the file's own spelling.
    again = formats.render("github", template.value, {}, existing=text)
    assert again == text


def test_jinja_saved_through_the_sdk_is_not_written_to_a_text_prompt_md(isolated_store, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    path = prompts / "note.prompt.md"
    path.write_text(VSCODE_FILE, encoding="utf-8")
    with Client(isolated_store) as client:
        FileSync(client.store, prompts, root=tmp_path).sync(path)
        client.save("note", "{% if vip %}Dear ${input:name}{% endif %}")
        (error,) = open_errors(client.store.db)
    assert path.read_text(encoding="utf-8") == VSCODE_FILE
    assert "template_format: jinja2" in error["error"] and "tool" not in error["error"]
    assert "--" not in error["error"]  # no CLI flag either: the watcher is no face


def test_prompt_yml_added_message_rewrites_only_the_messages_list():
    parsed = formats.parse("github", GITHUB_FILE)
    messages = [*parsed.template, {"role": "assistant", "content": "billing"}]
    text = formats.render("github", messages, parsed.model_config, existing=GITHUB_FILE)
    before, after = GITHUB_FILE.split("messages:\n"), text.split("messages:\n")
    assert after[0] == before[0]  # comment, quotes, parameter order, list-valued variables
    assert after[1].split("testData:\n")[1] == before[1].split("testData:\n")[1]
    assert formats.parse("github", text).template == messages


def test_an_evaluation_only_prompt_yml_imports_as_a_suite(client, tmp_path):
    from promstack.evals import engine

    client.create_prompt("triage", [{"role": "user", "content": "Mail: {{mail}}"}])
    path = tmp_path / "checks.prompt.yml"
    path.write_text("# checks kept apart from the prompt\ntestData:\n  - mail: charged twice\n    expected: billing\n"
                    "evaluators:\n  - name: queue\n    string:\n      contains: '{{expected}}'\n", encoding="utf-8")
    with pytest.raises(FormatError, match="import the file as a suite"):
        formats.parse("github", path.read_text(encoding="utf-8"))
    suite = engine.import_suite(client, path, prompt="triage")
    assert suite["name"] == "checks" and suite["prompt_id"] == client.get_prompt("triage").prompt_id
    (case,) = cases_from_prompt_yml({"testData": [{"mail": "charged twice", "expected": "billing"}],
                                     "evaluators": [{"name": "queue", "string": {"contains": "{{expected}}"}}]}, "c")
    assert case["assertions"] == [{"type": "icontains", "value": "billing"}]
