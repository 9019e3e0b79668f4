"""What every resource family shares: standard attributes, tags, the change log."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Executable,
    Row,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from neutrino import errors
from neutrino.context import Context
from neutrino.db import Changes, schema

# The ids a statement built once selects by; see `rows_for`.
IDS: BindParameter[Any] = bindparam("ids", expanding=True)


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso(moment: datetime | None) -> str | None:
    # Stored without microseconds or zone: isoformat() is the wire format, and quick.
    return moment.isoformat() + "Z" if moment else None


def record_change(conn: Connection, resource_type: str, resource_id: str, op: str) -> int:
    """Append to the change feed (when the write commits); returns the new global revision.

    Writers hold the feed head (db.Database.write), so revisions are handed
    out in commit order and an agent that has seen N never later finds less.
    """
    changes: Changes = conn.info["changes"]
    return changes.add(
        {"resource_type": resource_type, "resource_id": resource_id, "op": op, "at": now()}
    )


def owner(ctx: Context, values: dict[str, Any]) -> str:
    """The project a new resource belongs to: the caller's, or the one an admin names."""
    project = values.pop("project_id", None) or ctx.project_id
    if project != ctx.project_id and not ctx.is_admin:
        raise errors.HTTPBadRequest(
            "Specifying 'project_id' or 'tenant_id' other than the "
            "authenticated project in request requires admin privileges"
        )
    if not project:
        raise errors.BadRequest(
            resource="resource", msg="'project_id' is required for a token without project scope"
        )
    return project


def standard_values(ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
    """Row values for a new resource: id, owner, timestamps, revision 1."""
    moment = now()
    project = owner(ctx, values)
    return {
        "id": values.pop("id", None) or new_id(),
        "project_id": project,
        "name": values.pop("name", ""),
        "description": values.pop("description", ""),
        "created_at": moment,
        "updated_at": moment,
        "revision_number": 1,
    }


def insert_resource(
    conn: Connection, table: Table, resource_type: str, row: dict[str, Any]
) -> None:
    conn.execute(insert(table).values(**row))
    record_change(conn, resource_type, row["id"], "create")


def bump(
    conn: Connection,
    table: Table,
    resource_type: str,
    row: Row,
    values: dict[str, Any] | None = None,
) -> None:
    """Update a resource's columns, bump its revision_number and log the change."""
    conn.execute(
        update(table)
        .where(table.c.id == row.id)
        .values(**(values or {}), revision_number=row.revision_number + 1, updated_at=now())
    )
    record_change(conn, resource_type, row.id, "update")


def delete_resource(conn: Connection, table: Table, resource_type: str, resource_id: str) -> None:
    """Delete a resource with its tags and the RBAC policies granting access to it."""
    conn.execute(delete(schema.tags).where(schema.tags.c.resource_id == resource_id))
    R = schema.rbac_policies
    conn.execute(delete(R).where(R.c.object_type == resource_type, R.c.object_id == resource_id))
    conn.execute(delete(table).where(table.c.id == resource_id))
    record_change(conn, resource_type, resource_id, "delete")


def require_writer(ctx: Context) -> None:
    """Readers read; writing takes the member or admin role."""
    if not ctx.can_write:
        raise errors.PolicyNotAuthorized(action="write")


def check_revision(row: Row, if_match: int | None) -> None:
    if if_match is not None and row.revision_number != if_match:
        raise errors.RevisionNumberConstraintFailed(expected=if_match, current=row.revision_number)


TAGS_OF = select(schema.tags.c.resource_id, schema.tags.c.tag).where(
    schema.tags.c.resource_id.in_(IDS)
)


Tags = list[str]  # a resource's tags, as set_tags takes and gives them (and in classes with a
# `list` method, where `list[str]` would name the method)


def load_tags(conn: Connection, ids: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for rid, tag in rows_for(conn, TAGS_OF, ids):
        found[rid].append(tag)
    for tag_list in found.values():
        tag_list.sort()
    return found


def render_standard(row: Row, tags: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "revision_number": row.revision_number,
        "tags": tags.get(row.id, []),
    }


def chunked(values: list[Any], size: int = 900) -> Iterable[list[Any]]:
    """SQLite limits bound parameters per statement; batch IN lists."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def rows_for(
    conn: Connection, statement: Executable, ids: Iterable[Any], **params: Any
) -> Iterator[Row]:
    """The rows of `statement`, which selects by `IN IDS`, for `ids` in chunks. Built once
    (at import), a statement skips SQLAlchemy's building and cache-key work on every call:
    most of the cost of the small reads that render a resource's relations."""
    for chunk in chunked(list(ids)):
        yield from conn.execute(statement, {"ids": chunk, **params})


def insert_tags(
    conn: Connection, resource_type: str, resource_id: str, tags: Iterable[str]
) -> None:
    for tag in sorted(tags):
        conn.execute(
            insert(schema.tags).values(
                resource_id=resource_id, tag=tag, resource_type=resource_type
            )
        )


def set_tags(
    conn: Connection,
    table: Table,
    resource_type: str,
    row: Row,
    add: list[str],
    remove: list[str] | None,
) -> list[str]:
    """Add and remove tags; `remove=None` replaces the whole set with `add`."""
    T = schema.tags
    current = set(conn.execute(select(T.c.tag).where(T.c.resource_id == row.id)).scalars())
    if remove is None:
        drop, new = current - set(add), set(add) - current
    else:
        missing = [t for t in remove if t not in current]
        if missing:
            raise errors.TagNotFound(tag=missing[0], resource=resource_type, resource_id=row.id)
        drop, new = set(remove), set(add) - current
    if drop:
        conn.execute(delete(T).where(T.c.resource_id == row.id, T.c.tag.in_(drop)))
    insert_tags(conn, resource_type, row.id, new)
    if drop or new:
        bump(conn, table, resource_type, row)
    return sorted((current - drop) | new)
