"""keepalived, one per ACTIVE_STANDBY amphora, in the amphora's namespace beside its haproxy.

The configuration is the plan's `vrrp_instance` (plan.loadbalancer.render_vrrp) behind a part of
ours: the check script it tracks, which asks the amphora's haproxy for `show info` on its stats
socket, as Octavia's haproxy-vrrp-check does (a master whose haproxy does not answer goes to
FAULT and leaves the VIP to its peer). A changed configuration (a new peer after a failover, a
first listener to check) is loaded by SIGHUP, which keeps the VRRP state; a stop (SIGTERM) makes
a master send a priority-0 advertisement, and its peer takes the VIP at once. As for haproxy,
what runs is what is observed: the pid file's process must be a keepalived reading our file, in
the amphora's namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from neutrino.agent.drivers.netns import run_in_namespace, running_from, runs_in, terminate
from neutrino.plan.loadbalancer import CHECK_FALL, CHECK_INTERVAL, CHECK_RISE
from neutrino.plan.state import LoadBalancer


class KeepalivedDriver:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "keepalived"
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, key: str) -> Path:
        return self.root / key

    def config(self, lb: LoadBalancer) -> str:
        check = self._dir(lb.key) / "check"
        return "\n".join(
            [
                "global_defs {",
                "  script_user root",
                "}",
                "",
                "vrrp_script check_script {",
                f"  script {check}",
                f"  interval {CHECK_INTERVAL}",
                f"  fall {CHECK_FALL}",
                f"  rise {CHECK_RISE}",
                "}",
                "",
                lb.vrrp,
            ]
        )

    def running_pid(self, key: str) -> int | None:
        where = self._dir(key)
        return running_from(where / "pid", b"keepalived", where / "keepalived.conf")

    @staticmethod
    def allow_nonlocal_bind(lb: LoadBalancer) -> None:
        """haproxy binds the VIP in an amphora that does not hold it (yet): let it, as Octavia's
        amphora does (ip_nonlocal_bind in its namespace)."""

        def allow() -> None:
            for family in ("ipv4", "ipv6"):
                target = Path(f"/proc/sys/net/{family}/ip_nonlocal_bind")
                if target.exists() and target.read_text().strip() != "1":
                    target.write_text("1\n")

        run_in_namespace(lb.netns, allow)

    def ensure(self, lb: LoadBalancer, haproxy_socket: Path) -> str | None:
        """Run keepalived with `lb`'s VRRP instance; returns what was done, None if nothing."""
        where = self._dir(lb.key)
        where.mkdir(parents=True, exist_ok=True)
        check = where / "check"
        script = f"#!/bin/sh\necho 'show info' | socat stdio UNIX-CONNECT:{haproxy_socket}\n"
        if not check.exists() or check.read_text() != script:
            check.write_text(script)
            check.chmod(0o700)
        path, text = where / "keepalived.conf", self.config(lb)
        pid = self.running_pid(lb.key)
        if pid is not None and not runs_in(pid, lb.netns):
            terminate(pid)  # in a namespace deleted by hand: it holds the VIP for nobody
            pid = None
        current = path.read_text() if path.exists() else None
        if pid is not None and current == text:
            return None
        path.write_text(text)
        if pid is not None:
            os.kill(pid, signal.SIGHUP)
            return "reloaded"
        started = subprocess.run(
            [
                *("ip", "netns", "exec", lb.netns, "keepalived", "--vrrp", "--no-syslog"),
                *("-f", str(path), "-p", str(where / "pid"), "-r", str(where / "vrrp.pid")),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(f"keepalived does not start: {started.stderr.strip()}")
        deadline = time.monotonic() + 5  # the daemon writes its pid file once it has forked
        while self.running_pid(lb.key) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return "started"

    def stop(self, key: str) -> None:
        pid = self.running_pid(key)
        if pid is not None:
            terminate(pid)
        shutil.rmtree(self._dir(key), ignore_errors=True)

    def served(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.is_dir()}
