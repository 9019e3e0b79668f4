"""Security groups and their rules.

Every project has a `default` group, made on first use (a port created
without groups, a listing of groups, the creation of another group). New
groups get their rules from the default security group rules, templates an
admin manages, which start as Neutron's: egress anywhere for every group,
ingress from the group's own members for the default group. Rules are
checked and normalized as Neutron does: protocol names lower case, numbers
as strings, port ranges checked per protocol, remote prefixes kept as sent
(their network is `normalized_cidr`); two rules that mean the same thing are
one rule (409 with the existing id).
Groups are visible to their own project and to those an RBAC policy shares them with, which
may use them on their ports; rules to the project of the rule or of its group.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, or_, select

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import address_groups, common, quotas, rbac
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source, standard_columns

SG, RULE, PSG = schema.security_groups, schema.security_group_rules, schema.port_security_groups
TEMPLATE = schema.default_security_group_rules
STATEFULNESS = schema.security_groups_default_statefulness

# IANA numbers of the protocol names Neutron accepts.
PROTOCOLS: dict[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "hopopt": 0,
    "icmp": 1,
    "igmp": 2,
    "ip": 0,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}
WITH_PORTS = {6, 17, 33, 132, 136}  # tcp, udp, dccp, sctp, udplite
ICMP = {1, 58}
IPV6_ONLY = {41, 43, 44, 58, 59, 60}
ANY_PREFIXES = {"0.0.0.0/0", "::/0"}
RULE_KEYS = (
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
)
PARENT = "PARENT"  # a template's remote group that stands for the group made from it

GROUP_LISTING = Listing(
    SG,
    standard_columns(SG),
    plain=("id", "name", "description", "project_id", "tenant_id", "revision_number", "stateful"),
)
RULE_LISTING = Listing(
    RULE,
    standard_columns(RULE),
    {
        "belongs_to_default_sg": lambda wanted: RULE.c.security_group_id.in_(
            select(SG.c.id).where(SG.c.is_default.in_(wanted))
        )
    },
    plain=(
        "id",
        "description",
        "project_id",
        "tenant_id",
        "revision_number",
        *RULE_KEYS,
        "security_group_id",
    ),
)


def insert_rule(conn: Connection, project_id: str, group_id: str, rule: dict[str, Any]) -> str:
    moment = common.now()
    rule_id = rule.get("id") or common.new_id()
    common.insert_resource(
        conn,
        RULE,
        "security_group_rule",
        {
            "id": rule_id,
            "project_id": project_id,
            "name": "",
            "description": rule.get("description", ""),
            "created_at": moment,
            "updated_at": moment,
            "revision_number": 1,
            "security_group_id": group_id,
            **{key: rule.get(key) for key in RULE_KEYS},
        },
    )
    return rule_id


def starting_rules(conn: Connection, group_id: str, *, is_default: bool) -> list[dict[str, Any]]:
    """The rules a new group gets: the templates for its kind (default group or another)."""
    used_in = TEMPLATE.c.used_in_default_sg if is_default else TEMPLATE.c.used_in_non_default_sg
    rules = []
    for template in conn.execute(select(TEMPLATE).where(used_in).order_by(TEMPLATE.c.id)):
        rule = {key: getattr(template, key) for key in RULE_KEYS}
        if rule["remote_group_id"] == PARENT:
            rule["remote_group_id"] = group_id
        rules.append(rule)
    return rules


def insert_group(
    conn: Connection, row: dict[str, Any], rules: list[dict[str, Any]], *, is_default: bool
) -> None:
    """A group with its starting rules."""
    common.insert_resource(
        conn, SG, "security_group", {"stateful": True, **row, "is_default": is_default}
    )
    for rule in rules:
        insert_rule(conn, row["project_id"], row["id"], rule)


def ensure_default(conn: Connection, project_id: str) -> str:
    """The project's `default` group, created with its rules on first use."""
    found = conn.execute(
        select(SG.c.id).where(SG.c.project_id == project_id, SG.c.is_default)
    ).scalar()
    if found:
        return found
    moment = common.now()
    group_id = common.new_id()
    insert_group(
        conn,
        {
            "id": group_id,
            "project_id": project_id,
            "name": "default",
            "description": "Default security group",
            "created_at": moment,
            "updated_at": moment,
            "revision_number": 1,
        },
        starting_rules(conn, group_id, is_default=True),
        is_default=True,
    )
    return group_id


