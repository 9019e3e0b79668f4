"""`neutrino instance ...`: lab instances, through the public lab API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from neutrino.cli.output import err, fail, out
from neutrino.cli.resources import INSTANCE, NETWORK, PORT, find, find_id
from neutrino.client import ClientError, Cloud, Session

app = typer.Typer(
    no_args_is_help=True, help="Lab instances: namespaces plugged into networks like VMs."
)

CloudOption = Annotated[
    str | None, typer.Option("--os-cloud", help="Cloud in clouds.yaml \\[env: OS_CLOUD]")
]
Format = Annotated[str, typer.Option("-f", "--format", help="table or json")]


class Lab:
    def __init__(self, cloud: str | None) -> None:
        self.session = Session(Cloud.load(cloud))
        self.base = self.session.endpoint("lab") + "/v1/instances"

    def get(self, ref: str) -> dict[str, Any]:
        """An instance by name or ID."""
        return find(self.session, INSTANCE, ref)

    def reload(self, instance_id: str) -> dict[str, Any]:
        return self.session.call("GET", f"{self.base}/{instance_id}")["instance"]


def show_one(item: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        out.print_json(json.dumps(item))
        return
    table = Table(show_header=False)
    shown = ("id", "name", "status", "host", "host_status", "availability_zone", "addresses")
    for key in (*shown, "port_ids", "netns", "project_id"):
        if key not in item:  # host_status, which only an administrator is shown
            continue
        value = item[key]
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    out.print(table)


@app.command()
def create(
    name: str,
    network: Annotated[
        list[str] | None, typer.Option(help="Network name or ID (repeatable)")
    ] = None,
    fixed_ip: Annotated[
        list[str] | None, typer.Option(help="Address on the matching --network")
    ] = None,
    port: Annotated[list[str] | None, typer.Option(help="Port name or ID (repeatable)")] = None,
    host: Annotated[
        str | None, typer.Option(help="Host to run it on (an administrator's choice)")
    ] = None,
    availability_zone: Annotated[
        str | None, typer.Option(help="Availability zone whose hosts may run it")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for its addresses")] = 60.0,
    os_cloud: CloudOption = None,
    fmt: Format = "table",
) -> None:
    """Create an instance and wait until it has its addresses (by DHCP)."""
    try:
        lab = Lab(os_cloud)
        ips = fixed_ip or []
        nets = [
            {
                "network_id": find_id(lab.session, NETWORK, ref),
                **({"fixed_ip": ips[i]} if i < len(ips) else {}),
            }
            for i, ref in enumerate(network or [])
        ]
        ports = [find_id(lab.session, PORT, ref) for ref in port or []]
        body: dict[str, Any] = {"name": name, "networks": nets, "ports": ports}
        if host:
            body["host"] = host
        if availability_zone:
            body["availability_zone"] = availability_zone
        item = lab.session.call("POST", lab.base, json={"instance": body})["instance"]
        deadline = time.monotonic() + timeout
        with err.status(f"waiting for {name} to get its addresses"):
            while item["status"] != "ACTIVE":
                if time.monotonic() > deadline:
                    raise ClientError(
                        0,
                        f"{name} has no address after {timeout:.0f}s (status {item['status']}); "
                        "is an agent running for its host?",
                    )
                time.sleep(0.1)
                item = lab.reload(item["id"])
    except ClientError as error:
        fail(error)
    show_one(item, fmt)


@app.command("list")
def list_(os_cloud: CloudOption = None, fmt: Format = "table") -> None:
    """List instances."""
    try:
        lab = Lab(os_cloud)
        items = lab.session.call("GET", lab.base)["instances"]
    except ClientError as error:
        fail(error)
    if fmt == "json":
        out.print_json(json.dumps(items))
        return
    table = Table("ID", "Name", "Status", "Host", "Addresses")
    for item in items:
        table.add_row(
            item["id"], item["name"], item["status"], item["host"], ", ".join(item["addresses"])
        )
    out.print(table)


@app.command()
def show(instance: str, os_cloud: CloudOption = None, fmt: Format = "table") -> None:
    """Show one instance (by name or ID)."""
    try:
        item = Lab(os_cloud).get(instance)
    except ClientError as error:
        fail(error)
    show_one(item, fmt)


@app.command()
def delete(instances: list[str], os_cloud: CloudOption = None) -> None:
    """Delete instances: their namespaces, every process inside, and the ports made for them."""
    try:
        lab = Lab(os_cloud)
        for instance_id in [lab.get(ref)["id"] for ref in instances]:  # all found, or none deleted
            lab.session.call("DELETE", f"{lab.base}/{instance_id}")
    except ClientError as error:
        fail(error)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    instance: str,
    command: Annotated[
        list[str] | None, typer.Argument(help="The command, after -- (with -t: a shell)")
    ] = None,
    interactive: Annotated[
        bool, typer.Option("-i", "--interactive", help="Pass stdin to the command")
    ] = False,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Give it a terminal")] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds before it is stopped (default: never)")
    ] = None,
    os_cloud: CloudOption = None,
) -> None:
    """Run a command inside an instance, its output as it comes; exits with its status:
    `neutrino instance exec vm1 -- ping -c1 10.0.0.3`, `neutrino instance exec -it vm1 -- sh`;
    `neutrino instance exec -t vm1` is a shell on a terminal, as `instance console`."""
    if not command and not tty:
        fail(ClientError(0, "Give the command after --, or -t for a shell."))
    shell = not command  # what a terminal alone asks for: a shell, typed into
    raise typer.Exit(
        _remote(os_cloud, instance, command or ["sh"], interactive or shell, tty, timeout)
    )


@app.command()
def console(instance: str, os_cloud: CloudOption = None) -> None:
    """A shell inside an instance, on a terminal (exit it to come back)."""
    raise typer.Exit(_remote(os_cloud, instance, ["sh"], True, True, None))


def _remote(
    os_cloud: str | None,
    instance: str,
    command: list[str],
    interactive: bool,
    tty: bool,
    timeout: float | None,
) -> int:
    from neutrino.cli import remote  # its WebSocket client, only for a command's streams

    try:
        lab = Lab(os_cloud)
        return remote.run(
            lab.session,
            f"/v1/instances/{lab.get(instance)['id']}/exec",
            command,
            interactive=interactive,
            tty=tty,
            timeout=timeout,
        )
    except ClientError as error:
        fail(error)
