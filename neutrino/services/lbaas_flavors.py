"""Octavia's flavors and availability zones, and what they change here.

Administrators write profiles: a provider's data as a JSON text
(`flavor_data`, `availability_zone_data`), checked against what the provider
supports, as Octavia's amphora driver checks it against its JSON schema. A
flavor (by id) or an availability zone (by name) names a profile; members
read them and create load balancers with `flavor_id` and `availability_zone`.
A profile in use by a flavor or zone keeps its provider and data; a flavor or
zone in use by a load balancer cannot be deleted.

What neutrino's one provider honours, and the only keys its schemas accept
(anything else is refused when the profile is written, as unsupported by the
provider, with Octavia's words and status):

- `loadbalancer_topology`: `SINGLE`, one amphora (an haproxy in a namespace)
  per load balancer, or `ACTIVE_STANDBY`, two (MASTER and BACKUP) with
  keepalived moving the VIP between them (services/amphorae.py);
- `default_connection_limit` (Octavia's option of that name): the haproxy
  `maxconn` of listeners whose `connection_limit` is -1, up to the load
  balancer's own limit of 8000;
- `compute_zone` (zones): the agents' availability zone whose host runs the
  load balancer;
- `valid_vip_networks` (zones): the networks a VIP may be on in that zone.

The load balancer's tree in the change feed carries its flavor's and zone's
data (`flavor_data`, `availability_zone_data`), which the plan renders.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, insert, select, update

from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, lb_policy
from neutrino.services.lb_base import PROVIDER, PROVIDERS
from neutrino.services.listing import Chunks, Listing, Source, stream_all
from neutrino.services.refusals import Conflict, Forbidden, Invalid, NotFound, Refusal

# haproxy's connection limit for a whole load balancer (agent/drivers/haproxy.py): a listener's
# limit is honoured up to it.
PROCESS_CONNECTIONS = 8000

FLAVOR_SCHEMA: dict[str, dict[str, Any]] = {
    "loadbalancer_topology": {
        "type": "string",
        "description": "The load balancer topology. One of: "
        "SINGLE - One amphora per load balancer. "
        "ACTIVE_STANDBY - Two amphora per load balancer.",
        "enum": ["ACTIVE_STANDBY", "SINGLE"],
    },
    "default_connection_limit": {
        "type": "integer",
        "description": "The connection limit of each listener whose connection_limit is -1 "
        f"(at most {PROCESS_CONNECTIONS}, the load balancer's own limit).",
        "minimum": 1,
        "maximum": PROCESS_CONNECTIONS,
    },
}
AVAILABILITY_ZONE_SCHEMA: dict[str, dict[str, Any]] = {
    "compute_zone": {
        "type": "string",
        "description": "The availability zone of the agents whose host runs the load balancer.",
    },
    "valid_vip_networks": {
        "type": "array",
        "items": {"type": "string"},
        "description": "List of network IDs that are allowed for VIP use. This overrides/"
        "replaces the list of allowed networks of the deployment.",
    },
}
JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "array": (list,),
    "object": (dict,),
}


class UnsupportedOption(Refusal):
    """Octavia's ProviderUnsupportedOptionError: the provider cannot do what the data asks.
    Octavia answers it with a 501; the data is the client's to change, so here it is a 400
    with Octavia's message."""

    status = 400

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"Provider '{provider}' does not support a requested option: {message}")


class ProviderUnsupported(UnsupportedOption):
    """What the provider refuses when it is asked to do it (not when a flavor is written): 501,
    as Octavia answers it."""

    status = 501


