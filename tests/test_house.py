"""The house's arrows (DESIGN.md, "The house") hold: import-linter checks the contracts in
pyproject.toml ([tool.importlinter]) — store imports nothing of the project, faces -> engine ->
store, deploy -> monitoring -> evals -> gateway, each package's own order, and no cycle. Imports
inside functions count; those under `if TYPE_CHECKING:` (annotations only) do not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout, done.stdout[-2000:]
