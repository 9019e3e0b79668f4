"""What implements a router, a floating IP, a port or a load balancer, read from the kernel.

Each answer pairs kernel objects (namespaces, interfaces, addresses, routes,
nft rules and map elements, conntrack entries, processes and what they
serve) with the logical resource they belong to. The logical model says where
to look; everything shown about the kernel is what the kernel says now, not
what the database wants. The agent of the host concerned answers, from its
copy of the model and the namespaces it made.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino import errors
from neutrino.agent.drivers import conntrack, haproxy
from neutrino.lab.lookup import find_one
from neutrino.plan import firewall, metering, names
from neutrino.plan import l4 as l4_table
from neutrino.plan.loadbalancer import vip_interface
from neutrino.plan.routers import FIP_DNAT, FIP_SNAT, GATEWAY, ROUTER_OWNERS, TABLE

Model = dict[str, Any]
CONNTRACK_SHOWN = 100


@dataclass(frozen=True)
class Realized:
    """What this agent works from: its copy of the model (read when asked: copying 100,000
    resources after every change of the feed would cost more than the change), its host, the
    namespace that is the host's data plane (None: the root one) and the namespaces its last
    sync made, by kind ("routers", "loadbalancers", "instances") and id."""

    read_model: Callable[[], Model]
    host: str
    host_netns: str | None
    namespaces: dict[str, dict[str, str]]

    @property
    def model(self) -> Model:
        return self.read_model()

    def netns(self, kind: str, resource_id: str) -> str:
        """The namespace of a router or load balancer (`kind`: "routers", "loadbalancers")."""
        found = self.namespaces.get(kind, {}).get(resource_id)
        if found is None:
            raise errors.Conflict(f"Host {self.host} has not realized {kind[:-1]} {resource_id}.")
        return found


def _run(netns: str | None, argv: list[str]) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=10, check=False)


def interfaces(netns: str | None, *only: str) -> list[dict[str, Any]]:
    """Links with their addresses, master and state (`only` these names, when given); the
    IPv6 link-local address apart (a router's is its hosts' default route)."""
    done = _run(netns, ["ip", "-j", "-d", "addr", "show"])
    found = []
    for link in json.loads(done.stdout or "[]"):
        if only and link["ifname"] not in only:
            continue
        found.append(
            {
                "name": link["ifname"],
                "kind": (link.get("linkinfo") or {}).get("info_kind"),
                "mac": link.get("address"),
                "state": link.get("operstate"),
                "master": link.get("master"),
                "addresses": [
                    f"{a['local']}/{a['prefixlen']}"
                    for a in link.get("addr_info", [])
                    if a.get("scope") == "global"
                ],
                "link_local": next(
                    (
                        f"{a['local']}/{a['prefixlen']}"
                        for a in link.get("addr_info", [])
                        if a.get("family") == "inet6" and a.get("scope") == "link"
                    ),
                    None,
                ),
            }
        )
    return found


def routes(netns: str) -> list[dict[str, Any]]:
    """IPv4's routes, then IPv6's, but the link-local prefix every interface has."""
    found = []
    for version in (4, 6):
        done = _run(netns, ["ip", "-j", f"-{version}", "route", "show"])
        found += [
            {
                "destination": r["dst"],
                "via": r.get("gateway"),
                "device": r.get("dev"),
                "protocol": r.get("protocol"),
                "source": r.get("prefsrc"),
                "ip_version": version,
            }
            for r in json.loads(done.stdout or "[]")
            if r["dst"] != "fe80::/64"
        ]
    return found


def local_routes(netns: str, *only: str) -> dict[str, str]:
    """The floating IPs the router answers for (its static local routes), each with the
    interface holding it (`only` these addresses, when given)."""
    done = _run(netns, ["ip", "-j", "-4", "route", "show", "table", "local", "proto", "static"])
    return {
        r["dst"]: r["dev"]
        for r in json.loads(done.stdout or "[]")
        if r.get("type") == "local" and (not only or r["dst"] in only)
    }


def nat_rules(netns: str) -> str:
    """The router's NAT table without its map elements."""
    return _run(netns, ["nft", "-t", "list", "table", "ip", TABLE]).stdout


def map_elements(netns: str, name: str) -> dict[str, str]:
    done = _run(netns, ["nft", "-j", "list", "map", "ip", TABLE, name])
    for item in json.loads(done.stdout or '{"nftables": []}')["nftables"]:
        if "map" in item:
            return {str(k): str(v) for k, v in item["map"].get("elem", [])}
    return {}


