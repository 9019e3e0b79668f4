"""TLS in load balancers with real packets: TERMINATED_HTTPS listeners and re-encrypting pools.

The agent is given a model with a load balancer whose certificates are
already resolved (as the server sends them): haproxy in its namespace serves
a default and an SNI certificate, asks clients for theirs where the listener
says so, and speaks TLS to a member that only speaks TLS. The clients are
curl and Python's ssl inside an instance, checking the certificate against
the test's CA.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from netlab import PYTHON, Lab, flat_model, sync, wait_for

from neutrino.agent.instance import exec_in_instance
from neutrino.lab import models
from tests.certificates import Issued, issue

VIP = "10.10.0.100"
# A web server answering its name (argv[2]) on port argv[1]; over TLS with the certificate and
# key in the file argv[3], if given.
WEB = (
    "import http.server,ssl,sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "  def do_GET(self):\n"
    "    body=(sys.argv[2]+' '+self.headers.get('X-SSL-Client-CN','-')+'\\n').encode()\n"
    "    self.send_response(200);self.send_header('Content-Length',str(len(body)))\n"
    "    self.end_headers();self.wfile.write(body)\n"
    "  def log_message(self,*a): pass\n"
    "s=http.server.ThreadingHTTPServer(('0.0.0.0',int(sys.argv[1])),H)\n"
    "if len(sys.argv)>3:\n"
    "  c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER);c.load_cert_chain(sys.argv[3])\n"
    "  s.socket=c.wrap_socket(s.socket,server_side=True)\n"
    "s.serve_forever()\n"
)
# A member behind a PROXYV2 pool on port argv[1]: answers the client certificate's CN that the
# PROXY v2 header's SSL TLV (0x20) carries in its CN sub-TLV (0x22), "-" without one.
PROXY_V2_CN = (
    "import socket,socketserver,struct,sys\n"
    "def read(c,n):\n"
    "  d=b''\n"
    "  while len(d)<n: d+=c.recv(n-len(d)) or b'!'*n\n"
    "  return d\n"
    "def tlvs(d):\n"
    "  while len(d)>=3:\n"
    "    k,n=d[0],struct.unpack('!H',d[1:3])[0];yield k,d[3:3+n];d=d[3+n:]\n"
    "class H(socketserver.BaseRequestHandler):\n"
    "  def handle(self):\n"
    "    c=self.request;c.settimeout(5);head=read(c,16)\n"
    "    rest=read(c,struct.unpack('!H',head[14:16])[0])[12:]\n"
    "    cn='-'\n"
    "    for k,v in tlvs(rest):\n"
    "      if k==0x20: cn=dict(tlvs(v[5:])).get(0x22,b'-').decode()\n"
    "    c.recv(4096);body=(cn+'\\n').encode()\n"
    "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n'%len(body)+body)\n"
    "class S(socketserver.ThreadingTCPServer): allow_reuse_address=daemon_threads=True\n"
    "S(('0.0.0.0',int(sys.argv[1])),H).serve_forever()\n"
)
# What a TLS client sees of VIP:port when it asks for the name argv[2]: the certificate's subject
# and issuer common names and serial number, and the answer to GET /.
PEER = (
    "import json,socket,ssl,sys\n"
    "c=ssl.create_default_context(cafile=sys.argv[3]);c.check_hostname=False\n"
    "s=c.wrap_socket(socket.create_connection((sys.argv[1],int(sys.argv[4])),timeout=5),"
    "server_hostname=sys.argv[2])\n"
    "cert=s.getpeercert();cn=lambda n:dict(x[0] for x in n)['commonName']\n"
    "s.sendall(b'GET / HTTP/1.0\\r\\nHost: '+sys.argv[2].encode()+b'\\r\\n\\r\\n');answer=b''\n"
    "while (chunk:=s.recv(4096)): answer+=chunk\n"
    "print(json.dumps({'subject':cn(cert['subject']),'issuer':cn(cert['issuer']),"
    "'serial':int(cert['serialNumber'],16),'answer':answer.decode().split('\\r\\n')[-1]}))\n"
)


class Tls:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        self.host = lab.host()
        self.model, _, self.client_vm, self.web_vm, self.tls_vm = flat_model(
            self.host.name, count=3, port_security_enabled=False
        )
        self.ca = issue("Test CA", ca=True)
        self.other_ca = issue("Other CA", ca=True)
        self.default = issue("www.example.com", self.ca)
        self.sni = issue("shop.example.com", self.ca)
        self.member = issue("member.example.com", self.other_ca)
        self.client = issue("alice", self.ca)
        self.write("ca.pem", self.ca.certificate)
        self.write("member.pem", self.member.pem)
        self.write("client.pem", self.client.pem)
        self.agent = lab.agent(self.host)
        sync(self.agent, self.model)
        self.client_ns = lab.wait_ip(self.host, self.client_vm, "10.10.0.10")
        self.web_ns = lab.wait_ip(self.host, self.web_vm, "10.10.0.11")
        self.serve(self.web_ns, "web", [])
        self.serve(
            lab.wait_ip(self.host, self.tls_vm, "10.10.0.12"),
            "tls-member",
            [self.path("member.pem")],
        )

    def write(self, name: str, text: str) -> None:
        (self.tmp / name).write_text(text)

    def path(self, name: str) -> str:
        return str(self.tmp / name)

    def serve(self, netns: str, name: str, tls: list[str]) -> None:
        self.lab.servers.append(
            subprocess.Popen(["ip", "netns", "exec", netns, PYTHON, "-c", WEB, "80", name, *tls])
        )

    def balance(self, listeners: list[dict[str, Any]], pools: list[dict[str, Any]]) -> None:
        """Run a load balancer with these listeners and pools."""
        net, sub = self.model["networks"][0], self.model["subnets"][0]
        vip = models.port(net, sub, VIP, device_owner="Octavia", port_security_enabled=False)
        self.model["ports"].append(vip)
        self.model["loadbalancers"] = [
            {
                "id": models.new_id(),
                "vip_address": VIP,
                "vip_port_id": vip["id"],
                "vip_subnet_id": sub["id"],
                "revision": 1,
                "provisioning_status": "ACTIVE",
                "listeners": listeners,
                "pools": pools,
            }
        ]
        sync(self.agent, self.model)

    def peer(self, name: str, port: int = 443) -> dict[str, Any]:
        """The certificate (subject and issuer CN, serial) and answer of VIP:port asked for
        `name`, from the client."""
        rc, out, err = exec_in_instance(
            self.client_ns, [PYTHON, "-c", PEER, VIP, name, self.path("ca.pem"), str(port)]
        )
        assert rc == 0, err
        seen: dict[str, Any] = json.loads(out)
        return seen

    def curl(self, name: str, port: int, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *("ip", "netns", "exec", self.client_ns, "curl", "-sS", "--max-time", "5"),
                *("--resolve", f"{name}:{port}:{VIP}", "--cacert", self.path("ca.pem"), *args),
                f"https://{name}:{port}/",
            ],
            capture_output=True,
            text=True,
            check=False,
        )


@pytest.fixture
def tls(lab: Lab, tmp_path: Path) -> Tls:
    return Tls(lab, tmp_path)


def listener(port: int, certificate: Issued, *sni: Issued, **fields: Any) -> dict[str, Any]:
    pem = {
        "default_tls_container_ref": certificate.pem,
        "sni_container_refs": [c.pem for c in sni],
        **fields.pop("pem", {}),
    }
    return {
        "id": models.new_id(),
        "protocol": "TERMINATED_HTTPS",
        "protocol_port": port,
        "default_pool_id": "web",
        "tls_versions": ["TLSv1.2", "TLSv1.3"],
        "alpn_protocols": ["http/1.1"],
        "pem": pem,
        **fields,
    }


def pool(pool_id: str, address: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": pool_id,
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [{"id": f"{pool_id}-m", "address": address, "protocol_port": 80, "weight": 1}],
        **fields,
    }


def test_terminated_https_serves_the_certificate_of_each_name(tls: Tls) -> None:
    tls.balance([listener(443, tls.default, tls.sni)], [pool("web", "10.10.0.11")])

    assert wait_for(lambda: tls.curl("www.example.com", 443).stdout) == "web -\n"
    for name in ("www.example.com", "shop.example.com"):
        seen = tls.peer(name)
        assert (seen["subject"], seen["issuer"], seen["answer"]) == (name, "Test CA", "web -\n")
    assert tls.peer("unknown.example.com")["subject"] == "www.example.com"  # the default
    shop = tls.curl("shop.example.com", 443, "-v")
    assert shop.stdout == "web -\n" and "subject: CN=shop.example.com" in shop.stderr
    # The private keys are the agent's alone.
    files = list(Path(tls.agent.haproxy.root).glob("*/certs/*"))
    assert len(files) == 3 and all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)


def test_mandatory_client_authentication_refuses_a_client_without_certificate(tls: Tls) -> None:
    tls.balance(
        [
            listener(
                8443,
                tls.default,
                client_authentication="MANDATORY",
                insert_headers={"X-SSL-Client-CN": "true"},
                pem={"client_ca_tls_container_ref": tls.ca.certificate},
            )
        ],
        [pool("web", "10.10.0.11")],
    )
    with_certificate = wait_for(
        lambda: tls.curl("www.example.com", 8443, "--cert", tls.path("client.pem")).stdout
    )
    assert with_certificate == "web alice\n"
    refused = tls.curl("www.example.com", 8443)
    assert refused.returncode != 0 and refused.stdout == ""


def test_tls_enabled_pool_re_encrypts_to_a_member_speaking_only_tls(tls: Tls) -> None:
    tls.balance(
        [
            listener(443, tls.default),
            {
                "id": models.new_id(),
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool_id": "web",
            },
        ],
        [pool("web", "10.10.0.12", tls_enabled=True)],
    )
    assert wait_for(lambda: tls.curl("www.example.com", 443).stdout) == "tls-member -\n"
    plain = subprocess.run(
        [
            *("ip", "netns", "exec", tls.client_ns, "curl", "-sS", "--max-time", "5"),
            f"http://{VIP}/",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.stdout == "tls-member -\n", plain.stderr


def test_a_new_certificate_is_served_and_the_old_files_go(tls: Tls) -> None:
    first = listener(443, tls.default)
    tls.balance([first], [pool("web", "10.10.0.11")])
    assert wait_for(lambda: tls.curl("www.example.com", 443).stdout) == "web -\n"
    certs = next(Path(tls.agent.haproxy.root).glob("*/certs"))
    before = {f.name for f in certs.iterdir()}

    renewed = issue("www.example.com", tls.ca)
    first["pem"]["default_tls_container_ref"] = renewed.pem
    tls.model["loadbalancers"][0]["revision"] = 2
    sync(tls.agent, tls.model)
    served = tls.peer("www.example.com")
    serial = x509.load_pem_x509_certificate(renewed.certificate.encode()).serial_number
    assert (served["serial"], served["answer"]) == (serial, "web -\n")
    after = {f.name for f in certs.iterdir()}
    assert len(after) == 2 and after != before and after & before == {f"{first['id']}.crt-list"}


def test_a_proxy_v2_member_learns_the_client_certificates_cn(tls: Tls) -> None:
    tls.lab.servers.append(
        subprocess.Popen(["ip", "netns", "exec", tls.web_ns, PYTHON, "-c", PROXY_V2_CN, "81"])
    )
    proxied = pool("web", "10.10.0.11", protocol="PROXYV2")
    proxied["members"][0]["protocol_port"] = 81
    tls.balance(
        [
            listener(
                8443,
                tls.default,
                client_authentication="OPTIONAL",
                pem={"client_ca_tls_container_ref": tls.ca.certificate},
            )
        ],
        [proxied],
    )
    with_certificate = wait_for(
        lambda: tls.curl("www.example.com", 8443, "--cert", tls.path("client.pem")).stdout
    )
    assert with_certificate == "alice\n"
    assert tls.curl("www.example.com", 8443).stdout == "-\n"
