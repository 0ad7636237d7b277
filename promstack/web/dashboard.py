"""The dashboard: HTML pages over the engine, mounted by `create_app` (`promstack serve`).

    Prompts     /prompts?q=, /prompts/{id}, /prompts/{id}/diff?a=&b=[&tab=behaviour]
                POST /prompts/{id}/rollback, /label, /deploy, /test (starts a run, opens its live view),
                /diff/behaviour (runs both versions on the suite and shows the Behaviour tab)
    Runs        /runs, /runs/{id}?status=, /runs/compare?a=&b=, /runs/{id}/live (polls live.json)
    Arena       /arena, /arena/{id}; POST /arena/matches/{id}/vote
    Monitoring  /monitoring?since=24h&prompt=&model=&environment=

Pages only read and present: every number comes from the engine function the CLI and MCP use
(`Client`, `promstack.evals.engine`, `promstack.monitoring`, `promstack.monitoring.alerts`, ...), and every
button is a POST that calls the same engine function as the matching CLI command, so it is
audited there. A POST needs the page's CSRF token (a per-process secret that only a page
served by this process carries; foreign Origins are already refused by `RequestGuard`).

The engine is synchronous SQLite: handlers run it on worker threads, each call with a `Client`
from a small pool (a connection is never shared by two threads at once); a run started from a
page runs on a thread of its own. HTML is rendered by Jinja2 with autoescape on;
charts are uPlot, shipped in `static/uplot/` (no CDN, so the pages work offline).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import math
import os
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from promstack.access import LOCAL, Forbidden
from promstack.pool import ClientPool
from store.errors import InvalidInput, PromStackError, Unauthorized

from . import auth, error_status, error_text, web_words
from .auth import actor_of, principal_of

if TYPE_CHECKING:
    from promstack.client import Client

HERE = Path(__file__).parent
FLASH_COOKIE = "promstack_flash"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
MAX_CASES = 2000  # rows a run page shows; the rest are one filter away (?status=fail)
WINDOWS = ("1h", "6h", "24h", "7d", "30d")
LABELS = ("development", "test", "staging", "production")


# ---- formatting helpers used by the templates --------------------------------------------------


def _pct(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{100 * float(value):.{digits}f}%"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    value = float(value)
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _usd(value: Any) -> str:
    if value is None:
        return "–"
    value = float(value)
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def _when(value: Any) -> str:
    return "" if not value else str(value).replace("T", " ")[:19]


def _text(template: Any) -> str:
    """A version's template as text (chat messages one per block)."""
    if isinstance(template, str):
        return template
    return "\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in template or [])


@functools.cache
def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, ms=_ms, usd=_usd, when=_when, text=_text)
    env.globals.update(cos_deg=lambda d: round(math.cos(math.radians(d)), 4),
                       sin_deg=lambda d: round(math.sin(math.radians(d)), 4))
    return env


# ---- data the pages need (all through engine functions) -----------------------------------------


def prompts_page(client: Client, query: str) -> dict[str, Any]:
    found = client.list_prompts()
    q = query.strip().lower()
    if q:
        found = [p for p in found if q in p.name.lower() or q in (p.description or "").lower()
                 or q == str(p.id)]
    return {"prompts": found, "q": query}


def environment_names(client: Client) -> list[str]:
    try:
        from promstack import deploy

        return [e.name for e in deploy.environments(client)]
    except Exception:  # deploys not configured or not available: labels still work
        return list(LABELS)


def label_role(client: Client, label: str) -> str:
    from promstack import deploy

    return deploy.label_role(client, label)


