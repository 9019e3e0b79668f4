"""Property-based fuzzing of every POST and PUT of the Neutron and Octavia APIs, on both databases.

Bodies are drawn from the request shapes themselves (api/v2/attrs.py `Attr`,
api/octavia_shapes.py `Field`): each converter is read back (its factory
and the values it closes over) into a strategy of values it accepts, with
references to resources that exist (the caller's, another project's) or do
not. About half of the requests are then damaged: one value swapped for junk
(wrong types, huge numbers, odd strings, nested junk), an unknown or
read-only attribute added, a wrong envelope. List filters get the same
values. Every request must answer below 500, and one that fails must change
nothing: every collection (with revision numbers and statuses, as the change
feed's snapshot renders them), the change feed's revision and the quotas are
compared before and after.

The database is not reset between examples, so requests build on what
earlier ones created. Profiles: `NEUTRINO_FUZZ=ci` (the default: a fixed
number of examples, derandomized, within about two minutes per database) or
`NEUTRINO_FUZZ=long` (NEUTRINO_FUZZ_EXAMPLES examples, 5000 by default, a new
random seed each run) for runs by hand.
"""

from __future__ import annotations

import inspect
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from neutrino.api import octavia_shapes
from neutrino.api.v2.attrs import Attr, tag, uuid_str
from neutrino.api.v2.networks import NETWORK, PORT, SUBNET
from neutrino.api.v2.routers import FLOATINGIP, GATEWAY_INFO, HOST_ROUTE, ROUTER
from neutrino.api.v2.security_groups import SECURITY_GROUP, SECURITY_GROUP_RULE
from neutrino.services.quotas import NEUTRON_DEFAULTS as NEUTRON_QUOTAS
from tests.api.test_loadbalancers import LBAAS, realize
from tests.conftest import Api, ApiClient

settings.register_profile(
    "ci",
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    # The database is not reset between examples: replaying one to shrink it would not reproduce it.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "long",
    settings.get_profile("ci"),
    derandomize=False,
    max_examples=int(os.environ.get("NEUTRINO_FUZZ_EXAMPLES", "5000")),
)
PROFILE = settings.get_profile(os.environ.get("NEUTRINO_FUZZ", "ci"))

NEUTRON = {  # collection (URL) -> (member, attributes)
    "networks": ("network", NETWORK),
    "subnets": ("subnet", SUBNET),
    "ports": ("port", PORT),
    "routers": ("router", ROUTER),
    "floatingips": ("floatingip", FLOATINGIP),
    "security-groups": ("security_group", SECURITY_GROUP),
    "security-group-rules": ("security_group_rule", SECURITY_GROUP_RULE),
}
OCTAVIA = {  # collection -> (member, fields, parent collection in the URL)
    "loadbalancers": ("loadbalancer", octavia_shapes.LOADBALANCER, None),
    "listeners": ("listener", octavia_shapes.LISTENER, None),
    "pools": ("pool", octavia_shapes.POOL, None),
    "members": ("member", octavia_shapes.MEMBER, "pools"),
    "healthmonitors": ("healthmonitor", octavia_shapes.HEALTHMONITOR, None),
    "l7policies": ("l7policy", octavia_shapes.L7POLICY, None),
    "rules": ("rule", octavia_shapes.L7RULE, "l7policies"),
}
# An attribute holding an ID refers to this collection.
REFERS_TO = {
    "network_id": "networks", "floating_network_id": "networks", "vip_network_id": "networks",
    "subnet_id": "subnets", "vip_subnet_id": "subnets", "port_id": "ports", "vip_port_id": "ports",
    "security_group_id": "security-groups", "remote_group_id": "security-groups",
    "security_groups": "security-groups", "loadbalancer_id": "loadbalancers",
    "listener_id": "listeners", "pool_id": "pools", "default_pool_id": "pools",
    "redirect_pool_id": "pools",
}  # fmt: skip

