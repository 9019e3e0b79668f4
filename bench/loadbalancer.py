"""Load balancers: how fast one serves after it is asked for, and what it costs per request.

Starts `neutrino serve` with its embedded agent (isolated, a unique namespace
prefix), two web server instances and a client instance, then measures:

- `lb_create_to_active`: POST /loadbalancers returning -> provisioning_status ACTIVE;
- `lb_create_to_serving`: the whole S6 tree (load balancer, HTTP listener,
  round-robin pool, two members, each call made as soon as the previous one
  is ACTIVE) from the first POST to the first answer through the VIP;
- `lb_populated_to_serving`: the same tree in one fully populated POST, to
  the first answer;
- `rps`: HTTP requests per second from the client to one member directly
  and through a VIP whose pool holds only that member (same client,
  keep-alive connections from it, ApacheBench when installed), for two web
  servers on each member: S6's own (busybox httpd, a process per connection)
  and a keep-alive microserver answering from memory, the worst case for any
  proxy. Direct and via-VIP alternate, `--pairs` times, so that both see the
  same load of a shared machine; `ratio` is the median of the pairs' ratios.
  On two cores both paths are CPU-bound, so the ratio is close to the ratio
  of CPU spent per request: directly, client and server (and two frames
  through the bridge); through the VIP, haproxy's four socket operations and
  HTTP parsing on top, and two frames more. Next to the microserver's ~10 us
  a request, haproxy's ~14 us weigh heavily; haproxy on loopback in front of
  it gives about the same ratio, so the bridge and its firewall are not what
  makes the difference. A third series asks the microserver through a
  TERMINATED_HTTPS listener (its certificate stored in the key manager):
  haproxy decrypts each request and encrypts each answer, the client too.
- `udp_rps`: UDP requests (a datagram and its answer) per second from the
  client to WEB1's echo server directly and through a UDP listener whose
  pool holds only it, alternating likewise. Through the VIP the kernel
  forwards in the load balancer's namespace (nftables DNAT and masquerade,
  conntrack's established fast path after a flow's first datagram): no
  process is woken on the way.

Prints JSON; removes everything it made. Needs root.

    .venv/bin/python -m bench.loadbalancer [--runs 5] [--seconds 3] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.api import Api, dataplane_server, latencies

# Each member runs both: S6's web server on port 80 and the microserver on 8000; WEB1 also
# echoes UDP on 5300.
S6_PORT, MICRO_PORT, UDP_PORT = 80, 8000, 5300
# A UDP server answering each datagram with itself, on argv[1].
UDP_SERVER = """import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""
# argv: address port seconds processes; prints UDP requests (datagram and answer) per second.
UDP_CLIENT = """import multiprocessing, socket, sys, time
address, port = sys.argv[1], int(sys.argv[2])
seconds, processes = float(sys.argv[3]), int(sys.argv[4])
def run(done):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1)
    s.connect((address, port))
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        s.send(b"?")
        try:
            s.recv(64)
            count += 1
        except TimeoutError:
            pass
    done.put(count)
done = multiprocessing.Queue()
workers = [multiprocessing.Process(target=run, args=(done,)) for _ in range(processes)]
for w in workers: w.start()
total = sum(done.get() for _ in workers)
for w in workers: w.join()
print(total / seconds)
"""
CONNECTIONS = 16
# A keep-alive HTTP/1.1 server answering its name (argv[1]) on argv[2].
SERVER = (
    """import asyncio, sys
body = sys.argv[1].encode() + b"\\n"
answer = b"HTTP/1.1 200 OK\\r\\nConnection: keep-alive\\r\\n"""
    """Content-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body)
async def serve(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", int(sys.argv[2]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""
)
# argv: scheme address port seconds processes; prints requests per second over keep-alive
# connections (https: over TLS, the certificate unchecked).
CLIENT = (
    """import multiprocessing, socket, ssl, sys, time
scheme, address, port, seconds, processes = """
    """sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
request = b"GET / HTTP/1.1\\r\\nHost: bench\\r\\n\\r\\n"
def run(done):
    s = socket.create_connection((address, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if scheme == "https":
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        s = tls.wrap_socket(s, server_hostname="bench")
    count, end, data = 0, time.monotonic() + seconds, b""
    while time.monotonic() < end:
        s.sendall(request)
        while b"\\r\\n\\r\\n" not in data:
            data += s.recv(4096)
        head, _, data = data.partition(b"\\r\\n\\r\\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
        while len(data) < length:
            data += s.recv(4096)
        data = data[length:]
        count += 1
    done.put(count)
done = multiprocessing.Queue()
workers = [multiprocessing.Process(target=run, args=(done,)) for _ in range(processes)]
for w in workers: w.start()
total = sum(done.get() for _ in workers)
for w in workers: w.join()
print(total / seconds)
"""
)


def lbaas(
    api: Api, kind: str, body: dict[str, Any], lb_id: str | None = None, parent: str = ""
) -> dict[str, Any]:
    """Create one object; once the load balancer is ACTIVE again, the next may follow."""
    created = api.post(f"/load-balancer/v2/lbaas/{parent}{kind}s", {kind: body})
    api.wait(
        f"/load-balancer/v2/lbaas/loadbalancers/{lb_id or created['id']}",
        "provisioning_status",
        "ACTIVE",
    )
    return created


def in_netns(netns: str, *argv: str, timeout: float = 60) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout.strip()


def answers(client: str, address: str, port: int = 80, scheme: str = "http") -> bool:
    return (
        subprocess.run(
            [
                *("ip", "netns", "exec", client, "curl", "-s", "-k", "-m", "0.2"),
                *("-o", "/dev/null", f"{scheme}://{address}:{port}/"),
            ],
            timeout=5,
            check=False,
        ).returncode
        == 0
    )


def setup(api: Api, tmp: Path) -> dict[str, Any]:
    net = api.post("/networking/v2.0/networks", {"network": {"name": "bench-lb"}})
    subnet = api.post(
        "/networking/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.124.0.0/24", "ip_version": 4}},
    )
    group = next(
        g
        for g in api.http.get("/networking/v2.0/security-groups").json()["security_groups"]
        if g["name"] == "default"
    )
    for protocol, port in (("tcp", S6_PORT), ("tcp", MICRO_PORT), ("udp", UDP_PORT)):
        api.post(
            "/networking/v2.0/security-group-rules",
            {
                "security_group_rule": {
                    "security_group_id": group["id"],
                    "direction": "ingress",
                    "protocol": protocol,
                    "port_range_min": port,
                    "port_range_max": port,
                    "remote_ip_prefix": "10.124.0.0/24",
                }
            },
        )
    script, udp_script = tmp / "web.py", tmp / "udp.py"
    script.write_text(SERVER)
    udp_script.write_text(UDP_SERVER)
    vms = {}
    for name, address in (
        ("WEB1", "10.124.0.11"),
        ("WEB2", "10.124.0.12"),
        ("CLIENT", "10.124.0.20"),
    ):
        vm = api.post(
            "/lab/v1/instances",
            {
                "instance": {
                    "name": name,
                    "networks": [{"network_id": net["id"], "fixed_ip": address}],
                }
            },
        )
        vms[name] = api.wait(f"/lab/v1/instances/{vm['id']}", "status", "ACTIVE")
        vms[name]["ip"] = address
    for name in ("WEB1", "WEB2"):
        root = tmp / name
        root.mkdir()
        (root / "index.html").write_text(f"{name}\n")
        api.post(
            f"/lab/v1/instances/{vms[name]['id']}/exec",
            {
                "command": [
                    "sh",
                    "-c",
                    (
                        f"nohup {sys.executable} {script} {name} {MICRO_PORT} >/dev/null 2>&1 & "
                        f"nohup {sys.executable} {udp_script} {UDP_PORT} >/dev/null 2>&1 & "
                        f"busybox httpd -p {S6_PORT} -h {root}"
                    ),
                ]
            },
        )
        for port in (S6_PORT, MICRO_PORT):
            while not answers(vms["CLIENT"]["netns"], vms[name]["ip"], port):
                time.sleep(0.05)
    return {"subnet": subnet, **vms}


def measure(
    api: Api, world: dict[str, Any], runs: int, seconds: float, pairs: int
) -> dict[str, Any]:
    client, subnet_id = world["CLIENT"]["netns"], world["subnet"]["id"]
    to_active, to_serving, populated = [], [], []
    for run in range(runs):
        started = time.monotonic()
        lb = api.post(
            "/load-balancer/v2/lbaas/loadbalancers",
            {"loadbalancer": {"name": f"bench-{run}", "vip_subnet_id": subnet_id}},
        )
        api.wait(
            f"/load-balancer/v2/lbaas/loadbalancers/{lb['id']}", "provisioning_status", "ACTIVE"
        )
        to_active.append(time.monotonic() - started)
        started = time.monotonic()
        lb = lbaas(api, "loadbalancer", {"name": f"bench-tree-{run}", "vip_subnet_id": subnet_id})
        listener = lbaas(
            api,
            "listener",
            {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80},
            lb["id"],
        )
        pool = lbaas(
            api,
            "pool",
            {"listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
            lb["id"],
        )
        for name in ("WEB1", "WEB2"):
            lbaas(
                api,
                "member",
                {"address": world[name]["ip"], "protocol_port": S6_PORT, "subnet_id": subnet_id},
                lb["id"],
                parent=f"pools/{pool['id']}/",
            )
        while not answers(client, lb["vip_address"]):
            time.sleep(0.001)
        to_serving.append(time.monotonic() - started)
        started = time.monotonic()
        members = [
            {"address": world[name]["ip"], "protocol_port": S6_PORT} for name in ("WEB1", "WEB2")
        ]
        whole = api.post(
            "/load-balancer/v2/lbaas/loadbalancers",
            {
                "loadbalancer": {
                    "name": f"bench-one-{run}",
                    "vip_subnet_id": subnet_id,
                    "listeners": [
                        {
                            "protocol": "HTTP",
                            "protocol_port": 80,
                            "default_pool": {
                                "protocol": "HTTP",
                                "lb_algorithm": "ROUND_ROBIN",
                                "members": members,
                            },
                        }
                    ],
                }
            },
        )
        while not answers(client, whole["vip_address"]):
            time.sleep(0.001)
        populated.append(time.monotonic() - started)
    # The last tree serves the throughput test, its pool reduced to WEB1 alone; a second
    # listener's pool has WEB1's microserver.
    members = api.http.get(f"/load-balancer/v2/lbaas/pools/{pool['id']}/members").json()["members"]
    web2 = next(m for m in members if m["address"] == world["WEB2"]["ip"])
    api.http.delete(
        f"/load-balancer/v2/lbaas/pools/{pool['id']}/members/{web2['id']}"
    ).raise_for_status()
    api.wait(f"/load-balancer/v2/lbaas/loadbalancers/{lb['id']}", "provisioning_status", "ACTIVE")
    micro = lbaas(
        api,
        "listener",
        {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 8080},
        lb["id"],
    )
    micro_pool = lbaas(
        api,
        "pool",
        {"listener_id": micro["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
        lb["id"],
    )
    lbaas(
        api,
        "member",
        {"address": world["WEB1"]["ip"], "protocol_port": MICRO_PORT, "subnet_id": subnet_id},
        lb["id"],
        parent=f"pools/{micro_pool['id']}/",
    )
    while not answers(client, lb["vip_address"], 8080):
        time.sleep(0.01)
    lbaas(
        api,
        "listener",
        {
            "loadbalancer_id": lb["id"],
            "protocol": "TERMINATED_HTTPS",
            "protocol_port": 8443,
            "default_pool_id": micro_pool["id"],
            "default_tls_container_ref": store_certificate(api),
        },
        lb["id"],
    )
    while not answers(client, lb["vip_address"], 8443, "https"):
        time.sleep(0.01)
    rps = {}
    for server, member_port, vip_scheme, vip_port in (
        ("s6_busybox_httpd", S6_PORT, "http", 80),
        ("keepalive_microserver", MICRO_PORT, "http", 8080),
        ("keepalive_microserver_terminated_https", MICRO_PORT, "https", 8443),
    ):
        rps[server] = alternating(
            partial(requests_per_second, client, "http", world["WEB1"]["ip"], member_port, seconds),
            partial(requests_per_second, client, vip_scheme, lb["vip_address"], vip_port, seconds),
            pairs,
        )
    udp = lbaas(
        api,
        "listener",
        {"loadbalancer_id": lb["id"], "protocol": "UDP", "protocol_port": UDP_PORT},
        lb["id"],
    )
    udp_pool = lbaas(
        api,
        "pool",
        {"listener_id": udp["id"], "protocol": "UDP", "lb_algorithm": "ROUND_ROBIN"},
        lb["id"],
    )
    lbaas(
        api,
        "member",
        {"address": world["WEB1"]["ip"], "protocol_port": UDP_PORT, "subnet_id": subnet_id},
        lb["id"],
        parent=f"pools/{udp_pool['id']}/",
    )
    udp_rps = alternating(
        partial(udp_requests_per_second, client, world["WEB1"]["ip"], seconds),
        partial(udp_requests_per_second, client, lb["vip_address"], seconds),
        pairs,
    )
    return {
        "lb_create_to_active": latencies(to_active),
        "lb_create_to_serving": latencies(to_serving),
        "lb_populated_to_serving": latencies(populated),
        "rps": rps,
        "udp_rps": udp_rps,
        "client": "ab" if shutil.which("ab") else "python",
        "client_connections": CONNECTIONS,
    }


def store_certificate(api: Api) -> str:
    """A self-signed certificate and its key, in a certificate container of the key manager."""
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
                *("ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=bench", "-days", "1"),
                *("-keyout", f"{scratch}/key.pem", "-out", f"{scratch}/cert.pem"),
            ],
            capture_output=True,
            check=True,
        )
        parts = {"certificate": "cert.pem", "private_key": "key.pem"}
        refs = [
            {
                "name": name,
                "secret_ref": str(
                    api.post(
                        "/key-manager/v1/secrets",
                        {
                            "payload": Path(scratch, file).read_text(),
                            "payload_content_type": "text/plain",
                        },
                    )
                ),
            }
            for name, file in parts.items()
        ]
    return str(api.post("/key-manager/v1/containers", {"type": "certificate", "secret_refs": refs}))


def alternating(
    direct: Callable[[], float], via_vip: Callable[[], float], pairs: int
) -> dict[str, Any]:
    """Requests/s straight to a member and through the VIP, measured in turn (so that the
    machine's load weighs on both alike), as medians and the ratio of each pair."""
    straight, through = [], []
    for _ in range(pairs):
        straight.append(direct())
        through.append(via_vip())
    ratios = [round(v / d, 3) for d, v in zip(straight, through)]
    return {
        "direct": round(statistics.median(straight)),
        "via_vip": round(statistics.median(through)),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


def requests_per_second(client: str, scheme: str, address: str, port: int, seconds: float) -> float:
    """ApacheBench when installed (its own CPU cost is small next to the path measured), else
    Python."""
    if shutil.which("ab"):
        out = in_netns(
            client,
            "ab",
            "-q",
            "-k",
            "-c",
            str(CONNECTIONS),
            "-t",
            str(round(seconds)),
            "-n",
            "10000000",
            f"{scheme}://{address}:{port}/",
        )
        return float(
            next(
                line for line in out.splitlines() if line.startswith("Requests per second")
            ).split()[3]
        )
    script = Path(tempfile.mkdtemp()) / "client.py"
    script.write_text(CLIENT)
    return float(
        in_netns(
            client,
            *(sys.executable, str(script), scheme, address, str(port)),
            *(str(seconds), str(CONNECTIONS)),
        )
    )


def udp_requests_per_second(client: str, address: str, seconds: float) -> float:
    script = Path(tempfile.mkdtemp()) / "udp_client.py"
    script.write_text(UDP_CLIENT)
    return float(
        in_netns(
            client,
            sys.executable,
            str(script),
            address,
            str(UDP_PORT),
            str(seconds),
            str(CONNECTIONS),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--pairs", type=int, default=3, help="direct / via VIP measurements, alternating"
    )
    args = parser.parse_args()
    with dataplane_server("bl") as (server, scratch):
        api = Api(server.url, server.token)
        world = setup(api, scratch)
        result = {
            "benchmark": "loadbalancer",
            **measure(api, world, args.runs, args.seconds, args.pairs),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
