"""RBAC policies: an object's owner grants another project, or every one (`*`), access to it.

A policy grants `target_project` one `action` on one object: `access_as_shared` lets that
project see the object and use it as its own (ports on a network, a security group on its
ports, subnets from a subnet pool, pools in an address scope, rules naming an address group,
networks and ports with a QoS policy); `access_as_external` lets it use a network as an
external one (router gateways, floating IPs). A shareable kind of object is one `ObjectType` in
`OBJECT_TYPES`, and nothing else: its family asks `seen_by` which rows a project reaches and
`shared_ids` what its `shared` attribute says, and the policies API keeps a project from losing
an access that its resources still depend on (`Access.users`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    CompoundSelect,
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, quotas
from neutrino.services.listing import FilterFn, Listed, Listing, Source

R = schema.rbac_policies
SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
EVERYONE = "*"


@dataclass(frozen=True)
class Access:
    """What depends on one action's grants of an object, and how Neutron says so."""

    # object id -> projects whose resources need the access
    users: Callable[[str], Select[Any] | CompoundSelect]
    in_use: Callable[[str, str], str]  # (object id, target project) -> why it cannot go
    # the object -> why its grant to every project must stay, whoever uses it; None if it may go
    everyone_needed: Callable[[Row], str | None] = lambda obj: None


@dataclass(frozen=True)
class ObjectType:
    name: str
    table: Table
    not_found: Callable[[str], errors.NeutronError]
    actions: dict[str, Access]
    plural: str = "objects"  # in "Only admins can manipulate policies on ... they do not own"
    revises: bool = False  # a policy change bumps the object's revision_number
    # Columns that follow the object's grants, recomputed after each change of them.
    follows: Callable[[Connection, str], dict[str, Any]] = field(default=lambda conn, oid: {})
    # Neutron checks a loss of access to a network leniently: the owner's resources need no
    # grant, and a policy handed to another project keeps the access that project gets. Its
    # other RBAC objects count the owner's resources as users of the grant to every project,
    # and check a policy handed on as one taken away, unless it goes to every project.
    lenient: bool = False
    # Checks a new grant of the object to a project (or `*`); Neutron refuses it as invalid
    # input of the policy.
    check_target: Callable[[Connection, Row, str], None] = field(
        default=lambda conn, obj, target: None
    )


def granted(
    object_type: str, object_id: Any, project_id: Any, actions: Iterable[str] = ()
) -> ColumnElement[bool]:
    """Whether a policy grants `project_id` (one of `actions`, or any) on the object."""
    where = [
        R.c.object_type == object_type,
        R.c.object_id == object_id,
        or_(R.c.target_project == project_id, R.c.target_project == EVERYONE),
    ]
    if actions:
        where.append(R.c.action.in_(list(actions)))
    return exists().where(*where)


def seen_by(object_type: str, project_id: Any) -> ColumnElement[bool]:
    """Objects of the type a project sees: its own, and those a policy grants it."""
    table = OBJECT_TYPES[object_type].table
    return or_(table.c.project_id == project_id, granted(object_type, table.c.id, project_id))


def visible_objects(object_type: str, ctx: Context) -> ColumnElement[bool] | None:
    """What `seen_by` the caller's project; admin sees all."""
    return None if ctx.is_admin else seen_by(object_type, ctx.project_id)


def shared_filter(object_type: str, object_id: Any, project_id: Any) -> FilterFn:
    """The `shared` filter: objects shared with the caller's project (or not), as Neutron's."""

    def shared(values: list[Any]) -> ColumnElement[bool]:
        clause = granted(object_type, object_id, project_id, [SHARED])
        return or_(*(clause if value else ~clause for value in values))

    return shared


SHARED_WITH = select(R.c.object_id).where(
    R.c.object_type == bindparam("object_type"),
    R.c.object_id.in_(common.IDS),
    R.c.action == SHARED,
    or_(R.c.target_project == bindparam("project_id"), R.c.target_project == EVERYONE),
)


def shared_ids(conn: Connection, object_type: str, ids: list[str], project_id: Any) -> set[str]:
    """Of `ids`, the objects shared with `project_id`: their `shared` attribute for it."""
    rows = common.rows_for(conn, SHARED_WITH, ids, object_type=object_type, project_id=project_id)
    return {object_id for (object_id,) in rows}


# -- what each kind of object depends on ----------------------------------------------------
P, PSG = schema.ports, schema.port_security_groups
QOS_NETWORKS, QOS_PORTS = schema.qos_network_bindings, schema.qos_port_bindings


