"""neutrino-cni: a CNI plugin that puts a container on a port of a neutrino network.

A container runtime (podman, or anything that speaks CNI) runs it with the
command in CNI_COMMAND and the network configuration on stdin (CNI spec
1.0.0; 0.3.0 to 0.4.0 results too). Its own keys in that configuration:

  network      the network (name or ID) its ports are made on
  port         a port (ID) to use instead of making one (or CNI_ARGS NEUTRINO_PORT=ID)
  security_groups  the made ports' groups (names or IDs; default: the project's default)
  cloud, clouds_yaml  the credentials: an administrator's cloud of a clouds.yaml, as the
               openstack CLI reads it (default: neutrino-admin, and the usual places)
  host         the host whose agent plugs the ports (default: this hostname)
  host_netns   the agent's host namespace ("" for the root one, the default;
               `nhost-<hostname>` for `neutrino serve`'s isolated data plane)
  timeout      seconds ADD waits for the agent to have plugged the port (default 30)

ADD makes the port (device owner compute:neutrino-cni, device ID the
container's ID), a veth whose host end is `cni` + the port id's first 11
characters and whose container end is CNI_IFNAME with the port's MAC,
addresses and routes, and binds the port to the host end (binding:host_id,
binding:profile device); it answers once the host's agent has plugged it
(the port ACTIVE), so the container's first packet passes. DEL deletes the
ports it made for the container and unbinds a given one; CHECK checks that
the port is bound to the container's veth and ACTIVE, and that the
container's interface has the port's MAC and addresses. A container that
dies without DEL takes its veth with its namespace: its host's agent reports
the device gone and the server deletes the port (services.ports.collect_absent).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from neutrino.client import ClientError, Cloud, Session
from neutrino.plan.names import CNI_OWNER

SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0")
# The spec's error codes.
INCOMPATIBLE_VERSION, UNKNOWN_CONTAINER, INVALID_ENVIRONMENT = 1, 3, 4
IO_FAILURE, DECODING_FAILURE, INVALID_CONFIG, TRY_AGAIN_LATER = 5, 6, 7, 11
API_REFUSED = 100  # the plugin's own: the neutrino API refused a call
TOKENS = Path("/run/neutrino-cni")  # tokens kept between runs (root's alone)


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def token_cache(cloud: Cloud) -> Path:
    """Where the plugin keeps its token for the next run, one file per user of a cloud."""
    auth = cloud.auth
    who = json.dumps([auth["auth_url"], auth["username"], auth["project_name"]])
    return TOKENS / f"{hashlib.sha256(who.encode()).hexdigest()[:16]}.json"


def host_device(port_id: str) -> str:
    """The host end of a container's veth."""
    return f"cni{port_id[:11]}"


