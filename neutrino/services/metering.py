"""Metering labels and their rules: what crosses routers' gateways, counted.

A label applies to every router of its project, or to every router when
shared, as Neutron's metering agent applies it; its rules say which traffic
crossing the gateway it counts (ingress: arriving on it, egress: leaving by
it) and which it must not (`excluded`). The agents realize them as named nft
counters in each router's namespace (plan/metering.py); `inspect router`
reads the counts back. Neither labels nor rules can change once made, and
they carry no standard attributes, as in Neutron.

Policy is Neutron's default: an admin, or a manager of the label's project,
creates and deletes; the project's readers see its labels and their rules.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source

LABEL, RULE = schema.metering_labels, schema.metering_label_rules
PREFIXES = ("remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix")
LABELS = Listing(LABEL, {"tenant_id": LABEL.c.project_id}, unseen_marker_ignored=True)
RULES = Listing(
    RULE,
    {},
    unseen_marker_ignored=True,
    plain=("id", "metering_label_id", "direction", *PREFIXES, "excluded"),
)
RESOURCE = "metering_label"  # in the change feed; a rule's write changes its label


def may_manage(ctx: Context, project_id: str) -> bool:
    return ctx.is_admin or ("manager" in ctx.roles and project_id == ctx.project_id)


def visible_labels(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else LABEL.c.project_id == ctx.project_id


def fetch_label(conn: Connection, ctx: Context, label_id: str) -> Row:
    seen = visible_labels(ctx)
    row = conn.execute(
        select(LABEL).where(LABEL.c.id == label_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.MeteringLabelNotFound(label_id=label_id)
    return row


def visible_rules(ctx: Context) -> ColumnElement[bool] | None:
    seen = visible_labels(ctx)
    return None if seen is None else RULE.c.metering_label_id.in_(select(LABEL.c.id).where(seen))


def render_labels(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "name": r.name,
            "description": r.description,
            "shared": r.shared,
            "project_id": r.project_id,
            "tenant_id": r.project_id,
        }
        for r in rows
    ]


def render_rules(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "metering_label_id": r.metering_label_id,
            "direction": r.direction,
            **{name: getattr(r, name) for name in PREFIXES},
            "excluded": r.excluded,
        }
        for r in rows
    ]


def render_for_agents(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    """Labels as agents see them: with their rules."""
    labels = render_labels(rows)
    rules: dict[str, list[dict[str, Any]]] = {label["id"]: [] for label in labels}
    for chunk in common.chunked(list(rules)):
        for rule in render_rules(
            list(
                conn.execute(
                    select(RULE).where(RULE.c.metering_label_id.in_(chunk)).order_by(RULE.c.id)
                )
            )
        ):
            rules[rule["metering_label_id"]].append(rule)
    return [{**label, "rules": rules[label["id"]]} for label in labels]


def prefix(name: str, value: Any) -> str:
    """An address or a prefix, host bits allowed, as Neutron's metering plugin checks it."""
    try:
        found = ipaddress.ip_interface(value if isinstance(value, str) else str(value))
    except ValueError as error:
        raise errors.Invalid(f"{name}: {value} is invalid [{error}].") from None
    if getattr(found, "scope_id", None):  # Python takes "fe80::1%eth0", netaddr does not
        raise errors.AddrFormatError(address=value)
    return str(found)


def rule_prefixes(values: dict[str, Any]) -> dict[str, str | None]:
    """The rule's prefixes, checked as Neutron checks them, in its order."""
    found = {name: prefix(name, values[name]) if values.get(name) else None for name in PREFIXES}
    if found["remote_ip_prefix"] and (found["source_ip_prefix"] or found["destination_ip_prefix"]):
        raise errors.Invalid(
            "Cannot use 'remote-ip-prefix' in conjunction "
            "with 'source-ip-prefix' or 'destination-ip-prefix'."
        )
    if not any(found.values()):
        raise errors.Invalid(
            "You must define at least one of the following parameters "
            "'remote_ip_prefix', or 'source_ip_prefix' or 'destination_ip_prefix'."
        )
    return found


