"""haproxy, one master-worker process per amphora in its qlbaas- namespace (a load balancer's
one, or each of an ACTIVE_STANDBY one's two, whose state is kept by amphora id: `lb.key`).

The configuration is the plan's proxies behind a `global` section of ours
(stats socket, pid file, and the instance's amphora id as haproxy's `node`
name). A changed configuration is checked (`haproxy -c`)
before it replaces the running one, then the master is sent SIGUSR2: it
starts new workers, which take over the listening sockets from the old ones
through the stats socket (`expose-fd listeners`); the old workers finish
their established connections and exit. No connection is refused or cut.
A new amphora id is a failover: a new haproxy is started from scratch and the
running one stopped once the new one listens; the connections it held are cut.
What runs is what is observed: the pid file's process must be an haproxy
master reading our file, in the load balancer's namespace, across agent
restarts and namespaces deleted by hand.

Certificates, keys, CAs, CRLs and crt-lists (the plan's `files`) live in the
load balancer's `certs` directory, readable by root only (mode 0600), named
relatively in the configuration: haproxy runs there (`-C`), as a crt-list's
own path does not follow `crt-base`. They are written before the
configuration is checked, so that a changed file is a reload too; files no
longer named are removed once haproxy runs without them.

Health and statistics: `show stat` on the stats socket (a Unix socket,
reachable from any namespace) gives each server's state and each frontend's
status and counters; `show info` names the worker that counted them. haproxy limits a
socket's path to 97 characters, too few for a state directory: the sockets
live in /run, in a directory named after the agent's state directory.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from neutrino.agent.drivers.netns import processes_in, running_from, runs_in, terminate
from neutrino.plan.state import LoadBalancer

SOCKETS = Path("/run/neutrino")
# Per process: each connection takes two descriptors, and haproxy must be allowed to raise its limit
# that far.
MAX_CONNECTIONS = 8000
RETIRE_SECONDS = 0.05  # after a reload, how long old workers are given to leave before we go on
# haproxy's server states -> what the agent reports (services/loadbalancers.HEALTH)
STATES = {
    "UP": "UP",
    "DOWN": "DOWN",
    "MAINT": "MAINT",
    "no check": "NO_CHECK",
    "DRAIN": "UP",
    "NOLB": "UP",
}
# A server haproxy has not checked yet ("INI", right after it starts): its state says nothing
# of the member, which keeps its last status (services/loadbalancers.member_status).
UNCHECKED = "UNCHECKED"
# A frontend's `show stat` columns -> Octavia's listener statistics (as its amphora reports them)
COUNTERS = {
    "active_connections": "scur",
    "total_connections": "stot",
    "bytes_in": "bin",
    "bytes_out": "bout",
    "request_errors": "ereq",
}


@dataclass(frozen=True)
class Observation:
    """One look at a load balancer's haproxy: members' health by member id, and per listener id,
    the counters of the worker (`worker`: its pid and start time) since it started."""

    members: dict[str, str]
    listeners: dict[str, dict[str, int | str]]


class HaproxyDriver:
    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "haproxy"
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets = SOCKETS / hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]

    def _dir(self, lb_id: str) -> Path:
        return self.root / lb_id

    def _certs(self, lb_id: str) -> Path:
        return self._dir(lb_id) / "certs"

    def socket(self, lb_id: str) -> Path:
        return self.sockets / f"{lb_id}.sock"

    def config(self, lb: LoadBalancer) -> str:
        where = self._dir(lb.key)
        return "\n".join(
            [
                "global",
                "    master-worker",
                "    nbthread 1",
                *([f"    node {lb.amphora_id}"] if lb.amphora_id else []),
                f"    pidfile {where / 'pid'}",
                f"    stats socket {self.socket(lb.key)} mode 600 level admin expose-fd listeners",
                f"    maxconn {MAX_CONNECTIONS}",
                "",
                lb.config,
            ]
        )

    def running_pid(self, lb_id: str) -> int | None:
        where = self._dir(lb_id)
        return running_from(where / "pid", b"haproxy", where / "haproxy.cfg")

    def ensure(self, lb: LoadBalancer) -> str | None:
        """Run haproxy with `lb`'s configuration; returns what was done, None if nothing."""
        where = self._dir(lb.key)
        where.mkdir(parents=True, exist_ok=True)
        path, text = where / "haproxy.cfg", self.config(lb)
        pid = self.running_pid(lb.key)
        if pid is not None and not runs_in(pid, lb.netns):
            terminate(pid)  # in a namespace deleted by hand: it serves nobody
            pid = None
        if not lb.config:
            if pid is None:
                return None
            terminate(pid)
            path.unlink(missing_ok=True)
            return "stopped"
        current = path.read_text() if path.exists() else None
        files_changed = self._write_files(lb)
        if pid is not None and current == text and not files_changed:
            return None
        if current != text or files_changed:
            candidate = where / "haproxy.cfg.new"
            candidate.write_text(text)
            checked = subprocess.run(
                ["haproxy", "-c", "-q", "-C", str(self._certs(lb.key)), "-f", str(candidate)],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if checked.returncode != 0:
                raise RuntimeError(
                    f"haproxy rejects the configuration: {checked.stdout}{checked.stderr}".strip()
                )
            candidate.replace(path)
        replaced = pid if pid is not None and _node(current) != lb.amphora_id else None
        if pid is not None and replaced is None:
            self._reload(pid)
            self._remove_other_files(lb)
            return "reloaded"
        self._remove_other_files(lb)
        self.sockets.mkdir(parents=True, exist_ok=True)
        self.socket(lb.key).unlink(missing_ok=True)
        started = subprocess.run(
            [
                *("ip", "netns", "exec", lb.netns, "haproxy", "-W", "-D"),
                *("-C", str(self._certs(lb.key)), "-f", str(path)),
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(f"haproxy does not start: {started.stderr.strip()}")
        self._wait_for_socket(self.socket(lb.key))
        if replaced is None:
            return "started"
        # A failover: the new haproxy listens beside the old one (SO_REUSEPORT, haproxy's
        # default), which is stopped only then; what it had accepted is cut.
        terminate(replaced)
        return "restarted"

    def _write_files(self, lb: LoadBalancer) -> bool:
        """Write the files that differ from the plan's; True if any did."""
        certs = self._certs(lb.key)
        certs.mkdir(mode=0o700, exist_ok=True)
        changed = False
        for name, content in lb.files:
            path = certs / name
            if path.exists() and path.read_text() == content:
                continue
            temporary = certs / f".{name}.new"
            temporary.unlink(missing_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(content)
            temporary.replace(path)
            changed = True
        return changed

    def _remove_other_files(self, lb: LoadBalancer) -> None:
        wanted = {name for name, _ in lb.files}
        for path in self._certs(lb.key).iterdir():
            if path.name not in wanted:
                path.unlink()

    @staticmethod
    def _reload(pid: int) -> None:
        """SIGUSR2 the master; return once a new worker runs the new configuration.

        Until the master retires the old worker (SIGUSR1, right after the new
        one is ready) the old one still accepts connections; a caller told
        "done" earlier could reach the old configuration. Retired workers stay
        while they finish their connections, so their exit is awaited briefly.
        """
        before = _children(pid)
        os.kill(pid, signal.SIGUSR2)
        deadline, started = time.monotonic() + 5, None
        while time.monotonic() < deadline:
            now = _children(pid)
            if now - before:
                started = started or time.monotonic()
                if not now & before or time.monotonic() - started > RETIRE_SECONDS:
                    return
            time.sleep(0.002)

    @staticmethod
    def _wait_for_socket(path: Path, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.002)

    def observe(self, lb_id: str) -> Observation:
        """What the running worker sees: its servers' states and its frontends' counters."""
        info, rows = show(self.socket(lb_id))
        worker = f"{info.get('Pid', '')}@{info.get('Start_time_sec', '')}"
        members: dict[str, str] = {}
        listeners: dict[str, dict[str, int | str]] = {}
        for row in rows:
            if row["svname"] == "FRONTEND":
                counts = {name: int(row[column] or 0) for name, column in COUNTERS.items()}
                status = _frontend_status(row)
                listeners[row["pxname"]] = {"worker": worker, "status": status, **counts}
            elif row["svname"] != "BACKEND":
                members[row["svname"]] = _state(row["status"], row["check_status"])
        return Observation(members, listeners)

    @staticmethod
    def ensure_gateway(sock: IPRoute, gateway: str | None) -> bool:
        """The namespace's default route (`sock` is in it): replies reach clients beyond the subnet.

        True if it had to be set."""
        if gateway is None:
            return False
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        if any(
            route.get_attr("RTA_GATEWAY") == gateway
            for route in sock.get_default_routes(family=family)
        ):
            return False
        sock.route(
            "replace", dst="::/0" if family == socket.AF_INET6 else "0.0.0.0/0", gateway=gateway
        )
        return True

    def stop(self, lb_id: str) -> None:
        pid = self.running_pid(lb_id)
        if pid is not None:
            terminate(pid)
        self.socket(lb_id).unlink(missing_ok=True)
        shutil.rmtree(self._dir(lb_id), ignore_errors=True)
        if self.sockets.exists() and not any(self.sockets.iterdir()):
            self.sockets.rmdir()

    def served(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.is_dir()}


def show(path: Path) -> tuple[dict[str, str], list[dict[str, str]]]:
    """`show info` (fields) and `show stat` (rows) from the stats socket at `path`; empty if none
    answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(path))
            sock.sendall(b"show info;show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError:
        return {}, []
    info, _, stat = b"".join(chunks).decode().partition("\n# ")
    return (
        dict(line.split(": ", 1) for line in info.splitlines() if ": " in line),
        list(csv.DictReader(stat.splitlines())),
    )


def running_in(netns: str) -> dict[str, Any] | None:
    """The haproxy master in `netns` as its processes show it: pid, workers, configuration file
    and stats socket (for readers that do not know the agent's state directory)."""
    found = {}
    for pid in map(str, processes_in(netns)):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if argv[0].endswith("haproxy") and "-f" in argv:
            found[pid] = (parent, argv[argv.index("-f") + 1])
    master = next((pid for pid, (parent, _) in found.items() if parent not in found), None)
    if master is None:
        return None
    config = Path(found[master][1])
    text = config.read_text() if config.exists() else ""
    sockets = [
        line.split()[2] for line in text.splitlines() if line.strip().startswith("stats socket")
    ]
    return {
        "pid": int(master),
        "workers": sorted(int(pid) for pid, (parent, _) in found.items() if parent == master),
        "config_file": str(config),
        "config": text,
        "stats_socket": sockets[0] if sockets else None,
    }


def _node(config: str | None) -> str:
    """The `node` name of a configuration of ours: the amphora it runs ("" if none)."""
    for line in (config or "").splitlines():
        if line.startswith("    node "):
            return line.split(maxsplit=1)[1]
    return ""


def _frontend_status(row: dict[str, str]) -> str:
    """OPEN, FULL (as many connections as its maxconn: haproxy before 2.3 said so itself, later
    ones say OPEN) or STOP."""
    full = row["status"] == "OPEN" and int(row["scur"] or 0) >= int(row["slim"] or 0) > 0
    return "FULL" if full else row["status"]


def _state(status: str, check: str) -> str:
    """ "UP", "UP 1/3" (going down), "DOWN 1/2" (going up), "MAINT (via x)", "no check"...;
    `check` is the last check's result ("* " while one runs)."""
    if status.startswith("no check"):
        return STATES["no check"]
    word = status.split(" ")[0]
    if word in ("UP", "DOWN") and check.removeprefix("* ") == "INI":
        return UNCHECKED
    return STATES.get(word, status)


def _children(pid: int) -> set[int]:
    try:
        return {
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        }
    except FileNotFoundError:
        return set()
