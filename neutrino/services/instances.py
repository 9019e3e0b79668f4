"""Lab instances: something that sends packets, plugged like a VM would be.

An instance owns ports (made for it on the networks it asks for) or adopts
ports it is given (S5: a port with a chosen fixed IP); either way the port
shows the instance as Nova's ports show a server (device_owner `compute:<the
instance's availability zone>`, `compute:nova` in Nova's default zone;
device_id the instance), its binding is the instance's host, whose agent
makes the namespace and plugs it, and a port made for it is named
`<instance>-eth<N>`, with the instance's hostname as its `dns_name` as Nova
gives it (kept where a DNS domain is configured, see neutrino.services.dns).
The ports made for it join the security groups it names (`security_groups`,
each `{"name": name or ID}`, as Nova's), else their project's default group;
ports it adopts keep their own groups, as Nova leaves a given port's alone.
An instance goes to the host an administrator names (Nova's forced host), or
else where Nova's scheduler would put it (`place`). The agent reports where
the instance runs and the addresses it got by DHCP; the instance is ACTIVE
once every port's fixed IPv4 address that DHCP gives is there (none on a
subnet without DHCP).

`host_status` is Nova's: UP while the host's agent is alive, DOWN once it is
not (services/liveness.py), UNKNOWN for a host no agent has reported from.
Only an administrator sees it, as Nova's default policy has it
(os_compute_api:servers:show:host_status): others get no such key. An
instance on a dead host stays as it is, as Nova keeps a server whose compute
service is down: its status does not change, its ports are DOWN.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, exists, func, select, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import agents, common, ports, quotas, rbac
from neutrino.services.common import Tags
from neutrino.services.listing import Listing, list_rows, standard_columns

INST, P, AG = schema.lab_instances, schema.ports, schema.network_agents
# Neutron's DEVICE_OWNER_COMPUTE_PREFIX: a port owned `compute:<anything>` is a VM's.
COMPUTE_PREFIX = "compute:"
# With device_id an instance's ID: a port of that instance, whatever its zone.
COMPUTE_OWNED = P.c.device_owner.startswith(COMPUTE_PREFIX)
LISTING = Listing(INST, standard_columns(INST))


def owner(zone: str) -> str:
    """The device owner of an instance's ports in `zone`, as Nova gives a server's ports."""
    return COMPUTE_PREFIX + zone


def hostname(name: str) -> str:
    """The hostname of an instance of that name, as Nova's sanitize_hostname makes it, within
    what a DNS label may hold."""
    label = re.sub(r"[^a-z0-9-]+", "", re.sub(r"[ _.]", "-", name[:63]).lower())
    return label.strip("-")


def visible(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else INST.c.project_id == ctx.project_id


def fetch(conn: Connection, ctx: Context, ref: str) -> Row:
    """By id, or by name when the name is unique among what the caller sees."""
    seen = visible(ctx)
    scope = [] if seen is None else [seen]
    row = conn.execute(select(INST).where(INST.c.id == ref, *scope)).first()
    if row is not None:
        return row
    named = conn.execute(select(INST).where(INST.c.name == ref, *scope)).all()
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise errors.Conflict(f"Several instances are named {ref}; use an ID.")
    raise errors.NotFound(f"Instance {ref} could not be found.")


def render(conn: Connection, ctx: Context, rows: list[Row]) -> list[dict[str, Any]]:
    """Instance bodies as `ctx` sees them: `host_status` only for an administrator."""
    ids = [r.id for r in rows]
    plugged: dict[str, list[str]] = {i: [] for i in ids}
    for chunk in common.chunked(ids):
        for port_id, device_id in conn.execute(
            select(P.c.id, P.c.device_id)
            .where(P.c.device_id.in_(chunk), COMPUTE_OWNED)
            .order_by(P.c.created_at, P.c.id)
        ):
            plugged[device_id].append(port_id)
    tags = common.load_tags(conn, ids)
    groups = group_names(conn, plugged)
    bodies = [
        {
            **common.render_standard(r, tags),
            "host": r.host,
            "availability_zone": r.availability_zone,
            "status": r.status,
            "port_ids": plugged[r.id],
            "netns": r.netns,
            "addresses": r.addresses,
            "security_groups": [{"name": name} for name in groups[r.id]],
        }
        for r in rows
    ]
    if ctx.is_admin:
        statuses = host_statuses(conn, {r.host for r in rows})
        for r, body in zip(rows, bodies, strict=True):
            body["host_status"] = statuses.get(r.host, "UNKNOWN")
    return bodies


def group_names(conn: Connection, plugged: dict[str, list[str]]) -> dict[str, list[str]]:
    """Instance id -> the names of its ports' security groups, as Nova shows a server's."""
    PSG, SG = schema.port_security_groups, schema.security_groups
    device = {port: instance for instance, ports in plugged.items() for port in ports}
    names: dict[str, set[str]] = {instance: set() for instance in plugged}
    for chunk in common.chunked(list(device)):
        for port_id, name in conn.execute(
            select(PSG.c.port_id, SG.c.name)
            .join(SG, SG.c.id == PSG.c.security_group_id)
            .where(PSG.c.port_id.in_(chunk))
        ):
            names[device[port_id]].add(name)
    return {instance: sorted(found) for instance, found in names.items()}


def chosen_groups(conn: Connection, project_id: str, refs: list[dict[str, str]]) -> list[str]:
    """The IDs of the security groups `refs` name, by ID or by name among those the project
    sees, as Nova resolves a server's `security_groups`."""
    SG = schema.security_groups
    seen = rbac.seen_by("security_group", project_id)
    chosen = []
    for ref in refs:
        wanted = ref["name"]
        found = [*conn.execute(select(SG.c.id).where(SG.c.id == wanted, seen)).scalars()] or [
            *conn.execute(select(SG.c.id).where(SG.c.name == wanted, seen)).scalars()
        ]
        if not found:
            raise errors.BadRequest(
                resource="instance", msg=f"security group {wanted} could not be found"
            )
        if len(found) > 1:
            raise errors.Conflict(
                f"Multiple security groups found matching '{wanted}'. "
                "Use an ID to be more specific."
            )
        chosen.append(found[0])
    return list(dict.fromkeys(chosen))