def prompt_page(client: Client, ref: int) -> dict[str, Any]:
    from promstack.evals import engine

    head = client.get_prompt(ref)
    history = client.history(ref)
    labels = client.labels(ref)
    by_version: dict[int, list[str]] = {}
    for name, number in labels.items():
        by_version.setdefault(number, []).append(name)
    branches = client.list_branches(ref)
    heads = {b.head: b.name for b in branches}
    branch_names = sorted({v.branch for v in history}, key=lambda b: (b != "main", b))
    suites = [s for s in engine.list_suites(client) if s.get("prompt_id") in (None, head.prompt_id)]
    runs = [r for r in client.evals.runs(limit=200) if r["prompt_id"] == head.prompt_id][:10]
    envs = environment_names(client)
    return {
        "head": head, "history": history, "labels": labels, "by_version": by_version,
        "branches": branches, "branch_names": branch_names, "heads": heads,
        "label_moves": client.label_history(ref)[:20], "suites": suites, "runs": runs,
        "environments": envs, "label_choices": sorted(set(LABELS) | set(labels)),
        # each save's quick check (promstack.evals.check), worded as every face words it
        "checks": client.version_checks(head.prompt_id, [v.version for v in history]) if history else {},
    }


def diff_page(client: Client, ref: int, a: int | None, b: int | None) -> dict[str, Any]:
    history = client.history(ref)
    numbers = sorted(v.version for v in history)
    if len(numbers) < 2 and (a is None or b is None):
        raise InvalidInput(f"prompt {ref} has one version; there is nothing to compare yet")
    b = b if b is not None else numbers[-1]
    a = a if a is not None else max((n for n in numbers if n < b), default=numbers[0])
    diff = client.diff(ref, a, b)
    left: list[tuple[str, str]] = []
    right: list[tuple[str, str]] = []
    for op, text in diff.words:
        if op <= 0:
            left.append(("del" if op < 0 else "", text))
        if op >= 0:
            right.append(("ins" if op > 0 else "", text))
    return {"diff": diff, "left": left, "right": right, "numbers": numbers, "a": a, "b": b,
            "name": diff.name, "prompt_id": diff.prompt_id}


def behaviour_tab(client: Client, ref: int, a: int | None, b: int | None, suite: str | None,
                  run: bool = False) -> dict[str, Any]:
    """The diff page on its Behaviour tab: the suites to choose from and, when `run`, the
    behaviour diff itself (both versions on the suite, judged; an error is shown in the tab)."""
    from promstack.evals.behaviour import behaviour_diff
    from promstack.evals.engine import list_suites

    context = diff_page(client, ref, a, b)
    context.update(tab="behaviour", suite=suite or "", behaviour=None, behaviour_error=None,
                   suites=[s["name"] for s in list_suites(client)])
    if run:
        try:
            context["behaviour"] = behaviour_diff(client, ref, context["a"], context["b"], suite=suite or None)
        except PromStackError as exc:
            context["behaviour_error"] = error_text(exc)
    return context


def _run_row(evals: Any, run: dict[str, Any]) -> dict[str, Any]:
    summary = run.get("summary")
    if run["kind"] == "test" and not summary:
        from promstack.evals.runner import summarize

        summary = summarize(evals, run["id"], failing=0)
    return {**run, "summary": summary or {}}


def runs_page(client: Client) -> dict[str, Any]:

    evals = client.evals
    runs = [_run_row(evals, r) for r in evals.runs(limit=200)]
    names = {p.id: p.name for p in client.list_prompts(include_archived=True, include_internal=True)}
    return {"runs": [r for r in runs if r["kind"] == "test"],
            "arena_runs": [r for r in runs if r["kind"] == "arena"], "names": names}


def run_page(client: Client, run_id: str, status: str | None) -> dict[str, Any]:
    from promstack.evals import engine

    run = engine.get_run(client, run_id, failing=0)
    evals = client.evals
    cases = []
    for row in evals.iter_results(run_id, status=status or None):
        cases.append(row)
        if len(cases) >= MAX_CASES:
            break
    cases.sort(key=lambda r: (r["case_idx"], r["model"], r["repeat"]))
    others = [r for r in evals.runs(suite=run["suite_name"], limit=50) if r["id"] != run_id
              and r["kind"] == "test"]
    from promstack.evals.score import case_threshold, evaluate_verdict

    summary = run.get("summary") or {}
    verdict = evaluate_verdict(summary) if summary.get("results") else ""
    return {"run": run, "cases": cases, "status": status or "", "capped": len(cases) >= MAX_CASES,
            "others": others, "prompt_name": _prompt_name(client, run["prompt_id"]),
            "verdict": verdict, "threshold": case_threshold(run)}


