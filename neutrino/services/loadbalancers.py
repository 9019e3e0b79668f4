"""Load balancers (Octavia v2): the rules, the statuses, and realization by agents.

Statuses follow Octavia. A write to a load balancer or anything under it
(listener, pool, member, health monitor, L7 policy or rule) puts that object
in PENDING_CREATE, PENDING_UPDATE or PENDING_DELETE and the load balancer in
PENDING_UPDATE (or its own pending state); while the load balancer is
PENDING_* the whole tree is immutable (409). Each such write records one
"loadbalancer" change in the feed, carrying the whole tree (`render_trees`),
and stores that change's revision in `feed_revision`.

Realization (services.realization). The agents that host a load balancer
(where its amphorae's ports are bound: the VIP's, or each VRRP port of
ACTIVE_STANDBY) render the tree into an haproxy configuration and report the
feed revision they applied, and haproxy's health. Once every one of them has
applied `feed_revision`, the pending objects turn ACTIVE (ERROR if one failed
it) and the ones being deleted go; a load balancer in PENDING_DELETE goes
with its VIP port. Health read from haproxy on the VIP's host becomes
operating statuses, and its frontends' counters listeners' statistics
(`record_statistics`).

Instances. What runs a load balancer (the haproxy in its namespace) is its
amphora, a row of its own (services/amphorae.py shows them): one (STANDALONE)
for the topology SINGLE, two (MASTER and BACKUP, each with a VRRP port of its
own) for ACTIVE_STANDBY, the flavor's `loadbalancer_topology`. A failover
(`fail_over`) builds a new one: the tree goes to the agent with the new
amphora's id, the agent replaces the running haproxy by a fresh one, and its
report of that revision makes the new amphora ALLOCATED and removes the old.
A load balancer's failover replaces its amphorae one at a time, the BACKUP
first, so that the other one holds the VIP meanwhile. The amphorae of a host
whose agent is dead are failed over to live hosts by the server's liveness
chore (`fail_over_host`, services/liveness.py).

Nothing stays pending: `housekeeping` (run by the server every few seconds)
finishes deletions and fails creations and updates that no agent has
realized within PENDING_TIMEOUT (a later report of success heals them);
after a server restart the agents' next reports carry on where the previous
process stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    select,
    update,
)

from neutrino import errors
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.identity.bootstrap import SERVICE_PROJECT, ensure_project
from neutrino.services import (
    agents,
    common,
    lb_policy,
    lbaas_flavors,
    networks,
    ports,
    realization,
    security_groups,
    subnets,
)
from neutrino.services.lb_base import Immutable
from neutrino.services.listing import Chunks, Listing, Source, stream_all
from neutrino.services.refusals import Conflict, Forbidden, Invalid, NotFound

LB, LI, PO, ME, HM = (
    schema.lb_loadbalancers,
    schema.lb_listeners,
    schema.lb_pools,
    schema.lb_members,
    schema.lb_healthmonitors,
)
L7P, L7R = schema.lb_l7policies, schema.lb_l7rules
P, AG, ST = schema.ports, schema.agents, schema.lb_listener_stats
AM = schema.lb_amphorae

ACTIVE, ERROR = "ACTIVE", "ERROR"
PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE = (
    "PENDING_CREATE",
    "PENDING_UPDATE",
    "PENDING_DELETE",
)
ONLINE, OFFLINE, DEGRADED, NO_MONITOR = "ONLINE", "OFFLINE", "DEGRADED", "NO_MONITOR"
BOOTING, ALLOCATED = "BOOTING", "ALLOCATED"  # an amphora being built, and one that serves
STANDALONE, MASTER, BACKUP = "STANDALONE", "MASTER", "BACKUP"
# The amphorae of each loadbalancer_topology, in the order a load balancer's failover replaces
# them: the one that does not hold the VIP first.
ROLES = {"SINGLE": (STANDALONE,), "ACTIVE_STANDBY": (BACKUP, MASTER)}
# Where a failover may start from (Octavia's FAILOVERABLE_STATUSES).
FAILOVERABLE = (ACTIVE, ERROR)
VIP_OWNER = "Octavia"
PENDING_TIMEOUT = timedelta(seconds=30)
# Octavia's defaults: its `[quotas] default_<resource>_quota` options in octavia.conf.
OCTAVIA_QUOTA_DEFAULTS: dict[str, int] = {
    "load_balancer": -1,
    "listener": -1,
    "pool": -1,
    "member": -1,
    "health_monitor": -1,
    "l7policy": -1,
    "l7rule": -1,
}
# The defaults as configured (`--default-lb-quota`); set from the configuration when the
# service is built.
QUOTA_DEFAULTS = dict(OCTAVIA_QUOTA_DEFAULTS)
QUOTA_TABLES: dict[str, Table] = {
    "load_balancer": LB,
    "listener": LI,
    "pool": PO,
    "member": ME,
    "health_monitor": HM,
    "l7policy": L7P,
    "l7rule": L7R,
}
# haproxy's view of a server -> the member's operating status
HEALTH = {"UP": ONLINE, "DOWN": ERROR, "MAINT": OFFLINE, "NO_CHECK": NO_MONITOR}
# Served by the kernel (nftables), as Octavia's amphora serves them with LVS.
LVS_PROTOCOLS = ("UDP", "SCTP")
# haproxy's frontend states (FULL: at its connection limit) -> a listener's operating status
FRONTEND_STATES = {"OPEN": ONLINE, "FULL": DEGRADED, "STOP": OFFLINE}
# Octavia's statistics; all but the first count up from the listener's creation.
STATISTICS = ("active_connections", "bytes_in", "bytes_out", "total_connections", "request_errors")
COUNTED = STATISTICS[1:]


FORBIDDEN = "Policy does not allow this request to be performed."


def authorize(ctx: Context, project_id: str | None, write: bool = False) -> None:
    """Octavia's check of the caller against an object's project (lb_policy)."""
    allowed = lb_policy.may_write if write else lb_policy.may_read
    if not allowed(ctx, project_id):
        raise Forbidden(FORBIDDEN)


def visible(ctx: Context, table: Table) -> list[Any]:
    """What a list shows: everything to admins and global observers, else the caller's own
    project, if the caller may read it."""
    if lb_policy.reads_everything(ctx):
        return []
    authorize(ctx, ctx.project_id)
    return [table.c.project_id == ctx.project_id]


def fetch(
    conn: Connection, ctx: Context, table: Table, kind: str, object_id: str, write: bool = False
) -> Row:
    """The object, for reading it or (`write`) changing it or what is under it: 404 when there
    is none, 403 when the caller may not (another project's object included)."""
    row = conn.execute(select(table).where(table.c.id == object_id)).first()
    if row is None:
        raise NotFound(f"{kind} {object_id} not found.")
    authorize(ctx, row.project_id, write)
    return row


# The Neutron resources under a VIP or a member, each found by the rules of its own API.
NEUTRON_REFERENCES: dict[str, Callable[[Connection, Context, str], Row]] = {
    "Network": networks.fetch,
    "Subnet": subnets.fetch,
    "Port": ports.fetch,
}


def referenced(conn: Connection, ctx: Context, kind: str, object_id: str) -> Row:
    """A Neutron resource a request body names, as the caller sees it. One that is missing and
    one the caller cannot see (another project's) are the same 400, Octavia's InvalidSubresource."""
    try:
        return NEUTRON_REFERENCES[kind](conn, ctx, object_id)
    except errors.NotFound:
        raise Invalid(f"{kind} {object_id} not found.") from None


def lock_tree(conn: Connection, lb_id: str) -> Row:
    """The load balancer that a change goes through: 409 while an earlier one is in flight."""
    lb = conn.execute(select(LB).where(LB.c.id == lb_id)).one()
    if lb.provisioning_status.startswith("PENDING_"):
        raise Immutable(lb_id)
    return lb


def tree(lb_id: str) -> list[tuple[Table, ColumnElement[bool]]]:
    """Each table under a load balancer with the condition that selects its part (leaves first)."""
    pools = select(PO.c.id).where(PO.c.lb_loadbalancer_id == lb_id)
    listeners = select(LI.c.id).where(LI.c.lb_loadbalancer_id == lb_id)
    policies = select(L7P.c.id).where(L7P.c.lb_listener_id.in_(listeners))
    return [
        (ME, ME.c.lb_pool_id.in_(pools)),
        (HM, HM.c.lb_pool_id.in_(pools)),
        (L7R, L7R.c.lb_l7policy_id.in_(policies)),
        (L7P, L7P.c.lb_listener_id.in_(listeners)),
        (LI, LI.c.lb_loadbalancer_id == lb_id),
        (PO, PO.c.lb_loadbalancer_id == lb_id),
    ]


def publish(conn: Connection, lb: Row, status: str = PENDING_UPDATE) -> None:
    """Mark the tree changed: the load balancer goes `status` and agents get its new tree."""
    conn.execute(
        update(LB)
        .where(LB.c.id == lb.id)
        .values(
            provisioning_status=status,
            revision_number=lb.revision_number + 1,
            updated_at=common.now(),
        )
    )
    if status != PENDING_DELETE:
        plug_member_subnets(conn, lb)
    revision = common.record_change(conn, "loadbalancer", lb.id, "update")
    conn.execute(update(LB).where(LB.c.id == lb.id).values(feed_revision=revision))


def plug_member_subnets(conn: Connection, lb: Row) -> None:
    """As Octavia's amphora (CalculateDelta, HandleNetworkDelta): the ports plugging the load
    balancer into the VIP network (the amphorae's VRRP ports, else the VIP port) take an address
    on each subnet of that network that a member names (an IPv4 one beside an IPv6 VIP, say), and
    give it back with the last member naming it (the VIP's stays). A VIP port its user gave
    (vip_port_id) gives none back: the address may have been theirs before."""
    S, A = schema.subnets, schema.ip_allocations
    named: set[str] = set()
    released: set[str] = set()
    for subnet_id, deleting in conn.execute(
        select(ME.c.subnet_id, ME.c.provisioning_status == PENDING_DELETE)
        .join(PO, PO.c.id == ME.c.lb_pool_id)
        .join(S, S.c.id == ME.c.subnet_id)
        .where(PO.c.lb_loadbalancer_id == lb.id, S.c.network_id == lb.vip_network_id)
    ):
        (released if deleting else named).add(subnet_id)
    released -= named | {lb.vip_subnet_id}
    if not named and not released:  # most load balancers: nothing to read further
        return
    plugged = [a.vrrp_port_id for a in current_amphorae(conn, lb.id) if a.vrrp_port_id]
    for port in conn.execute(select(P).where(P.c.id.in_(plugged or [lb.vip_port_id]))).all():
        held = conn.execute(
            select(A.c.subnet_id, A.c.ip_address).where(A.c.port_id == port.id)
        ).all()
        held_subnets = {s for s, _ in held}
        ours = bool(plugged) or port.name == vip_port_name(lb.id)
        giving_back = released & held_subnets if ours else set()
        missing = named - held_subnets
        if not missing and not giving_back:
            continue
        # An automatic (SLAAC) address is kept by naming its subnet alone, as Neutron asks.
        subnets = ports.subnets_of(conn, lb.vip_network_id)
        automatic = {s.id for s in subnets if ports.auto_address(s)}
        fixed_ips = [
            {"subnet_id": s} if s in automatic else {"subnet_id": s, "ip_address": ip}
            for s, ip in held
            if s not in giving_back
        ]
        fixed_ips += [{"subnet_id": s} for s in sorted(missing)]
        try:
            ports.Ports.replace_ips(conn, port, fixed_ips, port.device_owner)
        except errors.NeutronError as refused:
            raise Conflict(refused.msg) if refused.status == 409 else Invalid(refused.msg) from None
        common.bump(conn, P, "port", port)


def vip_port_name(lb_id: str) -> str:
    """The name of a VIP port made for the load balancer, as Octavia names it."""
    return f"octavia-lb-{lb_id}"


def topology(conn: Connection, lb: Row) -> str:
    return str(
        lbaas_flavors.flavors.data(conn, lb.flavor_id).get("loadbalancer_topology", "SINGLE")
    )


def build_amphora(conn: Connection, lb: Row, role: str) -> None:
    """A new instance (amphora) of `role` for the load balancer; the one of that role it replaces,
    if any, is PENDING_DELETE until the agent runs the new one (`settle`)."""
    now = common.now()
    conn.execute(
        update(AM)
        .where(AM.c.lb_loadbalancer_id == lb.id, AM.c.role == role)
        .values(status=PENDING_DELETE, failover_next=False, updated_at=now)
    )
    amphora_id = common.new_id()
    conn.execute(
        insert(AM).values(
            id=amphora_id,
            lb_loadbalancer_id=lb.id,
            role=role,
            vrrp_port_id=None if role == STANDALONE else vrrp_port(conn, lb, amphora_id),
            status=BOOTING,
            created_at=now,
            updated_at=now,
        )
    )


def vrrp_port(conn: Connection, lb: Row, amphora_id: str) -> str:
    """An ACTIVE_STANDBY amphora's own port on the VIP subnet, named as Octavia names it and, as
    Octavia's, in the service project: the load balancer's project neither lists it nor counts it
    in its quota. Its address is the amphora's in VRRP; the VIP, which keepalived moves to the
    MASTER, is one of its allowed address pairs (the VIP port itself is not plugged). On a host
    other than the other amphora's where one may take it (Octavia's anti-affinity)."""
    zone = lbaas_flavors.availability_zones.data(conn, lb.availability_zone).get("compute_zone")
    peers = conn.execute(
        select(P.c.binding_host_id)
        .join(AM, AM.c.vrrp_port_id == P.c.id)
        .where(AM.c.lb_loadbalancer_id == lb.id, AM.c.status != PENDING_DELETE)
    ).scalars()
    network = conn.execute(select(schema.networks).where(schema.networks.c.id == lb.vip_network_id))
    try:
        return str(
            ports.insert_port(
                conn,
                ensure_project(conn, SERVICE_PROJECT),
                network.one(),
                {
                    "name": f"octavia-lb-vrrp-{amphora_id}",
                    "device_owner": VIP_OWNER,
                    "device_id": amphora_id,
                    "binding:host_id": choose_host(conn, zone, avoid=set(peers)),
                    "port_security_enabled": True,
                    "security_groups": [security_group(conn, lb)],
                    "fixed_ips": [{"subnet_id": lb.vip_subnet_id}],
                    "allowed_address_pairs": [{"ip_address": lb.vip_address}],
                },
            )["id"]
        )
    except errors.NeutronError as refused:
        raise Conflict(refused.msg) if refused.status == 409 else Invalid(refused.msg) from None


def security_group(conn: Connection, lb: Row) -> str:
    """The group of the load balancer's VRRP ports, `lb-<id>` as Octavia names it, in the service
    project with them, made on first use: it lets in what reaches them (haproxy filters by
    listener and `allowed_cidrs`), VRRP between them included."""
    found = find_security_group(conn, lb)
    if found:
        return found
    group_id, now = common.new_id(), common.now()
    ingress = [{"direction": "ingress", "ethertype": ethertype} for ethertype in ("IPv4", "IPv6")]
    security_groups.insert_group(
        conn,
        {
            "id": group_id,
            "project_id": ensure_project(conn, SERVICE_PROJECT),
            "name": f"lb-{lb.id}",
            "description": f"Load balancer {lb.id}'s amphorae",
            "created_at": now,
            "updated_at": now,
            "revision_number": 1,
        },
        security_groups.starting_rules(conn, group_id, is_default=False) + ingress,
        is_default=False,
    )
    return group_id


def find_security_group(conn: Connection, lb: Row) -> str | None:
    SG = schema.security_groups
    service = ensure_project(conn, SERVICE_PROJECT)
    found = conn.execute(
        select(SG.c.id).where(SG.c.project_id == service, SG.c.name == f"lb-{lb.id}")
    ).scalar()
    return None if found is None else str(found)


def fail_over(conn: Connection, lb: Row, role: str | None = None) -> None:
    """Replace the load balancer's amphora of `role`, or all of them one at a time (the others
    once the first one's replacement runs: `settle_amphorae`): its agent builds each anew."""
    roles = ROLES[topology(conn, lb)] if role is None else (role,)
    build_amphora(conn, lb, roles[0])
    conn.execute(
        update(AM)
        .where(AM.c.lb_loadbalancer_id == lb.id, AM.c.role.in_(roles[1:]))
        .values(failover_next=True)
    )
    publish(conn, lb)


def fail_over_host(conn: Connection, host: str, now: datetime) -> None:
    """Fail over what ran on `host`, whose agent is dead, as Octavia's health manager does for
    amphorae whose heartbeats stopped: each load balancer whose VIP port or current amphora's
    port is bound there gets its VIP port bound to a live host and new amphorae for those that
    ran there (PENDING_UPDATE until their hosts run them). A load balancer in a PENDING_* state
    waits for it to end (housekeeping ends it); one with no live host to go to stays."""
    vip = P.alias("vip")
    on_host = (vip.c.binding_host_id == host) | AM.c.vrrp_port_id.in_(
        select(P.c.id).where(P.c.binding_host_id == host)
    )
    lbs = conn.execute(
        select(LB)
        .join(vip, vip.c.id == LB.c.vip_port_id)
        .join(AM, AM.c.lb_loadbalancer_id == LB.c.id)
        .where(on_host, AM.c.status != PENDING_DELETE, LB.c.provisioning_status.in_(FAILOVERABLE))
        .distinct()
        .order_by(LB.c.id)
    ).all()
    for lb in lbs:
        zone = lbaas_flavors.availability_zones.data(conn, lb.availability_zone).get("compute_zone")
        target = choose_host(conn, zone, now=now)
        if not target:
            continue
        port = conn.execute(select(P).where(P.c.id == lb.vip_port_id)).one()
        dead = [
            amphora.role
            for amphora in current_amphorae(conn, lb.id)
            if (amphora.host if amphora.vrrp_port_id else port.binding_host_id) == host
        ]
        if port.binding_host_id == host:
            common.bump(conn, P, "port", port, {"binding_host_id": target})
        if dead:
            fail_over(conn, lb, dead[0] if len(dead) == 1 else None)


def current_amphorae(conn: Connection, lb_id: str) -> list[Row]:
    """The instances that run (or are to run) the load balancer: those not being replaced, with
    the host of their own port (None: they run on the VIP port's)."""
    return list(
        conn.execute(
            select(AM.c.id, AM.c.role, AM.c.vrrp_port_id, P.c.binding_host_id.label("host"))
            .outerjoin(P, P.c.id == AM.c.vrrp_port_id)
            .where(AM.c.lb_loadbalancer_id == lb_id, AM.c.status != PENDING_DELETE)
            .order_by(AM.c.role)
        )
    )


def configure_quotas(defaults: dict[str, int]) -> None:
    """Use `defaults` instead of Octavia's for the resources it names."""
    global QUOTA_DEFAULTS
    QUOTA_DEFAULTS = {**OCTAVIA_QUOTA_DEFAULTS, **defaults}


def quota_limits(conn: Connection, project_id: str) -> dict[str, int]:
    Q = schema.quotas
    found = dict(
        conn.execute(
            select(Q.c.resource, Q.c.limit).where(
                Q.c.project_id == project_id, Q.c.resource.in_(list(QUOTA_DEFAULTS))
            )
        ).all()
    )
    return {resource: found.get(resource, default) for resource, default in QUOTA_DEFAULTS.items()}


def quota_list(db: Database, ctx: Context) -> list[dict[str, Any]]:
    """Projects with limits of their own (admin), else the caller's own."""
    Q = schema.quotas
    with db.read() as conn:
        projects = (
            conn.execute(
                select(Q.c.project_id)
                .distinct()
                .where(Q.c.resource.in_(list(QUOTA_DEFAULTS)))
                .order_by(Q.c.project_id)
            )
            .scalars()
            .all()
        )
        if not lb_policy.reads_every_quota(ctx):
            if not lb_policy.may_read_quota(ctx, ctx.project_id):
                raise Forbidden(FORBIDDEN)
            projects = [ctx.project_id]
        return [{"project_id": p, **quota_limits(conn, p)} for p in projects]


def quota_defaults(ctx: Context) -> dict[str, int]:
    if not lb_policy.may_read_quota(ctx, ctx.project_id):
        raise Forbidden(FORBIDDEN)
    return dict(QUOTA_DEFAULTS)


def quota_get(db: Database, ctx: Context, project_id: str) -> dict[str, int]:
    if not lb_policy.may_read_quota(ctx, project_id):
        raise Forbidden(FORBIDDEN)
    with db.read() as conn:
        return quota_limits(conn, project_id)


def quota_set(
    db: Database, ctx: Context, project_id: str, values: dict[str, int | None] | None
) -> dict[str, int]:
    """Set limits (None: back to the default); `values=None` resets them all."""
    if not lb_policy.may_write_quota(ctx):
        raise Forbidden(FORBIDDEN)
    Q = schema.quotas
    with db.write() as conn:
        for resource, limit in (
            values if values is not None else dict.fromkeys(QUOTA_DEFAULTS)
        ).items():
            conn.execute(delete(Q).where(Q.c.project_id == project_id, Q.c.resource == resource))
            if limit is not None:  # kept even when it is the default, as Octavia keeps it
                conn.execute(
                    insert(Q).values(project_id=project_id, resource=resource, limit=limit)
                )
        return quota_limits(conn, project_id)


def check_quota(conn: Connection, project_id: str, resource: str, adding: int = 1) -> None:
    table = QUOTA_TABLES[resource]
    limit = quota_limits(conn, project_id)[resource]
    if limit < 0:
        return
    used = conn.execute(
        select(func.count()).select_from(table).where(table.c.project_id == project_id)
    ).scalar_one()
    if used + adding > limit:
        raise Forbidden(f"Quota has been met for resources: {resource.replace('_', ' ').title()}")


def new_row(ctx: Context, values: dict[str, Any], operating: str = OFFLINE) -> dict[str, Any]:
    row = common.standard_values(ctx, values)
    row.update(
        provisioning_status=PENDING_CREATE,
        operating_status=operating,
        admin_state_up=values.pop("admin_state_up", True),
    )
    return row


# What base_body gives as stored, in its order (a kind's listing's `plain` begins so).
BASE_PLAIN = (
    "id",
    "name",
    "description",
    "project_id",
    "tenant_id",
    "admin_state_up",
    "provisioning_status",
    "operating_status",
)


def octavia_listing(table: Table, plain: tuple[str, ...]) -> Listing:
    return Listing(table, {"tenant_id": table.c.project_id}, plain=plain)


def seen(ctx: Context, table: Table) -> ColumnElement[bool] | None:
    """`visible` as one clause (None: everything)."""
    where = visible(ctx, table)
    return and_(*where) if where else None


LISTING = octavia_listing(
    LB,
    (
        *BASE_PLAIN,
        "vip_address",
        "vip_port_id",
        "vip_subnet_id",
        "vip_network_id",
        "provider",
        "flavor_id",
        "availability_zone",
    ),
)


def base_body(row: Row, tags: dict[str, list[str]]) -> dict[str, Any]:
    body = common.render_standard(row, tags)
    del body["revision_number"]
    body.update(
        admin_state_up=row.admin_state_up,
        provisioning_status=row.provisioning_status,
        operating_status=row.operating_status,
    )
    return body


# -- load balancers ------------------------------------------------------------------------
def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    tags = common.load_tags(conn, ids)
    listeners: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
    pools: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
    for chunk in common.chunked(ids):
        for lb_id, child in conn.execute(
            select(LI.c.lb_loadbalancer_id, LI.c.id)
            .where(LI.c.lb_loadbalancer_id.in_(chunk))
            .order_by(LI.c.created_at)
        ):
            listeners[lb_id].append({"id": child})
        for lb_id, child in conn.execute(
            select(PO.c.lb_loadbalancer_id, PO.c.id)
            .where(PO.c.lb_loadbalancer_id.in_(chunk))
            .order_by(PO.c.created_at)
        ):
            pools[lb_id].append({"id": child})
    out = []
    for r in rows:
        body = base_body(r, tags)
        body.update(
            vip_address=r.vip_address,
            vip_port_id=r.vip_port_id,
            vip_subnet_id=r.vip_subnet_id,
            vip_network_id=r.vip_network_id,
            vip_qos_policy_id=None,
            vip_vnic_type="normal",
            vip_sg_ids=None,
            additional_vips=[],
            provider=r.provider,
            flavor_id=r.flavor_id,
            availability_zone=r.availability_zone,
            listeners=listeners[r.id],
            pools=pools[r.id],
        )
        out.append(body)
    return out


def choose_host(
    conn: Connection,
    zone: str | None,
    avoid: Collection[str] = (),
    now: datetime | None = None,
) -> str:
    """The agent alive at `now` hosting the fewest load balancers, in availability zone `zone`
    if given, other than those of `avoid` if it can be; "" (the first such agent to report takes
    it) if none."""
    query = select(AG.c.host).where(AG.c.heartbeat_at > (now or common.now()) - agents.DOWN_TIME)
    if zone is not None:
        query = query.where(AG.c.host.in_(hosts_in_zone(zone)))
    alive = conn.execute(query).scalars().all()
    alive = [host for host in alive if host not in avoid] or alive
    if not alive:
        return ""
    load: dict[str, int] = dict(
        conn.execute(
            select(P.c.binding_host_id, func.count())
            .where(P.c.device_owner == VIP_OWNER)
            .group_by(P.c.binding_host_id)
        ).all()
    )
    return min(sorted(alive), key=lambda host: load.get(host, 0))


def hosts_in_zone(zone: str) -> Select[str]:
    """The hosts whose agents are in availability zone `zone` (that of their DHCP role)."""
    NA = schema.network_agents
    return select(NA.c.host).where(NA.c.agent_type == "DHCP agent", NA.c.availability_zone == zone)


def in_zone(conn: Connection, host: str, availability_zone: str | None) -> bool:
    """Whether `host` may run a load balancer of (Octavia) availability zone
    `availability_zone`: one on its profile's `compute_zone`, if it names one."""
    data = lbaas_flavors.availability_zones.data(conn, availability_zone)
    if "compute_zone" not in data:
        return True
    return host in conn.execute(hosts_in_zone(data["compute_zone"])).scalars().all()


def vip_port(
    conn: Connection,
    ctx: Context,
    lb_id: str,
    project_id: str,
    values: dict[str, Any],
    zone: str | None,
) -> Row:
    """The VIP's Neutron port: the one given, or a new one on the given subnet or network; bound
    to a host in availability zone `zone` if given."""
    if values.get("vip_port_id"):
        port = referenced(conn, ctx, "Port", values["vip_port_id"])
        if port.device_owner:
            raise Conflict(f"Port {port.id} is already in use by {port.device_owner}.")
        host = port.binding_host_id or choose_host(conn, zone)
        common.bump(
            conn,
            P,
            "port",
            port,
            {"device_owner": VIP_OWNER, "device_id": lb_id, "binding_host_id": host},
        )
        return port
    if values.get("vip_subnet_id"):
        subnet = referenced(conn, ctx, "Subnet", values["vip_subnet_id"])
        if values.get("vip_network_id") not in (None, subnet.network_id):
            raise Invalid(f"Subnet {subnet.id} is not on network {values['vip_network_id']}.")
        network = networks.fetch(conn, ctx, subnet.network_id)
        fixed: dict[str, str] = {"subnet_id": subnet.id}
    else:
        network = referenced(conn, ctx, "Network", values["vip_network_id"])
        fixed = {}
    if values.get("vip_address"):
        fixed["ip_address"] = values["vip_address"]
    try:
        port_id = ports.insert_port(
            conn,
            project_id,
            network,
            {
                "name": vip_port_name(lb_id),
                "device_owner": VIP_OWNER,
                "device_id": lb_id,
                "binding:host_id": choose_host(conn, zone),
                "port_security_enabled": False,
                "fixed_ips": [fixed] if fixed else None,
            },
        )["id"]
    except errors.NeutronError as refused:
        raise Conflict(refused.msg) if refused.status == 409 else Invalid(refused.msg) from None
    return conn.execute(select(P).where(P.c.id == port_id)).one()


def vip_address(conn: Connection, port_id: str, subnet_id: str | None) -> tuple[str, str]:
    """(subnet, address) of the VIP: on the requested subnet, else the port's first IPv4 one."""
    A = schema.ip_allocations
    found = conn.execute(
        select(A.c.subnet_id, A.c.ip_address).where(A.c.port_id == port_id).order_by(A.c.position)
    ).all()
    for sid, ip in found:
        if subnet_id in (None, sid) and (subnet_id or ":" not in ip):
            return sid, ip
    if not found:
        raise Invalid(f"Port {port_id} has no fixed IP for a VIP.")
    return found[0][0], found[0][1]


class LoadBalancers:
    def stream(self, db: Database, ctx: Context, fields: list[str]) -> Chunks:
        """Every load balancer the caller sees, the oldest first (then by id, as Octavia's
        default sort keys), in chunks read as they are consumed; `fields`, when only stored
        attributes, reads their columns alone."""
        source = Source(LISTING, seen(ctx, LB), render)
        order = [LB.c.created_at, LB.c.id]
        return stream_all(db, source, order, LISTING.plain_fields(fields))

    def get(self, db: Database, ctx: Context, lb_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, LB, "Load Balancer", lb_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        with db.write() as conn:
            lb = self.add(conn, ctx, values)
            publish(conn, lb, PENDING_CREATE)
            return render(conn, [fetch(conn, ctx, LB, "Load Balancer", lb.id)])[0]

    def add(self, conn: Connection, ctx: Context, values: dict[str, Any]) -> Row:
        """Insert the load balancer and its VIP port; the caller publishes it."""
        if not any(values.get(k) for k in ("vip_subnet_id", "vip_network_id", "vip_port_id")):
            raise Invalid(
                "Validation failure: VIP must contain one of: "
                "vip_port_id, vip_network_id, vip_subnet_id."
            )
        provider, zone = lbaas_flavors.apply_to_loadbalancer(
            conn, values, values.pop("provider", None)
        )
        tags = values.pop("tags", [])
        # Octavia checks the caller against the project named: 403, also for another project's.
        project = values.pop("project_id", None) or ctx.project_id
        authorize(ctx, project, write=True)
        row = {**new_row(ctx, values), "project_id": project}
        check_quota(conn, row["project_id"], "load_balancer")
        port = vip_port(conn, ctx, row["id"], row["project_id"], values, zone.get("compute_zone"))
        lbaas_flavors.check_vip_network(zone, port.network_id)
        subnet_id, address = vip_address(conn, port.id, values.get("vip_subnet_id"))
        row.update(
            vip_port_id=port.id,
            vip_network_id=port.network_id,
            vip_subnet_id=subnet_id,
            vip_address=address,
            provider=provider,
            flavor_id=values.get("flavor_id"),
            availability_zone=values.get("availability_zone"),
        )
        common.insert_resource(conn, LB, "loadbalancer", row)
        lb = conn.execute(select(LB).where(LB.c.id == row["id"])).one()
        for role in ROLES[topology(conn, lb)]:
            build_amphora(conn, lb, role)
        if tags:
            common.set_tags(conn, LB, "loadbalancer", lb, tags, None)
        return conn.execute(select(LB).where(LB.c.id == row["id"])).one()

    def update(
        self, db: Database, ctx: Context, lb_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        with db.write() as conn:
            lb = lock_tree(conn, fetch(conn, ctx, LB, "Load Balancer", lb_id, write=True).id)
            update_object(conn, LB, "loadbalancer", lb, values)
            publish(conn, conn.execute(select(LB).where(LB.c.id == lb_id)).one())
            return render(conn, [fetch(conn, ctx, LB, "Load Balancer", lb_id)])[0]

    def delete(self, db: Database, ctx: Context, lb_id: str, cascade: bool) -> None:
        with db.write() as conn:
            lb = lock_tree(conn, fetch(conn, ctx, LB, "Load Balancer", lb_id, write=True).id)
            has_children = any(
                conn.execute(select(t.c.id).where(t.c.lb_loadbalancer_id == lb_id)).first()
                for t in (LI, PO)
            )
            if has_children and not cascade:
                raise Invalid(f"Cannot delete Load Balancer {lb_id} - it has children")
            for table, where in tree(lb_id):
                conn.execute(update(table).where(where).values(provisioning_status=PENDING_DELETE))
            conn.execute(
                update(AM)
                .where(AM.c.lb_loadbalancer_id == lb_id)
                .values(status=PENDING_DELETE, updated_at=common.now())
            )
            publish(conn, lb, PENDING_DELETE)

    def failover(self, db: Database, ctx: Context, lb_id: str) -> None:
        """PUT /loadbalancers/{id}/failover (administrators): a new instance replaces the running
        one; from ACTIVE or ERROR only, as Octavia."""
        with db.write() as conn:
            lb = fetch(conn, ctx, LB, "Load Balancer", lb_id)
            if not lb_policy.is_admin(ctx):
                raise Forbidden(FORBIDDEN)
            if lb.provisioning_status not in FAILOVERABLE:
                raise Conflict(
                    f"Invalid state {lb.provisioning_status} of loadbalancer resource {lb_id}"
                )
            fail_over(conn, lb)

    def status_tree(self, db: Database, ctx: Context, lb_id: str) -> dict[str, Any]:
        """GET /loadbalancers/{id}/status: the statuses of everything under it."""
        with db.read() as conn:
            return {
                "statuses": {
                    "loadbalancer": statuses(conn, fetch(conn, ctx, LB, "Load Balancer", lb_id))
                }
            }

    def statistics(self, db: Database, ctx: Context, lb_id: str) -> dict[str, Any]:
        """GET /loadbalancers/{id}/stats: its listeners' statistics added up."""
        with db.read() as conn:
            lb = fetch(conn, ctx, LB, "Load Balancer", lb_id)
            return {
                "stats": statistics(conn, select(LI.c.id).where(LI.c.lb_loadbalancer_id == lb.id))
            }


def statistics(conn: Connection, listener_ids: Any) -> dict[str, int]:
    """The sums of the statistics of `listener_ids` (a list or a select); zeros before any
    report."""
    sums = conn.execute(
        select(*(func.coalesce(func.sum(ST.c[name]), 0) for name in STATISTICS)).where(
            ST.c.listener_id.in_(listener_ids)
        )
    ).one()
    return {name: int(value) for name, value in zip(STATISTICS, sums, strict=True)}


def statuses(conn: Connection, lb: Row) -> dict[str, Any]:
    pools = {p.id: p for p in conn.execute(select(PO).where(PO.c.lb_loadbalancer_id == lb.id))}
    members: dict[str, list[Row]] = {pid: [] for pid in pools}
    for m in conn.execute(
        select(ME).where(ME.c.lb_pool_id.in_(list(pools))).order_by(ME.c.created_at)
    ):
        members[m.lb_pool_id].append(m)
    monitors = {
        h.lb_pool_id: h for h in conn.execute(select(HM).where(HM.c.lb_pool_id.in_(list(pools))))
    }

    def status(row: Row, **extra: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "provisioning_status": row.provisioning_status,
            "operating_status": row.operating_status,
            **extra,
        }

    def pool_status(pool: Row) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "members": [
                status(m, address=m.address, protocol_port=m.protocol_port)
                for m in members[pool.id]
            ]
        }
        if pool.id in monitors:
            extra["health_monitor"] = {**status(monitors[pool.id]), "type": monitors[pool.id].type}
        return status(pool, **extra)

    listeners = [
        status(
            li,
            pools=[pool_status(pools[li.default_pool_id])] if li.default_pool_id in pools else [],
        )
        for li in conn.execute(
            select(LI).where(LI.c.lb_loadbalancer_id == lb.id).order_by(LI.c.created_at)
        )
    ]
    return status(lb, listeners=listeners)


def update_object(
    conn: Connection, table: Table, kind: str, row: Row, values: dict[str, Any]
) -> None:
    tags = values.pop("tags", None)
    if tags is not None:
        common.set_tags(conn, table, kind, row, tags, None)
        row = conn.execute(select(table).where(table.c.id == row.id)).one()
    if values:
        conn.execute(
            update(table)
            .where(table.c.id == row.id)
            .values(**values, revision_number=row.revision_number + 1, updated_at=common.now())
        )


# -- realization: agents' reports, housekeeping ---------------------------------------------------
def record_report(
    conn: Connection, host: str, hosts: realization.Hosts, reported: dict[str, dict[str, Any]]
) -> None:
    """An agent's word on the load balancers it runs (`reported`: haproxy's health and counters
    of each): what is not bound yet goes to the first host of its zone to run it, the VIP's host
    tells the health, and each one this host has a part in may be realized now (`realize`)."""
    vrrp_here = (
        select(AM.c.lb_loadbalancer_id)
        .join(P, P.c.id == AM.c.vrrp_port_id)
        .where(P.c.binding_host_id == host)
    )
    lbs = conn.execute(
        select(LB, P.c.binding_host_id)
        .join(P, P.c.id == LB.c.vip_port_id)
        .where(
            (P.c.binding_host_id == host)
            | (P.c.binding_host_id == "")
            | LB.c.id.in_(vrrp_here)
            | LB.c.id.in_(list(reported))
        )
    ).all()
    for lb in lbs:
        entry = reported.get(lb.id)
        vip_host = lb.binding_host_id
        if entry is not None and not vip_host:
            if not in_zone(conn, host, lb.availability_zone):
                continue  # a host of its zone takes it
            # What is not bound yet, its amphorae's ports with it, goes to the first host to run it.
            for port in conn.execute(
                select(P).where(
                    (P.c.id == lb.vip_port_id)
                    | P.c.id.in_(select(AM.c.vrrp_port_id).where(AM.c.lb_loadbalancer_id == lb.id)),
                    P.c.binding_host_id == "",
                )
            ).all():
                common.bump(conn, P, "port", port, {"binding_host_id": host})
            vip_host = host
        if realize(conn, lb, vip_host, hosts) and entry is not None and vip_host == host:
            # Health is read against the status this report may just have settled: haproxy runs
            # the new tree, so an enabled listener it leaves out (all of a disabled load
            # balancer's) is ERROR at once, as Octavia's next heartbeat makes it.
            lb = conn.execute(select(LB).where(LB.c.id == lb.id)).one()
            record_health(conn, lb, entry.get("members", {}), entry.get("listeners", {}))
            record_statistics(conn, lb, entry.get("listeners", {}))


def realize(conn: Connection, lb: Row, vip_host: str, hosts: realization.Hosts) -> bool:
    """Settle the load balancer once the hosts of all its amphorae have applied its tree (a
    failure of one fails what was pending; a later success also heals a failed load balancer);
    one being deleted goes once they have all dropped it. False: it is gone."""
    amphorae = {a.host if a.vrrp_port_id else vip_host for a in current_amphorae(conn, lb.id)}
    state = hosts.state(amphorae or {vip_host}, "loadbalancers", lb.id, lb.feed_revision)
    status = lb.provisioning_status
    if status == PENDING_DELETE:
        if state is realization.State.REALIZED:
            remove_tree(conn, lb)
            return False
    elif state is realization.State.FAILED and status in (PENDING_CREATE, PENDING_UPDATE):
        settle(conn, lb, ERROR)
    elif state is realization.State.REALIZED and status in (PENDING_CREATE, PENDING_UPDATE, ERROR):
        settle(conn, lb, ACTIVE)
    return True


def settle(conn: Connection, lb: Row, outcome: str) -> None:
    """The agent runs the current tree (or failed to): pending objects take `outcome`, deleted ones
    go."""
    for table, where in tree(lb.id):
        gone = (
            conn.execute(
                select(table.c.id).where(where, table.c.provisioning_status == PENDING_DELETE)
            )
            .scalars()
            .all()
        )
        if table is PO and gone:
            conn.execute(
                update(LI).where(LI.c.default_pool_id.in_(gone)).values(default_pool_id=None)
            )
        for object_id in gone:
            conn.execute(delete(schema.tags).where(schema.tags.c.resource_id == object_id))
        conn.execute(delete(table).where(table.c.id.in_(gone)))
        conn.execute(
            update(table)
            .where(where, table.c.provisioning_status.in_((PENDING_CREATE, PENDING_UPDATE)))
            .values(provisioning_status=outcome)
        )
        if table in (L7P, L7R, HM):  # no health of their own: on while enabled
            conn.execute(
                update(table)
                .where(where)
                .values(operating_status=case((table.c.admin_state_up, ONLINE), else_=OFFLINE))
            )
    conn.execute(update(LB).where(LB.c.id == lb.id).values(provisioning_status=outcome))
    settle_amphorae(conn, lb.id, outcome)


def settle_amphorae(conn: Connection, lb_id: str, outcome: str) -> None:
    """The instance the agent was to build runs (ALLOCATED) and the ones it replaced are gone,
    and the next one of a load balancer's failover is replaced; or it failed (ERROR)."""
    mine, now = AM.c.lb_loadbalancer_id == lb_id, common.now()
    if outcome == ACTIVE:
        remove_amphorae(conn, mine & (AM.c.status == PENDING_DELETE))
        conn.execute(
            update(AM)
            .where(mine, AM.c.status.in_((BOOTING, ERROR)))
            .values(status=ALLOCATED, updated_at=now)
        )
        following = conn.execute(select(AM.c.role).where(mine, AM.c.failover_next)).scalar()
        if following is not None:
            fail_over(conn, conn.execute(select(LB).where(LB.c.id == lb_id)).one(), following)
    else:  # and the failover stops there
        conn.execute(
            update(AM).where(mine, AM.c.status == BOOTING).values(status=ERROR, updated_at=now)
        )
        conn.execute(update(AM).where(mine).values(failover_next=False))


def remove_amphorae(conn: Connection, which: ColumnElement[bool]) -> None:
    """Delete the amphorae `which` selects, with their VRRP ports."""
    for amphora in conn.execute(select(AM).where(which)).all():
        conn.execute(delete(AM).where(AM.c.id == amphora.id))
        if amphora.vrrp_port_id is not None:
            ports.remove_port(conn, amphora.vrrp_port_id)


def remove_tree(conn: Connection, lb: Row) -> None:
    """The last step of a delete: rows (children cascade), the VIP port, the amphorae's ports and
    their security group."""
    conn.execute(delete(schema.tags).where(schema.tags.c.resource_id == lb.id))
    remove_amphorae(conn, AM.c.lb_loadbalancer_id == lb.id)
    SG, RULE = schema.security_groups, schema.security_group_rules
    group = find_security_group(conn, lb)
    if group is not None:
        for rule in conn.execute(select(RULE.c.id).where(RULE.c.security_group_id == group)):
            common.delete_resource(conn, RULE, "security_group_rule", rule.id)
        common.delete_resource(conn, SG, "security_group", group)
    conn.execute(delete(LB).where(LB.c.id == lb.id))
    if conn.execute(select(P.c.id).where(P.c.id == lb.vip_port_id, P.c.device_id == lb.id)).first():
        ports.remove_port(conn, lb.vip_port_id)
    common.record_change(conn, "loadbalancer", lb.id, "delete")


def record_health(
    conn: Connection, lb: Row, members: dict[str, str], frontends: dict[str, dict[str, Any]]
) -> None:
    """haproxy's server and frontend states -> operating statuses, as Octavia's health manager
    derives them.

    A pool that no enabled listener uses (as default pool or L7 redirect) is not in haproxy's
    configuration on an amphora: it is OFFLINE and its members keep their statuses. A pool in
    use is ONLINE, ERROR when it has members and none can take traffic (the load balancer goes
    ERROR), DEGRADED when some member is down (the load balancer goes DEGRADED). An enabled
    listener is its frontend's state: ONLINE while open, DEGRADED when full (at its connection
    limit; the load balancer goes DEGRADED), OFFLINE when stopped, ERROR when haproxy of an ACTIVE
    load balancer does not run it (it runs none of a disabled one's); its pool's health is not
    its own (nor is a health monitor's, see `settle`). The kernel's listeners (UDP, SCTP) are
    ONLINE while enabled.
    """
    if lb.provisioning_status == PENDING_DELETE:
        return
    lb_status = ONLINE if lb.admin_state_up else OFFLINE
    in_use = pools_in_use(conn, lb.id)
    for pool in conn.execute(select(PO).where(PO.c.lb_loadbalancer_id == lb.id)):
        if pool.id not in in_use or not pool.admin_state_up:
            set_operating(conn, PO, pool, OFFLINE)
            continue
        down, serving, rows = False, False, 0
        for member in conn.execute(select(ME).where(ME.c.lb_pool_id == pool.id)):
            rows += 1
            state = member_status(member, members.get(member.id))
            down = down or state == ERROR
            serving = serving or (state in (ONLINE, NO_MONITOR) and member.weight > 0)
            set_operating(conn, ME, member, state)
        status = ERROR if rows and not serving else DEGRADED if down else ONLINE
        if status == ERROR:
            lb_status = ERROR
        elif status == DEGRADED and lb_status == ONLINE:
            lb_status = DEGRADED
        set_operating(conn, PO, pool, status)
    for listener in conn.execute(select(LI).where(LI.c.lb_loadbalancer_id == lb.id)):
        frontend = frontends.get(listener.id, {}).get("status")
        if not listener.admin_state_up:
            status = OFFLINE
        elif listener.protocol in LVS_PROTOCOLS:
            status = ONLINE
        elif frontend is None:
            status = ERROR if lb.provisioning_status == ACTIVE else OFFLINE
        else:
            status = FRONTEND_STATES.get(frontend, listener.operating_status)
        if status == DEGRADED and lb_status == ONLINE:
            lb_status = DEGRADED
        set_operating(conn, LI, listener, status)
    set_operating(conn, LB, lb, lb_status)


def member_status(member: Row, reported: str | None) -> str:
    """A member's operating status from haproxy's word on its server (None: not in its
    configuration): one not reported is OFFLINE unless it was never to be checked; a word
    that is not a health (a server not checked yet) keeps the last status."""
    if not member.admin_state_up:
        return OFFLINE
    if reported is None:
        return NO_MONITOR if member.operating_status == NO_MONITOR else OFFLINE
    return HEALTH.get(reported, member.operating_status)


def pools_in_use(conn: Connection, lb_id: str) -> set[str]:
    """The pools that an enabled listener of an enabled load balancer sends traffic to: its
    default pool and those its enabled L7 policies redirect to."""
    live = (
        LI.c.lb_loadbalancer_id == lb_id,
        LI.c.admin_state_up,
        LI.c.provisioning_status != PENDING_DELETE,
        LB.c.admin_state_up,
    )
    defaults = conn.execute(
        select(LI.c.default_pool_id).join(LB, LB.c.id == LI.c.lb_loadbalancer_id).where(*live)
    ).scalars()
    redirects = conn.execute(
        select(L7P.c.redirect_pool_id)
        .join(LI, LI.c.id == L7P.c.lb_listener_id)
        .join(LB, LB.c.id == LI.c.lb_loadbalancer_id)
        .where(*live, L7P.c.admin_state_up, L7P.c.provisioning_status != PENDING_DELETE)
    ).scalars()
    return {pool_id for pool_id in [*defaults, *redirects] if pool_id}


def record_statistics(conn: Connection, lb: Row, reported: dict[str, dict[str, Any]]) -> None:
    """haproxy's frontend counters (nftables' for UDP and SCTP) -> listeners' statistics.

    A worker's counters start at zero and only grow, so totals move by the
    difference from what the same worker reported before: a report that
    arrives twice counts once. A new worker (haproxy reloaded, or restarted)
    counts from zero again; what a retiring worker counted after its last
    report is not seen.
    """
    if not reported:
        return
    mine = {
        row.id: row
        for row in conn.execute(
            select(LI.c.id, ST)
            .outerjoin(ST, ST.c.listener_id == LI.c.id)
            .where(LI.c.lb_loadbalancer_id == lb.id)
        )
    }
    for listener_id, counts in reported.items():
        if listener_id not in mine:
            continue
        worker, now = (
            str(counts.get("worker", "")),
            {name: int(counts.get(name, 0)) for name in COUNTED},
        )
        active = int(counts.get("active_connections", 0))
        row = mine[listener_id]
        if row.listener_id is None:
            conn.execute(
                insert(ST).values(
                    listener_id=listener_id,
                    active_connections=active,
                    worker=worker,
                    worker_counts=now,
                    **now,
                )
            )
            continue
        before = row.worker_counts if row.worker == worker else {}
        if any(now[name] < before.get(name, 0) for name in COUNTED):
            before = {}  # a new worker that reuses an old one's name
        totals = {name: getattr(row, name) + now[name] - before.get(name, 0) for name in COUNTED}
        if (row.worker, row.worker_counts, row.active_connections) != (worker, now, active):
            conn.execute(
                update(ST)
                .where(ST.c.listener_id == listener_id)
                .values(active_connections=active, worker=worker, worker_counts=now, **totals)
            )


def set_operating(conn: Connection, table: Table, row: Row, status: str) -> None:
    # Health is observation, not intent: it moves no revision and no feed entry.
    if row.operating_status != status:
        conn.execute(update(table).where(table.c.id == row.id).values(operating_status=status))


def housekeeping(db: Database) -> None:
    """Nothing stays PENDING_* longer than PENDING_TIMEOUT: deletions are finished, the rest
    fails (and heals if its agent reports it running later)."""
    stale = (
        LB.c.provisioning_status.like("PENDING_%"),
        LB.c.updated_at < common.now() - PENDING_TIMEOUT,
    )
    with db.read() as conn:
        if conn.execute(select(LB.c.id).where(*stale)).first() is None:
            return
    with db.write() as conn:
        for lb in conn.execute(select(LB).where(*stale)).all():
            if lb.provisioning_status == PENDING_DELETE:
                remove_tree(conn, lb)
            else:
                settle(conn, lb, ERROR)
