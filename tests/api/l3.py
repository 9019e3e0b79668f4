"""Topologies the router, floating IP and security group tests build on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.conftest import Api, ApiClient


def external_network(api: Api, cidr: str = "10.10.10.0/24", **subnet: Any) -> tuple[dict, dict]:
    """The admin's `ext_net` (flat, router:external) and its subnet."""
    net = api.admin.create(
        "networks",
        name="ext_net",
        **{
            "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "default",
        },
    )
    sub = api.admin.create(
        "subnets", network_id=net["id"], cidr=cidr, ip_version=4, enable_dhcp=False, **subnet
    )
    return net, sub


def private_subnet(client: ApiClient, cidr: str, **extra: Any) -> tuple[dict, dict]:
    net = client.create("networks", name=f"net-{cidr}")
    sub = client.create(
        "subnets", network_id=net["id"], cidr=cidr, ip_version=6 if ":" in cidr else 4, **extra
    )
    return net, sub


def add_interface(client: ApiClient, router_id: str, **body: str) -> Any:
    return client.put(f"/routers/{router_id}/add_router_interface", json=body)


def remove_interface(client: ApiClient, router_id: str, **body: str) -> Any:
    return client.put(f"/routers/{router_id}/remove_router_interface", json=body)


@dataclass
class Topology:
    """S3/S4: a project's subnet behind a router with its gateway on ext_net, and a port on it."""

    ext_net: dict
    ext_subnet: dict
    net: dict
    subnet: dict
    router: dict
    port: dict


def routed_topology(
    api: Api,
    client: ApiClient | None = None,
    cidr: str = "172.16.101.0/24",
    ext: tuple[dict, dict] | None = None,
) -> Topology:
    client = client or api.demo
    ext_net, ext_subnet = ext or external_network(api)
    net, sub = private_subnet(client, cidr)
    router = client.create("routers", name="r", external_gateway_info={"network_id": ext_net["id"]})
    assert add_interface(client, router["id"], subnet_id=sub["id"]).status_code == 200
    port = client.create("ports", network_id=net["id"], name="vm")
    return Topology(ext_net, ext_subnet, net, sub, router, port)
