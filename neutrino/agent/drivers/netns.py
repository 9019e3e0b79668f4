"""Network namespaces: create, list, delete, run code inside one, find its processes."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns

NETNS_DIR = Path("/run/netns")
# Held while a namespace is made: the agents of simulated hosts share the outside ones.
NETNS_LOCK = Path("/run/lock/neutrino-netns.lock")
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def list_namespaces() -> set[str]:
    return {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.exists() else set()


def ensure_namespace(name: str) -> bool:
    """Create `name`, with its loopback up, unless it exists; True when it was created.

    A file there with no namespace mounted on it (an `ip netns` interrupted, or a
    namespace unmounted by hand) is no namespace: it is replaced.
    """
    path = NETNS_DIR / name
    if os.path.ismount(path):
        return False
    NETNS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with NETNS_LOCK.open("a") as lock:
        # Another process may be making it: between its file and its mount, that file is no
        # namespace yet, and removing it would leave two mounts on one name.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.ismount(path):
            return False
        path.unlink(missing_ok=True)
        if NETNS_DIR.exists():
            _create_namespace(name)
        else:  # the first one the slow way: iproute2 also makes /run/netns a shared mount
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    run_in_namespace(name, _loopback_up)
    return True


def ignore_router_advertisements() -> None:
    """In the calling thread's namespace, interfaces made from now on take nothing from
    IPv6 router advertisements."""
    for scope in ("all", "default"):
        with contextlib.suppress(FileNotFoundError):  # a kernel without IPv6
            Path(f"/proc/sys/net/ipv6/conf/{scope}/accept_ra").write_text("0\n")


def _loopback_up() -> None:
    # pyroute2 opens its socket on the first request: this thread's namespace.
    with IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def _create_namespace(name: str) -> None:
    """What `ip netns add` does, in a thread: unshare, then pin it with a bind mount.

    A few hundred microseconds, against milliseconds for a helper process.
    """
    path = NETNS_DIR / name
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))

    def pin() -> None:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"unshare for {name}")
        own = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        if _libc.mount(own, str(path).encode(), b"none", MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), f"bind mount of {name}")

    try:
        run_in_namespace(None, pin)
    except OSError:
        path.unlink(missing_ok=True)
        raise


def run_in_namespace(name: str | None, fn: Callable[[], T]) -> T:
    """Run `fn` in a short-lived thread inside `name` (None: this thread's namespace).

    Sockets keep the namespace they were made in: open one here, use it anywhere.
    """
    result: Future[T] = Future()

    def work() -> None:
        try:
            if name is not None:
                _enter(name)
            result.set_result(fn())
        except BaseException as error:
            result.set_exception(error)

    thread = threading.Thread(target=work, name=f"in-{name}")
    thread.start()
    thread.join()
    return result.result()


def _enter(name: str) -> None:
    fd = os.open(NETNS_DIR / name, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


def runs_in(pid: int, name: str) -> bool:
    """Whether process `pid` lives in the namespace now named `name`.

    A namespace deleted by hand lives on while processes are inside, unreachable:
    a server there must be started again in the namespace that took its name.
    """
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(NETNS_DIR / name).st_ino
    except FileNotFoundError:
        return False


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
    for sig in (signal.SIGTERM, signal.SIGKILL):
        exits = _exit_watches(processes_in(name))
        try:
            for pid in exits:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if _all_exited(exits, timeout):
                return
        finally:
            for fd in exits.values():
                os.close(fd)


def running_from(pidfile: Path, program: bytes, config: Path) -> int | None:
    """The pid in `pidfile` if it is still `program` run with `config` (a pid reused by another
    process is not it)."""
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if cmdline[0].endswith(program) and str(config).encode() in cmdline else None


def spawn_in(name: str, argv: list[str], log: Path | None = None) -> int:
    """Start `argv` in namespace `name`, in a session of its own (it outlives the agent), its
    output to `log` or nowhere; its pid. nsenter execs it in place: one fork, no wait, and the
    pid is the program's own."""
    out = (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    argv = ["nsenter", f"--net={NETNS_DIR / name}", *argv]
    return os.posix_spawnp(
        argv[0],
        argv,
        os.environ,
        setsid=True,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
            out if log is not None else (os.POSIX_SPAWN_DUP2, 0, 1),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
    )


def terminate(pid: int, timeout: float = 2.0) -> None:
    """SIGTERM one process and wait, at most `timeout`, until it has exited. An exited process
    is done with its sockets even while it waits, a zombie, for its parent (often init) to
    reap it: `/proc/<pid>` alone would keep us waiting for that."""
    exits = _exit_watches([pid])
    try:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        _all_exited(exits, timeout)
    finally:
        for fd in exits.values():
            os.close(fd)


def _exit_watches(pids: list[int]) -> dict[int, int]:
    """pid -> a pidfd, readable once the process has exited (no polling on a clock)."""
    watches = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            watches[pid] = os.pidfd_open(pid)
    return watches


def _all_exited(exits: dict[int, int], timeout: float) -> bool:
    poll = select.poll()
    for fd in exits.values():
        poll.register(fd, select.POLLIN)
    left, deadline = len(exits), time.monotonic() + timeout
    while left and (remaining := deadline - time.monotonic()) > 0:
        for fd, _ in poll.poll(remaining * 1000):
            poll.unregister(fd)
            left -= 1
    for pid in exits:  # reap those that were our children
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return left == 0


def delete_namespace(name: str) -> None:
    kill_processes(name)
    with contextlib.suppress(FileNotFoundError):  # gone already (a running agent removed it too)
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
        self._thread = threading.Thread(
            target=self._run, args=(ready,), daemon=True, name=f"netns-{netns or 'root'}"
        )
        self._thread.start()
        ready.result()

    def _run(self, ready: Future[None]) -> None:
        try:
            if self.netns is not None:
                _enter(self.netns)
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
