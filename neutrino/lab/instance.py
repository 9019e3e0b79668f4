"""Lab instances: a namespace whose eth0 is the far end of a tap, addressed by DHCP.

The agent creates the namespace and the veth (see neutrino.agent); this module
runs what lives inside: the DHCP client, and commands a test or a person runs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from neutrino.agent.drivers.netns import delete_namespace

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
    if dhcp_client_pid(state_dir, netns, ifname) is not None:
        return False
    script, pid_file = _client_files(state_dir, netns, ifname)
    pid_file.unlink(missing_ok=True)
    # setsid -f: the client is nobody's child here, it outlives the agent.
    # -T 1 -A 1: retry discovery every second instead of every 3 and 20 s.
    subprocess.run(
        ["setsid", "-f", "ip", "netns", "exec", netns, "busybox", "udhcpc", "-f", "-i", ifname, "-s", str(script), "-p", str(pid_file), "-T", "1", "-A", "1",
         "-t", "5"],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=5)
    deadline = time.monotonic() + 2
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    return True


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
