"""Model snapshots built by hand, shaped as the API serves them.

For tests, benchmarks and a lab without a server: each builder returns the admin
view of one resource with the defaults Neutron fills in.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

Resource = dict[str, Any]


def new_id() -> str:
    return str(uuid.uuid4())


def mac_for(seed: str) -> str:
    digits = uuid.uuid5(uuid.NAMESPACE_OID, seed).hex
    return "fa:16:3e:" + ":".join(digits[i : i + 2] for i in range(0, 6, 2))


def network(
    kind: str = "flat", segment: int | None = None, physnet: str | None = "default", **fields: Any
) -> Resource:
    return {
        "id": new_id(),
        "name": "net",
        "admin_state_up": True,
        "mtu": 1500,
        "provider:network_type": kind,
        "provider:physical_network": None if kind == "vxlan" else physnet,
        "provider:segmentation_id": segment,
        "router:external": False,
        "port_security_enabled": True,
        "subnets": [],
        "status": "ACTIVE",
        **fields,
    }


def subnet(net: Resource, cidr: str, **fields: Any) -> Resource:
    block = ipaddress.ip_network(cidr)
    last = block[-1] if block.version == 6 else block[-2]  # hosts(), without listing a /64's
    sub = {
        "id": new_id(),
        "network_id": net["id"],
        "ip_version": 4,
        "cidr": cidr,
        "gateway_ip": str(block[1]),
        "enable_dhcp": True,
        "dns_nameservers": [],
        "host_routes": [],
        "allocation_pools": [{"start": str(block[2]), "end": str(last)}],
        **fields,
    }
    net["subnets"].append(sub["id"])
    return sub


def port(
    net: Resource,
    sub: Resource,
    ip: str,
    *,
    host: str = "",
    device_owner: str = "",
    device_id: str = "",
    security_groups: list[str] | None = None,
    **fields: Any,
) -> Resource:
    port_id = new_id()
    return {
        "id": port_id,
        "network_id": net["id"],
        "mac_address": mac_for(port_id),
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": ip}],
        "device_owner": device_owner,
        "device_id": device_id,
        "admin_state_up": True,
        "binding:host_id": host,
        "port_security_enabled": True,
        "security_groups": security_groups or [],
        "allowed_address_pairs": [],
        "status": "DOWN",
        **fields,
    }


def dhcp_port(net: Resource, sub: Resource, ip: str, host: str = "") -> Resource:
    return port(net, sub, ip, host=host, device_owner="network:dhcp", device_id=f"dhcp-{net['id']}")


def instance(name: str, host: str, *ports: Resource) -> Resource:
    instance_id = new_id()
    for p in ports:
        p.update(
            {"device_owner": "compute:nova", "device_id": instance_id, "binding:host_id": host}
        )
    return {"id": instance_id, "name": name, "host": host, "port_ids": [p["id"] for p in ports]}


def security_group(*rules: Resource, **fields: Any) -> Resource:
    sg_id = new_id()
    return {
        "id": sg_id,
        "name": "sg",
        "stateful": True,
        "security_group_rules": [{**r, "security_group_id": sg_id} for r in rules],
        **fields,
    }


def rule(
    direction: str,
    protocol: str | None = None,
    port_min: int | None = None,
    port_max: int | None = None,
    remote_ip_prefix: str | None = None,
    remote_group_id: str | None = None,
    ethertype: str = "IPv4",
) -> Resource:
    return {
        "id": new_id(),
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": port_min,
        "port_range_max": port_max,
        "remote_ip_prefix": remote_ip_prefix,
        "remote_group_id": remote_group_id,
    }


def default_security_group() -> Resource:
    """Neutron's default group: egress open, ingress only from members of the group."""
    sg = security_group(rule("egress"), rule("egress", ethertype="IPv6"))
    for ethertype in ("IPv4", "IPv6"):
        sg["security_group_rules"].append(
            {
                **rule("ingress", ethertype=ethertype, remote_group_id=sg["id"]),
                "security_group_id": sg["id"],
            }
        )
    return sg