def _ip(argv: list[str], netns: str = "", stdin: str | None = None) -> str:
    """`ip` in the namespace named `netns`, or in the one at the path `netns` (`nsenter`)."""
    if netns.startswith("/"):
        command = ["nsenter", f"--net={netns}", "ip", *argv]
    else:
        command = ["ip", *(["-n", netns] if netns else []), *argv]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CniError(IO_FAILURE, f"ip {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


class Plugin:
    def __init__(self, conf: dict[str, Any], env: dict[str, str]) -> None:
        self.conf = conf
        self.version = str(conf.get("cniVersion", "1.0.0"))
        self.container_id = env.get("CNI_CONTAINERID", "")
        self.netns = env.get("CNI_NETNS", "")
        self.ifname = env.get("CNI_IFNAME", "")
        if not self.container_id or not self.ifname:
            raise CniError(INVALID_ENVIRONMENT, "CNI_CONTAINERID and CNI_IFNAME are required")
        self.args = dict(
            item.split("=", 1) for item in env.get("CNI_ARGS", "").split(";") if "=" in item
        )
        self.host = str(conf.get("host") or socket.gethostname())
        self.host_netns = str(conf.get("host_netns", ""))
        clouds_yaml = conf.get("clouds_yaml")
        cloud = Cloud.load(conf.get("cloud"), Path(clouds_yaml) if clouds_yaml else None)
        self.session = Session(cloud, token_cache=token_cache(cloud))
        self.base = self.session.endpoint("network") + "/v2.0"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.session.call(method, f"{self.base}/{path}", **kwargs)

    # --- ADD ---------------------------------------------------------------------

    def add(self) -> dict[str, Any]:
        if not self.netns:
            raise CniError(INVALID_ENVIRONMENT, "CNI_NETNS is required for ADD")
        given = self.args.get("NEUTRINO_PORT") or self.conf.get("port")
        port = self._call("GET", f"ports/{given}")["port"] if given else self._make_port()
        device = host_device(port["id"])
        try:
            network = self._call("GET", f"networks/{port['network_id']}")["network"]
            subnet_ids = {ip["subnet_id"] for ip in port["fixed_ips"]}
            subnets = {
                s["id"]: s
                for s in self._call("GET", "subnets", params={"id": sorted(subnet_ids)})["subnets"]
            }
            self._make_veth(device, port, int(network.get("mtu") or 1500))
            self._configure(port, subnets)
            port = self._bind(port, device)
            self._wait_active(port)
        except BaseException:
            self._release(port, device)
            raise
        return self._result(port, subnets)

    def _make_port(self) -> dict[str, Any]:
        network = self.conf.get("network")
        if not network:
            raise CniError(INVALID_CONFIG, "the network configuration names no `network`")
        body: dict[str, Any] = {
            "network_id": self._find("networks", network),
            "name": f"{self.conf.get('name', 'cni')}-{self.container_id[:12]}-{self.ifname}",
            "device_owner": CNI_OWNER,
            "device_id": self.container_id,
        }
        groups = self.conf.get("security_groups")
        if groups is not None:
            body["security_groups"] = [self._find("security-groups", g) for g in groups]
        port: dict[str, Any] = self._call("POST", "ports", json={"port": body})["port"]
        return port

    def _find(self, collection: str, ref: str) -> str:
        """The ID of the resource `ref` names (its ID or its name)."""
        key = collection.replace("-", "_")
        found = self._call("GET", collection, params={"id": ref})[key]
        found = found or self._call("GET", collection, params={"name": ref})[key]
        if len(found) != 1:
            raise CniError(
                INVALID_CONFIG, f"{len(found)} {collection} are named {ref!r}: name exactly one"
            )
        return str(found[0]["id"])

    def _make_veth(self, device: str, port: dict[str, Any], mtu: int) -> None:
        """Host end `device` in the host's namespace (left down: the agent brings it up once it
        is plugged), container end CNI_IFNAME with the port's MAC, both at the network's MTU."""
        if self._exists(device):
            _ip(["link", "del", "dev", device], self.host_netns)
        _ip(
            ["link", "add", device, "mtu", str(mtu), "type", "veth", "peer", "name", self.ifname]
            + ["netns", self.netns, "address", port["mac_address"], "mtu", str(mtu)],
            self.host_netns,
        )

    def _exists(self, device: str) -> bool:
        """Whether the host end is there already: an ADD tried again after a failure."""
        try:
            _ip(["link", "show", "dev", device], self.host_netns)
        except CniError:
            return False
        return True

    def _configure(self, port: dict[str, Any], subnets: dict[str, dict[str, Any]]) -> None:
        """The container's interface: up, with the port's addresses (no duplicate address
        detection: IPAM gave them to this port alone) and its subnets' routes."""
        lines = [f"link set dev {self.ifname} up"]
        for ip, subnet in self._addresses(port, subnets):
            nodad = " nodad" if ip.version == 6 else ""
            lines.append(f"addr add {ip.with_prefixlen} dev {self.ifname}{nodad}")
        lines += [
            f"route replace {route['dst']} via {route['gw']} dev {self.ifname}"
            for route in self._routes(port, subnets)
        ]
        _ip(["-batch", "-"], self.netns, "\n".join(lines) + "\n")

    @staticmethod
    def _addresses(
        port: dict[str, Any], subnets: dict[str, dict[str, Any]]
    ) -> list[tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, dict[str, Any]]]:
        found = []
        for fixed in port["fixed_ips"]:
            subnet = subnets[fixed["subnet_id"]]
            prefix = ipaddress.ip_network(subnet["cidr"]).prefixlen
            found.append((ipaddress.ip_interface(f"{fixed['ip_address']}/{prefix}"), subnet))
        return found

    def _routes(
        self, port: dict[str, Any], subnets: dict[str, dict[str, Any]]
    ) -> list[dict[str, str]]:
        """A default route per family through the first subnet's gateway, then host routes."""
        routes: list[dict[str, str]] = []
        defaults: set[int] = set()
        for ip, subnet in self._addresses(port, subnets):
            gateway = subnet.get("gateway_ip")
            if gateway and ip.version not in defaults:
                defaults.add(ip.version)
                routes.append({"dst": "0.0.0.0/0" if ip.version == 4 else "::/0", "gw": gateway})
            routes += [
                {"dst": route["destination"], "gw": route["nexthop"]}
                for route in subnet.get("host_routes", [])
            ]
        return routes

    def _bind(self, port: dict[str, Any], device: str) -> dict[str, Any]:
        """The port bound to the host end, with the container's ID: the host's agent plugs it."""
        profile = {
            "device": device,
            "cni": {"container_id": self.container_id, "ifname": self.ifname},
        }
        body = {
            "binding:host_id": self.host,
            "binding:profile": profile,
            "device_id": self.container_id,
        }
        bound: dict[str, Any] = self._call("PUT", f"ports/{port['id']}", json={"port": body})[
            "port"
        ]
        return bound

    def _wait_active(self, port: dict[str, Any]) -> None:
        timeout = float(self.conf.get("timeout", 30))
        deadline = time.monotonic() + timeout
        while port["status"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise CniError(
                    TRY_AGAIN_LATER,
                    f"port {port['id']} is not ACTIVE after {timeout:g}s: does the agent of host "
                    f"{self.host} run?",
                )
            time.sleep(0.02)
            port = self._call("GET", f"ports/{port['id']}")["port"]

    def _release(self, port: dict[str, Any], device: str) -> None:
        """Undo an ADD (it failed) or a container's attachment (DEL): the port it made goes, a
        given one is unbound; the host end of its veth goes (and the container's end with it)."""
        if port["device_owner"] == CNI_OWNER:
            response = self.session.request("DELETE", f"{self.base}/ports/{port['id']}")
            if response.status_code not in (204, 404):
                raise ClientError(response.status_code, response.text)
        else:
            body = {"binding:host_id": "", "binding:profile": {}, "device_id": ""}
            self._call("PUT", f"ports/{port['id']}", json={"port": body})
        if self._exists(device):
            _ip(["link", "del", "dev", device], self.host_netns)

    def _result(self, port: dict[str, Any], subnets: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ips = []
        for ip, subnet in self._addresses(port, subnets):
            entry: dict[str, Any] = {"address": ip.with_prefixlen, "interface": 0}
            if subnet.get("gateway_ip"):
                entry["gateway"] = subnet["gateway_ip"]
            if self.version != "1.0.0":  # 0.3.x and 0.4.0 results name the family
                entry["version"] = str(ip.version)
            ips.append(entry)
        result: dict[str, Any] = {
            "cniVersion": self.version,
            "interfaces": [
                {"name": self.ifname, "mac": port["mac_address"], "sandbox": self.netns}
            ],
            "ips": ips,
            "routes": self._routes(port, subnets),
        }
        nameservers = sorted({ns for s in subnets.values() for ns in s.get("dns_nameservers", [])})
        if nameservers:
            result["dns"] = {"nameservers": nameservers}
        return result

    # --- DEL and CHECK -----------------------------------------------------------------

    def _attached(self) -> list[dict[str, Any]]:
        """The ports bound to this container's interface CNI_IFNAME."""
        ports = self._call("GET", "ports", params={"device_id": self.container_id})["ports"]
        return [
            port
            for port in ports
            if (port["binding:profile"].get("cni") or {}).get("ifname") == self.ifname
        ]

    def delete(self) -> None:
        for port in self._attached():
            self._release(port, host_device(port["id"]))

    def check(self) -> None:
        ports = self._attached()
        if len(ports) != 1:
            raise CniError(
                UNKNOWN_CONTAINER,
                f"{len(ports)} ports are attached to {self.ifname} of container "
                f"{self.container_id}",
            )
        port = ports[0]
        device = host_device(port["id"])
        if port["binding:host_id"] != self.host or port["binding:profile"].get("device") != device:
            raise CniError(
                API_REFUSED, f"port {port['id']} is not bound to {device} on {self.host}"
            )
        if port["status"] != "ACTIVE":
            raise CniError(TRY_AGAIN_LATER, f"port {port['id']} is {port['status']}")
        (link,) = json.loads(_ip(["-j", "addr", "show", "dev", self.ifname], self.netns))
        have = {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])}
        subnets = {
            s["id"]: s
            for s in self._call(
                "GET", "subnets", params={"id": sorted({i["subnet_id"] for i in port["fixed_ips"]})}
            )["subnets"]
        }
        missing = [str(ip) for ip, _ in self._addresses(port, subnets) if str(ip) not in have]
        if link.get("address") != port["mac_address"] or missing:
            raise CniError(
                API_REFUSED,
                f"{self.ifname} has MAC {link.get('address')} and lacks {missing or 'nothing'}: "
                f"port {port['id']} has {port['mac_address']}",
            )


