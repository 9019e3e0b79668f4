"""Each subnet's free addresses, kept as ranges (schema.ip_free_ranges) by every allocation and
release, so that finding a free address costs one indexed lookup whatever the subnet holds.

Writers are serialized (see db), so these read-then-write steps never race.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select, update

from neutrino import ipam
from neutrino.db import schema

R, A, S = schema.ip_free_ranges, schema.ip_allocations, schema.subnets


def lowest(conn: Connection, subnet_id: str) -> str | None:
    """The lowest free address of the subnet's pools; None when they are exhausted."""
    first = conn.execute(
        select(R.c.first_ip).where(R.c.subnet_id == subnet_id).order_by(R.c.first_ip).limit(1)
    ).scalar()
    return None if first is None else str(ipam.from_sortable(first))


def fill(conn: Connection, subnet_id: str, pools: list[ipam.Pool]) -> None:
    """Start over from `pools` (a new subnet, or new pools) less what is allocated in them."""
    conn.execute(delete(R).where(R.c.subnet_id == subnet_id))
    taken = conn.execute(select(A.c.ip_address).where(A.c.subnet_id == subnet_id)).scalars()
    free = ipam.free_ranges(pools, (ipaddress.ip_address(ip) for ip in taken))
    _insert(conn, subnet_id, ((ipam.sortable(a), ipam.sortable(b)) for a, b in free))


def carve(conn: Connection, subnet_id: str, address: str) -> None:
    """`address` is taken: no range holds it any more."""
    key = ipam.sortable(ipaddress.ip_address(address))
    holder = _starting_at_or_below(conn, subnet_id, key)
    if holder is None or holder.last_ip < key:
        return
    ip = ipaddress.ip_address(address)
    same = (R.c.subnet_id == subnet_id, R.c.first_ip == holder.first_ip)
    if key == holder.first_ip == holder.last_ip:
        conn.execute(delete(R).where(*same))
    elif key == holder.first_ip:  # the lowest free address, which ports take: shrunk in place
        conn.execute(update(R).where(*same).values(first_ip=ipam.sortable(ip, 1)))
    else:
        conn.execute(update(R).where(*same).values(last_ip=ipam.sortable(ip, -1)))
        if key != holder.last_ip:
            _insert(conn, subnet_id, [(ipam.sortable(ip, 1), holder.last_ip)])


def release(conn: Connection, which: ColumnElement[bool]) -> None:
    """Delete the allocations `which` selects; addresses of a pool become free again."""
    freed = conn.execute(delete(A).where(which).returning(A.c.subnet_id, A.c.ip_address)).all()
    if not freed:
        return
    pools = {
        subnet_id: ipam.pools_from(raw)
        for subnet_id, raw in conn.execute(
            select(S.c.id, S.c.allocation_pools).where(S.c.id.in_({sid for sid, _ in freed}))
        )
    }
    for subnet_id, address in freed:
        ip = ipaddress.ip_address(address)
        if ipam.in_pools(ip, pools[subnet_id]):
            _give_back(conn, subnet_id, ip)


def _give_back(conn: Connection, subnet_id: str, ip: ipam.Address) -> None:
    """Make `ip` free, merged with the ranges it touches: the one ending just below it grows
    over it (and over the one starting just above it, which goes), or it begins a range."""
    above = conn.execute(
        delete(R)
        .where(R.c.subnet_id == subnet_id, R.c.first_ip == ipam.sortable(ip, 1))
        .returning(R.c.last_ip)
    ).scalar()
    last = above or ipam.sortable(ip)
    below = _starting_at_or_below(conn, subnet_id, ipam.sortable(ip, -1))
    if below is not None and below.last_ip == ipam.sortable(ip, -1):
        conn.execute(
            update(R)
            .where(R.c.subnet_id == subnet_id, R.c.first_ip == below.first_ip)
            .values(last_ip=last)
        )
    else:
        _insert(conn, subnet_id, [(ipam.sortable(ip), last)])


def _starting_at_or_below(conn: Connection, subnet_id: str, key: str) -> Row | None:
    """The range that starts at `key` or is the last to start below it: the one that holds
    `key`, if any does."""
    return conn.execute(
        select(R)
        .where(R.c.subnet_id == subnet_id, R.c.first_ip <= key)
        .order_by(R.c.first_ip.desc())
        .limit(1)
    ).first()


def _insert(conn: Connection, subnet_id: str, ranges: Iterable[tuple[str, str]]) -> None:
    """Add ranges given as (first, last) sortable texts."""
    rows = [{"subnet_id": subnet_id, "first_ip": a, "last_ip": b} for a, b in ranges]
    if rows:
        conn.execute(insert(R), rows)
