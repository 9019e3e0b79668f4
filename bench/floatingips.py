"""Floating IPs: convergence through the API, and cost at 10,000 and 50,000 on one router.

Prints JSON.
(a) convergence, through a live `neutrino serve` with its agent and the
    tutorial lab (`--crowd N`: with N more floating IPs on its router, made by
    bulk creates): associate call returned -> first TCP connect from the
    outside answered; disassociate call returned -> last echo on an
    established connection (negative: before the call returned); move call
    returned -> first connect answered by the new instance.
(b) scale, at the agent with a built model: N floating IPs on one router;
    associating and disassociating one (the router step: one nft transaction,
    conntrack, gratuitous ARP; and the agent's whole apply), a full router
    rebuild (table deleted by hand) and a restart's resync, and the latency
    of new connections from the outside to a floating IP.
Needs root; leaves nothing behind.

    .venv/bin/python -m bench.floatingips [--runs 20] [--crowd 50000] [--scale 10000 50000]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.api import latencies, remove_namespaces, wait_for_address
from neutrino.agent import Agent
from neutrino.agent.drivers.netns import NetnsThread
from neutrino.agent.drivers.routers import Namespace
from neutrino.client import Cloud, Session
from neutrino.lab import models
from neutrino.lab.tutorial import Tutorial
from neutrino.plan import HostConfig, compile_host, names

# Answers each connection with its name, then echoes.
SERVER = (
    "import socket,sys,threading\n"
    "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind(('0.0.0.0',7));s.listen(512)\n"
    "def serve(c):\n try:\n  c.sendall(sys.argv[1].encode()+b'\\n')\n"
    "  while (d:=c.recv(64)): c.sendall(d)\n"
    " except OSError:\n  pass\n"
    "while True:\n c,_=s.accept();threading.Thread(target=serve,args=(c,),daemon=True).start()\n"
)


class Outside:
    """TCP clients made inside the outside namespace."""

    def __init__(self, netns: str) -> None:
        self.worker = NetnsThread(netns)

    def socket(self) -> socket.socket:
        return self.worker.call(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))

    def connect(self, address: str, timeout: float) -> tuple[socket.socket, str] | None:
        """A connection to address:7 and the name its server gave, or None."""
        sock = self.socket()
        sock.settimeout(timeout)
        try:
            sock.connect((address, 7))
            return sock, sock.recv(64).decode().strip()
        except OSError:
            sock.close()
            return None

    def first_answer(self, address: str, want: str, seconds: float = 10.0) -> float:
        """Connect every few ms until `want` answers; the monotonic time it did."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.connect(address, 0.005)
            if found is not None:
                found[0].close()
                if found[1] == want:
                    return time.monotonic()
        raise TimeoutError(f"{want} never answered at {address}")

    def close(self) -> None:
        self.worker.close()


def echo_until_lost(
    sock: socket.socket, after: Callable[[], None], seconds: float = 1.0
) -> tuple[float, float]:
    """Echo a byte every ms on `sock`, call `after` in between.

    Returns (when it returned, the last echo).
    """
    sock.settimeout(1.0)
    last = time.monotonic()
    for _ in range(20):  # warm: the path works
        sock.sendall(b"x")
        sock.recv(1)
        last = time.monotonic()
    sock.settimeout(0.002)
    after()
    returned = time.monotonic()
    while time.monotonic() < returned + seconds:
        try:
            sock.sendall(b"x")
            if sock.recv(1) == b"x":
                last = time.monotonic()
        except OSError:
            pass
        time.sleep(0.001)
    return returned, last


def crowd_router(session: Session, router_id: str, count: int) -> float:
    """`count` more floating IPs on the router, each mapped to a port of a /16 behind it, made
    by bulk creates of 1,000; the seconds until the agent reported the last one ACTIVE."""
    net = session.endpoint("network") + "/v2.0"

    def post(collection: str, body: Any) -> Any:
        # A bulk create of 1,000 takes its time on a crowded, loaded machine.
        reply = session.call("POST", f"{net}/{collection}", json={collection: body}, timeout=600)
        return reply[collection]

    ext = session.call("GET", f"{net}/networks", params={"name": "ext_net"})["networks"][0]
    wide = post("subnets", [{"network_id": ext["id"], "cidr": "100.64.0.0/16", "ip_version": 4}])
    inner = post("networks", [{"name": "crowd"}])[0]
    session.call(
        "PUT",
        f"{net}/quotas/{inner['project_id']}",
        json={"quota": {"port": -1, "floatingip": -1}},
    )
    subnet = post(
        "subnets", [{"network_id": inner["id"], "cidr": "172.20.0.0/16", "ip_version": 4}]
    )
    session.call(
        "PUT",
        f"{net}/routers/{router_id}/add_router_interface",
        json={"subnet_id": subnet[0]["id"]},
    )
    started = time.monotonic()
    for done in range(0, count, 1000):
        ports = post("ports", [{"network_id": inner["id"]} for _ in range(min(1000, count - done))])
        fips = post(
            "floatingips",
            [
                {"floating_network_id": ext["id"], "subnet_id": wide[0]["id"], "port_id": p["id"]}
                for p in ports
            ],
        )
    while session.call("GET", f"{net}/floatingips/{fips[-1]['id']}")["floatingip"]["status"] != (
        "ACTIVE"
    ):
        time.sleep(0.5)
    return time.monotonic() - started


