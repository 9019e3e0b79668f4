"""Quality of service: policies, their rules, and the ports and networks they apply to.

A policy is seen by its project, by the projects an RBAC policy shares it with
(`shared` is the policy for every project), and by admins.
Writing policies and rules takes an admin or the owning project's manager
(Neutron's default policy); anyone who sees a policy may read its rules. A
rule change is a change of its policy (its revision is bumped), which is how
agents learn of it.

A port's policy is its own, else its network's (`qos_network_policy_id`;
ports a network owns, such as DHCP and router ports, take only their own). The
driver of this data plane applies bandwidth limits and DSCP marking (see
plan.qos); `SUPPORTED` says which rules with which parameters, as a Neutron QoS
driver declares them. A rule it cannot apply (minimum bandwidth: nothing on a
Linux bridge can guarantee a rate) may sit in a policy, but the policy is then
refused where it meets a port or a network, as Neutron refuses it
(QosRuleNotSupported, 409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select, true, update

from neutrino import errors
from neutrino.api.v2.query import ListQuery
from neutrino.context import Context
from neutrino.db import Database, schema
from neutrino.services import common, rbac
from neutrino.services.common import Tags
from neutrino.services.listing import Listed, Listing, Source, list_rows, standard_columns

POLICY, RULE, DEFAULT = schema.qos_policies, schema.qos_rules, schema.qos_default_policies
PORT_BINDING, NETWORK_BINDING = schema.qos_port_bindings, schema.qos_network_bindings

INTEGER_MAX = 2**31 - 1
DIRECTIONS = ["ingress", "egress"]
VALID_DSCP_MARKS = [0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40]
VALID_DSCP_MARKS += [44, 46, 48, 56]


@dataclass(frozen=True)
class RuleType:
    name: str  # bandwidth_limit
    values: tuple[str, ...]  # the rule's own attributes, after its id
    directed: bool

    @property
    def member(self) -> str:
        return f"{self.name}_rule"

    @property
    def collection(self) -> str:
        return f"{self.name}_rules"


# In the order Neutron lists a policy's rules.
RULE_TYPES = {
    t.name: t
    for t in (
        RuleType("bandwidth_limit", ("max_kbps", "max_burst_kbps", "direction"), True),
        RuleType("dscp_marking", ("dscp_mark",), False),
        RuleType("minimum_bandwidth", ("min_kbps", "direction"), True),
    )
}

DRIVER = "neutrino"
# What this data plane applies: rule type -> parameter -> (Neutron validator, its data).
SUPPORTED: dict[str, dict[str, tuple[str, Any]]] = {
    "bandwidth_limit": {
        "max_kbps": ("range", [0, INTEGER_MAX]),
        "max_burst_kbps": ("range", [0, INTEGER_MAX]),
        "direction": ("values", DIRECTIONS),
    },
    "dscp_marking": {"dscp_mark": ("values", VALID_DSCP_MARKS)},
}


def rule_type_details(name: str) -> list[dict[str, Any]]:
    """The `drivers` of a rule type's details: this driver with its parameters, if it
    supports the type."""
    if name not in SUPPORTED:
        return []
    parameters = []
    for parameter, (validator, data) in SUPPORTED[name].items():
        values = {"start": data[0], "end": data[1]} if validator == "range" else list(data)
        parameters.append(
            {
                "parameter_name": parameter,
                "parameter_values": values,
                "parameter_type": "range" if validator == "range" else "choices",
            }
        )
    return [{"name": DRIVER, "supported_parameters": parameters}]


def supported(rule: dict[str, Any]) -> bool:
    """Whether the driver applies `rule` (a rule body with its type)."""
    parameters = SUPPORTED.get(rule["type"])
    if parameters is None:
        return False
    for name, (validator, data) in parameters.items():
        value = rule.get(name)
        if validator == "range" and not (value is not None and data[0] <= value <= data[1]):
            return False
        if validator == "values" and value not in data:
            return False
    return True


# -- visibility and permission --------------------------------------------------------------
def visible(ctx: Context) -> ColumnElement[bool] | None:
    return rbac.visible_objects("qos_policy", ctx)


def fetch(conn: Connection, ctx: Context, policy_id: str) -> Row:
    """A policy the caller sees; 404 otherwise."""
    seen = visible(ctx)
    row = conn.execute(
        select(POLICY).where(POLICY.c.id == policy_id, *([] if seen is None else [seen]))
    ).first()
    if row is None:
        raise errors.QosPolicyNotFound(policy_id=policy_id)
    return row


def may_manage(ctx: Context, project_id: str | None) -> bool:
    """Neutron's default: an admin, or a manager of the project that owns the policy."""
    return ctx.is_admin or ("manager" in ctx.roles and project_id == ctx.project_id)


