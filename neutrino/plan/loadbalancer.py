"""Load balancers -> haproxy, as Octavia's amphora driver renders them.

A load balancer lives in its own namespace, `<ns_prefix>qlbaas-<lb id>` (the
name Neutron's haproxy namespace driver used), holding its VIP port: a veth
whose host end `tap<port>` sits on the network's bridge like any port, whose
other end `vip-<port>` carries the VIP address and a default route to the
subnet's gateway (so that replies reach clients behind a router, floating IP
included), and the port's other addresses: on a dual-stack network the port
has an address of each family (the SLAAC one of an IPv6 subnet comes to every
port), so that haproxy reaches members of either family, as Octavia lets a
pool mix them. IPv6 addresses are added without duplicate address detection
(nodad): IPAM gave them to this port alone, and a tentative address, which
haproxy cannot bind or connect from, would keep the load balancer from serving
for a second or two after it is ACTIVE. The host that realizes it is the one
its VIP port is bound to; an unbound VIP goes to a host that also serves
unbound DHCP ports, and the server binds it to the first host that reports it.

An unbound VIP of a load balancer whose availability zone names a
`compute_zone` goes only to a host of that zone. Its flavor's
`default_connection_limit` is the `maxconn` of listeners without a limit.

The configuration: listener -> `frontend` on VIP:port (HTTPS passes TLS
through in `mode tcp`; its allowed CIDRs: a `tcp-request connection reject` of
other sources; PROMETHEUS: haproxy's own exporter answers); pool -> a `backend`
in each listener that uses it (`<pool id>:<listener id>`, as Octavia: the
listener's mode for PROXY pools, the headers it inserts) with `balance
roundrobin|leastconn|source` or, for SOURCE_IP_PORT, a hash of the client's
address and port; member -> `server` line with weight, backup and disabled,
and `send-proxy`/`send-proxy-v2` for PROXY/PROXYV2 pools (`send-proxy-v2-ssl-cn`
behind TERMINATED_HTTPS: the client certificate's CN too); L7 policy and rules
-> `acl` lines and the `http-request` or `use_backend` rules that act on them;
health monitor -> `check inter/fall/rise` (`rise` = max_retries, `fall` =
max_retries_down, as Octavia) plus `option httpchk` and `http-check expect`
for HTTP and HTTPS (`check-ssl verify none`), with the HTTP version and Host
header asked for (`check-alpn` with a TLS pool's ALPN protocols), and
`option ssl-hello-chk` for TLS-HELLO. haproxy cannot
send ICMP, so a PING monitor checks that the member accepts a TCP
connection. Sections are named by object IDs, which is how member health and
listener status are read back from haproxy's statistics. The process-level part (`global`: stats
socket, pid file) is the driver's; this module renders only the proxies.

ACTIVE_STANDBY (the flavor's `loadbalancer_topology`): two amphorae, MASTER
and BACKUP, each a namespace `qlbaas-<lb id>-<amphora id[:11]>` holding its own
VRRP port (`vip-<port>`) with its VRRP address, running haproxy with the same
configuration and keepalived as Octavia's amphora driver configures it
(`render_vrrp`): unicast VRRP to the other amphora's address, priorities 100
and 90, the VIP as virtual address (/32 or /128: the VRRP address carries the
subnet's route), a check script tracking that haproxy answers, `nopreempt`,
gratuitous ARPs repeated by `garp_master_refresh`. The VIP port itself is not
plugged; the VIP is the master's, which keepalived moves when the master's
check fails or it stops.

UDP and SCTP listeners and pools are not haproxy's: the kernel balances them
with nftables in the same namespace (plan.l4).

TLS, as Octavia's amphora driver: a TERMINATED_HTTPS listener binds with
`ssl crt-list`, a file listing its default certificate first and then its SNI
certificates (haproxy picks one by the names each certificate carries); client
authentication adds `ca-file`, `verify` and `crl-file`; tls_versions become the
`no-<version>` of the versions left out. A pool with tls_enabled speaks TLS to
its members (`ssl`, with its client certificate, CA and CRL). The model carries
the PEM material already resolved from the key manager (`pem`, keyed by the
field whose reference it resolves); each PEM becomes a file named after its
digest, so new material is a new name and a new configuration. The names are
relative: the driver runs haproxy in the directory of the files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from neutrino.plan.host import HostConfig
from neutrino.plan.l4 import PROTOCOLS as KERNEL_PROTOCOLS
from neutrino.plan.l4 import compile_l4
from neutrino.plan.state import Address, LoadBalancer

ALGORITHMS = {"ROUND_ROBIN": "roundrobin", "LEAST_CONNECTIONS": "leastconn", "SOURCE_IP": "source"}
# HTTPS passes TLS through untouched: haproxy sees only TCP. TERMINATED_HTTPS ends it.
MODES = {
    "HTTP": "http",
    "HTTPS": "tcp",
    "TCP": "tcp",
    "TERMINATED_HTTPS": "http",
    "PROMETHEUS": "http",
}
# Pools that announce the client to their members in a PROXY protocol header; they speak
# their listener's protocol after it.
PROXY_HEADERS = {"PROXY": "send-proxy", "PROXYV2": "send-proxy-v2"}
CLIENT_AUTH = {"OPTIONAL": "optional", "MANDATORY": "required"}
TLS_VERSIONS = {
    "SSLv3": "no-sslv3",
    "TLSv1": "no-tlsv10",
    "TLSv1.1": "no-tlsv11",
    "TLSv1.2": "no-tlsv12",
    "TLSv1.3": "no-tlsv13",
}
# insert_headers of a TERMINATED_HTTPS listener -> what haproxy sets them to
SSL_HEADERS = {
    "X-SSL-Client-Verify": "%[ssl_c_verify]",
    "X-SSL-Client-Has-Cert": "%[ssl_c_used]",
    "X-SSL-Client-DN": "%{+Q}[ssl_c_s_dn]",
    "X-SSL-Client-CN": "%{+Q}[ssl_c_s_dn(cn)]",
    "X-SSL-Issuer": "%{+Q}[ssl_c_i_dn]",
    "X-SSL-Client-SHA1": "%{+Q}[ssl_c_sha1,hex]",
    "X-SSL-Client-Not-Before": "%{+Q}[ssl_c_notbefore]",
    "X-SSL-Client-Not-After": "%{+Q}[ssl_c_notafter]",
}
MAX_CONNECTIONS = 50000
DEFAULT_CONNECT_MS, DEFAULT_DATA_MS = 5000, 50000


# keepalived as Octavia configures it: its [keepalived_vrrp] options' defaults, except the check
# interval (5 s there), so that a dead haproxy loses the VIP within about two seconds.
VRRP_ID = 1  # the same for every load balancer: the peers are unicast
PRIORITIES = {"MASTER": 100, "BACKUP": 90}
ADVERT_INT, CHECK_INTERVAL, CHECK_FALL, CHECK_RISE = 1, 1, 2, 2
GARP_REFRESH, GARP_REPEAT = 5, 2


@dataclass(frozen=True)
class Vip:
    """A load balancer's instance this host realizes, and how its port (the VIP's, or for
    ACTIVE_STANDBY the amphora's VRRP port) is plugged."""

    lb: LoadBalancer
    port_id: str
    network_id: str
    ifname: str
    addresses: tuple[Address, ...]


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
        subnet = subnets.get(lb["vip_subnet_id"])
        if subnet is None:
            continue
        prefix = ipaddress.ip_network(subnet["cidr"]).prefixlen
        balancer = LoadBalancer(
            id=lb["id"],
            netns=netns(host, lb["id"]),
            revision=int(lb.get("revision", 0)),
            amphora_id=lb.get("amphora_id") or "",
            gateway=subnet.get("gateway_ip"),
            config=render_proxies(lb),
            l4=compile_l4(lb),
            files=tuple(sorted(render_files(lb).items())),
        )
        if not lb.get("amphorae"):
            port = ports.get(lb["vip_port_id"])
            if port is None or not is_local(lb, port, host):
                continue
            ifname = vip_interface(port["id"])
            addresses = port_addresses(
                balancer.netns, ifname, f"{lb['vip_address']}/{prefix}", port, subnets
            )
            out.append(Vip(balancer, port["id"], port["network_id"], ifname, addresses))
            continue
        for amphora in lb["amphorae"]:
            port = ports.get(amphora["vrrp_port_id"])
            if port is None or not amphora.get("vrrp_ip") or not is_local(lb, port, host):
                continue
            where = f"{balancer.netns}-{amphora['id'][:11]}"
            ifname = vip_interface(port["id"])
            host_prefix = 128 if ":" in lb["vip_address"] else 32
            instance = dataclasses.replace(
                balancer,
                netns=where,
                amphora_id=amphora["id"],
                vrrp=render_vrrp(lb, amphora, ifname, bool(balancer.config)),
            )
            addresses = (
                *port_addresses(where, ifname, f"{amphora['vrrp_ip']}/{prefix}", port, subnets),
                Address(where, ifname, f"{lb['vip_address']}/{host_prefix}", vrrp=True),
            )
            out.append(Vip(instance, port["id"], port["network_id"], ifname, addresses))
    return out


