"""S5: security groups are stateful and take effect on live traffic at once."""

from __future__ import annotations

from netlab import Lab, flat_model, ping, port_of, sync, tcp_reachable

from neutrino.lab import models


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
