"""neutrino-cni as a container runtime runs it: ADD, CHECK, DEL and VERSION on namespaces the
test makes (a container's), against a live server whose agent plugs the veths."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from netlab import ping, wait_for
from test_routers_api import RoutedCloud

from neutrino.agent.drivers import netns as ns
from tests.conftest import VENV_BIN, Databases, dataplane_server

NETNS_RUN = "/run/netns"


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoutedCloud]:
    with dataplane_server(databases, tmp_path_factory, "tc", RoutedCloud, host="cn") as server:
        net = server.create("networks", "network", name="cni_net")
        server.create(
            "subnets", "subnet", network_id=net["id"], ip_version=4, cidr="172.16.94.0/24"
        )
        yield server


def conf(cloud: RoutedCloud, **extra: Any) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "cni_net",
        "type": "neutrino-cni",
        "network": "cni_net",
        "clouds_yaml": str(cloud.clouds_yaml),
        "host": cloud.host,
        "host_netns": f"{cloud.prefix}nhost-{cloud.host}",
        **extra,
    }


def cni(
    command: str, config: dict[str, Any], container: str = "", netns: str = ""
) -> tuple[int, Any]:
    """Run the plugin as a runtime does: (exit status, what it printed, as JSON if any)."""
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": f"{NETNS_RUN}/{netns}" if netns else "",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": str(VENV_BIN),
    }
    done = subprocess.run(
        [str(VENV_BIN / "neutrino-cni")],
        input=json.dumps(config),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None


def ports_of(cloud: RoutedCloud, container: str) -> list[dict[str, Any]]:
    return list(cloud.get(f"ports?device_id={container}")["ports"])


def test_version_and_refusals(cloud: RoutedCloud) -> None:
    assert cni("VERSION", {"cniVersion": "1.0.0"}) == (
        0,
        {"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]},
    )
    code, answer = cni("ADD", conf(cloud, cniVersion="0.2.0"), "ctr-x", "none")
    assert code == 1 and answer["code"] == 1
    assert answer["msg"] == "CNI version 0.2.0 is not supported"
    code, answer = cni("ADD", conf(cloud, network="no_such_net"), "ctr-x", "none")
    assert (code, answer["code"]) == (1, 7)
    assert answer["msg"] == "0 networks are named 'no_such_net': name exactly one"
    code, answer = cni("CHECK", conf(cloud), "ctr-x")
    assert (code, answer["code"]) == (1, 3)
    code, answer = cni("CHECK", conf(cloud, cniVersion="0.3.1"), "ctr-x")
    assert (code, answer["msg"]) == (1, "CHECK is not in CNI version 0.3.1")
    assert ports_of(cloud, "ctr-x") == []


def test_add_check_del(cloud: RoutedCloud, guests: Callable[[str], str]) -> None:
    one, two = guests("one"), guests("two")
    code, result = cni("ADD", conf(cloud), "ctr-one", one)
    assert code == 0, result
    (port,) = ports_of(cloud, "ctr-one")
    address = port["fixed_ips"][0]["ip_address"]
    assert result == {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "eth0", "mac": port["mac_address"], "sandbox": f"{NETNS_RUN}/{one}"}
        ],
        "ips": [{"address": f"{address}/24", "interface": 0, "gateway": "172.16.94.1"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "172.16.94.1"}],
    }
    assert port["status"] == "ACTIVE" and port["device_owner"] == "compute:neutrino-cni"
    assert port["binding:profile"] == {
        "device": f"cni{port['id'][:11]}",
        "cni": {"container_id": "ctr-one", "ifname": "eth0"},
    }
    # The first packet passes as soon as ADD has answered.
    code, result = cni("ADD", conf(cloud, cniVersion="0.4.0"), "ctr-two", two)
    assert code == 0, result
    assert result["ips"][0]["version"] == "4"
    assert ping(two, address)
    assert cni("CHECK", conf(cloud), "ctr-one", one) == (0, None)

    subprocess.run(["ip", "-n", one, "addr", "flush", "dev", "eth0"], check=True)
    code, answer = cni("CHECK", conf(cloud), "ctr-one", one)
    assert code == 1 and f"lacks ['{address}/24']" in answer["msg"]

    assert cni("DEL", conf(cloud), "ctr-one", one) == (0, None)
    assert ports_of(cloud, "ctr-one") == []
    links = subprocess.run(
        ["ip", "-n", one, "-o", "link"], capture_output=True, text=True, check=True
    )
    assert "eth0" not in links.stdout
    assert cni("DEL", conf(cloud), "ctr-one", "") == (0, None)  # again, its namespace gone
    assert cni("DEL", conf(cloud), "ctr-two", two) == (0, None)


def test_a_given_port_is_bound_and_unbound(
    cloud: RoutedCloud, guests: Callable[[str], str]
) -> None:
    net = cloud.get("networks?name=cni_net")["networks"][0]
    given = cloud.create("ports", "port", network_id=net["id"], name="given")
    one = guests("given")
    code, result = cni("ADD", conf(cloud, port=given["id"]), "ctr-given", one)
    assert code == 0, result
    bound = cloud.get(f"ports/{given['id']}")["port"]
    assert (bound["status"], bound["device_id"]) == ("ACTIVE", "ctr-given")
    assert cni("DEL", conf(cloud), "ctr-given", one) == (0, None)
    kept = cloud.get(f"ports/{given['id']}")["port"]
    assert (kept["binding:host_id"], kept["device_id"], kept["status"]) == ("", "", "DOWN")


def test_a_container_gone_without_del_leaves_no_port(
    cloud: RoutedCloud, guests: Callable[[str], str]
) -> None:
    dying = guests("dying")
    code, result = cni("ADD", conf(cloud), "ctr-dying", dying)
    assert code == 0, result
    assert len(ports_of(cloud, "ctr-dying")) == 1
    ns.delete_namespace(dying)  # the veth goes with it; the plugin hears nothing
    wait_for(lambda: ports_of(cloud, "ctr-dying") == [], timeout=15)
    # A port of another owner whose device goes is only DOWN.
    net = cloud.get("networks?name=cni_net")["networks"][0]
    kept = cloud.create("ports", "port", network_id=net["id"], name="kept")
    host = f"{cloud.prefix}nhost-{cloud.host}"
    subprocess.run(["ip", "-n", host, "tuntap", "add", "dev", "kept0", "mode", "tap"], check=True)
    cloud.neutrino("port", "plug", "kept", "--device", "kept0", "--host", cloud.host)
    wait_for(lambda: cloud.get(f"ports/{kept['id']}")["port"]["status"] == "ACTIVE", timeout=15)
    subprocess.run(["ip", "-n", host, "link", "del", "kept0"], check=True)
    wait_for(lambda: cloud.get(f"ports/{kept['id']}")["port"]["status"] == "DOWN", timeout=15)