# -- values ------------------------------------------------------------------------------
ODD_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "é", "ℕ𝔢𝔲", "🦀", "\u202e", "\n",
    "x" * 256, "x" * 5000, "%00",
    "../..", "' OR 1=1 --", "null", "0", "-1", "1e999", "10.0.0.0/33", "::", "ff:ff:ff:ff:ff:ff",
    "a,b", "a/b",
])  # fmt: skip
HUGE = st.sampled_from(
    [-1, 0, 2**31, 2**31 - 1, -(2**31) - 1, 2**63 - 1, -(2**63), 2**64, 10**30, 1.5, -0.0, 1e308]
)
SCALARS = st.one_of(st.none(), st.booleans(), HUGE, st.integers(), ODD_TEXT, st.text(max_size=20))


def nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.one_of(ODD_TEXT, st.text(max_size=8))
    return st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3)


JUNK = st.recursive(SCALARS, nested, max_leaves=8)
ADDRESSES = [
    "10.1.0.10", "10.1.0.1", "10.1.0.255", "10.2.0.20", "172.24.4.30", "192.0.2.1", "fe80::1",
    "2001:db8::5", "0.0.0.0", "255.255.255.255",
]  # fmt: skip
NETS = [
    "10.1.0.0/24", "10.1.0.128/25", "10.9.0.0/24", "10.2.0.0/16", "172.24.4.0/24", "0.0.0.0/0",
    "2001:db8::/64", "192.168.7.0/24",
]  # fmt: skip