def run(command: str, stdin: str, env: dict[str, str]) -> dict[str, Any] | None:
    """What the plugin answers to `command` (None: nothing, success)."""
    try:
        conf = json.loads(stdin) if stdin.strip() else {}
    except ValueError as error:
        raise CniError(
            DECODING_FAILURE, f"the network configuration is not JSON: {error}"
        ) from None
    version = str(conf.get("cniVersion", "1.0.0"))
    if command == "VERSION":
        return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"CNI version {version} is not supported",
            f"supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    if command not in ("ADD", "DEL", "CHECK"):
        raise CniError(INVALID_ENVIRONMENT, f"unknown CNI_COMMAND {command!r}")
    if command == "CHECK" and version.startswith("0.3."):
        raise CniError(INCOMPATIBLE_VERSION, f"CHECK is not in CNI version {version}")
    plugin = Plugin(conf, env)
    if command == "ADD":
        return plugin.add()
    if command == "DEL":
        plugin.delete()
    else:
        plugin.check()
    return None


def main() -> None:
    stdin = sys.stdin.read()
    try:
        version = str(json.loads(stdin).get("cniVersion", "1.0.0"))
    except (ValueError, AttributeError):
        version = "1.0.0"
    try:
        answer = run(os.environ.get("CNI_COMMAND", ""), stdin, dict(os.environ))
    except CniError as error:
        failure = {"code": error.code, "msg": error.msg, "details": error.details}
    except ClientError as error:
        code = TRY_AGAIN_LATER if error.status in (0, 503) else API_REFUSED
        failure = {"code": code, "msg": f"neutrino: {error}", "details": ""}
    except OSError as error:  # the API unreachable, a namespace gone
        failure = {"code": TRY_AGAIN_LATER, "msg": str(error), "details": ""}
    else:
        if answer is not None:
            print(json.dumps(answer))
        return
    print(json.dumps({"cniVersion": version, **failure}))
    sys.exit(1)
