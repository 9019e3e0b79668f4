"""The configuration's parsers: what `neutrino serve` accepts on its command line."""

from __future__ import annotations

import pytest

from neutrino.config import parse_quota

RESOURCES = ("network", "port")


def test_a_default_quota_takes_what_neutron_would_store() -> None:
    assert parse_quota("network=-1", RESOURCES) == ("network", -1)
    assert parse_quota("port=2147483647", RESOURCES) == ("port", 2**31 - 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("port=2147483648", "the limit of port must be no larger than 2147483647"),
        ("port=-2", "the limit of port must be an integer, -1 (unlimited) or more"),
        ("port=many", "the limit of port must be an integer, -1 (unlimited) or more"),
        ("widget=3", "'widget' is not a resource with a quota: network, port"),
    ],
)
def test_a_default_quota_neutron_would_refuse_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_quota(spec, RESOURCES)
    assert str(refused.value) == message