def closure(convert: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """A converter's factory (`string`, `ranged_int`, ...) or own name, and what it closes over."""
    name = convert.__qualname__.split(".<locals>")[0]
    return name, dict(inspect.getclosurevars(convert).nonlocals)


@dataclass
class World:
    """What exists now (the latest `state`), for references by ID."""

    api: Api
    state: dict[str, Any] = field(default_factory=dict)

    def ids(self, collection: str) -> list[str]:
        model = self.state["model"]
        groups, lbs = model["security_groups"], model["loadbalancers"]
        listeners = [listener for lb in lbs for listener in lb["listeners"]]
        pools = [pool for lb in lbs for pool in lb["pools"]]
        policies = [policy for listener in listeners for policy in listener["l7policies"]]
        nested = {
            "security-groups": groups,
            "security-group-rules": [r for g in groups for r in g["security_group_rules"]],
            "listeners": listeners,
            "pools": pools,
            "members": [m for pool in pools for m in pool["members"]],
            "healthmonitors": [pool["healthmonitor"] for pool in pools if pool["healthmonitor"]],
            "l7policies": policies,
            "rules": [rule for policy in policies for rule in policy["rules"]],
        }
        return [item["id"] for item in nested.get(collection) or model[collection]]

    def reference(self, collection: str) -> st.SearchStrategy[str]:
        """Mostly an existing ID, else a missing one. What exists changes between examples, so
        the draws never depend on it (Hypothesis requires that): an index is drawn, then taken
        modulo what exists."""

        def pick(choice: tuple[bool, int, str]) -> str:
            exists, index, missing = choice
            existing = self.ids(collection)
            return existing[index % len(existing)] if exists and existing else missing

        return st.tuples(
            st.integers(0, 3).map(bool), st.integers(0, 2**16), st.uuids().map(str)
        ).map(pick)

    def valid(self, name: str, convert: Callable[..., Any]) -> st.SearchStrategy[Any]:
        """Values `convert` accepts (mostly), shaped by what the attribute `name` means."""
        kind, bound = closure(convert)
        maybe_none = st.none() if bound.get("allow_none") else st.nothing()
        if name in REFERS_TO and kind in ("uuid_str", "list_of"):
            ref = self.reference(REFERS_TO[name])
            return st.lists(ref, max_size=2) if kind == "list_of" else ref | maybe_none
        simple: dict[str, st.SearchStrategy[Any]] = {
            "string": st.text(max_size=min(bound.get("max_len", 255), 30)),
            "boolean": st.booleans(),
            "integer": st.integers(-5, 70000),
            "uuid_str": st.uuids().map(str),
            "ip_address": st.sampled_from(ADDRESSES),
            "cidr": st.sampled_from(NETS),
            "ip_or_cidr": st.sampled_from(ADDRESSES + NETS),
            "remote_ip_prefix": st.none() | st.sampled_from(ADDRESSES + NETS),
            "mac_address": st.sampled_from(
                ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02", "FA-16-3E-00-00-03"]
            ),
            "project_id": st.sampled_from(
                [
                    self.api.demo.project_id,
                    self.api.demo2.project_id,
                    self.api.admin.project_id,
                    "someone-else",
                ]
            ),
            "tag": st.text(
                st.characters(blacklist_characters=",/", blacklist_categories=["Cs"]),
                min_size=1,
                max_size=10,
            ),
            "ethertype": st.sampled_from(["IPv4", "IPv6", "ipv4"]),
            "protocol": st.sampled_from(
                [None, "tcp", "udp", "icmp", "ipv6-icmp", "6", 17, 132, "any"]
            ),
            "expected_codes": st.sampled_from(["200", "200,202", "200-204"]),
            "url_path": st.sampled_from(["/", "/health", "/a?b=c"]),
            "redirect_url": st.sampled_from(["http://example.com/", "https://example.org/x"]),
            "header_name": st.sampled_from(["X-Forwarded-For", "Cookie1"]),
            "word": st.text(
                st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="\"'"),
                min_size=1,
                max_size=12,
            ),
        }
        if kind in simple:
            return simple[kind] | maybe_none
        if kind == "ranged_int":
            return st.integers(bound["low"], bound["high"]) | maybe_none
        if kind == "one_of":
            return st.sampled_from([*bound["choices"], *([None] if bound["allow_none"] else [])])
        if kind == "optional":
            return st.none() | self.valid(name, bound["convert"])
        if kind == "list_of":
            return st.lists(self.valid(name, bound["item"]), max_size=3)
        if kind == "dict_of":
            return self.dictionary(bound["spec"])
        if kind == "gateway_info":
            return st.none() | st.just({}) | self.dictionary(GATEWAY_INFO_SPEC)
        return JUNK  # read-only attributes (no converter) and anything not known here

    def dictionary(
        self, spec: dict[str, tuple[Callable[..., Any], bool]]
    ) -> st.SearchStrategy[dict[str, Any]]:
        """A `dict_of` value: `spec[key] = (converter, required)`."""
        return st.fixed_dictionaries(
            {k: self.valid(k, c) for k, (c, required) in spec.items() if required},
            optional={k: self.valid(k, c) for k, (c, required) in spec.items() if not required},
        )


GATEWAY_INFO_SPEC = closure(GATEWAY_INFO)[1]["spec"]
JSON = {"Content-Type": "application/json"}


Shape = dict[
    str, tuple[Callable[..., Any], bool]
]  # attribute -> (converter, whether it may be sent)


def attributes(data: st.DataObject, world: World, shape: Shape) -> dict[str, Any]:
    """Some of the attributes that may be sent, with values their converters accept (mostly)."""
    sendable = sorted(name for name, (_convert, allowed) in shape.items() if allowed)
    chosen = (
        data.draw(st.lists(st.sampled_from(sendable), unique=True, max_size=len(sendable)))
        if sendable
        else []
    )
    return {name: data.draw(world.valid(name, shape[name][0]), label=name) for name in chosen}


