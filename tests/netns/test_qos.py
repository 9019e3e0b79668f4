"""QoS in the kernel: bandwidth limits measured by iperf3, DSCP marks seen by the receiver."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from netlab import Lab, flat_model, port_of, sync, wait_for

from neutrino.agent.instance import exec_in_instance
from neutrino.plan import names

MBIT = 1_000_000


def qos_policy(policy_id: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"id": policy_id, "rules": list(rules)}


def limit(kbps: int, direction: str) -> dict[str, Any]:
    return {
        "type": "bandwidth_limit",
        "max_kbps": kbps,
        "max_burst_kbps": 0,
        "direction": direction,
    }


def listening(netns: str, port: int) -> bool:
    """Whether a TCP socket listens on `port` (without connecting: iperf3 -1 takes one client)."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return bool(out.strip())


def rate(lab: Lab, client: str, server: str, address: str, reverse: bool = False) -> float:
    """Bits per second of a TCP transfer, as iperf3's receiver counts them: from `client` to
    `server`, or the other way round with `reverse`. Its first second, which a full bucket
    lets through faster, is left out."""
    iperf = subprocess.Popen(
        ["ip", "netns", "exec", server, "iperf3", "-s", "-1", "-p", "5201"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lab.servers.append(iperf)
    wait_for(lambda: listening(server, 5201) or iperf.poll() is not None)
    argv = [
        "iperf3",
        "-c",
        address,
        "-p",
        "5201",
        "-t",
        "3",
        "-O",
        "1",
        "-J",
        *(["-R"] if reverse else []),
    ]
    rc, out, err = exec_in_instance(client, argv, timeout=20)
    iperf.wait(10)
    assert rc == 0, out + err
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])


def root_qdisc(host_netns: str, tap: str) -> str:
    out = subprocess.run(
        ["tc", "-n", host_netns, "qdisc", "show", "dev", tap, "root"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()[1]  # the root qdisc's kind


def test_bandwidth_limits_in_both_directions(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")
    assert rate(lab, ns0, ns1, "10.10.0.11") > 100 * MBIT

    # The network's policy: 10 Mbit/s out of an instance, 20 Mbit/s into it. vm1 has a policy
    # of its own, without rules, which takes precedence.
    limits = qos_policy("0c05e2c3-6d4a-4c43-9f6a-6d1e5b0a7f01", limit(10_000, "egress"))
    limits["rules"].append(limit(20_000, "ingress"))
    empty = qos_policy("5d3c0f4e-1b7a-4f0e-8f57-2a9e0c3b6d11")
    model["qos_policies"] = [limits, empty]
    model["networks"][0]["qos_policy_id"] = limits["id"]
    port_of(model, vm1)["qos_policy_id"] = empty["id"]
    model["revision"] += 1
    tap, ifb = names.tap(port_of(model, vm0)["id"]), names.ifb(port_of(model, vm0)["id"])
    changes = sync(agent, model).changes
    assert {f"shape {tap}", f"shape {ifb}", f"redirect {tap}"} <= set(changes), changes
    assert 7 * MBIT < rate(lab, ns0, ns1, "10.10.0.11") < 12.5 * MBIT
    assert 14 * MBIT < rate(lab, ns0, ns1, "10.10.0.11", reverse=True) < 25 * MBIT
    assert root_qdisc(str(host.netns), tap) == "tbf"

    # Changed in place, and then left alone.
    limits["rules"][1] = limit(5_000, "ingress")
    model["revision"] += 1
    assert sync(agent, model).changes == [f"shape {tap}"]
    assert 3 * MBIT < rate(lab, ns0, ns1, "10.10.0.11", reverse=True) < 6.5 * MBIT
    assert sync(agent, model).changes == []

    # vm0's own policy, without rules, takes precedence too: its limits go.
    port_of(model, vm0)["qos_policy_id"] = empty["id"]
    model["revision"] += 1
    changes = sync(agent, model).changes
    assert {f"unshape {tap}", f"stop redirect {tap}", f"delete link {ifb}"} <= set(changes)
    assert root_qdisc(str(host.netns), tap) != "tbf"
    assert rate(lab, ns0, ns1, "10.10.0.11") > 100 * MBIT


def dscp_seen(netns: str) -> int:
    """Packets counted by the receiver's rule matching DSCP 26 (AF31)."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "inet", "dscp"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rules = [i["rule"] for i in json.loads(out)["nftables"] if "rule" in i]
    return int(next(e["counter"]["packets"] for e in rules[0]["expr"] if "counter" in e))


def test_dscp_marking_of_what_an_instance_sends(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")
    counting = "table inet dscp {\n chain input {\n type filter hook input priority 0\n"
    counting += " ip dscp af31 counter\n }\n}\n"
    subprocess.run(
        ["ip", "netns", "exec", ns1, "nft", "-f", "-"], input=counting, text=True, check=True
    )

    def pings() -> None:
        rc, out, err = exec_in_instance(ns0, ["ping", "-c", "3", "-i", "0.2", "10.10.0.11"])
        assert rc == 0, out + err

    pings()
    assert dscp_seen(ns1) == 0
    policy = qos_policy(
        "8b1f2d3c-4e5f-4a6b-8c7d-9e0f1a2b3c4d", {"type": "dscp_marking", "dscp_mark": 26}
    )
    model["qos_policies"] = [policy]
    port_of(model, vm0)["qos_policy_id"] = policy["id"]
    model["revision"] += 1
    sync(agent, model)
    pings()
    assert dscp_seen(ns1) == 3
    # The policy goes: no more marks.
    port_of(model, vm0)["qos_policy_id"] = None
    model["revision"] += 1
    sync(agent, model)
    pings()
    assert dscp_seen(ns1) == 3
