"""Lab instances: a namespace whose eth0 is the far end of a tap, addressed by DHCP.

The agent creates the namespace and the veth (see neutrino.agent); this module
runs what lives inside: the DHCP client, and commands a test or a person runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from neutrino.agent.drivers.netns import delete_namespace, runs_in, spawn_in

NETNS_ETC = Path("/etc/netns")  # per-namespace /etc files of `ip netns exec`

# The DHCP client is ISC dhclient: it opens its packet socket once, at start.
# busybox udhcpc opens and closes one per packet it sends, and on Linux each
# close (and the bind of each socket) waits for an RCU grace period: about 60 ms
# per address, against one grace period for dhclient. Where AppArmor confines
# dhclient (Debian's profile lets it read only /etc/dhcp and run only its own
# scripts) it could not run ours, so udhcpc serves there.
#
# One script for both: udhcpc gives the event in $1 and the lease in $ip $mask
# $router $dns $search $domain, dhclient the event in $reason and the lease in
# $new_*. One `ip -4 -batch` per event (an IPv4 lease flushes IPv4 addresses only): every
# process spawned here delays the address. A renewal keeps the address (replace), so
# established connections survive it. The resolver comes first: `ip netns exec` (how `instance
# exec` runs commands) puts /etc/netns/<name>/resolv.conf in place of /etc/resolv.conf, and
# until it is there the host's is used, whose servers an addressed instance asks in vain for
# over 10 s; without an address it fails at once.
CLIENT_SCRIPT = """#!/bin/sh
event=${reason:-$1} ip=${new_ip_address:-$ip} mask=${new_subnet_mask:-$mask} \\
router=${new_routers:-$router} dns=${new_domain_name_servers:-$dns} \\
search=${new_domain_search:-${search:-${new_domain_name:-$domain}}} \\
mtu=${new_interface_mtu:-$mtu} family=4
case "$event" in
  *6) family=6 dns=$new_dhcp6_name_servers search=$new_dhcp6_domain_search ;;
esac
route=""
[ -n "$router" ] && route="route replace default via ${router%% *} dev $interface"
link=""
[ -n "$mtu" ] && link="link set dev $interface mtu $mtu"
resolver() {
  netns=$(ip netns identify) && [ -n "$netns" ] || return 0
  parts="${0%/*}/$netns"
  mkdir -p "/etc/netns/$netns" "$parts"
  {
    [ -n "$search" ] && echo "search $search"
    for server in $dns; do echo "nameserver $server"; done
  } > "$parts/resolv-$interface-$family"
  # Beside the namespace's directory, whose files `ip netns exec` mounts over /etc's; one name
  # per client (IPv4 and IPv6 ones run at once), removed with the instance if it is killed here.
  cat "$parts"/resolv-* > "/etc/netns/.$netns.resolv.conf.$$"
  mv "/etc/netns/.$netns.resolv.conf.$$" "/etc/netns/$netns/resolv.conf"
}
case "$event" in
  bound|BOUND|REBOOT)
    resolver
    printf 'addr flush dev %s\\naddr add %s/%s dev %s\\n%s\\n%s\\n' \\
      "$interface" "$ip" "$mask" "$interface" "$link" "$route" | ip -4 -batch -
    ;;
  renew|RENEW|REBIND)
    resolver
    printf 'addr replace %s/%s dev %s\\n%s\\n%s\\n' "$ip" "$mask" "$interface" "$link" \\
      "$route" | ip -4 -batch -
    ;;
  BOUND6|REBOOT6|RENEW6|REBIND6)
    resolver
    # A stateful lease's address (its prefix is on-link by the router advertisement), or
    # none: options only (stateless).
    [ -z "$new_ip6_address" ] ||
      ip -6 addr replace "$new_ip6_address/$new_ip6_prefixlen" dev "$interface"
    ;;
esac
exit 0
"""

# Retry discovery every 1-2 s (the default starts at 10 s and backs off to
# minutes), and after a minute without an answer start again 1 s later, not 5 min. The
# network's MTU is asked for (udhcpc: -O mtu), as cloud images' clients do: VXLAN's is smaller.
DHCLIENT_CONF = """initial-interval 1;
backoff-cutoff 2;
retry 1;
also request interface-mtu;
"""
# DHCPv6: the options a cloud image's client asks for.
DHCLIENT6_CONF = """request dhcp6.name-servers, dhcp6.domain-search;
"""
APPARMOR_PROFILES = Path("/sys/kernel/security/apparmor/profiles")


def dhcp_client() -> str:
    """The client lab instances use here: "dhclient", or "udhcpc" where AppArmor confines
    dhclient."""
    try:
        profiles = APPARMOR_PROFILES.read_text().splitlines()
    except OSError:  # no AppArmor
        return "dhclient"
    confined = any("sbin/dhclient" in line and "(enforce)" in line for line in profiles)
    return "udhcpc" if confined or not shutil.which("dhclient") else "dhclient"


def _client_argv(client: str, state_dir: Path, ifname: str) -> list[str]:
    if client == "udhcpc":  # -T 1 -A 1: retry discovery every second instead of after 3 and 20 s
        return [
            "busybox",
            "udhcpc",
            "-f",
            "-i",
            ifname,
            "-s",
            str(_script(state_dir)),
            "-T",
            "1",
            "-A",
            "1",
            "-t",
            "5",
            "-O",
            "mtu",
        ]
    return _dhclient(state_dir, ifname, ["-4"], "dhclient.conf", DHCLIENT_CONF)


def _dhclient(
    state_dir: Path, ifname: str, options: list[str], conf_name: str, conf: str
) -> list[str]:
    """dhclient in the foreground with our script and configuration `conf`. The pid file is
    ours (--no-pid). No lease file: like a fresh boot, every start discovers."""
    path = _write_if_changed(state_dir / "instances" / conf_name, conf, 0o644)
    return [
        "dhclient",
        *options,
        "-d",
        "--no-pid",
        *("-cf", str(path), "-sf", str(_script(state_dir)), "-lf", os.devnull),
        ifname,
    ]


def _script(state_dir: Path) -> Path:
    """The clients' script, for DHCPv4 and DHCPv6 events alike."""
    return _write_if_changed(state_dir / "instances" / "dhcp-client.sh", CLIENT_SCRIPT, 0o755)


