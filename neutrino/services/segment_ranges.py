"""Network segment ranges: where networks' VLAN IDs and VNIs come from.

A range holds the segmentation IDs of one network type (and, for vlan, one physical network)
from `minimum` to `maximum`. The default ranges are the configuration's (`--physnet
NAME:VLAN_MIN:VLAN_MAX`, the VNI range): they are rewritten on each start, shared, and read
only. Administrators add others: shared ones, or one project's, which serve that project's
networks before any shared range and no other project's. A network given no segmentation ID
takes the lowest free one, from its project's ranges first, then from the shared ranges less
what other projects' ranges hold; the segments table's primary key keeps two networks from
taking one ID (see networks). The IDs no network has are kept as ranges (free_ranges), so that
an allocation reads a few of them, never the IDs taken.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, Row, bindparam, false, select

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common
from neutrino.services.common import Tags
from neutrino.services.free_ranges import FreeRanges
from neutrino.services.listing import STANDARD_PLAIN, Listed, Listing, Source, standard_columns

R, SEG, N = schema.network_segment_ranges, schema.segments, schema.networks
LISTING = Listing(
    R,
    standard_columns(R),
    plain=(
        *STANDARD_PLAIN,
        "default",
        "shared",
        "network_type",
        "physical_network",
        "minimum",
        "maximum",
    ),
)
# What others than administrators list: nothing, whatever the marker.
UNSEEN = replace(LISTING, unseen_marker_ignored=True)
# The segmented types neutrino's data plane builds, and their identifiers (Neutron's
# is_valid_vlan_tag, is_valid_vxlan_vni).
LIMITS = {"vlan": (1, 4094), "vxlan": (1, 2**24 - 1)}


def configured(settings: Settings) -> list[tuple[str, str, int, int]]:
    """The default ranges: (network type, physical network, minimum, maximum)."""
    vlans = [("vlan", p.name, p.vlan_min, p.vlan_max) for p in settings.physnets]
    return [*vlans, ("vxlan", "", settings.vni_min, settings.vni_max)]


def sync_defaults(db: Database, settings: Settings) -> None:
    """Make the default ranges the configuration's; the unchanged ones keep their IDs."""
    wanted = set(configured(settings))
    with db.write() as conn:
        for row in conn.execute(select(R).where(R.c.default)).all():
            key = (row.network_type, row.physical_network, row.minimum, row.maximum)
            if key in wanted:
                wanted.discard(key)
            else:
                common.delete_resource(conn, R, "network_segment_range", row.id)
        moment = common.now()
        for network_type, physnet, low, high in sorted(wanted):
            common.insert_resource(
                conn,
                R,
                "network_segment_range",
                {
                    "id": common.new_id(),
                    "project_id": None,
                    # Neutron's default ranges have no name either (NULL since 2025.1, when
                    # NetworkSegmentRange.new_default replaced the drivers' name '').
                    "name": None,
                    "description": "",
                    "created_at": moment,
                    "updated_at": moment,
                    "revision_number": 1,
                    "default": True,
                    "shared": True,
                    "network_type": network_type,
                    "physical_network": physnet,
                    "minimum": low,
                    "maximum": high,
                },
            )


# -- allocation ------------------------------------------------------------------------------
# Built once: every network create runs it (see db).
RANGES_OF_TYPE = (
    select(R)
    .where(R.c.network_type == bindparam("type"), R.c.physical_network == bindparam("physnet"))
    .order_by(R.c.minimum, R.c.id)
)
# The IDs no network has, over all those of a type (LIMITS), by (type, physical network).
FREE = FreeRanges[int](
    schema.segment_free_ranges,
    ("network_type", "physical_network"),
    "first_id",
    "last_id",
    step=operator.add,
)


def allocate(conn: Connection, network_type: str, physnet: str, project_id: str) -> int:
    """The lowest free segmentation ID for a network of `project_id`: from its own ranges, else
    from the shared ones less other projects' ranges; NoNetworkAvailable if there is none."""
    params = {"type": network_type, "physnet": physnet}
    ranges = conn.execute(RANGES_OF_TYPE, params).all()
    owner = (network_type, physnet)
    found = lowest_free(conn, owner, ranges, project_id)
    if found is None and not FREE.holds_any(conn, owner):
        fill(conn, network_type, physnet)  # the type's first allocation
        found = lowest_free(conn, owner, ranges, project_id)
    if found is None:
        raise errors.NoNetworkAvailable()
    return found


