"""Unchanged openstacksdk against a live neutrino: networks, ports, queries, errors, extensions.

Black-box, through `conn.network.*` as a user script would call it. The server is
shared by the module (one per backend): every test uses its own names and ranges.
"""

from __future__ import annotations

from typing import Any, Self

import pytest
from openstack import exceptions

pytestmark = [
    pytest.mark.compat,
]


class GetCounter:
    """Counts the GETs the proxy makes (the sdk pages through one `session.get` per page)."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.urls: list[str] = []
        self.original = proxy.get

    def __enter__(self) -> Self:
        def counting(url: str, *args: Any, **kwargs: Any) -> Any:
            self.urls.append(url)
            return self.original(url, *args, **kwargs)

        self.proxy.get = counting
        return self

    def __exit__(self, *exc: object) -> None:
        del self.proxy.get


# -- networks ------------------------------------------------------------------------------
def test_create_network_and_list_with_filters(admin: Any, demo: Any) -> None:
    shared = admin.network.create_network(name="sdk-f-shared", is_shared=True, description="x")
    tagged = admin.network.create_network(name="sdk-f-tagged")
    admin.network.set_tags(tagged, ["sdk-f-red", "sdk-f-blue"])
    mine = demo.network.create_network(name="sdk-f-demo")
    assert shared.is_shared is True and shared.description == "x" and shared.status == "ACTIVE"
    assert mine.project_id != shared.project_id and mine.is_shared is False

    def ids(**query: Any) -> set[str]:
        return {n.id for n in admin.network.networks(**query) if n.name.startswith("sdk-f-")}

    assert ids(name="sdk-f-tagged") == {tagged.id}
    assert ids(is_shared=True) == {shared.id}
    assert ids(tags="sdk-f-red") == {tagged.id}
    assert ids(tags="sdk-f-red,sdk-f-blue") == {tagged.id}
    assert ids(tags="sdk-f-red,nosuch") == set()
    assert ids(project_id=mine.project_id) == {mine.id}
    assert ids() == {shared.id, tagged.id, mine.id}  # admin sees every project's
    # the member sees its own and the shared one, not the admin's private one
    seen = {n.id for n in demo.network.networks() if n.name.startswith("sdk-f-")}
    assert seen == {shared.id, mine.id}


def test_find_network_by_name_and_id(admin: Any, demo: Any) -> None:
    net = admin.network.create_network(name="sdk-find")
    assert admin.network.find_network("sdk-find").id == net.id
    assert admin.network.find_network(net.id).name == "sdk-find"
    assert admin.network.find_network("sdk-find-nosuch") is None
    # another project's private network: invisible to the member, by name and by id
    assert demo.network.find_network("sdk-find") is None
    with pytest.raises(exceptions.ResourceNotFound):
        demo.network.find_network(net.id, ignore_missing=False)


# -- ports: pagination, sorting, revisions -------------------------------------------------
@pytest.fixture(scope="module")
def paged(admin: Any) -> dict[str, Any]:
    """A network with seven named ports (no subnet: nothing else lands on it)."""
    net = admin.network.create_network(name="sdk-paged")
    names = [f"sdk-pg-{i}" for i in (3, 0, 6, 1, 5, 2, 4)]
    ports = {name: admin.network.create_port(network_id=net.id, name=name) for name in names}
    return {"network": net, "ports": ports}


def test_ports_pagination_follows_links_across_pages(admin: Any, paged: dict[str, Any]) -> None:
    net_id = paged["network"].id
    raw = admin.network.get("/ports", params={"network_id": net_id, "limit": 2}).json()
    assert len(raw["ports"]) == 2
    assert [link["rel"] for link in raw["ports_links"]] == ["next", "previous"]  # as Neutron

    with GetCounter(admin.network) as counter:
        ports = list(
            admin.network.ports(
                network_id=net_id, limit=2, paginated=True, sort_key="name", sort_dir="asc"
            )
        )
    assert [p.name for p in ports] == [f"sdk-pg-{i}" for i in range(7)]
    assert len({p.id for p in ports}) == 7
    assert len(counter.urls) >= 4, counter.urls  # 2+2+2+1: the sdk followed ports_links

    with GetCounter(admin.network) as counter:
        first = list(
            admin.network.ports(
                network_id=net_id, limit=3, paginated=False, sort_key="name", sort_dir="asc"
            )
        )
    assert [p.name for p in first] == ["sdk-pg-0", "sdk-pg-1", "sdk-pg-2"]
    assert len(counter.urls) == 1


def test_ports_sorting(admin: Any, paged: dict[str, Any]) -> None:
    net_id = paged["network"].id
    desc = [
        p.name for p in admin.network.ports(network_id=net_id, sort_key="name", sort_dir="desc")
    ]
    assert desc == [f"sdk-pg-{i}" for i in range(6, -1, -1)]
    by_id = [
        p.id
        for p in admin.network.ports(
            network_id=net_id, sort_key=["id", "name"], sort_dir=["asc", "desc"]
        )
    ]
    assert by_id == sorted(p.id for p in paged["ports"].values())
    with pytest.raises(exceptions.BadRequestException) as info:
        list(admin.network.ports(network_id=net_id, sort_key="created_at"))
    assert "created_at is invalid attribute for sort_keys" in str(info.value)


def test_update_port_with_if_revision(admin: Any, paged: dict[str, Any]) -> None:
    port = admin.network.get_port(paged["ports"]["sdk-pg-6"].id)
    revision = port.revision_number
    updated = admin.network.update_port(port.id, description="fresh", if_revision=revision)
    assert updated.description == "fresh" and updated.revision_number > revision
    # a stale revision (pass the id: the sdk only sends a header that changed on a reused object)
    with pytest.raises(exceptions.PreconditionFailedException) as info:
        admin.network.update_port(port.id, description="stale", if_revision=revision)
    assert info.value.status_code == 412
    assert admin.network.get_port(port.id).description == "fresh"


# -- errors --------------------------------------------------------------------------------
def test_taken_ip_is_conflict_exception(admin: Any) -> None:
    net = admin.network.create_network(name="sdk-conflict")
    subnet = admin.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="10.91.0.0/24", is_dhcp_enabled=False
    )
    wanted = [{"subnet_id": subnet.id, "ip_address": "10.91.0.20"}]
    first = admin.network.create_port(network_id=net.id, fixed_ips=wanted)
    assert first.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "10.91.0.20"}]
    with pytest.raises(exceptions.ConflictException) as info:
        admin.network.create_port(network_id=net.id, fixed_ips=[{"ip_address": "10.91.0.20"}])
    assert info.value.status_code == 409
    assert f"IP address 10.91.0.20 already allocated in subnet {subnet.id}" in str(info.value)
    # only the first port holds it
    holders = list(admin.network.ports(fixed_ips="ip_address=10.91.0.20"))
    assert [p.id for p in holders] == [first.id]


def test_other_projects_network_is_resource_not_found(admin: Any, demo: Any) -> None:
    net = admin.network.create_network(name="sdk-private")
    with pytest.raises(exceptions.ResourceNotFound) as info:
        demo.network.get_network(net.id)
    assert info.value.status_code == 404
    with pytest.raises(exceptions.ResourceNotFound):
        demo.network.update_network(net.id, name="stolen")
    with pytest.raises(exceptions.ResourceNotFound):
        demo.network.delete_network(net.id, ignore_missing=False)
    assert admin.network.get_network(net.id).name == "sdk-private"


def test_invalid_cidr_is_bad_request(admin: Any) -> None:
    net = admin.network.create_network(name="sdk-badcidr")
    for cidr in ("10.92.0.0/33", "not-a-cidr"):
        with pytest.raises(exceptions.BadRequestException) as info:
            admin.network.create_subnet(network_id=net.id, ip_version=4, cidr=cidr)
        assert info.value.status_code == 400
        assert cidr in str(info.value)
    assert list(admin.network.subnets(network_id=net.id)) == []


# -- extensions ----------------------------------------------------------------------------
def test_extensions(admin: Any) -> None:
    # openstacksdk 4.22 has no network.get_extension: find_extension is its lookup by alias
    provider = admin.network.find_extension("provider")
    assert provider is not None and provider.alias == "provider" and provider.name
    assert admin.network.find_extension("no-such-extension") is None
    aliases = {ext.alias for ext in admin.network.extensions()}
    assert aliases >= {
        "provider",
        "external-net",
        "port-security",
        "allowed-address-pairs",
        "binding",
        "pagination",
        "sorting",
        "standard-attr-tag",
        "standard-attr-revisions",
        "revision-if-match",
        "net-mtu",
        "project-id",
    }
