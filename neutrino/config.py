"""Service configuration: command-line flags over environment over defaults."""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Physnet:
    """A physical network the service may place flat and VLAN networks on; its VLAN IDs are
    its default network segment range."""

    name: str
    vlan_min: int = 1
    vlan_max: int = 4094


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    database_url: str
    bind_host: str = "127.0.0.1"
    bind_port: int = 9696
    physnets: tuple[Physnet, ...] = (Physnet("default"),)
    tenant_network_type: str = "vxlan"
    vni_min: int = 1  # the VNIs of the default VXLAN network segment range
    vni_max: int = 65535
    default_mtu: int = 1500
    token_ttl_seconds: int = 3600
    region: str = "RegionOne"
    host: str = field(default_factory=socket.gethostname)  # the embedded agent's host name
    admin_password: str | None = None
    advertised_url: str | None = None  # what clients should use, when not the bind address
    # Limits that keep one client from exhausting the server (README, "Limits").
    max_request_body_size: int = 1024 * 1024  # bytes
    pagination_max_limit: int = 10_000  # items in one list response; a `next` link leads on
    client_timeout: float = 30.0  # seconds to send a request's headers, and again its body
    access_log: bool = False  # one log line per request
    agent_down_time: float = 75.0  # seconds without a heartbeat before an agent is not alive
    dns_domain: str = "openstacklocal"  # of ports' names; Neutron's default keeps no dns_name
    # A project's limit of each resource named, unless set for it (Neutron's `[quotas]
    # quota_<resource>`); the others keep Neutron's defaults.
    default_quotas: dict[str, int] = field(default_factory=dict)
    # The same for load balancers and what they hold (Octavia's `[quotas]
    # default_<resource>_quota`); the others stay unlimited, Octavia's default.
    default_lb_quotas: dict[str, int] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        """The base URL in the catalog and clouds.yaml [env: NEUTRINO_PUBLIC_URL]."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host
        return f"http://{host}:{self.bind_port}"

    def physnet(self, name: str) -> Physnet | None:
        return next((p for p in self.physnets if p.name == name), None)


def default_state_dir() -> Path:
    env = os.environ.get("NEUTRINO_STATE_DIR")
    return Path(env) if env else Path.home() / ".local" / "state" / "neutrino"


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'neutrino.db'}"


def parse_physnet(spec: str) -> Physnet:
    """`NAME` or `NAME:VLAN_MIN:VLAN_MAX` (the ml2 network_vlan_ranges form)."""
    name, _, ranges = spec.partition(":")
    if not ranges:
        return Physnet(name)
    low, _, high = ranges.partition(":")
    return Physnet(name, int(low), int(high))


# The largest quota limit: Neutron keeps limits in a 32-bit integer column, and its API refuses
# more (neutron-lib's DB_INTEGER_MAX_VALUE); so does this server's Octavia API.
QUOTA_LIMIT_MAX = 2**31 - 1


def parse_quota(spec: str, resources: Collection[str]) -> tuple[str, int]:
    """`RESOURCE=LIMIT`, a limit from -1 (unlimited) to QUOTA_LIMIT_MAX."""
    resource, _, text = spec.partition("=")
    if resource not in resources:
        raise ValueError(f"{resource!r} is not a resource with a quota: {', '.join(resources)}")
    if not re.fullmatch(r"-1|[0-9]+", text):
        raise ValueError(f"the limit of {resource} must be an integer, -1 (unlimited) or more")
    if int(text) > QUOTA_LIMIT_MAX:
        raise ValueError(f"the limit of {resource} must be no larger than {QUOTA_LIMIT_MAX}")
    return resource, int(text)


def make_settings(
    state_dir: Path | None = None,
    database_url: str | None = None,
    bind: str | None = None,
    physnets: list[str] | None = None,
    **overrides: object,
) -> Settings:
    state = (state_dir or default_state_dir()).expanduser().resolve()
    host, port = "127.0.0.1", 9696
    if bind:
        host, _, port_text = bind.rpartition(":")
        port = int(port_text)
    nets = tuple(parse_physnet(p) for p in physnets) if physnets else (Physnet("default"),)
    return Settings(
        state_dir=state,
        database_url=database_url or os.environ.get("NEUTRINO_DATABASE_URL") or sqlite_url(state),
        bind_host=host or "127.0.0.1",
        bind_port=port,
        physnets=nets,
        admin_password=os.environ.get("NEUTRINO_ADMIN_PASSWORD"),
        advertised_url=os.environ.get("NEUTRINO_PUBLIC_URL"),
        **overrides,  # type: ignore[arg-type]
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
