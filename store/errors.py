"""The domain errors every face translates: each message says what went wrong and what to do.

What to do is a step in some face's terms: a CLI user runs `promstack prompt list`, an MCP client
calls the list_prompts tool, a Python caller `Client.list_prompts()`. So a message names its
steps face-neutrally, as `Step`s between its words, and each face words them:

    raise NotFound(f"there is no prompt {name!r}; ", Step("list_prompts"), " shows the ones that exist")
    raise InvalidInput("no model to call: give ", Step.arg("model"), ", or set 'model' in the config")

`str(exc)` is the sentence for the Python SDK (and for any face that words nothing);
`exc.worded(words)` is the sentence with `words(step)` in place of each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ARG = "arg"  # the action of a Step that names an argument (a CLI flag, a tool argument, a keyword)


class Step:
    """A next step an error suggests, in no face's words: an action (`Step("import_suite",
    suite="regression")`) or an argument of the operation that failed (`Step.arg("model")`)."""

    __slots__ = ("action", "params")

    def __init__(self, action: str, **params: Any) -> None:
        self.action = action
        self.params = params

    @classmethod
    def arg(cls, name: str, **params: Any) -> Step:
        """An argument to give (`example=` shows a value)."""
        return cls(ARG, name=name, **params)

    def __repr__(self) -> str:
        return f"Step({self.action!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Step) and (self.action, self.params) == (other.action, other.params)

    __hash__ = None  # params may hold lists


# The SDK's words: a `Client` method, an engine function, or a keyword argument.
_SDK_ACTIONS = {
    "import_suite": "promstack.evals.engine.import_suite(client, FILE, name={suite!r})",
    "get_run": "promstack.evals.engine.get_run(client, RUN)",
    "run_tests": "promstack.evals.engine.run_tests(client, SUITE, prompt={prompt!r}, models=[...])",
    "judge_run": "promstack.evals.engine.judge_run(client, RUN, criteria)",
    "list_deployments": "promstack.deploy.list_deployments(client)",
    "deploy_version": "promstack.deploy.deploy(client, {prompt!r}, version={version}, env={environment!r})",
    "approve_deployment": "promstack.deploy.approve(client, {id})",
    "promote_rollout": "promstack.deploy.rollout.promote(client, {prompt!r}, env={environment!r})",
    "start_rollout": "promstack.deploy.deploy(client, {prompt!r}, version=N, env={environment!r}, rollout=10)",
    "start_ab_test": "promstack.deploy.abtest.start(client, {prompt!r}, a=N, b=M, split=50)",
    "stop_ab_test": "promstack.deploy.abtest.stop(client, {prompt!r})",
    "abort_rollout": "promstack.deploy.rollout.abort(client, {prompt!r})",
    "list_prompts": "Client.list_prompts()",
    "restore_prompt": "Client.restore_prompt({prompt!r})",
    "create_branch": "Client.create_branch({prompt!r}, {branch!r})",
}


def sdk_words(step: Step) -> str:
    """A step as a Python caller takes it: the SDK's words, and the default of `str(error)`."""
    if step.action == ARG:
        example = step.params.get("example")
        name = step.params["name"]
        return f"{name}={example!r}" if example is not None else f"the argument {name!r}"
    return word_step(_SDK_ACTIONS, step, plain_words)


def plain_words(step: Step) -> str:
    """A step in no face's syntax, for a face that has no words of its own for it."""
    if step.action == ARG:
        return f"the {step.params['name']!r} argument"
    return step.action.replace("_", " ")


class _Params(dict):
    """Formatting params: a step's missing param reads as its name in capitals (`PROMPT`)."""

    def __missing__(self, key: str) -> str:
        return key.upper()


def word_step(templates: dict[str, str], step: Step, fallback: Callable[[Step], str]) -> str:
    """`templates[action]` filled with the step's params, or `fallback(step)` when the face has
    no words of its own for the action. Templates may use any param; a missing one reads as
    its name in capitals, so a template can always show the shape of the command."""
    template = templates.get(step.action)
    if template is None:
        return fallback(step)
    return template.format_map(_Params(step.params))


class PromStackError(Exception):
    """Base of every error PromStack raises on purpose. The message is strings and `Step`s."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts
        super().__init__(self._join(sdk_words) if parts else "")

    def _join(self, words: Callable[[Step], str]) -> str:
        return "".join(words(p) if isinstance(p, Step) else str(p) for p in self.parts)

    def worded(self, words: Callable[[Step], str]) -> str:
        """The message with each step in a face's words; `str(self)` when it names no step
        (or when the message was replaced after it was raised, as redaction does)."""
        steps = getattr(self, "parts", ())
        if not any(isinstance(p, Step) for p in steps) or str(self) != self._join(sdk_words):
            return str(self)
        return self._join(words)


class NotFound(PromStackError):
    """A prompt, version, branch, label or run that does not exist."""


class Unauthorized(PromStackError):
    """No valid token came with a request that needs one: none, wrong, revoked or expired (HTTP 401)."""


class InvalidInput(PromStackError):
    """An argument that cannot be accepted as given."""


class MergeConflict(PromStackError):
    """Both sides of a merge changed the same lines; nothing was written."""

    def __init__(self, message: str, conflicts: list[dict] | None = None) -> None:
        super().__init__(message)
        self.conflicts = conflicts or []


class Busy(PromStackError):
    """The store stayed locked by another writer for longer than the retry budget."""
