"""plan.qos: which policy a port takes, and what its rules ask of tc and nftables."""

from __future__ import annotations

from typing import Any

from neutrino.lab import models
from neutrino.plan import HostConfig, compile_host, names
from neutrino.plan.qos import qos_chain
from neutrino.plan.state import Link, Shaper

HOST = HostConfig.isolated("h1")


def rules_of(commands: tuple[dict[str, Any], ...], chain: str) -> list[list[dict[str, Any]]]:
    return [
        c["add"]["rule"]["expr"]
        for c in commands
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def lab(**policies: list[dict[str, Any]]) -> dict[str, Any]:
    """A network with policy `net`, a port with its own policy `own`, one without, a DHCP port."""
    net = models.network(qos_policy_id="net")
    sub = models.subnet(net, "10.0.0.0/24")
    own = models.port(net, sub, "10.0.0.5", host="h1", qos_policy_id="own")
    inherits = models.port(net, sub, "10.0.0.6", host="h1")
    dhcp = models.dhcp_port(net, sub, "10.0.0.2", host="h1")
    return models.snapshot(
        networks=[net],
        subnets=[sub],
        ports=[own, inherits, dhcp],
        qos_policies=[{"id": pid, "rules": rules} for pid, rules in policies.items()],
    )


def test_ports_take_their_own_policy_else_their_networks() -> None:
    model = lab(
        own=[{"type": "dscp_marking", "dscp_mark": 26}],
        net=[
            {
                "type": "bandwidth_limit",
                "max_kbps": 10_000,
                "max_burst_kbps": 0,
                "direction": "ingress",
            },
            {
                "type": "bandwidth_limit",
                "max_kbps": 1_000,
                "max_burst_kbps": 2_000,
                "direction": "egress",
            },
        ],
    )
    own, inherits, dhcp = model["ports"]
    state = compile_host(model, HOST)
    # To the instance: shaped on its tap, a burst of 0 being 80% of the rate for a second.
    # From it: redirected to an ifb and shaped there, with a bucket of 2,000 kbit.
    tap, ifb = names.tap(inherits["id"]), names.ifb(inherits["id"])
    assert state.shapers == (
        Shaper(HOST.netns, tap, 10_000_000, 1_000_000),
        Shaper(HOST.netns, ifb, 1_000_000, 250_000, redirect_from=tap),
    )
    assert Link(HOST.netns, ifb, "ifb", ipv6_off=True) in state.links  # ours, as a bridge is
    assert rules_of(state.firewall.commands, qos_chain(own["id"])) == [
        [
            {"match": {"op": "==", "left": {"meta": {"key": "protocol"}}, "right": family}},
            {"mangle": {"key": {"payload": {"protocol": family, "field": "dscp"}}, "value": 26}},
        ]
        for family in ("ip", "ip6")
    ]
    assert rules_of(state.firewall.commands, qos_chain(inherits["id"])) == []
    assert rules_of(state.firewall.commands, qos_chain(dhcp["id"])) == []


def test_no_qos_no_chains_and_a_bucket_holds_a_frame() -> None:
    state = compile_host(lab(), HOST)
    assert not any("qos" in str(c) for c in state.firewall.commands)
    assert state.shapers == () and not any(link.kind == "ifb" for link in state.links)
    tiny = {"type": "bandwidth_limit", "max_kbps": 1, "max_burst_kbps": 0, "direction": "ingress"}
    [shaper] = compile_host(lab(net=[tiny]), HOST).shapers
    assert (shaper.rate_bps, shaper.burst_bytes) == (1000, 1514)