def bench_convergence(state: Path, prefix: str, runs: int, crowd: int) -> dict[str, Any]:
    bind = f"127.0.0.1:{20000 + secrets.randbelow(20000)}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "neutrino",
            "serve",
            "--bind",
            bind,
            "--state-dir",
            str(state),
            "--host",
            "bench",
            "--netns-prefix",
            prefix,
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers: list[subprocess.Popen[bytes]] = []
    outside: Outside | None = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://{bind}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        session = Session(Cloud.load("neutrino-admin", state / "clouds.yaml"))
        built = Tutorial(session).up(lambda _step: None)
        net, lab = session.endpoint("network") + "/v2.0", session.endpoint("lab") + "/v1"
        vms = {
            name: session.call("GET", f"{lab}/instances/{name}")["instance"]
            for name in ("cirros-vm2", "cirros-vm3")
        }
        group = session.call("GET", f"{net}/security-groups", params={"name": "lab-web"})[
            "security_groups"
        ][0]
        session.call(
            "POST",
            f"{net}/security-group-rules",
            json={
                "security_group_rule": {
                    "security_group_id": group["id"],
                    "direction": "ingress",
                    "protocol": "tcp",
                    "port_range_min": 7,
                    "port_range_max": 7,
                }
            },
        )
        for name, vm in vms.items():
            servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", vm["netns"], sys.executable, "-c", SERVER, name]
                )
            )
        fip = session.call(
            "GET", f"{net}/floatingips", params={"floating_ip_address": built.floating_ip}
        )["floatingips"][0]
        address = built.floating_ip
        crowded = crowd_router(session, fip["router_id"], crowd) if crowd else None
        outside = Outside(f"{prefix}nout-default")
        outside.first_answer(address, "cirros-vm3", 30)

        def point(vm: str | None) -> None:
            port = vms[vm]["port_ids"][0] if vm else None
            session.call(
                "PUT", f"{net}/floatingips/{fip['id']}", json={"floatingip": {"port_id": port}}
            )

        associate, disassociate, move = [], [], []
        for _ in range(runs):
            point(None)
            time.sleep(0.2)
            point("cirros-vm3")
            returned = time.monotonic()
            associate.append(outside.first_answer(address, "cirros-vm3") - returned)
            found = outside.connect(address, 1.0)
            assert found is not None
            returned, last = echo_until_lost(found[0], lambda: point(None))
            found[0].close()
            disassociate.append(last - returned)
            point("cirros-vm3")
            outside.first_answer(address, "cirros-vm3")
            point("cirros-vm2")
            returned = time.monotonic()
            move.append(outside.first_answer(address, "cirros-vm2") - returned)
            point("cirros-vm3")
            outside.first_answer(address, "cirros-vm3")
        return {
            "floatingips_on_the_router": crowd + 1,
            "crowd_created_and_active_s": crowded and round(crowded, 1),
            "load_average": [round(value, 2) for value in os.getloadavg()],
            "associate_to_first_connect": latencies(associate),
            "disassociate_to_last_echo": latencies(disassociate),
            "move_to_first_connect_on_new_instance": latencies(move),
        }
    finally:
        if outside is not None:
            outside.close()
        for process in servers:
            process.kill()
            process.wait()
        server.terminate()
        server.wait(10)
        Agent(HostConfig.isolated("bench", prefix=prefix), state / "agent").teardown()


