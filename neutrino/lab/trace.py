"""The path of a packet from an instance to an address, hop by hop, confirmed.

The path is computed from the logical model, as the data plane realizes it:
the instance's eth0, its tap on the network's bridge, and then either the
destination on the same network, or the router that holds the subnet's
gateway: its `qr-`, the NAT decision (DNAT of a floating IP, SNAT to the
instance's floating IP or to the router's gateway address), then another
`qr-` or the `qg-` to the external network and the outside. An IPv6 packet
takes the same path, to the router's link-local address (the instance's
default route, advertised), and leaves by the gateway without NAT.

Each hop says which host it is on: the instance's, the router's, the
destination's. Where the path goes from one host to another, a hop says how it
leaves: through the network's VXLAN device, from this host's VTEP to the
other's on the underlay (or by the physical network, for flat and VLAN
networks); the next hop is that network's bridge on the other host.

A real probe (ping, or a TCP connect) then confirms it: the agent of every
host on the path watches the probe's packets while the instance's host sends
it (neutrino.agent.trace: nft traces in the host's bridges and in the
router's namespace). Their observations are merged here, in the path's
order: each hop whose device a host saw the probe cross is `seen`; a verdict
that dropped it ends the path on its host, with a `drop` hop that names the
rule. A port's own chain drops what none of its security groups accepts: that
hop names the port, the direction, its security groups and its instance.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from neutrino import errors, ipam
from neutrino.db import Database
from neutrino.lab import outside
from neutrino.plan import firewall, names
from neutrino.plan.routers import GATEWAY, INTERFACE, TABLE
from neutrino.services import feed

Model = dict[str, Any]
# Asks the agent of a host (the first argument) a method and path of its endpoint with a body
# (neutrino.agent.endpoint); its JSON answer.
Ask = Callable[[str, str, str, dict[str, Any] | None], Any]
# The host and namespace of a router, as its agent reported them.
Locate = Callable[[str], tuple[str, str]]
LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")
# Hops a host's trace confirms when it names their device.
PORTS = ("tap", "vxlan", "router interface", "router gateway")


def _in(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


def _hop(hop: str, **fields: Any) -> dict[str, Any]:
    return {"hop": hop, **{k: v for k, v in fields.items() if v is not None}}


class Path:
    """The hops of one packet, computed from the model, each on its host."""

    def __init__(
        self, model: Model, instance: Model, destination: str, locate: Locate, default_host: str
    ) -> None:
        self.model = model
        self.subnets = {s["id"]: s for s in model["subnets"]}
        self.networks = {n["id"]: n for n in model["networks"]}
        self.vteps = {e["host"]: e.get("ip_address") for e in model.get("vxlan_endpoints", [])}
        self.ports = model["ports"]
        self.locate, self.default_host = locate, default_host
        self.hops: list[dict[str, Any]] = []
        self.router: Model | None = None
        self.router_host: str | None = None
        self.router_netns: str | None = None
        self.candidates: list[Model] = []  # the port's addresses of the destination's version
        self.nat = "none"
        self.at = instance.get("host") or default_host
        port = next(p for p in self.ports if p["id"] in instance["port_ids"])
        self.version = ipaddress.ip_address(destination).version
        fixed = self._source(port, destination)
        self.source, self.source_port = fixed["ip_address"], port
        subnet = self.subnets[fixed["subnet_id"]]
        self._add(
            "instance",
            name=instance.get("name"),
            instance_id=instance["id"],
            netns=instance.get("netns"),
            device="eth0",
            address=self.source,
        )
        self._add("tap", device=names.tap(port["id"]), port_id=port["id"])
        self._bridge(port["network_id"])
        if _in(destination, subnet["cidr"]):
            self._deliver(destination, port["network_id"])
        else:
            self._route(destination, subnet)

    def _source(self, port: Model, destination: str) -> Model:
        """The port's address the packet leaves from: of the destination's IP version, on the
        destination's subnet if it has one there."""
        same = self.candidates = [
            ip
            for ip in port["fixed_ips"]
            if ipaddress.ip_address(ip["ip_address"]).version == self.version
        ]
        if not same:
            raise errors.HTTPBadRequest(
                f"The instance has no IPv{self.version} address to reach {destination} from."
            )
        return next(
            (ip for ip in same if _in(destination, self.subnets[ip["subnet_id"]]["cidr"])),
            same[0],
        )

    def _add(self, hop: str, **fields: Any) -> None:
        self.hops.append(_hop(hop, host=self.at, **fields))

    def _bridge(self, network_id: str) -> None:
        self._add("bridge", device=names.bridge(network_id), network_id=network_id)

    def _cross(self, network_id: str, host: str) -> None:
        """From the current host to `host` on the network, if they differ."""
        if host == self.at:
            return
        network = self.networks[network_id]
        if network.get("provider:network_type") == "vxlan":
            self._add(
                "vxlan",
                device=names.vxlan(int(network["provider:segmentation_id"])),
                network_id=network_id,
                to_host=host,
                underlay=f"{self.vteps.get(self.at)} -> {self.vteps.get(host)}",
            )
        else:
            physnet = network.get("provider:physical_network")
            self._add("physical network", network_id=network_id, to_host=host, physnet=physnet)
        self.at = host
        self._bridge(network_id)

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
            self._add(
                "unknown",
                address=address,
                network_id=network_id,
                note="no port holds this address",
            )
            return
        self._cross(network_id, target.get("binding:host_id") or self.default_host)
        self._add(
            "tap",
            device=names.device(target),
            port_id=target["id"],
            owner=target.get("device_owner"),
            address=address,
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
            self._add("drop", note=f"no router has an interface on subnet {subnet['id']}")
            return
        rtr = self.router = next(
            r for r in self.model["routers"] if r["id"] == router_port["device_id"]
        )
        self.router_host, self.router_netns = self.locate(rtr["id"])
        self._cross(router_port["network_id"], self.router_host)
        self._add(
            "router interface",
            device=names.router_interface(router_port["id"]),
            router_id=rtr["id"],
            port_id=router_port["id"],
            address=subnet["gateway_ip"],
            # On IPv6 the instance's default route, as the router advertises it.
            link_local=str(ipam.eui64(LINK_LOCAL, router_port["mac_address"]))
            if self.version == 6
            else None,
            netns=self.router_netns,
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
            self._add(
                "nat", decision=self.nat, floatingip_id=hairpin["id"], netns=self.router_netns
            )
            destination = hairpin["fixed_ip_address"]
        own = [
            p for p in self.ports if p["device_id"] == rtr["id"] and p["device_owner"] == INTERFACE
        ]
        for port in own:
            for ip in port["fixed_ips"]:
                if _in(destination, self.subnets[ip["subnet_id"]]["cidr"]):
                    self._add(
                        "router interface",
                        device=names.router_interface(port["id"]),
                        port_id=port["id"],
                        netns=self.router_netns,
                    )
                    self._bridge(port["network_id"])
                    self._deliver(destination, port["network_id"])
                    return
        gateway = next(
            (p for p in self.ports if p["device_id"] == rtr["id"] and p["device_owner"] == GATEWAY),
            None,
        )
        if gateway is None:
            self._add("drop", note="the router has no gateway and no route to the destination")
            return
        gateway_ip = next(
            (
                ip["ip_address"]
                for ip in gateway["fixed_ips"]
                if ipaddress.ip_address(ip["ip_address"]).version == self.version
            ),
            None,
        )
        if gateway_ip is None:
            self._add("drop", note=f"the router's gateway has no IPv{self.version} address")
            return
        mine = next((f for f in fips if f.get("fixed_ip_address") == self.source), None)
        snat = (rtr.get("external_gateway_info") or {}).get("enable_snat", True)
        if self.version == 6:
            self.nat = "none: IPv6 is routed without NAT, the packet leaves with its own address"
        elif mine is not None:
            self.nat = f"SNAT {self.source} -> {mine['floating_ip_address']} (map fip_snat)"
        elif snat:
            self.nat = f"SNAT {self.source} -> {gateway_ip} (the router's gateway address)"
        else:
            self.nat = "none: enable_snat is false, the packet leaves with its fixed IP"
        self._add(
            "nat",
            decision=self.nat,
            floatingip_id=mine["id"] if mine else None,
            netns=self.router_netns,
        )
        self._add(
            "router gateway",
            device=names.router_gateway(gateway["id"]),
            port_id=gateway["id"],
            address=gateway_ip,
            netns=self.router_netns,
        )
        self._bridge(gateway["network_id"])
        self._add(
            "outside",
            address=destination,
            note="the physical network, then the upstream router (the outside namespace in a lab)",
        )

    def hosts(self) -> list[str]:
        """The hosts the path crosses, in its order."""
        return list(dict.fromkeys(hop["host"] for hop in self.hops))

    def observed(self, seen: dict[str, list[str]]) -> bool:
        """Mark what the hosts' traces (`seen`: host -> nft trace lines) show: the hops whose
        device they name, and a drop, which ends the path on its host. Whether every host up
        to its end saw the probe."""
        for hop in self.hops:
            if hop["hop"] in PORTS:
                hop["seen"] = any(f'"{hop["device"]}"' in line for line in seen[hop["host"]])
        for host in self.hosts():
            verdict = next((line for line in seen[host] if _drops(line)), None)
            if verdict is not None:
                first_bridge = next(
                    i for i, h in enumerate(self.hops) if h["host"] == host and h["hop"] == "bridge"
                )
                rule = verdict.split(" ", 3)[-1]  # "trace id ID " precedes the table and rule
                chain = rule.split(" ")[2]  # after the family and the table
                refused = self._refused(chain, self.hops[first_bridge + 1 :])
                del self.hops[first_bridge + 1 :]
                self.hops.append(_hop("drop", host=host, note=f"dropped by {rule}", **refused))
                break
        return all(seen[host] for host in self.hosts())

    def _refused(self, chain: str, beyond: list[dict[str, Any]]) -> dict[str, Any]:
        """Who refused the packet, when `chain` is the chain of a port's security groups:
        the sending port's (egress), or the one it was going out to (ingress: the first port
        of the hops `beyond` the bridge)."""
        direction = chain.split("-", 1)[0]
        if direction == "egress":
            port: dict[str, Any] | None = self.source_port
        else:
            tap = next((hop["port_id"] for hop in beyond if hop["hop"] == "tap"), None)
            port = next((p for p in self.ports if p["id"] == tap), None)
        groups = {g["id"]: g for g in self.model["security_groups"]}
        if port is None or chain != firewall.groups_chain(
            firewall.port_groups(port, groups), direction
        ):
            return {}
        instance = next(
            (i for i in self.model["instances"] if port["id"] in i.get("port_ids", [])), None
        )
        return {
            "port_id": port["id"],
            "direction": direction,
            "security_groups": [
                {"id": g, "name": groups[g]["name"] if g in groups else None}
                for g in port.get("security_groups", [])
            ],
            "instance": {"id": instance["id"], "name": instance.get("name")} if instance else None,
        }


def _drops(line: str) -> bool:
    return "(verdict drop)" in line or line.endswith("policy drop")


def trace(
    db: Database,
    source: str,
    destination: str,
    protocol: str,
    port: int | None,
    host: str,
    ask: Ask,
) -> dict[str, Any]:
    try:
        ipaddress.ip_address(destination)
    except ValueError:
        raise errors.HTTPBadRequest(f"{destination!r} is not an IP address") from None
    if protocol not in ("icmp", "tcp"):
        raise errors.HTTPBadRequest("protocol is icmp or tcp")
    model = feed.snapshot(db)
    found = [i for i in model["instances"] if source in (i["id"], i.get("name"))]
    if len(found) != 1:
        raise errors.NotFound(f"No single instance matches {source}.")
    instance = found[0]
    if not instance.get("netns"):
        raise errors.Conflict(f"Instance {source} is not running yet.")
    path = Path(
        model,
        instance,
        destination,
        lambda router_id: outside.realized_netns(db, "routers", router_id, host),
        host,
    )
    match = {"protocol": protocol, "port": port}
    watches: dict[str, str] = {}
    try:
        for where in path.hosts():
            router_netns = path.router_netns if where == path.router_host else None
            body = {
                **match,
                "source": path.source,
                "destinations": [destination],
                "router_netns": router_netns,
            }
            watches[where] = ask(where, "POST", "/v1/watches", body)["id"]
        sent = {"destination": destination, "netns": instance["netns"]}
        # From the path's source when the port has others of its version (several IPv6
        # subnets): the kernel might choose another.
        if len(path.candidates) > 1:
            sent["source"] = path.source
        result = ask(path.hosts()[0], "POST", "/v1/probe", {**match, **sent})
    finally:
        ended = {
            where: ask(where, "DELETE", f"/v1/watches/{w}", None) for where, w in watches.items()
        }
    seen = {
        where: [line for part in parts for line in part["trace"]] for where, parts in ended.items()
    }
    confirmed = path.observed(seen)
    router_lines = [
        line
        for part in ended.get(path.router_host or "", [])
        if part["netns"] == path.router_netns
        for line in part["trace"]
    ]
    result["trace"] = [f"{where}: {line}" for where, lines in seen.items() for line in lines]
    result["matched_rules"] = sorted(
        {
            line.split(" rule ", 1)[1]
            for line in router_lines
            if f"ip {TABLE} " in line and " rule " in line
        }
    )
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
        "hosts": path.hosts(),
        "nat": path.nat,
        "probe": result,
        "confirmed": confirmed,
    }
