"""The SDK over a team server: the `Client` methods as calls of the REST API (/api/v1).

    Client(url="http://host:8787", token="...")      # or PROMSTACK_URL and PROMSTACK_TOKEN
    -> a RemoteClient: the same methods, the same records (store.models), the same exceptions

`Client.__new__` hands one of these out when a URL is given (or PROMSTACK_URL is set and no
store file is named), so every face that makes a `Client` works against a server unchanged.
One kept-alive HTTP connection (httpx), timeouts on every call; a server that cannot be reached
is `Unreachable`, naming the URL. An error the server answers with is rebuilt from its envelope
`{"error": {"type", "message"}}`: the same class, the same sentence (and its `parts`: the next
steps it suggests, so a face words them in its own terms). Long operations the server runs (a
judge pass, an arena) are followed to their end (`follow`).

What the server does not offer over REST (the local store file itself: `store`, `evals`,
`gateway`) raises `NotRemote`, naming PROMSTACK_URL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from promstack.prompt_cache import Outage, PromptCache
from promstack.remote_facades import RemoteDeploys, RemoteMonitoring, RemoteTests
from promstack.reporting import CallReporter, Transient, call_fields
from store.errors import InvalidInput, NotFound, PromStackError, Step
from store.models import Branch, Diff, LabelMove, Prompt, PromptVersion

if TYPE_CHECKING:
    from promstack.gateway import CallResult

PromptRef = int | str
TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class Unreachable(PromStackError):
    """The server at the configured URL did not answer (down, wrong address, refused)."""


class NotRemote(PromStackError, AttributeError):
    """An operation that needs the store file itself, not offered over a team server yet (an
    AttributeError too, so `hasattr` and `getattr(client, name, default)` read it as absent)."""


def server_url(url: str | None = None) -> str | None:
    """The team server's URL: `url`, else PROMSTACK_URL; None for the local store."""
    found = url if url is not None else os.environ.get("PROMSTACK_URL")
    found = (found or "").strip()
    if not found:
        return None
    if not found.startswith(("http://", "https://")):
        raise InvalidInput(f"PROMSTACK_URL must start with http:// or https://; got {found!r}")
    return found.rstrip("/")


def _error_classes() -> dict[str, type[PromStackError]]:
    # The engine's exceptions, by name, so an envelope's `type` becomes the class raised locally.
    from promstack import access, deploy  # noqa: F401  (their exceptions register as subclasses)
    from promstack.gateway import budgets, errors  # noqa: F401

    found: dict[str, type[PromStackError]] = {}
    pending = [PromStackError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_STATUS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "MergeConflict", 422: "InvalidInput"}


