"""Extra DHCP options of ports: options dnsmasq gives that port and no other.

Stored as Neutron stores them: one value per (option name, IP version), the
version 4 unless given. A null value, and an empty one except for the
options that may be blank (`router`, `classless-static-route`), stores
nothing on create and deletes the option on update. An update changes only
the options it names; an empty list changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from neutrino import errors
from neutrino.db import schema
from neutrino.services import common

T = schema.extra_dhcp_opts
BLANKABLE = ("router", "classless-static-route")  # a blank value of these means "none"


def storable(name: str, value: str | None) -> bool:
    return value is not None if name in BLANKABLE else bool(value)


def create(
    conn: Connection, port_id: str, opts: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """Store a new port's options; returns them as the port shows them."""
    stored: dict[tuple[str, int], str] = {}
    for opt in opts or []:
        key = (opt["opt_name"], opt.get("ip_version", 4))
        if storable(key[0], opt["opt_value"]):
            add(conn, port_id, key, opt["opt_value"], stored)
    return [render(name, version, value) for (name, version), value in sorted(stored.items())]


def change(conn: Connection, port_id: str, opts: list[dict[str, Any]] | None) -> None:
    """Apply an update's options to those the port had."""
    had = {
        (r.opt_name, r.ip_version): r.opt_value
        for r in conn.execute(select(T).where(T.c.port_id == port_id))
    }
    added: dict[tuple[str, int], str] = {}
    for opt in opts or []:
        key, value = (opt["opt_name"], opt.get("ip_version", 4)), opt["opt_value"]
        where = (T.c.port_id == port_id, T.c.opt_name == key[0], T.c.ip_version == key[1])
        if key not in had:
            if storable(key[0], value):
                add(conn, port_id, key, value, added)
        elif value is None:
            conn.execute(delete(T).where(*where))
        elif storable(key[0], value) and value != had[key]:
            conn.execute(update(T).where(*where).values(opt_value=value))


def add(
    conn: Connection,
    port_id: str,
    key: tuple[str, int],
    value: str,
    added: dict[tuple[str, int], str],
) -> None:
    """Store one new option; the same name and IP version twice in one request is a conflict."""
    if key in added:
        raise errors.NeutronDbObjectDuplicateEntry(
            object_type="ExtraDhcpOpt",
            attributes=["port_id", "opt_name", "ip_version"],
            values=[port_id, *key],
        )
    added[key] = value
    conn.execute(
        insert(T).values(port_id=port_id, opt_name=key[0], ip_version=key[1], opt_value=value)
    )


OPTIONS_OF = select(T).where(T.c.port_id.in_(common.IDS)).order_by(T.c.opt_name, T.c.ip_version)


def load(conn: Connection, port_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in common.rows_for(conn, OPTIONS_OF, port_ids):
        found[row.port_id].append(render(row.opt_name, row.ip_version, row.opt_value))
    return found


def render(name: str, version: int, value: str) -> dict[str, Any]:
    return {"opt_name": name, "opt_value": value, "ip_version": version}
