"""`/lab/v1`: lab instances, for people and tests that need something sending packets.

Instances are a resource like any other (same list, filter and tag
semantics as the networking API). `POST /lab/v1/instances/{id}/exec` runs a
command inside one; it works when the instance runs on this machine, which
is where the embedded agent puts it.
"""

from __future__ import annotations

from typing import Any

from neutrino import errors
from neutrino.api.v2 import Collection
from neutrino.api.v2.attrs import Attr, dict_of, ip_address, list_of, standard, string, uuid_str
from neutrino.context import Context
from neutrino.db import Database
from neutrino.lab.instance import exec_in_instance
from neutrino.services import instances

NETWORK_REF = dict_of({"network_id": (uuid_str(), True), "fixed_ip": (ip_address(), False)})

INSTANCE = {
    **standard(),
    "host": Attr(string(), sort=True),
    "networks": Attr(list_of(NETWORK_REF, max_items=8), filter=False),
    "ports": Attr(list_of(uuid_str(), max_items=8, unique=True), filter=False),
    "status": Attr(post=False, sort=True),
    "port_ids": Attr(post=False, filter=False),
    "netns": Attr(post=False),
    "addresses": Attr(post=False, filter=False),
}

EXEC = dict_of(
    {
        "command": (list_of(string(4096), max_items=256), True),
        "timeout": (lambda v: float(v), False),
    }
)


def run_command(db: Database, ctx: Context, ref: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.BadRequest(
            resource="exec", msg='expected {"command": [...], "timeout": seconds}'
        )
    request = EXEC(body)
    if not request["command"]:
        raise errors.BadRequest(resource="exec", msg="'command' must not be empty")
    with db.read() as conn:
        row = instances.fetch(conn, ctx, ref)
    if not row.netns:
        raise errors.Conflict(
            f"Instance {row.name or row.id} is not running yet (status {row.status})."
        )
    timeout = min(max(request.get("timeout", 30.0), 0.1), 600.0)
    status, stdout, stderr = exec_in_instance(row.netns, request["command"], timeout)
    return {"exit_status": status, "stdout": stdout, "stderr": stderr}


def collection(default_host: str) -> Collection:
    return Collection(
        "instances",
        "instance",
        INSTANCE,
        instances.Instances(default_host),
        actions={"exec": run_command},
    )
