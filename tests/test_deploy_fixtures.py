"""Fixtures the deploy tests share (no tests here): the scripted model of test_evals_fake.py,
served by a session server of our own. Importing test_evals_fake's `_scripted_server` into
several modules would start one server per module while its teardown stops the module-global
one, twice."""

from __future__ import annotations

import pytest
from test_evals_fake import ScriptedLLM, respond, scripted, workspace  # noqa: F401 - re-exported fixtures


@pytest.fixture(scope="session")
def _scripted_server():
    server = ScriptedLLM().start()
    yield server
    server.stop()
