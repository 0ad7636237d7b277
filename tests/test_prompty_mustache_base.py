"""Prompty's `template: mustache` and `base:`, as Prompty's runtime reads them.

Mustache: the runtime renders it with chevron: `{{x}}` HTML-escaped, `{{{x}}}` and `{{& x}}` as
they are, sections over lists, inverted sections, comments; the text is split into messages at
role lines after rendering. `base:` (prompty 0.1's `load` and `hoist_base_prompty`): the base
file, named relative to the child, is loaded and its attributes hoisted under the child's; the
child's body may extend or include the base's body by file name. Fixtures: tests/data/prompty_base.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from store import Store, formats
from store.errors import InvalidInput
from store.filesync import FileSync, open_errors
from store.formats import FormatError
from store.formats.prompty_base import hoist
from store.writeback import write_back

DATA = Path(__file__).parent / "data" / "prompty_base"


@pytest.fixture
def ws(tmp_path):
    """A workspace holding the fixtures under prompts/."""
    shutil.copytree(DATA, tmp_path / "prompts")
    return tmp_path


def parse(ws: Path, rel: str, text: str | None = None):
    path = ws / "prompts" / rel
    return formats.parse("prompty", text if text is not None else path.read_text(), path=path, root=ws)


def one_sentence(reason: str) -> None:
    assert reason.count(". ") == 0 and "--" not in reason and "_prompt" not in reason, reason


# ---- template: mustache ----------------------------------------------------------------------

def test_mustache_renders_as_chevron_does(store, ws):
    parsed = parse(ws, "greeting.prompty")
    assert parsed.model_config["template_format"] == "mustache"
    assert parsed.model_config["model"] == "gpt-4o"
    version = store.prompts.create_prompt("greeting", parsed.template, model_config=parsed.model_config)
    out = store.prompts.render(version, {"who": "<Ann & Bob>", "questions": ["Why?", "How?"]})
    assert out == [{"role": "system", "content": "Hello &lt;Ann &amp; Bob&gt; / <Ann & Bob> / <Ann & Bob>"},
                   {"role": "user", "content": "Why?"}, {"role": "user", "content": "How?"}]
    # An absent section name renders its inverted section, as in Mustache; `who` has a sample.
    assert store.prompts.render(version, {}) == [
        {"role": "system", "content": "Hello &lt;Ann &amp; Bob&gt; / <Ann & Bob> / <Ann & Bob>"},
        {"role": "user", "content": "Nothing to ask."}]


def test_mustache_variables_printed_without_a_declaration_are_required(store):
    parsed = formats.parse("prompty", "---\ntemplate: mustache\n---\nuser:\n{{q}} {{#opt}}[{{opt}}]{{/opt}}\n")
    version = store.prompts.create_prompt("q", parsed.template, model_config=parsed.model_config)
    assert {v["name"]: v["required"] for v in version.variables} == {"q": True, "opt": False}
    with pytest.raises(InvalidInput, match="needs the variable 'q'"):
        store.prompts.render(version, {})
    assert store.prompts.render(version, {"q": "a", "opt": 0}) == [{"role": "user", "content": "a"}]


def test_mustache_reads_no_attributes_and_no_files(store, tmp_path, monkeypatch):
    """chevron falls back to Python attributes (`{{s.upper}}`) and reads partials from files:
    neither happens here."""
    template = "{{s.upper}}|{{#s.format}}{{.}}{{/s.format}}|{{#n.real}}x{{/n.real}}|{{l.0}}|{{d.k}}"
    parsed = formats.parse("prompty", f"---\ntemplate: mustache\n---\n{template}\n")
    version = store.prompts.create_prompt("safe", parsed.template, model_config=parsed.model_config)
    out = store.prompts.render(version, {"s": "{0.__class__}", "n": 3, "l": ["first"], "d": {"k": "v"}})
    assert out == "|||first|v\n"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.mustache").write_text("TOP SECRET")
    with pytest.raises(InvalidInput, match=r"partial \{\{> secret\}\}, which PromStack does not read from files"):
        store.prompts.create_prompt("p", "{{> secret}}", model_config={"template_format": "mustache"})


def test_a_mustache_file_round_trips_and_a_new_one_says_mustache(ws):
    path = ws / "prompts" / "greeting.prompty"
    text = path.read_text()
    parsed = parse(ws, "greeting.prompty")
    assert formats.render("prompty", parsed.template, parsed.model_config, existing=text, path=path,
                          root=ws) == text
    fresh = formats.render("prompty", parsed.template, parsed.model_config)
    assert "template:\n  format: mustache\n" in fresh and "template_format" not in fresh
    assert formats.parse("prompty", fresh).model_config == parsed.model_config


def test_the_watcher_versions_a_mustache_file(store, ws):
    FileSync(store, ws / "prompts", root=ws).sync(ws / "prompts" / "greeting.prompty")
    head = store.prompts.get("greeting")
    assert store.prompts.render(head, {"who": "Ann"})[0] == {"role": "system", "content": "Hello Ann / Ann / Ann"}


# ---- base: -------------------------------------------------------------------------------------

def test_a_base_is_hoisted_under_the_child_and_extends_renders(store, ws):
    parsed = parse(ws, "faithfulness.prompty")
    # model.configuration and model.parameters merged key by key, the child's keys winning
    assert parsed.model_config == {"model": "gpt-4o", "provider": "azure", "temperature": 0.0, "max_tokens": 300}
    assert parsed.description == "Base Evaluator"  # the child has none
    version = store.prompts.create_prompt("faith", parsed.template, model_config=parsed.model_config)
    assert store.prompts.render(version, {"name": "F", "input": "I", "context": "C"}) == [
        {"role": "system", "content": "Score F.\nInput: I\ncontext: C\nDefinition:\nFaithful. Before: generic"}]


def test_hoisting_follows_the_runtime():
    base = {"name": "B", "description": "base", "authors": ["a"], "tags": ["t"], "version": "1",
            "model": {"api": "chat", "configuration": {"type": "azure_openai", "azure_deployment": "gpt-4"},
                      "parameters": {"temperature": 0, "max_tokens": 5}, "response": {"first": True}},
            "sample": {"x": 1, "y": 2}, "inputs": {"x": {"type": "string"}}, "template": "jinja2"}
    child = {"base": "b.prompty", "name": "C", "description": "", "authors": ["b", "a"],
             "model": {"parameters": {"max_tokens": 9}}, "sample": {"y": 3}}
    assert hoist(child, base) == {
        "name": "C", "description": "base", "version": "1", "authors": ["a", "b"], "tags": ["t"],
        "model": {"api": "chat", "configuration": {"type": "azure_openai", "azure_deployment": "gpt-4"},
                  "parameters": {"temperature": 0, "max_tokens": 9}, "response": {"first": True}},
        "sample": {"x": 1, "y": 3}}  # inputs and template are the child's own (none here)


def test_a_body_may_include_its_base_and_a_base_may_have_a_base(ws):
    (ws / "prompts" / "mid.prompty").write_text(
        "---\nbase: shared/evaluation.prompty\nmodel:\n  parameters:\n    temperature: 0.5\n---\nmid\n")
    text = '---\nbase: mid.prompty\n---\n{% include "evaluation.prompty" %}\nuser:\nand {{ extra }}\n'
    parsed = parse(ws, "top.prompty", text)
    assert parsed.model_config["temperature"] == 0.5 and parsed.model_config["max_tokens"] == 200
    assert parsed.template[0]["role"] == "system" and parsed.template[0]["content"].startswith("Score {{name}}.")
    assert parsed.template[-1] == {"role": "user", "content": "and {{ extra }}"}


def test_a_base_outside_the_workspace_or_absolute_is_refused(ws, tmp_path):
    for rel, why in (("/etc/evaluation.prompty", "an absolute path"),
                     ("../../outside.prompty", "outside the workspace")):
        with pytest.raises(FormatError, match=f"^'base' refers to {rel}, {why}") as exc:
            parse(ws, "x.prompty", f"---\nbase: {rel}\n---\nuser:\nhi\n")
        one_sentence(str(exc.value))


def test_a_cycle_of_bases_is_refused(ws):
    prompts = ws / "prompts"
    (prompts / "a.prompty").write_text("---\nbase: b.prompty\n---\nuser:\na\n")
    (prompts / "b.prompty").write_text("---\nbase: a.prompty\n---\nuser:\nb\n")
    with pytest.raises(FormatError, match=r"^'base' leads back to a file already in the chain "
                                          r"\(a.prompty -> b.prompty -> a.prompty\)") as exc:
        parse(ws, "a.prompty")
    one_sentence(str(exc.value))
    with pytest.raises(FormatError, match="leads back"):
        parse(ws, "self.prompty", "---\nbase: self.prompty\n---\nuser:\nhi\n")


def test_a_broken_base_names_the_field(ws):
    (ws / "prompts" / "bad.prompty").write_text("---\nmodel: [\n---\nhi\n")
    with pytest.raises(FormatError, match=r"^'base' refers to bad.prompty, which cannot be read \(the front") as exc:
        parse(ws, "x.prompty", "---\nbase: bad.prompty\n---\nuser:\nhi\n")
    assert "\n" not in str(exc.value)


def test_writing_back_a_child_keeps_its_extends(ws):
    store = Store(str(ws / "db.sqlite"))
    path = ws / "prompts" / "faithfulness.prompty"
    text = path.read_text()
    FileSync(store, ws / "prompts", root=ws).sync(path)
    head = store.prompts.get("faithfulness")
    # A model-config change is written into the child: its own keys, the base's untouched.
    write_back(store, store.prompts.save("faithfulness", model_config={**head.model_config, "temperature": 0.2}),
               root=ws)
    assert path.read_text() == text.replace("    max_tokens: 300\n", "    max_tokens: 300\n    temperature: 0.2\n")
    assert "temperature: 0.0" in (ws / "prompts" / "shared" / "evaluation.prompty").read_text()
    # A template change would have to flatten the `extends`: not written, and the watcher says why.
    new = [{**head.template[0], "content": head.template[0]["content"] + " more"}]
    assert write_back(store, store.prompts.save("faithfulness", new), root=ws) is None
    assert "extends its 'base' file" in open_errors(store.db)[0]["error"]
    one_sentence(open_errors(store.db)[0]["error"])
    store.close()
