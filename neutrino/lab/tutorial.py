"""The tutorial's topology (SCENARIOS.md S2-S4), built and removed through the public APIs.

    ext_net (flat, external, 10.10.10.0/24, upstream 10.10.10.1 = the outside)
        |
    router_100_101 (gateway on ext_net, source NAT)
        |                         |
    vlan100 172.16.100.0/24   vlan101 172.16.101.0/24
            2001:db8:100::/64         2001:db8:101::/64
    cirros-vm1                cirros-vm2, cirros-vm3 (172.16.101.3, floating IP)

The VLAN networks are dual stack: each has an IPv6 prefix too (SLAAC, advertised by the
router), routed across the router without NAT. Every instance runs a small web server that
answers with its name, on both. Whatever is made carries the tag `neutrino-lab`, which is how
`down` finds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neutrino.client import ClientError, Session

TAG = "neutrino-lab"
EXTERNAL = {"name": "ext_net", "cidr": "10.10.10.0/24", "gateway": "10.10.10.1"}
VLANS = [
    ("vlan100", 100, "172.16.100.0/24", "2001:db8:100::/64"),
    ("vlan101", 101, "172.16.101.0/24", "2001:db8:101::/64"),
]
ROUTER = "router_100_101"
INSTANCES = [
    ("cirros-vm1", "vlan100", None),
    ("cirros-vm2", "vlan101", None),
    ("cirros-vm3", "vlan101", "172.16.101.3"),
]
FLOATING_TARGET = "cirros-vm3"
SECURITY_GROUP = "lab-web"  # ping and HTTP from anywhere, both IP versions, besides the default
# group
STEPS = 14  # what `up` reports through `step`

Step = Callable[[str], None]


def web_server(name: str) -> list[str]:
    """A command that starts, in the background, a web server answering `name` on port 80."""
    root = f"/tmp/neutrino-lab-www/{name}"
    return [
        "sh",
        "-c",
        (
            f"mkdir -p {root} && echo {name} > {root}/index.html && "
            f"nohup busybox httpd -f -p 80 -h {root} >/dev/null 2>&1 &"
        ),
    ]


@dataclass
class Built:
    floating_ip: str
    instances: dict[str, str]  # name -> address
    router_gateway: str
    ipv6: dict[str, str]  # name -> IPv6 address


class Tutorial:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.net = session.endpoint("network") + "/v2.0"
        self.lab = session.endpoint("lab") + "/v1"

    def _create(self, base: str, collection: str, member: str, **body: Any) -> dict[str, Any]:
        item: dict[str, Any] = self.session.call(
            "POST", f"{base}/{collection}", json={member: body}
        )[member]
        self.session.call("PUT", f"{base}/{collection}/{item['id']}/tags", json={"tags": [TAG]})
        return item

    def _tagged(self, base: str, collection: str) -> list[dict[str, Any]]:
        found = self.session.call("GET", f"{base}/{collection}", params={"tags": TAG})
        items: list[dict[str, Any]] = found[collection.replace("-", "_")]
        return items

    def up(self, step: Step) -> Built:
        if self._tagged(self.net, "networks") or self._tagged(self.lab, "instances"):
            raise ClientError(
                409, f"a lab is up already (resources tagged {TAG}); run `neutrino lab down` first"
            )
        step("external network ext_net (flat on physical network default)")
        ext = self._create(
            self.net,
            "networks",
            "network",
            name=EXTERNAL["name"],
            **{
                "provider:network_type": "flat",
                "provider:physical_network": "default",
                "router:external": True,
            },
        )
        self._create(
            self.net,
            "subnets",
            "subnet",
            name="ext_sub",
            network_id=ext["id"],
            ip_version=4,
            cidr=EXTERNAL["cidr"],
            gateway_ip=EXTERNAL["gateway"],
            enable_dhcp=False,
        )
        networks = {}
        for name, vlan, cidr, prefix in VLANS:
            step(f"network {name} (VLAN {vlan}) and subnets {cidr}, {prefix}")
            networks[name] = self._create(
                self.net,
                "networks",
                "network",
                name=name,
                **{
                    "provider:network_type": "vlan",
                    "provider:physical_network": "default",
                    "provider:segmentation_id": vlan,
                },
            )
            subnet = self._create(
                self.net,
                "subnets",
                "subnet",
                name=f"{name}_sub",
                network_id=networks[name]["id"],
                ip_version=4,
                cidr=cidr,
            )
            subnet_v6 = self._create(
                self.net,
                "subnets",
                "subnet",
                name=f"{name}_sub_v6",
                network_id=networks[name]["id"],
                ip_version=6,
                cidr=prefix,
                ipv6_ra_mode="slaac",
                ipv6_address_mode="slaac",
            )
            networks[name]["subnet_ids"] = [subnet["id"], subnet_v6["id"]]
        step(f"router {ROUTER}")
        router = self._create(self.net, "routers", "router", name=ROUTER)
        for name, *_ in VLANS:
            step(f"router interfaces on {name}")
            for subnet_id in networks[name]["subnet_ids"]:
                self.session.call(
                    "PUT",
                    f"{self.net}/routers/{router['id']}/add_router_interface",
                    json={"subnet_id": subnet_id},
                )
        step("router gateway on ext_net")
        router = self.session.call(
            "PUT",
            f"{self.net}/routers/{router['id']}",
            json={"router": {"external_gateway_info": {"network_id": ext["id"]}}},
        )["router"]
        step(f"security group {SECURITY_GROUP}: ping and HTTP from anywhere")
        group = self._create(self.net, "security-groups", "security_group", name=SECURITY_GROUP)
        for ethertype, anywhere, ping in (
            ("IPv4", "0.0.0.0/0", "icmp"),
            ("IPv6", "::/0", "ipv6-icmp"),
        ):
            for rule in (
                {"protocol": ping},
                {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80},
            ):
                self.session.call(
                    "POST",
                    f"{self.net}/security-group-rules",
                    json={
                        "security_group_rule": {
                            "security_group_id": group["id"],
                            "direction": "ingress",
                            "ethertype": ethertype,
                            "remote_ip_prefix": anywhere,
                            **rule,
                        }
                    },
                )
        made, ipv6 = {}, {}
        # Chosen addresses first, before the pools hand them out.
        for name, network, fixed_ip in sorted(INSTANCES, key=lambda item: item[2] is None):
            step(f"instance {name} on {network}")
            wanted = {
                "network_id": networks[network]["id"],
                **({"fixed_ip": fixed_ip} if fixed_ip else {}),
            }
            made[name] = self._create(
                self.lab, "instances", "instance", name=name, networks=[wanted]
            )
            port = self.session.call("GET", f"{self.net}/ports/{made[name]['port_ids'][0]}")["port"]
            ipv6[name] = next(ip for ip in port["fixed_ips"] if ":" in ip["ip_address"])[
                "ip_address"
            ]
            self.session.call(
                "PUT",
                f"{self.net}/ports/{port['id']}",
                json={"port": {"security_groups": [*port["security_groups"], group["id"]]}},
            )
        step("waiting for the instances' addresses (DHCP, SLAAC)")
        addresses = {name: self._wait_active(item["id"], ipv6[name]) for name, item in made.items()}
        step("web servers answering their names on port 80")
        for name, item in made.items():
            self.session.call(
                "POST",
                f"{self.lab}/instances/{item['id']}/exec",
                json={"command": web_server(name)},
            )
        step(f"floating IP on ext_net for {FLOATING_TARGET}")
        fip = self._create(
            self.net,
            "floatingips",
            "floatingip",
            floating_network_id=ext["id"],
            port_id=made[FLOATING_TARGET]["port_ids"][0],
        )
        self._wait(
            lambda: (
                self.session.call("GET", f"{self.net}/floatingips/{fip['id']}")["floatingip"][
                    "status"
                ]
                == "ACTIVE"
            ),
            "the floating IP to become ACTIVE",
        )
        gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        return Built(fip["floating_ip_address"], addresses, gateway, ipv6)

    def _wait_active(self, instance_id: str, ipv6: str) -> str:
        """Its IPv4 address, once it has it (DHCP) and `ipv6` (SLAAC, a moment later)."""

        def active() -> bool:
            item = self.session.call("GET", f"{self.lab}/instances/{instance_id}")["instance"]
            held = {a.split("/")[0] for a in item["addresses"]}
            return bool(item["status"] == "ACTIVE" and ipv6 in held)

        self._wait(active, f"instance {instance_id} to get its addresses")
        item = self.session.call("GET", f"{self.lab}/instances/{instance_id}")["instance"]
        return next(a.split("/")[0] for a in item["addresses"] if ":" not in a)

    @staticmethod
    def _wait(check: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                raise ClientError(0, f"timed out waiting for {what}; is an agent running?")
            time.sleep(0.1)

    def down(self, step: Step) -> int:
        """Remove everything tagged as the lab's; the number of resources removed."""
        removed = 0
        for item in self._tagged(self.lab, "instances"):
            step(f"instance {item['name']}")
            removed += self._delete(f"{self.lab}/instances/{item['id']}")
        for fip in self._tagged(self.net, "floatingips"):
            step(f"floating IP {fip['floating_ip_address']}")
            removed += self._delete(f"{self.net}/floatingips/{fip['id']}")
        for router in self._tagged(self.net, "routers"):
            step(f"router {router['name']}")
            ports = self.session.call(
                "GET",
                f"{self.net}/ports",
                params={"device_id": router["id"], "device_owner": "network:router_interface"},
            )["ports"]
            for port in ports:
                self.session.call(
                    "PUT",
                    f"{self.net}/routers/{router['id']}/remove_router_interface",
                    json={"port_id": port["id"]},
                )
            removed += self._delete(f"{self.net}/routers/{router['id']}")
        for group in self._tagged(self.net, "security-groups"):
            step(f"security group {group['name']}")
            removed += self._delete(f"{self.net}/security-groups/{group['id']}")
        for network in self._tagged(self.net, "networks"):
            step(f"network {network['name']}")
            removed += self._delete(f"{self.net}/networks/{network['id']}")
        return removed

    def _delete(self, url: str) -> int:
        try:
            self.session.call("DELETE", url)
        except ClientError as error:
            if error.status != 404:
                raise
            return 0
        return 1
