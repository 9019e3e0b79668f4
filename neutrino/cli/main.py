"""neutrino: OpenStack-compatible tenant networking on a real Linux data plane."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from neutrino.cli import inspect, instances, lab, ports, probe
from neutrino.cli.output import err as console
from neutrino.config import Settings, make_settings, parse_quota, setup_logging

if TYPE_CHECKING:  # imported when an agent starts, not by every command
    from neutrino.plan import HostConfig

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(instances.app, name="instance")
app.add_typer(ports.app, name="port")
app.add_typer(lab.app, name="lab")
app.add_typer(inspect.app, name="inspect")
app.command("outside", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    lab.outside
)
app.command("trace")(inspect.trace)
app.command("probe")(probe.probe)

HostName = Annotated[
    str | None,
    typer.Option("--host", help="This host's name in port bindings \\[default: hostname]"),
]
NetnsPrefix = Annotated[
    str, typer.Option(help="Prefix of every namespace the agent creates (isolated mode)")
]
Zone = Annotated[str, typer.Option(help="The availability zone of this host's DHCP and L3 agents")]
HostNetns = Annotated[
    str | None,
    typer.Option(help="Run the host's data plane in this namespace ('' = the root namespace)"),
]
Interfaces = Annotated[
    list[str] | None,
    typer.Option(
        "--physnet-interface",
        help="PHYSNET=IFACE: the host interface of a physical network (repeatable); "
        "without any, the data plane is isolated in namespaces neutrino creates",
    ),
]
VtepIp = Annotated[
    str | None,
    typer.Option(
        "--vtep-ip",
        help="This host's address on the underlay: the local end of VXLAN tunnels, which other "
        "hosts' agents learn from the server",
    ),
]
VtepInterface = Annotated[
    str | None,
    typer.Option(
        "--vtep-interface",
        help="The interface whose IPv4 address is this host's VTEP (instead of --vtep-ip), "
        "read again before every report",
    ),
]


def since_process_start() -> float:
    """Seconds since this process began, imports included (its start in /proc, in clock ticks
    since boot)."""
    started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - started / os.sysconf("SC_CLK_TCK")


def host_config(
    name: str,
    physnets: list[str],
    prefix: str,
    netns: str | None,
    interfaces: list[str] | None,
    zone: str = "nova",
    vtep_ip: str | None = None,
    vtep_interface: str | None = None,
) -> HostConfig:
    """The isolated default, or a host mapped onto given interfaces (production)."""
    from neutrino.agent.runner import with_current_vtep
    from neutrino.plan import HostConfig, PhysnetConfig

    if vtep_ip and vtep_interface:
        raise typer.BadParameter("--vtep-ip and --vtep-interface exclude each other")
    if not interfaces and netns is None:
        isolated = HostConfig.isolated(
            name, prefix=prefix, physnets=tuple(physnets), vtep_ip=vtep_ip
        )
        config = dataclasses.replace(isolated, availability_zone=zone)
    else:
        mapping = dict(item.split("=", 1) for item in interfaces or [])
        config = HostConfig(
            name=name,
            netns=netns or None,
            ns_prefix=prefix,
            physnets={p: PhysnetConfig(interface=iface) for p, iface in mapping.items()},
            vtep_ip=vtep_ip,
            availability_zone=zone,
        )
    if vtep_interface is None:
        return config
    config = with_current_vtep(dataclasses.replace(config, vtep_interface=vtep_interface))
    if config.vtep_ip is None:
        where = f"namespace {config.netns}" if config.netns else "the root namespace"
        raise typer.BadParameter(
            f"interface {vtep_interface} has no IPv4 address in {where}",
            param_hint="--vtep-interface",
        )
    return config


def start_agent(
    server: str,
    host: HostConfig,
    state_dir: Path,
    cloud: str | None,
    cloud_file: Path | None,
    listen: str,
    report_interval: float,
) -> threading.Thread:
    """Start the agent's loop, reporting at least every `report_interval` seconds, and its
    endpoint on `listen` (HOST:PORT, port 0: any)."""
    from neutrino.agent import endpoint
    from neutrino.agent.reconciler import Agent
    from neutrino.agent.runner import Feed, Runner
    from neutrino.client import Cloud, Session

    session = Session(Cloud.load(cloud, cloud_file))
    runner = Runner(
        Agent(host, state_dir), Feed(server, session, host.name), report_interval=report_interval
    )
    app = endpoint.application(endpoint.Tokens(session), lambda: runner.realized)
    certificate = endpoint.make_certificate(state_dir / "endpoint", host.name)
    runner.endpoint = endpoint.serve(app, listen, certificate)
    runner.endpoint_certificate = certificate.pem
    thread = threading.Thread(target=runner.run, name=f"agent-{host.name}", daemon=True)
    thread.start()
    return thread


def hold_agent_state(state_dir: Path) -> None:
    """One agent a state directory (neutrino.agent.running): a second does not start."""
    from neutrino.agent import running

    if not running.hold_for_life(state_dir):
        console.print(
            f"an agent already runs from {state_dir}: one agent a state directory", style="red"
        )
        raise typer.Exit(2)


def parse_default_quotas(
    specs: list[str] | None, resources: Collection[str], option: str
) -> dict[str, int]:
    """The limits `option`'s RESOURCE=LIMIT specs give; a refused one stops the start."""
    try:
        return dict(parse_quota(spec, resources) for spec in specs or [])
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from error


