"""The migrations build exactly the schema the code declares, and a new database made at once
from it is the one they build."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from neutrino.db import Database, schema
from neutrino.db.migrations import alembic_config
from neutrino.db.schema import metadata
from tests.conftest import Databases


def test_migrated_database_matches_schema(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.migrate()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert diff == []


def described(engine: Engine) -> dict[str, object]:
    """Everything of a database that its code relies on: tables with their columns (types,
    defaults), keys, indexes and constraints; the starting rows; PostgreSQL's triggers."""
    seen = inspect(engine)
    tables = {
        table: (
            sorted(  # by name: columns a migration added come last, which no query minds
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in seen.get_columns(table)
            ),
            seen.get_pk_constraint(table),
            *(
                # As JSON, with a partial index's clause as its SQL.
                sorted(json.dumps(item, default=str, sort_keys=True) for item in listed(table))
                for listed in (
                    seen.get_foreign_keys,
                    seen.get_indexes,
                    seen.get_unique_constraints,
                )
            ),
        )
        for table in seen.get_table_names()
    }
    with engine.connect() as conn:
        rows = {
            table.name: sorted(
                str({k: v for k, v in row._mapping.items() if k != "id"})
                for row in conn.execute(table.select())
            )
            for table in (schema.feed_head, schema.default_security_group_rules)
        }
        rows["alembic_version"] = conn.execute(text("SELECT * FROM alembic_version")).all()
        triggers = (
            sorted(
                conn.execute(
                    text(
                        "SELECT tgname, tgrelid::regclass::text, pg_get_triggerdef(oid) "
                        "FROM pg_trigger WHERE NOT tgisinternal"
                    )
                ).all()
            )
            if engine.dialect.name == "postgresql"
            else []
        )
    return {"tables": tables, "rows": rows, "triggers": triggers}


def test_a_new_database_is_made_as_the_migrations_make_it(
    backend: str, databases: Databases
) -> None:
    migrated, made = Database(databases.empty(backend)), Database(databases.empty(backend))
    command.upgrade(alembic_config(migrated.engine), "head")
    made.migrate()  # empty: made at once from the schema
    try:
        assert described(made.engine) == described(migrated.engine)
        assert described(made.engine)["rows"]["feed_head"]  # what is compared is there
    finally:
        for db in (migrated, made):
            db.dispose()
            databases.drop(str(db.engine.url.render_as_string(hide_password=False)))


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


def test_instance_ports_come_to_be_owned_by_their_instances_zone(
    backend: str, databases: Databases
) -> None:
    url = databases.empty(backend)
    db = Database(url)
    config = alembic_config(db.engine)
    command.upgrade(config, "0048")
    made = datetime(2026, 12, 7)
    standard = {"project_id": "p", "created_at": made, "updated_at": made}
    with db.engine.begin() as conn:
        conn.execute(
            schema.networks.insert().values(id="n", mtu=1450, network_type="vxlan", **standard)
        )
        for instance, zone in (("in-az1", "az1"), ("in-nova", "nova")):
            conn.execute(
                schema.lab_instances.insert().values(
                    id=instance,
                    host="h1",
                    availability_zone=zone,
                    owned_ports=[],
                    addresses=[],
                    **standard,
                )
            )
        # The last one is a port of no instance here (a server of a Nova using this API).
        for port, device_id in (("p1", "in-az1"), ("p2", "in-nova"), ("p3", "server")):
            conn.execute(
                schema.ports.insert().values(
                    id=port,
                    network_id="n",
                    mac_address=f"fa:16:3e:00:00:0{port[1]}",
                    device_owner="compute:nova",
                    device_id=device_id,
                    **standard,
                )
            )

    def owners() -> dict[str, str]:
        with db.engine.connect() as conn:
            return dict(conn.execute(text("SELECT id, device_owner FROM ports")).all())

    try:
        db.migrate()
        assert owners() == {"p1": "compute:az1", "p2": "compute:nova", "p3": "compute:nova"}
        command.downgrade(config, "0048")
        assert set(owners().values()) == {"compute:nova"}
    finally:
        db.dispose()
        databases.drop(url)
