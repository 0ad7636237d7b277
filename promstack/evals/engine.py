"""What the faces call: import suites, run tests, judge a run, evaluate a prompt.

The CLI, the MCP tools and the dashboard all use these functions; each async function has a
sync twin for callers without an event loop.

Which prompt a suite tests, when none is named (so that the guide's `promstack test --suite
regression` works as written): `--prompt` if given; else the suite's own prompt (its sidecar
`tests/prompts/<suite>.yml` says `prompt: 42`, a JSON suite's `"prompt"`, or
`promstack suite import ... --prompt 42`); else the environment's `PROMPT_ID` (the guide's
workflow sets it) or `PROMSTACK_PROMPT`; else an error that says how to tie one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from store.errors import InvalidInput, NotFound, PromStackError, Step
from store.evals import EvalStore
from store.secrets import redact
from store.workspace import workspace_root

from . import suites as S
from .gateway import Gateway, LiveGateway
from .judge import JudgeConfig, ensure_judge_prompts, load_judge
from .runner import (
    Plan,
    Progress,
    arun_plan,
    check_positive,
    count_unchecked,
    failing_cases,
    summarize,
)

PREFERRED_SUITE = "regression"


def evals_of(client: Any) -> EvalStore:
    return client.evals


def root_of(client: Any) -> Path | None:
    path = getattr(client.store, "path", None)
    return workspace_root(path) if path is not None else None


# ---- suites ---------------------------------------------------------------------------------


def import_suite(client: Any, source: str | os.PathLike | None = None, *, text: str | None = None,
                 fmt: str | None = None, name: str | None = None, prompt: Any = None,
                 config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Import a suite from a file (CSV/JSON/JSONL) or from text; replaces a suite of that name.
    A file that is no suite (`.env`, a key, the store) is refused before it is read, and an
    error that quotes what was read has its secrets redacted."""
    try:
        return _import_suite(client, source, text=text, fmt=fmt, name=name, prompt=prompt, config=config)
    except PromStackError as exc:
        shown = redact(str(exc))
        if shown != str(exc):
            exc.args = (shown,)
        raise


def _import_suite(client: Any, source: str | os.PathLike | None = None, *, text: str | None = None,
                  fmt: str | None = None, name: str | None = None, prompt: Any = None,
                  config: dict[str, Any] | None = None) -> dict[str, Any]:
    evals = evals_of(client)
    if (source is None) == (text is None):
        raise InvalidInput("give a suite file, or the cases as text, not both")
    settings: dict[str, Any] = dict(config or {})
    if source is not None:
        path = Path(source)
        file_config, cases = S.parse_file(path, fmt)
        sidecar = S.sidecar_for(path)
        if sidecar is not None:
            settings = {**S.read_sidecar(sidecar), **settings}
        settings = {**file_config, **settings}
        sha = S.file_sha(path)
        if sidecar is not None:
            # The suite changes when its settings do: the sidecar is part of its hash.
            sha = hashlib.sha256((sha + S.file_sha(sidecar)).encode()).hexdigest()
        fmt = S.detect_format(path, fmt)
        name = S.validate_suite_name(name or S.suite_name_of(path))
        origin = _origin(client, path)
    else:
        if not fmt:
            raise InvalidInput("say the format of the cases: csv, json or jsonl")
        name = S.validate_suite_name(name or "")
        file_config, cases_list = S.parse_text(text, fmt, name=name)
        settings = {**file_config, **settings}
        cases = iter(cases_list)
        sha = hashlib.sha256(text.encode()).hexdigest()
        origin = "import"
    prompt_ref = prompt if prompt is not None else settings.pop("prompt", None)
    settings.pop("prompt", None)
    prompt_id = client.store.prompts.prompt_id(prompt_ref) if prompt_ref not in (None, "") else None
    if "judge" in settings and settings["judge"] is not None:
        load_judge(settings["judge"])  # reject a bad judge at import, not at run time
    return evals.save_suite(name, cases, fmt=fmt, source=origin, sha256=sha, prompt_id=prompt_id,
                            config=settings)


