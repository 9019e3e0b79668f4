"""The free ranges of pools less taken addresses."""

from __future__ import annotations

from ipaddress import ip_address as ip

from neutrino import ipam


def test_free_ranges_leave_out_taken_addresses_and_ignore_those_outside_the_pools() -> None:
    pools = [(ip("10.0.0.20"), ip("10.0.0.21")), (ip("10.0.0.2"), ip("10.0.0.9"))]
    taken = [ip(a) for a in ("10.0.0.2", "10.0.0.5", "10.0.0.6", "10.0.0.21", "10.0.0.1")]
    assert ipam.free_ranges(pools, taken) == [
        (ip("10.0.0.3"), ip("10.0.0.4")),
        (ip("10.0.0.7"), ip("10.0.0.9")),
        (ip("10.0.0.20"), ip("10.0.0.20")),
    ]


def test_free_ranges_of_low_ipv6_addresses_stay_ipv6() -> None:
    assert ipam.free_ranges([(ip("::1"), ip("::ff"))], [ip("::1")]) == [(ip("::2"), ip("::ff"))]


def test_sortable_text_sorts_as_addresses_do() -> None:
    addresses = [ip("10.0.0.9"), ip("10.0.0.10"), ip("9.255.255.255"), ip("10.0.1.0")]
    keys = {ipam.sortable(a): a for a in addresses}
    assert [keys[k] for k in sorted(keys)] == sorted(addresses)
    assert all(ipam.from_sortable(k) == a for k, a in keys.items())
    assert ipam.from_sortable(ipam.sortable(ip("::1"))) == ip("::1")
