"""Network namespaces: create, list, delete, run code inside one, find its processes."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from pyroute2 import netns as pyroute2_netns

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def list_namespaces() -> set[str]:
    return {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.exists() else set()


def ensure_namespace(name: str) -> bool:
    """Create `name` unless it exists; True when it was created."""
    if (NETNS_DIR / name).exists():
        return False
    pyroute2_netns.create(name)
    return True


def processes_in(name: str) -> list[int]:
    """PIDs whose network namespace is `name` (what `ip netns pids` prints)."""
    try:
        target = os.stat(NETNS_DIR / name).st_ino
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino == target:
                    pids.append(int(entry.name))
            except OSError:
                continue  # exited meanwhile, or a kernel thread
    return pids


def kill_processes(name: str, timeout: float = 2.0) -> None:
    """SIGTERM everything in the namespace, SIGKILL what is left after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        pids = processes_in(name)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if _alive(pid)]
            if pids:
                time.sleep(0.01)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; reap it if it is our child.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def delete_namespace(name: str) -> None:
    kill_processes(name)
    if (NETNS_DIR / name).exists():
        pyroute2_netns.remove(name)


class NetnsThread:
    """A worker thread living in one network namespace.

    setns(2) with CLONE_NEWNET switches only the calling thread, so code that
    acts on "the current namespace" (libnftables, /proc/sys/net) runs here
    while the rest of the process stays where it is. One long-lived thread
    costs one setns; opening the namespace per call would cost one per call.
    """

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self._jobs: queue.Queue[tuple[Callable[[], object], Future[object]] | None] = queue.Queue()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name=f"netns-{netns or 'root'}")
        self._thread.start()
        ready.result()

    def _run(self, ready: Future[None]) -> None:
        try:
            if self.netns is not None:
                fd = os.open(NETNS_DIR / self.netns, os.O_RDONLY)
                try:
                    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {self.netns}")
                finally:
                    os.close(fd)
        except BaseException as error:
            ready.set_exception(error)
            return
        ready.set_result(None)
        while (job := self._jobs.get()) is not None:
            fn, future = job
            try:
                future.set_result(fn())
            except BaseException as error:
                future.set_exception(error)

    def call(self, fn: Callable[[], T]) -> T:
        future: Future[object] = Future()
        self._jobs.put((fn, future))
        return future.result()  # type: ignore[return-value]

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()
