"""`neutrino port plug|unplug`: bind a port to a device that a VM or a container has on a host.

What Nova does with Neutron, in one command: the port's `binding:host_id` is
the host whose agent plugs it, and `binding:profile` {"device": NAME} names
the device there (without it, tap + the port id's first 11 characters, the
name Nova gives a VM's tap). That agent puts the device on the port's network
with the port's security groups and anti-spoofing; the port is ACTIVE while
the device is up, DOWN when it is gone.
"""

from __future__ import annotations

import json
import socket
from typing import Annotated, Any

import typer
from rich.table import Table

from neutrino.cli.output import fail, out
from neutrino.cli.resources import PORT, find_id
from neutrino.client import ClientError, Cloud, Session
from neutrino.plan import names

app = typer.Typer(
    no_args_is_help=True, help="Ports bound to devices that VMs and containers have on a host."
)

CloudOption = Annotated[
    str | None, typer.Option("--os-cloud", help="Cloud in clouds.yaml \\[env: OS_CLOUD]")
]
Format = Annotated[str, typer.Option("-f", "--format", help="table or json")]


def _update(os_cloud: str | None, ref: str, values: dict[str, Any]) -> dict[str, Any]:
    session = Session(Cloud.load(os_cloud))
    base = session.endpoint("network") + "/v2.0/ports"
    port_id = find_id(session, PORT, ref)
    port: dict[str, Any] = session.call("PUT", f"{base}/{port_id}", json={"port": values})["port"]
    return port


def _show(port: dict[str, Any], fmt: str) -> None:
    bound = bool(port["binding:host_id"])
    shown = {
        "id": port["id"],
        "status": port["status"],
        "host": port["binding:host_id"],
        "device": names.device(port) if bound else "",
        "bridge": port["binding:vif_details"].get("bridge_name", ""),
        "mac_address": port["mac_address"],
        "fixed_ips": " ".join(ip["ip_address"] for ip in port["fixed_ips"]),
    }
    if fmt == "json":
        out.print_json(json.dumps(shown))
        return
    table = Table(show_header=False)
    for key, value in shown.items():
        table.add_row(key, value)
    out.print(table)


@app.command()
def plug(
    port: Annotated[str, typer.Argument(help="Port name or ID")],
    device: Annotated[
        str | None,
        typer.Option(help="The device on the host \\[default: tap + the port ID's first 11]"),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="The host whose agent plugs it \\[default: this hostname]")
    ] = None,
    os_cloud: CloudOption = None,
    fmt: Format = "table",
) -> None:
    """Bind PORT to a device on a host (an administrator's call, as Nova's): its agent puts the
    device, made or still to be made by a VM or a container, on the port's network."""
    values = {
        "binding:host_id": host or socket.gethostname(),
        "binding:profile": {"device": device} if device else {},
    }
    try:
        _show(_update(os_cloud, port, values), fmt)
    except ClientError as error:
        fail(error)


@app.command()
def unplug(
    port: Annotated[str, typer.Argument(help="Port name or ID")],
    os_cloud: CloudOption = None,
    fmt: Format = "table",
) -> None:
    """Unbind PORT: its agent takes the device off the network (and leaves it otherwise)."""
    try:
        _show(_update(os_cloud, port, {"binding:host_id": "", "binding:profile": {}}), fmt)
    except ClientError as error:
        fail(error)
