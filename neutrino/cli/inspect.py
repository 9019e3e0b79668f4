"""`neutrino inspect ...` and `neutrino trace`: how a resource is implemented, and a packet's path.

Both ask the server (HTTP only), which reads the kernel of this machine's agents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from neutrino.cli.output import fail, out
from neutrino.cli.resources import FLOATING_IP, INSTANCE, LOAD_BALANCER, PORT, ROUTER, Kind, find_id
from neutrino.client import ClientError, Cloud, Session

app = typer.Typer(
    no_args_is_help=True,
    help="Show the kernel objects that implement a resource, read from the kernel.",
)

CloudOption = Annotated[
    str | None, typer.Option("--os-cloud", help="Cloud in clouds.yaml \\[env: OS_CLOUD]")
]
Format = Annotated[str, typer.Option("-f", "--format", help="tree or json")]


def _ask(os_cloud: str | None, ask: Callable[[Session, str], dict[str, Any]]) -> dict[str, Any]:
    """What `ask(session, lab API URL)` answers, or the command fails with the server's message."""
    try:
        session = Session(Cloud.load(os_cloud))
        return ask(session, session.endpoint("lab") + "/v1")
    except ClientError as error:
        fail(error)


def _key(key: str) -> Text:
    return Text(key, style="bold")


def _grow(tree: Tree, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                _grow(tree.add(_key(key)), item)
            elif isinstance(item, str) and "\n" in item:
                tree.add(_key(key)).add(item.rstrip(), highlight=False)
            else:
                tree.add(Text.assemble(_key(key), f": {item}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                _grow(tree.add(Text(str(index), style="dim")), item)
            else:
                tree.add(str(item), highlight=False)
    else:
        tree.add(str(value))


def _show(kind: Kind, ref: str, fmt: str, os_cloud: str | None) -> None:
    found = _ask(
        os_cloud,
        lambda session, lab: session.call(
            "GET", f"{lab}/inspect/{kind.collection}/{find_id(session, kind, ref)}", timeout=60
        ),
    )
    if fmt == "json":
        out.print_json(json.dumps(found))
        return
    tree = Tree(Text.assemble((f"{kind.noun} {ref}", "bold"), " (read from the kernel)"))
    _grow(tree, found)
    out.print(tree)


@app.command()
def router(
    ref: Annotated[str, typer.Argument(help="Router name or ID")],
    os_cloud: CloudOption = None,
    fmt: Format = "tree",
) -> None:
    """The router's namespace, interfaces, routes, NAT table, floating IP elements, metering
    labels' counts and connections."""
    _show(ROUTER, ref, fmt, os_cloud)


@app.command()
def floatingip(
    ref: Annotated[str, typer.Argument(help="Floating IP address or ID")],
    os_cloud: CloudOption = None,
    fmt: Format = "tree",
) -> None:
    """Where the floating IP lives: the gateway interface, its map elements, its live
    connections."""
    _show(FLOATING_IP, ref, fmt, os_cloud)


@app.command()
def port(
    ref: Annotated[str, typer.Argument(help="Port ID or name")],
    os_cloud: CloudOption = None,
    fmt: Format = "tree",
) -> None:
    """The port's tap, bridge, far end and firewall chains."""
    _show(PORT, ref, fmt, os_cloud)


@app.command()
def loadbalancer(
    ref: Annotated[str, typer.Argument(help="Load balancer name, ID or VIP address")],
    os_cloud: CloudOption = None,
    fmt: Format = "tree",
) -> None:
    """The load balancer's namespace and VIP, its haproxy (configuration, workers) and what haproxy
    sees now."""
    _show(LOAD_BALANCER, ref, fmt, os_cloud)


def trace(
    source: Annotated[str, typer.Option("--from", help="Instance name or ID")],
    destination: Annotated[str, typer.Option("--to", help="IPv4 or IPv6 address")],
    proto: Annotated[str, typer.Option(help="icmp or tcp")] = "icmp",
    port: Annotated[int | None, typer.Option(help="TCP port")] = None,
    os_cloud: CloudOption = None,
    fmt: Format = "table",
) -> None:
    """The path a packet takes hop by hop, confirmed by a real probe:
    `neutrino trace --from vm1 --to 10.10.10.1`."""

    def ask(session: Session, lab: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": find_id(session, INSTANCE, source),
            "to": destination,
            "protocol": proto,
        }
        if port is not None:
            body["port"] = port
        return dict(session.call("POST", f"{lab}/trace", json=body, timeout=60))

    found = _ask(os_cloud, ask)
    if fmt == "json":
        out.print_json(json.dumps(found))
        return
    table = Table(
        "#",
        "Hop",
        "Host",
        "Device",
        "Namespace",
        "Seen",
        "Detail",
        title=f"{found['from']['name']} ({found['from']['address']}) "
        f"-> {destination} {proto}{'/' + str(found['port']) if found['port'] else ''}",
    )
    for index, hop in enumerate(found["hops"], 1):
        crossing = f"to {hop['to_host']} {hop.get('underlay') or ''}" if "to_host" in hop else ""
        detail = hop.get("decision") or hop.get("note") or hop.get("address") or crossing
        if hop.get("link_local"):
            detail += f" (next hop {hop['link_local']})"
        seen = {True: "yes", False: "no", None: ""}[hop.get("seen")]
        cells = (hop.get("host", ""), hop.get("device", ""), hop.get("netns") or "", seen, detail)
        table.add_row(str(index), hop["hop"], *cells)
    out.print(table)
    probe = found["probe"]
    out.print(
        f"probe: {probe['sent']} -> {'answered' if probe['reached'] else 'no answer'}; "
        f"path {'confirmed' if found['confirmed'] else 'NOT confirmed'} by the kernel"
    )
    for rule in probe.get("matched_rules", []):
        out.print(f"  matched: {rule}", highlight=False)