def scale_model(host: HostConfig, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tutorial plus `count` ports on a /16 behind the router, each with a floating IP."""
    model = models.tutorial(host.name, vms=1)
    ext, rtr = model["networks"][0], model["routers"][0]
    wide = models.subnet(ext, "100.64.0.0/16", enable_dhcp=False)
    inner = models.network("vlan", 150, name="scale")
    inner_sub = models.subnet(inner, "172.20.0.0/16", enable_dhcp=False)
    hosts = ipaddress.ip_network("172.20.0.0/16").hosts()
    floating = ipaddress.ip_network("100.64.0.0/16").hosts()
    next(hosts), next(floating)  # the gateways
    ports = [models.port(inner, inner_sub, str(next(hosts))) for _ in range(count)]
    fips = [models.floatingip(str(next(floating)), ext, rtr, port) for port in ports]
    fips.append(models.floatingip("10.10.10.3", ext, rtr, model["ports"][3]))  # the instance's
    model["networks"].append(inner)
    model["subnets"] += [wide, inner_sub]
    model["ports"] += [models.router_interface(rtr, inner, inner_sub), *ports]
    model["floatingips"] = fips
    return model, fips


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def connect_latency(outside: Outside, address: str, runs: int = 200) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        found = outside.connect(address, 1.0)
        samples.append(time.perf_counter() - started)
        assert found is not None
        found[0].close()
    return latencies(samples)


def bench_scale(host: HostConfig, state: Path, count: int) -> dict[str, Any]:
    model, fips = scale_model(host, count)
    agent = Agent(host, state)
    outside: Outside | None = None
    server: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        report = agent.sync(model)
        first = time.perf_counter() - started
        assert not report.errors, report.errors
        vm = names.instance_netns(host, model["instances"][0]["id"])
        wait_for_address(vm, "172.16.101.3")
        server = subprocess.Popen(["ip", "netns", "exec", vm, sys.executable, "-c", SERVER, "vm"])
        outside = Outside(str(host.physnets["default"].outside_netns))
        outside.first_answer("10.10.10.3", "vm", 20)
        latency = connect_latency(outside, "10.10.10.3")

        transactions: list[float] = []
        original = Namespace.apply

        def timed_apply(space: Namespace, commands: list[dict[str, Any]]) -> None:
            transactions.append(timed(lambda: original(space, commands)))

        Namespace.apply = timed_apply  # type: ignore[method-assign]
        steps: dict[str, list[float]] = {"disassociate": [], "associate": []}
        applies: dict[str, list[float]] = {"disassociate": [], "associate": []}
        nft: dict[str, list[float]] = {"disassociate": [], "associate": []}
        vm_fip, vm_port = fips[-1], model["ports"][3]
        try:
            for run in range(30):
                for action in ("disassociate", "associate"):
                    on = action == "associate"
                    vm_fip.update(
                        port_id=vm_port["id"] if on else None,
                        router_id=model["routers"][0]["id"] if on else None,
                        fixed_ip_address="172.16.101.3" if on else None,
                    )
                    desired = compile_host(model, host)
                    transactions.clear()
                    if run % 2:
                        applies[action].append(
                            timed(lambda d=desired: agent.apply(d, verify=False))
                        )
                    else:
                        steps[action].append(
                            timed(
                                lambda d=desired: agent.routers.ensure_all(
                                    d.routers, (), verify=False
                                )
                            )
                        )
                    nft[action] += transactions
        finally:
            Namespace.apply = original  # type: ignore[method-assign]
        router = compile_host(model, host).routers[0]
        netns = router.netns
        subprocess.run(
            ["ip", "netns", "exec", netns, "nft", "delete", "table", "ip", "neutrino"], check=True
        )
        desired = compile_host(model, host)
        rebuild = timed(lambda: agent.apply(desired))
        agent.close()
        agent = Agent(host, state)
        restart = timed(lambda: agent.apply(desired))
        return {
            "floatingips": count + 1,
            "first_sync_s": round(first, 3),
            "nft_transaction": {action: latencies(samples) for action, samples in nft.items()},
            "router_step": {action: latencies(samples) for action, samples in steps.items()},
            "agent_apply": {action: latencies(samples) for action, samples in applies.items()},
            "rebuild_after_table_deleted_s": round(rebuild, 3),
            "restart_resync_s": round(restart, 3),
            "new_connection_latency": latency,
            "load_average": [round(value, 2) for value in os.getloadavg()],
        }
    finally:
        if outside is not None:
            outside.close()
        if server is not None:
            server.kill()
            server.wait()
        agent.teardown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--crowd", type=int, default=0, help="(a) with this many more on the router"
    )
    parser.add_argument("--scale", type=int, nargs="*", default=[10, 10000, 50000])
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates network namespaces")
    prefix = f"bf{secrets.token_hex(3)}-"
    result: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as state:
            if args.runs:
                result["convergence"] = bench_convergence(
                    Path(state) / "server", prefix, args.runs, args.crowd
                )
            result["scale"] = [
                bench_scale(
                    HostConfig.isolated(f"s{count}", prefix=prefix), Path(state) / str(count), count
                )
                for count in args.scale
            ]
    finally:
        remove_namespaces(prefix)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