def host_statuses(conn: Connection, hosts: set[str]) -> dict[str, str]:
    """UP or DOWN for each of `hosts` that has an agent, by its latest heartbeat."""
    AG, now = agents.AG, common.now()
    return {
        host: "UP" if agents.is_alive(heartbeat, now) else "DOWN"
        for host, heartbeat in conn.execute(
            select(AG.c.host, func.max(AG.c.heartbeat_at))
            .where(AG.c.host.in_(sorted(hosts)))
            .group_by(AG.c.host)
        )
    }


class Instances:
    resource = "instance"

    def __init__(self, default_host: str) -> None:
        self.default_host = default_host

    def list(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]:
        with db.read() as conn:
            rows, more = list_rows(conn, LISTING, query, visible(ctx))
            return render(conn, ctx, rows), more

    def get(self, db: Database, ctx: Context, ref: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, ctx, [fetch(conn, ctx, ref)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        if not values.get("networks") and not values.get("ports"):
            raise errors.BadRequest(
                resource="instance", msg="give at least one of 'networks' or 'ports'"
            )
        if values.get("host") and not ctx.is_admin:
            # As Nova's forced host: placing a server on a chosen host is an administrator's.
            raise errors.PolicyNotAuthorized(action="create_instance:host")
        with db.write() as conn:
            adopted = [
                ports.fetch(conn, ctx, ref, for_write=True) for ref in values.get("ports", [])
            ]
            for port in adopted:
                if port.device_id or port.device_owner:
                    raise errors.PortInUse(
                        port_id=port.id, net_id=port.network_id, device_id=port.device_id
                    )
            wanted = [
                ([{"ip_address": w["fixed_ip"]}] if w.get("fixed_ip") else None, w["network_id"])
                for w in values.get("networks", [])
            ]
            # Made for the caller, as Nova makes a port with the user's token.
            made_on = [ports.network_for_port(conn, ctx, ref, fixed) for fixed, ref in wanted]
            N = schema.networks
            adopted_on = [
                conn.execute(select(N).where(N.c.id == port.network_id)).one() for port in adopted
            ]
            host, zone = place(
                conn, made_on + adopted_on, values.get("availability_zone"), values.get("host")
            )
            host = host or self.default_host
            row = common.standard_values(ctx, values)
            groups = values.get("security_groups")
            # As Nova's: "default" alone is what a port gets anyway (none where port security
            # is off), so it is not asked for.
            if groups is not None and groups != [{"name": "default"}]:
                groups = chosen_groups(conn, row["project_id"], groups)
            else:
                groups = None
            row.update(
                host=host, availability_zone=zone, status="BUILD", owned_ports=[], addresses=[]
            )
            plug = {"device_owner": owner(zone), "device_id": row["id"], "binding_host_id": host}
            for port in adopted:
                common.bump(conn, P, "port", port, plug)
            for (fixed, _), network in zip(wanted, made_on, strict=True):
                quotas.check(conn, row["project_id"], "port", 1)
                port_id = ports.insert_port(
                    conn,
                    row["project_id"],
                    network,
                    {
                        "name": f"{row['name']}-eth{len(row['owned_ports'])}",
                        "fixed_ips": fixed,
                        "device_owner": owner(zone),
                        "device_id": row["id"],
                        "binding:host_id": host,
                        "dns_name": hostname(row["name"]),
                        **({} if groups is None else {"security_groups": groups}),
                    },
                )["id"]
                row["owned_ports"].append(port_id)
            common.insert_resource(conn, INST, "instance", row)
            return render(conn, ctx, [fetch(conn, ctx, row["id"])])[0]

    def update(
        self, db: Database, ctx: Context, ref: str, values: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, ref)
            common.check_revision(row, if_match)
            common.bump(conn, INST, "instance", row, values)
            return render(conn, ctx, [fetch(conn, ctx, row.id)])[0]

    def delete(self, db: Database, ctx: Context, ref: str) -> None:
        """Its own ports go with it; adopted ports are unplugged and kept, as Nova does."""
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch(conn, ctx, ref)
            for port in conn.execute(select(P).where(P.c.device_id == row.id, COMPUTE_OWNED)).all():
                if port.id in row.owned_ports:
                    ports.remove_port(conn, port.id)
                else:
                    common.bump(
                        conn,
                        P,
                        "port",
                        port,
                        {
                            "device_owner": "",
                            "device_id": "",
                            "binding_host_id": "",
                            "status": "DOWN",
                        },
                    )
            common.delete_resource(conn, INST, "instance", row.id)

    def set_tags(
        self, db: Database, ctx: Context, ref: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            return common.set_tags(conn, INST, "instance", fetch(conn, ctx, ref), add, remove)


# -- where an instance runs --------------------------------------------------------------


def place(
    conn: Connection, wanted: list[Row], zone: str | None, forced: str | None
) -> tuple[str | None, str]:
    """(host, its zone) for an instance on the `wanted` networks, as Nova's scheduler places a
    server: filter the hosts whose Linux bridge agent is alive and up, in `zone` when given,
    and able to realize every network; then weigh them, fewest instances first (by name among
    equals). An administrator's `forced` host skips the filters, as in Nova. Before any agent
    has reported (a server starting with its embedded agent, or one without agents) the host
    is None: the server's own."""
    hosts = list(conn.execute(select(AG).where(AG.c.agent_type == agents.L2)))
    zone_of = {row.host: row.availability_zone or agents.DEFAULT_ZONE for row in hosts}
    if zone is not None and zone not in zone_of.values():
        raise errors.BadRequest(
            resource="instance", msg=f"the availability zone {zone} is not available"
        )
    if forced:
        return forced, zone or zone_of.get(forced, agents.DEFAULT_ZONE)
    if not hosts:
        return None, zone or agents.DEFAULT_ZONE
    now = common.now()
    fit = [
        row
        for row in hosts
        if row.admin_state_up
        and agents.is_alive(row.heartbeat_at, now)
        and zone in (None, zone_of[row.host])
        and all(realizes(conn, row, network) for network in wanted)
    ]
    if not fit:
        raise errors.Conflict(
            "No valid host was found. No host with a live Linux bridge agent that is up"
            + (f" in availability zone {zone}" if zone else "")
            + " can realize the instance's networks."
        )
    load: dict[str, int] = {
        host: count
        for host, count in conn.execute(select(INST.c.host, func.count()).group_by(INST.c.host))
    }
    best = min(fit, key=lambda row: (load.get(row.host, 0), row.host))
    return best.host, zone_of[best.host]


def realizes(conn: Connection, agent: Row, network: Row) -> bool:
    """Whether the host of this Linux bridge agent can plug into `network`, as Neutron's Linux
    bridge mechanism driver binds a port: a flat or VLAN network's physical network among the
    agent's mappings; a VXLAN network's tunnels from its VTEP (`tunneling_ip`). A host without a
    VTEP still holds a VXLAN network that has nothing on any other host (a one-host
    installation)."""
    configurations = agent.configurations or {}
    if network.network_type != "vxlan":
        mapped = {
            *configurations.get("interface_mappings", {}),
            *configurations.get("bridge_mappings", {}),
        }
        return network.physical_network in mapped
    elsewhere = exists().where(
        P.c.network_id == network.id, P.c.binding_host_id.not_in(["", agent.host])
    )
    return (
        bool(agents.tunneling_ip(configurations))
        or not conn.execute(select(elsewhere)).scalar_one()
    )


def record_report(conn: Connection, host: str, reported: dict[str, dict[str, Any]]) -> None:
    """Where each instance runs and what addresses it has; ACTIVE once its agent runs it with
    every fixed IPv4 address that DHCP gives (of its subnets that enable it: on the others,
    as a VM whose image sets none, it has none)."""
    A, S = schema.ip_allocations, schema.subnets
    for row in conn.execute(select(INST).where(INST.c.host == host)).all():
        seen = reported.get(row.id)
        if seen is None:
            continue
        expected = set(
            conn.execute(
                select(A.c.ip_address)
                .join(P, P.c.id == A.c.port_id)
                .join(S, S.c.id == A.c.subnet_id)
                .where(
                    P.c.device_id == row.id,
                    COMPUTE_OWNED,
                    S.c.ip_version == 4,
                    S.c.enable_dhcp,
                )
            ).scalars()
        )
        addresses = sorted(seen.get("addresses", []))
        status = "ACTIVE" if expected <= {a.split("/")[0] for a in addresses} else "BUILD"
        if (row.netns, row.addresses, row.status) != (seen.get("netns"), addresses, status):
            conn.execute(
                update(INST)
                .where(INST.c.id == row.id)
                .values(netns=seen.get("netns"), addresses=addresses, status=status)
            )