def target_in_use(object_id: str, target: str) -> str:
    """How Neutron's RBAC objects (all but networks) say which grant a project depends on."""
    return f"project_id={target}"


def needed_by_rows_naming(column: Column[Any]) -> Access:
    """A shared access that the projects owning the rows whose `column` names the object (a
    subnet its pool, a rule its address group) depend on."""
    return Access(lambda oid: select(column.table.c.project_id).where(column == oid), target_in_use)


def scope_reaches_target(conn: Connection, pool: Row, target: str) -> None:
    """A subnet pool in an address scope is shared only where a policy shares the scope."""
    if pool.address_scope_id is None:
        return
    if not conn.execute(select(granted("address_scope", pool.address_scope_id, target))).scalar():
        raise errors.InvalidInput(
            error_message=(
                f"Failed to create RBAC policy on object {pool.id} because target project "
                "doesn't have access to associated address scope"
            )
        )


def external_follows_grants(conn: Connection, network_id: str) -> dict[str, Any]:
    """router:external holds while any project is granted the network as external; it cannot
    end under a router's gateway (Neutron's ExternalNetworkInUse). A network that is no longer
    external is no longer the default one either."""
    external = conn.execute(
        select(
            exists().where(
                R.c.object_type == "network", R.c.object_id == network_id, R.c.action == EXTERNAL
            )
        )
    ).scalar()
    if not external:
        gateway = select(schema.routers.c.id).where(schema.routers.c.gw_network_id == network_id)
        if conn.execute(gateway.limit(1)).first():
            raise errors.ExternalNetworkInUse(net_id=network_id)
    return {"external": True} if external else {"external": False, "is_default": False}


OBJECT_TYPES: dict[str, ObjectType] = {
    kind.name: kind
    for kind in (
        ObjectType(
            "network",
            schema.networks,
            lambda oid: errors.NetworkNotFound(net_id=oid),
            {
                SHARED: Access(
                    lambda oid: select(P.c.project_id).where(P.c.network_id == oid),
                    lambda oid, target: errors.InvalidSharedSetting(network=oid).msg,
                ),
                EXTERNAL: Access(
                    lambda oid: select(schema.routers.c.project_id).where(
                        schema.routers.c.gw_network_id == oid
                    ),
                    lambda oid, target: (
                        "There are routers attached to this network that depend on this "
                        "policy for access."
                    ),
                    lambda network: (
                        "Default external networks must be shared to everyone."
                        if network.is_default
                        else None
                    ),
                ),
            },
            plural="networks",
            revises=True,
            follows=external_follows_grants,
            lenient=True,
        ),
        ObjectType(
            "security_group",
            schema.security_groups,
            lambda oid: errors.SecurityGroupNotFound(id=oid),
            {
                SHARED: Access(
                    lambda oid: (
                        select(P.c.project_id)
                        .join(PSG, PSG.c.port_id == P.c.id)
                        .where(PSG.c.security_group_id == oid)
                    ),
                    target_in_use,
                ),
            },
        ),
        ObjectType(
            "subnetpool",
            schema.subnetpools,
            lambda oid: errors.SubnetPoolNotFound(subnetpool_id=oid),
            {SHARED: needed_by_rows_naming(schema.subnets.c.subnetpool_id)},
            check_target=scope_reaches_target,
        ),
        ObjectType(
            "address_scope",
            schema.address_scopes,
            lambda oid: errors.AddressScopeNotFound(address_scope_id=oid),
            {SHARED: needed_by_rows_naming(schema.subnetpools.c.address_scope_id)},
        ),
        ObjectType(
            "address_group",
            schema.address_groups,
            lambda oid: errors.AddressGroupNotFound(address_group_id=oid),
            {SHARED: needed_by_rows_naming(schema.security_group_rules.c.remote_address_group_id)},
        ),
        ObjectType(
            "qos_policy",
            schema.qos_policies,
            lambda oid: errors.QosPolicyNotFound(policy_id=oid),
            {
                SHARED: Access(
                    lambda oid: union(
                        select(schema.networks.c.project_id)
                        .join(QOS_NETWORKS, QOS_NETWORKS.c.network_id == schema.networks.c.id)
                        .where(QOS_NETWORKS.c.policy_id == oid),
                        select(P.c.project_id)
                        .join(QOS_PORTS, QOS_PORTS.c.port_id == P.c.id)
                        .where(QOS_PORTS.c.policy_id == oid),
                    ),
                    target_in_use,
                ),
            },
        ),
    )
}