def has_default(conn: Connection, project_id: str) -> bool:
    return (
        conn.execute(select(SG.c.id).where(SG.c.project_id == project_id, SG.c.is_default)).first()
        is not None
    )


# -- visibility ----------------------------------------------------------------------------
def visible_groups(ctx: Context) -> ColumnElement[bool] | None:
    return rbac.visible_objects("security_group", ctx)


def visible_rules(ctx: Context) -> ColumnElement[bool] | None:
    """Rules of the caller's groups, and rules the caller owns."""
    if ctx.is_admin:
        return None
    own_groups = select(SG.c.id).where(SG.c.project_id == ctx.project_id)
    return or_(RULE.c.project_id == ctx.project_id, RULE.c.security_group_id.in_(own_groups))


def find_group(conn: Connection, group_id: str, seen: ColumnElement[bool] | None) -> Row:
    """The group `group_id` among those `seen` (None: all); 404 if it is not there."""
    where = [SG.c.id == group_id] + ([] if seen is None else [seen])
    row = conn.execute(select(SG).where(*where)).first()
    if row is None:
        raise errors.SecurityGroupNotFound(id=group_id)
    return row


def fetch_group(conn: Connection, ctx: Context, group_id: str, *, for_write: bool = False) -> Row:
    row = find_group(conn, group_id, visible_groups(ctx))
    if for_write and not ctx.is_admin and row.project_id != ctx.project_id:
        raise errors.PolicyNotAuthorized(action="update_security_group")
    return row


def fetch_rule(conn: Connection, ctx: Context, rule_id: str) -> Row:
    where = [RULE.c.id == rule_id]
    seen = visible_rules(ctx)
    if seen is not None:
        where.append(seen)
    row = conn.execute(select(RULE).where(*where)).first()
    if row is None:
        raise errors.SecurityGroupRuleNotFound(id=rule_id)
    return row


# -- rendering -------------------------------------------------------------------------------
def render_rules(conn: Connection, rows: list[Row]) -> list[dict[str, Any]]:
    tags = common.load_tags(conn, [r.id for r in rows])
    groups = {r.security_group_id for r in rows}
    defaults: set[str] = set()
    for chunk in common.chunked(sorted(groups)):
        defaults.update(
            conn.execute(select(SG.c.id).where(SG.c.id.in_(chunk), SG.c.is_default)).scalars()
        )
    out = []
    for r in rows:
        item = common.render_standard(r, tags)
        del item["name"]  # rules have a description but no name
        item.update({key: getattr(r, key) for key in RULE_KEYS})
        item.update(
            security_group_id=r.security_group_id,
            normalized_cidr=normalized_cidr(r.remote_ip_prefix),
            belongs_to_default_sg=r.security_group_id in defaults,
        )
        out.append(item)
    return out


def normalized_cidr(prefix: str | None) -> str | None:
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


def render_groups(
    conn: Connection, rows: list[Row], viewer: str | None = None
) -> list[dict[str, Any]]:
    """Group bodies with their rules; `shared` as project `viewer` sees it."""
    ids = [r.id for r in rows]
    shared = rbac.shared_ids(conn, "security_group", ids, viewer)
    rules: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for chunk in common.chunked(ids):
        rule_rows = list(
            conn.execute(
                select(RULE)
                .where(RULE.c.security_group_id.in_(chunk))
                .order_by(RULE.c.created_at, RULE.c.id)
            )
        )
        for rule in render_rules(conn, rule_rows):
            rules[rule["security_group_id"]].append(rule)
    tags = common.load_tags(conn, ids)
    return [
        {
            **common.render_standard(r, tags),
            "stateful": r.stateful,
            "security_group_rules": rules[r.id],
            "shared": r.id in shared,
        }
        for r in rows
    ]


