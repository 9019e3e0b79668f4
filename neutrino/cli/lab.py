"""`neutrino lab up|down` (the tutorial's topology) and `neutrino outside -- CMD` (the internet)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.text import Text

from neutrino.cli.output import err, fail, out
from neutrino.client import ClientError, Cloud, Session
from neutrino.lab.tutorial import STEPS, TAG, Tutorial

app = typer.Typer(
    no_args_is_help=True, help="The tutorial's lab: two VLANs, a router, source NAT, a floating IP."
)

CloudOption = Annotated[
    str | None, typer.Option("--os-cloud", help="Cloud in clouds.yaml \\[env: OS_CLOUD]")
]


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=False,
    )


@app.command()
def up(os_cloud: CloudOption = None) -> None:
    """Build SCENARIOS.md's topology through the API and say what to try."""
    try:
        tutorial = Tutorial(Session(Cloud.load(os_cloud)))
        with _progress() as progress:
            task = progress.add_task("building the lab", total=STEPS)

            def step(what: str) -> None:
                progress.update(task, description=what, advance=1)

            built = tutorial.up(step)
            progress.update(task, description="the lab is up", completed=STEPS)
    except ClientError as error:
        fail(error)
    vm1, vm3 = built.instances["cirros-vm1"], built.instances["cirros-vm3"]
    out.print(
        Text.assemble(
            "\n",
            ("The lab is up.", "bold"),
            f" Floating IP {built.floating_ip} -> cirros-vm3 ({vm3}); "
            f"router gateway {built.router_gateway}. Try:",
        )
    )
    tries = [
        (
            f"neutrino instance exec cirros-vm1 -- ping -c1 {vm3}",
            "S2: across the VLANs, through the router",
        ),
        (
            (
                "neutrino outside -- sh -c 'mkdir -p /tmp/www && "
                "echo outside > /tmp/www/index.html && "
                "busybox httpd -p 80 -h /tmp/www'"
            ),
            "a web server on the internet",
        ),
        (
            "neutrino instance exec cirros-vm1 -- curl -s http://10.10.10.1/",
            "S3: out through source NAT",
        ),
        (
            f"neutrino outside -- curl -s http://{built.floating_ip}/",
            "S4: the floating IP reaches cirros-vm3",
        ),
        (
            f"neutrino instance exec cirros-vm1 -- curl -s http://[{built.ipv6['cirros-vm3']}]/",
            "IPv6 across the VLANs: routed as it is, no NAT",
        ),
        (f"neutrino outside -- ping -c1 -W1 {vm1}", "the outside cannot reach fixed IPs"),
        (
            "neutrino inspect router router_100_101",
            "what implements the router, read from the kernel",
        ),
        (
            f"neutrino inspect floatingip {built.floating_ip}",
            "its NAT elements and live connections",
        ),
        (
            "neutrino trace --from cirros-vm1 --to 10.10.10.1 --proto tcp --port 80",
            "a packet's path, hop by hop",
        ),
        ("neutrino lab down", "remove it all"),
    ]
    for command, why in tries:
        out.print(
            Text.assemble((f"  # {why}", "dim"), f"\n  {command}"), highlight=False, soft_wrap=True
        )


@app.command()
def down(os_cloud: CloudOption = None) -> None:
    """Remove everything `lab up` made (found by its tag)."""
    try:
        tutorial = Tutorial(Session(Cloud.load(os_cloud)))
        with err.status("removing the lab") as status:
            removed = tutorial.down(lambda what: status.update(f"removing {what}"))
    except ClientError as error:
        fail(error)
    out.print(f"removed {removed} resources tagged {TAG}")


def outside(
    command: Annotated[list[str], typer.Argument(help="The command, after --")],
    physnet: Annotated[
        str, typer.Option(help="The physical network whose outside to run in")
    ] = "default",
    timeout: Annotated[
        float | None, typer.Option(help="Seconds before it is stopped (default: never)")
    ] = None,
    os_cloud: CloudOption = None,
) -> None:
    """Run a command in the outside world of an isolated lab: `neutrino outside -- curl http://FLOATING_IP/`.

    For administrators; any project checks its own floating IP from outside with `neutrino probe`.
    """
    from neutrino.cli import remote  # its WebSocket client, only for a command's streams

    try:
        status = remote.run(
            Session(Cloud.load(os_cloud)),
            "/v1/outside/exec",
            command,
            timeout=timeout,
            query={"physnet": physnet},
        )
    except ClientError as error:
        fail(error)
    raise typer.Exit(status)