class MeteringLabels(Listed):
    resource = RESOURCE

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(LABELS, visible_labels(ctx), lambda _conn, rows: render_labels(rows))

    def get(self, db: Database, ctx: Context, label_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_labels([fetch_label(conn, ctx, label_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        project = common.owner(ctx, values)
        if not may_manage(ctx, project):
            raise errors.PolicyNotAuthorized(action="create_metering_label")
        row = {
            "id": common.new_id(),
            "project_id": project,
            "name": values["name"],
            "description": values["description"],
            "shared": values["shared"],
        }
        with db.write() as conn:
            conn.execute(insert(LABEL).values(**row))
            common.record_change(conn, RESOURCE, row["id"], "create")
            return render_labels([fetch_label(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        label_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()  # nothing of a label can change

    def delete(self, db: Database, ctx: Context, label_id: str) -> None:
        with db.write() as conn:
            row = fetch_label(conn, ctx, label_id)
            if not may_manage(ctx, row.project_id):
                raise errors.PolicyNotAuthorized(action="delete_metering_label")
            conn.execute(delete(RULE).where(RULE.c.metering_label_id == label_id))
            conn.execute(delete(LABEL).where(LABEL.c.id == label_id))
            common.record_change(conn, RESOURCE, label_id, "delete")

    def set_tags(
        self, db: Database, ctx: Context, label_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()  # metering labels carry no tags


class MeteringLabelRules(Listed):
    resource = "metering_label_rule"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(RULES, visible_rules(ctx), lambda _conn, rows: render_rules(rows))

    def get(self, db: Database, ctx: Context, rule_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_rules([self._fetch(conn, ctx, rule_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        if not (ctx.is_admin or "manager" in ctx.roles):
            raise errors.PolicyNotAuthorized(action="create_metering_label_rule")
        prefixes = rule_prefixes(values)
        label_id = values["metering_label_id"]
        with db.write() as conn:
            self._check_overlaps(conn, label_id, values, prefixes["remote_ip_prefix"])
            label = fetch_label(conn, ctx, label_id)
            if not may_manage(ctx, label.project_id):
                raise errors.PolicyNotAuthorized(action="create_metering_label_rule")
            row = {
                "id": common.new_id(),
                "metering_label_id": label_id,
                "direction": values["direction"],
                "excluded": values["excluded"],
                **prefixes,
            }
            conn.execute(insert(RULE).values(**row))
            common.record_change(conn, RESOURCE, label_id, "update")
            return render_rules([self._fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        rule_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        raise errors.HTTPMethodNotAllowed()  # nothing of a rule can change

    def delete(self, db: Database, ctx: Context, rule_id: str) -> None:
        with db.write() as conn:
            rule = self._fetch(conn, ctx, rule_id)
            label = fetch_label(conn, ctx, rule.metering_label_id)
            if not may_manage(ctx, label.project_id):
                raise errors.PolicyNotAuthorized(action="delete_metering_label_rule")
            conn.execute(delete(RULE).where(RULE.c.id == rule_id))
            common.record_change(conn, RESOURCE, label.id, "update")

    def set_tags(
        self, db: Database, ctx: Context, rule_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()

    @staticmethod
    def _fetch(conn: Connection, ctx: Context, rule_id: str) -> Row:
        seen = visible_rules(ctx)
        row = conn.execute(
            select(RULE).where(RULE.c.id == rule_id, *([] if seen is None else [seen]))
        ).first()
        if row is None:
            raise errors.MeteringLabelRuleNotFound(rule_id=rule_id)
        return row

    @staticmethod
    def _check_overlaps(
        conn: Connection, label_id: str, values: dict[str, Any], remote: str | None
    ) -> None:
        """Neutron refuses a remote_ip_prefix that shares addresses with one of another rule
        of the label with the same direction and `excluded`."""
        if remote is None:
            return
        wanted = ipaddress.ip_interface(remote).network
        for (other,) in conn.execute(
            select(RULE.c.remote_ip_prefix).where(
                RULE.c.metering_label_id == label_id,
                RULE.c.direction == values["direction"],
                RULE.c.excluded == values["excluded"],
                RULE.c.remote_ip_prefix.is_not(None),
            )
        ):
            held = ipaddress.ip_interface(other).network
            if held.version == wanted.version and held.overlaps(wanted):
                raise errors.MeteringLabelRuleOverlaps(remote_ip_prefix=values["remote_ip_prefix"])