def lowest_free(
    conn: Connection, owner: tuple[str, str], ranges: Sequence[Row], project_id: str
) -> int | None:
    """The lowest free ID of the project's own `ranges`, else of the shared ones less other
    projects' ranges."""
    own = [r for r in ranges if not r.shared and r.project_id == project_id]
    others = [(r.minimum, r.maximum) for r in ranges if r.project_id not in (None, project_id)]
    shared = [r for r in ranges if r.shared]
    for candidates, excluded in ((own, []), (shared, others)):
        for r in candidates:
            found = first_free(conn, owner, r.minimum, r.maximum, excluded)
            if found is not None:
                return found
    return None


def first_free(
    conn: Connection,
    owner: tuple[str, str],
    low: int,
    high: int,
    excluded: list[tuple[int, int]],
) -> int | None:
    """The lowest free ID from `low` to `high` that no `excluded` range holds."""
    candidate = low
    while (found := FREE.lowest(conn, owner, at_least=candidate)) is not None and found <= high:
        skip = next((end for start, end in excluded if start <= found <= end), None)
        if skip is None:
            return found
        candidate = skip + 1
    return None


def fill(conn: Connection, network_type: str, physnet: str) -> None:
    """The type's free IDs from the segments: all its IDs (LIMITS) less those networks have.
    When every one is taken there is none to keep: each allocation fills them again, and finds
    none."""
    low, high = LIMITS[network_type]
    taken = conn.execute(
        select(SEG.c.segmentation_id)
        .where(SEG.c.network_type == network_type, SEG.c.physical_network == physnet)
        .order_by(SEG.c.segmentation_id)
    ).scalars()
    free = []
    for value in taken:
        if value > low:
            free.append((low, value - 1))
        low = max(low, value + 1)
    if low <= high:
        free.append((low, high))
    FREE.insert(conn, (network_type, physnet), free)


def taken(conn: Connection, segment: dict[str, Any]) -> None:
    """A network has this segment (vlan or vxlan): its ID is no longer free."""
    if segment["network_type"] in LIMITS:
        owner = (segment["network_type"], segment["physical_network"])
        FREE.carve(conn, owner, segment["segmentation_id"])


def released(conn: Connection, segment: Row) -> None:
    """No network has this segment any more: its ID is free again. Unless no free ID of its
    type is kept (none yet, or none left): the type's next allocation fills them from the
    segments, this one with them."""
    owner = (segment.network_type, segment.physical_network)
    if segment.network_type in LIMITS and FREE.holds_any(conn, owner):
        FREE.give_back(conn, owner, segment.segmentation_id)


def used(conn: Connection, network_type: str, physnet: str, low: int, high: int) -> dict[int, str]:
    """The segmentation IDs from `low` to `high` that networks have: ID -> the network's
    project."""
    return dict(
        conn.execute(
            select(SEG.c.segmentation_id, N.c.project_id)
            .join(N, N.c.id == SEG.c.network_id)
            .where(
                SEG.c.network_type == network_type,
                SEG.c.physical_network == physnet,
                SEG.c.segmentation_id.between(low, high),
            )
        ).all()
    )


# -- the API ---------------------------------------------------------------------------------
def fetch(conn: Connection, ctx: Context, range_id: str) -> Row:
    row = conn.execute(select(R).where(R.c.id == range_id)).first()
    if row is None:
        raise errors.NetworkSegmentRangeNotFound(range_id=range_id)
    if not ctx.is_admin:
        raise errors.HTTPNotFound()  # admin only: as if it were not there
    return row