def port_addresses(
    where: str, ifname: str, own: str, port: dict[str, Any], subnets: dict[str, dict[str, Any]]
) -> tuple[Address, ...]:
    """The addresses of the port plugged as `ifname`: `own` (the VIP's, or the amphora's VRRP
    one, with its prefix length) first, then those of its other subnets (on a dual-stack
    network, the SLAAC one every port gets), from which members of the other family on the
    network are reached."""
    others = [
        f"{ip['ip_address']}/{ipaddress.ip_network(subnets[ip['subnet_id']]['cidr']).prefixlen}"
        for ip in port.get("fixed_ips", [])
        if ip.get("subnet_id") in subnets
    ]
    return tuple(Address(where, ifname, cidr, nodad=True) for cidr in dict.fromkeys([own, *others]))


def render_vrrp(lb: dict[str, Any], amphora: dict[str, Any], ifname: str, checked: bool) -> str:
    """keepalived's vrrp_instance for one amphora, as Octavia's keepalived template renders it.
    The check script (`check_script`, the driver's) tracks that haproxy answers, if it runs
    (`checked`): a MASTER whose haproxy fails hands the VIP over."""
    peers = [
        other["vrrp_ip"]
        for other in lb["amphorae"]
        if other["id"] != amphora["id"] and other.get("vrrp_ip")
    ]
    lines = [
        f"vrrp_instance {lb['id'].replace('-', '')} {{",
        f"  state {amphora['role']}",
        f"  interface {ifname}",
        f"  virtual_router_id {VRRP_ID}",
        f"  priority {PRIORITIES[amphora['role']]}",
        "  nopreempt",
        "  accept",
        f"  garp_master_refresh {GARP_REFRESH}",
        f"  garp_master_refresh_repeat {GARP_REPEAT}",
        f"  advert_int {ADVERT_INT}",
        "  authentication {",
        "    auth_type PASS",
        f"    auth_pass {lb['id'].replace('-', '')[:7]}",
        "  }",
        f"  unicast_src_ip {amphora['vrrp_ip']}",
        "  unicast_peer {",
        *(f"    {peer}" for peer in peers),
        "  }",
        "  virtual_ipaddress {",
        f"    {lb['vip_address']}",
        "  }",
    ]
    if checked:
        lines += ["  track_script {", "    check_script", "  }"]
    return "\n".join([*lines, "}", ""])