# -- changing grants (the policies API, and attributes such as a network's `shared`) ----------
def loses_access(
    conn: Connection,
    kind: ObjectType,
    obj: Row,
    action: str,
    target: str,
    policy_id: str,
    successor: str | None = None,
) -> bool:
    """Whether taking policy `policy_id` (`action` for `target`) away, or giving it to
    `successor` instead, leaves a project without an access its resources use, one no other
    policy grants (the owner's, and what a successor keeps: see `ObjectType.lenient`)."""
    if target == obj.project_id:
        return False
    remaining = {successor} if kind.lenient or successor == EVERYONE else set()
    remaining |= set(
        conn.execute(
            select(R.c.target_project).where(
                R.c.object_type == kind.name,
                R.c.object_id == obj.id,
                R.c.action == action,
                R.c.id != policy_id,
            )
        ).scalars()
    )
    if EVERYONE in remaining:
        return False
    users = set(conn.execute(kind.actions[action].users(obj.id)).scalars())
    users.discard("")  # the owner of floating IP ports, which need no grant
    if kind.lenient:
        users.discard(obj.project_id)
    return bool(users - remaining if target == EVERYONE else users & {target})


def changed(conn: Connection, kind: ObjectType, object_id: str) -> None:
    """After a change of the object's grants: what follows them, and its revision."""
    values = kind.follows(conn, object_id)
    if kind.revises or values:
        obj = conn.execute(select(kind.table).where(kind.table.c.id == object_id)).one()
        common.bump(conn, kind.table, kind.name, obj, values)


def grant(
    conn: Connection, kind: ObjectType, obj: Row, action: str, target: str, project_id: str
) -> str:
    """A new policy of `project_id`'s; 409 if the same grant exists."""
    policy_id = common.new_id()
    try:
        with conn.begin_nested():
            conn.execute(
                insert(R).values(
                    id=policy_id,
                    project_id=project_id,
                    object_type=kind.name,
                    object_id=obj.id,
                    action=action,
                    target_project=target,
                )
            )
    except IntegrityError:
        raise errors.DuplicateRbacPolicy() from None
    return policy_id


def grant_everyone(conn: Connection, object_type: str, obj: Row, action: str) -> dict[str, Any]:
    """Grant `action` on the object to every project, in its owner's name; returns the object's
    columns that follow its grants."""
    kind = OBJECT_TYPES[object_type]
    wildcard = select(R.c.id).where(
        R.c.object_type == object_type,
        R.c.object_id == obj.id,
        R.c.action == action,
        R.c.target_project == EVERYONE,
    )
    if conn.execute(wildcard).first() is None:
        grant(conn, kind, obj, action, EVERYONE, obj.project_id)
    return kind.follows(conn, obj.id)


def revoke_everyone(
    conn: Connection, object_type: str, obj: Row, action: str, in_use: errors.NeutronError
) -> dict[str, Any]:
    """Take the grant of `action` to every project away (for access_as_external, every grant:
    the network is no longer external, as in Neutron); `in_use` if a project still depends on
    it. Returns the object's columns that follow its grants."""
    kind = OBJECT_TYPES[object_type]
    where = [R.c.object_type == object_type, R.c.object_id == obj.id, R.c.action == action]
    if action != EXTERNAL:  # external ends under no router's gateway: `follows` checks that
        where.append(R.c.target_project == EVERYONE)
        wildcard = conn.execute(select(R.c.id).where(*where)).scalar()
        if wildcard and loses_access(conn, kind, obj, action, EVERYONE, wildcard):
            raise in_use
    conn.execute(delete(R).where(*where))
    return kind.follows(conn, obj.id)


def set_shared(conn: Connection, object_type: str, obj: Row, shared: bool) -> None:
    """An RBAC object's `shared` attribute set: its grant to every project given, or taken
    away unless a project depends on it (RbacPolicyInUse, as Neutron's update_shared)."""
    if shared:
        grant_everyone(conn, object_type, obj, SHARED)
    else:
        in_use = policy_in_use(OBJECT_TYPES[object_type], SHARED, obj.id, EVERYONE)
        revoke_everyone(conn, object_type, obj, SHARED, in_use)


def policy_in_use(
    kind: ObjectType, action: str, object_id: str, target: str
) -> errors.RbacPolicyInUse:
    details = kind.actions[action].in_use(object_id, target)
    return errors.RbacPolicyInUse(object_id=object_id, details=details)