@app.command()
def serve(
    bind: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "127.0.0.1:9696",
    workers: Annotated[
        int,
        typer.Option(min=1, help="Processes serving the listener (more than one needs PostgreSQL)"),
    ] = 1,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default: SQLite in the state directory")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the database, keys and clouds.yaml live \\[env: NEUTRINO_STATE_DIR]"
        ),
    ] = None,
    physnet: Annotated[
        list[str] | None,
        typer.Option(help="Physical network NAME or NAME:VLAN_MIN:VLAN_MAX (repeatable)"),
    ] = None,
    agent: Annotated[
        bool, typer.Option(help="Run this host's agent in-process (needs root)")
    ] = True,
    host: HostName = None,
    netns_prefix: NetnsPrefix = "",
    host_netns: HostNetns = None,
    physnet_interface: Interfaces = None,
    availability_zone: Zone = "nova",
    vtep_ip: VtepIp = None,
    vtep_interface: VtepInterface = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
    access_log: Annotated[
        bool,
        typer.Option(help="Log one line per request: method, path, status, duration, request id"),
    ] = False,
    max_request_body_size: Annotated[
        int, typer.Option(help="Larger request bodies get 413 (bytes)")
    ] = Settings.max_request_body_size,
    pagination_max_limit: Annotated[
        int,
        typer.Option(
            help="Most items in one list response; a 'next' link leads to the rest",
        ),
    ] = Settings.pagination_max_limit,
    client_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client may take to send a request's headers, and again its body",
        ),
    ] = Settings.client_timeout,
    agent_down_time: Annotated[
        float,
        typer.Option(
            help="Seconds without a heartbeat before an agent is not alive and what its host "
            "serves moves to live ones; at least twice the agents' --report-interval "
            "(this server's own agent reports every down time / 2.5)",
        ),
    ] = Settings.agent_down_time,
    dns_domain: Annotated[
        str,
        typer.Option(
            help="The domain of ports' DNS names; with the default, ports keep no dns_name",
        ),
    ] = Settings.dns_domain,
    default_quota: Annotated[
        list[str] | None,
        typer.Option(
            help="RESOURCE=LIMIT: a project's limit of RESOURCE unless set for it, instead of "
            "Neutron's default (its \\[quotas] quota_RESOURCE); -1: unlimited (repeatable)",
        ),
    ] = None,
    default_lb_quota: Annotated[
        list[str] | None,
        typer.Option(
            help="RESOURCE=LIMIT: a project's limit of RESOURCE (load_balancer, listener, pool, "
            "member, health_monitor, l7policy or l7rule) unless set for it, instead of "
            "Octavia's default, unlimited (its \\[quotas] default_RESOURCE_quota); "
            "-1: unlimited (repeatable)",
        ),
    ] = None,
) -> None:
    """Run the identity, networking and lab APIs on one listener, with this host's agent."""
    from neutrino import server
    from neutrino.app import create_app, prepare, start_chores
    from neutrino.identity import client_env
    from neutrino.services.loadbalancers import OCTAVIA_QUOTA_DEFAULTS
    from neutrino.services.quotas import NEUTRON_DEFAULTS

    default_quotas = parse_default_quotas(default_quota, NEUTRON_DEFAULTS, "--default-quota")
    default_lb_quotas = parse_default_quotas(
        default_lb_quota, OCTAVIA_QUOTA_DEFAULTS, "--default-lb-quota"
    )
    setup_logging(log_level)
    if access_log:
        logging.getLogger("neutrino.access").setLevel(logging.INFO)  # whatever the log level
    settings = make_settings(
        state_dir,
        database_url,
        bind,
        physnet,
        access_log=access_log,
        max_request_body_size=max_request_body_size,
        pagination_max_limit=pagination_max_limit,
        client_timeout=client_timeout,
        agent_down_time=agent_down_time,
        dns_domain=dns_domain,
        default_quotas=default_quotas,
        default_lb_quotas=default_lb_quotas,
        **({"host": host} if host else {}),
    )
    if workers > 1 and settings.database_url.startswith("sqlite"):
        # SQLite's writers queue on a lock of one process; other processes would not wait there.
        console.print(
            "--workers needs PostgreSQL (--database-url postgresql+psycopg://...): "
            "SQLite serves one process",
            style="red",
        )
        raise typer.Exit(2)
    if agent and os.geteuid() == 0:
        hold_agent_state(settings.state_dir / "agent")
    with console.status("preparing the database and identity"):
        core = prepare(settings)
    if workers > 1:
        # This process supervises the workers and does, once, what no request does.
        start_chores(core.db)
    application = (
        server.WorkerApp(settings, log_level) if workers > 1 else create_app(settings, core)
    )
    console.print(
        Text.assemble(
            f"neutrino ready in {since_process_start():.2f}s at ",
            (settings.public_url, "bold"),
            f" ({workers} worker processes)" if workers > 1 else "",
        )
    )
    console.print(
        Text.assemble(
            "dashboard: ",
            (f"{settings.public_url}/dashboard/", "bold"),
            " (sign in as admin or a project user)",
        ),
        soft_wrap=True,
    )
    if agent and os.geteuid() == 0:
        from neutrino.agent.runner import DOWN_TIME_PER_REPORT

        config = host_config(
            settings.host,
            [p.name for p in settings.physnets],
            netns_prefix,
            host_netns,
            physnet_interface,
            availability_zone,
            vtep_ip,
            vtep_interface,
        )
        start_agent(
            f"http://{settings.bind_host}:{settings.bind_port}",
            config,
            settings.state_dir / "agent",
            "neutrino-admin",
            settings.state_dir / "clouds.yaml",
            listen="127.0.0.1:0",
            report_interval=settings.agent_down_time / DOWN_TIME_PER_REPORT,
        )
        where = f"namespace {config.netns}" if config.netns else "the root namespace"
        console.print(
            Text.assemble(
                "agent for host ", (settings.host, "bold"), f" runs the data plane in {where}"
            )
        )
    elif agent:
        console.print(
            "not root: the data plane (agent) is off; the APIs work without it", style="yellow"
        )
    console.print("Use it with the openstack CLI:")
    for line in client_env(settings):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    # Everything still alive now lives as long as the process: out of the collector's sight, a
    # full collection takes a fraction of a millisecond instead of tens, which requests would
    # wait for.
    gc.collect()
    gc.freeze()
    server.run(application, settings, log_level, workers)