def render_proxies(lb: dict[str, Any]) -> str:
    """haproxy's `defaults`, `frontend` and `backend` sections for one load balancer's tree.

    Empty without HTTP or TCP listeners: there is nothing for haproxy to do (it refuses to start
    without one). UDP and SCTP listeners and pools are nftables' (plan.l4).
    """
    listeners = [li for li in lb.get("listeners", []) if li["protocol"] not in KERNEL_PROTOCOLS]
    if not listeners:
        return ""
    lines = ["defaults", "    retries 3", "    option redispatch", "    option dontlognull", ""]
    pools = {
        pool["id"]: pool for pool in lb.get("pools", []) if pool["protocol"] not in KERNEL_PROTOCOLS
    }
    for listener in listeners:
        default = pools.get(listener.get("default_pool_id") or "")
        lines += _frontend(lb, listener, default)
        used = [default["id"]] if default else []
        for policy, _ in _policies(listener):
            if policy["action"] == "REDIRECT_TO_POOL" and policy["redirect_pool_id"] not in used:
                used.append(policy["redirect_pool_id"])
        for pool_id in used:
            lines += _backend(pools[pool_id], listener)
    return "\n".join(lines)


def backend(pool_id: str, listener_id: str) -> str:
    """The name of a pool's backend in a listener: each listener that uses a pool has its own, as
    Octavia's amphora renders them (its mode, headers and PROXY header are the listener's)."""
    return f"{pool_id}:{listener_id}"


