"""plan.loadbalancer: which host realizes a load balancer, and the haproxy proxies it renders."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

from neutrino.plan import HostConfig
from neutrino.plan.loadbalancer import (
    compile_loadbalancers,
    pem_file,
    render_files,
    render_proxies,
)
from tests.certificates import issue

HOST = HostConfig.isolated("h1", prefix="t-")
SUBNET = {"id": "sub", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "network_id": "net"}


def tree(**pool: Any) -> dict[str, Any]:
    members = [
        {"id": "m1", "address": "10.0.0.11", "protocol_port": 8000, "weight": 3},
        {
            "id": "m2",
            "address": "10.0.0.12",
            "protocol_port": 8000,
            "weight": 1,
            "backup": True,
            "admin_state_up": False,
        },
    ]
    return {
        "id": "lb1",
        "vip_address": "10.0.0.5",
        "vip_port_id": "vipport0001xyz",
        "vip_subnet_id": "sub",
        "revision": 42,
        "provisioning_status": "ACTIVE",
        "listeners": [
            {
                "id": "l1",
                "protocol": "HTTP",
                "protocol_port": 80,
                "connection_limit": 100,
                "default_pool_id": "p1",
                "timeout_client_data": 20000,
                "timeout_member_connect": 3000,
                "timeout_member_data": 40000,
            }
        ],
        "pools": [
            {
                "id": "p1",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": members,
                "healthmonitor": None,
                **pool,
            }
        ],
    }


def port(bound: str) -> dict[str, Any]:
    return {"id": "vipport0001xyz", "network_id": "net", "binding:host_id": bound}


def test_bound_host_realizes_it_in_its_namespace() -> None:
    [vip] = compile_loadbalancers(
        {"loadbalancers": [tree()]}, HOST, {"vipport0001xyz": port("h1")}, {"sub": SUBNET}
    )
    assert (vip.lb.netns, vip.lb.revision, vip.lb.gateway) == ("t-h1-qlbaas-lb1", 42, "10.0.0.1")
    assert (vip.ifname, [a.cidr for a in vip.addresses]) == ("vip-vipport0001", ["10.0.0.5/24"])
    assert (
        compile_loadbalancers(
            {"loadbalancers": [tree()]}, HOST, {"vipport0001xyz": port("h2")}, {"sub": SUBNET}
        )
        == []
    )
    leaving = {**tree(), "provisioning_status": "PENDING_DELETE"}
    assert (
        compile_loadbalancers(
            {"loadbalancers": [leaving]}, HOST, {"vipport0001xyz": port("")}, {"sub": SUBNET}
        )
        == []
    )


def test_the_vip_interface_carries_the_ports_addresses_of_both_families() -> None:
    """A VIP port on a dual-stack network has its SLAAC address too: members of either family
    are reached from the namespace. The VIP comes first; IPv6 addresses skip DAD."""
    v6 = {"id": "v6", "cidr": "fd00::/64", "gateway_ip": "fd00::1", "network_id": "net"}
    fixed = [
        {"subnet_id": "sub", "ip_address": "10.0.0.5"},
        {"subnet_id": "v6", "ip_address": "fd00::f816:3eff:fe00:1"},
    ]
    dual = {**port("h1"), "fixed_ips": list(reversed(fixed))}
    subnets = {"sub": SUBNET, "v6": v6}
    [vip] = compile_loadbalancers({"loadbalancers": [tree()]}, HOST, {dual["id"]: dual}, subnets)
    assert [(a.cidr, a.nodad) for a in vip.addresses] == [
        ("10.0.0.5/24", True),
        ("fd00::f816:3eff:fe00:1/64", True),
    ]


def test_active_standby_amphorae_each_run_keepalived_with_the_other_as_peer() -> None:
    amphorae = [
        {
            "id": "amp-master-1",
            "role": "MASTER",
            "vrrp_port_id": "vrrpport0001",
            "vrrp_ip": "10.0.0.7",
        },
        {
            "id": "amp-backup-1",
            "role": "BACKUP",
            "vrrp_port_id": "vrrpport0002",
            "vrrp_ip": "10.0.0.8",
        },
    ]
    vrrp_port = {"network_id": "net", "binding:host_id": "h1"}
    ports = {
        "vipport0001xyz": port("h1"),
        "vrrpport0001": {**vrrp_port, "id": "vrrpport0001"},
        "vrrpport0002": {**vrrp_port, "id": "vrrpport0002"},
    }
    model = {"loadbalancers": [{**tree(), "id": "lb-1", "amphorae": amphorae}]}
    master, backup = compile_loadbalancers(model, HOST, ports, {"sub": SUBNET})
    # The VIP port is not plugged: each amphora has its own port and namespace.
    assert [(vip.port_id, vip.lb.netns, vip.lb.key) for vip in (master, backup)] == [
        ("vrrpport0001", "t-h1-qlbaas-lb-1-amp-master-", "amp-master-1"),
        ("vrrpport0002", "t-h1-qlbaas-lb-1-amp-backup-", "amp-backup-1"),
    ]
    assert master.lb.config == backup.lb.config == render_proxies(tree())
    assert [(a.cidr, a.vrrp) for a in master.addresses] == [
        ("10.0.0.7/24", False),
        ("10.0.0.5/32", True),
    ]
    rendered = [
        "vrrp_instance lb1 {",
        "  state MASTER",
        "  interface vip-vrrpport000",
        "  virtual_router_id 1",
        "  priority 100",
        "  nopreempt",
        "  accept",
        "  garp_master_refresh 5",
        "  garp_master_refresh_repeat 2",
        "  advert_int 1",
        "  authentication {",
        "    auth_type PASS",
        "    auth_pass lb1",
        "  }",
        "  unicast_src_ip 10.0.0.7",
        "  unicast_peer {",
        "    10.0.0.8",
        "  }",
        "  virtual_ipaddress {",
        "    10.0.0.5",
        "  }",
        "  track_script {",
        "    check_script",
        "  }",
        "}",
        "",
    ]
    assert master.lb.vrrp == "\n".join(rendered)
    assert "  priority 90\n" in backup.lb.vrrp and "    10.0.0.7\n" in backup.lb.vrrp
    # Each goes to the host of its own port.
    ports["vrrpport0002"] = {**ports["vrrpport0002"], "binding:host_id": "h2"}
    assert [v.port_id for v in compile_loadbalancers(model, HOST, ports, {"sub": SUBNET})] == [
        "vrrpport0001"
    ]


def test_an_unbound_vip_goes_only_to_a_host_of_its_availability_zone() -> None:
    zoned = {**tree(), "availability_zone_data": {"compute_zone": "az2"}}
    unbound = {"vipport0001xyz": port("")}
    assert compile_loadbalancers({"loadbalancers": [zoned]}, HOST, unbound, {"sub": SUBNET}) == []
    in_az2 = dataclasses.replace(HOST, availability_zone="az2")
    assert compile_loadbalancers({"loadbalancers": [zoned]}, in_az2, unbound, {"sub": SUBNET})
    assert compile_loadbalancers({"loadbalancers": [tree()]}, HOST, unbound, {"sub": SUBNET})


def test_flavor_connection_limit_for_listeners_without_one() -> None:
    unlimited = tree()
    unlimited["listeners"][0]["connection_limit"] = -1
    assert "    maxconn 50000\n" in render_proxies(unlimited)
    flavored = {**unlimited, "flavor_data": {"default_connection_limit": 300}}
    assert "    maxconn 300\n" in render_proxies(flavored)
    assert "    maxconn 100\n" in render_proxies({**tree(), "flavor_data": flavored["flavor_data"]})


def test_round_robin_with_weights_backup_and_disabled_members() -> None:
    config = render_proxies(tree())
    assert (
        "frontend l1\n    mode http\n    bind 10.0.0.5:80\n    maxconn 100\n"
        "    timeout client 20000\n"
        "    default_backend p1:l1\n" in config
    )
    assert "    balance roundrobin\n    timeout connect 3000\n    timeout server 40000\n" in config
    assert "    server m1 10.0.0.11:8000 weight 3\n" in config
    assert "    server m2 10.0.0.12:8000 weight 1 backup disabled\n" in config


def test_health_monitor_and_persistence() -> None:
    monitor = {
        "type": "HTTP",
        "delay": 2,
        "timeout": 1,
        "max_retries": 3,
        "max_retries_down": 2,
        "http_method": "GET",
        "url_path": "/health",
        "expected_codes": "200-202",
        "admin_state_up": True,
    }
    config = render_proxies(
        tree(
            lb_algorithm="LEAST_CONNECTIONS",
            healthmonitor=monitor,
            session_persistence={"type": "SOURCE_IP"},
        )
    )
    assert "    balance leastconn\n" in config
    assert "    stick-table type ip size 10k\n    stick on src\n" in config
    assert (
        "    option httpchk GET /health\n    http-check expect rstatus ^(200|201|202)$\n" in config
    )
    assert "server m1 10.0.0.11:8000 weight 3 check inter 2s fall 2 rise 3\n" in config
    cookie = render_proxies(
        tree(lb_algorithm="SOURCE_IP", session_persistence={"type": "HTTP_COOKIE"})
    )
    assert (
        "    balance source\n    timeout" in cookie
        and "cookie SRV insert indirect nocache" in cookie
    )
    assert "weight 3 cookie m1\n" in cookie


def test_no_listener_no_haproxy() -> None:
    assert render_proxies({**tree(), "listeners": []}) == ""


def test_l7_policies_render_in_octavia_precedence_and_haproxy_accepts_them(tmp_path: Path) -> None:
    def rule(
        rule_id: str, kind: str, compare: str, value: str, key: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": rule_id,
            "type": kind,
            "compare_type": compare,
            "value": value,
            "key": key,
            **extra,
        }

    policies = [
        {
            "id": "to-images",
            "position": 1,
            "action": "REDIRECT_TO_POOL",
            "redirect_pool_id": "p1",
            "rules": [
                rule("r1", "PATH", "STARTS_WITH", "/images"),
                rule("r2", "FILE_TYPE", "EQUAL_TO", "png"),
            ],
        },
        {
            "id": "moved",
            "position": 2,
            "action": "REDIRECT_PREFIX",
            "redirect_prefix": "https://new.example",
            "redirect_http_code": 301,
            "rules": [rule("r3", "HOST_NAME", "ENDS_WITH", "old.example")],
        },
        {
            "id": "blocked",
            "position": 3,
            "action": "REJECT",
            "rules": [
                rule("r4", "HEADER", "EQUAL_TO", "yes", key="X-Block"),
                rule("r5", "COOKIE", "REGEX", "^a.*$", key="session", invert=True),
            ],
        },
        {
            "id": "elsewhere",
            "position": 4,
            "action": "REDIRECT_TO_URL",
            "redirect_url": "https://example.com/x",
            "redirect_http_code": 302,
            "rules": [rule("r6", "FILE_TYPE", "REGEX", "jpe?g")],
        },
        {"id": "no-rules", "position": 5, "action": "REJECT", "rules": []},
        {
            "id": "off",
            "position": 6,
            "action": "REJECT",
            "admin_state_up": False,
            "rules": [rule("r7", "PATH", "CONTAINS", "x")],
        },
    ]
    lb = tree()
    lb["listeners"][0]["l7policies"] = policies
    config = render_proxies(lb)
    acls = [
        "acl r1 path -m beg '/images'",
        "acl r2 path -m end '.png'",
        "acl r3 req.hdr(host) -i -m end 'old.example'",
        "acl r4 req.hdr(X-Block) -m str 'yes'",
        "acl r5 req.cook(session) -m reg '^a.*$'",
        "acl r6 path -m reg '\\.(jpe?g)$'",
    ]
    # Rejections, then redirects, then pools, whatever their positions; the default pool last.
    actions = [
        "http-request deny deny_status 403 if r4 !r5",
        "http-request redirect prefix 'https://new.example' code 301 if r3",
        "http-request redirect location 'https://example.com/x' code 302 if r6",
        "use_backend p1:l1 if r1 r2",
        "default_backend p1:l1",
    ]
    assert "".join(f"    {line}\n" for line in [*acls, *actions]) in config
    assert "r7" not in config
    haproxy_accepts(config, tmp_path)


def haproxy_accepts(config: str, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(config + "\n")
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_tls_pass_through_proxy_protocol_and_source_ip_port(tmp_path: Path) -> None:
    lb = tree(protocol="HTTPS", lb_algorithm="SOURCE_IP_PORT")
    lb["listeners"][0].update(protocol="HTTPS", protocol_port=443)
    lb["listeners"] += [
        {"id": "l2", "protocol": "HTTP", "protocol_port": 80, "default_pool_id": "p2"},
        {"id": "l3", "protocol": "TCP", "protocol_port": 81, "default_pool_id": "p2"},
        {"id": "l4", "protocol": "TCP", "protocol_port": 82, "default_pool_id": "p3"},
    ]
    lb["pools"].append({**tree()["pools"][0], "id": "p2", "protocol": "PROXYV2"})
    lb["pools"].append({**tree()["pools"][0], "id": "p3", "protocol": "PROXY"})
    lb["pools"].append({**tree()["pools"][0], "id": "unused"})
    config = render_proxies(lb)
    # TLS passes through: haproxy sees TCP on both sides.
    assert "frontend l1\n    mode tcp\n    bind 10.0.0.5:443\n" in config
    assert (
        "backend p1:l1\n    mode tcp\n    tcp-request content set-var(txn.src_port) src_port\n"
        "    balance hash src,concat(:,txn.src_port)\n" in config
    )
    assert "    server m1 10.0.0.11:8000 weight 3\n" in config
    # A PROXY pool speaks each listener's protocol after the header, in a backend per listener.
    assert "backend p2:l2\n    mode http\n    balance roundrobin\n" in config
    assert "backend p2:l3\n    mode tcp\n    balance roundrobin\n" in config
    assert "    server m1 10.0.0.11:8000 weight 3 send-proxy-v2\n" in config
    assert "backend p3:l4\n    mode tcp\n" in config
    assert "    server m1 10.0.0.11:8000 weight 3 send-proxy\n" in config
    # A pool no listener uses is not haproxy's.
    assert "unused" not in config
    haproxy_accepts(config, tmp_path)


def test_https_and_tls_hello_monitors_and_the_host_header(tmp_path: Path) -> None:
    monitor = {
        "delay": 2,
        "timeout": 1,
        "max_retries": 3,
        "max_retries_down": 2,
        "http_method": "HEAD",
        "url_path": "/up",
        "expected_codes": "200",
    }

    def tcp(**pool: Any) -> dict[str, Any]:
        lb = tree(protocol="TCP", **pool)
        lb["listeners"][0]["protocol"] = "TCP"
        return lb

    https = render_proxies(
        tcp(
            healthmonitor={
                **monitor,
                "type": "HTTPS",
                "http_version": 1.1,
                "domain_name": "www.example.com",
            },
        )
    )
    assert (
        "    timeout check 1s\n    option httpchk HEAD /up HTTP/1.1\n"
        "    http-check send hdr Host www.example.com\n"
        "    http-check expect rstatus ^(200)$\n" in https
    )
    assert (
        "server m1 10.0.0.11:8000 weight 3 check check-ssl verify none inter 2s fall 2 rise 3\n"
        in https
    )
    haproxy_accepts(https, tmp_path)
    http10 = render_proxies(
        tree(healthmonitor={**monitor, "type": "HTTP", "http_version": 1.0, "domain_name": None})
    )
    assert "    option httpchk HEAD /up HTTP/1.0\n    http-check expect" in http10
    hello = render_proxies(tcp(healthmonitor={**monitor, "type": "TLS-HELLO"}))
    assert "    timeout check 1s\n    option ssl-hello-chk\n" in hello
    assert "weight 3 check inter 2s fall 2 rise 3\n" in hello and "httpchk" not in hello
    haproxy_accepts(hello, tmp_path)


def test_tls_termination_and_re_encryption_as_octavia_renders_them(tmp_path: Path) -> None:
    ca, crl = issue("CA", ca=True), "-----BEGIN X509 CRL-----\n"
    default, sni, client = (
        issue("www.example.com", ca),
        issue("shop.example.com", ca),
        issue("c", ca),
    )
    lb = tree(
        tls_enabled=True,
        tls_versions=["TLSv1.3"],
        tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384",
        alpn_protocols=["http/1.1"],
        pem={"tls_container_ref": client.pem, "ca_tls_container_ref": ca.certificate},
    )
    lb["listeners"][0].update(
        protocol="TERMINATED_HTTPS",
        protocol_port=443,
        client_authentication="OPTIONAL",
        tls_versions=["TLSv1.2", "TLSv1.3"],
        tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256",
        alpn_protocols=["h2", "http/1.1"],
        hsts_max_age=3600,
        hsts_preload=True,
        insert_headers={"X-SSL-Client-CN": "True", "X-SSL-Issuer": "false", "X-Forwarded-For": "1"},
        pem={
            "default_tls_container_ref": default.pem,
            "sni_container_refs": [sni.pem],
            "client_ca_tls_container_ref": ca.certificate,
            "client_crl_container_ref": crl,
        },
    )
    rules = [
        {"id": "r1", "type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "True"},
        {"id": "r2", "type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
        {"id": "r3", "type": "SSL_DN_FIELD", "compare_type": "EQUAL_TO", "key": "CN", "value": "c"},
    ]
    lb["listeners"][0]["l7policies"] = [
        {"id": "l7", "position": 1, "action": "REJECT", "rules": rules[:2]},
        {"id": "l8", "position": 2, "action": "REJECT", "rules": rules[2:]},
    ]
    config, files = render_proxies(lb), render_files(lb)
    assert (
        "    acl r1 ssl_c_used\n    acl r2 ssl_c_verify eq 0\n"
        "    acl r3 ssl_c_s_dn(CN) -m str 'c'\n"
    ) in config
    assert files == {
        pem_file(default.pem): default.pem,
        pem_file(sni.pem): sni.pem,
        pem_file(ca.certificate): ca.certificate,
        pem_file(crl): crl,
        pem_file(client.pem): client.pem,
        "l1.crt-list": f"{pem_file(default.pem)}\n{pem_file(sni.pem)}\n",
    }
    assert (
        f"    bind 10.0.0.5:443 ssl crt-list l1.crt-list ca-file {pem_file(ca.certificate)} "
        f"verify optional crl-file {pem_file(crl)} ciphers ECDHE-ECDSA-AES128-GCM-SHA256 "
        "no-sslv3 no-tlsv10 no-tlsv11 alpn h2,http/1.1\n"
    ) in config
    assert '    http-response set-header Strict-Transport-Security "max-age=3600; preload;"\n' in (
        config
    )
    assert "    http-request set-header X-SSL-Client-CN %{+Q}[ssl_c_s_dn(cn)]\n" in config
    assert "X-SSL-Issuer" not in config and "X-Forwarded-For" not in config
    assert (
        "    server m1 10.0.0.11:8000 weight 3 "
        f"ssl crt {pem_file(client.pem)} ca-file {pem_file(ca.certificate)} verify required "
        "sni ssl_fc_sni ciphers ECDHE-ECDSA-AES256-GCM-SHA384 "
        "no-sslv3 no-tlsv10 no-tlsv11 no-tlsv12 alpn http/1.1\n"
    ) in config
    del files[pem_file(crl)]  # not a CRL: haproxy would refuse it
    config = config.replace(f" crl-file {pem_file(crl)}", "")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "haproxy.cfg").write_text(config)
    checked = subprocess.run(
        ["haproxy", "-c", "-C", str(tmp_path), "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_plain_listener_binds_without_tls_even_with_certificates_around() -> None:
    lb = tree()
    assert "    bind 10.0.0.5:80\n" in render_proxies(lb) and render_files(lb) == {}


def test_inserted_headers_in_the_backend_as_octavia_renders_them(tmp_path: Path) -> None:
    lb = tree()
    lb["listeners"][0]["insert_headers"] = {
        "X-Forwarded-For": "true",
        "X-Forwarded-Port": "True",
        "X-Forwarded-Proto": "false",
    }
    config = render_proxies(lb)
    assert (
        "    timeout server 40000\n    option forwardfor\n"
        "    http-request set-header X-Forwarded-Port %[dst_port]\n    server m1" in config
    )
    assert "X-Forwarded-Proto" not in config
    lb["listeners"][0]["insert_headers"] = {"X-Forwarded-Proto": "TRUE"}
    config = render_proxies(lb)
    assert "    http-request set-header X-Forwarded-Proto http\n    server m1" in config
    assert "forwardfor" not in config and "X-Forwarded-Port" not in config
    haproxy_accepts(config, tmp_path)


def test_a_redirect_pool_gets_the_headers_of_each_listener_that_sends_to_it() -> None:
    lb = tree()
    lb["listeners"][0]["insert_headers"] = {"X-Forwarded-For": "true"}
    lb["listeners"].append(
        {"id": "l2", "protocol": "HTTP", "protocol_port": 81, "default_pool_id": "p1"}
    )
    lb["pools"].append({**tree()["pools"][0], "id": "images"})
    rule = {"id": "r1", "type": "PATH", "compare_type": "STARTS_WITH", "value": "/i"}
    lb["listeners"][0]["l7policies"] = [
        {"id": "i", "position": 1, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "images"},
        {"id": "d", "position": 2, "action": "REDIRECT_TO_POOL", "redirect_pool_id": "p1"},
    ]
    for policy in lb["listeners"][0]["l7policies"]:
        policy["rules"] = [rule]
    config = render_proxies(lb)
    sections = {part.split("\n")[0]: part for part in config.split("\n\n")}
    assert set(sections) == {
        "defaults",
        "frontend l1",
        "backend p1:l1",
        "backend images:l1",
        "frontend l2",
        "backend p1:l2",
    }
    assert "    use_backend images:l1 if r1\n" in sections["frontend l1"]
    assert "option forwardfor" in sections["backend images:l1"]
    assert "option forwardfor" in sections["backend p1:l1"]
    assert "forwardfor" not in sections["backend p1:l2"]


def test_proxy_v2_behind_tls_termination_sends_the_client_cn_and_checks_offer_alpn(
    tmp_path: Path,
) -> None:
    ca = issue("CA", ca=True)
    certificate = issue("www.example.com", ca)
    monitor = {"type": "TCP", "delay": 2, "timeout": 1, "max_retries": 3, "max_retries_down": 2}
    lb = tree(protocol="PROXYV2", healthmonitor=monitor)
    lb["listeners"][0].update(
        protocol="TERMINATED_HTTPS",
        protocol_port=443,
        pem={"default_tls_container_ref": certificate.pem},
    )
    lb["listeners"] += [
        {"id": "l2", "protocol": "HTTP", "protocol_port": 80, "default_pool_id": "p1"},
        {"id": "l3", "protocol": "HTTP", "protocol_port": 81, "default_pool_id": "h2"},
        {"id": "l4", "protocol": "HTTP", "protocol_port": 82, "default_pool_id": "tls"},
    ]
    http_monitor = {**monitor, "type": "HTTP", "http_method": "GET", "url_path": "/"}
    http_monitor["expected_codes"] = "200"
    lb["pools"] += [
        {
            **tree()["pools"][0],
            "id": "h2",
            "tls_enabled": True,
            "alpn_protocols": ["h2", "http/1.1"],
            "healthmonitor": http_monitor,
        },
        {**tree()["pools"][0], "id": "tls", "tls_enabled": True, "healthmonitor": http_monitor},
    ]
    config = render_proxies(lb)
    sections = {part.split("\n")[0]: part for part in config.split("\n\n")}
    check = "check inter 2s fall 2 rise 3"
    assert f"m1 10.0.0.11:8000 weight 3 {check} send-proxy-v2-ssl-cn\n" in sections["backend p1:l1"]
    assert f"m1 10.0.0.11:8000 weight 3 {check} send-proxy-v2\n" in sections["backend p1:l2"]
    assert (
        "m1 10.0.0.11:8000 weight 3 check check-alpn h2,http/1.1 inter 2s fall 2 rise 3 "
        "ssl verify none sni ssl_fc_sni alpn h2,http/1.1\n"
    ) in sections["backend h2:l3"]
    assert "check-alpn" not in sections["backend tls:l4"]
    for name, text in render_files(lb).items():
        (tmp_path / name).write_text(text)
    (tmp_path / "haproxy.cfg").write_text(config)
    checked = subprocess.run(
        ["haproxy", "-c", "-C", str(tmp_path), "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_allowed_cidrs_reject_other_sources_before_anything_else(tmp_path: Path) -> None:
    lb = tree()
    lb["listeners"][0]["allowed_cidrs"] = ["192.0.2.0/24", "10.0.0.128/25"]
    config = render_proxies(lb)
    assert (
        "    timeout client 20000\n"
        "    acl allowed_cidr src 192.0.2.0/24 10.0.0.128/25\n"
        "    tcp-request connection reject unless allowed_cidr\n"
        "    default_backend p1:l1\n" in config
    )
    haproxy_accepts(config, tmp_path)
    lb["listeners"][0]["allowed_cidrs"] = None
    assert "allowed_cidr" not in render_proxies(lb)


def test_prometheus_listener_is_answered_by_haproxys_exporter(tmp_path: Path) -> None:
    lb = tree()
    lb["listeners"].append(
        {"id": "metrics", "protocol": "PROMETHEUS", "protocol_port": 9100, "connection_limit": -1}
    )
    config = render_proxies(lb)
    assert (
        "frontend metrics\n    mode http\n    bind 10.0.0.5:9100\n    maxconn 50000\n"
        "    timeout client 50000\n    http-request use-service prometheus-exporter\n" in config
    )
    haproxy_accepts(config, tmp_path)