def violation(data: Any, properties: dict[str, dict[str, Any]]) -> str | None:
    """What is wrong with `data` for an object schema of `properties` without additional ones,
    worded as jsonschema words it (and prefixed with the key, as Octavia's drivers do)."""
    if not of_type(data, "object"):
        return f"{data!r} is not of type 'object'"
    unexpected = [key for key in data if key not in properties]
    if unexpected:
        names = ", ".join(repr(key) for key in unexpected)
        return (
            f"Additional properties are not allowed "
            f"({names} {'was' if len(unexpected) == 1 else 'were'} unexpected)"
        )
    for key, value in data.items():
        rules = properties[key]
        if not of_type(value, rules["type"]):
            return f"{key} {value!r} is not of type {rules['type']!r}"
        item_type = rules.get("items", {}).get("type")
        wrong = [item for item in value if not of_type(item, item_type)] if item_type else []
        if wrong:
            return f"{key} {wrong[0]!r} is not of type {item_type!r}"
        if "enum" in rules and value not in rules["enum"]:
            return f"{key} {value!r} is not one of {rules['enum']!r}"
        if "minimum" in rules and value < rules["minimum"]:
            return f"{key} {value!r} is less than the minimum of {rules['minimum']!r}"
        if "maximum" in rules and value > rules["maximum"]:
            return f"{key} {value!r} is greater than the maximum of {rules['maximum']!r}"
    return None


def of_type(value: Any, kind: str) -> bool:
    return isinstance(value, JSON_TYPES[kind]) and not isinstance(value, bool)


def require_admin(ctx: Context) -> None:
    """Octavia's load-balancer:admin: Keystone's admin, or its own load-balancer_admin."""
    if not lb_policy.is_admin(ctx):
        raise Forbidden("Policy does not allow this request to be performed.")


def require_reader(ctx: Context) -> None:
    """Octavia's load-balancer:read, on the caller's own project (flavors and zones belong to
    none): its observers, members and admins, by Keystone's roles or Octavia's own."""
    if not lb_policy.reads_shared(ctx):
        raise Forbidden("Policy does not allow this request to be performed.")


def require_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise Invalid(f"Provider '{provider}' is not enabled.")


def capabilities(ctx: Context, provider: str, zone: bool) -> list[dict[str, str]]:
    """GET /providers/{provider}/flavor_capabilities (or availability_zone_capabilities)."""
    require_admin(ctx)
    require_provider(provider)
    properties = AVAILABILITY_ZONE_SCHEMA if zone else FLAVOR_SCHEMA
    return [{"name": key, "description": rules["description"]} for key, rules in properties.items()]


# -- profiles: the provider's data ------------------------------------------------------------
@dataclass(frozen=True)
class ProfileKind:
    table: Table
    data: str  # the JSON text's field
    label: str  # in "not found"
    in_use: str  # in "in use", as Octavia's controller words it
    users: Table  # the flavors or zones that name a profile
    properties: dict[str, dict[str, Any]]

    @property
    def user_column(self) -> Any:
        return self.users.c[f"{self.table.name[3:-1]}_id"]


FLAVOR_PROFILES = ProfileKind(
    schema.lb_flavor_profiles,
    "flavor_data",
    "Flavor Profile",
    "Flavor profile",
    schema.lb_flavors,
    FLAVOR_SCHEMA,
)
AVAILABILITY_ZONE_PROFILES = ProfileKind(
    schema.lb_availability_zone_profiles,
    "availability_zone_data",
    "Availability Zone Profile",
    "Availability Zone Profile",
    schema.lb_availability_zones,
    AVAILABILITY_ZONE_SCHEMA,
)


def render_profile(kind: ProfileKind, row: Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "provider_name": row.provider_name,
        kind.data: row._mapping[kind.data],
    }


def check_data(kind: ProfileKind, provider: str, text: str) -> None:
    """Octavia's order: the JSON, then the provider, then the provider's word on the data."""
    try:
        data = json.loads(text)
    except ValueError:
        raise Invalid(f"{text} is not a valid option for {kind.data}") from None
    require_provider(provider)
    problem = violation(data, kind.properties)
    if problem:
        raise UnsupportedOption(provider, problem)


def fetch_row(conn: Connection, table: Table, column: str, key: str, label: str) -> Row:
    """The profile, flavor or zone whose `column` is `key`; Octavia's 404 names it `label`."""
    row = conn.execute(select(table).where(table.c[column] == key)).first()
    if row is None:
        raise NotFound(f"{label} {key} not found.")
    return row


def in_creation_order(
    table: Table, column: str, render: Callable[[Row], dict[str, Any]], db: Database
) -> Chunks:
    """All profiles, flavors or zones, the oldest first (ties by `column`), in chunks read as
    they are consumed."""
    source = Source(Listing(table, {}), None, lambda _conn, rows: list(map(render, rows)))
    return stream_all(db, source, [table.c.created_at, table.c[column]])


