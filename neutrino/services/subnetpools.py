"""Subnet pools: prefixes from which subnets are allocated by size.

A pool holds compact prefixes of one IP version and bounds on the length of
the subnets it hands out (min/max/default_prefixlen); `default_quota`
limits, in addresses (IPv4) or /64s (IPv6), what one project may take from
it. Prefixes only grow through an update; remove_prefixes takes back what
no subnet uses. A pool may sit in an address scope of its IP version,
whose pools never share addresses. A pool is seen by its project, by the
projects an RBAC policy shares it with (`shared` is the policy for every
project), and by admins. Writers are serialized (see db), so looking for a
free prefix and taking it never races.
"""

from __future__ import annotations

import builtins
import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, or_, select

from neutrino import errors, ipam
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import address_scopes, common, networks, quotas, rbac
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source, standard_columns

P, S = schema.subnetpools, schema.subnets
LISTING = Listing(P, standard_columns(P))
# IP version -> (longest prefix, default min_prefixlen, the quota unit's prefix length)
VERSIONS = {4: (32, 8, 32), 6: (128, 64, 64)}


def visible(ctx: Context) -> ColumnElement[bool] | None:
    return rbac.visible_objects("subnetpool", ctx)


def fetch(conn: Connection, ctx: Context, pool_id: str) -> Row:
    seen = visible(ctx)
    row = conn.execute(
        select(P).where(P.c.id == pool_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.SubnetPoolNotFound(subnetpool_id=pool_id)
    return row


def fetch_own(conn: Connection, ctx: Context, pool_id: str, action: str) -> Row:
    row = fetch(conn, ctx, pool_id)
    if not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.PolicyNotAuthorized(action=action)
    return row


def render(conn: Connection, ctx: Context, rows: list[Row]) -> list[dict[str, Any]]:
    """Pool bodies; `shared` as the caller sees it."""
    tags = common.load_tags(conn, [r.id for r in rows])
    shared = rbac.shared_ids(conn, "subnetpool", [r.id for r in rows], ctx.project_id)
    out = []
    for r in rows:
        item = common.render_standard(r, tags)
        item.update(
            {
                "ip_version": r.ip_version,
                "prefixes": r.prefixes,
                # Strings, as Neutron renders them.
                "default_prefixlen": str(r.default_prefixlen),
                "min_prefixlen": str(r.min_prefixlen),
                "max_prefixlen": str(r.max_prefixlen),
                "default_quota": r.default_quota,
                "shared": r.id in shared,
                "is_default": r.is_default,
                "address_scope_id": r.address_scope_id,
            }
        )
        out.append(item)
    return out


def networks_of(prefixes: list[str]) -> list[ipam.Network]:
    return [ipaddress.ip_network(p) for p in prefixes]


def read_pool(values: dict[str, Any]) -> dict[str, Any]:
    """A pool's prefixes and bounds with Neutron's defaults, checked (SubnetPoolReader)."""
    if not values.get("prefixes"):
        raise errors.EmptySubnetPoolPrefixList()
    nets = networks_of(values["prefixes"])
    if len({net.version for net in nets}) > 1:
        raise errors.PrefixVersionMismatch()
    version = nets[0].version
    longest, shortest_default, _ = VERSIONS[version]
    given = {k: values.get(k) for k in ("min_prefixlen", "max_prefixlen", "default_prefixlen")}
    low = shortest_default if given["min_prefixlen"] is None else given["min_prefixlen"]
    high = longest if given["max_prefixlen"] is None else given["max_prefixlen"]
    default = low if given["default_prefixlen"] is None else given["default_prefixlen"]
    for wrong, kind, length, base_kind, base in (
        (low > high, "min_prefixlen", low, "max_prefixlen", high),
        (high > longest, "max_prefixlen", high, "ip_version_max", longest),
        (default < low, "default_prefixlen", default, "min_prefixlen", low),
        (default > high, "default_prefixlen", default, "max_prefixlen", high),
    ):
        if wrong:
            raise errors.IllegalSubnetPoolPrefixBounds(
                prefix_type=kind, prefixlen=length, base_prefix_type=base_kind, base_prefixlen=base
            )
    return {
        "ip_version": version,
        "prefixes": [str(net) for net in ipam.compact(nets)],
        "min_prefixlen": low,
        "max_prefixlen": high,
        "default_prefixlen": default,
        "default_quota": values.get("default_quota"),
    }


def check_default_free(conn: Connection, ip_version: int) -> None:
    """One default pool per IP version."""
    if conn.execute(select(exists().where(P.c.is_default, P.c.ip_version == ip_version))).scalar():
        raise errors.InvalidInput(
            error_message=(
                "A default subnetpool for this IP family has already been set. "
                "Only one default may exist per IP family"
            )
        )


def check_address_scope(
    conn: Connection, ctx: Context, pool_id: str, pool: dict[str, Any], scope_id: str | None
) -> None:
    """A pool may join a scope its project sees, of its IP version, without sharing addresses
    with the scope's other pools, and only if its networks stay within one scope."""
    if scope_id is None:
        return
    scope = address_scopes.fetch(conn, ctx, scope_id)
    if pool["ip_version"] != scope.ip_version:
        raise errors.IllegalSubnetPoolIpVersionAssociationToAddressScope(
            subnetpool_id=pool_id, address_scope_id=scope_id, ip_version=scope.ip_version
        )
    allocated = select(S.c.network_id).where(S.c.subnetpool_id == pool_id)
    if conn.execute(
        select(
            exists().where(
                S.c.network_id.in_(allocated),
                S.c.ip_version == pool["ip_version"],
                or_(S.c.subnetpool_id.is_(None), S.c.subnetpool_id != pool_id),
            )
        )
    ).scalar():
        raise errors.NetworkAddressScopeAffinityError()
    ours = networks_of(pool["prefixes"])
    for (prefixes,) in conn.execute(
        select(P.c.prefixes).where(P.c.address_scope_id == scope_id, P.c.id != pool_id)
    ):
        if ipam.overlapping(ours, networks_of(prefixes)):
            raise errors.AddressScopePrefixConflict()


def allocated(conn: Connection, pool_id: str, project_id: str | None = None) -> list[str]:
    where = [S.c.subnetpool_id == pool_id]
    if project_id is not None:
        where.append(S.c.project_id == project_id)
    return list(conn.execute(select(S.c.cidr).where(*where)).scalars())


def allocate_subnet(
    conn: Connection,
    pool: Row,
    project_id: str,
    cidr: ipam.Network | None,
    prefixlen: int | None,
) -> ipam.Network:
    """A subnet for `project_id` from `pool`: `cidr` if it is free there, else the first free
    one of `prefixlen` (the pool's default if None); Neutron's SubnetAllocator."""
    length = cidr.prefixlen if cidr is not None else prefixlen or pool.default_prefixlen
    if length > pool.max_prefixlen:
        raise errors.MaxPrefixSubnetAllocationError(
            prefixlen=length, max_prefixlen=pool.max_prefixlen
        )
    if length < pool.min_prefixlen:
        raise errors.MinPrefixSubnetAllocationError(
            prefixlen=length, min_prefixlen=pool.min_prefixlen
        )
    if pool.default_quota:
        unit = VERSIONS[pool.ip_version][2]
        used = sum(
            2 ** (unit - ipaddress.ip_network(c).prefixlen)
            for c in allocated(conn, pool.id, project_id)
        )
        if used + 2 ** (unit - length) > pool.default_quota:
            raise errors.SubnetPoolQuotaExceeded()
    free = ipam.free_prefixes(networks_of(pool.prefixes), networks_of(allocated(conn, pool.id)))
    if cidr is not None:
        if not any(ipam.within(cidr, block) for block in free):
            raise errors.SubnetAllocationError(
                reason="Cannot allocate requested subnet from the available set of prefixes"
            )
        return cidr
    found = ipam.allocate_prefix(free, length)
    if found is None:
        raise errors.SubnetAllocationError(
            reason=f"Insufficient prefix space to allocate subnet size /{length}"
        )
    return found


def default_pool(conn: Connection, ctx: Context, ip_version: int) -> Row | None:
    seen = visible(ctx)
    return conn.execute(
        select(P).where(
            P.c.is_default, P.c.ip_version == ip_version, *([] if seen is None else [seen])
        )
    ).first()


def scope_of_subnets(conn: Connection, subnet_ids: list[str]) -> dict[str, str | None]:
    """Each subnet's address scope: its pool's."""
    found: dict[str, str | None] = dict.fromkeys(subnet_ids)
    for chunk in common.chunked(subnet_ids):
        found.update(
            conn.execute(
                select(S.c.id, P.c.address_scope_id)
                .join(P, P.c.id == S.c.subnetpool_id)
                .where(S.c.id.in_(chunk))
            ).all()
        )
    return found


def resend_subnets(conn: Connection, pool_id: str) -> None:
    """Agents see each subnet with its scope: a pool's new scope reaches them as its subnets."""
    for subnet_id in conn.execute(select(S.c.id).where(S.c.subnetpool_id == pool_id)).scalars():
        common.record_change(conn, "subnet", subnet_id, "update")


class SubnetPools(Listed):
    resource = "subnetpool"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        listing = LISTING.with_filters(
            shared=rbac.shared_filter("subnetpool", P.c.id, ctx.project_id)
        )
        return Source(listing, visible(ctx), lambda conn, rows: render(conn, ctx, rows))

    def get(self, db: Database, ctx: Context, pool_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, ctx, [fetch(conn, ctx, pool_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        for flag in ("shared", "is_default"):
            if values[flag] and not ctx.is_admin:
                raise errors.PolicyNotAuthorized(action=f"create_subnetpool:{flag}")
        pool = read_pool(values)
        with db.write() as conn:
            row = common.standard_values(ctx, values)
            quotas.check(conn, row["project_id"], "subnetpool", 1)
            if values["is_default"]:
                check_default_free(conn, pool["ip_version"])
            check_address_scope(conn, ctx, row["id"], pool, values.get("address_scope_id"))
            row.update(
                pool,
                is_default=values["is_default"],
                address_scope_id=values.get("address_scope_id"),
            )
            common.insert_resource(conn, P, self.resource, row)
            if values["shared"]:
                rbac.set_shared(conn, "subnetpool", fetch(conn, ctx, row["id"]), True)
            return render(conn, ctx, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        pool_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_own(conn, ctx, pool_id, "update_subnetpool")
            common.check_revision(row, if_match)
            self._update(conn, ctx, row, values)
            return render(conn, ctx, [fetch(conn, ctx, pool_id)])[0]

    def delete(self, db: Database, ctx: Context, pool_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            fetch_own(conn, ctx, pool_id, "delete_subnetpool")
            if conn.execute(select(exists().where(S.c.subnetpool_id == pool_id))).scalar():
                raise errors.SubnetPoolDeleteError(reason="Subnet pool has existing allocations")
            common.delete_resource(conn, P, self.resource, pool_id)

    def set_tags(
        self, db: Database, ctx: Context, pool_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_own(conn, ctx, pool_id, "update_subnetpool")
            return common.set_tags(conn, P, self.resource, row, add, remove)

    def change_prefixes(
        self, db: Database, ctx: Context, pool_id: str, prefixes: builtins.list[str], *, add: bool
    ) -> dict[str, Any]:
        """add_prefixes (an update with more prefixes) and remove_prefixes."""
        common.require_writer(ctx)
        action = "add_prefixes" if add else "remove_prefixes"
        with db.write() as conn:
            row = fetch_own(conn, ctx, pool_id, action)
            if add:
                self._update(conn, ctx, row, {"prefixes": row.prefixes + prefixes})
                return {"prefixes": fetch(conn, ctx, pool_id).prefixes}
            removed = networks_of(prefixes)
            current = networks_of(row.prefixes)
            if not ipam.overlapping(current, removed):
                return {"prefixes": row.prefixes}
            if ipam.overlapping(networks_of(allocated(conn, pool_id)), removed):
                raise errors.IllegalSubnetPoolPrefixUpdate(
                    msg="One or more the prefixes to be removed is in use by a subnet"
                )
            left = [str(n) for n in sorted(ipam.free_prefixes(current, removed))]
            common.bump(conn, P, self.resource, row, {"prefixes": left})
            return {"prefixes": left}

    def onboard_network_subnets(
        self, db: Database, ctx: Context, pool_id: str, network_id: str
    ) -> builtins.list[dict[str, str]]:
        """Put a network's subnets of the pool's IP version into the pool, their CIDRs into its
        prefixes."""
        common.require_writer(ctx)
        with db.write() as conn:
            network = networks.fetch(conn, ctx, network_id)
            if not ctx.is_admin and network.project_id != ctx.project_id:
                raise errors.NotAuthorized()
            row = fetch(conn, ctx, pool_id)
            subnets = conn.execute(
                select(S).where(S.c.network_id == network_id, S.c.ip_version == row.ip_version)
            ).all()
            taken = networks_of(allocated(conn, pool_id))
            for subnet in subnets:
                if ipam.overlapping([ipaddress.ip_network(subnet.cidr)], taken):
                    raise errors.IllegalSubnetPoolUpdate(
                        reason=(
                            f"Onboarding subnet {subnet.id}: {subnet.cidr} conflicts with "
                            f"allocated prefixes in subnet pool {pool_id}"
                        )
                    )
            self._update(conn, ctx, row, {"prefixes": row.prefixes + [s.cidr for s in subnets]})
            for subnet in subnets:
                common.bump(conn, S, "subnet", subnet, {"subnetpool_id": pool_id})
            return [{"id": s.id, "cidr": s.cidr} for s in subnets]

    def _update(self, conn: Connection, ctx: Context, row: Row, values: dict[str, Any]) -> None:
        """Neutron's update_subnetpool: prefixes only grow; the result is read and checked as
        a new pool is."""
        merged = {
            key: getattr(row, key)
            for key in ("min_prefixlen", "max_prefixlen", "default_prefixlen", "default_quota")
        }
        merged.update(values)
        if "prefixes" in values:
            if not ipam.covers(networks_of(values["prefixes"]), networks_of(row.prefixes)):
                raise errors.IllegalSubnetPoolPrefixUpdate(
                    msg="Existing prefixes must be a subset of the new prefixes"
                )
        else:
            merged["prefixes"] = row.prefixes
        pool = read_pool(merged)
        if "is_default" in values and not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action="update_subnetpool:is_default")
        is_default = values.get("is_default", row.is_default)
        if is_default and not row.is_default:
            check_default_free(conn, pool["ip_version"])
        if row.address_scope_id:
            scope = address_scopes.fetch(conn, ctx, row.address_scope_id)
            if not address_scopes.owned(ctx, scope):
                raise errors.IllegalSubnetPoolUpdate(
                    reason=(
                        f"subnetpool {row.id} cannot be updated when associated with shared "
                        f"address scope {row.address_scope_id}"
                    )
                )
        scope_id = values.get("address_scope_id", row.address_scope_id)
        check_address_scope(conn, ctx, row.id, pool, scope_id)
        changes: dict[str, Any] = {
            **pool,
            "is_default": is_default,
            "address_scope_id": scope_id,
            **{k: values[k] for k in ("name", "description") if k in values},
        }
        common.bump(conn, P, self.resource, row, changes)
        if scope_id != row.address_scope_id:
            resend_subnets(conn, row.id)
