"""Whether a process of this host still runs: what a dead one left behind (a call-log journal,
a job it was running) is taken over at once rather than a lease later."""

from __future__ import annotations

import os


def exists(pid: int) -> bool:
    """True while process `pid` runs here. A zombie (killed, not yet reaped by its parent) has
    stopped; a process we may not signal (another user's) exists."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False
        except OSError:
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
