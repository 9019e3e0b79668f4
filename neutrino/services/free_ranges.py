"""Free values kept as ranges, so that finding, taking and giving back one costs a few indexed
statements whatever is taken: a subnet's free addresses (schema.ip_free_ranges, kept by every
allocation and release) and each network type's free segmentation IDs
(schema.segment_free_ranges, see segment_ranges).

Writers are serialized (see db), so these read-then-write steps never race.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from neutrino import ipam
from neutrino.db import schema

K = TypeVar("K", str, int)
A, S = schema.ip_allocations, schema.subnets


class FreeRanges(Generic[K]):
    """The free values of an ordered space, as ranges (first, last) in `table` by owner (the
    values of its `owner` columns). The table's key is the owner's columns and `first`, and it
    has no other index: a statement that finds a range by its first value has only that one to
    use. `step(value, n)`: the value n places on. Its statements are built once (see db)."""

    def __init__(
        self, table: Table, owner: Sequence[str], first: str, last: str, step: Callable[[K, int], K]
    ) -> None:
        self.table = table
        self.step: Callable[[K, int], K] = step
        self.owner = list(owner)
        self.first, self.last = table.c[first], table.c[last]
        of = [table.c[name] == bindparam(f"owner_{name}") for name in owner]
        at = self.first == bindparam("at")
        self._any = select(exists().where(*of))
        self._lowest = select(self.first).where(*of).order_by(self.first).limit(1)
        self._holder = (
            select(self.first, self.last)
            .where(*of, self.first <= bindparam("value"))
            .order_by(self.first.desc())
            .limit(1)
        )
        # The holder of `value` (or the last range to start below it) and the range after it:
        # the lowest free value from `value` on is in one of them.
        holder_first = self._holder.with_only_columns(self.first).scalar_subquery()
        self._from = (
            select(self.first, self.last)
            .where(*of, self.first >= func.coalesce(holder_first, bindparam("value")))
            .order_by(self.first)
            .limit(2)
        )
        self._delete = delete(table).where(*of, at)
        self._delete_above = self._delete.returning(self.last)
        self._take_first = update(table).where(*of, at).values({self.first: bindparam("to")})
        self._take_last = update(table).where(*of, at).values({self.last: bindparam("to")})
        self._insert = insert(table)
        self._clear = delete(table).where(*of)

    def _of(self, owner: Sequence[object], **values: object) -> dict[str, object]:
        """The statements' parameters: the owner's, and `values`."""
        return {**{f"owner_{n}": v for n, v in zip(self.owner, owner, strict=True)}, **values}

    def holds_any(self, conn: Connection, owner: Sequence[object]) -> bool:
        return bool(conn.execute(self._any, self._of(owner)).scalar())

    def lowest(
        self, conn: Connection, owner: Sequence[object], at_least: K | None = None
    ) -> K | None:
        """The lowest free value (of those from `at_least` on); None when there is none."""
        if at_least is None:
            found: K | None = conn.execute(self._lowest, self._of(owner)).scalar()
            return found
        for first, last in conn.execute(self._from, self._of(owner, value=at_least)):
            if last >= at_least:
                return max(first, at_least)
        return None

    def carve(self, conn: Connection, owner: Sequence[object], value: K) -> None:
        """`value` is taken: no range holds it any more."""
        holder = self._starting_at_or_below(conn, owner, value)
        if holder is None or holder[1] < value:
            return
        first, last = holder
        if value == first == last:
            conn.execute(self._delete, self._of(owner, at=first))
        elif value == first:  # the lowest free value, which allocations take: shrunk in place
            conn.execute(self._take_first, self._of(owner, at=first, to=self.step(value, 1)))
        else:
            conn.execute(self._take_last, self._of(owner, at=first, to=self.step(value, -1)))
            if value != last:
                self.insert(conn, owner, [(self.step(value, 1), last)])

    def give_back(self, conn: Connection, owner: Sequence[object], value: K) -> None:
        """Make `value` free, merged with the ranges it touches: the one ending just below it
        grows over it (and over the one starting just above it, which goes), or it begins a
        range."""
        above = conn.execute(self._delete_above, self._of(owner, at=self.step(value, 1))).scalar()
        last = value if above is None else above
        below = self._starting_at_or_below(conn, owner, self.step(value, -1))
        if below is not None and below[1] == self.step(value, -1):
            conn.execute(self._take_last, self._of(owner, at=below[0], to=last))
        else:
            self.insert(conn, owner, [(value, last)])

    def insert(
        self, conn: Connection, owner: Sequence[object], ranges: Iterable[tuple[K, K]]
    ) -> None:
        """Add ranges (first, last)."""
        named = dict(zip(self.owner, owner, strict=True))
        rows = [{**named, self.first.name: a, self.last.name: b} for a, b in ranges]
        if rows:
            conn.execute(self._insert, rows)

    def clear(self, conn: Connection, owner: Sequence[object]) -> None:
        conn.execute(self._clear, self._of(owner))

    def _starting_at_or_below(
        self, conn: Connection, owner: Sequence[object], value: K
    ) -> tuple[K, K] | None:
        """The range (first, last) that starts at `value` or is the last to start below it: the
        one that holds `value`, if any does."""
        row = conn.execute(self._holder, self._of(owner, value=value)).first()
        return None if row is None else (row[0], row[1])


# -- a subnet's addresses, by their ipam.sortable text --------------------------------------
ADDRESSES = FreeRanges[str](
    schema.ip_free_ranges,
    ("subnet_id",),
    "first_ip",
    "last_ip",
    step=lambda text, n: ipam.sortable(ipam.from_sortable(text), n),
)


def lowest(conn: Connection, subnet_id: str) -> str | None:
    """The lowest free address of the subnet's pools; None when they are exhausted."""
    first = ADDRESSES.lowest(conn, (subnet_id,))
    return None if first is None else str(ipam.from_sortable(first))


def fill(conn: Connection, subnet_id: str, pools: list[ipam.Pool]) -> None:
    """Start over from `pools` (a new subnet, or new pools) less what is allocated in them."""
    ADDRESSES.clear(conn, (subnet_id,))
    taken = conn.execute(select(A.c.ip_address).where(A.c.subnet_id == subnet_id)).scalars()
    free = ipam.free_ranges(pools, (ipaddress.ip_address(ip) for ip in taken))
    ADDRESSES.insert(conn, (subnet_id,), ((ipam.sortable(a), ipam.sortable(b)) for a, b in free))


def carve(conn: Connection, subnet_id: str, address: str) -> None:
    """`address` is taken: no range holds it any more."""
    ADDRESSES.carve(conn, (subnet_id,), ipam.sortable(ipaddress.ip_address(address)))


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
            ADDRESSES.give_back(conn, (subnet_id,), ipam.sortable(ip))
