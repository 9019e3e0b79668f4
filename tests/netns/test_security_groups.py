"""S5: security groups are stateful (or stateless, when they say so) and take effect on live
traffic at once; remote address groups change in place."""

from __future__ import annotations

import subprocess
from typing import Any

from netlab import Lab, flat_model, ping, port_of, sync, tcp_reachable

from neutrino.lab import models
from neutrino.plan import HostConfig
from neutrino.plan.firewall import sg_chain


def test_rules_open_and_close_live_traffic(lab: Lab) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    egress_only = models.security_group(models.rule("egress"))
    model["security_groups"].append(egress_only)
    port_of(model, vm1)["security_groups"] = [egress_only["id"]]
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")
    lab.tcp_echo_server(ns1, 80)

    assert not ping(ns0, "10.10.0.11")  # default: ingress denied
    assert ping(ns1, "10.10.0.2")  # egress allowed, and its replies come back
    assert not tcp_reachable(ns0, "10.10.0.11", 80, timeout=0.5)

    icmp = models.rule("ingress", "icmp")
    http = models.rule("ingress", "tcp", 80, 80, remote_ip_prefix="10.10.0.0/24")
    egress_only["security_group_rules"] += [icmp, http]
    sync(agent, model)
    assert ping(ns0, "10.10.0.11")
    assert tcp_reachable(ns0, "10.10.0.11", 80)

    egress_only["security_group_rules"].remove(icmp)
    sync(agent, model)
    assert not ping(ns0, "10.10.0.11")
    assert tcp_reachable(ns0, "10.10.0.11", 80)


def test_remote_group_rule_follows_group_membership(lab: Lab) -> None:
    host = lab.host()
    model, default_sg, client, server, outsider = flat_model(host.name, count=3)
    clients = models.security_group(models.rule("egress"))
    servers = models.security_group(
        models.rule("egress"), models.rule("ingress", "tcp", 80, 80, remote_group_id=clients["id"])
    )
    model["security_groups"] += [clients, servers]
    port_of(model, client)["security_groups"] = [clients["id"]]
    port_of(model, server)["security_groups"] = [servers["id"]]
    agent = lab.agent(host)
    sync(agent, model)
    ns_client = lab.wait_ip(host, client, "10.10.0.10")
    ns_server = lab.wait_ip(host, server, "10.10.0.11")
    ns_outsider = lab.wait_ip(host, outsider, "10.10.0.12")
    lab.tcp_echo_server(ns_server, 80)

    assert tcp_reachable(ns_client, "10.10.0.11", 80)
    assert not tcp_reachable(ns_outsider, "10.10.0.11", 80, timeout=0.5)

    port_of(model, outsider)["security_groups"] = [default_sg["id"], clients["id"]]
    sync(agent, model)
    assert tcp_reachable(ns_outsider, "10.10.0.11", 80)


def chain_listing(host: HostConfig, chain: str) -> str:
    """The chain with its rules' handles: a rule made again gets a new one."""
    assert host.netns is not None
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            host.netns,
            "nft",
            "-a",
            "list",
            "chain",
            "bridge",
            "neutrino",
            chain,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_remote_address_group_changes_in_place(lab: Lab) -> None:
    host = lab.host()
    model, _, client, server, other = flat_model(host.name, count=3)
    trusted: dict[str, Any] = {"id": models.new_id(), "addresses": ["10.10.0.10/32"]}
    http = models.rule("ingress", "tcp", 80, 80)
    servers = models.security_group(
        models.rule("egress"), {**http, "remote_address_group_id": trusted["id"]}
    )
    model["security_groups"].append(servers)
    model["address_groups"] = [trusted]
    port_of(model, server)["security_groups"] = [servers["id"]]
    agent = lab.agent(host)
    sync(agent, model)
    ns_client = lab.wait_ip(host, client, "10.10.0.10")
    lab.wait_ip(host, server, "10.10.0.11")
    ns_other = lab.wait_ip(host, other, "10.10.0.12")
    lab.tcp_echo_server(lab.instance_netns(host, server), 80)
    assert tcp_reachable(ns_client, "10.10.0.11", 80)
    assert not tcp_reachable(ns_other, "10.10.0.11", 80, timeout=0.5)
    rules = chain_listing(host, sg_chain(servers["id"], "ingress"))

    trusted["addresses"] = ["10.10.0.10/32", "10.10.0.12/31"]
    report = sync(agent, model)
    assert report.changes == [f"update set ag-{trusted['id']}-v4"]
    assert tcp_reachable(ns_other, "10.10.0.11", 80)

    trusted["addresses"] = ["10.10.0.12/31"]
    assert sync(agent, model).changes == [f"update set ag-{trusted['id']}-v4"]
    assert not tcp_reachable(ns_client, "10.10.0.11", 80, timeout=0.5)
    assert tcp_reachable(ns_other, "10.10.0.11", 80)
    assert chain_listing(host, sg_chain(servers["id"], "ingress")) == rules
    assert sync(agent, model).changes == []


def test_stateless_group_needs_rules_for_replies(lab: Lab) -> None:
    host = lab.host()
    model, _, peer, vm = flat_model(host.name)
    open_group = models.security_group(models.rule("egress"), models.rule("ingress"))
    web = models.security_group(
        models.rule("egress"), models.rule("ingress", "tcp", 80, 80), stateful=False
    )
    model["security_groups"] += [open_group, web]
    port_of(model, peer)["security_groups"] = [open_group["id"]]
    port_of(model, vm)["security_groups"] = [web["id"]]
    agent = lab.agent(host)
    sync(agent, model)
    ns_peer = lab.wait_ip(host, peer, "10.10.0.10")
    ns_vm = lab.wait_ip(host, vm, "10.10.0.11")
    lab.tcp_echo_server(ns_vm, 80)
    lab.tcp_echo_server(ns_peer, 8080)

    assert tcp_reachable(ns_peer, "10.10.0.11", 80)  # in on 80, out by the egress rule
    assert not tcp_reachable(ns_vm, "10.10.0.10", 8080, timeout=0.5)  # no rule for the reply

    replies = models.rule("ingress", "tcp", remote_ip_prefix="10.10.0.10/32")
    web["security_group_rules"].append({**replies, "security_group_id": web["id"]})
    sync(agent, model)
    assert tcp_reachable(ns_vm, "10.10.0.10", 8080)

    web["security_group_rules"].remove({**replies, "security_group_id": web["id"]})
    web["stateful"] = True
    sync(agent, model)
    assert tcp_reachable(ns_vm, "10.10.0.10", 8080)  # the reply is part of its connection
