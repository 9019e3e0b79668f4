"""Networks and their segments (flat, vlan, vxlan on named physical networks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import Database, insert_unless_taken, schema
from neutrino.services import agents, common, qos, quotas, rbac, segment_ranges
from neutrino.services.common import Tags
from neutrino.services.listing import STANDARD_PLAIN, Listed, Listing, Source, standard_columns

N = schema.networks
VXLAN_OVERHEAD = 50

LISTING = Listing(
    N,
    {
        **standard_columns(N),
        "router:external": N.c.external,
        "is_default": N.c.is_default,
        "provider:network_type": N.c.network_type,
        "provider:physical_network": N.c.physical_network,
        "provider:segmentation_id": N.c.segmentation_id,
    },
    {
        "subnets": lambda ids: N.c.id.in_(
            select(schema.subnets.c.network_id).where(schema.subnets.c.id.in_(ids))
        ),
    },
    plain=(
        *STANDARD_PLAIN,
        "admin_state_up",
        "availability_zone_hints",
        "router:external",
        "mtu",
        "status",
        "port_security_enabled",
        "dns_domain",
    ),
)


def visible(ctx: Context) -> ColumnElement[bool] | None:
    """Networks the caller sees: its own, and those a policy grants it (shared or external)."""
    return rbac.visible_objects("network", ctx)


def is_shared_with(conn: Connection, network_id: str, project_id: str | None) -> bool:
    """The network's `shared` as `project_id` sees it: shared with it or with every project."""
    return bool(rbac.shared_ids(conn, "network", [network_id], project_id))


# Built once: every port create looks up its network (see db).
BY_ID = select(N).where(N.c.id == bindparam("network_id"))
BY_ID_IF_SEEN = BY_ID.where(rbac.seen_by("network", bindparam("project_id")))
# Built once: a network create writes its row and answers from what it wrote.
INSERT = insert(N).returning(*N.c)


def fetch(
    conn: Connection,
    ctx: Context,
    network_id: str,
    *,
    for_write: bool = False,
    action: str = "update_network",
) -> Row:
    """A network the caller may see (and, for writes, own); 404 if unseen, 403 naming `action` if
    not owned."""
    if ctx.is_admin:
        row = conn.execute(BY_ID, {"network_id": network_id}).first()
    else:
        row = conn.execute(
            BY_ID_IF_SEEN, {"network_id": network_id, "project_id": ctx.project_id}
        ).first()
    if row is None:
        raise errors.NetworkNotFound(net_id=network_id)
    if for_write and not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.PolicyNotAuthorized(action=action)
    return row


# A network's subnets, in order, with their pools' address scopes.
SUBNETS_OF = (
    select(
        schema.subnets.c.id,
        schema.subnets.c.network_id,
        schema.subnets.c.ip_version,
        schema.subnetpools.c.address_scope_id,
    )
    .outerjoin(schema.subnetpools, schema.subnetpools.c.id == schema.subnets.c.subnetpool_id)
    .where(schema.subnets.c.network_id.in_(common.IDS))
    .order_by(schema.subnets.c.created_at, schema.subnets.c.id)
)


def render(conn: Connection, ctx: Context, rows: list[Row]) -> list[dict[str, Any]]:
    """Network bodies; `shared` as the caller sees it, provider attributes only for an admin,
    as Neutron."""
    ids = [r.id for r in rows]
    shared = rbac.shared_ids(conn, "network", ids, ctx.project_id)
    subnets: dict[str, list[str]] = {i: [] for i in ids}
    # The address scope of a network's subnets of each IP version: their pools' (one per
    # version, see subnets.check_pool_affinity).
    scopes: dict[tuple[str, int], str] = {}
    for sid, nid, version, scope in common.rows_for(conn, SUBNETS_OF, ids):
        subnets[nid].append(sid)
        if scope is not None:
            scopes[(nid, version)] = scope
    tags = common.load_tags(conn, ids)
    zones = agents.zones_of(conn, agents.NDA, "network_id", ids)
    policies = qos.network_policies(conn, ids)
    return [
        body(
            ctx,
            r,
            shared=r.id in shared,
            subnets=subnets[r.id],
            scopes=(scopes.get((r.id, 4)), scopes.get((r.id, 6))),
            tags=tags,
            zones=zones[r.id],
            policy=policies.get(r.id),
        )
        for r in rows
    ]


