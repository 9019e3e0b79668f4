"""The APIs' errors in sentences for people: resources named by their names, quotas by what they
count, and a taken address by who holds it. The APIs' own error bodies stay as they are; only
the dashboard rewords them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from neutrino.web.clients import Api, ApiError

NET, LAB = "network", "lab"
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
COUNTED = {
    "network": "networks",
    "subnet": "subnets",
    "port": "ports",
    "router": "routers",
    "floatingip": "floating IPs",
    "security_group": "security groups",
    "security_group_rule": "security group rules",
    "subnetpool": "subnet pools",
    "rbac_policy": "RBAC policies",
    "trunk": "trunks",
}
# What a UUID in a message may be, in the order asked: (API, collection, label).
KINDS = (
    (NET, "networks", "network"),
    (NET, "subnets", "subnet"),
    (NET, "ports", "port"),
    (NET, "routers", "router"),
    (NET, "security-groups", "security group"),
    (NET, "floatingips", "floating IP"),
    (LAB, "instances", "instance"),
)
POLICY = re.compile(r"rule:(\w+?)_(\w+?)((?::[\w:]+)?) is disallowed by policy")
VERBS = {"create": "set", "update": "change", "delete": "delete", "get": "see"}
ATTRIBUTES = {"enable_snat": "SNAT", "external_fixed_ips": "gateway addresses", "shared": "sharing"}
IMMUTABLE = re.compile(r"Load Balancer (\S+) is immutable and cannot be updated\.")
INVALID_FIELD = re.compile(r"Invalid input for field/attribute (\w+)\. Value: '(.*?)'\. (.*)")


async def for_people(api: Api, error: ApiError) -> str:
    """`error` as a sentence for the dashboard's user."""
    message = str(error)
    if error.kind == "OverQuota" or message.startswith("Quota has been met"):
        return over_quota(message)
    if error.kind in ("IpAddressAlreadyAllocated", "IpAddressInUse") and (
        address := ADDRESS.search(message)
    ):
        holder = await holder_of(api, address.group())
        if holder:
            return f"The address {address.group()} is already used by {holder}."
    if refused := POLICY.fullmatch(message):
        return refused_by_policy(*refused.groups())
    if busy := IMMUTABLE.fullmatch(message):
        return (
            f"Load balancer {await lb_name(api, busy.group(1))} is still applying an earlier "
            "change (PENDING_UPDATE) and cannot change until it is done: try again in a moment."
        )
    if field := INVALID_FIELD.fullmatch(message):
        name, value, reason = field.groups()
        return f"{name.replace('_', ' ').capitalize()} '{value}' is not valid: {reason}"
    return await with_names(api, message)


def refused_by_policy(verb: str, resource: str, attribute: str) -> str:
    """`rule:update_router:external_gateway_info:enable_snat` as what the user may not do."""
    noun = resource.replace("_", " ")
    name = attribute.rsplit(":", 1)[-1]
    one = ("an " if noun[0] in "aeiou" else "a ") + noun
    what = f"the {ATTRIBUTES.get(name, name.replace('_', ' '))} of {one}" if name else one
    return (
        f"You may not {VERBS.get(verb, verb)} {what}: the cloud's policy leaves that "
        "to administrators."
    )


async def lb_name(api: Api, lb_id: str) -> str:
    try:
        found = await api.get("load-balancer", f"/v2/lbaas/loadbalancers/{lb_id}")
    except ApiError:
        return lb_id
    return str(found["loadbalancer"]["name"] or lb_id)


def over_quota(message: str) -> str:
    listed = re.findall(r"'(\w+)'", message) or re.findall(r": ([\w ]+)$", message)
    counted = ", ".join(COUNTED.get(r, r.replace("_", " ").lower() + "s") for r in listed)
    return (
        f"The project has no quota left for more {counted or 'of these'}: delete some it no "
        "longer needs, or ask an administrator to raise the quota."
    )


async def holder_of(api: Api, address: str) -> str:
    """The port (and the instance or router it belongs to) that has `address`, as words."""
    try:
        found = await api.get(NET, "/v2.0/ports", fixed_ips=f"ip_address={address}")
    except ApiError:
        return ""
    if not found["ports"]:
        return ""
    port = found["ports"][0]
    said = f"port {port['name'] or port['id'][:8]}"
    owner = port["device_owner"]
    if owner.startswith("compute:"):
        instance = await name_of(api, LAB, "instances", port["device_id"])
        said += f" of instance {instance or port['device_id'][:8]}"
    elif owner.startswith("network:router"):
        router = await name_of(api, NET, "routers", port["device_id"])
        said += f" of router {router or port['device_id'][:8]}"
    elif owner:
        said += f" ({owner})"
    return said


async def name_of(api: Api, service: str, collection: str, resource_id: str) -> str:
    path = f"/v2.0/{collection}" if service == NET else f"/v1/{collection}"
    try:
        found: list[dict[str, Any]] = (await api.get(service, path, id=resource_id))[
            collection.replace("-", "_")
        ]
    except ApiError:
        return ""
    if not found:
        return ""
    item = found[0]
    return str(item.get("name") or item.get("cidr") or item.get("floating_ip_address") or "")


async def with_names(api: Api, message: str) -> str:
    """`message` with each UUID the user may see replaced by the resource's kind and name."""
    for resource_id in dict.fromkeys(UUID.findall(message)):
        names = await asyncio.gather(
            *[name_of(api, service, collection, resource_id) for service, collection, _ in KINDS]
        )
        label, name = next(
            ((label, name) for (_, _, label), name in zip(KINDS, names) if name), ("", "")
        )
        if name:
            # "Network <id>" becomes "Network web", a bare id "network web".
            said = name.replace("\\", "\\\\")
            message = re.sub(
                rf"\b({re.escape(label)}) {resource_id}",
                rf"\1 {said}",
                message,
                flags=re.IGNORECASE,
            )
            message = message.replace(resource_id, f"{label} {name}")
    return message


def deletion_report(called: str, deleted: list[str], failed: list[tuple[str, str]]) -> str:
    """What "Delete selected" did, a line for each item: deleted, or why not."""
    return "\n".join(
        [f"Deleted {called} {name}." for name in deleted]
        + [f"Could not delete {called} {name}: {why}" for name, why in failed]
    )
