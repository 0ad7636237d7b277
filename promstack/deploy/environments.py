"""Environments: the workspace's ordered labels, what gates each one, and where a prompt stands there.

A prompt moves development -> test -> staging -> production (the guide's flow). Each environment
is a label; `.promstack/config.toml` says their order and what gates each one:

    [deploy]
    environments = ["development", "test", "staging", "production"]   # the default
    cache_ttl = 5                      # seconds the resolver keeps a label's state
    require_previous = false           # true: a version reaches an environment only after
                                       # passing the one before it
    [environments.production]
    suite = "regression"               # default: the suite tied to the prompt
    min_pass = "100%"                  # the batch tests must pass at this rate (omit: no check)
    min_score = 80                     # the judge score from `evaluate` (omit: no check)
    check_alerts = true                # no alert firing on the version (its calls so far)
    approval = true                    # a person runs `promstack deploy approve ID`
    allow_self_approval = false

Everything else in promstack.deploy builds on this module; it imports none of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from store.errors import InvalidInput, Step

if TYPE_CHECKING:
    from ..client import Client

DEFAULT_ENVIRONMENTS = ["development", "test", "staging", "production"]
# The guide's pipeline: batch tests at the test stage, the quality score (`evaluate`, >= 80)
# before staging, and before production all three: the batch tests pass, the score is high
# enough and no alert fires on the version being promoted.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "development": {},
    "test": {"min_pass": "100%"},
    "staging": {"min_score": 80, "check_alerts": True},
    "production": {"min_pass": "100%", "min_score": 80, "check_alerts": True},
}
CHECKS = ("previous", "tests", "score", "alerts")
# Deployment statuses in which a version reached its environment through the gate.
REACHED = ("deployed", "rolled_back", "rolling_out")


@dataclass
class Environment:
    name: str
    index: int
    suite: str | None = None
    min_pass: float | None = None
    min_score: float | None = None
    check_alerts: bool = False
    approval: bool = False
    allow_self_approval: bool = False
    models: list[str] = field(default_factory=list)
    after: str | None = None  # with [deploy] require_previous: the environment a version must pass first

    @property
    def checks(self) -> list[str]:
        out = []
        if self.after is not None:
            out.append("previous")
        if self.min_pass is not None:
            out.append("tests")
        if self.min_score is not None:
            out.append("score")
        if self.check_alerts:
            out.append("alerts")
        return out

    @property
    def gated(self) -> bool:
        """Whether the label moves only through the gate (any check, or an approval)."""
        return bool(self.checks) or self.approval

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checks": self.checks, "gated": self.gated}


# ---- configuration ----------------------------------------------------------------------------


def _config(client: Client) -> Any:  # promstack.config.Config
    from .. import config

    return config.of_client(client)


def deploy_settings(client: Client) -> dict[str, Any]:
    return _config(client).section("deploy")


def label_role(client: Client, label: str) -> str:
    """The least role that may move `label` (`access.label_need`): deployer for a label that
    names an environment, editor for any other; every face asks this before a label moves."""
    from promstack import access

    try:
        names = [e.name for e in environments(client)]
    except InvalidInput:  # a broken [deploy] config: the default environments are still environments
        names = list(DEFAULT_ENVIRONMENTS)
    return access.label_need(label.strip(), names)


def environments(client: Client) -> list[Environment]:
    """The workspace's environments in order, with their rules."""
    from ..evals.score import parse_min_pass

    conf = _config(client)
    names = conf.section("deploy").get("environments", DEFAULT_ENVIRONMENTS)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise InvalidInput("[deploy] environments in config.toml must be a list of names, e.g. "
                           '["development", "test", "staging", "production"]')
    if len(set(names)) != len(names):
        raise InvalidInput("[deploy] environments names an environment twice")
    tables = conf.data.get("environments", {})
    ordered = conf.section("deploy").get("require_previous", False)
    if not isinstance(ordered, bool):
        raise InvalidInput(f"require_previous in [deploy] must be true or false, not {ordered!r}")
    out = []
    for index, name in enumerate(names):
        table = tables.get(name) if isinstance(tables, dict) else None
        settings = dict(DEFAULT_RULES.get(name, {})) if table is None else {}
        if isinstance(table, dict):
            settings.update({k: v for k, v in table.items() if not isinstance(v, dict)})
        where = f"[environments.{name}]"
        env = Environment(name, index)
        env.suite = settings.get("suite") or None
        if settings.get("min_pass") is not None:
            env.min_pass = parse_min_pass(settings["min_pass"], f"min_pass in {where}")
        if settings.get("min_score") is not None:
            score = settings["min_score"]
            if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 100:
                raise InvalidInput(f"min_score in {where} is a judge score from 0 to 100, not {score!r}")
            env.min_score = float(score)
        for key in ("check_alerts", "approval", "allow_self_approval"):
            value = settings.get(key, getattr(env, key))
            if not isinstance(value, bool):
                raise InvalidInput(f"{key} in {where} must be true or false, not {value!r}")
            setattr(env, key, value)
        models = settings.get("models") or []
        env.models = [models] if isinstance(models, str) else list(models)
        if ordered and index > 0:
            env.after = names[index - 1]
        out.append(env)
    return out