def _write_if_changed(path: Path, text: str, mode: int) -> Path:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    return path


def _dhcp6_argv(state_dir: Path, ifname: str, mode: str) -> list[str]:
    """dhclient -6: an address and options (stateful), or options only (-S, stateless).
    It waits for the link-local address to leave duplicate address detection, which it
    sends from."""
    stateless = ["-S"] if mode == "stateless" else []
    options = ["-6", *stateless, "--dad-wait-time", "5"]
    return _dhclient(state_dir, ifname, options, "dhclient6.conf", DHCLIENT6_CONF)


def _pid_file(state_dir: Path, netns: str, ifname: str, version: int = 4) -> Path:
    kind = "dhcp-client" if version == 4 else "dhcp6-client"
    return state_dir / "instances" / netns / f"{kind}-{ifname}.pid"


def _cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]


def dhcp_client_pid(state_dir: Path, netns: str, ifname: str, version: int = 4) -> int | None:
    try:
        pid = int(_pid_file(state_dir, netns, ifname, version).read_text())
        cmdline = b" ".join(_cmdline(pid))
    except (FileNotFoundError, ValueError):
        return None
    return pid if b"dhclient" in cmdline or b"udhcpc" in cmdline else None


def ensure_dhcp_client(
    state_dir: Path, netns: str, ifname: str, client: str | None = None, restart: bool = False
) -> bool:
    """Run a DHCP client (`client`, else dhcp_client()) on `ifname` unless one runs already
    in the namespace named `netns` (`restart`: the interface was made again, and the client
    holds a socket on the old one); True when it was started."""
    _reap_clients()
    pid = dhcp_client_pid(state_dir, netns, ifname)
    if pid is not None:
        if runs_in(pid, netns) and not restart:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _spawn(
        _client_argv(client or dhcp_client(), state_dir, ifname),
        netns,
        _pid_file(state_dir, netns, ifname),
    )
    return True


def ensure_dhcp6_client(
    state_dir: Path, netns: str, ifname: str, mode: str, restart: bool = False
) -> bool:
    """Run dhclient -6 in `mode` ("stateful" or "stateless") on `ifname` unless it runs so
    already; True when it was started. The address a router advertisement's prefix gives
    (SLAAC) is the kernel's doing in the instance, as in a VM."""
    _reap_clients()
    argv = _dhcp6_argv(state_dir, ifname, mode)
    pid = dhcp_client_pid(state_dir, netns, ifname, 6)
    if pid is not None:
        if runs_in(pid, netns) and not restart and _cmdline(pid) == [a.encode() for a in argv]:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _spawn(argv, netns, _pid_file(state_dir, netns, ifname, 6))
    return True


def _spawn(client: list[str], netns: str, pid_file: Path) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid = spawn_in(netns, client)
    _clients.add(pid)
    pid_file.write_text(f"{pid}\n")


def dhcp_client_interfaces(state_dir: Path, netns: str, version: int = 4) -> list[str]:
    """The interfaces a DHCP client (of IP `version`) was started on in the namespace named
    `netns`."""
    kind = "dhcp-client-" if version == 4 else "dhcp6-client-"
    files = (state_dir / "instances" / netns).glob(f"{kind}*.pid")
    return sorted(path.name.removeprefix(kind).removesuffix(".pid") for path in files)


def stop_dhcp_client(state_dir: Path, netns: str, ifname: str, version: int = 4) -> None:
    """Stop the DHCP client (of IP `version`) of `ifname` in the namespace named `netns`, if
    one runs."""
    pid = dhcp_client_pid(state_dir, netns, ifname, version)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _pid_file(state_dir, netns, ifname, version).unlink(missing_ok=True)


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
        done = subprocess.run(
            ["ip", "netns", "exec", netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        return -1, _text(expired.stdout), _text(expired.stderr) + "timeout"
    return done.returncode, done.stdout, done.stderr


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def delete_instance(state_dir: Path, netns: str) -> None:
    """Kill every process inside the instance, then remove its namespace and its resolver."""
    delete_namespace(netns)
    shutil.rmtree(state_dir / "instances" / netns, ignore_errors=True)
    shutil.rmtree(NETNS_ETC / netns, ignore_errors=True)
    for unfinished in NETNS_ETC.glob(f".{netns}.resolv.conf.*"):  # a client killed halfway
        unfinished.unlink(missing_ok=True)