def metering_counters(netns: str, labels: list[Model]) -> list[dict[str, Any]]:
    """What each metering label has counted in the router: its counter in the metering table."""
    done = _run(netns, ["nft", "-j", "list", "counters", "table", metering.FAMILY, metering.TABLE])
    counted = {
        item["counter"]["name"]: item["counter"]
        for item in json.loads(done.stdout or '{"nftables": []}')["nftables"]
        if "counter" in item
    }
    return [
        {
            "metering_label_id": label["id"],
            "name": label["name"],
            "packets": counted[name]["packets"],
            "bytes": counted[name]["bytes"],
        }
        for label in sorted(labels, key=lambda label: label["id"])
        if (name := metering.counter_name(label["id"])) in counted
    ]


def _forwarding(netns: str, version: int = 4) -> bool:
    path = "ipv4/ip_forward" if version == 4 else "ipv6/conf/all/forwarding"
    return _run(netns, ["cat", f"/proc/sys/net/{path}"]).stdout.strip() == "1"


def _port_names(port: Model) -> tuple[str, str | None]:
    """(host-side device, the name of its far end when we make it)."""
    owner = port.get("device_owner")
    if owner == GATEWAY:
        return names.tap(port["id"]), names.router_gateway(port["id"])
    if owner in ROUTER_OWNERS:
        return names.tap(port["id"]), names.router_interface(port["id"])
    if owner == "network:dhcp":
        return names.tap(port["id"]), names.dhcp_interface(port["id"])
    return names.device(port), None


def _host_side(view: Realized, port: Model) -> dict[str, Any]:
    device, _ = _port_names(port)
    netns = view.host_netns
    found = interfaces(netns, device)
    return {
        "netns": netns,
        "device": device,
        "network_id": port["network_id"],
        "bridge": names.bridge(port["network_id"]),
        "link": found[0] if found else None,
    }


def router(view: Realized, ref: str) -> dict[str, Any]:
    model = view.model
    rtr = find_one(model["routers"], ref, "router", "name")
    where, netns = view.host, view.netns("routers", rtr["id"])
    ports = [
        p
        for p in model["ports"]
        if p.get("device_id") == rtr["id"] and p["device_owner"] in ROUTER_OWNERS
    ]
    present = {link["name"]: link for link in interfaces(netns)}
    dnat, snat = map_elements(netns, FIP_DNAT), map_elements(netns, FIP_SNAT)
    answered = local_routes(netns)
    fips = {f["floating_ip_address"]: f["id"] for f in model["floatingips"]}
    return {
        "router": {
            key: rtr.get(key)
            for key in ("id", "name", "admin_state_up", "external_gateway_info", "routes")
        },
        "host": where,
        "namespace": netns,
        "forwarding": _forwarding(netns),
        "ipv6_forwarding": _forwarding(netns, 6),
        "interfaces": [
            {
                "port_id": p["id"],
                "role": "gateway" if p["device_owner"] == GATEWAY else "interface",
                "subnet_ids": [ip["subnet_id"] for ip in p["fixed_ips"]],
                "link": present.get(_port_names(p)[1] or ""),
                "host_side": _host_side(view, p),
            }
            for p in sorted(ports, key=lambda p: p["device_owner"])
        ],
        "routes": routes(netns),
        "nat": {
            "table": nat_rules(netns),
            "floatingips": [
                {
                    "floating_ip_address": a,
                    "fixed_ip_address": fixed,
                    "snat_address": snat.get(fixed),
                    "local_route": answered.get(a),  # the interface answering for it
                    "floatingip_id": fips.get(a),
                }
                for a, fixed in sorted(dnat.items())
            ],
        },
        "metering": metering_counters(netns, model["metering_labels"]),
        "conntrack": conntrack.entries(netns)[:CONNTRACK_SHOWN],
    }


def floatingip(view: Realized, ref: str) -> dict[str, Any]:
    """An associated floating IP, from the router that holds it."""
    fip = find_one(view.model["floatingips"], ref, "floating IP", "floating_ip_address")
    address = fip["floating_ip_address"]
    answer: dict[str, Any] = {"floatingip": fip}
    where, netns = view.host, view.netns("routers", fip.get("router_id") or "")
    gateway = [link for link in interfaces(netns) if link["name"].startswith("qg-")]
    return {
        **answer,
        "associated": True,
        "host": where,
        "namespace": netns,
        "gateway_interface": gateway[0] if gateway else None,
        # The interface that answers for it (ARP, its packets): its local route's.
        "local_route": local_routes(netns, address).get(address),
        "nat": {
            FIP_DNAT: map_elements(netns, FIP_DNAT).get(address),
            FIP_SNAT: map_elements(netns, FIP_SNAT).get(fip.get("fixed_ip_address") or ""),
        },
        "conntrack": conntrack.entries(netns, address)[:CONNTRACK_SHOWN],
    }