def body(data: st.DataObject, world: World, member: str, shape: Shape) -> Any:
    """`{member: {...}}` from `shape`, then perhaps damaged."""
    values = attributes(data, world, shape)
    damage = data.draw(
        st.sampled_from(["none"] * 5 + ["junk value", "unknown key", "read-only key", "envelope"])
    )
    if damage == "junk value" and values:
        values[data.draw(st.sampled_from(sorted(values)))] = data.draw(JUNK, label="junk")
    elif damage == "unknown key":
        values[data.draw(st.text(max_size=10) | ODD_TEXT)] = data.draw(JUNK)
    elif damage == "read-only key":
        read_only = sorted(name for name, (_convert, allowed) in shape.items() if not allowed)
        values[data.draw(st.sampled_from(read_only or sorted(shape)))] = data.draw(JUNK)
    elif damage == "envelope":
        return data.draw(
            st.sampled_from(
                [
                    values,
                    [values],
                    {member: values, "extra": 1},
                    {member: [values]},
                    {member + "s": values},
                    None,
                    7,
                ]
            )
        )
    return {member: values}


def neutron_shape(attrs: dict[str, Attr], create: bool, admin: bool) -> Shape:
    return {
        name: (a.convert, (a.post if create else a.put) and (admin or not a.admin_only))
        for name, a in attrs.items()
    }


def octavia_shape(fields: dict[str, octavia_shapes.Field], create: bool) -> Shape:
    return {name: (f.convert, create or f.put) for name, f in fields.items()}


# -- requests --------------------------------------------------------------------------------
Request = tuple[str, str, Any]  # method, path (from the API's root), JSON body


def neutron_request(data: st.DataObject, world: World, admin: bool) -> Request:
    kind = data.draw(
        st.sampled_from(
            [
                "create",
                "bulk create",
                "update",
                "tags",
                "one tag",
                "router action",
                "quota",
                "filter",
            ]
        )
    )
    if kind == "router action":
        action = data.draw(
            st.sampled_from(
                [
                    "add_router_interface",
                    "remove_router_interface",
                    "add_extraroutes",
                    "remove_extraroutes",
                ]
            )
        )
        payload: Any = (
            data.draw(
                world.dictionary({"subnet_id": (uuid_str(), False), "port_id": (uuid_str(), False)})
            )
            if action.endswith("interface")
            else {
                "router": {
                    "routes": data.draw(st.lists(world.dictionary(HOST_ROUTE_SPEC), max_size=2))
                }
            }
        )
        if data.draw(st.booleans()):
            payload = data.draw(JUNK)
        return (
            "PUT",
            f"/networking/v2.0/routers/{data.draw(world.reference('routers'))}/{action}",
            payload,
        )
    if kind == "quota":
        project = data.draw(st.sampled_from([world.api.demo2.project_id, "another-project"]))
        limits = data.draw(
            st.dictionaries(
                st.sampled_from([*NEUTRON_QUOTAS, "check_limit"]), st.integers(-1, 100), max_size=3
            )
        )
        return (
            "PUT",
            f"/networking/v2.0/quotas/{project}",
            ({"quota": limits} if data.draw(st.booleans()) else data.draw(JUNK)),
        )
    collection = data.draw(st.sampled_from(sorted(NEUTRON)))
    member, attrs = NEUTRON[collection]
    base = f"/networking/v2.0/{collection}"
    target = data.draw(world.reference(collection))
    if kind == "filter":
        name = data.draw(st.sampled_from(sorted(attrs)))
        value = data.draw(world.valid(name, attrs[name].convert) | JUNK)
        return (
            "GET",
            f"{base}?{quote(name)}={quote(str(value), safe='', errors='surrogatepass')}",
            None,
        )
    if kind == "tags":
        return (
            "PUT",
            f"{base}/{target}/tags",
            data.draw(
                st.fixed_dictionaries({"tags": st.lists(world.valid("tag", tag), max_size=3)})
                | JUNK
            ),
        )
    if kind == "one tag":
        return (
            "PUT",
            f"{base}/{target}/tags/{quote(data.draw(world.valid('tag', tag)), safe='')}",
            None,
        )
    shape = neutron_shape(attrs, kind != "update", admin)
    if kind == "bulk create":
        return (
            "POST",
            base,
            {
                member + "s": [
                    attributes(data, world, shape) for _ in range(data.draw(st.integers(1, 2)))
                ]
            },
        )
    if kind == "create":
        return "POST", base, body(data, world, member, shape)
    return "PUT", f"{base}/{target}", body(data, world, member, shape)