def _prompt_name(client: Client, prompt_id: int | None) -> str | None:
    if prompt_id is None:
        return None
    return next((p.name for p in client.list_prompts(include_archived=True, include_internal=True)
                 if p.id == prompt_id), None)


def live_data(client: Client, run_id: str) -> dict[str, Any]:
    from promstack.evals import engine

    run = engine.get_run(client, run_id, failing=10)
    summary = run.get("summary") or {}
    return {
        "id": run["id"], "status": run["status"], "total": run["total"],
        "done": summary.get("results", 0), "passed": summary.get("passed", 0),
        "failed": summary.get("failed", 0), "errors": summary.get("errors", 0),
        "unchecked": summary.get("unchecked", 0), "pass_rate": summary.get("pass_rate"),
        "score": summary.get("score"), "unscored": summary.get("unscored", 0),
        "unscored_reason": summary.get("unscored_reason"), "cost_usd": summary.get("cost_usd"),
        "latency_ms": summary.get("latency_ms"), "failing": summary.get("failing", []),
        "finished_at": run["finished_at"],
    }


def arena_page(client: Client, run_id: str | None) -> dict[str, Any]:
    from promstack.evals import engine

    evals = client.evals
    runs = [r for r in evals.runs(limit=200) if r["kind"] == "arena"]
    if run_id is None:
        return {"runs": runs, "run": None}
    run = engine.get_run(client, run_id)
    if run["kind"] != "arena":
        raise InvalidInput(f"run {run_id} is a {run['kind']} run, not an arena run")
    arena = run["arena"]
    models = sorted(arena["models"], key=lambda m: -(arena["ratings"].get(m, {}).get("rating") or 0))
    matrix = []
    for row_model in models:
        cells = []
        for col_model in models:
            cells.append(None if row_model == col_model else _win_rate(arena["pairs"], row_model, col_model))
        matrix.append((row_model, cells))
    ratings = [{"model": m, **arena["ratings"].get(m, {}), **arena["overall"].get(m, {})} for m in models]
    lo = min((r.get("ci_low") or r.get("rating") or 0 for r in ratings), default=0)
    hi = max((r.get("ci_high") or r.get("rating") or 0 for r in ratings), default=1)
    span = (hi - lo) or 1.0
    for r in ratings:  # positions of each rating and its CI on a 0-100% bar
        r["bar"] = {k: round(100 * ((r.get(k) or 0) - lo) / span, 2) for k in ("ci_low", "rating", "ci_high")}
    matches = evals.matches(run_id)[:MAX_CASES]
    return {"runs": runs, "run": run, "arena": arena, "models": models, "matrix": matrix,
            "ratings": ratings, "matches": matches, "prompt_name": _prompt_name(client, run["prompt_id"])}


