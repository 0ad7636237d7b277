"""Child processes in tests: started so that Ctrl-C reaches them, and never left behind.

`nohup make test &` starts pytest with SIGINT ignored, and a child inherits an ignored signal
(Python then installs no KeyboardInterrupt handler either): a test that sends SIGINT to a child
would wait for nothing. Every child started here has SIGINT back at its default before it runs;
the `spawn` fixture kills what is still running when its test ends, passed or failed."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(args: Any, **kwargs: Any) -> subprocess.Popen:
    """subprocess.Popen, with SIGINT at its default in the child whatever the parent ignores."""
    return subprocess.Popen(args, preexec_fn=_default_signals, **kwargs)


def reap(proc: subprocess.Popen) -> None:
    """Kill `proc` if it still runs, and collect it (its pipes closed)."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
        proc.communicate(timeout=10)


@pytest.fixture
def spawn() -> Iterator[Any]:
    """`spawn(args, **popen_kwargs)`: a child that is killed when the test ends."""
    started: list[subprocess.Popen] = []

    def start(args: Any, **kwargs: Any) -> subprocess.Popen:
        proc = popen(args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        reap(proc)
