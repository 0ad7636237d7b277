"""Every test gets its own store: PROMSTACK_DB points into a temporary directory, so no test
ever touches a real workspace."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch):
    path = tmp_path / ".promstack" / "promstack.db"
    monkeypatch.setenv("PROMSTACK_DB", str(path))
    monkeypatch.setenv("PROMSTACK_USER", "tester")
    monkeypatch.chdir(tmp_path)
    return path


@pytest.fixture
def client(isolated_store):
    from promstack import Client

    with Client(isolated_store) as c:
        yield c
