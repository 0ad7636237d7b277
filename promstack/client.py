"""The Python SDK: `Client` over the local store. Every face (CLI, MCP, web) uses these calls."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store import Store, audit, transfer
from store.errors import InvalidInput
from store.models import Branch, Diff, LabelMove, Prompt, PromptVersion
from store.refs import is_internal
from store.workspace import require_db

if TYPE_CHECKING:
    from promstack.deploy.facade import Deploys
    from promstack.deploy.resolver import Resolver
    from promstack.evals.facade import Tests
    from promstack.gateway import CallResult, Gateway
    from promstack.monitoring.facade import Monitoring
    from store.evals import EvalStore

PromptRef = int | str


class Client:
    """`Client()` opens the workspace's store (PROMSTACK_DB, else the nearest `.promstack/`).
    `Client(url=..., token=...)`, or PROMSTACK_URL (and PROMSTACK_TOKEN) with no `db` given, is
    the same interface over a team server's REST API (promstack.remote.RemoteClient)."""

    remote = False
    # Where a new version's quick check runs (promstack.evals.checker): "thread", a daemon thread
    # of this process; "process", a detached `promstack check --pending` (the CLI, which exits
    # right after a save); "none", a checker elsewhere picks it up.
    check_mode = "thread"

    def __new__(cls, db: str | os.PathLike | None = None, *, actor: str | None = None, url: str | None = None,
                token: str | None = None, cache_ttl: float | None = None,
                cache_dir: str | os.PathLike | bool | None = None) -> Any:
        # One public name for both: a face that makes a `Client` works against a server unchanged.
        # An explicit `db` is always the local store (the server's own clients name theirs).
        # PROMSTACK_URL is read here first so that a local client never imports the remote one
        # (and httpx with it: ~40-90 ms of a command's start-up).
        if url is not None or (db is None and os.environ.get("PROMSTACK_URL", "").strip()):
            from promstack.remote import RemoteClient, server_url

            found = server_url(url)
            if found is not None:
                return RemoteClient(found, token, local=cls, cache_ttl=cache_ttl, cache_dir=cache_dir)
        return super().__new__(cls)

    def __init__(self, db: str | os.PathLike | None = None, *, actor: str | None = None, url: str | None = None,
                 token: str | None = None, cache_ttl: float | None = None,
                 cache_dir: str | os.PathLike | bool | None = None) -> None:
        # cache_ttl, cache_dir: the prompt cache of a client over a team server (promstack.remote);
        # the local store needs none.
        # The services the engine hangs on a client, each made on first use (`gateway`,
        # `evals`, `resolver`): a face that never runs a prompt never imports the gateway.
        self._gateway: Gateway | None = None
        self._evals: EvalStore | None = None
        self._resolver: Resolver | None = None
        self.store = Store(db if db is not None else require_db(), actor=actor)
        self._prompts = self.store.prompts
        # A gated environment's label moves only through its gate (promstack.deploy.gates.label_guard):
        # the store asks this on every label move the engine has not cleared.
        self._prompts.label_guard = self._label_guard
        # A model config may name as its key only variables the server's config allows
        # (promstack.gateway.keys); checked when saved, and again by the gateway when called.
        self._prompts.config_check = self._config_check

    def _config_check(self, model_config: dict[str, Any]) -> None:
        if model_config.get("api_key_env"):
            from promstack import config
            from promstack.gateway import check_model_config

            check_model_config(model_config, config.of_client(self))

    def _label_guard(self, *args: Any) -> None:
        from promstack.deploy.gates import label_guard

        label_guard(self)(*args)

    @property
    def actor(self) -> str:
        return self.store.actor

    def close(self) -> None:
        if self._gateway is not None:
            self._gateway.close()  # the call log drains before the store closes
        self.store.close()

    # ---- the engine's services on this client (made on first use) ---------------------

    @property
    def evals(self) -> EvalStore:
        """Suites, cases, runs and arena matches in this client's store (promstack.evals uses it)."""
        if self._evals is None:
            from store.evals import EvalStore

            self._evals = EvalStore(self.store.db, actor=self.actor)
        return self._evals

    @property
    def resolver(self) -> Resolver:
        """Which version a label serves a user (A/B arms, rollouts), cached for a few seconds."""
        if self._resolver is None:
            from promstack.deploy.resolver import Resolver

            self._resolver = Resolver(self)
        return self._resolver

    @property
    def deploys(self) -> Deploys:
        """Deploys, approvals, A/B tests and rollouts on this store (over a team server, the
        remote client's `deploys` has the same methods)."""
        from promstack.deploy.facade import Deploys

        return Deploys(self)

    @property
    def tests(self) -> Tests:
        """Suites, test runs, judging, evaluate and the arena on this store (over a team server,
        the remote client's `tests` has the same methods)."""
        from promstack.evals.facade import Tests

        return Tests(self)

    @property
    def monitoring(self) -> Monitoring:
        """Metrics, alerts and costs of this store's call log (the same methods over a server)."""
        from promstack.monitoring.facade import Monitoring

        return Monitoring(self)

    def forget_resolved(self) -> None:
        """Drop what `resolver` cached (after a label change made through this client)."""
        if self._resolver is not None:
            self._resolver.clear()

    def flush_calls(self) -> None:
        """Write the call-log rows this client's gateway still holds, if it has run a prompt,
        so that a query of the call log right after sees them."""
        if self._gateway is not None:
            self._gateway.flush()

    def log_call(self, model: str, **fields: Any) -> str:
        """Log a call the app made itself, as a server logs one reported to `POST /api/v1/calls`
        (promstack.monitoring.reported: source 'api', priced when no cost_usd, an unknown prompt
        flagged); written at once. Returns the call's id (the log's is `api-<id>`)."""
        from promstack import config
        from promstack.monitoring import reported
        from promstack.reporting import call_fields

        row = call_fields(model, **fields)
        report = reported.ingest(self.store.db, [row], actor=self.actor, config=config.of_client(self))
        if report.rejected:
            raise InvalidInput(f"the call was not logged: {report.rejected[0][1]}")
        return row["call_id"]

    def flush(self, timeout: float | None = None) -> bool:
        """Write what the call log still holds (a remote client: send the reported calls)."""
        self.flush_calls()
        return True

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- prompts and versions ---------------------------------------------------------

    def _written(self, version: PromptVersion) -> PromptVersion:
        """After a new version: a prompt kept in a file gets the file rewritten (store.writeback)."""
        if version.created:
            from store.writeback import write_back

            write_back(self.store, version)
            self._queue_check(version)
        return version

    def _queue_check(self, version: PromptVersion) -> None:
        from promstack.evals import checker

        checker.after_save(self, version.prompt_id, version.version, self.check_mode)

    def version_checks(self, prompt: PromptRef, versions: list[int] | None = None) -> dict[int, Any]:
        """version -> its quick check (promstack.evals.check.VersionCheck: score, delta against
        its parent, broke and fixed cases, cost, `.text`), for the versions given (None: all)."""
        from promstack.evals import check

        return check.version_checks(self, prompt, versions)

    def create_prompt(
        self,
        name: str,
        template: Any,
        *,
        model_config: dict[str, Any] | None = None,
        description: str | None = None,
        message: str | None = None,
        author: str | None = None,
        source: str = "sdk",
        id: int | None = None,
    ) -> PromptVersion:
        return self._written_new(self._prompts.create_prompt(
            name, template, model_config=model_config, description=description, message=message,
            author=author, source=source, id=id,
        ))

    def _written_new(self, version: PromptVersion) -> PromptVersion:
        self._queue_check(version)
        return version

    def save(
        self,
        prompt: PromptRef,
        template: Any = None,
        *,
        model_config: dict[str, Any] | None = None,
        message: str | None = None,
        branch: str = "main",
        author: str | None = None,
        source: str = "sdk",
        keep_config: bool = False,
        keep_kind: bool = False,
    ) -> PromptVersion:
        """A new version; identical content returns the head with `.created` False.
        `keep_config=True`: `model_config` sets its keys and the head's others are kept.
        `keep_kind=True`: a text template for a chat prompt (or messages for a text prompt) is
        refused, not saved as a change of kind (what a face that edits a prompt in place wants)."""
        if keep_kind and template is not None:
            check_same_kind(self._prompts.get(prompt, branch=branch), template)
        return self._written(self._prompts.save(
            prompt, template, model_config=model_config, message=message, branch=branch,
            author=author, source=source, keep_config=keep_config,
        ))

    def get_prompt(
        self,
        prompt: PromptRef | None = None,
        *,
        id: int | None = None,
        version: int | None = None,
        label: str | None = None,
        branch: str | None = None,
        resolved: bool = False,
        user_id: str | None = None,
        fallback: Any = None,
    ) -> PromptVersion:
        """`fallback` matters only over a team server (a template served while it is away, for a
        prompt never fetched); the local store is always here. Head of main by default; `resolved=True` expands `{% include %}`s in the template.
        `label` with `user_id`: the version that user is served there, A/B arm or rollout share
        included (promstack.deploy.Resolver, cached for a few seconds)."""
        if user_id is not None and label is not None and version is None and branch is None:
            if prompt is not None and id is not None:
                self._prompts.get(prompt, id=id)  # the same checks as without a user id
            found = self.resolver.get(id if id is not None else prompt, label, str(user_id))
        else:
            found = self._prompts.get(prompt, id=id, version=version, label=label, branch=branch)
        if resolved:
            found = dataclasses.replace(found, template=self._prompts.resolved_template(found))
        return found

    def render(self, prompt: PromptRef, variables: dict[str, Any] | None = None, **selector: Any) -> Any:
        """The version `selector` picks, rendered with `variables`: text, or chat messages."""
        return self._prompts.render(self.get_prompt(prompt, **selector), variables)

    def list_prompts(self, *, include_archived: bool = False, include_internal: bool = False) -> list[Prompt]:
        """The workspace's prompts. PromStack's own (the judge's, under `promstack/`) are left
        out unless `include_internal`: they are not the user's prompts, though `get_prompt`
        reaches them by name for anyone tuning the judge."""
        found = self._prompts.list_prompts(include_archived=include_archived)
        return found if include_internal else [p for p in found if not is_internal(p.name)]

    def history(self, prompt: PromptRef, *, branch: str | None = None, limit: int | None = None) -> list[PromptVersion]:
        """Newest first."""
        return self._prompts.history(prompt, branch=branch, limit=limit)

    def folded_history(self, prompt: PromptRef, *, branch: str | None = None) -> list[dict[str, Any]]:
        """History with unnamed saves folded (store.checkpoints.fold_history)."""
        from store.checkpoints import fold_history

        return fold_history(self.store, prompt, branch=branch)

    def checkpoints(self, prompt: PromptRef) -> dict[int, list[str]]:
        """version -> the names given to it (checkpoints), oldest first."""
        from store.checkpoints import checkpoints

        return checkpoints(self.store, prompt)

    def diff(self, prompt: PromptRef, from_version: int, to_version: int | None = None) -> Diff:
        return self._prompts.diff(prompt, from_version, to_version)

    def rollback(
        self, prompt: PromptRef, to_version: int, *, branch: str = "main", message: str | None = None,
        author: str | None = None,
    ) -> PromptVersion:
        return self._written(self._prompts.rollback(prompt, to_version, branch=branch, message=message, author=author))

    def delete_prompt(self, prompt: PromptRef, *, author: str | None = None) -> Prompt:
        return self._prompts.delete_prompt(prompt, actor=author)

    def restore_prompt(self, prompt: PromptRef, *, author: str | None = None) -> Prompt:
        return self._prompts.restore_prompt(prompt, actor=author)

    def dependents(self, prompt: PromptRef) -> list[dict[str, Any]]:
        return self._prompts.dependents(prompt)

    # ---- branches ---------------------------------------------------------------------

    def create_branch(self, prompt: PromptRef, name: str, *, from_version: int | None = None,
                      author: str | None = None) -> Branch:
        return self._prompts.create_branch(prompt, name, from_version=from_version, author=author)

    def list_branches(self, prompt: PromptRef) -> list[Branch]:
        return self._prompts.list_branches(prompt)

    def merge(self, prompt: PromptRef, branch: str, *, into: str = "main", message: str | None = None,
              author: str | None = None) -> PromptVersion:
        return self._written(self._prompts.merge(prompt, branch, into=into, message=message, author=author))

    # ---- labels -----------------------------------------------------------------------

    def set_label(self, prompt: PromptRef, label: str, version: int, *, reason: str | None = None,
                  author: str | None = None, force: bool = False, rerun: bool = False) -> LabelMove:
        """Point `label` at `version`. A gated environment's label (production, staging, ...)
        moves only through that environment's gate: raises GateFailed with its reasons when it
        refuses, DeployPending when it waits for approval; `force=True` with a `reason` moves it
        anyway as a forced deployment (audited). `rerun` runs the gate's suite afresh."""
        from promstack.deploy import gates

        return gates.set_label(self, prompt, label, version, reason=reason, actor=author, force=force,
                                rerun=rerun)

    def remove_label(self, prompt: PromptRef, label: str, *, reason: str | None = None) -> LabelMove:
        return self._prompts.remove_label(prompt, label, reason=reason)

    def change_mark(self) -> str:
        """A token that moves whenever the prompt listing does (a save, a label move, an archive,
        a finished quick check of a save): compare two to know whether anything changed."""
        from store.changes import change_mark

        return change_mark(self.store.db)

    def labels(self, prompt: PromptRef) -> dict[str, int]:
        return self._prompts.labels(prompt)

    def label_history(self, prompt: PromptRef, label: str | None = None) -> list[LabelMove]:
        return self._prompts.label_history(prompt, label)

    def label_at(self, prompt: PromptRef, label: str, at: str) -> int | None:
        """Which version `label` pointed at, at time `at`."""
        return self._prompts.label_at(prompt, label, at)

    def rollback_label(self, prompt: PromptRef, label: str, *, reason: str | None = None) -> LabelMove:
        return self._prompts.rollback_label(prompt, label, reason=reason)

    # ---- running prompts (the gateway: promstack/gateway) ----------------------------------

    @property
    def gateway(self) -> Gateway:
        """Render, guard, cache, call, price and log (promstack.gateway), made on first use."""
        if self._gateway is None:
            self._gateway = self.open_gateway()
        return self._gateway

    def open_gateway(self, *, environment: str | None = None, batch: bool = False) -> Gateway:
        """A new gateway over this store (its own connection to a store file), closed by the
        caller; it starts the opt-in OTLP export of the call log (promstack.monitoring.otel).
        `batch`: a gateway for one batch run (see `Gateway`)."""
        from promstack.gateway import Gateway
        from promstack.monitoring import otel

        gateway = Gateway(self.store, environment=environment, batch=batch)
        otel.start_background(self.store.path)
        return gateway

    def run(
        self,
        prompt: PromptRef,
        variables: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
        branch: str | None = None,
        model: str | None = None,
        user_id: str | None = None,
        **options: Any,
    ) -> CallResult:
        """Render a version with `variables`, guard it, call its model (cached, logged, audited).
        With `label` and `user_id`, the version that user is served (A/B arm, rollout share).
        `options`: run_id, environment, cache (False skips the cache), model_config overrides."""
        version, label, options = self._serving(prompt, version, label, branch, user_id, options)
        return self.gateway.run(prompt, variables, version=version, label=label, branch=branch,
                                model=model, user_id=user_id, **options)

    def _serving(self, prompt, version, label, branch, user_id, options):  # noqa: ANN001, ANN202
        """A label asked for on behalf of a user resolves as `get_prompt` does (A/B arms and
        rollouts), and the call is logged under that label's environment."""
        if label is None or user_id is None or version is not None or branch is not None:
            return version, label, options
        served = self.get_prompt(prompt, label=label, user_id=user_id)
        return served.version, None, {"environment": label, **options}

    async def arun(
        self,
        prompt: PromptRef,
        variables: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
        branch: str | None = None,
        model: str | None = None,
        user_id: str | None = None,
        **options: Any,
    ) -> CallResult:
        """`run`, awaitable."""
        version, label, options = self._serving(prompt, version, label, branch, user_id, options)
        return await self.gateway.arun(prompt, variables, version=version, label=label, branch=branch,
                                       model=model, user_id=user_id, **options)

    def list_runs(self, *, suite: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Test and arena runs, newest first (`suite`: only that suite's)."""
        return self.evals.runs(suite=suite, limit=limit)

    def call_log(self, **filters: Any) -> list[dict[str, Any]]:
        """Call-log rows, newest first; filters as `store.calls.query` (prompt may be a name)."""
        from store import calls

        self.flush_calls()
        if "prompt" in filters:
            prompt = filters.pop("prompt")
            filters["prompt_id"] = self._prompts.prompt_id(prompt) if prompt is not None else None
        for bound in ("since", "until"):
            if isinstance(filters.get(bound), str) and filters[bound].strip():
                # "24h" or an ISO time, as `metrics` reads them; one out of range is a sentence
                from promstack import monitoring

                filters[bound] = monitoring.iso(monitoring.parse_time(filters[bound]))
        return calls.query(self.store.db, **filters)

    def import_file(self, path: str | os.PathLike, *, name: str, source: str | None = None) -> tuple[str, PromptVersion]:
        """(format, version): a prompt file (.txt .md .j2, .prompt.md, .prompt.yml, .prompty,
        .prompt) made a version exactly as the watcher makes one (store.filesync): a new prompt
        `name`, or a new version of the prompt of that name, whose model config keys the file
        sets and whose others it keeps. `source` defaults to `file:<path>`."""
        from store.filesync import FileSync
        from store.prompts import MAIN
        from store.workspace import workspace_root

        root = workspace_root(self.store.path) if self.store.path else Path.cwd()
        fmt, saved = FileSync(self.store, root, root=root, branch=MAIN).import_file(
            path, name=name, source=source or f"file:{path}")
        return fmt, self._written(saved)

    # ---- the whole store --------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        return transfer.export(self.store.db)

    def import_(self, document: dict[str, Any], *, force: bool = False, reason: str | None = None) -> dict[str, int]:
        """Import a whole-store document (all or nothing). Labels of gated environments in it
        are refused unless `force=True` with a `reason` (each recorded as a forced deployment)."""
        from promstack.deploy import gates

        return gates.import_store(self, document, force=force, reason=reason)

    def audit_log(self, prompt: PromptRef | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        pid = self._prompts.prompt_id(prompt) if prompt is not None else None
        return audit.entries(self.store.db, prompt_id=pid, limit=limit)

    def verify_audit(self, *, expect: str | None = None) -> tuple[bool, str]:
        """(ok, message): the keyed chain, versions and label history; `expect` a head COUNT:HASH."""
        return tuple(audit.verify(self.store.db, expect=expect)[:2])

    def audit_report(self, *, expect: str | None = None) -> audit.Report:
        """`verify_audit` with the head (COUNT:HASH) and every problem found."""
        return audit.verify(self.store.db, expect=expect)


def check_same_kind(head: PromptVersion, template: Any) -> None:
    """Refuse a template of the other kind than the head's: a chat prompt given plain text would
    silently become a text prompt (its system message and roles gone)."""
    from store.template import normalize

    kind = normalize(template).kind
    if kind == head.kind:
        return
    if head.kind == "chat":
        roles = ", ".join(m["role"] for m in head.template)
        raise InvalidInput(
            f"prompt {head.name!r} is a chat prompt (messages: {roles}) and this template is plain text; "
            "give the messages as JSON, such as [{\"role\": \"system\", \"content\": \"...\"}, "
            "{\"role\": \"user\", \"content\": \"{{ input }}\"}], or make a new text prompt"
        )
    raise InvalidInput(
        f"prompt {head.name!r} is a text prompt and this template is chat messages; "
        "give plain text, or make a new chat prompt"
    )
