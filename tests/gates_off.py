"""For tests whose subject is labels as pointers, not the deploy gates: a workspace whose test,
staging and production environments have no checks, so their labels move freely (an
environment table with no rules is how a workspace turns a gate off). The gates themselves,
and every way around them being refused, are tested in tests/test_deploy_*.py."""

from __future__ import annotations

from pathlib import Path

GATES_OFF = "\n[environments.test]\n[environments.staging]\n[environments.production]\n"


def gates_off(store_path: Path) -> None:
    """Append the gate-free environments to the config of the workspace `store_path` is in."""
    config = Path(store_path).parent / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if config.exists() and GATES_OFF in config.read_text(encoding="utf-8"):
        return  # once: TOML allows a table only once
    with config.open("a", encoding="utf-8") as out:
        out.write(GATES_OFF)
