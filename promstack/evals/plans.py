"""The plan of a test run: which prompt version, models, judge and assertions, checked before the
first model call (a prompt variable no column of the suite gives is refused here, not billed
case by case); the plan of a stored run, for an exact resume; and whether a run may be resumed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, Step
from store.evals import EvalStore

from .catalog import resolve_prompt
from .judge import JudgeConfig, ensure_judge_prompts, load_judge
from .runner import Plan, check_positive

if TYPE_CHECKING:
    from ..client import Client


def _needs_judge(evals: EvalStore, suite: dict[str, Any]) -> bool:
    config_assertions = suite["config"].get("assertions") or []
    return evals.cases_need_judge(suite["id"]) or any(
        a.get("type") in ("llm-rubric", "expected") for a in config_assertions)


def suite_columns(evals: EvalStore, suite: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The suite's columns as its file named them (input, the variables, expected_output), and
    the variables its cases provide to a template (input among them)."""
    has_input, has_expected, keys = evals.case_columns(suite["id"])
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
    client: Client,
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
        check_columns(client.evals, suite, found)
    judge_doc = criteria if criteria is not None else config.get("judge")
    judge_cfg = load_judge(
        judge_doc, model=judge_model or config.get("judge_model") or os.environ.get("PROMSTACK_JUDGE_MODEL"),
        threshold=threshold if threshold is not None else config.get("threshold"),
    )
    evals = client.evals
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


def plan_from_run(client: Client, run: dict[str, Any], *, concurrency: int | None = None,
                  retries: int | None = None) -> Plan:
    """The plan a run was started with, as stored: a resume is exact."""
    evals = client.evals
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
