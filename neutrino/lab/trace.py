"""The path of a packet from an instance to an address, hop by hop, confirmed.

The path is computed from the logical model, as the data plane realizes it:
the instance's eth0, its tap on the network's bridge, and then either the
destination on the same network, or the router that holds the subnet's
gateway: its `qr-`, the NAT decision (DNAT of a floating IP, SNAT to the
instance's floating IP or to the router's gateway address), then another
`qr-` or the `qg-` to the external network and the outside.

A real probe (ping, or a TCP connect) then confirms it: while it is sent,
a short-lived nft table in the router's namespace sets `nftrace` on the
probe's packets, and `nft monitor trace` reports every chain and rule they
meet there, including the NAT rule that matched. The probe is sent by the
agent of the instance's host (neutrino.agent.trace); the path is computed here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from neutrino import errors
from neutrino.db import Database
from neutrino.lab import outside
from neutrino.plan import names
from neutrino.plan.routers import GATEWAY, INTERFACE
from neutrino.services import feed

Model = dict[str, Any]
# Asks the agent of a host (the first argument) to send a probe (neutrino.agent.trace.probe).
Probe = Callable[[str, dict[str, Any]], dict[str, Any]]


def _in(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def _hop(hop: str, **fields: Any) -> dict[str, Any]:
    return {"hop": hop, **{k: v for k, v in fields.items() if v is not None}}


class Path:
    """The hops of one packet, computed from the model."""

    def __init__(self, model: Model, instance: Model, destination: str) -> None:
        self.model = model
        self.subnets = {s["id"]: s for s in model["subnets"]}
        self.ports = model["ports"]
        self.hops: list[dict[str, Any]] = []
        self.router: Model | None = None
        self.nat = "none"
        port = next(p for p in self.ports if p["id"] in instance["port_ids"])
        fixed = next(ip for ip in port["fixed_ips"] if ":" not in ip["ip_address"])
        self.source, self.source_port = fixed["ip_address"], port
        subnet = self.subnets[fixed["subnet_id"]]
        self.hops += [
            _hop(
                "instance",
                name=instance.get("name"),
                instance_id=instance["id"],
                netns=instance.get("netns"),
                device="eth0",
                address=self.source,
            ),
            _hop("tap", device=names.tap(port["id"]), port_id=port["id"]),
            _hop("bridge", device=names.bridge(port["network_id"]), network_id=port["network_id"]),
        ]
        if _in(destination, subnet["cidr"]):
            self._deliver(destination, port["network_id"])
        else:
            self._route(destination, subnet)

    def _deliver(self, address: str, network_id: str) -> None:
        target = next(
            (
                p
                for p in self.ports
                if p["network_id"] == network_id
                and any(ip["ip_address"] == address for ip in p["fixed_ips"])
            ),
            None,
        )
        if target is None:
            self.hops.append(
                _hop(
                    "unknown",
                    address=address,
                    network_id=network_id,
                    note="no port holds this address",
                )
            )
            return
        self.hops.append(
            _hop(
                "tap",
                device=names.tap(target["id"]),
                port_id=target["id"],
                owner=target.get("device_owner"),
                address=address,
            )
        )

    def _route(self, destination: str, subnet: Model) -> None:
        router_port = next(
            (
                p
                for p in self.ports
                if p["device_owner"] == INTERFACE
                and any(ip["subnet_id"] == subnet["id"] for ip in p["fixed_ips"])
            ),
            None,
        )
        if router_port is None:
            self.hops.append(
                _hop("drop", note=f"no router has an interface on subnet {subnet['id']}")
            )
            return
        rtr = self.router = next(
            r for r in self.model["routers"] if r["id"] == router_port["device_id"]
        )
        self.hops.append(
            _hop(
                "router interface",
                device=names.router_interface(router_port["id"]),
                router_id=rtr["id"],
                port_id=router_port["id"],
                address=subnet["gateway_ip"],
            )
        )
        fips = [
            f
            for f in self.model["floatingips"]
            if f.get("router_id") == rtr["id"] and f.get("port_id")
        ]
        hairpin = next((f for f in fips if f["floating_ip_address"] == destination), None)
        if hairpin is not None:
            self.nat = (
                f"DNAT {destination} -> {hairpin['fixed_ip_address']} (map fip_dnat), "
                "SNAT to the router's gateway address (hairpin)"
            )
            self.hops.append(_hop("nat", decision=self.nat, floatingip_id=hairpin["id"]))
            destination = hairpin["fixed_ip_address"]
        own = [
            p for p in self.ports if p["device_id"] == rtr["id"] and p["device_owner"] == INTERFACE
        ]
        for port in own:
            for ip in port["fixed_ips"]:
                if _in(destination, self.subnets[ip["subnet_id"]]["cidr"]):
                    self.hops += [
                        _hop(
                            "router interface",
                            device=names.router_interface(port["id"]),
                            port_id=port["id"],
                        ),
                        _hop(
                            "bridge",
                            device=names.bridge(port["network_id"]),
                            network_id=port["network_id"],
                        ),
                    ]
                    self._deliver(destination, port["network_id"])
                    return
        gateway = next(
            (p for p in self.ports if p["device_id"] == rtr["id"] and p["device_owner"] == GATEWAY),
            None,
        )
        if gateway is None:
            self.hops.append(
                _hop("drop", note="the router has no gateway and no route to the destination")
            )
            return
        mine = next((f for f in fips if f.get("fixed_ip_address") == self.source), None)
        snat = (rtr.get("external_gateway_info") or {}).get("enable_snat", True)
        gateway_ip = gateway["fixed_ips"][0]["ip_address"]
        if mine is not None:
            self.nat = f"SNAT {self.source} -> {mine['floating_ip_address']} (map fip_snat)"
        elif snat:
            self.nat = f"SNAT {self.source} -> {gateway_ip} (the router's gateway address)"
        else:
            self.nat = "none: enable_snat is false, the packet leaves with its fixed IP"
        self.hops += [
            _hop("nat", decision=self.nat, floatingip_id=mine["id"] if mine else None),
            _hop(
                "router gateway",
                device=names.router_gateway(gateway["id"]),
                port_id=gateway["id"],
                address=gateway_ip,
            ),
            _hop(
                "bridge",
                device=names.bridge(gateway["network_id"]),
                network_id=gateway["network_id"],
            ),
            _hop(
                "outside",
                address=destination,
                note=(
                    "the physical network, then the upstream router "
                    "(the outside namespace in a lab)"
                ),
            ),
        ]


def trace(
    db: Database,
    source: str,
    destination: str,
    protocol: str,
    port: int | None,
    host: str,
    send_probe: Probe,
) -> dict[str, Any]:
    try:
        ipaddress.IPv4Address(destination)
    except ValueError:
        raise errors.HTTPBadRequest(f"{destination!r} is not an IPv4 address") from None
    if protocol not in ("icmp", "tcp"):
        raise errors.HTTPBadRequest("protocol is icmp or tcp")
    model = feed.snapshot(db)
    found = [i for i in model["instances"] if source in (i["id"], i.get("name"))]
    if len(found) != 1:
        raise errors.NotFound(f"No single instance matches {source}.")
    instance = found[0]
    if not instance.get("netns"):
        raise errors.Conflict(f"Instance {source} is not running yet.")
    path = Path(model, instance, destination)
    router_ns = (
        outside.realized_netns(db, "routers", path.router["id"], host)[1] if path.router else None
    )
    result = send_probe(
        instance.get("host") or host,
        {
            "router_netns": router_ns,
            "instance_netns": instance["netns"],
            "source": path.source,
            "destination": destination,
            "protocol": protocol,
            "port": port,
        },
    )
    if router_ns is not None:
        for hop in path.hops:
            if hop["hop"] in ("router interface", "nat", "router gateway"):
                hop["netns"] = router_ns
    return {
        "from": {
            "instance_id": instance["id"],
            "name": instance.get("name"),
            "address": path.source,
        },
        "to": destination,
        "protocol": protocol,
        "port": port if protocol == "tcp" else None,
        "hops": path.hops,
        "nat": path.nat,
        "probe": result,
        "confirmed": bool(result["trace"]) if router_ns else result["reached"],
    }