def octavia_request(data: st.DataObject, world: World) -> Request:
    kind = data.draw(st.sampled_from(["create", "update", "quota"]))
    if kind == "quota":
        project = data.draw(st.sampled_from([world.api.demo2.project_id, "another-project"]))
        return (
            "PUT",
            f"{LBAAS}/quotas/{project}",
            body(data, world, "quota", octavia_shape(octavia_shapes.QUOTA, False)),
        )
    collection = data.draw(st.sampled_from(sorted(OCTAVIA)))
    member, fields, parent = OCTAVIA[collection]
    base = f"{LBAAS}/{collection}"
    if parent is not None:
        base = f"{LBAAS}/{parent}/{data.draw(world.reference(parent))}/{collection}"
    if kind == "update":
        return (
            "PUT",
            f"{base}/{data.draw(world.reference(collection))}",
            body(data, world, member, octavia_shape(fields, False)),
        )
    payload = body(data, world, member, octavia_shape(fields, True))
    tree = collection == "loadbalancers" and isinstance(payload, dict) and member in payload
    if tree and isinstance(payload[member], dict) and data.draw(st.booleans()):
        payload[member] |= populated_tree(data, world)
    return "POST", base, payload


def populated_tree(data: st.DataObject, world: World) -> dict[str, Any]:
    """Listeners and pools of a fully populated load balancer create."""

    def part(fields: dict[str, octavia_shapes.Field], *parents: str) -> dict[str, Any]:
        shape = octavia_shape(octavia_shapes.without(fields, *parents), True)
        return data.draw(
            world.dictionary(
                {
                    k: (
                        c,
                        k
                        in (
                            "protocol",
                            "protocol_port",
                            "lb_algorithm",
                            "address",
                            "type",
                            "delay",
                            "timeout",
                            "max_retries",
                            "action",
                            "compare_type",
                            "value",
                            "name",
                        ),
                    )
                    for k, (c, allowed) in shape.items()
                    if allowed
                }
            )
        )

    pools = [
        part(octavia_shapes.POOL, "loadbalancer_id", "listener_id")
        | {"members": [part(octavia_shapes.MEMBER)] * data.draw(st.integers(0, 1))}
        for _ in range(data.draw(st.integers(0, 2)))
    ]
    listeners = [
        part(octavia_shapes.LISTENER, "loadbalancer_id")
        | {
            "default_pool": data.draw(
                st.sampled_from([None, *({"name": p["name"]} for p in pools)])
            ),
            "l7policies": [
                part(octavia_shapes.L7POLICY, "listener_id")
                | {"rules": [part(octavia_shapes.L7RULE)]}
            ]
            * data.draw(st.integers(0, 1)),
        }
        for _ in range(data.draw(st.integers(0, 2)))
    ]
    return {"listeners": listeners, "pools": pools}


HOST_ROUTE_SPEC = closure(HOST_ROUTE)[1]["spec"]


# -- observing -----------------------------------------------------------------------------
def state(api: Api) -> dict[str, Any]:
    """Everything a failed call must leave as it was: every collection, rendered as the API renders
    it (revision numbers, statuses, load balancers with their whole trees) in the change feed's
    snapshot, with the feed's own revision; and the quotas of both APIs."""
    headers = {"X-Auth-Token": api.admin.token}
    return {
        "model": api.admin.http.get("/internal/v1/snapshot", headers=headers).json(),
        "neutron quotas": api.admin.get("/quotas").json()["quotas"],
        "octavia quotas": api.admin.http.get(f"{LBAAS}/quotas", headers=headers).json()["quotas"],
    }