class Profiles:
    def __init__(self, kind: ProfileKind) -> None:
        self.kind = kind

    def fetch(self, conn: Connection, profile_id: str) -> Row:
        return fetch_row(conn, self.kind.table, "id", profile_id, self.kind.label)

    def stream(self, db: Database, ctx: Context) -> Chunks:
        require_admin(ctx)
        return in_creation_order(self.kind.table, "id", partial(render_profile, self.kind), db)

    def get(self, db: Database, ctx: Context, profile_id: str) -> dict[str, Any]:
        require_admin(ctx)
        with db.read() as conn:
            return render_profile(self.kind, self.fetch(conn, profile_id))

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        require_admin(ctx)
        check_data(self.kind, values["provider_name"], values[self.kind.data])
        with db.write() as conn:
            row = {**values, "id": common.new_id(), "created_at": common.now()}
            conn.execute(insert(self.kind.table).values(**row))
            return render_profile(self.kind, self.fetch(conn, row["id"]))

    def update(
        self, db: Database, ctx: Context, profile_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        require_admin(ctx)
        kind = self.kind
        with db.write() as conn:
            for key in ("name", "provider_name", kind.data):
                if key in values and values[key] is None:
                    raise Invalid(f"None is not a valid option for {key}")
            if {"provider_name", kind.data} & set(values) and self.used(conn, profile_id):
                raise Conflict(f"{kind.in_use} {profile_id} is in use and cannot be modified.")
            if kind.data in values:
                provider = values.get("provider_name") or self.fetch(conn, profile_id).provider_name
                check_data(kind, provider, values[kind.data])
            if values:
                conn.execute(
                    update(kind.table).where(kind.table.c.id == profile_id).values(**values)
                )
            return render_profile(kind, self.fetch(conn, profile_id))

    def delete(self, db: Database, ctx: Context, profile_id: str) -> None:
        require_admin(ctx)
        kind = self.kind
        with db.write() as conn:
            if self.used(conn, profile_id):
                raise Conflict(f"{kind.in_use} {profile_id} is in use and cannot be modified.")
            if not conn.execute(delete(kind.table).where(kind.table.c.id == profile_id)).rowcount:
                raise NotFound(f"{kind.in_use} {profile_id} not found.")

    def used(self, conn: Connection, profile_id: str) -> bool:
        column = self.kind.user_column
        return bool(conn.execute(select(func.count()).where(column == profile_id)).scalar_one())


# -- flavors and availability zones: what load balancers name --------------------------------
@dataclass(frozen=True)
class OfferKind:
    table: Table
    key: str  # "id" (flavors) or "name" (zones)
    label: str
    profiles: Profiles
    in_loadbalancer: str  # the load balancer's column naming it

    @property
    def profile_column(self) -> str:
        return f"{self.profiles.kind.table.name[3:-1]}_id"


FLAVORS = OfferKind(schema.lb_flavors, "id", "Flavor", Profiles(FLAVOR_PROFILES), "flavor_id")
AVAILABILITY_ZONES = OfferKind(
    schema.lb_availability_zones,
    "name",
    "Availability Zone",
    Profiles(AVAILABILITY_ZONE_PROFILES),
    "availability_zone",
)


class Offers:
    """Flavors or availability zones."""

    def __init__(self, kind: OfferKind) -> None:
        self.kind = kind

    def render(self, row: Row) -> dict[str, Any]:
        body = dict(row._mapping)
        del body["created_at"]
        return body

    def fetch(self, conn: Connection, key: str) -> Row:
        return fetch_row(conn, self.kind.table, self.kind.key, key, self.kind.label)

    def stream(self, db: Database, ctx: Context) -> Chunks:
        require_reader(ctx)
        return in_creation_order(self.kind.table, self.kind.key, self.render, db)

    def get(self, db: Database, ctx: Context, key: str) -> dict[str, Any]:
        require_reader(ctx)
        with db.read() as conn:
            return self.render(self.fetch(conn, key))

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        require_admin(ctx)
        kind, table = self.kind, self.kind.table
        with db.write() as conn:
            profile_id = values[kind.profile_column]
            try:
                kind.profiles.fetch(conn, profile_id)
            except NotFound as missing:
                raise Invalid(missing.message) from None  # a body's reference: 400, as elsewhere
            if conn.execute(select(table).where(table.c.name == values["name"])).first():
                field = kind.label.lower()
                raise Conflict(f"A {field} of {values['name']} already exists.")
            row = {"created_at": common.now(), **values}
            if kind.key == "id":
                row["id"] = common.new_id()
            conn.execute(insert(table).values(**row))
            return self.render(self.fetch(conn, row[kind.key]))

    def update(
        self, db: Database, ctx: Context, key: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        require_admin(ctx)
        table = self.kind.table
        with db.write() as conn:
            current = self.fetch(conn, key)
            if (
                values.get("name", current.name) != current.name
                and conn.execute(select(table).where(table.c.name == values["name"])).first()
            ):
                raise Conflict(f"A {self.kind.label.lower()} of {values['name']} already exists.")
            if values:
                conn.execute(update(table).where(table.c[self.kind.key] == key).values(**values))
            return self.render(self.fetch(conn, key))

    def delete(self, db: Database, ctx: Context, key: str) -> None:
        require_admin(ctx)
        kind = self.kind
        with db.write() as conn:
            self.fetch(conn, key)
            column = schema.lb_loadbalancers.c[kind.in_loadbalancer]
            if conn.execute(select(schema.lb_loadbalancers.c.id).where(column == key)).first():
                raise Conflict(f"{kind.label} {key} is in use and cannot be modified.")
            conn.execute(delete(kind.table).where(kind.table.c[kind.key] == key))

    def data(self, conn: Connection, key: str | None) -> dict[str, Any]:
        """The profile data of a flavor or zone ({} for none)."""
        if key is None:
            return {}
        profiles = self.kind.profiles.kind
        text = conn.execute(
            select(profiles.table.c[profiles.data])
            .join(
                self.kind.table, self.kind.table.c[self.kind.profile_column] == profiles.table.c.id
            )
            .where(self.kind.table.c[self.kind.key] == key)
        ).scalar_one()
        return dict(json.loads(text))

    def chosen(self, conn: Connection, key: str) -> Row:
        """The enabled flavor or zone a new load balancer names, refused as Octavia refuses it."""
        table = self.kind.table
        found = conn.execute(select(table).where(table.c[self.kind.key] == key)).first()
        if found is None:
            detail = "flavor_id" if self.kind.key == "id" else "availability zone"
            raise Invalid(f"Validation failure: Invalid {detail}.")
        if not found.enabled:
            option = "flavor" if self.kind.key == "id" else "availability_zone"
            raise Invalid(f"The selected {option} is not allowed in this deployment: {key}")
        return found


flavors, availability_zones = Offers(FLAVORS), Offers(AVAILABILITY_ZONES)
flavor_profiles, availability_zone_profiles = FLAVORS.profiles, AVAILABILITY_ZONES.profiles


def apply_to_loadbalancer(
    conn: Connection, values: dict[str, Any], provider: str | None
) -> tuple[str, dict[str, Any]]:
    """A new load balancer's provider and availability zone data, from the flavor and zone it
    names (checked as Octavia checks them, in its order)."""
    flavor_id, zone = values.get("flavor_id"), values.get("availability_zone")
    if flavor_id is not None:
        flavors.chosen(conn, flavor_id)
    if zone is not None:
        availability_zones.chosen(conn, zone)
    if flavor_id is not None:
        profile = flavor_profiles.fetch(conn, flavors.fetch(conn, flavor_id).flavor_profile_id)
        if provider and provider != profile.provider_name:
            raise Invalid(f"Flavor '{flavor_id}' is not compatible with provider '{provider}'")
        provider = profile.provider_name
    provider = provider or PROVIDER
    require_provider(provider)
    return provider, availability_zones.data(conn, zone)


def check_vip_network(zone_data: dict[str, Any], network_id: str) -> None:
    allowed = zone_data.get("valid_vip_networks")
    if allowed and network_id.lower() not in [network.lower() for network in allowed]:
        raise Invalid(
            "Validation failure: Supplied VIP network_id is not allowed by the configuration "
            "of this deployment."
        )
