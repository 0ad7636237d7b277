"""Test cases from a GitHub Models `.prompt.yml`: its `testData` items and its `evaluators`
(string checks, LLM graders, the `github/*` built-ins) as PromStack cases and assertions.
"""

from __future__ import annotations

import re
from typing import Any

from store.errors import InvalidInput

from .assertions import validate_assertion


def cases_from_prompt_yml(test_data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Cases from a .prompt.yml's `testData` and `evaluators` (GitHub Models' format, kept by the
    file watcher): each item's keys are template variables; `evaluators` become assertions on
    every case ({{ var }} in their values filled from the case). Without evaluators, an item's
    `expected` is checked by the judge, as a CSV's expected_output is."""
    # The prompt file formats (Jinja, YAML and the rest, ~60 ms) load for such a file only, not
    # with every module that imports this one.
    from store.formats.placeholders import variable

    items = test_data.get("testData") or []
    evaluators = test_data.get("evaluators") or []
    cases = []
    for i, item in enumerate(items, start=1):
        where = f"{name} testData item {i}"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: an item is a mapping of variables such as {{input: ..., expected: ...}}")
        variables = {str(k): v for k, v in item.items()}
        # A key Jinja cannot spell ({{step-name}}) is the template's variable step_name.
        variables.update({variable(k): v for k, v in list(variables.items()) if variable(k) not in variables})
        expected = variables.get("expected")
        checks = [_from_evaluator(e, variables, f"{name} evaluator {n}") for n, e in enumerate(evaluators, start=1)]
        case = {
            "input": None if variables.get("input") is None else str(variables.pop("input")),
            "expected": None if evaluators or expected is None else str(expected),
            "variables": variables if evaluators else {k: v for k, v in variables.items() if k != "expected"},
            "assertions": [c for c in checks if c is not None],
            "line": None,
        }
        cases.append(case)
    return cases


def prompt_yml_cases(text: str, name: str) -> list[dict[str, Any]]:
    """The cases of a .prompt.yml's testData and evaluators, with or without its messages (GitHub
    Models' evaluation-only files run against the prompt the suite is tied to)."""
    from store.formats.common import load_yaml

    data = load_yaml(text.lstrip("\ufeff"), name)
    cases, evaluators = data.get("testData") or [], data.get("evaluators") or []
    if not isinstance(cases, list) or not isinstance(evaluators, list):
        raise InvalidInput(f"{name}: 'testData' and 'evaluators' must be lists")
    if not cases:
        raise InvalidInput(f"{name} has no 'testData' items to import as cases")
    return cases_from_prompt_yml({"testData": cases, "evaluators": evaluators}, name)


# GitHub Models' built-in `uses: github/<name>` evaluators: each is an LLM grader of one quality.
GITHUB_EVALUATORS = ("similarity", "coherence", "fluency", "relevance", "groundedness")


def _fill(text: Any, variables: dict[str, Any]) -> str:
    """`{{key}}` replaced by the case's value, exactly as GitHub Models fills it (no spaces, no
    expressions; an unknown key stays as written)."""
    out = str(text)
    for key, value in variables.items():
        out = out.replace("{{" + key + "}}", str(value))
    return out


def _from_evaluator(evaluator: Any, variables: dict[str, Any], where: str) -> dict[str, Any] | None:
    if not isinstance(evaluator, dict):
        raise InvalidInput(f"{where}: an evaluator is a mapping such as {{name: ..., string: {{contains: ...}}}}")
    label = str(evaluator.get("name") or "evaluator")
    string = evaluator.get("string")
    if isinstance(string, dict) and string:
        # GitHub Models checks the first of equals, contains, startsWith, endsWith that is set;
        # all but equals ignore case.
        for kind in ("equals", "contains", "startsWith", "endsWith"):
            if string.get(kind) not in (None, ""):
                value = _fill(string[kind], variables)
                break
        else:
            raise InvalidInput(f"{where}: a string evaluator needs one of equals, contains, startsWith, "
                               f"endsWith; it has {', '.join(map(str, string))}")
        if kind == "equals":
            return validate_assertion({"type": "equals", "value": value})
        if kind == "contains":
            return validate_assertion({"type": "icontains", "value": value})
        if kind == "startsWith":
            return validate_assertion({"type": "regex", "value": "(?i)\\A" + re.escape(value)})
        return validate_assertion({"type": "regex", "value": "(?i)" + re.escape(value) + "\\Z"})
    llm = evaluator.get("llm")
    if isinstance(llm, dict) and llm.get("prompt"):
        # The judge scores against the grader's own prompt; a choice worth more than 0 passes.
        choices = ", ".join(f"{c.get('choice')!s} ({c.get('score')})" for c in llm.get("choices") or []
                            if isinstance(c, dict))
        rubric = _fill(llm["prompt"], {k: v for k, v in variables.items() if k != "completion"})
        rubric = rubric.replace("{{completion}}", "(the answer)")
        tail = f" Choices and their scores: {choices}; a choice scoring above 0 passes." if choices else ""
        return validate_assertion({"type": "llm-rubric", "value": f"{label}: {rubric}{tail}"})
    uses = str(evaluator.get("uses") or "")
    quality = uses.removeprefix("github/")
    if uses.startswith("github/") and quality in GITHUB_EVALUATORS:
        if quality == "similarity":
            if variables.get("expected") is None:
                return None
            return validate_assertion({"type": "similar", "value": str(variables["expected"])})
        return validate_assertion({"type": "llm-rubric", "value": f"{label} (the answer's {quality})"})
    if uses:
        raise InvalidInput(
            f"{where} ({label!r}) uses {uses!r}, which is not a GitHub Models built-in evaluator "
            f"(github/{', github/'.join(GITHUB_EVALUATORS)}) and cannot run here; remove it or use one of those"
        )
    raise InvalidInput(f"{where}: an evaluator has 'string', 'llm' or 'uses'")
