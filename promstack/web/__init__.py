"""The HTTP face: `promstack serve` (the MCP endpoint at /mcp now; the dashboard and REST API
join the same app)."""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any):
    from .app import create_app as create

    return create(*args, **kwargs)


# The steps an engine error suggests (store.errors.Step), for a person in the browser or a
# program on the REST API: pages and routes, not CLI commands or MCP tools.
WEB_ACTIONS = {
    "list_prompts": "the prompt list (GET /api/prompts)",
    "restore_prompt": "restoring it",
    "import_suite": "a suite file in tests/prompts/",
    "deploy_version": "the Deploy form: v{version} to {environment}",
    "approve_deployment": "promstack deploy approve {id}",
}


def web_words(step: Any) -> str:
    from store.errors import ARG, plain_words, word_step

    if step.action == ARG:
        return f"the {step.params['name']!r} field"
    return word_step(WEB_ACTIONS, step, plain_words)


def error_text(exc: BaseException) -> str:
    """An engine error's sentence in the web's words."""
    worded = getattr(exc, "worded", None)
    return worded(web_words) if worded is not None else str(exc)


__all__ = ["create_app", "error_text"]