def render_files(lb: dict[str, Any]) -> dict[str, str]:
    """The files the proxies name: each PEM, and each TLS listener's crt-list."""
    files: dict[str, str] = {}

    def add(pem: str | None) -> str | None:
        if pem is None:
            return None
        files[pem_file(pem)] = pem
        return pem_file(pem)

    for listener in lb.get("listeners", []):
        pem = listener.get("pem") or {}
        certificates = [pem.get("default_tls_container_ref"), *pem.get("sni_container_refs", [])]
        listed = [add(c) for c in certificates if c is not None]
        if listed:
            files[crt_list(listener)] = "".join(f"{name}\n" for name in listed)
        add(pem.get("client_ca_tls_container_ref"))
        add(pem.get("client_crl_container_ref"))
    for pool in lb.get("pools", []):
        for pem in (pool.get("pem") or {}).values():
            add(pem)
    return files


def pem_file(pem: str) -> str:
    return hashlib.sha256(pem.encode()).hexdigest()[:32] + ".pem"


def crt_list(listener: dict[str, Any]) -> str:
    return f"{listener['id']}.crt-list"


def _frontend(
    lb: dict[str, Any], listener: dict[str, Any], pool: dict[str, Any] | None
) -> list[str]:
    limit = listener.get("connection_limit", -1)
    default = lb.get("flavor_data", {}).get("default_connection_limit", MAX_CONNECTIONS)
    lines = [
        f"frontend {listener['id']}",
        f"    mode {MODES[listener['protocol']]}",
        " ".join(
            [
                f"    bind {_endpoint(lb['vip_address'], listener['protocol_port'])}",
                *_bind_tls(listener),
            ]
        ),
        f"    maxconn {limit if limit >= 0 else default}",
        f"    timeout client {listener.get('timeout_client_data', DEFAULT_DATA_MS)}",
    ]
    if listener["protocol"] == "TERMINATED_HTTPS":
        lines += _tls_headers(listener)
    if listener.get("allowed_cidrs"):
        lines += [
            f"    acl allowed_cidr src {' '.join(listener['allowed_cidrs'])}",
            "    tcp-request connection reject unless allowed_cidr",
        ]
    if listener["protocol"] == "PROMETHEUS":
        lines.append("    http-request use-service prometheus-exporter")
    lines += _l7(listener)
    if pool is not None:
        lines.append(f"    default_backend {backend(pool['id'], listener['id'])}")
    if not (lb.get("admin_state_up", True) and listener.get("admin_state_up", True)):
        lines.append("    disabled")
    return [*lines, ""]


def _bind_tls(listener: dict[str, Any]) -> list[str]:
    """A TLS listener's `bind` options, as Octavia's bind macro."""
    pem = listener.get("pem") or {}
    if listener["protocol"] != "TERMINATED_HTTPS":
        return []
    words = ["ssl", "crt-list", crt_list(listener)]
    client_ca = pem.get("client_ca_tls_container_ref")
    verify = CLIENT_AUTH.get(listener.get("client_authentication") or "NONE", "none")
    if client_ca:
        words += ["ca-file", pem_file(client_ca), "verify", verify]
        if pem.get("client_crl_container_ref"):
            words += ["crl-file", pem_file(pem["client_crl_container_ref"])]
    return [*words, *_tls_options(listener)]


def _tls_options(obj: dict[str, Any]) -> list[str]:
    """ciphers, the versions left out, and ALPN of a TLS listener or pool."""
    words = []
    if obj.get("tls_ciphers"):
        words += ["ciphers", obj["tls_ciphers"]]
    if obj.get("tls_versions") is not None:
        words += [no for version, no in TLS_VERSIONS.items() if version not in obj["tls_versions"]]
    if obj.get("alpn_protocols"):
        words += ["alpn", ",".join(obj["alpn_protocols"])]
    return words