def body(
    ctx: Context,
    r: Row,
    *,
    shared: bool,
    subnets: list[str],
    scopes: tuple[str | None, str | None],
    tags: dict[str, list[str]],
    zones: list[str],
    policy: str | None,
) -> dict[str, Any]:
    """A network's body from its row and what other tables hold of it: the projects it is
    shared with (`shared`, as the caller sees it), its subnets and their address scopes (IPv4,
    IPv6), tags, its DHCP agents' zones and its QoS policy."""
    item = common.render_standard(r, tags)
    item.update(
        {
            "admin_state_up": r.admin_state_up,
            "shared": shared,
            "availability_zone_hints": r.availability_zone_hints,
            "availability_zones": zones,
            "router:external": r.external,
            "mtu": r.mtu,
            "status": r.status,
            "subnets": subnets,
            "port_security_enabled": r.port_security_enabled,
            "ipv4_address_scope": scopes[0],
            "ipv6_address_scope": scopes[1],
            "qos_policy_id": policy,
            "dns_domain": r.dns_domain,
        }
    )
    if r.external:  # only an external network can be the default one, and says so
        item["is_default"] = r.is_default
    if ctx.is_admin:
        item.update(
            {
                "provider:network_type": r.network_type,
                "provider:physical_network": r.physical_network,
                "provider:segmentation_id": r.segmentation_id,
            }
        )
    return item


# The attributes that grant a network to every project, as an RBAC policy each.
GRANTS = {"shared": rbac.SHARED, "router:external": rbac.EXTERNAL}

# What goes with a network, from a family built on networks (its floating IPs, as in Neutron).
Cleanup = Callable[[Connection, str], None]


PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def provider_values(values: dict[str, Any]) -> dict[str, Any]:
    """The provider attributes of a new network, given as such or as its one segment.

    A network here has one segment: a request for more is refused, after the checks
    Neutron makes of a list of segments.
    """
    segments = values.get("segments")
    if not segments:
        return values
    if any(values.get(key) is not None for key in PROVIDER):
        raise errors.SegmentsSetInConjunctionWithProviders()
    if not all(segment.get("provider:network_type") for segment in segments):
        raise errors.InvalidInput(error_message="network_type required")
    complete = [tuple(sorted(s.items())) for s in segments if not partial(s)]
    if len(set(complete)) != len(complete):
        raise errors.SegmentsContainDuplicateEntry()
    if len(segments) > 1:
        raise errors.InvalidInput(
            error_message=f"a network has one segment here; {len(segments)} were given"
        )
    return {**values, **segments[0]}


def partial(segment: dict[str, Any]) -> bool:
    """Whether the segment leaves a part to choose (Neutron's is_partial_segment)."""
    if segment["provider:network_type"] == "flat":
        return not segment.get("provider:physical_network")
    if segment["provider:network_type"] == "vlan":
        return not (
            segment.get("provider:physical_network") and segment.get("provider:segmentation_id")
        )
    return not segment.get("provider:segmentation_id")


