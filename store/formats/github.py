"""`.prompt.yml` / `.prompt.yaml`, as GitHub Models stores prompts in a repository.

`name`, `description`, `model`, `modelParameters` (temperature, max_tokens or maxTokens,
top_p or topP, stop, ...), `messages: [{role, content}]`. `testData` and `evaluators` are kept
as the prompt's test data for the test suites. Every other key stays in the file.
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


def parse(text: str) -> ParsedPrompt:
    data = load_yaml(text, "the file")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise FormatError("a .prompt.yml needs 'messages': a list of {role, content}")
    template = []
    for i, m in enumerate(messages, 1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise FormatError(f"message {i} in 'messages' needs 'role' and 'content'")
        content = m["content"]
        if not isinstance(content, str):
            raise FormatError(f"message {i} in 'messages' needs 'content' as text")
        template.append({"role": str(m["role"]), "content": content.rstrip("\n")})
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


def render(template: Any, model_config: dict[str, Any], *, description: str | None = None,
           existing: str | None = None) -> str:
    if isinstance(template, str):
        template = [{"role": "user", "content": template}]
    data: dict[str, Any] = {}
    if existing is not None:
        try:
            data = load_yaml(existing, "the file")
        except FormatError:
            data = {}
    data.pop("message", None)
    old_params = data.get("modelParameters") if isinstance(data.get("modelParameters"), dict) else {}
    config = dict(model_config)
    model = config.pop("model", None)
    variables = config.pop("variables", None)
    out: dict[str, Any] = {}
    # Keep the file's key order; put what is new where GitHub's own examples put it.
    order = list(data) or ["name", "description", "model", "modelParameters", "messages"]
    for key in ("name", "description", "model", "modelParameters", "messages"):
        if key not in order:
            order.append(key)
    for key in order:
        if key == "description":
            value = description if description is not None else data.get("description")
        elif key == "model":
            value = model
        elif key == "modelParameters":
            value = config_to_options(config, camel=is_camel(old_params)) or None
            if value and "maxOutputTokens" in value:  # GitHub spells it maxTokens
                value["maxTokens"] = value.pop("maxOutputTokens")
        elif key == "messages":
            value = [{"role": m["role"], "content": m["content"]} for m in template]
        elif key == "variables":
            value = variables
        else:
            value = data.get(key)
        if value is not None:
            out[key] = value
    if variables is not None:
        out["variables"] = variables
    return dump_yaml(out)
