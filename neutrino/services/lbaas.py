"""Listeners, pools, members, health monitors, L7 policies and rules: the objects under a load
balancer.

They share one life (services/loadbalancers): a change takes the load
balancer's tree lock (409 while it is PENDING_*), marks the object pending and
publishes the tree to the agents; the agent's report settles it.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, Row, Select, Table, select, update

from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, lbaas_flavors, lbaas_tls
from neutrino.services.listing import Chunks, Listing, Source, stream_all
from neutrino.services.loadbalancers import (
    BASE_PLAIN,
    HM,
    L7P,
    L7R,
    LB,
    LI,
    LVS_PROTOCOLS,
    ME,
    NO_MONITOR,
    OFFLINE,
    PENDING_CREATE,
    PENDING_DELETE,
    PENDING_UPDATE,
    PO,
    STANDALONE,
    LoadBalancers,
    authorize,
    base_body,
    check_quota,
    current_amphorae,
    fetch,
    lock_tree,
    new_row,
    octavia_listing,
    publish,
    referenced,
    seen,
    statistics,
    update_object,
)
from neutrino.services.loadbalancers import render as render_loadbalancers
from neutrino.services.refusals import Conflict, Invalid, NotFound

# The pool protocols each listener protocol can hand its connections to (Octavia's
# VALID_LISTENER_POOL_PROTOCOL_MAP).
POOL_PROTOCOLS = {
    "TCP": ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"),
    "HTTP": ("HTTP", "PROXY", "PROXYV2"),
    "HTTPS": ("HTTPS", "PROXY", "PROXYV2", "TCP"),
    "TERMINATED_HTTPS": ("HTTP", "PROXY", "PROXYV2"),
    "UDP": ("UDP",),
    "SCTP": ("SCTP",),
    "PROMETHEUS": (),
}
# A PROMETHEUS listener answers itself and takes no pool (nor L7 policy).
CHILDLESS = "PROMETHEUS"
L7_PROTOCOLS = ("HTTP", "TERMINATED_HTTPS")
# The transport under each listener protocol: a port is taken once per transport.
L4_PROTOCOLS = {
    "HTTP": "TCP",
    "HTTPS": "TCP",
    "TERMINATED_HTTPS": "TCP",
    "TCP": "TCP",
    "UDP": "UDP",
    "SCTP": "SCTP",
    "PROMETHEUS": "TCP",
}
LVS_MONITORS = ("UDP-CONNECT", "SCTP", "TCP", "HTTP")
UDP_CONNECT_MIN_DELAY = 3  # seconds: Octavia's udp_connect_min_interval_health_monitor
HTTP_HEADERS = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto")
SSL_HEADERS = (
    "X-SSL-Client-Verify",
    "X-SSL-Client-Has-Cert",
    "X-SSL-Client-DN",
    "X-SSL-Client-CN",
    "X-SSL-Issuer",
    "X-SSL-Client-SHA1",
    "X-SSL-Client-Not-Before",
    "X-SSL-Client-Not-After",
)
HEADER_PROTOCOLS = ("HTTP", "TERMINATED_HTTPS")
HTTP_MONITORS = ("HTTP", "HTTPS")
# What each L7 policy action needs besides its rules (REJECT: nothing).
REDIRECT_FIELDS = {
    "REDIRECT_TO_POOL": "redirect_pool_id",
    "REDIRECT_TO_URL": "redirect_url",
    "REDIRECT_PREFIX": "redirect_prefix",
}
REDIRECT_CODE = 302
TLS_RULES = ("SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD")
KEYED_RULES = ("HEADER", "COOKIE")
DN_FIELD = re.compile(r"[a-zA-Z][A-Za-z0-9-]*")


def ids(values: list[str]) -> list[dict[str, str]]:
    return [{"id": v} for v in values]


def render_listeners(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    policies = children(conn, L7P, L7P.c.lb_listener_id, [r.id for r in rows], L7P.c.position)
    out = []
    for r in rows:
        body = base_body(r, tags)
        body.update(
            protocol=r.protocol,
            protocol_port=r.protocol_port,
            connection_limit=r.connection_limit,
            default_pool_id=r.default_pool_id,
            loadbalancers=ids([r.lb_loadbalancer_id]),
            timeout_client_data=r.timeout_client_data,
            timeout_member_connect=r.timeout_member_connect,
            timeout_member_data=r.timeout_member_data,
            timeout_tcp_inspect=r.timeout_tcp_inspect,
            l7policies=ids(policies[r.id]),
            insert_headers=r.insert_headers or {},
            default_tls_container_ref=r.default_tls_container_ref,
            sni_container_refs=r.sni_container_refs,
            allowed_cidrs=r.allowed_cidrs or None,
            client_ca_tls_container_ref=r.client_ca_tls_container_ref,
            client_authentication=r.client_authentication,
            client_crl_container_ref=r.client_crl_container_ref,
            tls_ciphers=r.tls_ciphers,
            tls_versions=r.tls_versions,
            alpn_protocols=r.alpn_protocols,
            hsts_max_age=r.hsts_max_age,
            hsts_include_subdomains=r.hsts_include_subdomains,
            hsts_preload=r.hsts_preload,
        )
        out.append(body)
    return out


def children(
    conn: Connection, table: Table, parent: Any, parent_ids: list[str], order: Any
) -> dict[str, list[str]]:
    """Parent id -> its children's ids in `order`."""
    found: dict[str, list[str]] = defaultdict(list)
    for chunk in common.chunked(parent_ids):
        for child_id, parent_id in conn.execute(
            select(table.c.id, parent).where(parent.in_(chunk)).order_by(order)
        ):
            found[parent_id].append(child_id)
    return found