# -- the policies API ------------------------------------------------------------------------
LISTING = Listing(
    R,
    {
        "id": R.c.id,
        "project_id": R.c.project_id,
        "tenant_id": R.c.project_id,
        "object_type": R.c.object_type,
        "object_id": R.c.object_id,
        "action": R.c.action,
        "target_tenant": R.c.target_project,
    },
)


def visible(ctx: Context) -> ColumnElement[bool] | None:
    """A project sees its own policies, not those granting it something; admin sees all."""
    return None if ctx.is_admin else R.c.project_id == ctx.project_id


def fetch(conn: Connection, ctx: Context, policy_id: str) -> Row:
    seen = visible(ctx)
    row = conn.execute(
        select(R).where(R.c.id == policy_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.RbacPolicyNotFound(id=policy_id, object_type="unknown")
    return row


def render(row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "action": row.action,
        "target_tenant": row.target_project,
    }


def owned_object(conn: Connection, ctx: Context, kind: ObjectType, object_id: str) -> Row:
    """The object a policy is about: one the caller sees (else as if missing), and owns unless
    admin. Neutron refuses both as invalid input of the policy, 400."""
    seen = visible_objects(kind.name, ctx)
    table = kind.table
    obj = conn.execute(
        select(table).where(table.c.id == object_id, *([] if seen is None else [seen]))
    ).first()
    if obj is None:
        raise errors.InvalidInput(error_message=kind.not_found(object_id).msg.rstrip("."))
    if not ctx.is_admin and obj.project_id != ctx.project_id:
        raise errors.InvalidInput(
            error_message=f"Only admins can manipulate policies on {kind.plural} they do not own"
        )
    return obj


def only_admin_shares_with_everyone(ctx: Context, target: str, verb: str) -> None:
    if target == EVERYONE and not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=f"{verb}_rbac_policy:target_tenant")


class RbacPolicies(Listed):
    resource = "rbac_policy"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(LISTING, visible(ctx), lambda _conn, rows: [render(r) for r in rows])

    def get(self, db: Database, ctx: Context, policy_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(fetch(conn, ctx, policy_id))

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        target = values["target_tenant"]
        only_admin_shares_with_everyone(ctx, target, "create")
        project = common.owner(ctx, values)
        kind = OBJECT_TYPES[values["object_type"]]
        with db.write() as conn:
            quotas.check(conn, project, "rbac_policy", 1)
            if values["action"] not in kind.actions:
                raise errors.InvalidActionForType(
                    action=values["action"],
                    object_type=kind.name,
                    valid_actions=tuple(kind.actions),
                )
            obj = owned_object(conn, ctx, kind, values["object_id"])
            kind.check_target(conn, obj, target)
            policy_id = grant(conn, kind, obj, values["action"], target, project)
            changed(conn, kind, obj.id)
            return render(fetch(conn, ctx, policy_id))

    def update(
        self,
        db: Database,
        ctx: Context,
        policy_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, policy_id)
            target = values.get("target_tenant", row.target_project)
            only_admin_shares_with_everyone(ctx, target, "update")
            kind = OBJECT_TYPES[row.object_type]
            obj = owned_object(conn, ctx, kind, row.object_id)
            if target == row.target_project:
                return render(row)
            self.check_everyone_not_needed(kind, obj, row)
            if loses_access(conn, kind, obj, row.action, row.target_project, row.id, target):
                raise policy_in_use(kind, row.action, row.object_id, row.target_project)
            try:
                with conn.begin_nested():
                    conn.execute(update(R).where(R.c.id == policy_id).values(target_project=target))
            except IntegrityError:
                raise errors.DuplicateRbacPolicy() from None
            changed(conn, kind, obj.id)
            return render(fetch(conn, ctx, policy_id))

    def delete(self, db: Database, ctx: Context, policy_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, policy_id)
            kind = OBJECT_TYPES[row.object_type]
            obj = conn.execute(select(kind.table).where(kind.table.c.id == row.object_id)).one()
            self.check_everyone_not_needed(kind, obj, row)
            if loses_access(conn, kind, obj, row.action, row.target_project, row.id):
                raise policy_in_use(kind, row.action, row.object_id, row.target_project)
            conn.execute(delete(R).where(R.c.id == policy_id))
            changed(conn, kind, obj.id)

    @staticmethod
    def check_everyone_not_needed(kind: ObjectType, obj: Row, row: Row) -> None:
        """A grant to every project that the object must keep stays (a default external
        network's)."""
        if row.target_project == EVERYONE:
            reason = kind.actions[row.action].everyone_needed(obj)
            if reason is not None:
                raise errors.RbacPolicyInUse(object_id=obj.id, details=reason)
