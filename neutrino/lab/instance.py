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

# The DHCP client is ISC dhclient: it opens its packet socket once, at start.
# busybox udhcpc opens and closes one per packet it sends, and on Linux each
# close (and the bind of each socket) waits for an RCU grace period: about 60 ms
# per address, against one grace period for dhclient.
#
# dhclient calls the script with the event in $reason and the lease in the
# environment. One `ip -batch` per event: every process spawned here delays the
# address. A renewal keeps the address (replace), so established connections
# survive it.
DHCLIENT_SCRIPT = """#!/bin/sh
route=""
[ -n "$new_routers" ] && route="route replace default via ${new_routers%% *} dev $interface"
case "$reason" in
  BOUND|REBOOT)
    printf 'addr flush dev %s\\naddr add %s/%s dev %s\\n%s\\n' \\
      "$interface" "$new_ip_address" "$new_subnet_mask" "$interface" "$route" | ip -batch -
    ;;
  RENEW|REBIND)
    printf 'addr replace %s/%s dev %s\\n%s\\n' \\
      "$new_ip_address" "$new_subnet_mask" "$interface" "$route" | ip -batch -
    ;;
esac
exit 0
"""

# Retry discovery every 1-2 s (the default starts at 10 s and backs off to
# minutes), and after a minute without an answer start again 1 s later, not 5 min.
DHCLIENT_CONF = """initial-interval 1;
backoff-cutoff 2;
retry 1;
"""


def _client_files(state_dir: Path, netns: str, ifname: str) -> tuple[Path, Path, Path]:
    where = state_dir / "instances" / netns
    where.mkdir(parents=True, exist_ok=True)
    script = _write_if_changed(state_dir / "instances" / "dhclient.sh", DHCLIENT_SCRIPT, 0o755)
    conf = _write_if_changed(state_dir / "instances" / "dhclient.conf", DHCLIENT_CONF, 0o644)
    return script, conf, where / f"dhclient-{ifname}.pid"


def _write_if_changed(path: Path, text: str, mode: int) -> Path:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        path.chmod(mode)
    return path


def dhcp_client_pid(state_dir: Path, netns: str, ifname: str) -> int | None:
    try:
        pid = int((state_dir / "instances" / netns / f"dhclient-{ifname}.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError):
        return None
    return pid if b"dhclient" in cmdline else None


def ensure_dhcp_client(state_dir: Path, netns: str, ifname: str) -> bool:
    """Run dhclient on `ifname` unless it runs already; True when it was started."""
    _reap_clients()
    if dhcp_client_pid(state_dir, netns, ifname) is not None:
        return False
    script, conf, pid_file = _client_files(state_dir, netns, ifname)
    # nsenter execs dhclient in place, so the spawned pid is the client's: one
    # fork, no wait; the pid file is ours (--no-pid). A new session: the client
    # outlives the agent. No lease file: like a fresh boot, every start discovers.
    argv = ["nsenter", f"--net={NETNS_DIR / netns}", "dhclient", "-4", "-d", "--no-pid",
            "-cf", str(conf), "-sf", str(script), "-lf", os.devnull, ifname]
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