def _tls_headers(listener: dict[str, Any]) -> list[str]:
    """HSTS on answers, and the client certificate's X-SSL-* headers on requests."""
    lines = []
    if listener.get("hsts_max_age") is not None:
        directives = f"max-age={listener['hsts_max_age']};"
        if listener.get("hsts_include_subdomains"):
            directives += " includeSubDomains;"
        if listener.get("hsts_preload"):
            directives += " preload;"
        lines.append(f'    http-response set-header Strict-Transport-Security "{directives}"')
    inserted = listener.get("insert_headers") or {}
    for header, value in SSL_HEADERS.items():
        if str(inserted.get(header, "")).lower() == "true":
            lines.append(f"    http-request set-header {header} {value}")
    return lines


def _policies(listener: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The listener's policies that can match, in position order, with their enabled rules:
    policies without an enabled rule never match and are left out."""
    found = []
    for policy in sorted(listener.get("l7policies", []), key=lambda p: p["position"]):
        rules = [r for r in policy.get("rules", []) if r.get("admin_state_up", True)]
        if policy.get("admin_state_up", True) and rules:
            found.append((policy, rules))
    return found


def _l7(listener: dict[str, Any]) -> list[str]:
    """L7 policies as Octavia's haproxy reference renders them: an `acl` per rule, ANDed per
    policy; rejections first, then redirects, then pool choices, each kind in position order
    (the first match wins)."""
    acls: list[str] = []
    actions: dict[str, list[str]] = {"REJECT": [], "REDIRECT": [], "REDIRECT_TO_POOL": []}
    for policy, rules in _policies(listener):
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
            pool = backend(policy["redirect_pool_id"], listener["id"])
            actions["REDIRECT_TO_POOL"].append(f"    use_backend {pool} if {condition}")
    return [*acls, *(line for kind in actions.values() for line in kind)]


# What an L7 rule looks at (FILE_TYPE: the path's end) and how it compares (haproxy's -m methods).
SAMPLES = {
    "HOST_NAME": "req.hdr(host) -i",
    "PATH": "path",
    "FILE_TYPE": "path",
    "HEADER": "req.hdr({key})",
    "COOKIE": "req.cook({key})",
    "SSL_DN_FIELD": "ssl_c_s_dn({key})",
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
    if rule["type"] == "SSL_CONN_HAS_CERT":
        return "ssl_c_used"
    if rule["type"] == "SSL_VERIFY_RESULT":
        return f"ssl_c_verify eq {value}"
    if rule["type"] == "FILE_TYPE":
        value, compare = (
            (f".{value}", "ENDS_WITH") if compare == "EQUAL_TO" else (f"\\.({value})$", "REGEX")
        )
    return f"{SAMPLES[rule['type']].format(key=rule.get('key'))} -m {MATCHES[compare]} '{value}'"


def _backend(pool: dict[str, Any], listener: dict[str, Any]) -> list[str]:
    monitor = pool.get("healthmonitor")
    if monitor is not None and not monitor.get("admin_state_up", True):
        monitor = None
    proxy_header = PROXY_HEADERS.get(pool["protocol"])
    if proxy_header == "send-proxy-v2" and listener["protocol"] == "TERMINATED_HTTPS":
        proxy_header = "send-proxy-v2-ssl-cn"  # with the client certificate's CN, as Octavia
    lines = [
        f"backend {backend(pool['id'], listener['id'])}",
        f"    mode {MODES[listener['protocol'] if proxy_header else pool['protocol']]}",
        *_balance(pool["lb_algorithm"]),
        f"    timeout connect {listener.get('timeout_member_connect', DEFAULT_CONNECT_MS)}",
        f"    timeout server {listener.get('timeout_member_data', DEFAULT_DATA_MS)}",
        *_persistence(pool.get("session_persistence")),
    ]
    tls = _server_tls(pool)
    if monitor is not None:
        lines += _monitor(monitor)
    lines += _inserted_headers(pool, listener)
    cookie = (pool.get("session_persistence") or {}).get("type") == "HTTP_COOKIE"
    for member in pool.get("members", []):
        server = _server(member, pool, monitor, cookie, proxy_header)
        lines.append("    " + " ".join([server, *tls]))
    if not pool.get("admin_state_up", True):
        lines.append("    disabled")
    return [*lines, ""]


def _inserted_headers(pool: dict[str, Any], listener: dict[str, Any]) -> list[str]:
    """The headers the listener adds to requests, as Octavia renders them: those set to "true"
    (the client's certificate's ones are TERMINATED_HTTPS listeners'); the client's address and
    port only to HTTP pools, the scheme also to PROXY ones behind an HTTP listener."""
    wanted = {k for k, v in (listener.get("insert_headers") or {}).items() if v.lower() == "true"}
    lines = []
    if pool["protocol"] == "HTTP" and "X-Forwarded-For" in wanted:
        lines.append("    option forwardfor")
    if pool["protocol"] == "HTTP" and "X-Forwarded-Port" in wanted:
        lines.append("    http-request set-header X-Forwarded-Port %[dst_port]")
    if "X-Forwarded-Proto" in wanted and listener["protocol"] in ("HTTP", "TERMINATED_HTTPS"):
        scheme = "https" if listener["protocol"] == "TERMINATED_HTTPS" else "http"
        lines.append(f"    http-request set-header X-Forwarded-Proto {scheme}")
    return lines


def _balance(algorithm: str) -> list[str]:
    if algorithm == "SOURCE_IP_PORT":
        # A hash of the client's address and port; haproxy concatenates only variables.
        return [
            "    tcp-request content set-var(txn.src_port) src_port",
            "    balance hash src,concat(:,txn.src_port)",
        ]
    return [f"    balance {ALGORITHMS[algorithm]}"]


def _monitor(monitor: dict[str, Any]) -> list[str]:
    """The backend's part of a health monitor, as Octavia's amphora renders it; HTTPS checks
    are HTTP checks over TLS (the server line's `check-ssl`)."""
    lines = [f"    timeout check {monitor['timeout']}s"]
    if monitor["type"] in ("HTTP", "HTTPS"):
        request = f"{monitor['http_method']} {monitor['url_path']}"
        version = monitor.get("http_version")
        lines.append(f"    option httpchk {request}" + (f" HTTP/{version}" if version else ""))
        if version == 1.1 and monitor.get("domain_name"):
            lines.append(f"    http-check send hdr Host {monitor['domain_name']}")
        lines.append(f"    http-check expect rstatus {_status_pattern(monitor['expected_codes'])}")
    elif monitor["type"] == "TLS-HELLO":
        lines.append("    option ssl-hello-chk")
    return lines


def _server(
    member: dict[str, Any],
    pool: dict[str, Any],
    monitor: dict[str, Any] | None,
    cookie: bool,
    proxy_header: str | None,
) -> str:
    words = [
        f"server {member['id']} {_endpoint(member['address'], member['protocol_port'])}",
        f"weight {member.get('weight', 1)}",
    ]
    if monitor is not None:
        check = ["check"]
        if monitor["type"] == "HTTPS":
            check += ["check-ssl", "verify", "none"]
        if pool.get("tls_enabled") and pool.get("alpn_protocols"):
            # checks over the pool's TLS offer its protocols too (an h2-only member needs it)
            check += ["check-alpn", ",".join(pool["alpn_protocols"])]
        words += [
            *check,
            f"inter {monitor['delay']}s",
            f"fall {monitor.get('max_retries_down', 3)}",
            f"rise {monitor['max_retries']}",
        ]
        if member.get("monitor_address"):
            words.append(f"addr {member['monitor_address']}")
        if member.get("monitor_port"):
            words.append(f"port {member['monitor_port']}")
    if cookie:
        words.append(f"cookie {member['id']}")
    if proxy_header:
        words.append(proxy_header)
    if member.get("backup"):
        words.append("backup")
    if not member.get("admin_state_up", True):
        words.append("disabled")
    return " ".join(words)


def _server_tls(pool: dict[str, Any]) -> list[str]:
    """A tls_enabled pool's server options, as Octavia's member macro: its client certificate,
    the CA that must have signed the member's (else no verification) and the CRL."""
    if not pool.get("tls_enabled"):
        return []
    pem = pool.get("pem") or {}
    words = ["ssl"]
    if pem.get("tls_container_ref"):
        words += ["crt", pem_file(pem["tls_container_ref"])]
    if pem.get("ca_tls_container_ref"):
        words += ["ca-file", pem_file(pem["ca_tls_container_ref"]), "verify", "required"]
        if pem.get("crl_container_ref"):
            words += ["crl-file", pem_file(pem["crl_container_ref"])]
    else:
        words += ["verify", "none"]
    return [*words, "sni", "ssl_fc_sni", *_tls_options(pool)]


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