def rebuild(status: int, body: Any) -> PromStackError:
    """The exception a server's error envelope stands for: its class by `type`, its message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        # Not the API's envelope (the server's token check answers in plain text): the status
        # says which error it is, the text what to do.
        text = body.strip() if isinstance(body, str) and body.strip() else f"the server answered {status}"
        error = {"type": _BY_STATUS.get(status, "InvalidInput"), "message": text}
    classes = _error_classes()
    cls = classes.get(str(error.get("type"))) or classes.get(_BY_STATUS.get(status, "InvalidInput"), InvalidInput)
    exc = cls.__new__(cls)
    PromStackError.__init__(exc, str(error.get("message", "")))
    # What the classes' own constructors would have set (a gateway error's provider and call,
    # a guard's report), then what the envelope carries besides its sentence (conflicts, field).
    defaults = {"conflicts": [], "call_id": None, "provider": None, "cause": None, "status": status,
                "retryable": False, "retry_after": None, "attempts": 1, "report": {}}
    for name, value in {**defaults, **error}.items():
        if name not in ("type", "message", "parts"):
            setattr(exc, name, value)
    if isinstance(error.get("parts"), list):
        # The sentence's next steps, so a face words them as it does for a local error.
        exc.parts = tuple(Step(p["step"], **p.get("params", {})) if isinstance(p, dict) else str(p)
                          for p in error["parts"])
    return exc


def _version(data: dict[str, Any], renderer: Callable[..., Any]) -> PromptVersion:
    data = dict(data)
    data["model_config"] = data.pop("config", data.get("model_config")) or {}
    # The REST schema spells an absent default as null; the store's records leave it out (a
    # null default would fill a required variable).
    data["variables"] = [{k: v for k, v in var.items() if v is not None or k not in ("default", "description")}
                         for var in data.get("variables") or []]
    fields = PromptVersion.__dataclass_fields__
    return PromptVersion(**{k: v for k, v in data.items() if k in fields and k != "_renderer"}, _renderer=renderer)


def _record(cls: type, data: dict[str, Any]) -> Any:
    return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class RemoteClient:
    """`Client` over a team server's REST API; see the module's docstring."""

    remote = True

    def __init__(self, url: str, token: str | None = None, *, local: Callable[..., Any] | None = None,
                 timeout: httpx.Timeout | float = TIMEOUT, transport: httpx.BaseTransport | None = None,
                 cache_ttl: float | None = None, cache_dir: str | os.PathLike | bool | None = None) -> None:
        # `local`: how to open a local store (the `Client` class, handed in by `Client.__new__`:
        # this module sits below it and does not import it).
        self._local = local
        self._actor: str | None = None
        self.url = url.rstrip("/")
        self.token = token if token is not None else (os.environ.get("PROMSTACK_TOKEN") or None)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout,
                                  transport=transport)
        self._transport = transport
        self._reporter: CallReporter | None = None
        self.reporter_options: dict[str, Any] = {}  # CallReporter's limits, before the first log_call
        # Label and version reads, cached (promstack.prompt_cache): `cache_ttl` seconds
        # (PROMSTACK_CACHE_TTL, 30), last good copies under `cache_dir` (False: none on disk).
        self._cache_http: httpx.Client | None = None
        self.prompt_cache = PromptCache(self._serving, self._v, scope=self.url, ttl=cache_ttl,
                                        directory=cache_dir, unreachable=Unreachable)

    def __repr__(self) -> str:
        return f"<Client url={self.url!r}>"

    # ---- transport -------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """One REST call; an error envelope raised as the engine's exception, a dead server as
        `Unreachable`. Statuses in `ok` (besides 2xx) are returned to the caller."""
        if method != "GET":
            self.prompt_cache.forget()  # a label this client moves is read again, not served from memory
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(f"could not reach {self.url}: {_reason(exc)}") from None
        if response.is_success or response.status_code in ok:
            return response
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 500 and not (isinstance(body, dict) and "error" in body):
            raise PromStackError(f"the server at {self.url} failed ({response.status_code}); see its log")
        raise rebuild(response.status_code, body)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request(method, path, json={k: v for k, v in (body or {}).items() if v is not None}).json()

    def close(self) -> None:
        if self._reporter is not None:
            self._reporter.close()  # reported calls drain before the connection closes
        self._http.close()
        if self._cache_http is not None:
            self._cache_http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        """The name the server writes this client's changes under: its token's name."""
        if self._actor is None:
            self._actor = self.request("GET", "/me").json()["name"]
        return self._actor

    def _p(self, prompt: PromptRef, sub: str = "") -> str:
        """The path of a prompt (an id or a name with slashes) and a sub-resource after `/-/`."""
        if isinstance(prompt, bool) or not isinstance(prompt, int | str) or prompt == "":
            raise InvalidInput(f"a prompt is an id or a name; got {prompt!r}")
        path = "/prompts/" + quote(str(prompt), safe="/")
        return f"{path}/-/{sub}" if sub else path

    # ---- what stays local ------------------------------------------------------------------------

    def _not_remote(self, what: str = "this") -> NotRemote:
        return self.not_remote(what)

    def not_remote(self, what: str = "this") -> NotRemote:
        """The refusal of an operation not offered over a team server yet (for the engine to raise)."""
        return NotRemote(f"{what} needs a local store file and does not work over a team server yet "
                         f"(PROMSTACK_URL={self.url}); unset PROMSTACK_URL to use a local store")

    def __getattr__(self, name: str) -> Any:
        # Whatever else a local Client has (the store itself, its gateway ...) is not offered
        # over REST: say so, naming the server.
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._not_remote()

    @property
    def store(self) -> Any:
        raise self._not_remote()

    @property
    def evals(self) -> Any:
        raise self._not_remote()

    @property
    def gateway(self) -> Any:
        raise self._not_remote()

    @property
    def deploys(self) -> RemoteDeploys:
        """Deploys, approvals, A/B tests and rollouts, on the server (`Client.deploys`'s methods)."""
        return RemoteDeploys(self)

    @property
    def monitoring(self) -> RemoteMonitoring:
        """Metrics, alerts and costs of the server's call log (`Client.monitoring`'s methods)."""
        return RemoteMonitoring(self)

    @property
    def tests(self) -> RemoteTests:
        """Suites, test runs, evaluate and the arena over the server (`Client.tests`'s methods)."""
        return RemoteTests(self)

    def forget_resolved(self) -> None:
        self.prompt_cache.forget()

    def flush_calls(self) -> None:
        """Wait for the calls `log_call` queued to reach the server (or be dropped, counted)."""
        self.flush()

    # ---- calls the app reports (promstack.reporting) -----------------------------------------------

    @property
    def reporter(self) -> CallReporter:
        """The queue `log_call` fills and its sending thread (made on first use)."""
        if self._reporter is None:
            http = httpx.Client(base_url=self._http.base_url, headers=self._http.headers,
                                timeout=httpx.Timeout(10.0, connect=2.0), transport=self._transport)

            def send(batch: list[dict[str, Any]]) -> dict[str, Any]:
                try:
                    response = http.post("/calls", json={"calls": batch})
                except httpx.TransportError as exc:
                    raise Transient(f"could not reach {self.url}: {_reason(exc)}") from None
                if response.status_code >= 500 or response.status_code in (408, 429):
                    raise Transient(f"{self.url} answered {response.status_code}")
                if not response.is_success:
                    raise rebuild(response.status_code, response.json())
                return response.json()

            self._reporter = CallReporter(send, **self.reporter_options)
        return self._reporter

    def log_call(self, model: str, **fields: Any) -> str:
        """Report a call the app made itself (fields as the call log's: prompt_id (or a name),
        prompt_version, input_tokens, output_tokens, latency_ms, user_id, status, error,
        timestamp, cost_usd, ...); queued and sent in the background, never blocking. Returns
        the call's id (the log's is `api-<id>`)."""
        row = call_fields(model, **fields)
        self.reporter.put(row)
        return row["call_id"]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the reported calls are sent (or dropped); False if `timeout` passed first."""
        return True if self._reporter is None else self._reporter.flush(timeout)

    # ---- prompts and versions --------------------------------------------------------------------

    def _render(self, version: PromptVersion, variables: dict[str, Any]) -> Any:
        """Client-side rendering, as the store renders; an `{% include %}` is read from the server."""
        import json

        from store.prompts import LATEST
        from store.template import Template, render

        def include(name: str, selector: str) -> Any:
            # through the prompt cache, so a copy renders while the server is away; an include
            # with no selector is main's head, which the label `latest` follows
            if selector.isdigit():
                return self.get_prompt(name, version=int(selector)).template
            return self.get_prompt(name, label=selector or LATEST).template

        template = Template(version.kind, version.template if version.kind == "text"
                            else json.dumps(version.template, ensure_ascii=False, indent=1))
        return render(template, dict(variables or {}), version.variables, include,
                      label=f"prompt {version.name!r} v{version.version}", model_config=version.model_config)

    def _v(self, data: dict[str, Any]) -> PromptVersion:
        return _version(data, self._render)

    def create_prompt(self, name: str, template: Any, *, model_config: dict[str, Any] | None = None,
                      description: str | None = None, message: str | None = None, author: str | None = None,
                      source: str = "sdk", id: int | None = None) -> PromptVersion:
        return self._v(self.send("POST", "/prompts", {"name": name, "template": template,
                                                      "model_config": model_config, "id": id,
                                                      "description": description, "message": message}))

    def save(self, prompt: PromptRef, template: Any = None, *, model_config: dict[str, Any] | None = None,
             message: str | None = None, branch: str = "main", author: str | None = None, source: str = "sdk",
             keep_config: bool = False, keep_kind: bool = False) -> PromptVersion:
        if keep_config and model_config is not None:
            model_config = {**self.get_prompt(prompt, branch=branch).model_config, **model_config}
        return self._v(self.send("POST", self._p(prompt, "versions"), {
            "template": template, "model_config": model_config, "message": message, "branch": branch}))

    def get_prompt(self, prompt: PromptRef | None = None, *, id: int | None = None, version: int | None = None,
                   label: str | None = None, branch: str | None = None, resolved: bool = False,
                   user_id: str | None = None, fallback: Any = None) -> PromptVersion:
        """A version of a prompt. Read by `label` (with `user_id`: their A/B arm or rollout share)
        or by `version`, it comes from the prompt cache (promstack.prompt_cache): fresh, stale
        while one background refresh runs, the copy kept on disk, or `fallback` (a template) for
        a prompt never fetched while the server is away; `.served_from` says which."""
        if not resolved and branch is None and (label is None) != (version is None) and (prompt is None) != (id is None):
            return self.prompt_cache.get(prompt if id is None else id, label, version, user_id, fallback)
        if prompt is None and id is None:
            raise InvalidInput("say which prompt: a name or an id")
        if prompt is not None and id is not None:
            found = self.get_prompt(prompt)
            if found.prompt_id != id:
                raise InvalidInput(f"prompt {prompt!r} has id {found.prompt_id}, not {id}")
        if version is not None and label is not None:
            raise InvalidInput("give version or label, not both")
        if version is None and label is None and branch is None:
            branch = "main"  # the editing view, as the local Client; REST alone defaults to production
        return self._v(self.get(self._p(id if id is not None else prompt), version=version, label=label,
                                branch=branch, user_id=user_id if label is not None else None,
                                resolved="true" if resolved else None))

    def render(self, prompt: PromptRef, variables: dict[str, Any] | None = None, **selector: Any) -> Any:
        return self.get_prompt(prompt, **selector).render(**(variables or {}))

    def _serving(self, prompt: PromptRef, label: str | None, version: int | None) -> dict[str, Any]:
        """What the prompt cache keeps, from the server: a label's state (GET .../-/serving) or
        one version. A server that is away is an `Outage` (the cache serves its copy); an error it
        answers is raised as the engine's exception."""
        if self._cache_http is None:
            # its own connection, with short timeouts: a refresh runs beside the app's calls
            self._cache_http = httpx.Client(base_url=self._http.base_url, headers=self._http.headers,
                                            timeout=httpx.Timeout(10.0, connect=3.0), transport=self._transport)
        path, params = (self._p(prompt, "serving"), {"label": label}) if label is not None else \
            (self._p(prompt), {"version": version})
        try:
            response = self._cache_http.get(path, params=params)
        except httpx.TransportError as exc:
            raise Outage(f"could not reach {self.url}: {_reason(exc)}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise Outage(f"{self.url} answered {response.status_code}")
        if not response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            raise rebuild(response.status_code, body)
        return response.json()

    def dependents(self, prompt: PromptRef) -> list[dict[str, Any]]:
        return self.get(self._p(prompt, "dependents"))

    def list_prompts(self, *, include_archived: bool = False, include_internal: bool = False) -> list[Prompt]:
        data = self.get("/prompts", include_deleted=include_archived or None)
        return [_record(Prompt, p) for p in data["prompts"]]

    def history(self, prompt: PromptRef, *, branch: str | None = None, limit: int | None = None) -> list[PromptVersion]:
        data = self.get(self._p(prompt, "history"), branch=branch, limit=limit or 500, full="true")
        return [self._v(v) for v in data["versions"]]

    def version_checks(self, prompt: PromptRef, versions: list[int] | None = None) -> dict[int, Any]:
        """version -> its quick check, as the local `Client.version_checks` (the server checks its saves)."""
        from promstack.evals.check import check_from_dict

        if versions is not None and not versions:
            return {}
        wanted = ",".join(str(v) for v in versions) if versions else None
        data = self.get(self._p(prompt, "checks"), versions=wanted)
        return {int(k): check_from_dict(v) for k, v in data["checks"].items()}

    def checkpoints(self, prompt: PromptRef) -> dict[int, list[str]]:
        """version -> the names given to it (checkpoints), oldest first."""
        return {int(k): v for k, v in self.get(self._p(prompt, "checkpoints"))["checkpoints"].items()}

    def folded_history(self, prompt: PromptRef, *, branch: str | None = None) -> list[dict[str, Any]]:
        """History with unnamed saves folded, as the local `Client.folded_history`."""
        from store.checkpoints import fold

        history = self.history(prompt, branch=branch)
        if not history:
            return []
        return fold(history, self.checkpoints(prompt), self.labels(prompt))

    def diff(self, prompt: PromptRef, from_version: int, to_version: int | None = None) -> Diff:
        data = self.get(self._p(prompt, "diff"), from_version=from_version, to_version=to_version)
        data["words"] = [tuple(w) for w in data.get("words") or []]
        return _record(Diff, data)

    def rollback(self, prompt: PromptRef, to_version: int, *, branch: str = "main", message: str | None = None,
                 author: str | None = None) -> PromptVersion:
        return self._v(self.send("POST", self._p(prompt, "rollback"),
                                 {"version": to_version, "branch": branch, "message": message}))

    def delete_prompt(self, prompt: PromptRef, *, author: str | None = None) -> Prompt:
        return _record(Prompt, self.request("DELETE", self._p(prompt)).json())

    def restore_prompt(self, prompt: PromptRef, *, author: str | None = None) -> Prompt:
        return _record(Prompt, self.send("POST", self._p(prompt, "restore")))

    def import_file(self, path: str | os.PathLike, *, name: str, source: str | None = None) -> tuple[str, PromptVersion]:
        """(format, version): a prompt file read here by the watcher's parsers, saved on the
        server as a new prompt `name` or a new version of it (the file's model config keys set,
        the others kept), as the local `Client.import_file`."""
        from store.filesync import read_prompt_file

        fmt, parsed = read_prompt_file(path)
        try:
            self.get_prompt(name)
        except NotFound:
            return fmt, self.create_prompt(name, parsed.template, model_config=parsed.model_config,
                                           description=parsed.description, message=parsed.message)
        return fmt, self.save(name, parsed.template, model_config=parsed.model_config, message=parsed.message,
                              keep_config=True)

    # ---- the whole store and its audit log ---------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The server's whole store as one document, as the local `Client.export` (no read
        timeout: a large store takes a while)."""
        return self.request("GET", "/export", timeout=httpx.Timeout(None, connect=5.0)).json()

    def import_(self, document: dict[str, Any], *, force: bool = False, reason: str | None = None) -> dict[str, int]:
        """Import a whole-store document into the server's store (all or nothing), as the local
        `Client.import_`: gated environments' labels are refused unless `force` with a `reason`."""
        return self.request("POST", "/import", json={"document": document, "force": force, "reason": reason},
                            timeout=httpx.Timeout(None, connect=5.0)).json()

    def audit_log(self, prompt: PromptRef | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        return self.get("/audit", prompt=None if prompt is None else str(prompt), limit=limit)

    def verify_audit(self, *, expect: str | None = None) -> tuple[bool, str]:
        """(ok, message), checked on the server (its audit key never leaves it)."""
        return tuple(self.audit_report(expect=expect)[:2])

    def audit_report(self, *, expect: str | None = None) -> Any:
        """`verify_audit` with the head (COUNT:HASH) and every problem found (a store.audit.Report)."""
        from store.audit import Report

        found = self.get("/audit/verify", expect=expect)
        return Report(found["ok"], found["message"], found["count"], found["head"], tuple(found["problems"]))

    # ---- branches --------------------------------------------------------------------------------

    def create_branch(self, prompt: PromptRef, name: str, *, from_version: int | None = None,
                      author: str | None = None) -> Branch:
        return _record(Branch, self.send("POST", self._p(prompt, "branches"),
                                         {"branch": name, "from_version": from_version}))

    def list_branches(self, prompt: PromptRef) -> list[Branch]:
        return [_record(Branch, b) for b in self.get(self._p(prompt, "branches"))]

    def merge(self, prompt: PromptRef, branch: str, *, into: str = "main", message: str | None = None,
              author: str | None = None) -> PromptVersion:
        return self._v(self.send("POST", self._p(prompt, "merge"),
                                 {"branch": branch, "into": into, "message": message}))

    # ---- labels ----------------------------------------------------------------------------------

    def set_label(self, prompt: PromptRef, label: str, version: int, *, reason: str | None = None,
                  author: str | None = None, force: bool = False, rerun: bool = False) -> LabelMove:
        from promstack.deploy import DeployPending

        response = self.request("PUT", self._p(prompt, f"labels/{quote(label, safe='')}"),
                                json={"version": version, "reason": reason, "force": force, "rerun": rerun})
        if response.status_code == 202:
            raise DeployPending(response.json().get("message", "the deployment waits for approval"))
        return _record(LabelMove, response.json())

    def change_mark(self) -> str:
        """The server's change mark (`Client.change_mark`): one small read, however many prompts."""
        return self.get("/changes")["cursor"]

    def labels(self, prompt: PromptRef) -> dict[str, int]:
        return self.get(self._p(prompt, "labels"))["labels"]

    def label_history(self, prompt: PromptRef, label: str | None = None) -> list[LabelMove]:
        return [_record(LabelMove, m) for m in self.get(self._p(prompt, "label-history"), label=label)]

    def remove_label(self, prompt: PromptRef, label: str, *, reason: str | None = None) -> LabelMove:
        return _record(LabelMove, self.request("DELETE", self._p(prompt, f"labels/{quote(label, safe='')}"),
                                               params={"reason": reason} if reason is not None else {}).json())

    def label_at(self, prompt: PromptRef, label: str, at: str) -> int | None:
        """Which version `label` pointed at, at time `at`."""
        return self.get(self._p(prompt, "label-at"), label=label, at=at)["version"]

    def rollback_label(self, prompt: PromptRef, label: str, *, reason: str | None = None) -> LabelMove:
        return _record(LabelMove, self.send("POST", self._p(prompt, "label-rollback"),
                                            {"label": label, "reason": reason}))

    # ---- running prompts (the server's gateway: its keys, its call log) --------------------------

    def run(self, prompt: PromptRef, variables: dict[str, Any] | None = None, *, version: int | None = None,
            label: str | None = None, branch: str | None = None, model: str | None = None,
            user_id: str | None = None, **options: Any) -> CallResult:
        from promstack.gateway import CallResult

        sent = {k: options.pop(k, None) for k in ("run_id", "environment", "cache")}
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise self._not_remote(f"run with {', '.join(given)}")
        # The caller's PROMSTACK_ENV names the environment, as it does for a local run.
        sent["environment"] = sent["environment"] or os.environ.get("PROMSTACK_ENV") or None
        data = self.send("POST", self._p(prompt, "run"), {
            "variables": variables or {}, "version": version, "label": label, "branch": branch, "model": model,
            "user_id": user_id, **{k: v for k, v in sent.items() if v is not None}})
        data.pop("priced", None)
        data.pop("unpriced", None)
        name = prompt if isinstance(prompt, str) and not prompt.isdigit() else None
        return _record(CallResult, {**data, "user_id": user_id, "prompt_name": data.get("prompt_name") or name})

    async def arun(self, prompt: PromptRef, variables: dict[str, Any] | None = None, **kwargs: Any) -> CallResult:
        return await asyncio.to_thread(self.run, prompt, variables, **kwargs)

    def call_log(self, **filters: Any) -> list[dict[str, Any]]:
        """Call-log rows of the server, newest first; filters as the local `Client.call_log`."""
        if "prompt_id" in filters:
            filters["prompt"] = filters.pop("prompt_id")
        if "limit" in filters:
            filters["limit"] = filters["limit"] or 0  # None: every row
        for name, value in list(filters.items()):
            if isinstance(value, bool):
                filters[name] = "true" if value else "false"
            elif value is not None and name == "prompt":
                filters[name] = str(value)
        return self.get("/calls", **filters)

    # ---- suites, test runs, evaluate, deploy (the engine's long operations, run on the server) ---

    def import_suite(self, text: str, *, fmt: str, name: str, prompt: PromptRef | None = None) -> dict[str, Any]:
        kinds = {"csv": "text/csv", "json": "application/json", "jsonl": "application/x-ndjson"}
        params = {"format": fmt, **({"prompt": str(prompt)} if prompt is not None else {})}
        return self.request("PUT", f"/suites/{quote(name, safe='')}", params=params, content=text.encode(),
                            headers={"Content-Type": kinds.get(fmt, "text/csv")}).json()

    def list_suites(self) -> list[dict[str, Any]]:
        return self.get("/suites")

    def show_suite(self, name: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        return self.get(f"/suites/{quote(name, safe='')}", limit=limit, offset=offset or None)

    def list_runs(self, *, suite: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Test and arena runs on the server, newest first (`suite`: only that suite's)."""
        return self.get("/runs", suite=suite, limit=limit)

    def get_run(self, run_id: str, *, failing: int = 20) -> dict[str, Any]:
        """The run as the engine reports it (promstack.evals.engine.get_run)."""
        return self.get(f"/runs/{quote(run_id, safe='')}/detail", failing=failing)

    def run_results(self, run_id: str) -> list[dict[str, Any]]:
        """A test run's results on the server (to resume the run here)."""
        return self.get(f"/runs/{quote(run_id, safe='')}/results")

    def follow(self, status: dict[str, Any], progress: Callable[..., Any] | None = None, *,
               every: float = 0.25) -> dict[str, Any]:
        """A long operation the server started (202, a RunStatus), polled to its end; the run it
        made, as the engine reports it. One that failed raises its error here."""
        import time

        while status["status"] == "running":
            if progress is not None and status.get("progress"):
                progress(status["progress"]["done"], status["progress"]["total"])
            time.sleep(every)
            status = self.get(f"/runs/{quote(status['run_id'], safe='')}")
        if status["status"] != "done":
            error = status.get("error") or {"type": "PromStackError",
                                            "message": f"run {status['run_id']} ended {status['status']}"}
            raise rebuild(400, {"error": error})
        result = status.get("result") or {}
        return self.get_run(result.get("run_id") or status["run_id"])

    def bisect_prompt(self, prompt: PromptRef, *, case: str | int | None = None, suite: str | None = None,
                      min_score: float | None = None, good: int | None = None, bad: int | None = None,
                      branch: str | None = None) -> dict[str, Any]:
        """`promstack.evals.bisect` on the server (its models, runs and cache); it answers when
        done, so no read timeout."""
        body = {"case": None if case is None else str(case), "suite": suite, "min_score": min_score, "good": good,
                "bad": bad, "branch": branch}
        return self.request("POST", self._p(prompt, "bisect"), json={k: v for k, v in body.items() if v is not None},
                            timeout=httpx.Timeout(None, connect=5.0)).json()

    def behaviour_diff(self, prompt: PromptRef, from_version: int, to_version: int | None = None, *,
                       suite: str | None = None, judge_model: str | None = None) -> dict[str, Any]:
        """`promstack.evals.behaviour` on the server: both versions run there (no read timeout)."""
        params = {"from_version": from_version, "to_version": to_version, "behaviour": "true", "suite": suite,
                  "judge_model": judge_model}
        return self.request("GET", self._p(prompt, "diff"), params={k: v for k, v in params.items() if v is not None},
                            timeout=httpx.Timeout(None, connect=5.0)).json()["behaviour"]

    def judge_run(self, run_id: str, criteria: Any, *, judge_model: str | None = None,
                  threshold: float | None = None, concurrency: int = 10,
                  progress: Callable[..., Any] | None = None) -> dict[str, Any]:
        """Judge a test run's outputs on the server (its judge model, its keys); the new run."""
        started = self.send("POST", f"/runs/{quote(run_id, safe='')}/judge", {
            "criteria": criteria, "judge_model": judge_model, "threshold": threshold, "concurrency": concurrency})
        return self.follow(started, progress)

    def arena(self, *, suite: str, models: list[str], resume: str | None = None,
              progress: Callable[..., Any] | None = None, **options: Any) -> dict[str, Any]:
        """An arena run on the server (its models, its keys); the run as `get_run` reports it."""
        prompt = options.get("prompt")
        body = {"resume": resume} if resume else {
            **options, "suite": suite, "models": list(models), "prompt": None if prompt is None else str(prompt)}
        if resume and options.get("concurrency") is not None:
            body["concurrency"] = options["concurrency"]
        started = self.send("POST", "/arena", body)
        return self.follow(started, progress)

    def record_vote(self, match_id: int, winner: str, *, voter: str | None = None) -> dict[str, Any]:
        return self.send("POST", f"/arena/matches/{int(match_id)}/votes", {"winner": winner, "voter": voter})

    def upload_run(self, run: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
        """A finished test run made here, kept on the server (once, by its id); the server's view of it."""
        import json

        body = json.loads(json.dumps({"run": run, "results": results}, ensure_ascii=False, default=str))
        return self.request("POST", "/runs/upload", json=body).json()["run"]

    def local_client(self, db: str | os.PathLike) -> Any:
        """A local `Client` over the store at `db` (a scratch store for work done on this machine)."""
        return self._local(db)

    def deploy(self, prompt: PromptRef, *, rollback: bool = False, **options: Any) -> dict[str, Any]:
        """A deploy through the server's gate; the deployment as the engine records it."""
        body = {"rollback": rollback or None, **{k: options.get(k) for k in (
            "version", "environment", "force", "reason", "rerun")}, "skip": list(options.get("skip") or []) or None}
        response = self.request("POST", self._p(prompt, "deploy"), ok=(409,),
                                json={k: v for k, v in body.items() if v is not None})
        return self._deployment(response)

    def list_deployments(self, prompt: PromptRef | None = None, *, env: str | None = None, status: str | None = None,
                         limit: int = 20) -> list[dict[str, Any]]:
        return self.get("/deployments", prompt=None if prompt is None else str(prompt), environment=env,
                        status=status, limit=limit)

    def deploy_status(self, prompt: PromptRef) -> dict[str, Any]:
        return self.get(self._p(prompt, "deployments"))

    def _deployment(self, response: httpx.Response) -> dict[str, Any]:
        """The deployment a deploy or rollout answered with (a refusal is 409 carrying it), as the
        engine records it."""
        data = response.json()
        found = data.get("error", {}).get("deployment") if response.status_code == 409 else data
        if found is None:
            raise rebuild(409, data)
        if found.get("deployment_id") is None:
            return {**found, "id": None}
        return self.get(f"/deployments/{found['deployment_id']}")

    def decide(self, deployment_id: int, decision: str, *, reason: str | None = None) -> dict[str, Any]:
        """Approve or reject (`decision`) a deployment waiting for approval; the deployment after."""
        self.request("POST", f"/deployments/{int(deployment_id)}/{decision}", ok=(202, 409),
                     json={"reason": reason} if reason is not None else {})
        return self.get(f"/deployments/{int(deployment_id)}")

    def start_rollout(self, prompt: PromptRef, *, version: int | None, percent: float, environment: str | None,
                      reason: str | None) -> dict[str, Any]:
        """A rollout started through the server's gate; the deployment as the engine records it."""
        response = self.request("POST", self._p(prompt, "rollout"), ok=(202, 409), json={
            k: v for k, v in {"version": version, "percent": percent, "environment": environment,
                              "reason": reason}.items() if v is not None})
        return self._deployment(response)

    # ---- A/B tests and rollouts (promstack.deploy.abtest, .rollout) ------------------------------

    def ab_start(self, prompt: PromptRef, **options: Any) -> dict[str, Any]:
        return self.send("POST", self._p(prompt, "ab"), options)

    def ab_report(self, prompt: PromptRef, *, env: str | None = None, evaluate: bool = False) -> dict[str, Any]:
        """The A/B report; `evaluate` tests an arm with no finished run on the server first (no
        read timeout: it runs the suite)."""
        if not evaluate:
            return self.get(self._p(prompt, "ab"), environment=env)
        return self.request("GET", self._p(prompt, "ab"), params={"environment": env, "evaluate": "true"} if env
                            else {"evaluate": "true"}, timeout=httpx.Timeout(None, connect=5.0)).json()

    def ab_stop(self, prompt: PromptRef, **options: Any) -> dict[str, Any]:
        return self.send("POST", self._p(prompt, "ab/stop"), options)

    def rollout(self, prompt: PromptRef, action: str = "", **options: Any) -> dict[str, Any]:
        """A rollout's status (no `action`), or `promote` / `abort` it."""
        if not action:
            return self.get(self._p(prompt, "rollout"), environment=options.get("environment"))
        return self.send("POST", self._p(prompt, f"rollout/{action}"), options)

    def check_rollouts(self) -> list[dict[str, Any]]:
        return self.send("POST", "/rollouts/check")

    # ---- monitoring (promstack.monitoring.facade) ------------------------------------------------

    def metrics(self, *, by: Any = None, prompt: PromptRef | None = None, **filters: Any) -> dict[str, Any]:
        from promstack.monitoring.call_metrics import parse_groups

        return self.get("/metrics", by=parse_groups(by), prompt=None if prompt is None else str(prompt), **filters)

    def check_alerts(self, *, notify: bool = True) -> dict[str, Any]:
        return self.send("POST", "/alerts/check", {"notify": notify})

    def alert_history(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return self.get("/alerts/history", state=state, limit=limit)

    def recommend_model(self, prompt: PromptRef, **options: Any) -> dict[str, Any]:
        return self.get(self._p(prompt, "cost/recommend"), **options)

    def compare_versions(self, prompt: PromptRef, a: int, b: int, **options: Any) -> dict[str, Any]:
        return self.get(self._p(prompt, "cost/compare"), a=a, b=b, **options)

    def suggest_shorter(self, prompt: PromptRef, **options: Any) -> dict[str, Any]:
        """A shorter rewrite, saved on a branch and tested on the server (it runs the suite twice:
        no read timeout)."""
        body = {k: v for k, v in options.items() if v is not None}
        return self.request("POST", self._p(prompt, "cost/shorter"), json=body,
                            timeout=httpx.Timeout(None, connect=5.0)).json()

    def price_table(self, models: list[str] | None = None) -> dict[str, Any]:
        return self.get("/prices", model=list(models or []) or None)

    def cost_report(self, *, by: Any = "prompt", **options: Any) -> dict[str, Any]:
        from promstack.monitoring.call_metrics import parse_groups

        return self.get("/costs", by=parse_groups(by), **options)


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if "name or service not known" in lowered or "nodename" in lowered or "resolution" in lowered:
        return "unknown host"
    return text


class FileSaver:
    """The file watcher of a laptop whose store is a team server's: every prompt file saved under
    `folder` becomes a version on the server (as `promstack import` makes one). It looks every
    `interval` seconds for files whose modification time or size changed; a file it cannot
    read, or the server refusing it, is reported through `on_error` and tried again on its next
    change. Deletions and renames stay local: the server keeps its prompts."""

    def __init__(self, client: RemoteClient, folder: str | os.PathLike, *, interval: float = 0.5,
                 on_saved: Callable[[str, PromptVersion], Any] | None = None,
                 on_error: Callable[[str, Exception], Any] | None = None) -> None:
        import threading
        from pathlib import Path

        self.client, self.folder, self.interval = client, Path(folder), interval
        self.on_saved, self.on_error = on_saved, on_error
        self._seen: dict[str, tuple[float, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="promstack-remote-watch", daemon=True)

    def scan(self) -> list[PromptVersion]:
        """Save what changed since the last scan; the versions made."""
        from store import formats
        from store.filesync import import_name

        made = []
        for path in sorted(self.folder.rglob("*")):
            if not path.is_file() or formats.format_of(path.name) is None:
                continue
            stat = path.stat()
            key, mark = str(path), (stat.st_mtime, stat.st_size)
            if self._seen.get(key) == mark:
                continue
            self._seen[key] = mark
            try:
                _, saved = self.client.import_file(path, name=import_name(path, self.folder))
            except PromStackError as exc:
                if self.on_error is not None:
                    self.on_error(key, exc)
                continue
            if saved.created:
                made.append(saved)
                if self.on_saved is not None:
                    self.on_saved(key, saved)
        return made

    def start(self) -> list[PromptVersion]:
        made = self.scan()
        self._thread.start()
        return made

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.scan()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
