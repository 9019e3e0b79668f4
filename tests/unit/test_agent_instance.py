"""Which DHCP client lab instances use: dhclient, unless AppArmor confines it."""

from __future__ import annotations

from pathlib import Path

import pytest

from neutrino.agent import instance


@pytest.mark.parametrize(
    ("profiles", "client"),
    [
        (None, "dhclient"),
        ("/usr/bin/man (enforce)\n", "dhclient"),
        ("/{,usr/}sbin/dhclient (complain)\n", "dhclient"),
        ("/usr/bin/man (enforce)\n/{,usr/}sbin/dhclient (enforce)\n", "udhcpc"),
    ],
)
def test_dhclient_unless_apparmor_confines_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profiles: str | None, client: str
) -> None:
    listing = tmp_path / "profiles"
    if profiles is not None:
        listing.write_text(profiles)
    monkeypatch.setattr(instance, "APPARMOR_PROFILES", listing)
    assert instance.dhcp_client() == client
