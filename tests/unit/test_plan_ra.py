"""plan.ra and IPv6 in plan.dhcp: who advertises which prefix with which flags, what dnsmasq
serves by DHCPv6, and what an instance's DHCPv6 client asks for."""

from __future__ import annotations

from typing import Any

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host, names

HOST = HostConfig.isolated("h1", prefix="t-")


def v6(net: dict[str, Any], cidr: str, **fields: Any) -> dict[str, Any]:
    """An IPv6 /64 (models.subnet lists every host address: too many here)."""
    sub = {
        **models.subnet(net, "10.0.0.0/30"),
        "ip_version": 6,
        "cidr": cidr,
        "gateway_ip": cidr.replace("::/64", "::1"),
        "allocation_pools": [],
        **fields,
    }
    return sub


def modes(mode: str | None) -> dict[str, Any]:
    return {"ipv6_ra_mode": mode, "ipv6_address_mode": mode}


def test_router_advertises_its_subnets_and_the_dhcp_namespace_the_others() -> None:
    net = models.network("flat", mtu=1450)
    slaac = v6(net, "2001:db8:1::/64", **modes("slaac"), dns_nameservers=["2001:db8::53"])
    stateful = v6(net, "2001:db8:2::/64", **modes("dhcpv6-stateful"))
    stateless = v6(net, "2001:db8:3::/64", **modes("dhcpv6-stateless"))
    outside = v6(net, "2001:db8:4::/64", ipv6_address_mode="slaac")
    router = models.router()
    qr = models.router_interface(router, net, slaac)
    dhcp = models.dhcp_port(net, stateful, "2001:db8:2::2", host="h1")
    vm = models.port(net, stateful, "2001:db8:2::10")
    vm["fixed_ips"].append({"subnet_id": stateless["id"], "ip_address": "2001:db8:3::10"})
    model = models.snapshot(
        networks=[net],
        subnets=[slaac, stateful, stateless, outside],
        routers=[router],
        ports=[qr, dhcp, vm],
        instances=[models.instance("vm", "h1", vm)],
    )
    desired = compile_host(model, HOST)
    by_key = {a.key: a for a in desired.advertisers}
    assert sorted(by_key) == sorted([router["id"], f"dhcp-{net['id']}"])
    on_router = by_key[router["id"]]
    assert on_router.netns == names.router_netns(HOST, router["id"])
    assert on_router.config == (
        f"interface {names.router_interface(qr['id'])}\n"
        "{\n"
        "   AdvSendAdvert on;\n"
        "   MinRtrAdvInterval 30;\n"
        "   MaxRtrAdvInterval 100;\n"
        "   AdvLinkMTU 1450;\n"
        "   RDNSS 2001:db8::53 {};\n"
        "   prefix 2001:db8:1::/64\n"
        "   {\n"
        "      AdvOnLink on;\n"
        "      AdvAutonomous on;\n"
        "   };\n"
        "};\n"
    )
    # Not a router: no default route through it. The outside router's subnet is not here.
    in_dhcp = by_key[f"dhcp-{net['id']}"]
    assert in_dhcp.netns == names.dhcp_netns(HOST, net["id"])
    assert in_dhcp.config.startswith(f"interface {names.dhcp_interface(dhcp['id'])}\n")
    for line in ("AdvDefaultLifetime 0;", "AdvManagedFlag on;", "AdvOtherConfigFlag on;"):
        assert f"   {line}\n" in in_dhcp.config
    assert "prefix 2001:db8:2::/64\n   {\n      AdvOnLink on;\n      AdvAutonomous off;" in (
        in_dhcp.config
    )
    assert "prefix 2001:db8:3::/64\n   {\n      AdvOnLink on;\n      AdvAutonomous on;" in (
        in_dhcp.config
    )
    assert "2001:db8:1::" not in in_dhcp.config and "2001:db8:4::" not in in_dhcp.config

    # dnsmasq: DHCPv6 ranges for the stateful and stateless subnets (none for SLAAC), the
    # stateful address of the instance for DHCPv6 only.
    (server,) = desired.dhcp
    tag = {s["id"]: f"subnet-{s['id'][:8]}" for s in (stateful, stateless)}
    assert server.ranges == tuple(
        sorted(
            [
                f"set:{tag[stateful['id']]},2001:db8:2::,static,64,86400s",
                f"set:{tag[stateless['id']]},2001:db8:3::,static,64,86400s",
            ]
        )
    )
    name = "host-2001-db8-2--10"
    assert server.hosts == f"{vm['mac_address']},tag:dhcpv6,{name},[2001:db8:2::10]\n"
    assert any(a.cidr == "2001:db8:2::2/64" and a.nodad for a in desired.addresses)
    (instance,) = desired.instances
    assert instance.dhcpv6 == "stateful"


def test_no_advertisement_without_an_ra_mode_and_an_instance_on_slaac_asks_dhcpv6_nothing() -> None:
    net = models.network("flat")
    outside = v6(net, "2001:db8:4::/64", ipv6_address_mode="slaac")
    stateless = v6(net, "2001:db8:5::/64", ipv6_address_mode="dhcpv6-stateless")
    dhcp = models.dhcp_port(net, outside, "2001:db8:4::2", host="h1")
    vm = models.port(net, outside, "2001:db8:4::10")
    model = models.snapshot(
        networks=[net],
        subnets=[outside, stateless],
        ports=[dhcp, vm],
        instances=[models.instance("vm", "h1", vm)],
    )
    desired = compile_host(model, HOST)
    assert desired.advertisers == ()
    assert desired.instances[0].dhcpv6 == ""
    vm["fixed_ips"].append({"subnet_id": stateless["id"], "ip_address": "2001:db8:5::10"})
    assert compile_host(model, HOST).instances[0].dhcpv6 == "stateless"