def _win_rate(pairs: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    for entry in pairs.values():
        if entry.get("a") == a and entry.get("b") == b:
            return {"rate": entry["win_rate_a"], "n": entry["matches"]}
        if entry.get("a") == b and entry.get("b") == a:
            return {"rate": entry["win_rate_b"], "n": entry["matches"]}
    return None


def _buckets(since: datetime, until: datetime, step: timedelta) -> list[datetime]:
    start = since.replace(minute=0, second=0, microsecond=0)
    if step >= timedelta(days=1):
        start = start.replace(hour=0)
    out = []
    while start < until:
        out.append(start)
        start += step
    return out


def monitoring_page(client: Client, since: str, prompt: str | None, model: str | None,
                    environment: str | None, now: datetime | None = None) -> dict[str, Any]:
    from promstack import config, monitoring, watchdog
    from promstack.monitoring import alerts, gauges

    db = client.store.db
    now = now or datetime.now(UTC)
    win = monitoring.window(since, now=now)
    by = "hour" if now - win.since <= timedelta(hours=48) else "day"
    step = timedelta(hours=1) if by == "hour" else timedelta(days=1)
    filters = {"prompt": prompt or None, "model": model or None, "environment": environment or None}
    found = monitoring.metrics(db, since=since, by=by, now=now, **filters)
    rows = {r[by]: r for r in found["groups"]}
    keys = [(t, t.strftime("%Y-%m-%dT%H:00Z") if by == "hour" else t.strftime("%Y-%m-%d"))
            for t in _buckets(win.since, now, step)]
    series: dict[str, list[Any]] = {k: [] for k in ("t", "requests", "p50", "p95", "error_rate", "input_tokens",
                                                     "output_tokens", "cost", "evaluation_cost")}
    for moment, key in keys:
        row = rows.get(key)
        series["t"].append(int(moment.timestamp()))
        series["requests"].append(row["requests"] if row else 0)
        series["p50"].append(row.get("latency_p50_ms") if row else None)
        series["p95"].append(row.get("latency_p95_ms") if row else None)
        series["error_rate"].append(row.get("error_rate") if row else None)
        series["input_tokens"].append(row.get("input_tokens", 0) if row else 0)
        series["output_tokens"].append(row.get("output_tokens", 0) if row else 0)
        # the prompts' own spend and evaluation spend (tests, arena, judge), apart
        series["cost"].append(row.get("own_cost_usd", 0) if row else 0)
        series["evaluation_cost"].append(row.get("evaluation_cost_usd", 0) if row else 0)
    totals = monitoring.metrics(db, since=since, now=now, **filters)["groups"][0]
    limits = gauges.limits_view(db, config.of_client(client), prompt=filters["prompt"],
                                environment=filters["environment"], now=now)
    return {
        "series": series, "by": by, "since": since, "filters": filters, "choices": monitoring.dimensions(db),
        "totals": totals, **limits, "alerts": alerts.history(db, limit=50), "windows": WINDOWS,
        # where the calls came from (the gateway, OTLP spans, apps reporting), and the server's checks
        "sources": monitoring.metrics(db, since=since, by="source", now=now, **filters)["groups"],
        "checks": watchdog.last_round(db),
    }


# ---- actions (the same engine calls as the CLI and MCP) ----------------------------------------


def do_rollback(client: Client, ref: int, version: int, branch: str) -> str:
    found = client.rollback(ref, version, branch=branch or "main", message=f"rolled back to v{version} from the dashboard")
    return f"Rolled back to v{version}: new version v{found.version} on {found.branch}"


def do_label(client: Client, ref: int, label: str, version: int, reason: str | None, force: bool = False) -> str:
    """A gated environment's label moves through its gate (GateFailed: the refusal, shown on the
    page), or forced with the reason typed in the form."""
    move = client.set_label(ref, label.strip(), version, force=force,
                            reason=reason if force else reason or "set from the dashboard")
    before = f"v{move.from_version}" if move.from_version else "nothing"
    return f"Label {move.label}: {before} → v{move.to_version}" + (" (forced past the gate)" if force else "")


def do_deploy(client: Client, ref: int, version: int, env: str, reason: str | None) -> str:
    """The deploy form: the engine's sentence for the deployment; a refusal (GateFailed, with
    the failing checks' reasons) is shown as an error."""
    from promstack import deploy

    result = deploy.deploy(client, ref, version=version, env=env or None, reason=reason or None)
    return deploy.describe(deploy.raise_for(result, pending_too=False), web_words)


class BackgroundRuns:
    """Test runs started from the page, each on a thread of its own with its own `Client`;
    the page follows them by id (`/runs/{id}/live`) while they run."""

    def __init__(self, pool: ClientPool) -> None:
        self.pool = pool
        self.threads: dict[str, threading.Thread] = {}

    def start(self, suite: str, prompt: int, version: int | None, timeout: float = 60.0, *,
              actor: str | None = None) -> str:
        from promstack.evals import engine as evals_engine

        started = threading.Event()
        box: dict[str, Any] = {}

        def on_start(run: dict[str, Any]) -> None:
            box["run"] = run["id"]
            started.set()

        def work() -> None:
            try:
                with self.pool.client(actor) as client:
                    asyncio.run(evals_engine.arun_tests(client, suite, prompt=prompt, version=version,
                                                        started=on_start))
            except BaseException as exc:  # reported to the page if the run never began
                box.setdefault("error", exc)
            finally:
                started.set()

        thread = threading.Thread(target=work, name=f"promstack-run-{suite}", daemon=True)
        thread.start()
        started.wait(timeout)
        if "run" not in box:
            error = box.get("error")
            if isinstance(error, PromStackError):
                raise error
            raise InvalidInput(f"the run of suite {suite!r} did not start: {error or 'timed out'}")
        self.threads = {k: t for k, t in self.threads.items() if t.is_alive()}
        self.threads[box["run"]] = thread
        return box["run"]


# ---- the routes -----------------------------------------------------------------------------------


def render_page(request: Request, name: str, context: dict[str, Any], status: int = 200, *,
                csrf: str = "") -> HTMLResponse:
    """A page: the template with the flash message a redirect left (then dropped), under the CSP."""
    flash = request.cookies.get(FLASH_COOKIE)
    message = None
    if flash:
        try:
            message = json.loads(unquote(flash))
        except ValueError:
            message = None
    who = principal_of(request)
    html = _templates().get_template(name).render(
        request=request, csrf=csrf, flash=message, nav=name.split(".")[0].split("_")[0],
        who=None if who is LOCAL else who, **context)
    response = HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def signin_page(next_path: str, message: str | None = None, status: int = 200) -> HTMLResponse:
    """The sign-in form (a page of its own: no store, no navigation, nothing to read before it)."""
    html = _templates().get_template("signin.html").render(next=_local_path(next_path), message=message)
    return HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": CSP, "WWW-Authenticate": 'Bearer realm="promstack"', "Cache-Control": "no-store"})


def _local_path(path: str) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) and path != auth.SIGNIN_PATH \
        else "/prompts"