class Networks(Listed):
    resource = "network"

    def __init__(self, settings: Settings, on_delete: Sequence[Cleanup] = ()) -> None:
        self.settings = settings
        self.on_delete = on_delete

    # -- API -------------------------------------------------------------------
    def source(self, ctx: Context, query: ListQuery) -> Source:
        listing = LISTING.with_filters(shared=rbac.shared_filter("network", N.c.id, ctx.project_id))
        return Source(listing, visible(ctx), lambda conn, rows: render(conn, ctx, rows))

    def get(self, db: Database, ctx: Context, network_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, ctx, [fetch(conn, ctx, network_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        if not ctx.is_admin:
            for key in ("shared", "router:external", "is_default"):
                if values.get(key):
                    raise errors.PolicyNotAuthorized(action=f"create_network:{key}")
        # On a network that is not external, is_default means nothing (Neutron ignores it).
        is_default = bool(values.get("is_default") and values.get("router:external"))
        with db.write() as conn:
            if is_default:
                check_default_free(conn, None)
            row = common.standard_values(ctx, values)
            quotas.check(conn, row["project_id"], "network", 1)
            segment = self._allocate_segment(conn, row["project_id"], provider_values(values))
            mtu = values.get("mtu") or self.max_mtu(segment["network_type"])
            self._check_mtu(segment["network_type"], mtu)
            row.update(
                admin_state_up=values.get("admin_state_up", True),
                mtu=mtu,
                status="ACTIVE",
                port_security_enabled=values.get("port_security_enabled", True),
                network_type=segment["network_type"],
                physical_network=segment["physical_network"] or None,
                segmentation_id=segment["segmentation_id"] or None,
                availability_zone_hints=values.get("availability_zone_hints", []),
                is_default=is_default,
                dns_domain=values.get("dns_domain", ""),
            )
            agents.check_zone_hints(conn, agents.DHCP, row["availability_zone_hints"])
            stored = conn.execute(INSERT, row).one()
            common.record_change(conn, "network", stored.id, "create")
            self._claim_segment(conn, segment, stored.id)
            # Without a policy of its own (null included), its project's default, as Neutron.
            policy_id = values.get("qos_policy_id") or qos.default_of(conn, row["project_id"])
            qos.bind_network(conn, ctx, stored.id, policy_id, new=True)
            granted = [action for key, action in GRANTS.items() if values.get(key)]
            for action in granted:
                network = fetch(conn, ctx, stored.id)
                follows = rbac.grant_everyone(conn, "network", network, action)
                conn.execute(update(N).where(N.c.id == network.id).values(follows))
            if granted:
                return render(conn, ctx, [fetch(conn, ctx, stored.id)])[0]
            # Its body from what was written: a new network has no subnets, tags or DHCP agents
            # yet, and only a grant shares it.
            return body(
                ctx,
                stored,
                shared=False,
                subnets=[],
                scopes=(None, None),
                tags={},
                zones=[],
                policy=policy_id,
            )

    def update(
        self,
        db: Database,
        ctx: Context,
        network_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, network_id, for_write=True)
            common.check_revision(row, if_match)
            for key in (*PROVIDER, "segments"):
                if key in values:
                    raise errors.InvalidInput(
                        error_message="Plugin does not support updating provider attributes"
                    )
            if not ctx.is_admin and ("shared" in values or "router:external" in values):
                raise errors.PolicyNotAuthorized(action="update_network:shared")
            if not ctx.is_admin and "is_default" in values:
                raise errors.PolicyNotAuthorized(action="update_network:is_default")
            changes: dict[str, Any] = {}
            for key, action in GRANTS.items():
                if values.get(key):
                    changes |= rbac.grant_everyone(conn, "network", row, action)
                elif key in values:
                    in_use = errors.InvalidSharedSetting(network=row.name)
                    changes |= rbac.revoke_everyone(conn, "network", row, action, in_use)
            if values.get("mtu"):
                self._check_mtu(row.network_type, values["mtu"])
                needed = min_mtu(conn, network_id)
                if values["mtu"] < needed:
                    raise errors.NetworkMTUSubnetConflict(net_id=network_id, mtu=needed)
            if "qos_policy_id" in values:
                qos.bind_network(conn, ctx, network_id, values.pop("qos_policy_id"))
            is_default = values.pop("is_default", None)
            if is_default is not None and changes.get("external", row.external):
                if is_default:
                    check_default_free(conn, network_id)
                changes["is_default"] = is_default
            changes |= {k: v for k, v in values.items() if k not in GRANTS}
            common.bump(conn, N, "network", row, changes)
            return render(conn, ctx, [fetch(conn, ctx, network_id)])[0]

    def delete(self, db: Database, ctx: Context, network_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, network_id, for_write=True, action="delete_network")
            for cleanup in self.on_delete:
                cleanup(conn, network_id)
            P = schema.ports
            busy = conn.execute(
                select(P.c.id)
                .where(P.c.network_id == network_id, P.c.device_owner != "network:dhcp")
                .limit(1)
            ).first()
            if busy:
                raise errors.NetworkInUse(net_id=network_id)
            # DHCP ports belong to the network itself and go with it, as in Neutron.
            for (port_id,) in conn.execute(select(P.c.id).where(P.c.network_id == network_id)):
                common.delete_resource(conn, P, "port", port_id)
            for (subnet_id,) in conn.execute(
                select(schema.subnets.c.id).where(schema.subnets.c.network_id == network_id)
            ):
                common.delete_resource(conn, schema.subnets, "subnet", subnet_id)
            gone = conn.execute(
                delete(schema.segments)
                .where(schema.segments.c.network_id == network_id)
                .returning(*schema.segments.c)
            ).all()
            for segment in gone:
                segment_ranges.released(conn, segment)
            common.delete_resource(conn, N, "network", row.id)

    def set_tags(
        self, db: Database, ctx: Context, network_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, network_id, for_write=True)
            return common.set_tags(conn, N, "network", row, add, remove)

    # -- MTU --------------------------------------------------------------------------
    def max_mtu(self, network_type: str) -> int:
        """What the physical network carries, less the encapsulation's overhead."""
        return self.settings.default_mtu - (VXLAN_OVERHEAD if network_type == "vxlan" else 0)

    def _check_mtu(self, network_type: str, mtu: int) -> None:
        if mtu > self.max_mtu(network_type):
            raise errors.InvalidInput(
                error_message=f"Requested MTU is too big, maximum is {self.max_mtu(network_type)}"
            )

    # -- segments -----------------------------------------------------------------
    def _allocate_segment(
        self, conn: Connection, project_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """Validate provider attributes; choose a segmentation ID from the network segment
        ranges when none is given."""
        net_type = values.get("provider:network_type") or self.settings.tenant_network_type
        physnet = values.get("provider:physical_network")
        seg_id = values.get("provider:segmentation_id")
        if net_type == "flat":
            if seg_id is not None:
                raise errors.InvalidInput(
                    error_message="segmentation_id specified for flat network"
                )
            physnet = self._physnet(physnet or self._only_physnet())
            return {"network_type": "flat", "physical_network": physnet, "segmentation_id": 0}
        if net_type == "vlan":
            physnet = self._physnet(physnet or self._only_physnet())
            if seg_id is not None and not 1 <= seg_id <= 4094:
                raise errors.InvalidInput(
                    error_message="segmentation_id out of range (1 through 4094)"
                )
            if seg_id is None:
                seg_id = segment_ranges.allocate(conn, "vlan", physnet, project_id)
            return {"network_type": "vlan", "physical_network": physnet, "segmentation_id": seg_id}
        if net_type == "vxlan":
            if physnet:
                raise errors.InvalidInput(
                    error_message="provider:physical_network specified for vxlan network"
                )
            if seg_id is not None and not 1 <= seg_id <= 2**24 - 1:
                raise errors.InvalidInput(
                    error_message=f"segmentation_id out of range (1 through {2**24 - 1})"
                )
            if seg_id is None:
                seg_id = segment_ranges.allocate(conn, "vxlan", "", project_id)
            return {"network_type": "vxlan", "physical_network": "", "segmentation_id": seg_id}
        raise errors.InvalidInput(error_message=f"network_type value '{net_type}' not supported")

    def _only_physnet(self) -> str:
        if len(self.settings.physnets) == 1:
            return self.settings.physnets[0].name
        raise errors.InvalidInput(error_message="physical_network required")

    def _physnet(self, name: str) -> str:
        if self.settings.physnet(name) is None:
            known = ", ".join(p.name for p in self.settings.physnets)
            raise errors.InvalidInput(
                error_message=f"physical_network '{name}' unknown; configured: {known}"
            )
        return name

    @staticmethod
    def _claim_segment(conn: Connection, segment: dict[str, Any], network_id: str) -> None:
        claim = insert_unless_taken(
            conn, schema.segments, "network_type", "physical_network", "segmentation_id"
        )
        if conn.execute(claim, {**segment, "network_id": network_id}).first() is None:
            physnet, seg = segment["physical_network"], segment["segmentation_id"]
            if segment["network_type"] == "flat":
                raise errors.FlatNetworkInUse(physical_network=physnet)
            if segment["network_type"] == "vlan":
                raise errors.VlanIdInUse(vlan_id=seg, physical_network=physnet)
            raise errors.TunnelIdInUse(tunnel_id=seg)
        segment_ranges.taken(conn, segment)


def check_default_free(conn: Connection, network_id: str | None) -> None:
    """One default external network at a time: no other may be it already."""
    default = conn.execute(select(N.c.id).where(N.c.is_default)).scalar()
    if default is not None and default != network_id:
        raise errors.DefaultExternalNetworkExists(net_id=default)


# The least MTU a subnet of each IP version works with (RFC 791, RFC 8200).
MIN_MTU = {4: 68, 6: 1280}


def min_mtu(conn: Connection, network_id: str, ip_version: int | None = None) -> int:
    """The least MTU the network's subnets (and one of `ip_version` to come) need, or 0."""
    S = schema.subnets
    versions = set(
        conn.execute(select(S.c.ip_version).where(S.c.network_id == network_id)).scalars()
    )
    return max((MIN_MTU[v] for v in versions | ({ip_version} if ip_version else set())), default=0)


def set_status(conn: Connection, network_id: str, status: str) -> None:
    conn.execute(update(N).where(N.c.id == network_id).values(status=status))