# -- rule checks (pure) -------------------------------------------------------------------------
def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    return PROTOCOLS[protocol] if protocol in PROTOCOLS else int(protocol)


def normalize_protocol(value: Any) -> str | None:
    """Names lower case, numbers 0-255 as strings, None/"any" for any protocol."""
    if value is None or (isinstance(value, str) and value.lower() == "any"):
        return None
    text = str(value).strip().lower()
    if text in PROTOCOLS:
        return text
    if text.isdigit() and 0 <= int(text) <= 255 and not isinstance(value, bool):
        return str(int(text))
    raise errors.SecurityGroupRuleInvalidProtocol(protocol=value, values=sorted(PROTOCOLS))


def normalize_rule(values: dict[str, Any]) -> dict[str, Any]:
    """Check a rule the way Neutron does and return its stored form."""
    rule = {key: values.get(key) for key in RULE_KEYS}
    rule["protocol"] = normalize_protocol(rule["protocol"])
    number = protocol_number(rule["protocol"])
    if number in IPV6_ONLY and rule["ethertype"] == "IPv4":
        raise errors.SecurityGroupEthertypeConflictWithProtocol(
            ethertype="IPv4", protocol=rule["protocol"]
        )
    check_port_range(number, rule["protocol"], rule["port_range_min"], rule["port_range_max"])
    if sum(rule[key] is not None for key in RULE_KEYS if key.startswith("remote_")) > 1:
        raise errors.SecurityGroupMultipleRemoteEntites()
    if rule["remote_ip_prefix"] is not None:
        net = ipaddress.ip_network(rule["remote_ip_prefix"], strict=False)
        if f"IPv{net.version}" != rule["ethertype"]:
            raise errors.SecurityGroupRuleParameterConflict(
                ethertype=rule["ethertype"], cidr=rule["remote_ip_prefix"]
            )
    return rule


def check_port_range(
    number: int | None, protocol: str | None, low: int | None, high: int | None
) -> None:
    if low is None and high is None:
        return
    if number is None:
        raise errors.SecurityGroupProtocolRequiredWithPorts()
    if number in WITH_PORTS:
        if low == 0 or high == 0:
            raise errors.SecurityGroupInvalidPortValue(port=0)
        if low is None or high is None or low > high:
            raise errors.SecurityGroupInvalidPortRange()
        return
    if number in ICMP:
        for value, attr, field in (
            (low, "port_range_min", "type"),
            (high, "port_range_max", "code"),
        ):
            if value is not None and not 0 <= value <= 255:
                raise errors.SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=value)
        if low is None:
            raise errors.SecurityGroupMissingIcmpType(value=high)
        return
    raise errors.SecurityGroupInvalidProtocolForPortRange(protocol=protocol)


def rule_key(rule: dict[str, Any]) -> tuple[str, ...]:
    """What makes two rules the same: protocols by number, 'anywhere' prefixes as no prefix."""
    key = []
    for name in RULE_KEYS:
        value = rule.get(name)
        if name == "protocol":
            value = protocol_number(value)
        if name == "remote_ip_prefix":
            value = normalized_cidr(value)
            value = None if value in ANY_PREFIXES else value
        key.append("" if value is None else str(value))
    return tuple(key)