def _origin(client: Any, path: Path) -> str:
    root = root_of(client)
    try:
        return "file:" + str(path.resolve().relative_to(root)) if root else f"file:{path}"
    except ValueError:
        return f"file:{path.resolve()}"


def sync_workspace(client: Any, only: str | None = None) -> list[str]:
    """(Re)import suites kept as files in tests/prompts/ whose bytes changed. Returns their names."""
    root = root_of(client)
    if root is None:
        return []
    evals = evals_of(client)
    changed = []
    for name, path in S.workspace_suite_files(root).items():
        if only is not None and name != only:
            continue
        stored = evals.find_suite(name)
        sha = S.file_sha(path)
        sidecar = S.sidecar_for(path)
        if sidecar is not None:
            sha = hashlib.sha256((sha + S.file_sha(sidecar)).encode()).hexdigest()
        if stored is not None and stored["sha256"] == sha:
            continue
        import_suite(client, path)
        changed.append(name)
    return changed


def get_suite(client: Any, name: str) -> dict[str, Any]:
    S.validate_suite_name(name)
    sync_workspace(client, only=name)
    return evals_of(client).suite(name)


def list_suites(client: Any) -> list[dict[str, Any]]:
    sync_workspace(client)
    return evals_of(client).suites()


def show_suite(client: Any, name: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
    suite = get_suite(client, name)
    return {**suite, "cases": evals_of(client).cases(suite["id"], limit=limit, offset=offset)}


# ---- plans ------------------------------------------------------------------------------------


def resolve_prompt(client: Any, suite: dict[str, Any], prompt: Any) -> int:
    if prompt not in (None, ""):
        return client.store.prompts.prompt_id(prompt)
    if suite.get("prompt_id"):
        return suite["prompt_id"]
    for var in ("PROMSTACK_PROMPT", "PROMPT_ID"):
        value = os.environ.get(var)
        if value:
            return client.store.prompts.prompt_id(value)
    raise InvalidInput(
        f"suite {suite['name']!r} is not tied to a prompt: give ", Step.arg("prompt"),
        f", or add 'prompt: <id or name>' to tests/prompts/{suite['name']}.yml, or import it again with ",
        Step.arg("prompt", of="import_suite"),
    )


def prompt_file_suite(client: Any, prompt_id: int) -> dict[str, Any] | None:
    """The suite a prompt's own .prompt.yml carries (testData + evaluators, kept by the file
    watcher), named after the prompt and refreshed when the test data changes; None if none."""
    import json

    from store.filesync import prompt_test_data

    test_data = prompt_test_data(client.store, prompt_id)
    if not test_data or not test_data.get("testData"):
        return None
    name = client.get_prompt(prompt_id).name
    body = json.dumps(test_data, ensure_ascii=False, sort_keys=True)
    sha = hashlib.sha256(body.encode()).hexdigest()
    evals = evals_of(client)
    found = evals.find_suite(name)
    if found is not None and found["sha256"] == sha:
        return found
    cases = S.cases_from_prompt_yml(test_data, name)
    return evals.save_suite(name, iter(cases), fmt="prompt.yml", source=f"prompt:{name}", sha256=sha,
                            prompt_id=prompt_id)


def suite_for_prompt(client: Any, prompt_id: int) -> dict[str, Any]:
    """A prompt's default suite: the one tied to it (named 'regression' if several), else the
    test data of its own .prompt.yml file."""
    sync_workspace(client)
    evals = evals_of(client)
    tied = evals.suites(prompt_id)
    if not tied:
        own = prompt_file_suite(client, prompt_id)
        if own is not None:
            tied = [own]
    if not tied:
        env_prompt = os.environ.get("PROMSTACK_PROMPT") or os.environ.get("PROMPT_ID")
        untied = [s for s in evals.suites() if not s["prompt_id"]]
        if env_prompt and client.store.prompts.prompt_id(env_prompt) == prompt_id:
            tied = untied
    if not tied:
        raise NotFound(
            f"no test suite is tied to prompt {prompt_id}: give ", Step.arg("suite"),
            f", or add 'prompt: {prompt_id}' to tests/prompts/<suite>.yml",
        )
    if len(tied) == 1:
        return tied[0]
    for suite in tied:
        if suite["name"] == PREFERRED_SUITE:
            return suite
    raise InvalidInput(
        f"prompt {prompt_id} has several suites ({', '.join(s['name'] for s in tied)}); give ",
        Step.arg("suite"),
    )


def _needs_judge(evals: EvalStore, suite: dict[str, Any]) -> bool:
    prefixes = " AND ".join(f"lower(ltrim(expected)) NOT LIKE '{p}:%'" for p in ("equals", "contains", "regex"))
    row = evals.db.execute(
        f"SELECT 1 FROM cases WHERE suite_id = ? AND ((expected IS NOT NULL AND trim(expected) != '' AND {prefixes})"
        " OR assertions LIKE '%llm-rubric%' OR assertions LIKE '%\"expected\"%') LIMIT 1", [suite["id"]]
    ).fetchone()
    config_assertions = suite["config"].get("assertions") or []
    return row is not None or any(a.get("type") in ("llm-rubric", "expected") for a in config_assertions)


def suite_columns(evals: EvalStore, suite: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The suite's columns as its file named them (input, the variables, expected_output), and
    the variables its cases provide to a template (input among them)."""
    row = evals.db.execute(
        "SELECT max(input IS NOT NULL), max(expected IS NOT NULL AND expected != '') FROM cases WHERE suite_id = ?",
        [suite["id"]],
    ).fetchone()
    keys = [r[0] for r in evals.db.execute(
        "SELECT DISTINCT j.key FROM cases, json_each(cases.variables) AS j WHERE cases.suite_id = ?"
        " ORDER BY j.key", [suite["id"]],
    )]
    has_input, has_expected = (bool(row[0]), bool(row[1])) if row else (False, False)
    provided = set(keys) | ({"input"} if has_input else set())
    columns = (["input"] if has_input else []) + [k for k in keys if k != "input"]
    columns += ["expected_output"] if has_expected else []
    return columns, provided


def check_columns(evals: EvalStore, suite: dict[str, Any], found: Any) -> None:
    """Refuse a run, before its first model call, when the prompt needs a variable that no column
    of the suite provides (and that has no default): otherwise every case would be called, billed
    and failed as a model error."""
    if not suite.get("case_count"):
        return
    columns, provided = suite_columns(evals, suite)
    missing = [v["name"] for v in found.variables if v.get("required", True) and v["name"] not in provided]
    if not missing:
        return
    needs = ", ".join(f"{{{{ {name} }}}}" for name in missing)
    raise InvalidInput(
        f"prompt {found.name!r} v{found.version} needs {needs}; the suite {suite['name']!r} has columns "
        f"{', '.join(columns) or '(none)'}: rename the column or the variable"
    )


def build_plan(
    client: Any,
    suite: dict[str, Any],
    *,
    prompt: Any = None,
    version: int | None = None,
    label: str | None = None,
    models: list[str] | None = None,
    repeat: int = 1,
    retries: int = 0,
    concurrency: int = 10,
    model_limits: dict[str, int] | None = None,
    criteria: Any = None,
    judge_model: str | None = None,
    threshold: float | None = None,
    judge_only: bool = False,
) -> Plan:
    check_positive("repeat", repeat)
    check_positive("retries", retries, minimum=0)
    check_positive("concurrency", concurrency)
    prompt_id = resolve_prompt(client, suite, prompt)
    found = client.get_prompt(prompt_id, version=version, label=label)
    config = suite["config"]
    models = [m for m in (models or config.get("models") or []) if m]
    if not models:
        model = found.model_config.get("model")
        if not model:
            raise InvalidInput(
                f"prompt {found.name!r} version {found.version} names no model: give ", Step.arg("models"),
                ", or set 'model' in the prompt's model config",
            )
        models = [model]
    if len(set(models)) != len(models):
        raise InvalidInput("a model is named twice in ", Step.arg("models"))
    if not judge_only:
        check_columns(evals_of(client), suite, found)
    judge_doc = criteria if criteria is not None else config.get("judge")
    judge_cfg = load_judge(
        judge_doc, model=judge_model or config.get("judge_model") or os.environ.get("PROMSTACK_JUDGE_MODEL"),
        threshold=threshold if threshold is not None else config.get("threshold"),
    )
    evals = evals_of(client)
    if judge_cfg.criteria or _needs_judge(evals, suite):
        judge_cfg.prompt_version, judge_cfg.pair_prompt_version = ensure_judge_prompts(client)
    if not judge_cfg.model:
        judge_cfg.model = models[0]
    limits = {m: check_positive(f"the concurrency limit of {m}", n) for m, n in (model_limits or {}).items()}
    return Plan(
        suite=suite, prompt_id=found.prompt_id, prompt_version=found.version, models=models,
        repeat=repeat, retries=retries, concurrency=concurrency, model_limits=limits, judge=judge_cfg,
        judge_model=judge_cfg.model, default_assertions=[] if judge_only else list(config.get("assertions") or []),
        embedding_model=os.environ.get("PROMSTACK_EMBEDDING_MODEL"),
    )


def plan_from_run(client: Any, run: dict[str, Any], *, concurrency: int | None = None,
                  retries: int | None = None) -> Plan:
    """The plan a run was started with, as stored: a resume is exact."""
    evals = evals_of(client)
    suite = evals.suite(run["suite_name"])
    cfg = run["config"]
    judge = cfg.get("judge")
    judge_cfg = load_judge({k: judge[k] for k in ("criteria", "scoring", "model", "threshold", "retries")
                            if judge and k in judge}) if judge else JudgeConfig()
    if judge:
        judge_cfg.prompt_version = judge.get("prompt_version")
        judge_cfg.pair_prompt_version = judge.get("pair_prompt_version")
    return Plan(
        suite=suite, prompt_id=run["prompt_id"], prompt_version=run["prompt_version"], models=run["models"],
        repeat=run["repeat"], retries=cfg.get("retries", 0) if retries is None else retries,
        concurrency=concurrency or cfg.get("concurrency", 10), model_limits=cfg.get("model_limits") or {},
        judge=judge_cfg, judge_model=cfg.get("judge_model"), default_assertions=cfg.get("assertions") or [],
        embedding_model=cfg.get("embedding_model"), source_run=cfg.get("source_run"),
    )


# ---- runs -------------------------------------------------------------------------------------


async def arun_tests(
    client: Any,
    suite: str | None,
    *,
    gateway: Gateway | None = None,
    progress: Progress | None = None,
    warn: Any = None,
    started: Any = None,
    **options: Any,
) -> dict[str, Any]:
    """Start a test run of `suite` and run it to the end. Returns the run with its summary.
    `started(run)` is called once the run exists (the dashboard follows it live by its id)."""
    evals = evals_of(client)
    if suite:
        found = get_suite(client, suite)
    elif options.get("prompt") not in (None, ""):
        found = suite_for_prompt(client, client.store.prompts.prompt_id(options["prompt"]))
    else:
        raise InvalidInput("say which suite to run, or which prompt (its suite is then the one tied to it)")
    plan = build_plan(client, found, **options)
    judge_key = plan.judge.key() if plan.judge else ""
    run = evals.create_run(
        kind="test", suite=found, prompt_id=plan.prompt_id, prompt_version=plan.prompt_version,
        models=plan.models, repeat=plan.repeat, config=plan.config(), judge_key=judge_key,
        total=found["case_count"] * len(plan.models) * plan.repeat,
    )
    if started is not None:
        started(run)
    unchecked = count_unchecked(evals, found, plan)
    if unchecked and warn is not None:
        warn(f"{unchecked} case(s) of suite {found['name']!r} have nothing to check (no expected_output, "
             "no assertion, no judge criteria): they will be reported as UNCHECKED and never pass")
    return await _execute(client, run, plan, gateway, progress)


async def aresume_run(client: Any, run_id: str, *, gateway: Gateway | None = None,
                      progress: Progress | None = None, concurrency: int | None = None,
                      retries: int | None = None, warn: Any = None) -> dict[str, Any]:
    evals = evals_of(client)
    run = evals.run(run_id)
    if run["kind"] != "test":
        raise InvalidInput(f"run {run_id} is an {run['kind']} run; resume it with its own command")
    check_not_running(run)
    plan = plan_from_run(client, run, concurrency=concurrency, retries=retries)
    if plan.suite["sha256"] != run["suite_sha"] and warn is not None:
        warn(f"suite {run['suite_name']!r} changed since run {run_id} started: unchanged cases keep their "
             "results, new or edited ones are run now")
    return await _execute(client, run, plan, gateway, progress)


def check_not_running(run: dict[str, Any]) -> None:
    """A run still being worked on by a live process must not be resumed beside it."""
    pid = run.get("pid")
    if run["status"] != "running" or not pid or pid == os.getpid():
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # that process is gone (killed): the run is resumable
    except PermissionError:
        pass
    raise InvalidInput(f"run {run['id']} is still running in process {pid}; wait for it or stop it first")


async def _execute(client: Any, run: dict[str, Any], plan: Plan, gateway: Gateway | None,
                   progress: Progress | None) -> dict[str, Any]:
    evals = evals_of(client)
    if run["total"] != plan.suite["case_count"] * len(plan.models) * plan.repeat:
        from store.db import write

        total = plan.suite["case_count"] * len(plan.models) * plan.repeat
        with write(evals.db):
            evals.db.execute("UPDATE runs SET total = ? WHERE id = ?", [total, run["id"]])
        run = evals.run(run["id"])
    async with _gateway(client, gateway) as live:
        await arun_plan(evals, live, plan, run, progress=progress, db_path=client.store.path)
    return get_run(client, run["id"])


@contextlib.asynccontextmanager
async def _gateway(client: Any, given: Gateway | None) -> AsyncIterator[Gateway]:
    """The gateway given, or a live one made (and closed, its call log drained) for this run."""
    if given is not None:
        yield given
        return
    live = LiveGateway(client)
    try:
        yield live
    finally:
        live.close()


def get_run(client: Any, run_id: str, *, failing: int = 20) -> dict[str, Any]:
    evals = evals_of(client)
    run = evals.run(run_id)
    if run["kind"] == "arena":
        from .arena import arena_report, human_report

        if run["status"] == "done" and run["summary"]:
            # Ratings were fitted when the run finished; votes may have come since.
            return {**run, "arena": {**run["summary"], "human": human_report(evals, run_id, run["summary"])}}
        return {**run, "arena": arena_report(evals, run_id)}
    if run["status"] == "done" and run["summary"]:
        summary = run["summary"]
        if failing != len(summary.get("failing") or []):
            summary = {**summary, "failing": failing_cases(evals, run_id, failing)}
    else:
        summary = summarize(evals, run_id, failing=failing)
    return {**run, "summary": summary}


async def ajudge_run(client: Any, run_id: str, criteria: Any, *, gateway: Gateway | None = None,
                     progress: Progress | None = None, judge_model: str | None = None,
                     threshold: float | None = None, concurrency: int = 10) -> dict[str, Any]:
    """Judge the outputs of a finished test run against `criteria`: a new run whose results
    reuse the outputs (no model is called again, only the judge)."""
    evals = evals_of(client)
    source = evals.run(run_id)
    if source["kind"] != "test":
        raise InvalidInput(f"run {run_id} is an {source['kind']} run; ", Step("judge_run"), " judges test runs")
    suite = evals.suite(source["suite_name"])
    judge_cfg = load_judge(criteria, model=judge_model, threshold=threshold)
    if not judge_cfg.criteria:
        raise InvalidInput("judging needs criteria: give ", Step.arg("criteria"))
    judge_cfg.prompt_version, judge_cfg.pair_prompt_version = ensure_judge_prompts(client)
    if not judge_cfg.model:
        judge_cfg.model = source["config"].get("judge_model") or source["models"][0]
    plan = Plan(suite=suite, prompt_id=source["prompt_id"], prompt_version=source["prompt_version"],
                models=source["models"], repeat=source["repeat"], concurrency=concurrency,
                judge=judge_cfg, judge_model=judge_cfg.model, source_run=run_id)
    run = evals.create_run(kind="test", suite=suite, prompt_id=plan.prompt_id,
                           prompt_version=plan.prompt_version, models=plan.models, repeat=plan.repeat,
                           config=plan.config(), judge_key=judge_cfg.key(),
                           total=suite["case_count"] * len(plan.models) * plan.repeat)
    async with _gateway(client, gateway) as live:
        await arun_plan(evals, live, plan, run, progress=progress, db_path=client.store.path)
    return get_run(client, run["id"])


async def aevaluate(client: Any, prompt: Any, *, suite: str | None = None, **options: Any) -> dict[str, Any]:
    """Run the prompt's suite with its assertions and judge: a score 0-100 and the run. When
    any case could not be scored the score is None, with `unscored` (how many) and
    `unscored_reason` (why); otherwise `unscored` is 0."""
    from .score import run_score

    prompt_id = client.store.prompts.prompt_id(prompt)
    found = get_suite(client, suite) if suite else suite_for_prompt(client, prompt_id)
    result = await arun_tests(client, found["name"], prompt=prompt_id, **options)
    summary = result["summary"]
    out = {"score": run_score(summary), "pass_rate": summary["pass_rate"],
           "unscored": summary.get("unscored", 0), "run": result}
    if out["unscored"]:
        out["unscored_reason"] = summary.get("unscored_reason") or ""
    return out


def run_tests(client: Any, suite: str, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(arun_tests(client, suite, **kwargs))


def resume_run(client: Any, run_id: str, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(aresume_run(client, run_id, **kwargs))


def judge_run(client: Any, run_id: str, criteria: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(ajudge_run(client, run_id, criteria, **kwargs))


def evaluate(client: Any, prompt: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(aevaluate(client, prompt, **kwargs))


def compare_runs(client: Any, run_a: str, run_b: str) -> dict[str, Any]:
    """Two test runs (two versions, two models) side by side, case by case: each side's result
    and whether the case was fixed, broke or changed. Cases pair up by case, repeat and model
    (the n-th model of one run with the n-th of the other when their models differ)."""
    evals = evals_of(client)
    runs = [get_run(client, run_a), get_run(client, run_b)]
    for run in runs:
        if run["kind"] != "test":
            raise InvalidInput(f"run {run['id']} is an {run['kind']} run; only test runs compare case by case")
    same_models = set(runs[0]["models"]) == set(runs[1]["models"])

    def key(run: dict[str, Any], row: dict[str, Any]) -> tuple:
        model = row["model"] if same_models else run["models"].index(row["model"])
        return (row["case_idx"], row["case_key"], row["repeat"], model)

    sides = [{key(run, r): r for r in evals.iter_results(run["id"])} for run in runs]
    rows = []
    counts = {"fixed": 0, "broke": 0, "changed": 0, "same": 0, "only_a": 0, "only_b": 0}
    for k in sorted(set(sides[0]) | set(sides[1]), key=lambda k: (k[0], k[1], k[2], str(k[3]))):
        a, b = sides[0].get(k), sides[1].get(k)
        if a is None or b is None:
            change = "only_b" if a is None else "only_a"
        elif a["status"] != "pass" and b["status"] == "pass":
            change = "fixed"
        elif a["status"] == "pass" and b["status"] != "pass":
            change = "broke"
        elif a["status"] != b["status"] or a["output"] != b["output"]:
            change = "changed"
        else:
            change = "same"
        counts[change] += 1
        first = a or b
        rows.append({"case_idx": k[0], "case_key": k[1], "repeat": k[2], "input": first.get("input"),
                     "expected": first.get("expected"), "a": a, "b": b, "change": change})
    return {"a": runs[0], "b": runs[1], "rows": rows, "counts": counts}
