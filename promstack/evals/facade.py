"""What the faces call to test: `client.tests`, the same methods whichever store the client has.
This one runs the engine (`evals.engine`, `evals.arena`, `evals.catalog`) on the client's own
store; over a team server the remote client hands out `promstack.remote_facades.RemoteTests`, whose test
runs are made on the caller's machine (its model keys) and uploaded, and whose other operations
run on the server. So the engine modules never ask which kind of client they have.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from . import arena, catalog, engine

if TYPE_CHECKING:
    from ..client import Client


class Tests:
    """Suites, test runs, judging, evaluate and the arena on the client's store."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # ---- suites ---------------------------------------------------------------------------------

    def import_suite(self, source: Any = None, **options: Any) -> dict[str, Any]:
        """`catalog.import_suite`: a file (CSV/JSON/JSONL) or `text=` with `fmt=`."""
        return catalog.import_suite(self.client, source, **options)

    def list_suites(self) -> list[dict[str, Any]]:
        return catalog.list_suites(self.client)

    def show_suite(self, name: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        return catalog.show_suite(self.client, name, limit=limit, offset=offset)

    # ---- test runs ------------------------------------------------------------------------------

    async def arun_tests(self, suite: str | None, **options: Any) -> dict[str, Any]:
        """`engine.arun_tests`: a test run to its end, with its summary."""
        return await engine.arun_tests(self.client, suite, **options)

    def run_tests(self, suite: str | None, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.arun_tests(suite, **options))

    async def aresume_run(self, run_id: str, **options: Any) -> dict[str, Any]:
        """`engine.aresume_run`: the cases an interrupted run has not finished, run now."""
        return await engine.aresume_run(self.client, run_id, **options)

    def get_run(self, run_id: str, *, failing: int = 20) -> dict[str, Any]:
        return engine.get_run(self.client, run_id, failing=failing)

    def upload_run(self, run: dict[str, Any], results: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """A finished run made elsewhere, kept once; the run and whether it was new."""
        return engine.upload_run(self.client, run, results)

    async def ajudge_run(self, run_id: str, criteria: Any, **options: Any) -> dict[str, Any]:
        return await engine.ajudge_run(self.client, run_id, criteria, **options)

    def judge_run(self, run_id: str, criteria: Any, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.ajudge_run(run_id, criteria, **options))

    async def aevaluate(self, prompt: Any, **options: Any) -> dict[str, Any]:
        return await engine.aevaluate(self.client, prompt, **options)

    def evaluate(self, prompt: Any, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.aevaluate(prompt, **options))

    # ---- the arena ------------------------------------------------------------------------------

    async def arun_arena(self, **options: Any) -> dict[str, Any]:
        return await arena.arun_arena(self.client, **options)

    def run_arena(self, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.arun_arena(**options))

    def record_vote(self, match_id: int, winner: str, *, voter: str | None = None) -> dict[str, Any]:
        return arena.record_vote(self.client, match_id, winner, voter=voter)