def port(view: Realized, ref: str) -> dict[str, Any]:
    model = view.model
    found = find_one(model["ports"], ref, "port", "name")
    side = _host_side(view, found)
    hostns = side["netns"]
    far: dict[str, Any] | None = None
    instance = next((i for i in model["instances"] if found["id"] in i.get("port_ids", [])), None)
    inside = instance and view.namespaces.get("instances", {}).get(instance["id"])
    if instance and inside:
        far = {
            "instance_id": instance["id"],
            "netns": inside,
            "links": interfaces(inside, f"eth{instance['port_ids'].index(found['id'])}"),
        }
    elif found["device_owner"] in ROUTER_OWNERS:
        netns = view.netns("routers", found["device_id"])
        far = {
            "router_id": found["device_id"],
            "netns": netns,
            "links": interfaces(netns, _port_names(found)[1] or ""),
        }
    # The chains of its groups (those here), which the ports of the same groups share.
    groups = firewall.port_groups(found, {sg["id"] for sg in view.model["security_groups"]})
    named = {way: firewall.groups_chain(groups, way) for way in ("egress", "ingress")}
    chains = {
        way: _run(hostns, ["nft", "list", "chain", "bridge", firewall.TABLE, chain]).stdout
        for way, chain in named.items()
    }
    return {
        "port": {
            key: found.get(key)
            for key in (
                "id",
                "name",
                "network_id",
                "mac_address",
                "fixed_ips",
                "device_owner",
                "device_id",
                "status",
                "port_security_enabled",
                "security_groups",
                "allowed_address_pairs",
            )
        },
        "host_side": side,
        "far_end": far,
        "firewall": {d: text for d, text in chains.items() if text} or None,
        "floatingips": [f for f in model["floatingips"] if f.get("port_id") == found["id"]],
    }


def loadbalancer(view: Realized, ref: str) -> dict[str, Any]:
    model = view.model
    lb = find_one(model["loadbalancers"], ref, "load balancer", "name", "vip_address")
    where, netns = view.host, view.netns("loadbalancers", lb["id"])
    vip = find_one(model["ports"], lb["vip_port_id"], "port")
    process = haproxy.running_in(netns)
    _, rows = (
        haproxy.show(Path(process["stats_socket"]))
        if process and process["stats_socket"]
        else ({}, [])
    )
    listening = _run(netns, ["ss", "-H", "-l", "-t", "-n"]).stdout.split("\n")
    family = "ip6" if ":" in lb["vip_address"] else "ip"
    # UDP and SCTP listeners: their balancing, and their limits and counters
    l4, counting = (
        _run(netns, ["nft", "list", "table", family, table])
        for table in (l4_table.TABLE, l4_table.COUNTING)
    )
    return {
        "loadbalancer": {
            key: lb.get(key)
            for key in (
                "id",
                "name",
                "vip_address",
                "vip_port_id",
                "provisioning_status",
                "operating_status",
            )
        },
        "host": where,
        "namespace": netns,
        "vip_interface": next(iter(interfaces(netns, vip_interface(vip["id"]))), None),
        "routes": routes(netns),
        "listening": sorted(line.split()[3] for line in listening if line.strip()),
        "haproxy": process,
        "udp_sctp_balancing": l4.stdout if l4.returncode == 0 else None,
        "udp_sctp_counting": counting.stdout if counting.returncode == 0 else None,
        "frontends": [
            {
                "listener_id": r["pxname"],
                "state": r["status"],
                "open_connections": int(r["scur"] or 0),
                "connections": int(r["stot"] or 0),
            }
            for r in rows
            if r["svname"] == "FRONTEND"
        ],
        "servers": [
            {
                "pool_id": r["pxname"].split(":")[0],
                "listener_id": r["pxname"].split(":")[-1],
                "member_id": r["svname"],
                "address": r.get("addr"),
                "state": r["status"],
                "last_check": r.get("check_status") or None,
            }
            for r in rows
            if r["svname"] not in ("FRONTEND", "BACKEND")
        ],
        "host_side": _host_side(view, vip),
    }
