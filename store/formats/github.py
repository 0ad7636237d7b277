"""`.prompt.yml` / `.prompt.yaml`, as GitHub Models stores prompts in a repository.

`name`, `description`, `model`, `modelParameters` (temperature, max_tokens or maxTokens,
top_p or topP, stop, ...), `messages: [{role, content}]`. A message's content is read with
GitHub Models' own placeholders, `{{key}}` and nothing else (placeholders.GITHUB). `testData`
and `evaluators` are kept as the prompt's test data for the test suites. A write-back changes
only the values that changed, in place (yamlrt): every other key, comment and byte stays.
"""

from __future__ import annotations

from typing import Any

from .common import (
    FormatError,
    ParsedPrompt,
    config_to_options,
    dump_yaml,
    is_camel,
    load_yaml,
    mapping,
    options_to_config,
    text_field,
)
from .placeholders import GITHUB, to_jinja, to_text
from .yamlrt import update


def parse(text: str) -> ParsedPrompt:
    data = load_yaml(text, "the file")
    messages = data.get("messages")
    if messages is None or messages == []:
        raise FormatError(_no_messages(data))
    if not isinstance(messages, list):
        raise FormatError("'messages' must be a list of {role, content}, as GitHub Models writes it")
    template = []
    for i, m in enumerate(messages, 1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise FormatError(f"message {i} in 'messages' needs 'role' and 'content'")
        content = m["content"]
        if not isinstance(content, str):
            raise FormatError(f"message {i} in 'messages' needs 'content' as text")
        template.append({"role": str(m["role"]), "content": to_jinja(content.rstrip("\n"), syntax=GITHUB)})
    config = options_to_config(mapping(data, "modelParameters", "modelParameters"))
    if data.get("model") is not None:
        config["model"] = str(data["model"])
    if isinstance(data.get("variables"), dict):
        config["variables"] = data["variables"]
    test_data = None
    if "testData" in data or "evaluators" in data:
        cases = data.get("testData") or []
        evaluators = data.get("evaluators") or []
        if not isinstance(cases, list) or not isinstance(evaluators, list):
            raise FormatError("'testData' and 'evaluators' must be lists")
        test_data = {"testData": cases, "evaluators": evaluators}
    return ParsedPrompt(
        template=template,
        model_config=config,
        description=text_field(data, "description"),
        message=text_field(data, "message"),
        test_data=test_data,
    )


def _no_messages(data: dict[str, Any]) -> str:
    """Why a file without messages is not versioned, and what it still is."""
    cases, evaluators = data.get("testData"), data.get("evaluators")
    if cases or evaluators:
        n = len(cases) if isinstance(cases, list) else 0
        m = len(evaluators) if isinstance(evaluators, list) else 0
        return (f"it has no 'messages', only test data ({n} testData item{'s' * (n != 1)}, {m} evaluator"
                f"{'s' * (m != 1)}), so there is no prompt to version; add 'messages' (a list of "
                "{role, content}) with the prompt to test, or import the file as a suite for another prompt")
    return ("it has no 'messages' (a list of {role, content}), so it holds no prompt; a GitHub Models "
            "prompt file needs them")


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    if isinstance(template, str):
        template = [{"role": "user", "content": template}]
    messages = [{"role": m["role"], "content": m["content"]} for m in template]
    config = dict(model_config)
    model = config.pop("model", None)
    variables = config.pop("variables", None)
    data: dict[str, Any] | None = None
    if existing is not None:
        try:
            data = load_yaml(existing, "the file")
        except FormatError:
            data = None
    if data is None:
        return _fresh(messages, model, variables, config, description)
    old_params = data.get("modelParameters") if isinstance(data.get("modelParameters"), dict) else {}
    camel = is_camel(old_params) or not old_params
    spelling = {_store_key(k): k for k in old_params}
    changes: dict[tuple, Any] = {}
    deletes: list[tuple] = []
    if "message" in data:
        deletes.append(("message",))
    if description is not None and data.get("description") != description:
        changes[("description",)] = description
    if model is None:
        if "model" in data:
            deletes.append(("model",))
    elif data.get("model") != model:
        changes[("model",)] = model
    if variables is not None and data.get("variables") != variables:
        changes[("variables",)] = variables
    if not isinstance(data.get("modelParameters"), dict):
        if config:
            changes[("modelParameters",)] = _spelled(config, camel=True)
    else:
        for key, value in config.items():
            spelled = spelling.get(key) or next(iter(_spelled({key: value}, camel=camel)))
            if old_params.get(spelled) != value:
                changes[("modelParameters", spelled)] = value
        for key, spelled in spelling.items():
            if key not in config:
                deletes.append(("modelParameters", spelled))
    old_messages = data.get("messages") if isinstance(data.get("messages"), list) else []
    same_shape = len(old_messages) == len(messages) and all(
        isinstance(o, dict) and o.get("role") == m["role"] for o, m in zip(old_messages, messages, strict=False)
    )
    if same_shape:
        for i, (old, new) in enumerate(zip(old_messages, messages, strict=True)):
            content = old.get("content")
            old_text = content.rstrip("\n") if isinstance(content, str) else None
            if old_text is None or to_jinja(old_text, syntax=GITHUB) != new["content"]:
                # A block scalar's trailing newline is how the file wrote it, not part of the edit.
                keep = content[len(old_text):] if old_text is not None else ""
                text = to_text(new["content"], existing=old_text, syntax=GITHUB)
                changes[("messages", i, "content")] = text + keep
    else:
        changes[("messages",)] = [{**m, "content": to_text(m["content"], syntax=GITHUB)} for m in messages]
    return update(existing, changes, deletes)


def _store_key(spelled: str) -> str:
    """The store's name for a model parameter as the file spells it."""
    return next(iter(options_to_config({spelled: None})))


def _spelled(config: dict[str, Any], *, camel: bool) -> dict[str, Any]:
    params = config_to_options(config, camel=camel)
    if "maxOutputTokens" in params:  # GitHub spells it maxTokens
        params["maxTokens"] = params.pop("maxOutputTokens")
    return params


def _fresh(messages: list[dict[str, str]], model: Any, variables: Any, config: dict[str, Any],
           description: str | None) -> str:
    """A new file, in the key order GitHub's own examples use."""
    out: dict[str, Any] = {}
    if description is not None:
        out["description"] = description
    if model is not None:
        out["model"] = model
    params = _spelled(config, camel=True)
    if params:
        out["modelParameters"] = params
    out["messages"] = [{**m, "content": to_text(m["content"], syntax=GITHUB)} for m in messages]
    if variables is not None:
        out["variables"] = variables
    return dump_yaml(out)