@app.command("agent")
def run_agent(
    server: Annotated[str, typer.Option(help="The neutrino server's URL")],
    host: HostName = None,
    state_dir: Annotated[
        Path, typer.Option(help="The agent's own state (dnsmasq files, digests)")
    ] = Path("/var/lib/neutrino/agent"),
    physnet: Annotated[
        list[str] | None, typer.Option(help="Physical networks of this host (isolated mode)")
    ] = None,
    netns_prefix: NetnsPrefix = "",
    host_netns: HostNetns = None,
    physnet_interface: Interfaces = None,
    availability_zone: Zone = "nova",
    vtep_ip: VtepIp = None,
    vtep_interface: VtepInterface = None,
    os_cloud: Annotated[
        str | None,
        typer.Option(help="Cloud in clouds.yaml with admin credentials \\[env: OS_CLOUD]"),
    ] = None,
    listen: Annotated[
        str, typer.Option(help="HOST:PORT where the server asks this agent for the lab's tools")
    ] = "0.0.0.0:9697",
    report_interval: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Most seconds between two reports (heartbeats); at most half the server's "
            "--agent-down-time",
        ),
    ] = 30.0,  # Neutron's report_interval
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run one host's agent: follow the server's change feed and program this host's kernel."""
    import socket

    setup_logging(log_level)
    config = host_config(
        host or socket.gethostname(),
        physnet or ["default"],
        netns_prefix,
        host_netns,
        physnet_interface,
        availability_zone,
        vtep_ip,
        vtep_interface,
    )
    hold_agent_state(state_dir)
    thread = start_agent(server, config, state_dir, os_cloud, None, listen, report_interval)
    console.print(Text.assemble("agent for host ", (config.name, "bold"), f" following {server}"))
    try:
        thread.join()
    except KeyboardInterrupt:
        pass


STOPPING = 15.0  # seconds teardown waits for an agent to stop: its server takes one or two


@app.command()
def teardown(
    host: HostName = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="The service's state directory \\[env: NEUTRINO_STATE_DIR]")
    ] = None,
    physnet: Annotated[
        list[str] | None, typer.Option(help="Physical networks of this host (isolated mode)")
    ] = None,
    netns_prefix: NetnsPrefix = "",
    host_netns: HostNetns = None,
    physnet_interface: Interfaces = None,
) -> None:
    """Remove every namespace, link, nft table and process this host's agent made.

    Stop the agent first: this waits a while for one that is stopping.
    """
    import socket

    from neutrino.agent import running
    from neutrino.agent.reconciler import Agent

    settings = make_settings(state_dir)
    config = host_config(
        host or socket.gethostname(),
        physnet or ["default"],
        netns_prefix,
        host_netns,
        physnet_interface,
    )
    state = settings.state_dir / "agent"
    with console.status(f"waiting for the agent of host {config.name} to stop"):
        lock = running.hold(state, wait=STOPPING)
    if lock is None:
        console.print(
            f"the agent of host {config.name} still runs from {state}: stop it first", style="red"
        )
        raise typer.Exit(1)
    with lock, console.status(f"removing the data plane of host {config.name}"):
        Agent(config, state).teardown()
    console.print(Text.assemble("the data plane of host ", (config.name, "bold"), " is gone"))


if __name__ == "__main__":
    app()
