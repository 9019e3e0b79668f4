"""`neutrino probe FLOATING_IP`: whether a floating IP answers from the outside world, and why not.

Any project's user may probe its own floating IPs (the server's lab API,
`POST /lab/v1/probes`); the command exits 1 when it is not answered.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

import typer
from rich.text import Text

from neutrino.cli.inspect import CloudOption, _ask
from neutrino.cli.output import out
from neutrino.client import Session


def probe(
    floating_ip: Annotated[str, typer.Argument(help="The floating IP's address or ID")],
    tcp: Annotated[
        int | None, typer.Option("--tcp", metavar="PORT", help="Connect to this TCP port")
    ] = None,
    http: Annotated[
        str | None, typer.Option("--http", metavar="PATH", help="GET this path, e.g. /")
    ] = None,
    ping: Annotated[bool, typer.Option("--ping", help="Ping it (the default)")] = False,
    port: Annotated[int | None, typer.Option(help="The port of --http \\[default: 80]")] = None,
    os_cloud: CloudOption = None,
    fmt: Annotated[str, typer.Option("-f", "--format", help="text or json")] = "text",
) -> None:
    """Whether your floating IP answers from outside, and why not: `neutrino probe FIP --tcp 22`.

    A ping by default, a TCP connect with --tcp, an HTTP GET with --http; it exits 1 when the
    floating IP does not answer, naming the security group that dropped the probe and the rule
    that would let it in.
    """
    if sum((tcp is not None, http is not None, ping)) > 1:
        raise typer.BadParameter("give one of --ping, --tcp PORT and --http PATH")
    if port is not None and http is None:
        raise typer.BadParameter("--port goes with --http")
    try:
        ipaddress.ip_address(floating_ip)
        wanted: dict[str, Any] = {"floating_ip_address": floating_ip}
    except ValueError:
        wanted = {"floating_ip_id": floating_ip}
    if tcp is not None:
        wanted |= {"kind": "tcp", "port": tcp}
    elif http is not None:
        wanted |= {"kind": "http", "path": http, **({"port": port} if port else {})}

    def ask(session: Session, lab: str) -> dict[str, Any]:
        found = session.call("POST", f"{lab}/probes", json={"probe": wanted}, timeout=60)
        return dict(found["probe"])

    found = _ask(os_cloud, ask)
    if fmt == "json":
        out.print_json(json.dumps(found))
    else:
        show(found)
    if not found["reachable"]:
        raise typer.Exit(1)


def show(found: dict[str, Any]) -> None:
    address = found["floating_ip_address"]
    took = f" in {found['elapsed_ms']} ms" if found.get("elapsed_ms") is not None else ""
    if found["reachable"]:
        answer = f"HTTP {found['http_status']}" if found.get("http_status") else "yes"
        out.print(
            Text.assemble((f"{address} answers: {answer}", "green"), f"{took} ({found['sent']})"),
            soft_wrap=True,
        )
        if found.get("first_bytes"):
            out.print(found["first_bytes"].rstrip(), highlight=False, soft_wrap=True)
        if found.get("why"):
            out.print(Text.assemble(("but ", "yellow"), found["why"]), soft_wrap=True)
        return
    out.print(
        Text.assemble(
            (f"{address} does not answer: ", "red"),
            found.get("why") or found.get("error") or "no answer",
            f" ({found['sent']})",
        ),
        soft_wrap=True,
    )
    suggested = found.get("suggested_rule")
    if suggested:
        rule = suggested["security_group_rule"]
        ports = (
            f" --dst-port {rule['port_range_min']}"
            if rule.get("port_range_min") is not None
            else ""
        )
        out.print(
            f"{suggested['label']}: openstack security group rule create --ingress "
            f"--protocol {rule['protocol']}{ports} {rule['security_group_id']}",
            highlight=False,
            soft_wrap=True,
        )