def require_manager(ctx: Context, project_id: str | None, action: str) -> None:
    if not may_manage(ctx, project_id):
        raise errors.PolicyNotAuthorized(action=action)


# -- rendering ------------------------------------------------------------------------
def rule_body(row: Row) -> dict[str, Any]:
    """A rule as its own resource shows it."""
    return {"id": row.id, **{name: getattr(row, name) for name in RULE_TYPES[row.type].values}}


def rules_of(conn: Connection, policy_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each policy's rules as the policy shows them: with their type and policy."""
    found: dict[str, list[dict[str, Any]]] = {pid: [] for pid in policy_ids}
    order = list(RULE_TYPES)
    for chunk in common.chunked(policy_ids):
        rows = conn.execute(select(RULE).where(RULE.c.policy_id.in_(chunk))).all()
        for row in sorted(rows, key=lambda r: (order.index(r.type), r.direction, r.id)):
            found[row.policy_id].append(
                {**rule_body(row), "qos_policy_id": row.policy_id, "type": row.type}
            )
    return found


def render(conn: Connection, rows: list[Row], viewer: str | None = None) -> list[dict[str, Any]]:
    """Policy bodies; `shared` as project `viewer` sees it."""
    ids = [r.id for r in rows]
    shared = rbac.shared_ids(conn, "qos_policy", ids, viewer)
    rules = rules_of(conn, ids)
    tags = common.load_tags(conn, ids)
    defaults: set[str] = set()
    for chunk in common.chunked(ids):
        defaults.update(
            conn.execute(select(DEFAULT.c.policy_id).where(DEFAULT.c.policy_id.in_(chunk)))
            .scalars()
            .all()
        )
    return [
        {
            **common.render_standard(r, tags),
            "shared": r.id in shared,
            "is_default": r.id in defaults,
            "rules": rules[r.id],
        }
        for r in rows
    ]


def is_default_filter(values: list[bool]) -> ColumnElement[bool]:
    defaults = POLICY.c.id.in_(select(DEFAULT.c.policy_id))
    wanted = set(values)
    return true() if len(wanted) > 1 else (defaults if True in wanted else ~defaults)


LISTING = Listing(
    POLICY,
    standard_columns(POLICY),
    {"is_default": is_default_filter},
    unseen_marker_ignored=True,
)


# -- defaults -------------------------------------------------------------------------------
def set_default(conn: Connection, policy: Row, is_default: bool) -> None:
    current = conn.execute(
        select(DEFAULT.c.policy_id).where(DEFAULT.c.project_id == policy.project_id)
    ).scalar()
    if is_default and current is None:
        conn.execute(insert(DEFAULT).values(project_id=policy.project_id, policy_id=policy.id))
    elif is_default and current != policy.id:
        raise errors.QoSPolicyDefaultAlreadyExists(project_id=policy.project_id)
    elif not is_default and current == policy.id:
        conn.execute(delete(DEFAULT).where(DEFAULT.c.policy_id == policy.id))


def default_of(conn: Connection, project_id: str) -> str | None:
    return conn.execute(
        select(DEFAULT.c.policy_id).where(DEFAULT.c.project_id == project_id)
    ).scalar()


# -- bindings -------------------------------------------------------------------------------
PORT_POLICIES_OF = (
    select(schema.ports.c.id, PORT_BINDING.c.policy_id, NETWORK_BINDING.c.policy_id)
    .select_from(schema.ports)
    .outerjoin(PORT_BINDING, PORT_BINDING.c.port_id == schema.ports.c.id)
    .outerjoin(NETWORK_BINDING, NETWORK_BINDING.c.network_id == schema.ports.c.network_id)
    .where(schema.ports.c.id.in_(common.IDS))
)
NETWORK_POLICIES_OF = select(NETWORK_BINDING.c.network_id, NETWORK_BINDING.c.policy_id).where(
    NETWORK_BINDING.c.network_id.in_(common.IDS)
)


def port_policies(
    conn: Connection, port_ids: list[str]
) -> dict[str, tuple[str | None, str | None]]:
    """port id -> (its own policy, its network's policy)."""
    rows = common.rows_for(conn, PORT_POLICIES_OF, port_ids)
    return {port_id: (own, net) for port_id, own, net in rows}


def network_policies(conn: Connection, network_ids: list[str]) -> dict[str, str]:
    rows = common.rows_for(conn, NETWORK_POLICIES_OF, network_ids)
    return {network_id: policy_id for network_id, policy_id in rows}


def unsupported_rule(conn: Connection, policy_id: str) -> str | None:
    """The type of the first of the policy's rules the driver cannot apply, if any."""
    for rule in rules_of(conn, [policy_id])[policy_id]:
        if not supported(rule):
            return str(rule["type"])
    return None


def ports_using(conn: Connection, policy_id: str) -> list[str]:
    """Ports the policy applies to: bound to it, or on a network bound to it without a policy
    of their own."""
    P = schema.ports
    own = select(PORT_BINDING.c.port_id).where(PORT_BINDING.c.policy_id == policy_id)
    by_network = select(P.c.id).where(
        P.c.network_id.in_(
            select(NETWORK_BINDING.c.network_id).where(NETWORK_BINDING.c.policy_id == policy_id)
        ),
        ~P.c.id.in_(select(PORT_BINDING.c.port_id)),
    )
    return sorted(set(conn.execute(own).scalars()) | set(conn.execute(by_network).scalars()))


def check_ports(conn: Connection, policy_id: str, port_ids: list[str]) -> None:
    """Neutron's validate_policy_for_ports: every rule must be one the driver applies."""
    rule_type = unsupported_rule(conn, policy_id) if port_ids else None
    if rule_type is not None:
        raise errors.QosRuleNotSupported(rule_type=rule_type, port_id=port_ids[0])


def replace_binding(
    conn: Connection,
    ctx: Context,
    owner: str,
    owner_id: str,
    policy_id: str | None,
    *,
    new: bool = False,
) -> None:
    """Give a port or a network (`owner`) the policy `policy_id` (None: none), as Neutron's
    QoS core extension does: the old policy may be taken off only by whoever may see it. A
    `new` owner has none to take off."""
    table = PORT_BINDING if owner == "port" else NETWORK_BINDING
    key = table.c[f"{owner}_id"]
    old = None if new else conn.execute(select(table.c.policy_id).where(key == owner_id)).scalar()
    if old is not None:
        seen = visible(ctx)
        if (
            conn.execute(
                select(POLICY.c.id).where(POLICY.c.id == old, *([] if seen is None else [seen]))
            ).first()
            is None
        ):
            raise errors.PolicyRemoveAuthorizationError(policy_id=old)
        conn.execute(delete(table).where(key == owner_id))
    if policy_id is not None:
        fetch(conn, ctx, policy_id)
        conn.execute(insert(table).values({f"{owner}_id": owner_id, "policy_id": policy_id}))


def bind_network(
    conn: Connection, ctx: Context, network_id: str, policy_id: str | None, *, new: bool = False
) -> None:
    """A network's policy; one with a rule the driver cannot apply is refused."""
    replace_binding(conn, ctx, "network", network_id, policy_id, new=new)
    rule_type = unsupported_rule(conn, policy_id) if policy_id is not None else None
    if rule_type is not None:
        raise errors.QosRuleNotSupportedByNetwork(rule_type=rule_type, network_id=network_id)


def bind_port(conn: Connection, ctx: Context, port_id: str, policy_id: str | None) -> None:
    """A port's own policy, then a check of the policy that applies to it."""
    replace_binding(conn, ctx, "port", port_id, policy_id)
    check_applied(conn, port_id, *port_policies(conn, [port_id])[port_id])


def bind_new_port(
    conn: Connection, ctx: Context, port_id: str, policy_id: str | None, by_network: str | None
) -> None:
    """`bind_port` for a port just made: it has no policy to replace and its network's
    (`by_network`) is known, so nothing needs reading back."""
    replace_binding(conn, ctx, "port", port_id, policy_id, new=True)
    check_applied(conn, port_id, policy_id, by_network)


def check_applied(conn: Connection, port_id: str, own: str | None, by_network: str | None) -> None:
    """The policy that applies to a port, its own or else its network's, must be one the driver
    applies."""
    if own or by_network:
        check_ports(conn, str(own or by_network), [port_id])


# -- services ----------------------------------------------------------------------------
class Policies(Listed):
    resource = "policy"

    def source(self, ctx: Context, query: ListQuery) -> Source:
        listing = LISTING.with_filters(
            shared=rbac.shared_filter("qos_policy", POLICY.c.id, ctx.project_id)
        )
        return Source(listing, visible(ctx), lambda conn, rows: render(conn, rows, ctx.project_id))

    def get(self, db: Database, ctx: Context, policy_id: str) -> dict[str, Any]:
        with db.read() as conn:
            return render(conn, [fetch(conn, ctx, policy_id)], ctx.project_id)[0]

    def create(self, db: Database, ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
        require_manager(ctx, values.get("project_id") or ctx.project_id, "create_policy")
        with db.write() as conn:
            row = common.standard_values(ctx, values)
            common.insert_resource(conn, POLICY, "qos_policy", row)
            policy = fetch(conn, ctx, row["id"])
            if values.get("shared"):
                rbac.set_shared(conn, "qos_policy", policy, True)
            if values.get("is_default"):
                set_default(conn, policy, True)
            return render(conn, [fetch(conn, ctx, row["id"])], ctx.project_id)[0]

    def update(
        self,
        db: Database,
        ctx: Context,
        policy_id: str,
        values: dict[str, Any],
        if_match: int | None,
    ) -> dict[str, Any]:
        with db.write() as conn:
            row = fetch(conn, ctx, policy_id)
            require_manager(ctx, row.project_id, "update_policy")
            common.check_revision(row, if_match)
            if "is_default" in values:
                set_default(conn, row, values.pop("is_default"))
            if "shared" in values:
                rbac.set_shared(conn, "qos_policy", row, values.pop("shared"))
            common.bump(conn, POLICY, "qos_policy", row, values)
            return render(conn, [fetch(conn, ctx, policy_id)], ctx.project_id)[0]

    def delete(self, db: Database, ctx: Context, policy_id: str) -> None:
        with db.write() as conn:
            row = fetch(conn, ctx, policy_id)
            require_manager(ctx, row.project_id, "delete_policy")
            for owner, table in (("network", NETWORK_BINDING), ("port", PORT_BINDING)):
                bound = conn.execute(
                    select(table.c[f"{owner}_id"]).where(table.c.policy_id == policy_id).limit(1)
                ).scalar()
                if bound is not None:
                    raise errors.QosPolicyInUse(
                        policy_id=policy_id, object_type=owner, object_id=bound
                    )
            conn.execute(delete(RULE).where(RULE.c.policy_id == policy_id))
            conn.execute(delete(DEFAULT).where(DEFAULT.c.policy_id == policy_id))
            common.delete_resource(conn, POLICY, "qos_policy", policy_id)

    def set_tags(
        self, db: Database, ctx: Context, policy_id: str, add: Tags, remove: Tags | None
    ) -> Tags:
        with db.write() as conn:
            row = fetch(conn, ctx, policy_id)
            require_manager(ctx, row.project_id, "update_policy")
            return common.set_tags(conn, POLICY, "qos_policy", row, add, remove)


def check_bandwidth_conflict(conn: Connection, policy_id: str, values: dict[str, Any]) -> None:
    """Neutron's check: a limit may not be below the minimum of its direction, nor the
    reverse."""
    direction = values.get("direction")
    for rule in rules_of(conn, [policy_id])[policy_id]:
        if rule["type"] == "dscp_marking" or (direction and rule["direction"] != direction):
            continue
        if (
            rule["type"] == "minimum_bandwidth"
            and values.get("max_kbps", INTEGER_MAX) < rule["min_kbps"]
        ):
            new, existing = "max_kbps", "min_kbps"
        elif rule["type"] == "bandwidth_limit" and values.get("min_kbps", 0) > rule["max_kbps"]:
            new, existing = "min_kbps", "max_kbps"
        else:
            continue
        raise errors.QoSRuleParameterConflict(
            rule_value=values[new],
            policy_id=policy_id,
            existing_rule=rule["type"],
            existing_value=rule[existing],
        )


class Rules:
    """The rules of one type, as a policy's sub-resource (and by ID alone: qos-rules-alias)."""

    def __init__(self, rule_type: RuleType) -> None:
        self.type = rule_type

    def _fetch(self, conn: Connection, policy_id: str, rule_id: str) -> Row:
        row = conn.execute(
            select(RULE).where(
                RULE.c.id == rule_id, RULE.c.policy_id == policy_id, RULE.c.type == self.type.name
            )
        ).first()
        if row is None:
            raise errors.QosRuleNotFound(policy_id=policy_id, rule_id=rule_id)
        return row

    def policy_of(self, db: Database, rule_id: str) -> str:
        with db.read() as conn:
            policy_id = conn.execute(
                select(RULE.c.policy_id).where(RULE.c.id == rule_id, RULE.c.type == self.type.name)
            ).scalar()
        if policy_id is None:
            raise errors.QosRuleNotFound(policy_id="", rule_id=rule_id)
        return str(policy_id)

    def list(
        self, db: Database, ctx: Context, policy_id: str, query: ListQuery
    ) -> tuple[list[dict[str, Any]], bool]:
        with db.read() as conn:
            fetch(conn, ctx, policy_id)
            listing = Listing(RULE, {"id": RULE.c.id}, unseen_marker_ignored=True)
            where = (RULE.c.policy_id == policy_id) & (RULE.c.type == self.type.name)
            rows, more = list_rows(conn, listing, query, where)
            return [rule_body(r) for r in rows], more

    def get(self, db: Database, ctx: Context, policy_id: str, rule_id: str) -> dict[str, Any]:
        with db.read() as conn:
            fetch(conn, ctx, policy_id)
            return rule_body(self._fetch(conn, policy_id, rule_id))

    def create(
        self, db: Database, ctx: Context, policy_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        action = f"create_policy_{self.type.member}"
        if not (ctx.is_admin or "manager" in ctx.roles):
            raise errors.PolicyNotAuthorized(action=action)
        with db.write() as conn:
            policy = fetch(conn, ctx, policy_id)
            require_manager(ctx, policy.project_id, action)
            check_bandwidth_conflict(conn, policy_id, values)
            rule_id = common.new_id()
            row = {"direction": "", **values, "id": rule_id, "policy_id": policy_id}
            self._check_duplicate(conn, policy_id, row)
            conn.execute(insert(RULE).values(**row, type=self.type.name))
            self._changed(conn, policy)
            return rule_body(self._fetch(conn, policy_id, rule_id))

    def update(
        self, db: Database, ctx: Context, policy_id: str, rule_id: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        with db.write() as conn:
            policy = fetch(conn, ctx, policy_id)
            row = self._fetch(conn, policy_id, rule_id)
            require_manager(ctx, policy.project_id, f"update_policy_{self.type.member}")
            check_bandwidth_conflict(conn, policy_id, values)
            self._check_duplicate(conn, policy_id, {**row._mapping, **values})
            if values:
                conn.execute(update(RULE).where(RULE.c.id == rule_id).values(**values))
            self._changed(conn, policy)
            return rule_body(self._fetch(conn, policy_id, rule_id))

    def delete(self, db: Database, ctx: Context, policy_id: str, rule_id: str) -> None:
        with db.write() as conn:
            policy = fetch(conn, ctx, policy_id)
            self._fetch(conn, policy_id, rule_id)
            require_manager(ctx, policy.project_id, f"delete_policy_{self.type.member}")
            conn.execute(delete(RULE).where(RULE.c.id == rule_id))
            common.bump(conn, POLICY, "qos_policy", policy)

    def _check_duplicate(self, conn: Connection, policy_id: str, rule: dict[str, Any]) -> None:
        """One rule of a type per policy (per direction for the directed types)."""
        same = conn.execute(
            select(RULE.c.id).where(
                RULE.c.policy_id == policy_id,
                RULE.c.type == self.type.name,
                RULE.c.direction == rule["direction"],
                RULE.c.id != rule["id"],
            )
        ).scalar()
        if same is not None:
            raise errors.QoSRulesConflict(
                new_rule_type=self.type.name, rule_id=same, policy_id=policy_id
            )

    @staticmethod
    def _changed(conn: Connection, policy: Row) -> None:
        """Where the policy applies, every rule must be one the driver applies."""
        check_ports(conn, policy.id, ports_using(conn, policy.id))
        common.bump(conn, POLICY, "qos_policy", policy)
