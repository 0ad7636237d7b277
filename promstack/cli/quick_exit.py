"""Leave the process once a command's work is written, without the interpreter's teardown.

After a 10,000-case `promstack test` the teardown (freeing every module and object one by one)
took 0.04-0.06 s on a fresh store and ~0.2 s on one holding 300,000 results; none of it writes
anything. What does write runs first, as at a normal exit: threads that are not daemons are
joined, the atexit handlers run (the call log's drain, the OTLP exporter's last batch, the HTTP
sessions), stdout and stderr are flushed. The store's commits are already durable as the store
promises (a committed write survives the end of the process, however it ends).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def quick_exit(code: object) -> NoReturn:
    """End the process with `code` as `sys.exit(code)` would (None is 0, a string is printed
    on stderr and is 1), after the writes a normal exit makes."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    here = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not here and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # the stdlib's own runner: every handler, in the normal order
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader that went away has been answered already
            stream.flush()
    os._exit(status)
