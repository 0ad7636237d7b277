"""`nohup make test &` runs pytest with SIGINT ignored, and children inherit that: the tests
that interrupt a child with SIGINT must still pass (tests/procs.py resets it in each child)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SIGINT_TESTS = [
    "tests/test_watch_cli.py::test_watch_command_versions_saves_until_interrupted",
    "tests/test_evals_runner.py::test_ctrl_c_keeps_finished_results_and_says_how_to_resume",
]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigint_tests_pass_when_pytest_starts_with_sigint_ignored(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PROMSTACK_DB", "PYTEST_ADDOPTS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SIGINT_TESTS],
        cwd=TESTS.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert f"{len(SIGINT_TESTS)} passed" in out