def settled(api: Api) -> dict[str, Any]:
    """The state once every load balancer is reported running (as an agent would), so that none
    is left pending for the server's housekeeping to change meanwhile."""
    seen = state(api)
    while any(
        lb["provisioning_status"].startswith("PENDING_") for lb in seen["model"]["loadbalancers"]
    ):
        realize(api)
        seen = state(api)
    return seen


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed, item by item."""
    out = []
    for key in ("neutron quotas", "octavia quotas", *before["model"]):
        old = before[key] if key in before else before["model"][key]
        new = after[key] if key in after else after["model"][key]
        if isinstance(old, list):
            old, new = (
                {item.get("id", item.get("project_id")): item for item in items}
                for items in (old, new)
            )
            out += [
                f"{key} {i}: {old.get(i)!r} -> {new.get(i)!r}"
                for i in old.keys() | new.keys()
                if old.get(i) != new.get(i)
            ]
        elif old != new:
            out.append(f"{key}: {old!r} -> {new!r}")
    return out


def make_world(api: Api) -> None:
    """Resources of three projects to refer to: an external network, the demo project's network,
    router, floating IP, security group and load balancer tree, and demo2's network."""
    ext = api.admin.create("networks", name="ext", **{"router:external": True})
    api.admin.create("subnets", network_id=ext["id"], cidr="172.24.4.0/24", ip_version=4)
    net = api.demo.create("networks", name="net1")
    sub = api.demo.create("subnets", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    port = api.demo.create("ports", network_id=net["id"])
    router = api.demo.create("routers", name="r1", external_gateway_info={"network_id": ext["id"]})
    assert api.demo.put(
        f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]}
    ).is_success
    api.demo.create("floatingips", floating_network_id=ext["id"], port_id=port["id"])
    group = api.demo.create("security-groups", name="sg1")
    api.demo.create(
        "security-group-rules", security_group_id=group["id"], direction="ingress", protocol="tcp"
    )
    other = api.demo2.create("networks", name="net2")
    api.demo2.create("subnets", network_id=other["id"], cidr="10.2.0.0/24", ip_version=4)
    api.demo2.create("security-groups", name="sg2")
    lbaas = ApiClient(
        api.demo.http, api.demo.token, api.demo.project_id, api.demo.user_id, prefix=LBAAS
    )
    tree = {
        "name": "lb1",
        "vip_subnet_id": sub["id"],
        "listeners": [
            {
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {"name": "p1"},
                "l7policies": [
                    {
                        "action": "REJECT",
                        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}],
                    }
                ],
            }
        ],
        "pools": [
            {
                "name": "p1",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": "10.1.0.20", "protocol_port": 8080}],
                "healthmonitor": {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2},
            }
        ],
    }
    response = lbaas.post("/loadbalancers", json={"loadbalancer": tree})
    assert response.status_code == 201, response.text


def test_fuzz_posts_and_puts(api: Api) -> None:
    make_world(api)
    world = World(api, settled(api))
    outcomes: Counter[str] = Counter()

    @PROFILE
    @given(st.data())
    def one_request(data: st.DataObject) -> None:
        caller = data.draw(st.sampled_from([api.demo, api.admin]), label="caller")
        is_admin = caller is api.admin
        method, path, payload = (
            neutron_request(data, world, is_admin)
            if data.draw(st.booleans())
            else octavia_request(data, world)
        )
        # As json.dumps writes it: ASCII, lone surrogates escaped, as any client may send them.
        response = caller.http.request(
            method,
            path,
            headers={"X-Auth-Token": caller.token, **JSON},
            content=None if payload is None else json.dumps(payload),
        )
        outcomes[f"{response.status_code // 100}xx"] += 1
        request = f"{'admin' if is_admin else 'demo'} {method} {path} {payload!r}"
        assert response.status_code < 500, f"{request}\n-> {response.status_code} {response.text}"
        # A GET changes things too: a project's first list of security groups makes its default
        # group, as in Neutron.
        after = settled(api)
        if response.status_code >= 400:
            changed = differences(world.state, after)
            assert not changed, (
                f"{request}\n-> {response.status_code} {response.text}\nchanged: {changed}"
            )
        world.state = after

    one_request()
    print(f"fuzzed {sum(outcomes.values())} requests: {dict(sorted(outcomes.items()))}")