def environment(client: Client, name: str | None) -> Environment:
    envs = environments(client)
    if name is None:
        return envs[-1]
    for env in envs:
        if env.name == name:
            return env
    raise InvalidInput(
        f"there is no environment {name!r}; the environments are {', '.join(e.name for e in envs)} "
        "([deploy] environments in .promstack/config.toml)"
    )


def previous_environment(client: Client, env: Environment) -> Environment | None:
    return environments(client)[env.index - 1] if env.index > 0 else None


def gated_environment(client: Client, label: str) -> Environment | None:
    """The environment `label` names when it has a gate; None for any other label."""
    return next((e for e in environments(client) if e.name == label and e.gated), None)


def passed(client: Client, prompt_id: int, env: Environment, version: int) -> bool:
    """Whether `version` reached `env` through its gate (a deployment that was not forced), or,
    for an environment without a gate, was ever put there. A rollout halted there (its version
    alerted) did not pass; one rolled back later by hand had."""
    db = client.store.db
    if db.execute(
        f"SELECT 1 FROM deployments WHERE prompt_id = ? AND environment = ? AND to_version = ? AND forced = 0 "
        f"AND kind != 'rollback' AND status IN ({', '.join('?' * len(REACHED))}) "
        "AND NOT (kind = 'rollout' AND status = 'rolled_back' AND error IS NOT NULL) LIMIT 1",
        [prompt_id, env.name, version, *REACHED],
    ).fetchone():
        return True
    if env.gated:
        return False
    return db.execute("SELECT 1 FROM label_history WHERE prompt_id = ? AND label = ? AND to_version = ? LIMIT 1",
                      [prompt_id, env.name, version]).fetchone() is not None


def need_reason(env: str, reason: str | None) -> str:
    """A forced move past a gate needs a reason: it is what the audit log keeps."""
    if reason is None or not str(reason).strip():
        raise InvalidInput(f"forcing {env} past its gate needs a reason (", Step.arg("reason"), "); it is kept "
                           "with the deployment and in the audit log")
    return str(reason).strip()


def label_version(client: Client, prompt_id: int, env: str) -> int | None:
    row = client.store.db.execute(
        "SELECT version FROM labels WHERE prompt_id = ? AND name = ?", [prompt_id, env]
    ).fetchone()
    return row[0] if row else None


def move_env_label(client: Client, prompt: dict[str, Any], env: str, version: int, reason: str, *, cleared: str) -> None:
    """Inside the caller's transaction: the store's own label move (history + audit row).
    `cleared` says what allowed it (the deployment whose gate passed, a forced one, a rollback)."""
    client.store.prompts.set_label(prompt["id"], env, version, reason=reason, cleared=cleared)


def forget(client: Client) -> None:
    """Drop what this client's resolver cached (after a change made through it)."""
    client.forget_resolved()
