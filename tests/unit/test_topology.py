"""The dashboard's topology: the graph of what the APIs answer, and its layout, without a
browser."""

from __future__ import annotations

import itertools
from typing import Any

from neutrino.web.topology import BOX_W, PER_LINE, build, layout, shape

Json = dict[str, Any]
ids = (f"{n:08d}-0000-0000-0000-000000000000" for n in itertools.count())


class Project:
    """API answers, as the dashboard gets them, of a project being put together."""

    def __init__(self) -> None:
        self.networks: list[Json] = []
        self.subnets: list[Json] = []
        self.routers: list[Json] = []
        self.ports: list[Json] = []
        self.instances: list[Json] = []
        self.balancers: list[Json] = []
        self.listeners: list[Json] = []
        self.pools: list[Json] = []
        self.members: dict[str, list[Json]] = {}
        self.fips: list[Json] = []

    def network(self, name: str, cidr: str, external: bool = False) -> Json:
        net = {"id": next(ids), "name": name, "status": "ACTIVE", "router:external": external}
        self.networks.append(net)
        self.subnets.append({"id": next(ids), "network_id": net["id"], "cidr": cidr})
        return net

    def port(self, net: Json, address: str, device: str, owner: str) -> Json:
        subnet = next(s for s in self.subnets if s["network_id"] == net["id"])
        port = {
            "id": next(ids),
            "network_id": net["id"],
            "device_id": device,
            "device_owner": owner,
            "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": address}],
        }
        self.ports.append(port)
        return port

    def router(self, name: str, gateway: Json | None = None, address: str = "") -> Json:
        info = gateway and {
            "network_id": gateway["id"],
            "external_fixed_ips": [{"subnet_id": "", "ip_address": address}],
        }
        router = {"id": next(ids), "name": name, "status": "ACTIVE", "external_gateway_info": info}
        self.routers.append(router)
        return router

    def interface(self, router: Json, net: Json, address: str) -> None:
        self.port(net, address, router["id"], "network:router_interface")

    def instance(self, name: str, net: Json, address: str) -> Json:
        instance = {"id": next(ids), "name": name, "status": "ACTIVE"}
        self.instances.append(instance)
        self.port(net, address, instance["id"], "compute:nova")
        return instance

    def balancer(self, name: str, net: Json, vip: str, *members: tuple[str, int]) -> Json:
        lb = {
            "id": next(ids),
            "name": name,
            "vip_network_id": net["id"],
            "vip_address": vip,
            "vip_port_id": self.port(net, vip, "", "Octavia")["id"],
            "provisioning_status": "ACTIVE",
            "operating_status": "ONLINE",
        }
        pool = {"id": next(ids), "protocol": "HTTP", "loadbalancers": [{"id": lb["id"]}]}
        subnet = next(s for s in self.subnets if s["network_id"] == net["id"])
        self.balancers.append(lb)
        self.pools.append(pool)
        self.listeners.append(
            {"protocol": "HTTP", "protocol_port": 80, "default_pool_id": pool["id"]}
        )
        self.members[pool["id"]] = [
            {
                "id": next(ids),
                "name": "",
                "address": a,
                "protocol_port": p,
                "subnet_id": subnet["id"],
            }
            for a, p in members
        ]
        return lb

    def floating_ip(self, address: str, pool: Json, port: Json) -> None:
        self.fips.append(
            {
                "floating_ip_address": address,
                "floating_network_id": pool["id"],
                "port_id": port["id"],
            }
        )

    def graph(self) -> Json:
        return build(
            self.networks,
            self.subnets,
            self.routers,
            self.ports,
            self.instances,
            self.balancers,
            self.listeners,
            self.pools,
            self.members,
            self.fips,
        )


