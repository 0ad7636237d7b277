"""What a remote client hands out as `client.deploys`, `client.tests` and `client.monitoring`:
the methods of the local facades (promstack.deploy.facade, evals.facade, monitoring.facade),
each sent to the team server through the RemoteClient that owns them, so the faces call one
seam whether the store is here or on a server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promstack.remote import PromptRef, RemoteClient


class RemoteDeploys:
    """`client.deploys` over a team server: the methods of `promstack.deploy.facade.Deploys`, each
    a REST call; the server's gate decides, its labels move (a refusal or a wait for approval is
    raised from its answer, as the local engine raises it)."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def deploy(self, prompt: PromptRef, *, version: int | None = None, env: str | None = None, force: bool = False,
               skip: tuple[str, ...] | list[str] = (), reason: str | None = None, rollout: float | None = None,
               rerun: bool = False, **local_only: Any) -> dict[str, Any]:
        # progress, warn: the gate runs on the server, whose progress this client does not see
        if rollout is not None:
            from promstack.deploy.splits import check_percent

            return self.client.start_rollout(prompt, version=version, percent=check_percent(rollout),
                                             environment=env, reason=reason)
        return self.client.deploy(prompt, version=version, environment=env, force=force, skip=skip, reason=reason,
                                  rerun=rerun)

    def rollback(self, prompt: PromptRef, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return self.client.deploy(prompt, rollback=True, environment=env, reason=reason)

    def approve(self, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
        return self.client.decide(deployment_id, "approve", reason=reason)

    def reject(self, deployment_id: int, *, reason: str | None = None) -> dict[str, Any]:
        return self.client.decide(deployment_id, "reject", reason=reason)

    def list_deployments(self, prompt: PromptRef | None = None, *, env: str | None = None,
                         status: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        return self.client.list_deployments(prompt, env=env, status=status, limit=limit)

    def status(self, prompt: PromptRef) -> dict[str, Any]:
        return self.client.deploy_status(prompt)

    def move_label(self, prompt: PromptRef, label: str, version: Any, *, force: bool = False,
                   reason: str | None = None, rerun: bool = False, **local_only: Any) -> dict[str, Any]:
        # The server's gate decides: a refusal (GateFailed) or a wait (DeployPending) is raised.
        move = self.client.set_label(prompt, label, version, reason=reason, force=force, rerun=rerun)
        return {"status": "moved", "move": move, "deployment": None}

    def ab_start(self, prompt: PromptRef, *, a: int | None = None, b: int, split: float = 50,
                 env: str | None = None, reason: str | None = None, force: bool = False, rerun: bool = False,
                 **local_only: Any) -> dict[str, Any]:
        return self.client.ab_start(prompt, a=a, b=b, split=split, environment=env, reason=reason, force=force,
                                    rerun=rerun)

    def ab_stop(self, prompt: PromptRef, *, winner: str | None = None, env: str | None = None,
                reason: str | None = None, force: bool = False) -> dict[str, Any]:
        return self.client.ab_stop(prompt, winner=winner, environment=env, reason=reason, force=force)

    def ab_report(self, prompt: PromptRef, *, env: str | None = None, evaluate: bool = False) -> dict[str, Any]:
        return self.client.ab_report(prompt, env=env, evaluate=evaluate)

    def rollout_status(self, prompt: PromptRef, *, env: str | None = None) -> dict[str, Any]:
        return self.client.rollout(prompt, environment=env)

    def promote(self, prompt: PromptRef, *, env: str | None = None, to: float | None = None) -> dict[str, Any]:
        return self.client.rollout(prompt, "promote", environment=env, to=to)

    def abort(self, prompt: PromptRef, *, env: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return self.client.rollout(prompt, "abort", environment=env, reason=reason)

    def check_rollouts(self) -> list[dict[str, Any]]:
        return self.client.check_rollouts()


class RemoteTests:
    """`client.tests` over a team server: the methods of `promstack.evals.facade.Tests`. A test
    run (and evaluate) is made on this machine, with its model keys, and uploaded to the server
    (`evals.engine.arun_here`: a CI job tests with its own keys); judging and the arena run on
    the server, where the outputs and the models are; suites are read here and sent there."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def import_suite(self, source: Any = None, *, text: str | None = None, fmt: str | None = None,
                     name: str | None = None, prompt: Any = None, config: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        from promstack.evals.catalog import upload_suite

        # config: the settings a local import is given; a file's own settings travel in its document
        return upload_suite(self.client, source, text=text, fmt=fmt, name=name, prompt=prompt)

    def list_suites(self) -> list[dict[str, Any]]:
        return self.client.list_suites()

    def show_suite(self, name: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        return self.client.show_suite(name, limit=limit, offset=offset)

    async def arun_tests(self, suite: str | None, **options: Any) -> dict[str, Any]:
        from promstack.evals.engine import arun_here

        return await arun_here(self.client, suite, **options)

    def run_tests(self, suite: str | None, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.arun_tests(suite, **options))

    async def aresume_run(self, run_id: str, **options: Any) -> dict[str, Any]:
        from promstack.evals.engine import aresume_here

        return await aresume_here(self.client, run_id, **options)

    def get_run(self, run_id: str, *, failing: int = 20) -> dict[str, Any]:
        return self.client.get_run(run_id, failing=failing)

    def upload_run(self, run: dict[str, Any], results: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        return self.client.upload_run(run, results), True

    async def ajudge_run(self, run_id: str, criteria: Any, *, judge_model: str | None = None,
                         threshold: float | None = None, concurrency: int = 10, progress: Any = None,
                         **local_only: Any) -> dict[str, Any]:
        # gateway: the judge runs on the server, through its own gateway
        return await asyncio.to_thread(self.client.judge_run, run_id, criteria, judge_model=judge_model,
                                       threshold=threshold, concurrency=concurrency, progress=progress)

    def judge_run(self, run_id: str, criteria: Any, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.ajudge_run(run_id, criteria, **options))

    async def aevaluate(self, prompt: Any, *, suite: str | None = None, **options: Any) -> dict[str, Any]:
        from promstack.evals.engine import arun_here, evaluation

        return evaluation(await arun_here(self.client, suite, prompt=prompt, **options))

    def evaluate(self, prompt: Any, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.aevaluate(prompt, **options))

    async def arun_arena(self, *, suite: str, models: list[str], concurrency: int = 10, resume: str | None = None,
                         gateway: Any = None, **options: Any) -> dict[str, Any]:
        from promstack.evals.arena import arena_models
        from promstack.evals.runner import check_positive

        # the arena runs on the server (its models, its keys, its gateway); its input is checked here first
        if not resume:
            models = arena_models(models)
            check_positive("concurrency", concurrency)
        return await asyncio.to_thread(self.client.arena, suite=suite, models=models, concurrency=concurrency,
                                       resume=resume, **options)

    def run_arena(self, **options: Any) -> dict[str, Any]:
        return asyncio.run(self.arun_arena(**options))

    def record_vote(self, match_id: int, winner: str, *, voter: str | None = None) -> dict[str, Any]:
        return self.client.record_vote(match_id, winner, voter=voter)


class RemoteMonitoring:
    """`client.monitoring` over a team server: the methods of
    `promstack.monitoring.facade.Monitoring`, answered by the server from its call log."""

    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def metrics(self, **filters: Any) -> dict[str, Any]:
        return self.client.metrics(**filters)

    def check_alerts(self, *, notify: bool = True) -> dict[str, Any]:
        return self.client.check_alerts(notify=notify)

    def alert_history(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.client.alert_history(state=state, limit=limit)

    def cost_report(self, **options: Any) -> dict[str, Any]:
        return self.client.cost_report(**options)

    def recommend_model(self, prompt: PromptRef, **options: Any) -> dict[str, Any]:
        return self.client.recommend_model(prompt, **options)

    def compare_versions(self, prompt: PromptRef, a: int, b: int, **options: Any) -> dict[str, Any]:
        return self.client.compare_versions(prompt, a, b, **options)

    def price_table(self, models: list[str] | None = None) -> dict[str, Any]:
        return self.client.price_table(models)

    def suggest_shorter(self, prompt: PromptRef, **options: Any) -> dict[str, Any]:
        return self.client.suggest_shorter(prompt, **options)
