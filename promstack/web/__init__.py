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


def error_status(exc: BaseException) -> int:
    """The HTTP status of an engine error: 401 no valid token, 403 a role too low, 404 not there,
    else 400."""
    from promstack.access import Forbidden
    from store.errors import NotFound, Unauthorized

    for kind, status in ((Unauthorized, 401), (Forbidden, 403), (NotFound, 404)):
        if isinstance(exc, kind):
            return status
    return 400


__all__ = ["create_app", "error_status", "error_text"]
