"""Lab instances: a namespace whose eth0 is the far end of a tap, addressed by DHCP.

The agent creates the namespace and the veth (see neutrino.agent); this module
runs what lives inside: the DHCP client, and commands a test or a person runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from neutrino.agent.drivers.netns import NETNS_DIR, delete_namespace

# udhcpc calls the script with the event in $1 and the lease in the environment.
# One `ip -batch` per event: every process spawned here delays the first packet.
# A renew keeps the address (replace), so established connections survive it.
UDHCPC_SCRIPT = """#!/bin/sh
route=""
[ -n "$router" ] && route="route replace default via ${router%% *} dev $interface"
case "$1" in
  bound)
    printf 'addr flush dev %s\\naddr add %s/%s dev %s\\n%s\\n' \\
      "$interface" "$ip" "$mask" "$interface" "$route" | ip -batch -
    ;;
  renew)
    printf 'addr replace %s/%s dev %s\\n%s\\n' "$ip" "$mask" "$interface" "$route" | ip -batch -
    ;;
esac
exit 0
"""


def _client_files(state_dir: Path, netns: str, ifname: str) -> tuple[Path, Path]:
    where = state_dir / "instances" / netns
    where.mkdir(parents=True, exist_ok=True)
    script = state_dir / "instances" / "udhcpc.sh"
    if not script.exists() or script.read_text() != UDHCPC_SCRIPT:
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
    return script, where / f"udhcpc-{ifname}.pid"


def dhcp_client_pid(state_dir: Path, netns: str, ifname: str) -> int | None:
    try:
        pid = int((state_dir / "instances" / netns / f"udhcpc-{ifname}.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError):
        return None
    return pid if b"udhcpc" in cmdline else None


def ensure_dhcp_client(state_dir: Path, netns: str, ifname: str) -> bool:
    """Run udhcpc on `ifname` unless it runs already; True when it was started."""
    _reap_clients()
    if dhcp_client_pid(state_dir, netns, ifname) is not None:
        return False
    script, pid_file = _client_files(state_dir, netns, ifname)
    # nsenter execs udhcpc in place, so the spawned pid is the client's: one fork,
    # no wait. A new session: the client outlives the agent. -T 1 -A 1: retry
    # discovery every second instead of after 3 and 20 s.
    argv = ["nsenter", f"--net={NETNS_DIR / netns}", "busybox", "udhcpc", "-f", "-i", ifname,
            "-s", str(script), "-T", "1", "-A", "1", "-t", "5"]
    pid = os.posix_spawnp(argv[0], argv, os.environ, setsid=True, file_actions=[
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
        (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)])
    _clients.add(pid)
    pid_file.write_text(f"{pid}\n")
    return True


# Clients this process spawned: its children until they exit, reaped here.
_clients: set[int] = set()


def _reap_clients() -> None:
    for pid in list(_clients):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        except ChildProcessError:
            pass
        _clients.discard(pid)


def exec_in_instance(netns: str, argv: list[str], timeout: float = 10.0) -> tuple[int, str, str]:
    """Run `argv` inside the instance; (returncode, stdout, stderr)."""
    try:
        done = subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        return -1, _text(expired.stdout), _text(expired.stderr) + "timeout"
    return done.returncode, done.stdout, done.stderr


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def delete_instance(state_dir: Path, netns: str) -> None:
    """Kill every process inside the instance, then remove its namespace."""
    delete_namespace(netns)
    shutil.rmtree(state_dir / "instances" / netns, ignore_errors=True)
