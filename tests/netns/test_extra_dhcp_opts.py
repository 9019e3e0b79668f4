"""Extra DHCP options reach the port they belong to, from the network's dnsmasq, and no other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from netlab import Lab, flat_model, port_of, sync

from neutrino.agent.instance import exec_in_instance
from tests.conftest import Databases, LiveServer, dataplane_server, eventually

# udhcpc hands the lease to its script as environment variables: dump them.
DUMP_SCRIPT = '#!/bin/sh\n[ "$1" = bound ] && env > "$LEASE_DUMP"\nexit 0\n'


def dump_script(tmp_path: Path) -> Path:
    script = tmp_path / "dump.sh"
    script.write_text(DUMP_SCRIPT)
    script.chmod(0o755)
    return script


def one_lease(script: Path, dump: Path, *options: str) -> list[str]:
    """udhcpc on eth0 asking once for `options`, the lease it gets written to `dump`."""
    dump.unlink(missing_ok=True)
    asked = [arg for option in options for arg in ("-O", option)]
    udhcpc = ["busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s"]
    return ["env", f"LEASE_DUMP={dump}", *udhcpc, str(script), *asked]


def read_lease(dump: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)


def lease(netns: str, tmp_path: Path) -> dict[str, str]:
    """What a fresh DHCP exchange from the instance's eth0 offers (asking for mtu, search, 250)."""
    dump = tmp_path / f"lease-{netns}"
    argv = one_lease(dump_script(tmp_path), dump, "mtu", "search", "250")
    rc, out, err = exec_in_instance(netns, argv, timeout=15)
    assert rc == 0, out + err
    return read_lease(dump)


def test_a_port_gets_its_own_options_and_another_does_not(lab: Lab, tmp_path: Path) -> None:
    host = lab.host()
    model, _, vm0, vm1 = flat_model(host.name)
    port_of(model, vm0)["extra_dhcp_opts"] = [
        {"opt_name": "mtu", "opt_value": "1400", "ip_version": 4},
        {"opt_name": "domain-search", "opt_value": "a.example,b.example", "ip_version": 4},
        {"opt_name": "router", "opt_value": "10.10.0.254", "ip_version": 4},
        {"opt_name": "250", "opt_value": "hello", "ip_version": 4},
        {"opt_name": "mtu", "opt_value": "1280", "ip_version": 6},
    ]
    agent = lab.agent(host)
    sync(agent, model)
    ns0 = lab.wait_ip(host, vm0, "10.10.0.10")
    ns1 = lab.wait_ip(host, vm1, "10.10.0.11")

    own = lease(ns0, tmp_path)
    assert (own["ip"], own["mtu"], own["router"], own["search"]) == (
        "10.10.0.10",
        "1400",
        "10.10.0.254",
        "a.example b.example",
    )
    assert own["opt250"] == b"hello".hex()
    other = lease(ns1, tmp_path)
    assert (other["ip"], other["mtu"], other["router"]) == ("10.10.0.11", "1500", "10.10.0.1")
    assert "search" not in other and "opt250" not in other

    # Options removed: the port gets the network's again. (dnsmasq is restarted, as it
    # cannot re-read host entries with tags that it has served.)
    port_of(model, vm0)["extra_dhcp_opts"] = [
        {"opt_name": "250", "opt_value": "bye", "ip_version": 4}
    ]
    model["revision"] += 1
    network_id = model["networks"][0]["id"]
    assert sync(agent, model).changes == [f"restarted dnsmasq {network_id}"]
    now = lease(ns0, tmp_path)
    assert (now["mtu"], now["router"], now["opt250"]) == ("1500", "10.10.0.1", b"bye".hex())
    assert "search" not in now
    # And the next change finds it running.
    port_of(model, vm0)["extra_dhcp_opts"] = []
    model["revision"] += 1
    assert sync(agent, model).changes == [f"restarted dnsmasq {network_id}"]
    assert "opt250" not in lease(ns0, tmp_path)
    assert lease(ns1, tmp_path)["ip"] == "10.10.0.11"


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with dataplane_server(databases, tmp_path_factory, "te", LiveServer) as server:
        yield server


def test_options_set_through_the_api_reach_the_instance(cloud: LiveServer, tmp_path: Path) -> None:
    """The unchanged CLI sets a port's options and changes one; the agent serves them."""
    script = dump_script(tmp_path)

    def offered(instance: str) -> dict[str, str]:
        dump = tmp_path / f"lease-{instance}"
        cloud.neutrino("instance", "exec", instance, "--", *one_lease(script, dump, "mtu", "250"))
        return read_lease(dump)

    net = cloud.cli("network", "create", "edo_net")
    cloud.cli(
        "subnet", "create", "--network", net["id"], "--subnet-range", "172.16.89.0/24", "edo_sub"
    )
    port = cloud.cli(
        "port",
        "create",
        "--network",
        net["id"],
        "edo_port",
        "--extra-dhcp-option",
        "name=mtu,value=1300",
        "--extra-dhcp-option",
        "name=250,value=hello",
    )
    cloud.neutrino("instance", "create", "edo-vm1", "--port", port["id"])
    cloud.neutrino("instance", "create", "edo-vm2", "--network", net["id"])
    own, other = offered("edo-vm1"), offered("edo-vm2")
    assert (own["mtu"], own["opt250"]) == ("1300", b"hello".hex())
    assert other["mtu"] == str(net["mtu"]) and "opt250" not in other

    # An update names only what changes; the other options stay.
    cloud.cli("port", "set", port["id"], "--extra-dhcp-option", "name=mtu,value=1400", output=False)
    assert eventually(lambda: offered("edo-vm1")["mtu"] == "1400")
    assert offered("edo-vm1")["opt250"] == b"hello".hex()
    cloud.neutrino("instance", "delete", "edo-vm1", "edo-vm2")
