"""Lists in SQL: filters, visibility, tag filters, keyset pagination.

A collection describes its table as `Listing`: which API attribute is which
SQL expression, and how non-column attributes (fixed_ips, security_groups)
filter. Pagination is keyset-based on the sort keys plus `id`, so pages stay
stable while other requests write.

A service built on `Listed` lists one page at once or streams it in chunks read as
they are consumed (the API writes those as they come, so memory does not grow
with the list); a list asking only for plain attributes reads their columns alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    false,
    func,
    or_,
    select,
)

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema

FilterFn = Callable[[list[Any]], ColumnElement[bool]]


@dataclass
class Listing:
    table: Table
    columns: dict[str, ColumnElement[Any]]
    custom_filters: dict[str, FilterFn] = field(default_factory=dict)
    # Neutron's resources built on versioned objects (QoS policies) list from the start when
    # the caller cannot see the marker; the others answer 404.
    unseen_marker_ignored: bool = False
    # Attributes whose value is their column's as stored, in the order bodies give them: a
    # list asking only for these reads those columns alone.
    plain: tuple[str, ...] = ()

    def with_filters(self, **filters: FilterFn) -> Listing:
        """This listing with more custom filters (those that depend on the caller)."""
        return replace(self, custom_filters={**self.custom_filters, **filters})

    def column(self, attr: str) -> ColumnElement[Any]:
        return self.columns.get(attr, self.table.c.get(attr))  # type: ignore[return-value]

    def plain_fields(self, fields: list[str]) -> list[str] | None:
        """When `fields` asks only for plain attributes: those and `id` (a page's marker), in
        body order."""
        if not fields or not set(fields) <= set(self.plain):
            return None
        return [attr for attr in self.plain if attr in fields or attr == "id"]


Render = Callable[[Connection, list[Row]], list[dict[str, Any]]]
# Bodies in chunks, read as they are consumed; closing it ends the read.
Chunks = Generator[list[dict[str, Any]], None, None]


@dataclass(frozen=True)
class Source:
    """What a list reads: which rows the caller sees (None: all) and how rows become bodies;
    `parent` is read first, to refuse the list of a parent missing or unseen (its 404)."""

    listing: Listing
    visible: ColumnElement[bool] | None
    render: Render
    parent: Callable[[Connection], object] | None = None

    def check_parent(self, conn: Connection) -> None:
        if self.parent is not None:
            self.parent(conn)

    def bodies(
        self, conn: Connection, rows: list[Row], plain: list[str] | None
    ) -> list[dict[str, Any]]:
        """Bodies of rows read whole, or of rows read by `plain` (Listing.plain_fields)."""
        if plain is None:
            return self.render(conn, rows)
        return [dict(zip(plain, row, strict=True)) for row in rows]


class Listed(ABC):
    """A collection's `list` and `stream`, from the Source it gives for a caller and query."""

    @abstractmethod
    def source(self, ctx: Context, query: ListQuery) -> Source: ...

    def stream(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> Iterator[list[dict[str, Any]]]:
        """What `list` answers (without `page_reverse`), in chunks read as they are consumed.
        Nothing is read before the first chunk is asked for."""
        source = self.source(ctx, query)
        plain = source.listing.plain_fields(query.fields)
        with db.read(streamed=in_chunks(query.limit)) as conn:
            source.check_parent(conn)
            for rows in stream_rows(conn, source.listing, query, source.visible, plain):
                yield source.bodies(conn, rows, plain)

    def list(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]:
        source = self.source(ctx, query)
        plain = source.listing.plain_fields(query.fields)
        with db.read() as conn:
            source.check_parent(conn)
            rows, more = list_rows(conn, source.listing, query, source.visible, plain)
            return source.bodies(conn, rows, plain), more


# The attributes every collection answers as stored, first in its bodies (its `plain` begins so).
STANDARD_PLAIN = ("id", "name", "description", "project_id", "tenant_id", "revision_number")


def standard_columns(table: Table) -> dict[str, ColumnElement[Any]]:
    c = table.c
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "project_id": c.project_id,
        "tenant_id": c.project_id,
        "revision_number": c.revision_number,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def tag_clause(table: Table, tags: dict[str, list[str]]) -> list[ColumnElement[bool]]:
    t = schema.tags

    def tagged(names: list[str], every: bool) -> ColumnElement[bool]:
        """Rows carrying every one (or any) of `names`: one subquery, however many names."""
        wanted = set(names)
        found = select(t.c.resource_id).where(t.c.tag.in_(wanted))
        if every:  # (resource_id, tag) is the key: a row has each tag at most once
            found = found.group_by(t.c.resource_id).having(func.count() == len(wanted))
        return table.c.id.in_(found)

    clauses: list[ColumnElement[bool]] = []
    if tags.get("tags"):
        clauses.append(tagged(tags["tags"], every=True))
    if tags.get("tags-any"):
        clauses.append(tagged(tags["tags-any"], every=False))
    if tags.get("not-tags"):
        clauses.append(~tagged(tags["not-tags"], every=True))
    if tags.get("not-tags-any"):
        clauses.append(~tagged(tags["not-tags-any"], every=False))
    return clauses


CHUNK = 1000  # rows a streamed list reads at a time


def list_rows(
    conn: Connection,
    listing: Listing,
    query: ListQuery,
    visible: ColumnElement[bool] | None,
    plain: list[str] | None = None,
) -> tuple[list[Row], bool]:
    """Rows for one page, in the requested order, and whether more follow; with `plain`
    (Listing.plain_fields), only those columns."""
    stmt = _statement(conn, listing, query, visible, plain)
    if query.limit:
        stmt = stmt.limit(query.limit + 1)
    rows = list(conn.execute(stmt))
    more = bool(query.limit) and len(rows) > query.limit  # type: ignore[operator]
    if more:
        rows = rows[: query.limit]
    if query.page_reverse:
        rows.reverse()
    return rows, more


def stream_rows(
    conn: Connection,
    listing: Listing,
    query: ListQuery,
    visible: ColumnElement[bool] | None,
    plain: list[str] | None = None,
) -> Iterator[list[Row]]:
    """The rows of one page in chunks, read as they are consumed (not for `page_reverse`)."""
    assert not query.page_reverse
    stmt = _statement(conn, listing, query, visible, plain)
    if query.limit:
        stmt = stmt.limit(query.limit)
    yield from read_in_chunks(conn, stmt, query.limit)


def in_chunks(limit: int | None) -> bool:
    """Whether a read of at most `limit` rows goes through a server-side cursor, chunk by
    chunk: not if it fits in one chunk, where the cursor would only add round trips."""
    return not limit or limit > CHUNK


def read_in_chunks(
    conn: Connection, stmt: Select[Any], limit: int | None = None
) -> Iterator[list[Row]]:
    if not in_chunks(limit):
        if whole := list(conn.execute(stmt)):
            yield whole
        return
    result = conn.execute(stmt.execution_options(yield_per=CHUNK))
    for rows in result.partitions():
        yield list(rows)


def stream_all(
    db: Database,
    source: Source,
    order: Sequence[ColumnElement[Any]],
    plain: list[str] | None = None,
) -> Chunks:
    """The bodies of every row the caller sees, in `order`, in chunks read as they are consumed
    (for APIs that filter and page what they read: Octavia's); with `plain`
    (Listing.plain_fields), read from those columns alone. Nothing is read before the first
    chunk is asked for."""
    where = [] if source.visible is None else [source.visible]
    with db.read(streamed=True) as conn:
        source.check_parent(conn)
        stmt = select(*_columns(source.listing, plain)).where(*where).order_by(*order)
        for rows in read_in_chunks(conn, stmt):
            yield source.bodies(conn, rows, plain)


def _statement(
    conn: Connection,
    listing: Listing,
    query: ListQuery,
    visible: ColumnElement[bool] | None,
    plain: list[str] | None,
) -> Select[Any]:
    """The page's query, in the requested order; 404 for a marker the caller cannot see."""
    table = listing.table
    where: list[ColumnElement[bool]] = [] if visible is None else [visible]
    for attr, values in query.filters.items():
        if attr in listing.custom_filters:
            where.append(listing.custom_filters[attr](values))
            continue
        column = listing.column(attr)
        if column is None:
            # An attribute that exists in the API but not as a column (e.g. a
            # computed one): nothing stored can match a filter on it.
            where.append(false())
            continue
        where.append(column.in_(values))
    where.extend(tag_clause(table, query.tags))

    keys = [(listing.column(attr), asc) for attr, asc in query.sorts]
    if not any(col is table.c.id for col, _ in keys):
        keys.append((table.c.id, keys[-1][1] if keys else True))
    if query.page_reverse:
        keys = [(col, not asc) for col, asc in keys]

    if query.marker:
        marker = conn.execute(
            select(*[col for col, _ in keys]).where(
                table.c.id == query.marker, *([] if visible is None else [visible])
            )
        ).first()
        if marker is not None:
            where.append(_after(keys, list(marker)))
        elif not listing.unseen_marker_ignored:
            raise errors.NotFound(f"Marker {query.marker} could not be found.")

    return (
        select(*_columns(listing, plain))
        .where(*where)
        .order_by(*[col.asc() if asc else col.desc() for col, asc in keys])
    )


def _columns(listing: Listing, plain: list[str] | None) -> list[Any]:
    """The whole row, or the columns of `plain`, labelled: project_id and tenant_id read the
    same column."""
    if plain is None:
        return [listing.table]
    return [listing.column(attr).label(f"c{i}") for i, attr in enumerate(plain)]


def _after(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after the marker in the (mixed-direction) sort order."""
    options = []
    for i, (col, asc) in enumerate(keys):
        equal = [keys[j][0] == values[j] for j in range(i)]
        step = col > values[i] if asc else col < values[i]
        options.append(and_(*equal, step))
    return or_(*options)