def snapshot(revision: int = 1, **collections: list[Resource]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "revision": revision,
        "networks": [],
        "subnets": [],
        "ports": [],
        "security_groups": [],
        "instances": [],
        "routers": [],
        "floatingips": [],
    }
    base.update(collections)
    return base


def router(**fields: Any) -> Resource:
    return {
        "id": new_id(),
        "name": "router",
        "admin_state_up": True,
        "status": "ACTIVE",
        "routes": [],
        "external_gateway_info": None,
        **fields,
    }


def router_interface(rtr: Resource, net: Resource, sub: Resource) -> Resource:
    """The router's port on `sub`, holding its gateway IP."""
    return port(
        net,
        sub,
        sub["gateway_ip"],
        device_owner="network:router_interface",
        device_id=rtr["id"],
        port_security_enabled=False,
    )


def router_gateway(
    rtr: Resource, net: Resource, sub: Resource, ip: str, enable_snat: bool = True
) -> Resource:
    """The router's port on an external network; sets its external_gateway_info."""
    gw = port(
        net,
        sub,
        ip,
        device_owner="network:router_gateway",
        device_id=rtr["id"],
        port_security_enabled=False,
    )
    rtr["external_gateway_info"] = {
        "network_id": net["id"],
        "enable_snat": enable_snat,
        "external_fixed_ips": gw["fixed_ips"],
    }
    return gw


def floatingip(
    address: str, network: Resource, rtr: Resource | None = None, target: Resource | None = None
) -> Resource:
    """A floating IP, associated with `target`'s first fixed IP through `rtr` when both are
    given."""
    associated = rtr is not None and target is not None
    return {
        "id": new_id(),
        "floating_ip_address": address,
        "floating_network_id": network["id"],
        "router_id": rtr["id"] if associated and rtr else None,
        "port_id": target["id"] if associated and target else None,
        "fixed_ip_address": target["fixed_ips"][0]["ip_address"] if associated and target else None,
        "status": "DOWN",
    }


def tutorial(host: str, vms: int = 2, enable_snat: bool = True) -> dict[str, Any]:
    """SCENARIOS.md S2-S4 as a snapshot: ext_net, vlan100 and vlan101, router_100_101 with its
    gateway (10.10.10.2), DHCP on `host`, and `vms` instances on vlan101 (172.16.101.3, .4, ...)
    in a group open to all. Ports: the router's three first, then the instances'."""
    external: dict[str, Any] = {"router:external": True}
    ext = network("flat", name="ext_net", **external)
    ext_sub = subnet(ext, "10.10.10.0/24", enable_dhcp=False)
    n100, n101 = network("vlan", 100, name="vlan100"), network("vlan", 101, name="vlan101")
    s100, s101 = subnet(n100, "172.16.100.0/24"), subnet(n101, "172.16.101.0/24")
    rtr = router(name="router_100_101")
    router_ports = [
        router_interface(rtr, n100, s100),
        router_interface(rtr, n101, s101),
        router_gateway(rtr, ext, ext_sub, "10.10.10.2", enable_snat=enable_snat),
    ]
    sg = security_group(rule("egress"), rule("ingress"))
    vm_ports = [
        port(n101, s101, f"172.16.101.{3 + i}", security_groups=[sg["id"]]) for i in range(vms)
    ]
    return snapshot(
        networks=[ext, n100, n101],
        subnets=[ext_sub, s100, s101],
        routers=[rtr],
        security_groups=[sg],
        ports=[
            *router_ports,
            *vm_ports,
            dhcp_port(n100, s100, "172.16.100.2", host=host),
            dhcp_port(n101, s101, "172.16.101.2", host=host),
        ],
        instances=[instance(f"vm{i}", host, p) for i, p in enumerate(vm_ports)],
    )