def render_pools(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    pool_ids = [r.id for r in rows]
    tags = common.load_tags(conn, pool_ids)
    listeners, members = defaultdict(list), defaultdict(list)
    monitors: dict[str, str] = {}
    for chunk in common.chunked(pool_ids):
        for listener_id, pool_id in conn.execute(
            select(LI.c.id, LI.c.default_pool_id).where(LI.c.default_pool_id.in_(chunk))
        ):
            listeners[pool_id].append(listener_id)
        for member_id, pool_id in conn.execute(
            select(ME.c.id, ME.c.lb_pool_id)
            .where(ME.c.lb_pool_id.in_(chunk))
            .order_by(ME.c.created_at)
        ):
            members[pool_id].append(member_id)
        monitors.update(
            {
                p: h
                for h, p in conn.execute(
                    select(HM.c.id, HM.c.lb_pool_id).where(HM.c.lb_pool_id.in_(chunk))
                )
            }
        )
    out = []
    for r in rows:
        body = base_body(r, tags)
        body.update(
            protocol=r.protocol,
            lb_algorithm=r.lb_algorithm,
            session_persistence=r.session_persistence,
            loadbalancers=ids([r.lb_loadbalancer_id]),
            listeners=ids(sorted(listeners[r.id])),
            members=ids(members[r.id]),
            healthmonitor_id=monitors.get(r.id),
            tls_enabled=r.tls_enabled,
            tls_container_ref=r.tls_container_ref,
            ca_tls_container_ref=r.ca_tls_container_ref,
            crl_container_ref=r.crl_container_ref,
            tls_ciphers=r.tls_ciphers,
            tls_versions=r.tls_versions,
            alpn_protocols=r.alpn_protocols,
        )
        out.append(body)
    return out


def render_members(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    out = []
    for r in rows:
        body = base_body(r, tags)
        body.update(
            address=r.address,
            protocol_port=r.protocol_port,
            weight=r.weight,
            subnet_id=r.subnet_id,
            backup=r.backup,
            monitor_address=r.monitor_address,
            monitor_port=r.monitor_port,
            vnic_type="normal",
        )
        out.append(body)
    return out


def render_monitors(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    out = []
    for r in rows:
        body = base_body(r, tags)
        body.update(
            type=r.type,
            delay=r.delay,
            timeout=r.timeout,
            max_retries=r.max_retries,
            max_retries_down=r.max_retries_down,
            http_method=r.http_method,
            url_path=r.url_path,
            expected_codes=r.expected_codes,
            pools=ids([r.lb_pool_id]),
            http_version=r.http_version,
            domain_name=r.domain_name,
        )
        out.append(body)
    return out


def render_l7policies(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    rules = children(conn, L7R, L7R.c.lb_l7policy_id, [r.id for r in rows], L7R.c.created_at)
    out = []
    for r in rows:
        body = base_body(r, tags)
        body.update(
            listener_id=r.lb_listener_id,
            action=r.action,
            position=r.position,
            redirect_pool_id=r.redirect_pool_id,
            redirect_url=r.redirect_url,
            redirect_prefix=r.redirect_prefix,
            redirect_http_code=r.redirect_http_code,
            rules=ids(rules[r.id]),
        )
        out.append(body)
    return out


def render_l7rules(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    out = []
    for r in rows:
        body = base_body(r, tags)
        del body["name"], body["description"]  # rules have neither
        body.update(
            type=r.type, compare_type=r.compare_type, key=r.key, value=r.value, invert=r.invert
        )
        out.append(body)
    return out


class Family:
    """What differs between the kinds: table, names, how to find the load balancer, rules."""

    table: Table
    kind: str  # as Octavia's messages name it
    resource: str  # the change feed's type and the quota's name
    # What the kind's bodies give as stored, in their order: fields= of only these reads them.
    plain: tuple[str, ...] = BASE_PLAIN

    @property
    def listing(self) -> Listing:
        return octavia_listing(self.table, self.plain)

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def lb_of(self, conn: Connection, row: Row) -> str:
        raise NotImplementedError

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        """Check a create request and fill its parent columns; returns the load balancer's id.

        `links` collects what must point at the new object once it exists (see `created`).
        """
        raise NotImplementedError

    def check_update(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        """Reject an update the family's rules forbid."""

    def check_references(self, ctx: Context, values: dict[str, Any], row: Row | None) -> None:
        """Reject references the caller may not follow (certificates in the key manager), on
        create (`row` None) and update."""

    def updated(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        """What follows from an update (an L7 policy's new position)."""

    def check_delete(self, conn: Connection, row: Row) -> None:
        """Reject a delete the family's rules forbid."""

    def deleting(self, conn: Connection, row: Row) -> None:
        """What follows from a delete (the remaining L7 policies' positions)."""

    def source(self, ctx: Context, parent: str | None) -> Source:
        return Source(self.listing, seen(ctx, self.table), self.render)

    def fetch(self, conn: Connection, ctx: Context, object_id: str, parent: str | None) -> Row:
        return fetch(conn, ctx, self.table, self.kind, object_id)

    def descendants(self, conn: Connection, row: Row) -> list[tuple[Table, Any]]:
        return []

    # -- the API's verbs --------------------------------------------------------------------
    def stream(self, db: Database, ctx: Context, parent: str | None, fields: list[str]) -> Chunks:
        """Every object the caller sees (under `parent`), the oldest first (then by id, as
        Octavia's default sort keys), in chunks read as they are consumed; `fields`, when only
        stored attributes, reads their columns alone."""
        plain = self.listing.plain_fields(fields)
        order = [self.table.c.created_at, self.table.c.id]
        return stream_all(db, self.source(ctx, parent), order, plain)

    def get(
        self, db: Database, ctx: Context, object_id: str, parent: str | None = None
    ) -> dict[str, Any]:
        with db.read() as conn:
            return self.render(conn, [self.fetch(conn, ctx, object_id, parent)])[0]

    def create(
        self, db: Database, ctx: Context, values: dict[str, Any], parent: str | None = None
    ) -> dict[str, Any]:
        with db.write() as conn:
            object_id, lb = self.add(conn, ctx, values, parent)
            publish(conn, lb)
            return self.render(conn, [self.fetch(conn, ctx, object_id, parent)])[0]

    def add(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        building: Row | None = None,
        counted: bool = False,
    ) -> tuple[str, Row]:
        """Insert one object; its id and its load balancer. `building`: the load balancer that the
        same request creates or already holds (so there is no earlier change to wait for);
        `counted`: the request has checked the quota for all it adds."""
        tags = values.pop("tags", [])
        links: dict[str, str] = {}
        lb_id = self.prepare(conn, ctx, values, parent, links)
        lb = building if building is not None else lock_tree(conn, lb_id)
        authorize(ctx, lb.project_id, write=True)
        self.check_references(ctx, values, None)
        row = {**new_row(ctx, values, self.initial_operating(conn, values)), **values}
        row["project_id"] = lb.project_id
        if not counted:
            check_quota(conn, lb.project_id, self.resource)
        common.insert_resource(conn, self.table, self.resource, row)
        self.created(conn, row, links)
        if tags:
            common.set_tags(
                conn,
                self.table,
                self.resource,
                self.fetch(conn, ctx, row["id"], parent),
                tags,
                None,
            )
        return row["id"], lb

    def initial_operating(self, conn: Connection, values: dict[str, Any]) -> str:
        return OFFLINE

    def created(self, conn: Connection, row: dict[str, Any], links: dict[str, str]) -> None:
        """Point `links` at the new object (a listener's default pool)."""

    def update(
        self,
        db: Database,
        ctx: Context,
        object_id: str,
        values: dict[str, Any],
        parent: str | None = None,
    ) -> dict[str, Any]:
        with db.write() as conn:
            row = self.fetch(conn, ctx, object_id, parent)
            authorize(ctx, row.project_id, write=True)
            lb = lock_tree(conn, self.lb_of(conn, row))
            self.check_update(conn, row, values)
            self.check_references(ctx, values, row)
            update_object(conn, self.table, self.resource, row, values)
            self.updated(conn, row, values)
            conn.execute(
                update(self.table)
                .where(self.table.c.id == object_id)
                .values(provisioning_status=PENDING_UPDATE)
            )
            publish(conn, lb)
            return self.render(conn, [self.fetch(conn, ctx, object_id, parent)])[0]

    def delete(self, db: Database, ctx: Context, object_id: str, parent: str | None = None) -> None:
        with db.write() as conn:
            row = self.fetch(conn, ctx, object_id, parent)
            authorize(ctx, row.project_id, write=True)
            lb = lock_tree(conn, self.lb_of(conn, row))
            self.check_delete(conn, row)
            for table, where in [
                (self.table, self.table.c.id == object_id),
                *self.descendants(conn, row),
            ]:
                conn.execute(update(table).where(where).values(provisioning_status=PENDING_DELETE))
            self.deleting(conn, row)
            publish(conn, lb)


class Listeners(Family):
    table, kind, resource = LI, "Listener", "listener"

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        return render_listeners(conn, rows)

    def lb_of(self, conn: Connection, row: Row) -> str:
        return row.lb_loadbalancer_id

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        lb = fetch(conn, ctx, LB, "Load Balancer", values.pop("loadbalancer_id"), write=True)
        protocol = values["protocol"]
        lbaas_tls.prepare_listener(values)
        if values.get("default_pool_id"):
            self.check_pool(conn, lb.id, values["default_pool_id"], protocol)
        if values.get("insert_headers"):
            self._check_headers(values["insert_headers"].keys(), protocol)
        self._check_port(conn, lb.id, protocol, values["protocol_port"])
        self._check_cidrs(lb, values)
        values["lb_loadbalancer_id"] = lb.id
        return lb.id

    def check_references(self, ctx: Context, values: dict[str, Any], row: Row | None) -> None:
        lbaas_tls.check_references(
            ctx, values, row, "client_ca_tls_container_ref", "client_crl_container_ref"
        )

    def check_update(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        lbaas_tls.check_listener_update(row, values)
        if values.get("insert_headers"):
            self._check_headers(list(values["insert_headers"].keys()), row.protocol)
        self._check_cidrs(
            conn.execute(select(LB).where(LB.c.id == row.lb_loadbalancer_id)).one(), values
        )
        if values.get("default_pool_id"):
            self.check_pool(conn, row.lb_loadbalancer_id, values["default_pool_id"], row.protocol)

    @staticmethod
    def _check_headers(names: Any, protocol: str) -> None:
        """Octavia's rules, and its messages (which show `names` as given: the keys of the
        body's object on create, a list on update)."""
        if protocol not in HEADER_PROTOCOLS:
            raise Invalid(
                f"insert-headers is not a valid option for a {protocol} protocol listener."
            )
        if set(names) - set(HTTP_HEADERS + SSL_HEADERS):
            raise Invalid(f"{names} is not a valid option for insert_headers")
        ssl = [name for name in names if name in SSL_HEADERS]
        if protocol != "TERMINATED_HTTPS" and ssl:
            raise Invalid(f"{ssl} is not a valid option for {protocol} protocol listener.")

    @staticmethod
    def _check_cidrs(lb: Row, values: dict[str, Any]) -> None:
        """Each allowed CIDR of the VIP's IP version; stored once each, none as null."""
        if "allowed_cidrs" not in values:
            return
        cidrs = list(dict.fromkeys(values["allowed_cidrs"] or []))
        vip_version = ipaddress.ip_address(lb.vip_address).version
        for cidr in cidrs:
            if ipaddress.ip_network(cidr).version != vip_version:
                raise Invalid(
                    f"Validation failure: CIDR {cidr} IP version incompatible with all VIPs "
                    f"{[lb.vip_address]} IP version."
                )
        values["allowed_cidrs"] = cidrs or None

    def descendants(self, conn: Connection, row: Row) -> list[tuple[Table, Any]]:
        policies = select(L7P.c.id).where(L7P.c.lb_listener_id == row.id)
        return [(L7P, L7P.c.lb_listener_id == row.id), (L7R, L7R.c.lb_l7policy_id.in_(policies))]

    def statistics(self, db: Database, ctx: Context, listener_id: str) -> dict[str, Any]:
        """GET /listeners/{id}/stats."""
        with db.read() as conn:
            return {"stats": statistics(conn, [self.fetch(conn, ctx, listener_id, None).id])}

    @staticmethod
    def _check_port(conn: Connection, lb_id: str, protocol: str, port: int) -> None:
        """A port is taken per transport: UDP, TCP and SCTP listeners may share one."""
        same_transport = [p for p, l4 in L4_PROTOCOLS.items() if l4 == L4_PROTOCOLS[protocol]]
        taken = conn.execute(
            select(LI.c.protocol).where(
                LI.c.lb_loadbalancer_id == lb_id,
                LI.c.protocol_port == port,
                LI.c.protocol.in_(same_transport),
            )
        ).first()
        if taken:
            raise Conflict(
                f"Another Listener on this Load Balancer is already using protocol "
                f"{taken.protocol} and protocol_port {port}"
            )

    @staticmethod
    def check_pool(conn: Connection, lb_id: str, pool_id: str, protocol: str) -> None:
        if protocol == CHILDLESS:
            raise Invalid(f"Protocol {protocol} listeners cannot have child objects.")
        pool = conn.execute(
            select(PO).where(PO.c.id == pool_id, PO.c.lb_loadbalancer_id == lb_id)
        ).first()
        if pool is None:
            raise NotFound(f"Pool {pool_id} not found.")
        if pool.protocol not in POOL_PROTOCOLS[protocol]:
            raise Invalid(
                f"Validation failure: The pool protocol '{pool.protocol}' is invalid while "
                f"the listener protocol is '{protocol}'."
            )


class Pools(Family):
    table, kind, resource = PO, "Pool", "pool"

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        return render_pools(conn, rows)

    def lb_of(self, conn: Connection, row: Row) -> str:
        return row.lb_loadbalancer_id

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        listener_id, lb_id = values.pop("listener_id", None), values.pop("loadbalancer_id", None)
        if not listener_id and not lb_id:
            raise Invalid("Validation failure: loadbalancer_id or listener_id must be specified.")
        if listener_id:
            listener = fetch(conn, ctx, LI, "Listener", listener_id, write=True)
            if lb_id and lb_id != listener.lb_loadbalancer_id:
                raise Invalid("Validation failure: The listener is not on that load balancer.")
            if listener.protocol == CHILDLESS:
                raise Invalid(f"Protocol {CHILDLESS} listeners cannot have child objects.")
            if listener.default_pool_id:
                raise Conflict("This listener already has a default pool")
            if values["protocol"] not in POOL_PROTOCOLS[listener.protocol]:
                raise Invalid(
                    f"Validation failure: The pool protocol '{values['protocol']}' is invalid "
                    "while "
                    f"the listener protocol is '{listener.protocol}'."
                )
            lb_id = listener.lb_loadbalancer_id
            links["listener"] = listener.id
        values["lb_loadbalancer_id"] = fetch(conn, ctx, LB, "Load Balancer", lb_id, write=True).id
        self._check_persistence(values["protocol"], values.get("session_persistence"), True)
        lbaas_tls.prepare_pool(values)
        return values["lb_loadbalancer_id"]

    def check_update(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        self._check_persistence(row.protocol, values.get("session_persistence"), False)
        lbaas_tls.check_pool_update(row, values)

    def check_references(self, ctx: Context, values: dict[str, Any], row: Row | None) -> None:
        lbaas_tls.check_references(ctx, values, row, "ca_tls_container_ref", "crl_container_ref")

    @staticmethod
    def _check_persistence(protocol: str, persistence: dict[str, Any] | None, create: bool) -> None:
        """Octavia's rules: UDP and SCTP pools persist by source IP only, for
        `persistence_timeout` seconds per `persistence_granularity` (a netmask); those two
        fields are theirs alone."""
        if not persistence:
            return
        kind = persistence.get("type")
        if protocol not in LVS_PROTOCOLS:
            if persistence.get("persistence_timeout") or persistence.get("persistence_granularity"):
                raise Invalid(
                    "Validation failure: persistence_timeout and persistence_granularity is "
                    f"only for {'UDP and SCTP' if create else 'UDP'} protocol pools."
                )
            return
        if kind == "SOURCE_IP" and persistence.get("cookie_name"):
            raise Invalid(
                "Validation failure: session_persistence SOURCE_IP type for UDP and SCTP "
                "protocols only accepts: type, persistence_timeout, persistence_granularity."
            )
        if persistence.get("cookie_name"):
            raise Invalid("Validation failure: Cookie names are not supported for UDP/SCTP pools.")
        if kind in ("HTTP_COOKIE", "APP_COOKIE"):
            raise Invalid(
                f"Validation failure: Session persistence of type {kind} is not supported for "
                "UDP/SCTP protocol pools."
            )

    def created(self, conn: Connection, row: dict[str, Any], links: dict[str, str]) -> None:
        if "listener" in links:
            conn.execute(
                update(LI).where(LI.c.id == links["listener"]).values(default_pool_id=row["id"])
            )

    def descendants(self, conn: Connection, row: Row) -> list[tuple[Table, Any]]:
        return [(ME, ME.c.lb_pool_id == row.id), (HM, HM.c.lb_pool_id == row.id)]

    def check_delete(self, conn: Connection, row: Row) -> None:
        policy = conn.execute(
            select(L7P.c.id).where(
                L7P.c.redirect_pool_id == row.id, L7P.c.provisioning_status != PENDING_DELETE
            )
        ).first()
        if policy:
            raise Conflict(f"Pool {row.id} is in use by L7 policy {policy.id}")


class Nested(Family):
    """A kind that lives under a parent in its URL (members under a pool, rules under an L7
    policy): `parent` is the parent's id, and only that parent's children are found."""

    parent_table: Table
    parent_kind: str
    parent_column: str  # the child's column naming its parent

    def parent(self, conn: Connection, ctx: Context, parent_id: str | None) -> Row:
        return fetch(conn, ctx, self.parent_table, self.parent_kind, parent_id or "")

    def source(self, ctx: Context, parent: str | None) -> Source:
        return Source(
            self.listing,
            self.table.c[self.parent_column] == parent,
            self.render,
            parent=lambda conn: self.parent(conn, ctx, parent),
        )

    def fetch(self, conn: Connection, ctx: Context, object_id: str, parent: str | None) -> Row:
        owner = self.parent(conn, ctx, parent)
        row = conn.execute(
            select(self.table).where(
                self.table.c.id == object_id, self.table.c[self.parent_column] == owner.id
            )
        ).first()
        if row is None:
            raise NotFound(f"{self.kind} {object_id} not found.")
        return row


class Members(Nested):
    table, kind, resource = ME, "Member", "member"
    parent_table, parent_kind, parent_column = PO, "Pool", "lb_pool_id"
    plain = (
        *BASE_PLAIN,
        "address",
        "protocol_port",
        "weight",
        "subnet_id",
        "backup",
        "monitor_address",
        "monitor_port",
    )

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        return render_members(conn, rows)

    def lb_of(self, conn: Connection, row: Row) -> str:
        return conn.execute(
            select(PO.c.lb_loadbalancer_id).where(PO.c.id == row.lb_pool_id)
        ).scalar_one()

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        pool = self.parent(conn, ctx, parent)
        if values.get("subnet_id"):
            try:
                referenced(conn, ctx, "Subnet", values["subnet_id"])
            except Invalid as missing:  # Octavia's NotFound here, where a VIP's is a 400
                raise NotFound(missing.message) from None
        taken = conn.execute(
            select(ME.c.id).where(
                ME.c.lb_pool_id == pool.id,
                ME.c.address == values["address"],
                ME.c.protocol_port == values["protocol_port"],
            )
        ).first()
        if taken:
            raise Conflict(
                f"Another member on this pool is already using ip {values['address']} "
                f"on protocol_port {values['protocol_port']}"
            )
        if pool.protocol in LVS_PROTOCOLS:
            self._check_family(conn, pool, values["address"])
        values["lb_pool_id"] = pool.id
        return pool.lb_loadbalancer_id

    @staticmethod
    def _check_family(conn: Connection, pool: Row, address: str) -> None:
        """The amphora's LVS does not translate between IPv4 and IPv6: a UDP or SCTP pool's
        members are of its listeners' VIP's version."""
        for vip, provider in conn.execute(
            select(LB.c.vip_address, LB.c.provider)
            .join(LI, LI.c.lb_loadbalancer_id == LB.c.id)
            .where(LI.c.default_pool_id == pool.id)
        ):
            if (":" in vip) == (":" in address):
                continue
            raise lbaas_flavors.UnsupportedOption(
                provider,
                "This provider doesn't support mixing IPv4 and IPv6 addresses for its VIP and "
                f"members in {pool.protocol} load balancers.",
            )

    def replace_all(
        self,
        db: Database,
        ctx: Context,
        pool_id: str,
        members: list[dict[str, Any]],
        additive_only: bool,
    ) -> None:
        """PUT /pools/{id}/members (Octavia's batch update): the members given, known by address
        and port, are created or updated; the others are deleted (kept with `additive_only`).
        One change of the load balancer; nothing at all when nothing differs."""
        with db.write() as conn:
            pool = self.parent(conn, ctx, pool_id)
            authorize(ctx, pool.project_id, write=True)
            lb = lock_tree(conn, pool.lb_loadbalancer_id)
            old = {
                (m.address, m.protocol_port): m
                for m in conn.execute(
                    select(ME).where(
                        ME.c.lb_pool_id == pool.id, ME.c.provisioning_status != PENDING_DELETE
                    )
                )
            }
            wanted = [(m["address"], m["protocol_port"]) for m in members]
            new = [m for m in members if (m["address"], m["protocol_port"]) not in old]
            updated = [m for m in members if (m["address"], m["protocol_port"]) in old]
            if len({(m["address"], m["protocol_port"]) for m in updated}) < len(updated):
                raise Invalid(
                    "Validation failure: Member must be updated only once in the same request."
                )
            deleted = [] if additive_only else [m for k, m in old.items() if k not in wanted]
            if not (members or old):
                return
            if len(new) > len(deleted):
                check_quota(conn, pool.project_id, self.resource, len(new) - len(deleted))
            for values in new:
                self.add(conn, ctx, values, pool.id, lb, counted=True)
            for values in updated:
                row = old[(values.pop("address"), values.pop("protocol_port"))]
                values.pop("project_id", None)
                update_object(conn, ME, self.resource, row, values)
                conn.execute(
                    update(ME).where(ME.c.id == row.id).values(provisioning_status=PENDING_UPDATE)
                )
            for row in deleted:
                conn.execute(
                    update(ME).where(ME.c.id == row.id).values(provisioning_status=PENDING_DELETE)
                )
            publish(conn, lb)

    def initial_operating(self, conn: Connection, values: dict[str, Any]) -> str:
        monitored = conn.execute(
            select(HM.c.id).where(HM.c.lb_pool_id == values["lb_pool_id"])
        ).first()
        return OFFLINE if monitored else NO_MONITOR


class HealthMonitors(Family):
    table, kind, resource = HM, "Health Monitor", "health_monitor"

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        return render_monitors(conn, rows)

    def lb_of(self, conn: Connection, row: Row) -> str:
        return conn.execute(
            select(PO.c.lb_loadbalancer_id).where(PO.c.id == row.lb_pool_id)
        ).scalar_one()

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        pool_id = values.pop("pool_id")
        pool = fetch(conn, ctx, PO, "Pool", pool_id, write=True)
        if conn.execute(select(HM.c.id).where(HM.c.lb_pool_id == pool.id)).first():
            raise Conflict("This pool already has a health monitor")
        self._check_kind(pool.protocol, values["type"], values["delay"])
        if values["type"] in HTTP_MONITORS:
            values.setdefault("http_method", "GET")
            values.setdefault("url_path", "/")
            values.setdefault("expected_codes", "200")
        elif any(values.get(k) for k in ("http_method", "url_path", "expected_codes")):
            raise Invalid(
                f"Validation failure: http_method, url_path and expected_codes are not valid "
                f"for {values['type']} health monitors."
            )
        values.setdefault("max_retries_down", 3)
        self._check_host_header(values.get("http_version"), values.get("domain_name"))
        values["lb_pool_id"] = pool.id
        return pool.lb_loadbalancer_id

    def check_update(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        protocol = conn.execute(select(PO.c.protocol).where(PO.c.id == row.lb_pool_id)).scalar()
        if protocol in LVS_PROTOCOLS:
            self._check_kind(protocol, row.type, values.get("delay"))
        if row.type not in HTTP_MONITORS and any(
            values.get(k) for k in ("http_method", "url_path", "expected_codes")
        ):
            raise Invalid(
                f"Validation failure: http_method, url_path and expected_codes are not valid "
                f"for {row.type} health monitors."
            )
        version = values.get("http_version") or row.http_version
        self._check_host_header(version, values.get("domain_name"))
        if version and row.domain_name:
            self._check_host_header(version, row.domain_name)

    @staticmethod
    def _check_host_header(version: float | None, domain: str | None) -> None:
        """A domain name goes in an HTTP/1.1 check's Host header, as Octavia checks it."""
        if domain and not version:
            raise Invalid(
                "Validation failure: 'http_version' must be specified when 'domain_name' "
                "is provided."
            )
        if domain and version is not None and version < 1.1:
            raise Invalid(
                f"http_version {version} is not a valid option for health monitors HTTP 1.1 "
                "domain name health check"
            )

    @staticmethod
    def _check_kind(protocol: str, kind: str, delay: int | None) -> None:
        """Octavia's monitor types per pool protocol, and UDP-CONNECT's shortest delay."""
        if protocol not in LVS_PROTOCOLS:
            if kind in ("UDP-CONNECT", "SCTP"):
                raise Invalid(
                    f"Validation failure: The {kind} type is only supported for pools of type "
                    "UDP/SCTP."
                )
            return
        if kind not in LVS_MONITORS:
            raise Invalid(
                f"Validation failure: The associated pool protocol is {protocol}, so only a "
                f"{'/'.join(LVS_MONITORS)} health monitor is supported."
            )
        if kind == "UDP-CONNECT" and delay is not None and delay < UDP_CONNECT_MIN_DELAY:
            raise Invalid(
                f"Validation failure: The request delay value {delay} should be larger than "
                f"{UDP_CONNECT_MIN_DELAY} for UDP-CONNECT health monitor type."
            )


class L7Policies(Family):
    """A listener's ordered policies. Positions run 1..n without gaps: a policy created or moved
    to a taken position pushes the others down; one beyond the end is appended."""

    table, kind, resource = L7P, "L7 Policy", "l7policy"

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        return render_l7policies(conn, rows)

    def lb_of(self, conn: Connection, row: Row) -> str:
        return conn.execute(
            select(LI.c.lb_loadbalancer_id).where(LI.c.id == row.lb_listener_id)
        ).scalar_one()

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        listener_id = values.pop("listener_id")
        listener = fetch(conn, ctx, LI, "Listener", listener_id, write=True)
        if listener.protocol == CHILDLESS:
            raise Invalid(f"Protocol {CHILDLESS} listeners cannot have child objects.")
        self._check_action(conn, listener, values, None)
        if listener.protocol not in L7_PROTOCOLS:  # the provider's word, after the API's checks
            provider = conn.execute(
                select(LB.c.provider).where(LB.c.id == listener.lb_loadbalancer_id)
            ).scalar_one()
            raise lbaas_flavors.ProviderUnsupported(
                provider, f"{listener.protocol} protocol listeners do not support L7 policies"
            )
        values["lb_listener_id"] = listener.id
        values.setdefault("position", 2**31 - 1)  # the end, until `created` numbers it
        return listener.lb_loadbalancer_id

    def created(self, conn: Connection, row: dict[str, Any], links: dict[str, str]) -> None:
        self._number(conn, row["lb_listener_id"], row["id"], row["position"])

    def check_update(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        self._check_action(
            conn, conn.execute(select(LI).where(LI.c.id == row.lb_listener_id)).one(), values, row
        )

    def updated(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        if "position" in values:
            self._number(conn, row.lb_listener_id, row.id, values["position"])

    def deleting(self, conn: Connection, row: Row) -> None:
        self._number(conn, row.lb_listener_id)

    def descendants(self, conn: Connection, row: Row) -> list[tuple[Table, Any]]:
        return [(L7R, L7R.c.lb_l7policy_id == row.id)]

    @staticmethod
    def _check_action(
        conn: Connection, listener: Row, values: dict[str, Any], row: Row | None
    ) -> None:
        """The action's own field is required; the other actions' fields are cleared."""

        def merged(key: str) -> Any:
            return values[key] if key in values else getattr(row, key, None)

        action = merged("action")
        needed = REDIRECT_FIELDS.get(action)
        if needed and not merged(needed):
            raise Invalid(f"Validation failure: An L7 policy with action {action} needs {needed}.")
        if action == "REDIRECT_TO_POOL":
            Listeners.check_pool(
                conn, listener.lb_loadbalancer_id, merged("redirect_pool_id"), listener.protocol
            )
        for field in REDIRECT_FIELDS.values():
            if field != needed:
                values[field] = None
        redirects = action in ("REDIRECT_TO_URL", "REDIRECT_PREFIX")
        values["redirect_http_code"] = (
            (merged("redirect_http_code") or REDIRECT_CODE) if redirects else None
        )

    @staticmethod
    def _number(
        conn: Connection, listener_id: str, moving: str | None = None, wanted: int = 0
    ) -> None:
        """Number the listener's live policies 1..n, with `moving` at position `wanted`."""
        rows = conn.execute(
            select(L7P.c.id, L7P.c.position)
            .where(L7P.c.lb_listener_id == listener_id, L7P.c.provisioning_status != PENDING_DELETE)
            .order_by(L7P.c.position, L7P.c.created_at)
        ).all()
        order = [r.id for r in rows if r.id != moving]
        if moving is not None:
            order.insert(min(wanted, len(order) + 1) - 1, moving)
        current = {r.id: r.position for r in rows}
        for position, policy_id in enumerate(order, 1):
            if current[policy_id] != position:
                conn.execute(update(L7P).where(L7P.c.id == policy_id).values(position=position))


class L7Rules(Nested):
    """A policy's rules. The client certificate's rules (TLS_RULES) are Octavia's: whether the
    client sent one, the result of its verification, a field of its subject."""

    table, kind, resource = L7R, "L7 Rule", "l7rule"
    parent_table, parent_kind, parent_column = L7P, "L7 Policy", "lb_l7policy_id"
    plain = (
        *(attr for attr in BASE_PLAIN if attr not in ("name", "description")),
        "type",
        "compare_type",
        "key",
        "value",
        "invert",
    )

    def render(self, conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
        return render_l7rules(conn, rows)

    def lb_of(self, conn: Connection, row: Row) -> str:
        return conn.execute(
            select(LI.c.lb_loadbalancer_id)
            .join(L7P, L7P.c.lb_listener_id == LI.c.id)
            .where(L7P.c.id == row.lb_l7policy_id)
        ).scalar_one()

    def prepare(
        self,
        conn: Connection,
        ctx: Context,
        values: dict[str, Any],
        parent: str | None,
        links: dict[str, str],
    ) -> str:
        policy = self.parent(conn, ctx, parent)
        self._check_rule(values, None)
        values["lb_l7policy_id"] = policy.id
        return L7Policies().lb_of(conn, policy)

    def check_update(self, conn: Connection, row: Row, values: dict[str, Any]) -> None:
        self._check_rule(values, row)

    @staticmethod
    def _check_tls_rule(kind: str, key: str | None, value: str, compare: str) -> None:
        """Octavia's validate_l7rule_ssl_types, in its words."""
        wrong = None
        if kind == "SSL_DN_FIELD":
            if not key or not value:
                wrong = f"L7rule type {kind} needs to specify a key and a value."
            elif not DN_FIELD.fullmatch(key):
                wrong = "Invalid L7rule distinguished name field."
        elif key:
            wrong = f'L7rule type {kind} does not use the "key" field.'
        elif kind == "SSL_CONN_HAS_CERT" and value.lower() != "true":
            wrong = f"L7rule value {value} is not a boolean True string."
        elif kind == "SSL_VERIFY_RESULT" and not value.isdigit():
            wrong = f"L7rule type {kind} needs a int value, which is >= 0"
        elif compare != "EQUAL_TO":
            wrong = f"L7rule type {kind} only supports the EQUAL_TO compare type."
        if wrong:
            raise Invalid(f"Error parsing L7Rule: Invalid L7 Rule: {wrong}")

    @staticmethod
    def _check_rule(values: dict[str, Any], row: Row | None) -> None:
        def merged(key: str) -> Any:
            return values[key] if key in values else getattr(row, key, None)

        kind, compare, value = merged("type"), merged("compare_type"), merged("value")
        if kind in TLS_RULES:
            L7Rules._check_tls_rule(kind, merged("key"), value, compare)
        if kind in KEYED_RULES and not merged("key"):
            raise Invalid(f"Validation failure: A {kind} rule needs a key.")
        if kind not in KEYED_RULES and kind != "SSL_DN_FIELD":
            values["key"] = None
        if kind == "FILE_TYPE" and compare not in ("EQUAL_TO", "REGEX"):
            raise Invalid("Validation failure: FILE_TYPE rules compare with EQUAL_TO or REGEX.")
        if compare == "REGEX":
            try:
                re.compile(value)
            except re.error:
                raise Invalid(
                    f"Validation failure: '{value}' is not a valid regular expression."
                ) from None


def create_populated(
    db: Database,
    ctx: Context,
    values: dict[str, Any],
    listeners: list[dict[str, Any]],
    pools: list[dict[str, Any]],
) -> dict[str, Any]:
    """POST /loadbalancers with its tree (Octavia's fully populated create): listeners with their
    default pool and L7 policies (with rules), pools with members and health monitor. A listener's
    default pool or a policy's redirect pool is given in place or by the name of one of `pools`.
    It is one transaction and one change for the agents; everything is PENDING_CREATE until the
    agent runs it, and the answer is the whole tree."""
    with db.write() as conn:
        lb = LoadBalancers().add(conn, ctx, values)
        named = {pool.get("name"): _add_pool(conn, ctx, lb, pool) for pool in pools}

        def pool_for(given: dict[str, Any], **link: str) -> str:
            if set(given) != {"name"}:
                return _add_pool(conn, ctx, lb, {**given, **link})
            if given["name"] not in named:
                raise Invalid(
                    f"Validation failure: Pool '{given['name']}' "
                    "is not among the load balancer's pools."
                )
            return named[given["name"]]

        for listener in listeners:
            default, policies = listener.pop("default_pool", None), listener.pop("l7policies", [])
            if default is not None and set(default) == {"name"}:
                listener["default_pool_id"] = pool_for(default)
            listener_id, _ = Listeners().add(
                conn, ctx, {**listener, "loadbalancer_id": lb.id}, None, lb
            )
            if default is not None and set(default) != {"name"}:
                pool_for(default, listener_id=listener_id)
            for policy in policies:
                redirect, rules = policy.pop("redirect_pool", None), policy.pop("rules", [])
                if redirect is not None:
                    policy["redirect_pool_id"] = pool_for(redirect)
                policy_id, _ = L7Policies().add(
                    conn, ctx, {**policy, "listener_id": listener_id}, None, lb
                )
                for rule in rules:
                    L7Rules().add(conn, ctx, rule, policy_id, lb)
        publish(conn, lb, PENDING_CREATE)
        tree = render_trees(conn, [conn.execute(select(LB).where(LB.c.id == lb.id)).one()])[0]
        del tree["revision"]
        return tree


def _add_pool(conn: Connection, ctx: Context, lb: Row, pool: dict[str, Any]) -> str:
    members, monitor = pool.pop("members", []), pool.pop("healthmonitor", None)
    pool_id, _ = Pools().add(conn, ctx, {**pool, "loadbalancer_id": lb.id}, None, lb)
    for member in members:
        Members().add(conn, ctx, member, pool_id, lb)
    if monitor is not None:
        HealthMonitors().add(conn, ctx, {**monitor, "pool_id": pool_id}, None, lb)
    return pool_id


def render_for_agents(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    """What the change feed carries to agents: the trees, with the PEM material that their TLS
    listeners and pools name."""
    trees = render_trees(conn, rows)
    for tree in trees:
        lbaas_tls.attach_pem(tree)
    return trees


def render_trees(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    """Each load balancer with everything to configure in it (objects being deleted left
    out)."""
    out = []
    for body, row in zip(render_loadbalancers(conn, rows), rows, strict=True):
        pool_rows = live(conn, select(PO).where(PO.c.lb_loadbalancer_id == row.id), PO)
        pool_ids = [p.id for p in pool_rows]
        member_rows = live(conn, select(ME).where(ME.c.lb_pool_id.in_(pool_ids)), ME)
        monitor_rows = live(conn, select(HM).where(HM.c.lb_pool_id.in_(pool_ids)), HM)
        members: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for member_row, member in zip(member_rows, render_members(conn, member_rows), strict=True):
            members[member_row.lb_pool_id].append(member)
        monitors = {
            m.lb_pool_id: h
            for m, h in zip(monitor_rows, render_monitors(conn, monitor_rows), strict=True)
        }
        pools = render_pools(conn, pool_rows)
        for pool in pools:
            pool.update(members=members[pool["id"]], healthmonitor=monitors.get(pool["id"]))
        listener_rows = live(conn, select(LI).where(LI.c.lb_loadbalancer_id == row.id), LI)
        listeners = render_listeners(conn, listener_rows)
        policy_rows = live(
            conn, select(L7P).where(L7P.c.lb_listener_id.in_([r.id for r in listener_rows])), L7P
        )
        rule_rows = live(
            conn, select(L7R).where(L7R.c.lb_l7policy_id.in_([p.id for p in policy_rows])), L7R
        )
        rules: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rule_row, rule in zip(rule_rows, render_l7rules(conn, rule_rows), strict=True):
            rules[rule_row.lb_l7policy_id].append(rule)
        policies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for policy in render_l7policies(conn, policy_rows):
            policies[policy["listener_id"]].append({**policy, "rules": rules[policy["id"]]})
        for listener in listeners:
            listener["l7policies"] = sorted(policies[listener["id"]], key=lambda p: p["position"])
        amphorae = current_amphorae(conn, row.id)
        A = schema.ip_allocations
        vrrp_ips = dict(
            conn.execute(
                select(A.c.port_id, A.c.ip_address).where(
                    A.c.port_id.in_([a.vrrp_port_id for a in amphorae if a.vrrp_port_id]),
                    A.c.subnet_id == row.vip_subnet_id,
                )
            ).all()
        )
        body.update(
            revision=row.feed_revision,
            amphora_id=next((a.id for a in amphorae if a.role == STANDALONE), None),
            amphorae=[
                {
                    "id": a.id,
                    "role": a.role,
                    "vrrp_port_id": a.vrrp_port_id,
                    "vrrp_ip": vrrp_ips.get(a.vrrp_port_id),
                }
                for a in amphorae
                if a.vrrp_port_id is not None
            ],
            listeners=listeners,
            pools=pools,
            flavor_data=lbaas_flavors.flavors.data(conn, row.flavor_id),
            availability_zone_data=lbaas_flavors.availability_zones.data(
                conn, row.availability_zone
            ),
        )
        out.append(body)
    return out


def live(conn: Connection, query: Select[Any], table: Table) -> list[Row]:
    return list(
        conn.execute(
            query.where(table.c.provisioning_status != PENDING_DELETE).order_by(table.c.created_at)
        )
    )