def render(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    out = []
    for r in rows:
        taken = used(conn, r.network_type, r.physical_network, r.minimum, r.maximum)
        item = common.render_standard(r, tags)
        item.update(
            {
                "default": r.default,
                "shared": r.shared,
                "network_type": r.network_type,
                "physical_network": r.physical_network,
                "minimum": r.minimum,
                "maximum": r.maximum,
                "available": [i for i in range(r.minimum, r.maximum + 1) if i not in taken],
                "used": {str(i): project for i, project in sorted(taken.items())},
            }
        )
        out.append(item)
    return out


def check_eligible(network_type: str, low: int, high: int) -> None:
    """Neutron's verify_vlan_range and verify_tunnel_range."""
    bounds = f"{low}:{high}"
    first, last = LIMITS[network_type]
    for ident in (low, high):
        if not first <= ident <= last:
            if network_type == "vlan":
                raise errors.NetworkVlanRangeError(
                    vlan_range=bounds, error=f"{ident} is not a valid VLAN tag"
                )
            raise errors.NetworkTunnelRangeError(
                tunnel_range=bounds, error=f"{ident} is not a valid {network_type} identifier"
            )
    if high < low:
        if network_type == "vlan":
            raise errors.NetworkVlanRangeError(
                vlan_range=bounds, error="End of VLAN range is less than start of VLAN range"
            )
        raise errors.NetworkTunnelRangeError(
            tunnel_range=bounds, error="End of tunnel range is less than start of tunnel range"
        )


def check_no_overlap(
    conn: Connection, network_type: str, physnet: str, low: int, high: int, range_id: str = ""
) -> None:
    """Ranges an administrator makes do not overlap each other (the defaults may be under)."""
    overlapping = conn.execute(
        select(R.c.id)
        .where(
            ~R.c.default,
            R.c.network_type == network_type,
            R.c.physical_network == physnet,
            R.c.id != range_id,
            R.c.minimum <= high,
            R.c.maximum >= low,
        )
        .order_by(R.c.created_at, R.c.id)
    ).scalars()
    found = list(overlapping)
    if found:
        raise errors.NetworkSegmentRangeOverlaps(range_id=", ".join(found))


def admin_only(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


class NetworkSegmentRanges(Listed):
    resource = "network_segment_range"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        if not ctx.is_admin:  # admin only: the others see none
            return Source(UNSEEN, false(), render)
        return Source(LISTING, None, render)

    def get(self, db: Database, ctx: Context, range_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, range_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        admin_only(ctx, "create_network_segment_range")
        network_type = values["network_type"]
        if network_type not in LIMITS:
            raise errors.NetworkSegmentRangeNetTypeNotSupported(type=network_type)
        physnet = ""
        if network_type == "vlan":
            physnet = values.get("physical_network") or ""
            if "physical_network" not in values:
                raise errors.BadRequest(
                    resource=self.resource,
                    msg=(
                        "Network type vlan requires 'physical_network' to be specified while "
                        "creating new range"
                    ),
                )
        low, high = values["minimum"], values["maximum"]
        shared = values["shared"]
        project = None if shared else common.owner(ctx, values)
        with db.write() as conn:
            check_eligible(network_type, low, high)
            check_no_overlap(conn, network_type, physnet, low, high)
            row = common.standard_values(ctx, values)
            row.update(
                project_id=project,
                default=False,
                shared=shared,
                network_type=network_type,
                physical_network=physnet,
                minimum=low,
                maximum=high,
            )
            common.insert_resource(conn, R, self.resource, row)
            return render(conn, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        range_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        with db.write() as conn:
            row = fetch(conn, ctx, range_id)
            common.check_revision(row, if_match)
            if row.default:
                raise errors.NetworkSegmentRangeDefaultReadOnly(range_id=range_id)
            low, high = values.get("minimum", row.minimum), values.get("maximum", row.maximum)
            # The segments in it stay in it; a bound on a used ID keeps it (as the API suite
            # expects; Neutron's own check refuses that too).
            taken = used(conn, row.network_type, row.physical_network, row.minimum, row.maximum)
            if taken and (low > min(taken) or high < max(taken)):
                raise errors.NetworkSegmentRangeReferencedByProject(range_id=range_id)
            check_eligible(row.network_type, low, high)
            check_no_overlap(conn, row.network_type, row.physical_network, low, high, range_id)
            common.bump(conn, R, self.resource, row, values)
            return render(conn, [fetch(conn, ctx, range_id)])[0]

    def delete(self, db: Database, ctx: Context, range_id: str) -> None:
        with db.write() as conn:
            row = fetch(conn, ctx, range_id)
            if row.default:
                raise errors.NetworkSegmentRangeDefaultReadOnly(range_id=range_id)
            if used(conn, row.network_type, row.physical_network, row.minimum, row.maximum):
                raise errors.NetworkSegmentRangeReferencedByProject(range_id=range_id)
            common.delete_resource(conn, R, self.resource, range_id)

    def set_tags(
        self, db: Database, ctx: Context, range_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        with db.write() as conn:
            row = fetch(conn, ctx, range_id)
            return common.set_tags(conn, R, self.resource, row, add, remove)
