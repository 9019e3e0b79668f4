"""Load balancers -> haproxy, as Octavia's amphora driver renders them.

A load balancer lives in its own namespace, `<ns_prefix>qlbaas-<lb id>` (the
name Neutron's haproxy namespace driver used), holding its VIP port: a veth
whose host end `tap<port>` sits on the network's bridge like any port, whose
other end `vip-<port>` carries the VIP address and a default route to the
subnet's gateway (so that replies reach clients behind a router, floating IP
included). The host that realizes it is the one its VIP port is bound to; an
unbound VIP goes to a host that also serves unbound DHCP ports, and the
server binds it to the first host that reports it.

An unbound VIP of a load balancer whose availability zone names a
`compute_zone` goes only to a host of that zone. Its flavor's
`default_connection_limit` is the `maxconn` of listeners without a limit.

The configuration: listener -> `frontend` on VIP:port (its allowed CIDRs: a
`tcp-request connection reject` of other sources; PROMETHEUS: haproxy's own
exporter answers); pool -> `backend` (with the headers its listener inserts)
with `balance roundrobin|leastconn|source`; member -> `server` line with
weight, backup and disabled; L7 policy and rules -> `acl` lines and the
`http-request` or `use_backend` rules that act on them; health monitor ->
`check inter/fall/rise` (`rise` = max_retries, `fall` = max_retries_down, as
Octavia) plus `option httpchk` and `http-check expect` for HTTP. haproxy
cannot send ICMP, so a PING monitor checks that the member accepts a TCP
connection. Sections are named by object IDs, which is how member health is
read back from haproxy's statistics. The process-level part (`global`: stats
socket, pid file) is the driver's; this module renders only the proxies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from neutrino.plan.host import HostConfig
from neutrino.plan.state import Address, LoadBalancer

ALGORITHMS = {"ROUND_ROBIN": "roundrobin", "LEAST_CONNECTIONS": "leastconn", "SOURCE_IP": "source"}
MODES = {"HTTP": "http", "TCP": "tcp", "PROMETHEUS": "http"}
MAX_CONNECTIONS = 50000
DEFAULT_CONNECT_MS, DEFAULT_DATA_MS = 5000, 50000


@dataclass(frozen=True)
class Vip:
    """A load balancer this host realizes, and how its VIP port is plugged."""

    lb: LoadBalancer
    port_id: str
    network_id: str
    ifname: str
    address: Address


def netns(host: HostConfig, lb_id: str) -> str:
    return f"{host.ns_prefix}qlbaas-{lb_id}"


def vip_interface(port_id: str) -> str:
    return f"vip-{port_id[:11]}"


def is_local(lb: dict[str, Any], port: dict[str, Any], host: HostConfig) -> bool:
    bound = port.get("binding:host_id") or ""
    zone = lb.get("availability_zone_data", {}).get("compute_zone", host.availability_zone)
    return lb.get("provisioning_status") != "PENDING_DELETE" and (
        bound == host.name or (not bound and host.serves_dhcp and zone == host.availability_zone)
    )


def compile_loadbalancers(
    model: dict[str, Any],
    host: HostConfig,
    ports: dict[str, dict[str, Any]],
    subnets: dict[str, dict[str, Any]],
) -> list[Vip]:
    out = []
    for lb in sorted(model.get("loadbalancers", []), key=lambda lb: lb["id"]):
        port, subnet = ports.get(lb["vip_port_id"]), subnets.get(lb["vip_subnet_id"])
        if port is None or subnet is None or not is_local(lb, port, host):
            continue
        where, ifname = netns(host, lb["id"]), vip_interface(port["id"])
        prefix = ipaddress.ip_network(subnet["cidr"]).prefixlen
        balancer = LoadBalancer(
            id=lb["id"],
            netns=where,
            revision=int(lb.get("revision", 0)),
            gateway=subnet.get("gateway_ip"),
            config=render_proxies(lb),
        )
        out.append(
            Vip(
                balancer,
                port["id"],
                port["network_id"],
                ifname,
                Address(where, ifname, f"{lb['vip_address']}/{prefix}"),
            )
        )
    return out


def render_proxies(lb: dict[str, Any]) -> str:
    """haproxy's `defaults`, `frontend` and `backend` sections for one load balancer's tree.

    Empty without listeners: there is nothing for haproxy to do (it refuses to start without one).
    """
    if not lb.get("listeners"):
        return ""
    lines = ["defaults", "    retries 3", "    option redispatch", "    option dontlognull", ""]
    pools = {pool["id"]: pool for pool in lb.get("pools", [])}
    served_by: dict[str, dict[str, Any]] = {}
    for listener in lb.get("listeners", []):
        pool = pools.get(listener.get("default_pool_id") or "")
        if pool is not None:
            served_by[pool["id"]] = listener
        lines += _frontend(lb, listener, pool)
    for pool in pools.values():
        lines += _backend(pool, served_by.get(pool["id"]))
    return "\n".join(lines)


def _frontend(
    lb: dict[str, Any], listener: dict[str, Any], pool: dict[str, Any] | None
) -> list[str]:
    limit = listener.get("connection_limit", -1)
    default = lb.get("flavor_data", {}).get("default_connection_limit", MAX_CONNECTIONS)
    lines = [
        f"frontend {listener['id']}",
        f"    mode {MODES[listener['protocol']]}",
        f"    bind {_endpoint(lb['vip_address'], listener['protocol_port'])}",
        f"    maxconn {limit if limit >= 0 else default}",
        f"    timeout client {listener.get('timeout_client_data', DEFAULT_DATA_MS)}",
    ]
    if listener.get("allowed_cidrs"):
        lines += [
            f"    acl allowed_cidr src {' '.join(listener['allowed_cidrs'])}",
            "    tcp-request connection reject unless allowed_cidr",
        ]
    if listener["protocol"] == "PROMETHEUS":
        lines.append("    http-request use-service prometheus-exporter")
    lines += _l7(listener.get("l7policies", []))
    if pool is not None:
        lines.append(f"    default_backend {pool['id']}")
    if not (lb.get("admin_state_up", True) and listener.get("admin_state_up", True)):
        lines.append("    disabled")
    return [*lines, ""]


def _l7(policies: list[dict[str, Any]]) -> list[str]:
    """L7 policies as Octavia's haproxy reference renders them: an `acl` per rule, ANDed per
    policy; rejections first, then redirects, then pool choices, each kind in position order
    (the first match wins). Policies without an enabled rule never match and are left out."""
    acls: list[str] = []
    actions: dict[str, list[str]] = {"REJECT": [], "REDIRECT": [], "REDIRECT_TO_POOL": []}
    for policy in sorted(policies, key=lambda p: p["position"]):
        rules = [r for r in policy.get("rules", []) if r.get("admin_state_up", True)]
        if not policy.get("admin_state_up", True) or not rules:
            continue
        acls += [f"    acl {rule['id']} {_matcher(rule)}" for rule in rules]
        condition = " ".join(("!" if rule.get("invert") else "") + rule["id"] for rule in rules)
        action = policy["action"]
        if action == "REJECT":
            actions["REJECT"].append(f"    http-request deny deny_status 403 if {condition}")
        elif action == "REDIRECT_TO_URL":
            actions["REDIRECT"].append(
                f"    http-request redirect location '{policy['redirect_url']}' "
                f"code {policy['redirect_http_code']} if {condition}"
            )
        elif action == "REDIRECT_PREFIX":
            actions["REDIRECT"].append(
                f"    http-request redirect prefix '{policy['redirect_prefix']}' "
                f"code {policy['redirect_http_code']} if {condition}"
            )
        else:
            actions["REDIRECT_TO_POOL"].append(
                f"    use_backend {policy['redirect_pool_id']} if {condition}"
            )
    return [*acls, *(line for kind in actions.values() for line in kind)]


# What an L7 rule looks at (FILE_TYPE: the path's end) and how it compares (haproxy's -m methods).
SAMPLES = {
    "HOST_NAME": "req.hdr(host) -i",
    "PATH": "path",
    "FILE_TYPE": "path",
    "HEADER": "req.hdr({key})",
    "COOKIE": "req.cook({key})",
}
MATCHES = {
    "EQUAL_TO": "str",
    "STARTS_WITH": "beg",
    "ENDS_WITH": "end",
    "CONTAINS": "sub",
    "REGEX": "reg",
}


def _matcher(rule: dict[str, Any]) -> str:
    value, compare = rule["value"], rule["compare_type"]
    if rule["type"] == "FILE_TYPE":
        value, compare = (
            (f".{value}", "ENDS_WITH") if compare == "EQUAL_TO" else (f"\\.({value})$", "REGEX")
        )
    return f"{SAMPLES[rule['type']].format(key=rule.get('key'))} -m {MATCHES[compare]} '{value}'"


def _backend(pool: dict[str, Any], listener: dict[str, Any] | None) -> list[str]:
    monitor = pool.get("healthmonitor")
    if monitor is not None and not monitor.get("admin_state_up", True):
        monitor = None
    listener = listener or {}
    lines = [
        f"backend {pool['id']}",
        f"    mode {MODES[pool['protocol']]}",
        f"    balance {ALGORITHMS[pool['lb_algorithm']]}",
        f"    timeout connect {listener.get('timeout_member_connect', DEFAULT_CONNECT_MS)}",
        f"    timeout server {listener.get('timeout_member_data', DEFAULT_DATA_MS)}",
        *_persistence(pool.get("session_persistence")),
    ]
    if monitor is not None:
        lines.append(f"    timeout check {monitor['timeout']}s")
        if monitor["type"] == "HTTP":
            lines.append(f"    option httpchk {monitor['http_method']} {monitor['url_path']}")
            lines.append(
                f"    http-check expect rstatus {_status_pattern(monitor['expected_codes'])}"
            )
    if pool["protocol"] == "HTTP":
        lines += _inserted_headers(listener)
    cookie = (pool.get("session_persistence") or {}).get("type") == "HTTP_COOKIE"
    for member in pool.get("members", []):
        lines.append("    " + _server(member, monitor, cookie))
    if not pool.get("admin_state_up", True):
        lines.append("    disabled")
    return [*lines, ""]


def _inserted_headers(listener: dict[str, Any]) -> list[str]:
    """The headers the listener adds to requests, as Octavia renders them: those set to "true"
    (the client's certificate's ones are TERMINATED_HTTPS listeners')."""
    wanted = {k for k, v in (listener.get("insert_headers") or {}).items() if v.lower() == "true"}
    lines = []
    if "X-Forwarded-For" in wanted:
        lines.append("    option forwardfor")
    if "X-Forwarded-Port" in wanted:
        lines.append("    http-request set-header X-Forwarded-Port %[dst_port]")
    if "X-Forwarded-Proto" in wanted and listener["protocol"] == "HTTP":
        lines.append("    http-request set-header X-Forwarded-Proto http")
    return lines


def _server(member: dict[str, Any], monitor: dict[str, Any] | None, cookie: bool) -> str:
    words = [
        f"server {member['id']} {_endpoint(member['address'], member['protocol_port'])}",
        f"weight {member.get('weight', 1)}",
    ]
    if monitor is not None:
        words.append(
            f"check inter {monitor['delay']}s fall {monitor.get('max_retries_down', 3)} "
            f"rise {monitor['max_retries']}"
        )
        if member.get("monitor_address"):
            words.append(f"addr {member['monitor_address']}")
        if member.get("monitor_port"):
            words.append(f"port {member['monitor_port']}")
    if cookie:
        words.append(f"cookie {member['id']}")
    if member.get("backup"):
        words.append("backup")
    if not member.get("admin_state_up", True):
        words.append("disabled")
    return " ".join(words)


def _persistence(persistence: dict[str, Any] | None) -> list[str]:
    kind = (persistence or {}).get("type")
    if kind == "SOURCE_IP":
        return ["    stick-table type ip size 10k", "    stick on src"]
    if kind == "HTTP_COOKIE":
        return ["    cookie SRV insert indirect nocache"]
    if kind == "APP_COOKIE" and persistence and persistence.get("cookie_name"):
        name = persistence["cookie_name"]
        return [
            "    stick-table type string len 64 size 10k",
            f"    stick store-response res.cook({name})",
            f"    stick match req.cook({name})",
        ]
    return []


def _status_pattern(codes: str) -> str:
    """Octavia's expected_codes ("200", "200,202", "200-204") as an anchored regex."""
    if "-" in codes:
        low, high = (int(c) for c in codes.split("-"))
        options = [str(c) for c in range(low, high + 1)]
    else:
        options = codes.split(",")
    return "^(" + "|".join(options) + ")$"


def _endpoint(address: str, port: int) -> str:
    return f"{address}:{port}"  # haproxy takes the last colon as the port's, IPv6 included
