"""The migrations build exactly the schema the code declares."""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from neutrino.db import Database
from neutrino.db.migrations import alembic_config
from neutrino.db.schema import metadata


def test_migrated_database_matches_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert diff == []


def test_password_change_moments_move_to_microseconds(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    config = alembic_config(db.engine)
    command.upgrade(config, "0005")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO domains (id, name, description, enabled) "
                "VALUES ('default', 'Default', '', true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (id, name, domain_id, enabled, description, "
                "tokens_valid_after) VALUES ('u', 'u', 'default', true, '', 1764942000)"
            )
        )
    db.migrate()
    with db.engine.connect() as conn:
        moment = conn.execute(text("SELECT tokens_valid_after FROM users")).scalar_one()
    db.dispose()
    assert moment == 1764942000 * 1_000_000


def test_shared_pools_scopes_and_qos_policies_become_grants_to_every_project(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    config = alembic_config(db.engine)
    command.upgrade(config, "0016")
    standard = "'p', '', '', '2026-12-05 00:00:00', '2026-12-05 00:00:00', 0"
    with db.engine.begin() as conn:
        for suffix, shared in (("1", True), ("2", False)):
            conn.execute(
                text(
                    "INSERT INTO address_scopes (id, project_id, name, shared, ip_version) "
                    f"VALUES ('s{suffix}', 'p', '', {shared}, 4)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO subnetpools (id, project_id, name, description, created_at, "
                    "updated_at, revision_number, ip_version, prefixes, default_prefixlen, "
                    f"min_prefixlen, max_prefixlen, shared, is_default) VALUES ('sp{suffix}', "
                    f"{standard}, 4, '[\"10.0.0.0/8\"]', 24, 8, 32, {shared}, false)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO qos_policies (id, project_id, name, description, created_at, "
                    f"updated_at, revision_number, shared) VALUES ('q{suffix}', {standard}, "
                    f"{shared})"
                )
            )
    db.migrate()
    with db.engine.connect() as conn:
        grants = conn.execute(
            text(
                "SELECT project_id, object_type, object_id, action, target_project "
                "FROM rbac_policies"
            )
        ).all()
    assert sorted(grants) == [
        ("p", "address_scope", "s1", "access_as_shared", "*"),
        ("p", "qos_policy", "q1", "access_as_shared", "*"),
        ("p", "subnetpool", "sp1", "access_as_shared", "*"),
    ]
    command.downgrade(config, "0016")
    with db.engine.connect() as conn:
        shared_ones = {
            table: conn.execute(text(f"SELECT id FROM {table} WHERE shared")).scalars().all()
            for table in ("address_scopes", "subnetpools", "qos_policies")
        }
        left = conn.execute(text("SELECT count(*) FROM rbac_policies")).scalar()
    db.dispose()
    assert shared_ones == {"address_scopes": ["s1"], "subnetpools": ["sp1"], "qos_policies": ["q1"]}
    assert left == 0


def test_existing_subnets_get_their_free_addresses_as_ranges(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    command.upgrade(alembic_config(db.engine), "0033")
    pools = '[{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.20", "end": "10.0.0.21"}]'
    # Without foreign keys: only the subnet and its allocations matter here.
    with sqlite3.connect(tmp_path / "m.db") as raw:
        raw.execute(
            "INSERT INTO subnets (id, project_id, name, description, created_at, updated_at, "
            "revision_number, network_id, ip_version, cidr, enable_dhcp, dns_nameservers, "
            "host_routes, allocation_pools) VALUES ('s', 'p', '', '', '2026-12-06', "
            f"'2026-12-06', 0, 'n', 4, '10.0.0.0/24', 0, '[]', '[]', '{pools}')"
        )
        for ip in ("10.0.0.2", "10.0.0.5", "10.0.0.6", "10.0.0.21", "10.0.0.100"):
            raw.execute(
                "INSERT INTO ip_allocations (subnet_id, ip_address, port_id, network_id, "
                f"position) VALUES ('s', '{ip}', 'p-{ip}', 'n', 0)"
            )
    db.migrate()
    with db.engine.connect() as conn:
        ranges = conn.execute(
            text("SELECT first_ip, last_ip FROM ip_free_ranges WHERE subnet_id = 's'")
        ).all()
    db.dispose()
    as_text = [
        (str(ipaddress.ip_address(int(a, 16))), str(ipaddress.ip_address(int(b, 16))))
        for a, b in sorted(ranges)
    ]
    assert as_text == [
        ("10.0.0.3", "10.0.0.4"),
        ("10.0.0.7", "10.0.0.9"),
        ("10.0.0.20", "10.0.0.20"),
    ]