# -- services ------------------------------------------------------------------------------------
class SecurityGroups(Listed):
    resource = "security_group"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        shared = rbac.shared_filter("security_group", SG.c.id, ctx.project_id)
        return Source(
            GROUP_LISTING.with_filters(shared=shared),
            visible_groups(ctx),
            lambda conn, rows: render_groups(conn, rows, ctx.project_id),
        )

    def stream(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> Iterator[list[dict[str, Any]]]:
        self.ensure_default(db, ctx, query)
        yield from super().stream(db, ctx, query)

    def list(
        self, db: Database, ctx: Context, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]:
        self.ensure_default(db, ctx, query)
        return super().list(db, ctx, query)

    def ensure_default(self, db: Database, ctx: Context, query: ListQuery) -> None:
        """Neutron makes a project's default group when the project first looks for its
        groups, or an admin looks for that project's."""
        asked = query.filters.get("project_id") or query.filters.get("tenant_id") or []
        project = asked[0] if asked and ctx.is_admin else ctx.project_id
        if project and ctx.can_write:
            with db.read() as conn:
                missing = not has_default(conn, project)
            if missing:
                with db.write() as conn:
                    ensure_default(conn, project)

    def get(self, db: Database, ctx: Context, group_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_groups(conn, [fetch_group(conn, ctx, group_id)], ctx.project_id)[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        if values.get("name") == "default":
            raise errors.SecurityGroupDefaultAlreadyExists()
        with db.write() as conn:
            stateful = values.pop("stateful", None)
            row = common.standard_values(ctx, values)
            if stateful is None:
                stateful = default_stateful(conn, row["project_id"])
            rules = starting_rules(conn, row["id"], is_default=False)
            # Checked before the default group is made: that one is not the caller's doing.
            quotas.check(conn, row["project_id"], "security_group", 1)
            quotas.check(conn, row["project_id"], "security_group_rule", len(rules))
            ensure_default(conn, row["project_id"])
            insert_group(conn, {**row, "stateful": stateful}, rules, is_default=False)
            return render_groups(conn, [fetch_group(conn, ctx, row["id"])], ctx.project_id)[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        group_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_group(conn, ctx, group_id, for_write=True)
            common.check_revision(row, if_match)
            if row.is_default and values.get("name", "default") != "default":
                raise errors.SecurityGroupCannotUpdateDefault()
            if not row.is_default and values.get("name") == "default":
                raise errors.SecurityGroupDefaultAlreadyExists()
            # Ports' traffic is tracked or not as their groups say: not while ports use it.
            if values.get("stateful", row.stateful) != row.stateful and in_use(conn, group_id):
                raise errors.SecurityGroupInUse(id=group_id)
            common.bump(conn, SG, "security_group", row, values)
            return render_groups(conn, [fetch_group(conn, ctx, group_id)], ctx.project_id)[0]

    def delete(self, db: Database, ctx: Context, group_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_group(conn, ctx, group_id, for_write=True)
            if row.is_default and not ctx.is_admin:
                raise errors.SecurityGroupCannotRemoveDefault()
            if in_use(conn, group_id):
                raise errors.SecurityGroupInUse(id=group_id)
            # Rules of this group, and other groups' rules naming it as their remote group.
            for rule in conn.execute(
                select(RULE).where(
                    or_(RULE.c.security_group_id == group_id, RULE.c.remote_group_id == group_id)
                )
            ).all():
                common.delete_resource(conn, RULE, "security_group_rule", rule.id)
                if rule.security_group_id != group_id:
                    bump_group(conn, rule.security_group_id)
            common.delete_resource(conn, SG, "security_group", group_id)

    def set_tags(
        self, db: Database, ctx: Context, group_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_group(conn, ctx, group_id, for_write=True)
            return common.set_tags(conn, SG, "security_group", row, add, remove)


def in_use(conn: Connection, group_id: str) -> bool:
    """Whether a port uses the group."""
    found = conn.execute(select(PSG.c.port_id).where(PSG.c.security_group_id == group_id).limit(1))
    return found.first() is not None


def bump_group(conn: Connection, group_id: str) -> None:
    """A rule change is a change of its group (Neutron bumps the group's revision too)."""
    common.bump(
        conn, SG, "security_group", conn.execute(select(SG).where(SG.c.id == group_id)).one()
    )


class SecurityGroupRules(Listed):
    resource = "security_group_rule"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(RULE_LISTING, visible_rules(ctx), render_rules)

    def get(self, db: Database, ctx: Context, rule_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_rules(conn, [fetch_rule(conn, ctx, rule_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        common.require_writer(ctx)
        rule = normalize_rule(values)
        with db.write() as conn:
            group = fetch_group(conn, ctx, values["security_group_id"], for_write=True)
            std = common.standard_values(ctx, {"project_id": group.project_id, **values})
            if rule["remote_group_id"] is not None:
                fetch_group(conn, ctx, rule["remote_group_id"])
            if rule["remote_address_group_id"] is not None:
                address_groups.fetch(conn, ctx, rule["remote_address_group_id"])
            existing = conn.execute(select(RULE).where(RULE.c.security_group_id == group.id)).all()
            same = next((r for r in existing if rule_key(dict(r._mapping)) == rule_key(rule)), None)
            if same is not None:
                raise errors.SecurityGroupRuleExists(rule_id=same.id)
            quotas.check(conn, std["project_id"], "security_group_rule", 1)
            rule_id = insert_rule(
                conn,
                std["project_id"],
                group.id,
                {**rule, "id": std["id"], "description": std["description"]},
            )
            bump_group(conn, group.id)
            return render_rules(conn, [fetch_rule(conn, ctx, rule_id)])[0]

    def update(
        self, db: Database, ctx: Context, rule_id: str, values: dict[str, Any], if_match: int | None
    ) -> dict[str, Any]:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_rule(conn, ctx, rule_id)
            fetch_group(conn, ctx, row.security_group_id, for_write=True)
            common.check_revision(row, if_match)
            common.bump(conn, RULE, "security_group_rule", row, values)
            return render_rules(conn, [fetch_rule(conn, ctx, rule_id)])[0]

    def delete(self, db: Database, ctx: Context, rule_id: str) -> None:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_rule(conn, ctx, rule_id)
            fetch_group(conn, ctx, row.security_group_id, for_write=True)
            common.delete_resource(conn, RULE, "security_group_rule", rule_id)
            bump_group(conn, row.security_group_id)

    def set_tags(
        self, db: Database, ctx: Context, rule_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        common.require_writer(ctx)
        with db.write() as conn:
            row = fetch_rule(conn, ctx, rule_id)
            fetch_group(conn, ctx, row.security_group_id, for_write=True)
            return common.set_tags(conn, RULE, "security_group_rule", row, add, remove)


# -- default security group rules (templates) ---------------------------------------------------
TEMPLATE_LISTING = Listing(
    TEMPLATE,
    {"id": TEMPLATE.c.id},
    plain=("id", "description", *RULE_KEYS, "used_in_default_sg", "used_in_non_default_sg"),
)


def render_templates(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "description": r.description,
            **{key: getattr(r, key) for key in RULE_KEYS},
            "used_in_default_sg": r.used_in_default_sg,
            "used_in_non_default_sg": r.used_in_non_default_sg,
        }
        for r in rows
    ]


def fetch_template(conn: Connection, template_id: str) -> Row:
    row = conn.execute(select(TEMPLATE).where(TEMPLATE.c.id == template_id)).first()
    if row is None:
        raise errors.DefaultSecurityGroupRuleNotFound(id=template_id)
    return row


class DefaultSecurityGroupRules(Listed):
    """Readable by everyone, written by admins only, never updated (as in Neutron)."""

    resource = "default_security_group_rule"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(TEMPLATE_LISTING, None, lambda _conn, rows: render_templates(rows))

    def get(self, db: Database, ctx: Context, template_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_templates([fetch_template(conn, template_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        self._require_admin(ctx, "create")
        rule = normalize_rule(values)
        with db.write() as conn:
            # A template may repeat one used for the other kind of group, not its own kind.
            for kind in ("used_in_default_sg", "used_in_non_default_sg"):
                if not values[kind]:
                    continue
                for existing in conn.execute(select(TEMPLATE).where(TEMPLATE.c[kind])):
                    if rule_key(dict(existing._mapping)) == rule_key(rule):
                        raise errors.DefaultSecurityGroupRuleExists(rule_id=existing.id)
            row = {
                "id": common.new_id(),
                "description": values["description"],
                **rule,
                "used_in_default_sg": values["used_in_default_sg"],
                "used_in_non_default_sg": values["used_in_non_default_sg"],
            }
            conn.execute(insert(TEMPLATE).values(**row))
            return render_templates([fetch_template(conn, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        template_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        raise errors.BadRequest(
            resource=self.resource, msg="default security group rules cannot be updated"
        )

    def delete(self, db: Database, ctx: Context, template_id: str) -> None:
        self._require_admin(ctx, "delete")
        with db.write() as conn:
            fetch_template(conn, template_id)
            conn.execute(delete(TEMPLATE).where(TEMPLATE.c.id == template_id))

    def set_tags(
        self, db: Database, ctx: Context, template_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()

    @staticmethod
    def _require_admin(ctx: Context, verb: str) -> None:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action=f"{verb}_default_security_group_rule")


# -- default statefulness -----------------------------------------------------------------------
STATEFULNESS_LISTING = Listing(
    STATEFULNESS, {"id": STATEFULNESS.c.id}, plain=("id", "project_id", "stateful")
)


def default_stateful(conn: Connection, project_id: str) -> bool:
    """What a new group of the project is when it does not say: the project's setting, else
    the system-wide one, else stateful."""
    found = {
        row.project_id: row.stateful
        for row in conn.execute(
            select(STATEFULNESS).where(
                or_(STATEFULNESS.c.project_id == project_id, STATEFULNESS.c.project_id.is_(None))
            )
        )
    }
    return bool(found.get(project_id, found.get(None, True)))


def render_statefulness(rows: list[Row]) -> list[dict[str, Any]]:
    return [{"id": r.id, "project_id": r.project_id, "stateful": r.stateful} for r in rows]


class SecurityGroupsDefaultStatefulness(Listed):
    """Admins write settings; a project's readers see its own (Neutron's default policy)."""

    resource = "security_groups_default_statefulness"

    @staticmethod
    def _visible(ctx: Context) -> ColumnElement[bool] | None:
        return None if ctx.is_admin else STATEFULNESS.c.project_id == ctx.project_id

    def _fetch(self, conn: Connection, ctx: Context, setting_id: str, verb: str = "") -> Row:
        seen = self._visible(ctx)
        row = conn.execute(
            select(STATEFULNESS).where(
                STATEFULNESS.c.id == setting_id, *([] if seen is None else [seen])
            )
        ).first()
        if row is None:
            raise errors.SecurityGroupDefaultStatefulnessNotFound(id=setting_id)
        if verb and not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action=f"{verb}_{self.resource}")
        return row

    def source(self, ctx: Context, query: ListQuery) -> Source:
        return Source(
            STATEFULNESS_LISTING, self._visible(ctx), lambda _conn, rows: render_statefulness(rows)
        )

    def get(self, db: Database, ctx: Context, setting_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render_statefulness([self._fetch(conn, ctx, setting_id)])[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized(action=f"create_{self.resource}")
        project = values.get("project_id", ctx.project_id)  # null: every project
        with db.write() as conn:
            if conn.execute(
                select(STATEFULNESS.c.id).where(
                    STATEFULNESS.c.project_id.is_(None)
                    if project is None
                    else STATEFULNESS.c.project_id == project
                )
            ).first():
                raise errors.SecurityGroupDefaultStatefulnessAlreadyExists(
                    project_id=project or "system-wide"
                )
            row = {"id": common.new_id(), "project_id": project, "stateful": values["stateful"]}
            conn.execute(insert(STATEFULNESS).values(**row))
            return render_statefulness([self._fetch(conn, ctx, row["id"])])[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        setting_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        with db.write() as conn:
            self._fetch(conn, ctx, setting_id, "update")
            if "stateful" in values:
                conn.execute(
                    STATEFULNESS.update()
                    .where(STATEFULNESS.c.id == setting_id)
                    .values(stateful=values["stateful"])
                )
            return render_statefulness([self._fetch(conn, ctx, setting_id)])[0]

    def delete(self, db: Database, ctx: Context, setting_id: str) -> None:
        with db.write() as conn:
            self._fetch(conn, ctx, setting_id, "delete")
            conn.execute(delete(STATEFULNESS).where(STATEFULNESS.c.id == setting_id))

    def set_tags(
        self, db: Database, ctx: Context, setting_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        raise errors.ResourceNotFound()
