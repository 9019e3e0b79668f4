"""radvd, one process per router or DHCP namespace that advertises IPv6 prefixes (plan.ra).

Its configuration is a file that radvd re-reads on SIGHUP, so a prefix or an option that
changes does not restart it. It runs in the foreground, spawned into its namespace in a
session of its own (it outlives the agent); the pid it writes is compared with
/proc/<pid>/cmdline and its namespace with the one of its name, so what runs is what is
observed, across agent restarts and namespaces deleted by hand. A socket bound to an
interface that was made again hears nothing: radvd restarts with its interfaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from neutrino.agent.drivers.netns import running_from, runs_in, spawn_in, terminate
from neutrino.plan.state import Advertiser


class RadvdDriver:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "radvd"
        self.root.mkdir(parents=True, exist_ok=True)
        self._children: set[int] = set()

    def _dir(self, key: str) -> Path:
        return self.root / key

    def running_pid(self, key: str) -> int | None:
        where = self._dir(key)
        return running_from(where / "pid", b"radvd", where / "radvd.conf")

    def ensure(self, advertiser: Advertiser, replugged: bool = False) -> str | None:
        """Make radvd advertise as `advertiser` says; what was done, None if nothing."""
        self._reap()
        where = self._dir(advertiser.key)
        where.mkdir(parents=True, exist_ok=True)
        config = where / "radvd.conf"
        changed = not config.exists() or config.read_text() != advertiser.config
        if changed:
            tmp = config.with_suffix(".tmp")
            tmp.write_text(advertiser.config)
            tmp.chmod(0o644)  # radvd refuses a configuration that others may write
            tmp.replace(config)
        pid = self.running_pid(advertiser.key)
        if pid is not None and runs_in(pid, advertiser.netns) and not replugged:
            if not changed:
                return None
            os.kill(pid, signal.SIGHUP)
            return "reloaded"
        if pid is not None:
            terminate(pid)
        done = "restarted" if pid is not None else "started"
        argv = [
            "radvd",
            "--nodaemon",
            "-C",
            str(config),
            "-p",
            str(where / "radvd.pid"),  # its own (it locks it); ours is "pid"
            "--logmethod=stderr",
        ]
        pid = spawn_in(advertiser.netns, argv, log=where / "log")
        self._children.add(pid)
        (where / "pid").write_text(f"{pid}\n")
        return done

    def stop(self, key: str) -> None:
        pid = self.running_pid(key)
        if pid is not None:
            terminate(pid)
        shutil.rmtree(self._dir(key), ignore_errors=True)

    def served(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.is_dir()}

    def _reap(self) -> None:
        """Our children that exited (a radvd stopped by hand, or refused to start)."""
        for pid in list(self._children):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            self._children.discard(pid)
