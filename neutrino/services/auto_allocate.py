"""Auto-allocated topologies ("get me a network"), Neutron's auto-allocated-topology.

The first ask of a project makes its network, one subnet from each default subnet pool (IPv4,
IPv6) and a router with its gateway on the default external network and an interface on each
subnet; later asks answer with the same network. All of it is one write transaction, and
writers are serialized (see db): two first asks at once make one topology, and a failure
leaves nothing behind. One row per project (its primary key) is the last line of defence.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from neutrino import errors
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import subnetpools
from neutrino.services.networks import Networks
from neutrino.services.routers import Routers
from neutrino.services.subnets import Subnets

T, N, S = schema.auto_allocated_topologies, schema.networks, schema.subnets
CHECK_REQUIREMENTS = "dry-run"  # the one `fields` value the API knows: validate, make nothing


def response(topology_id: str, project_id: str) -> dict[str, Any]:
    return {"id": topology_id, "tenant_id": project_id, "project_id": project_id}


def default_external_network(conn: Connection) -> str:
    found = conn.execute(
        select(N.c.id).where(N.c.is_default, N.c.external).order_by(N.c.created_at, N.c.id)
    ).scalar()
    if found is None:
        raise errors.AutoAllocationFailure(reason="No default router:external network")
    return str(found)


def default_pools(conn: Connection, ctx: Context) -> list[Any]:
    return [
        pool
        for version in (4, 6)
        if (pool := subnetpools.default_pool(conn, ctx, version)) is not None
    ]


class AutoAllocatedTopologies:
    def __init__(self, networks: Networks, subnets: Subnets, routers: Routers) -> None:
        self.networks, self.subnets, self.routers = networks, subnets, routers

    def get(self, db: Database, ctx: Context, project_id: str, fields: list[str]) -> dict[str, Any]:
        """The project's topology, made if it has none."""
        project_id = self._project(ctx, project_id)
        if CHECK_REQUIREMENTS in fields:
            with db.read() as conn:
                default_external_network(conn)
                if not default_pools(conn, ctx):
                    raise errors.AutoAllocationFailure(reason="No default subnetpools defined")
            return response("dry-run=pass", project_id)
        if fields:
            raise errors.BadRequest(resource="auto_allocate", msg="Unrecognized field")
        with db.read() as conn:
            network_id = self._network_of(conn, project_id)
        if network_id is None:
            with db.write() as conn:
                network_id = self._network_of(conn, project_id) or self._build(
                    db, conn, ctx, project_id
                )
        return response(network_id, project_id)

    def delete(self, db: Database, ctx: Context, project_id: str) -> None:
        """The router (its interfaces first) and the network go; nothing to remove is no error."""
        if not ctx.can_write:
            raise errors.PolicyNotAuthorized(action="delete_auto_allocated_topology")
        project_id = self._project(ctx, project_id)
        with db.write() as conn:
            topology = conn.execute(select(T).where(T.c.project_id == project_id)).first()
            if topology is None:
                return
            acting = self._acting(ctx, project_id)
            if topology.router_id is not None:
                subnet_ids = conn.execute(
                    select(S.c.id).where(S.c.network_id == topology.network_id)
                ).scalars()
                for subnet_id in subnet_ids.all():
                    ignore_not_found(
                        self.routers.remove_interface,
                        db,
                        acting,
                        topology.router_id,
                        subnet_id,
                        None,
                    )
                ignore_not_found(self.routers.delete, db, acting, topology.router_id)
            conn.execute(delete(T).where(T.c.project_id == project_id))
            ignore_not_found(self.networks.delete, db, acting, topology.network_id)

    @staticmethod
    def _project(ctx: Context, project_id: str) -> str:
        """The project a topology is asked for: "None" is the caller's (some clients send it);
        another project's is for administrators."""
        if project_id == "None":
            project_id = ctx.project_id or ""
        if not ctx.is_admin and project_id != ctx.project_id:
            raise errors.NotAuthorized()
        return project_id

    @staticmethod
    def _acting(ctx: Context, project_id: str) -> Context:
        """Who makes and removes the topology's parts: the caller for the project, allowed to
        write (Neutron lets a project's readers ask for its topology too)."""
        return replace(ctx, project_id=project_id, roles=ctx.roles | {"member"})

    @staticmethod
    def _network_of(conn: Connection, project_id: str) -> str | None:
        return conn.execute(select(T.c.network_id).where(T.c.project_id == project_id)).scalar()

    def _build(self, db: Database, conn: Connection, ctx: Context, project_id: str) -> str:
        """Neutron's _build_topology; its errors as Neutron words them."""
        external_id = default_external_network(conn)
        acting = self._acting(ctx, project_id)
        private_network_failed = errors.AutoAllocationFailure(
            reason="Unable to provide project private network"
        )
        pools = default_pools(conn, ctx)
        if not pools:
            raise private_network_failed
        try:
            network = self.networks.create(
                db,
                acting,
                {"name": "auto_allocated_network", "project_id": project_id, "shared": False},
            )
            subnets = [
                self.subnets.create(
                    db,
                    acting,
                    {
                        "name": f"auto_allocated_subnet_v{pool.ip_version}",
                        "network_id": network["id"],
                        "project_id": project_id,
                        "ip_version": pool.ip_version,
                        "subnetpool_id": pool.id,
                    },
                )
                for pool in pools
            ]
        except (errors.SubnetAllocationError, errors.BadRequest, errors.NotFound):
            raise private_network_failed from None
        try:
            router = self.routers.create(
                db,
                acting,
                {
                    "name": "auto_allocated_router",
                    "external_gateway_info": {"network_id": external_id},
                    "project_id": project_id,
                    "admin_state_up": True,
                },
            )
            for subnet in subnets:
                self.routers.add_interface(db, acting, router["id"], subnet["id"], None)
        except errors.BadRequest:
            raise errors.AutoAllocationFailure(
                reason="Unable to provide external connectivity"
            ) from None
        row = {"project_id": project_id, "network_id": network["id"], "router_id": router["id"]}
        conn.execute(insert(T).values(**row))
        return str(network["id"])


def ignore_not_found(call: Any, *args: Any) -> None:
    """Part of a topology removed meanwhile is no error (Neutron's _cleanup)."""
    try:
        call(*args)
    except errors.NotFound:
        pass
