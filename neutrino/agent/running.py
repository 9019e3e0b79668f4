"""One agent at a time on a state directory.

A running agent holds an exclusive lock on its state directory's `running.lock` for as long as
its process lives; the kernel lets go of it when the process ends, however it ends. `neutrino
teardown` takes the same lock first: it would otherwise remove what a running agent, or one
still stopping with its server, makes again at once.
"""

from __future__ import annotations

import fcntl
import time
from pathlib import Path
from typing import IO

LOCK_FILE = "running.lock"
_held: list[IO[str]] = []  # the locks this process keeps for its life


def hold(state_dir: Path, wait: float = 0.0) -> IO[str] | None:
    """The lock on `state_dir`, taken within `wait` seconds: an open file (closing it lets go).
    None when another process held it all that time."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = (state_dir / LOCK_FILE).open("a")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() >= deadline:
                lock.close()
                return None
            time.sleep(0.1)


def hold_for_life(state_dir: Path) -> bool:
    """Take the lock on `state_dir` for as long as this process lives; False when another
    process holds it."""
    lock = hold(state_dir)
    if lock is None:
        return False
    _held.append(lock)
    return True
