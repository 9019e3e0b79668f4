"""Metering through the APIs: a label made with the networking API counts an instance's real
packets through its router's gateway, and `neutrino inspect router` shows the count."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from netlab import wait_for
from test_routers_api import RoutedCloud

from tests.conftest import Databases, dataplane_server

PACKET = 84  # bytes of one echo request or reply: IP header, ICMP header, 56 bytes of data


class MeteredCloud(RoutedCloud):
    host = "mt"

    def metering(self, router: str) -> list[dict[str, Any]]:
        seen = json.loads(self.neutrino("inspect", "router", router, "-f", "json").stdout)
        found: list[dict[str, Any]] = seen["metering"]
        return found

    def pings(self, vm: dict[str, Any], address: str, count: int) -> bool:
        argv = ("busybox", "ping", "-c", str(count), "-W", "1", address)
        return self.run(vm["netns"], *argv, timeout=count + 5).returncode == 0


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeteredCloud]:
    with dataplane_server(
        databases, tmp_path_factory, "tm", MeteredCloud, host=MeteredCloud.host
    ) as server:
        yield server


def test_a_label_counts_an_instances_traffic_and_inspect_shows_it(cloud: MeteredCloud) -> None:
    routed = cloud.routed_network("mt", "10.10.60.0/24", "192.168.90.0/24")
    router = routed["router"]["name"]
    vm = cloud.new_instance("mt-vm", routed["net"]["id"])
    assert wait_for(lambda: cloud.pings(vm, "10.10.60.1", 1), timeout=20)
    assert cloud.metering(router) == []

    label = cloud.create("metering/metering-labels", "metering_label", name="out")
    for direction, prefix in (("egress", "source_ip_prefix"), ("ingress", "destination_ip_prefix")):
        cloud.create(
            "metering/metering-label-rules",
            "metering_label_rule",
            metering_label_id=label["id"],
            direction=direction,
            **{prefix: "192.168.90.0/24"},
        )
    assert wait_for(lambda: len(cloud.metering(router)) == 1, timeout=20)
    (before,) = cloud.metering(router)
    assert (before["metering_label_id"], before["name"]) == (label["id"], "out")

    assert cloud.pings(vm, "10.10.60.1", 3)  # three requests out, three replies in
    (after,) = cloud.metering(router)
    assert (after["packets"] - before["packets"], after["bytes"] - before["bytes"]) == (
        6,
        6 * PACKET,
    )

    cloud.delete(f"metering/metering-labels/{label['id']}")
    assert wait_for(lambda: cloud.metering(router) == [], timeout=20)