def sentences(graph: Json) -> list[str]:
    """The links as the page lists them (with the nodes' names where it puts links)."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    named = {"external": "external network", "loadbalancer": "load balancer"}

    def name(node_id: str) -> str:
        node = nodes[node_id]
        return f"{named.get(node['kind'], node['kind'])} {node['label']}"

    return [
        link["text"].format(a=name(link["from"]), b=name(link["to"])) for link in graph["links"]
    ]


def overlapping(boxes: list[Json]) -> list[tuple[str, str]]:
    return [
        (a["key"], b["key"])
        for a, b in itertools.combinations(boxes, 2)
        if a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    ]


def tutorial() -> tuple[Project, dict[str, Json]]:
    """ext_net, a router with its gateway, web-net with WEB1 and WEB2, a load balancer in
    front of WEB1 and an address that is no instance, floating IPs on WEB1 and on the VIP."""
    project = Project()
    ext = project.network("ext_net", "10.10.30.0/24", external=True)
    web = project.network("web-net", "192.168.60.0/24")
    router = project.router("web-router", ext, "10.10.30.5")
    project.interface(router, web, "192.168.60.1")
    web1 = project.instance("WEB1", web, "192.168.60.11")
    web2 = project.instance("WEB2", web, "192.168.60.12")
    lb = project.balancer(
        "lb", web, "192.168.60.20", ("192.168.60.11", 8000), ("192.168.60.99", 8000)
    )
    project.floating_ip("10.10.30.7", ext, project.ports[1])  # WEB1's port
    project.floating_ip(
        "10.10.30.8", ext, next(p for p in project.ports if p["id"] == lb["vip_port_id"])
    )
    return project, {"ext": ext, "web": web, "router": router, "web1": web1, "web2": web2, "lb": lb}


def test_the_graph_tells_addresses_gateways_floating_ips_and_members() -> None:
    project, made = tutorial()
    graph = project.graph()
    assert sorted(sentences(graph)) == sorted(
        [
            "router web-router has its gateway 10.10.30.5 on external network ext_net",
            "instance WEB1 has the address 192.168.60.11 on network web-net",
            "instance WEB2 has the address 192.168.60.12 on network web-net",
            "router web-router has the interface 192.168.60.1 on network web-net",
            "load balancer lb has its VIP 192.168.60.20 on network web-net",
            "load balancer lb forwards HTTP 80 to instance WEB1 at 192.168.60.11 port 8000",
            "member 192.168.60.99 is on network web-net",
            "load balancer lb forwards HTTP 80 to member 192.168.60.99 port 8000",
            "instance WEB1 is reached at the floating IP 10.10.30.7 of external network ext_net",
            "load balancer lb is reached at the floating IP 10.10.30.8 of external network ext_net",
        ]
    )
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes[made["web1"]["id"]]["floating_ips"] == ["10.10.30.7"]
    assert nodes[made["web1"]["id"]]["detail"] == "192.168.60.11"
    assert nodes[made["web2"]["id"]]["floating_ips"] == []
    assert nodes[made["lb"]["id"]]["floating_ips"] == ["10.10.30.8"]
    labels = {(link["kind"], link["label"]) for link in graph["links"]}
    assert ("gateway", "10.10.30.5") in labels and ("member", "HTTP 80→8000") in labels


def test_instances_stand_side_by_side_under_their_network_and_the_router_between() -> None:
    project, made = tutorial()
    drawn = layout(project.graph())
    box = {b["key"]: b for b in drawn["boxes"]}
    ext, web, router = (
        box[f"{made['ext']['id']}@0"],
        box[made["web"]["id"]],
        box[made["router"]["id"]],
    )
    web1, web2, lb = box[made["web1"]["id"]], box[made["web2"]["id"]], box[made["lb"]["id"]]
    assert ext["y"] + ext["h"] < router["y"] < router["y"] + router["h"] < web["y"]
    # The load balancer, then the instances, on one line under the network, which spans them.
    assert lb["y"] == web1["y"] == web2["y"] > web["y"] + web["h"]
    assert lb["x"] + BOX_W < web1["x"] and web1["x"] + BOX_W < web2["x"]
    assert web["x"] <= lb["x"] and web2["x"] + web2["w"] <= web["x"] + web["w"]
    assert overlapping(drawn["boxes"]) == []
    drawn_kinds = sorted(line["kind"] for line in drawn["lines"])
    assert drawn_kinds == [
        "address",
        "gateway",
        "interface",
        "member",
        "member",
        "port",
        "port",
        "vip",
    ]


def test_a_large_project_packs_into_rows_without_overlaps() -> None:
    project = Project()
    ext = project.network("ext_net", "10.0.0.0/16", external=True)
    for r in range(8):
        router = project.router(f"r{r}", ext, f"10.0.{r}.1")
        for n in range(3):
            net = project.network(f"net-{r}-{n}", f"172.16.{r * 3 + n}.0/24")
            project.interface(router, net, f"172.16.{r * 3 + n}.1")
            for i in range(n * 4):  # 0, 4 and 8 instances: the last on two lines
                project.instance(f"vm-{r}-{n}-{i}", net, f"172.16.{r * 3 + n}.{10 + i}")
    project.network("lonely", "192.168.0.0/24")
    drawn = layout(project.graph(), aspect=1.6)
    assert overlapping(drawn["boxes"]) == []
    copies = [b for b in drawn["boxes"] if b["id"] == ext["id"]]
    assert len(copies) > 1  # one over each row of routers
    # Every line stays within its row: ends no further apart than a row's height.
    box = {b["key"]: b for b in drawn["boxes"]}
    assert all(abs(box[li["from"]]["y"] - box[li["to"]]["y"]) < 600 for li in drawn["lines"])
    on_two_lines = [
        b for b in drawn["boxes"] if b["id"] in {i["id"] for i in project.instances[-8:]}
    ]
    assert len({b["y"] for b in on_two_lines}) == 2
    assert (
        max(sum(1 for b in on_two_lines if b["y"] == y) for y in {b["y"] for b in on_two_lines})
        == PER_LINE
    )
    assert drawn["width"] < drawn["height"] * 3  # rows, not one endless strip
    # A wide window gets fewer, longer rows; a phone more, shorter ones.
    wide, tall = layout(project.graph(), aspect=4), layout(project.graph(), aspect=0.5)
    assert wide["width"] / wide["height"] > 1.6 > tall["width"] / tall["height"]


def test_the_window_shape_is_read_with_care() -> None:
    assert shape("0.5") == 0.5
    assert shape("") == shape("nan") == shape("wide") == 1.6
    assert shape("1e9") == 5.0