def error_page(request: Request, exc: PromStackError) -> HTMLResponse:
    """An engine error on a page: 404 for what is not there, else 400, its sentence in the web's
    words (`create_app` registers this for the dashboard's routes)."""
    return render_page(request, "error.html", {"message": error_text(exc)}, status=error_status(exc))


def dashboard_routes(db: str | os.PathLike | None = None, *, pool: ClientPool | None = None,
                     gate: auth.Gate | None = None) -> list[BaseRoute]:
    """The dashboard's routes over `pool`'s clients (None: a pool of its own over the store at
    `db`); `gate` checks the tokens people sign in with. A page's engine errors propagate to the
    app's exception handler (`error_page`)."""
    clients = pool if pool is not None else ClientPool(db)
    gate = gate if gate is not None else auth.Gate(clients, serve_token=None, loopback_only=True)
    csrf = secrets.token_urlsafe(32)
    background = BackgroundRuns(clients)

    async def engine(request: Request, fn: Callable[..., Any], *args: Any) -> Any:
        # The engine is synchronous SQLite: on a worker thread, with a client of its own, acting
        # for the signed-in token (its name is the actor of what the call writes).
        return await run_in_threadpool(clients.call, fn, *args, actor=actor_of(principal_of(request)))

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        return render_page(request, name, context, status, csrf=csrf)

    def redirect(to: str, kind: str, message: str) -> RedirectResponse:
        response = RedirectResponse(to, status_code=303)
        response.set_cookie(FLASH_COOKIE, quote(json.dumps({"kind": kind, "text": message}), safe=""),
                            path="/", httponly=True, samesite="strict")
        return response

    def view(fn: Callable[..., Any], template: str, *params: Callable[[Request], Any]):
        async def endpoint(request: Request) -> Response:
            context = await engine(request, fn, *(p(request) for p in params))
            return page(request, template, context)
        return endpoint

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        sent = fields.get("csrf", "")
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise PermissionError("this form is stale or came from another site: reload the page and try again")
        return fields

    async def allowed(request: Request, operation: str,
                      role: Callable[[Client], str] | None = None) -> Response | None:
        """None if the signed-in token may do `operation` (holds `role(client)`, when the need
        depends on the form); else the 403 page naming the role needed."""
        try:
            needed = await engine(request, role) if role is not None else None
            auth.require(request, operation, role=needed)
        except Forbidden as exc:
            return error_page(request, exc)
        return None

    def action(fn: Callable[..., str], back: Callable[[Request, dict[str, str]], str],
               args: Callable[[Request, dict[str, str]], tuple], operation: str,
               role: Callable[[dict[str, str]], Callable[[Client], str]] | None = None):
        async def endpoint(request: Request) -> Response:
            try:
                fields = await form(request)
            except PermissionError as exc:
                return forbidden(str(exc))
            refused = await allowed(request, operation, role(fields) if role else None)
            if refused is not None:
                return refused
            to = back(request, fields)
            try:
                message = await engine(request, fn, *args(request, fields))
            except (PromStackError, ValueError) as exc:
                return redirect(to, "error", error_text(exc))
            return redirect(to, "ok", message)
        return endpoint

    def prompt_ref(request: Request) -> int:
        return int(request.path_params["prompt_id"])

    def optional_int(value: Any, what: str) -> int | None:
        if value in (None, ""):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{what} must be a version number, not {value!r}") from None

    def required_int(fields: dict[str, str], key: str) -> int:
        value = optional_int(fields.get(key), key)
        if value is None:
            raise InvalidInput(f"choose a {key}")
        return value

    async def index(request: Request) -> Response:
        return RedirectResponse("/prompts", status_code=307)

    async def diff(request: Request) -> Response:
        a = optional_int(request.query_params.get("a"), "a")
        b = optional_int(request.query_params.get("b"), "b")
        if request.query_params.get("tab") == "behaviour":  # the tab's form; running it is a POST
            context = await engine(request, behaviour_tab, prompt_ref(request), a, b,
                                   request.query_params.get("suite"))
        else:
            context = await engine(request, diff_page, prompt_ref(request), a, b)
        return page(request, "diff.html", context)

    async def diff_behaviour(request: Request) -> Response:
        # A POST with the page's token: it runs models, so no link from elsewhere can start it.
        try:
            fields = await form(request)
        except PermissionError as exc:
            return forbidden(str(exc))
        refused = await allowed(request, "diff_behaviour")
        if refused is not None:
            return refused
        context = await engine(request, behaviour_tab, prompt_ref(request), optional_int(fields.get("a"), "a"),
                               optional_int(fields.get("b"), "b"), fields.get("suite"), True)
        return page(request, "diff.html", context)

    async def run_detail(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        context = await engine(request, run_page, run_id, request.query_params.get("status"))
        if context["run"]["kind"] == "arena":
            return RedirectResponse(f"/arena/{quote(run_id)}", status_code=307)
        return page(request, "run.html", context)

    async def compare(request: Request) -> Response:
        from promstack.evals.engine import compare_runs

        a, b = request.query_params.get("a"), request.query_params.get("b")
        if not a or not b:
            raise InvalidInput("choose two runs to compare: /runs/compare?a=RUN&b=RUN")
        context = await engine(request, compare_runs, a, b)
        return page(request, "compare.html", context)

    async def live(request: Request) -> Response:
        data = await engine(request, live_data, request.path_params["run_id"])
        return page(request, "live.html", {"live": data})

    async def live_json(request: Request) -> Response:
        data = await engine(request, live_data, request.path_params["run_id"])  # errors: JSON (is_json_path)
        return JSONResponse(data, headers={"Cache-Control": "no-store"})

    async def arena(request: Request) -> Response:
        context = await engine(request, arena_page, request.path_params.get("run_id"))
        if context["run"] is None and context["runs"]:
            return RedirectResponse(f"/arena/{quote(context['runs'][0]['id'])}", status_code=307)
        return page(request, "arena.html", context)

    async def monitoring(request: Request) -> Response:
        q = request.query_params
        since = q.get("since") or "24h"
        context = await engine(request, monitoring_page, since, q.get("prompt"), q.get("model"), q.get("environment"))
        return page(request, "monitoring.html", context)

    async def start_run(request: Request) -> Response:
        try:
            fields = await form(request)
        except PermissionError as exc:
            return forbidden(str(exc))
        refused = await allowed(request, "run_tests")
        if refused is not None:
            return refused
        ref = prompt_ref(request)
        try:
            version = optional_int(fields.get("version"), "version")
            suite = (fields.get("suite") or "").strip()
            if not suite:
                raise InvalidInput("choose a suite to run")
            run_id = await run_in_threadpool(background.start, suite, ref, version,
                                             actor=actor_of(principal_of(request)))
        except PromStackError as exc:
            return redirect(f"/prompts/{ref}", "error", error_text(exc))
        return redirect(f"/runs/{quote(run_id)}/live", "ok", f"Started run {run_id} of suite {suite}")

    async def vote(request: Request) -> Response:
        from promstack.evals.arena import record_vote

        try:
            fields = await form(request)
        except PermissionError as exc:
            return forbidden(str(exc))
        refused = await allowed(request, "record_vote")
        if refused is not None:
            return refused
        match_id = int(request.path_params["match_id"])
        back = f"/arena/{quote(fields.get('run', ''))}#match-{match_id}"
        try:
            done = await engine(request, record_vote, match_id, fields.get("winner", ""))
        except PromStackError as exc:
            return redirect(back, "error", error_text(exc))
        return redirect(back, "ok", f"Vote recorded on match {match_id}: {done['winner']}")

    async def signin_form(request: Request) -> Response:
        return signin_page(request.query_params.get("next", "/prompts"))

    async def signin(request: Request) -> Response:
        # No CSRF field: the form carries a secret of its own (the token), and RequestGuard has
        # refused it already if it came from a page of another site (its Origin).
        body = (await request.body()).decode("utf-8", "replace")
        fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        to = _local_path(fields.get("next", "/prompts"))
        try:
            _, value, max_age = await run_in_threadpool(gate.session, fields.get("token", ""))
        except Unauthorized as exc:
            return signin_page(to, str(exc), status=401)
        response = RedirectResponse(to, status_code=303)
        response.set_cookie(auth.SESSION_COOKIE, value, max_age=max_age, path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def signout(request: Request) -> Response:
        try:
            await form(request)
        except PermissionError as exc:
            return forbidden(str(exc))
        response = RedirectResponse(auth.SIGNIN_PATH, status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    def back_to_prompt(request: Request, fields: dict[str, str]) -> str:
        return f"/prompts/{prompt_ref(request)}"

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route(auth.SIGNIN_PATH, signin_form, methods=["GET"]),
        Route(auth.SIGNIN_PATH, signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Route("/prompts", view(prompts_page, "prompts.html", lambda r: r.query_params.get("q", "")),
              methods=["GET"]),
        Route("/prompts/{prompt_id:int}", view(prompt_page, "prompt.html", prompt_ref), methods=["GET"]),
        Route("/prompts/{prompt_id:int}/diff", diff, methods=["GET"]),
        Route("/prompts/{prompt_id:int}/diff/behaviour", diff_behaviour, methods=["POST"]),
        Route("/prompts/{prompt_id:int}/rollback", action(
            do_rollback, back_to_prompt,
            lambda r, f: (prompt_ref(r), required_int(f, "version"), f.get("branch", "main")), "rollback_prompt"),
            methods=["POST"]),
        Route("/prompts/{prompt_id:int}/label", action(
            do_label, back_to_prompt,
            lambda r, f: (prompt_ref(r), f.get("label", ""), required_int(f, "version"), f.get("reason"),
                          f.get("force") in ("on", "1", "true")),
            "set_label", lambda f: functools.partial(label_role, label=f.get("label", ""))),
            methods=["POST"]),
        Route("/prompts/{prompt_id:int}/deploy", action(
            do_deploy, back_to_prompt,
            lambda r, f: (prompt_ref(r), required_int(f, "version"), f.get("environment", ""), f.get("reason")),
            "deploy_prompt"),
            methods=["POST"]),
        Route("/prompts/{prompt_id:int}/test", start_run, methods=["POST"]),
        Route("/runs", view(runs_page, "runs.html"), methods=["GET"]),
        Route("/runs/compare", compare, methods=["GET"]),
        Route("/runs/{run_id}", run_detail, methods=["GET"]),
        Route("/runs/{run_id}/live", live, methods=["GET"]),
        Route("/runs/{run_id}/live.json", live_json, methods=["GET"]),
        Route("/arena", arena, methods=["GET"]),
        Route("/arena/{run_id}", arena, methods=["GET"]),
        Route("/arena/matches/{match_id:int}/vote", vote, methods=["POST"]),
        Route("/monitoring", monitoring, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return routes


def forbidden(message: str) -> Response:
    return Response(message + "\n", status_code=403, media_type="text/plain; charset=utf-8")

