"""Tables (SQLAlchemy Core). Migrations in db/migrations are written from these.

Every API resource table carries the standard attributes (`standard()`);
uniqueness that must hold under concurrency (fixed IPs, MACs, segments,
floating IP addresses) is a database constraint, never only a check.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(36)


def standard() -> list[Column]:
    return [
        Column("id", ID, primary_key=True),
        Column("project_id", String(64), nullable=False, index=True),
        Column("name", String(255), nullable=False, default=""),
        Column("description", String(255), nullable=False, default=""),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("revision_number", Integer, nullable=False, default=0),
    ]


def owned_by(table: str) -> Column:
    return Column(
        f"{table[:-1]}_id", ID, ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False
    )


# -- identity ---------------------------------------------------------------
domains = Table(
    "domains",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(255), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("domain_id", String(64), ForeignKey("domains.id"), nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("enabled", Boolean, nullable=False, default=True),
    UniqueConstraint("domain_id", "name"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("domain_id", String(64), ForeignKey("domains.id"), nullable=False),
    Column("password_hash", String(255)),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("default_project_id", String(64)),
    Column("email", String(255)),
    Column("description", String(255), nullable=False, default=""),
    # Unix microseconds: tokens issued earlier are void (a password change, as in Keystone).
    Column("tokens_valid_after", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("domain_id", "name"),
)

roles = Table(
    "roles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(255), nullable=False, default=""),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("role_id", String(64), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("expires_at", DateTime, nullable=False, index=True),
)

# The dashboard's signed-in browsers, by the SHA-256 of their cookie's id (web/sessions.py).
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("session", JSON, nullable=False),
    Column("expires_at", DateTime, nullable=False, index=True),
)

# -- networking -------------------------------------------------------------
networks = Table(
    "networks",
    metadata,
    *standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    # router:external; which projects may use it as one is said by rbac_policies
    Column("external", Boolean, nullable=False, default=False),
    Column("mtu", Integer, nullable=False),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("network_type", String(16), nullable=False),
    Column("physical_network", String(64)),
    Column("segmentation_id", Integer),
    Column("availability_zone_hints", JSON, nullable=False, default=list, server_default="[]"),
    # The default external network, where auto-allocated routers get their gateway.
    Column("is_default", Boolean, nullable=False, server_default=false()),
    Column("dns_domain", String(255), nullable=False, server_default=""),
)

# One row per network segment; the primary key is what makes a VLAN ID, a
# VNI or a flat physical network impossible to hand out twice.
segments = Table(
    "segments",
    metadata,
    Column("network_type", String(16), primary_key=True),
    Column("physical_network", String(64), primary_key=True),  # "" for vxlan
    Column("segmentation_id", Integer, primary_key=True),  # 0 for flat
    Column(
        "network_id", ID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
)

# Each network type's (and physical network's) free segmentation IDs, as ranges over all the IDs
# the type has (services.segment_ranges), so that allocating one never reads those taken. Filled
# by the type's first allocation, from the segments.
segment_free_ranges = Table(
    "segment_free_ranges",
    metadata,
    Column("network_type", String(16), primary_key=True),
    Column("physical_network", String(64), primary_key=True),
    Column("first_id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Integer, nullable=False),
)

# The segmentation IDs networks take, by type (and physical network for vlan): the default
# ranges come from the configuration (rewritten on each start), the others from
# administrators; a project's own range serves its networks first.
network_segment_ranges = Table(
    "network_segment_ranges",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", String(64), index=True),  # none for a shared range
    Column("name", String(255)),  # none for a default range, as in Neutron
    Column("description", String(255), nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("revision_number", Integer, nullable=False, default=0),
    Column("default", Boolean, nullable=False),
    Column("shared", Boolean, nullable=False),
    Column("network_type", String(16), nullable=False),
    Column("physical_network", String(64), nullable=False),  # "" but for vlan
    Column("minimum", Integer, nullable=False),
    Column("maximum", Integer, nullable=False),
    UniqueConstraint(
        "default",
        "network_type",
        "physical_network",
        "minimum",
        "maximum",
        name="uq_network_segment_ranges",  # the convention's name is too long for PostgreSQL
    ),
)

address_scopes = Table(
    "address_scopes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False, default=""),
    Column("ip_version", Integer, nullable=False),
)

# Prefixes are a JSON list of CIDRs, kept compact (no two overlap or adjoin).
subnetpools = Table(
    "subnetpools",
    metadata,
    *standard(),
    Column("ip_version", Integer, nullable=False),
    Column("prefixes", JSON, nullable=False),
    Column("default_prefixlen", Integer, nullable=False),
    Column("min_prefixlen", Integer, nullable=False),
    Column("max_prefixlen", Integer, nullable=False),
    Column("default_quota", Integer),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("address_scope_id", ID, ForeignKey("address_scopes.id"), index=True),
)

subnets = Table(
    "subnets",
    metadata,
    *standard(),
    Column("network_id", ID, ForeignKey("networks.id"), nullable=False, index=True),
    Column("ip_version", Integer, nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("gateway_ip", String(64)),
    Column("enable_dhcp", Boolean, nullable=False, default=True),
    Column("ipv6_ra_mode", String(16)),
    Column("ipv6_address_mode", String(16)),
    Column("dns_nameservers", JSON, nullable=False),
    Column("host_routes", JSON, nullable=False),
    Column("allocation_pools", JSON, nullable=False),
    Column("subnetpool_id", ID, ForeignKey("subnetpools.id"), index=True),
    # The device owners whose ports take addresses here; none: every port's.
    Column("service_types", JSON, nullable=False, server_default="[]"),
)

ports = Table(
    "ports",
    metadata,
    *standard(),
    Column("network_id", ID, ForeignKey("networks.id"), nullable=False, index=True),
    Column("mac_address", String(32), nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("device_owner", String(255), nullable=False, default=""),
    Column("device_id", String(255), nullable=False, default="", index=True),
    # indexed: a host's agent reports the statuses of the ports bound there, maybe 10,000
    Column("binding_host_id", String(255), nullable=False, default="", index=True),
    # binding:profile, as the binding's client gave it; "device" names the host's device that
    # the port is plugged as (else tap + the port id's first 11 characters).
    Column("binding_profile", JSON, nullable=False, server_default="{}"),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("dns_name", String(255), nullable=False, server_default=""),
    Column("dns_domain", String(255), nullable=False, server_default=""),
    # What the compute service asks of the host the port is bound to: a Cyborg device
    # profile, and how strictly the port's device must share the instance's NUMA node.
    Column("device_profile", String(255)),
    Column("numa_affinity_policy", String(16)),
    UniqueConstraint("network_id", "mac_address"),
)

# A port's inactive bindings: hosts it is being moved to (live migration). Its active
# binding is the port's own binding_host_id, the host whose agent plugs it.
port_inactive_bindings = Table(
    "port_inactive_bindings",
    metadata,
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("host", String(255), primary_key=True),
)

# The primary key (subnet, address) is the IPAM's last line of defence.
ip_allocations = Table(
    "ip_allocations",
    metadata,
    Column("subnet_id", ID, ForeignKey("subnets.id"), primary_key=True),
    Column("ip_address", String(64), primary_key=True),
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("network_id", ID, nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

# A subnet's free addresses: its allocation pools less ip_allocations, as ranges keyed by
# ipam.sortable text, so that allocating never reads the subnet's allocations. One index, the
# key: with a second one on (subnet_id, last_ip), PostgreSQL's plan for a statement prepared
# while the table was small could pick it to find a range by its first address, reading every
# range of the subnet; and a range's end moves (a port's random address splits a range)
# without touching an index.
ip_free_ranges = Table(
    "ip_free_ranges",
    metadata,
    Column("subnet_id", ID, ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True),
    Column("first_ip", String(32), primary_key=True),
    Column("last_ip", String(32), nullable=False),
)

allowed_address_pairs = Table(
    "allowed_address_pairs",
    metadata,
    owned_by("ports"),
    Column("ip_address", String(64), nullable=False),
    Column("mac_address", String(32), nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

# A port's extra DHCP options: at most one value per option name and IP version.
extra_dhcp_opts = Table(
    "extra_dhcp_opts",
    metadata,
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("opt_name", String(64), primary_key=True),
    Column("ip_version", Integer, primary_key=True),
    Column("opt_value", String(255), nullable=False),
)

trunks = Table(
    "trunks",
    metadata,
    *standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, unique=True),
)
# A port is the subport of one trunk at most; a VLAN carries one subport of a trunk.
trunk_subports = Table(
    "trunk_subports",
    metadata,
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    owned_by("trunks"),
    Column("segmentation_type", String(32), nullable=False),
    Column("segmentation_id", Integer, nullable=False),
    UniqueConstraint("trunk_id", "segmentation_type", "segmentation_id"),
)

# -- quality of service ------------------------------------------------------
qos_policies = Table("qos_policies", metadata, *standard())

# A project's default policy: the key makes a second one impossible.
qos_default_policies = Table(
    "qos_default_policies",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column(
        "policy_id",
        ID,
        ForeignKey("qos_policies.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
)

# Rules of every type in one table: at most one of a type per direction in a policy
# (direction "" for the types that have none).
qos_rules = Table(
    "qos_rules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("policy_id", ID, ForeignKey("qos_policies.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("max_kbps", Integer),
    Column("max_burst_kbps", Integer),
    Column("min_kbps", Integer),
    Column("dscp_mark", Integer),
    UniqueConstraint("policy_id", "type", "direction"),
)

# Metering labels count what crosses the gateways of their project's routers (all routers'
# when shared); like Neutron's, they carry no standard attributes.
metering_labels = Table(
    "metering_labels",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False, default=""),
    Column("description", String(1024), nullable=False, default=""),
    Column("shared", Boolean, nullable=False, default=False),
)

metering_label_rules = Table(
    "metering_label_rules",
    metadata,
    Column("id", ID, primary_key=True),
    Column(
        "metering_label_id",
        ID,
        ForeignKey("metering_labels.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("direction", String(16), nullable=False),
    Column("remote_ip_prefix", String(64)),
    Column("source_ip_prefix", String(64)),
    Column("destination_ip_prefix", String(64)),
    Column("excluded", Boolean, nullable=False, default=False),
)

# Which policy a port or a network has; a policy in use cannot go (no cascade).
qos_port_bindings = Table(
    "qos_port_bindings",
    metadata,
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_id", ID, ForeignKey("qos_policies.id"), nullable=False, index=True),
)

qos_network_bindings = Table(
    "qos_network_bindings",
    metadata,
    Column("network_id", ID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
    Column("policy_id", ID, ForeignKey("qos_policies.id"), nullable=False, index=True),
)

security_groups = Table(
    "security_groups",
    metadata,
    *standard(),
    Column("stateful", Boolean, nullable=False, default=True),
    Column("is_default", Boolean, nullable=False, default=False),
)
Index(
    "uq_default_security_group",
    security_groups.c.project_id,
    security_groups.c.is_default,
    unique=True,
    sqlite_where=security_groups.c.is_default,
    postgresql_where=security_groups.c.is_default,
)

address_groups = Table("address_groups", metadata, *standard())

address_group_addresses = Table(
    "address_group_addresses",
    metadata,
    Column(
        "address_group_id",
        ID,
        ForeignKey("address_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("address", String(64), primary_key=True),
)

security_group_rules = Table(
    "security_group_rules",
    metadata,
    *standard(),
    Column(
        "security_group_id",
        ID,
        ForeignKey("security_groups.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("direction", String(8), nullable=False),
    Column("ethertype", String(8), nullable=False),
    Column("protocol", String(40)),
    Column("port_range_min", Integer),
    Column("port_range_max", Integer),
    Column("remote_ip_prefix", String(64)),
    Column("remote_group_id", ID, ForeignKey("security_groups.id", ondelete="CASCADE")),
    Column("remote_address_group_id", ID, ForeignKey("address_groups.id"), index=True),
)

# Templates of the rules every new security group starts with (Neutron's
# security-groups-default-rules); remote_group_id "PARENT" is the new group itself.
default_security_group_rules = Table(
    "default_security_group_rules",
    metadata,
    Column("id", ID, primary_key=True),
    Column("description", String(255), nullable=False, default=""),
    Column("direction", String(8), nullable=False),
    Column("ethertype", String(8), nullable=False),
    Column("protocol", String(40)),
    Column("port_range_min", Integer),
    Column("port_range_max", Integer),
    Column("remote_ip_prefix", String(64)),
    Column("remote_group_id", String(36)),
    Column("remote_address_group_id", String(36)),
    Column("used_in_default_sg", Boolean, nullable=False),
    Column("used_in_non_default_sg", Boolean, nullable=False),
)
# Neutron's own starting templates: what every group got before templates existed.
LEGACY_DEFAULT_RULES = [
    {
        "description": f"Legacy default SG rule for {direction} traffic",
        "direction": direction,
        "ethertype": ethertype,
        "remote_group_id": "PARENT" if direction == "ingress" else None,
        "used_in_default_sg": True,
        "used_in_non_default_sg": direction == "egress",
    }
    for direction in ("egress", "ingress")
    for ethertype in ("IPv4", "IPv6")
]

# Neutron's security-groups-default-statefulness: what `stateful` a new group gets when it
# does not say, per project (project_id) or for every project (project_id NULL).
security_groups_default_statefulness = Table(
    "security_groups_default_statefulness",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", String(64), unique=True),
    Column("stateful", Boolean, nullable=False),
)

port_security_groups = Table(
    "port_security_groups",
    metadata,
    Column("port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("security_group_id", ID, ForeignKey("security_groups.id"), primary_key=True, index=True),
)

# -- flavors: operator-curated choices of service provider ------------------------------
flavors = Table(
    "flavors",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("description", String(1024)),
    Column("service_type", String(36), nullable=False),
    Column("enabled", Boolean, nullable=False),
)

service_profiles = Table(
    "service_profiles",
    metadata,
    Column("id", ID, primary_key=True),
    Column("description", String(1024)),
    Column("driver", String(1024), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("metainfo", String(4096), nullable=False),
)

# A profile bound to a flavor cannot be changed or deleted (ServiceProfileInUse).
flavor_service_profile_bindings = Table(
    "flavor_service_profile_bindings",
    metadata,
    Column("flavor_id", ID, ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True),
    Column("service_profile_id", ID, ForeignKey("service_profiles.id"), primary_key=True),
)

routers = Table(
    "routers",
    metadata,
    *standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("gw_port_id", ID, ForeignKey("ports.id")),
    Column("gw_network_id", ID, ForeignKey("networks.id")),
    Column("enable_snat", Boolean, nullable=False, default=True),
    Column("routes", JSON, nullable=False),
    Column("availability_zone_hints", JSON, nullable=False, default=list, server_default="[]"),
    Column("ha", Boolean, nullable=False, server_default=false()),
    Column("distributed", Boolean, nullable=False, server_default=false()),
    # A router made with a flavor keeps it (and so the flavor stays), and the service
    # provider the flavor led to, which decides the ha and distributed values it may take.
    Column("flavor_id", ID, ForeignKey("flavors.id")),
    Column("service_provider", String(255)),
)

# A project's auto-allocated network and router (one each at most).
auto_allocated_topologies = Table(
    "auto_allocated_topologies",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column(
        "network_id", ID, ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
    Column("router_id", ID, ForeignKey("routers.id", ondelete="SET NULL")),
)

router_ports = Table(
    "router_ports",
    metadata,
    Column("router_id", ID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True, unique=True
    ),
    Column("port_type", String(32), nullable=False),
)

# A router's conntrack helpers: connections of a protocol to a port get a kernel helper,
# which opens their related connections (FTP data, TFTP transfers) through its NAT.
conntrack_helpers = Table(
    "conntrack_helpers",
    metadata,
    Column("id", ID, primary_key=True),
    owned_by("routers"),
    Column("protocol", String(40), nullable=False),
    Column("port", Integer, nullable=False),
    Column("helper", String(64), nullable=False),
    UniqueConstraint("router_id", "protocol", "port", "helper"),
)

floatingips = Table(
    "floatingips",
    metadata,
    *standard(),
    Column("floating_network_id", ID, ForeignKey("networks.id"), nullable=False),
    Column("floating_ip_address", String(64), nullable=False),
    Column("floating_port_id", ID, ForeignKey("ports.id"), nullable=False),
    Column("fixed_port_id", ID, ForeignKey("ports.id")),
    Column("fixed_ip_address", String(64)),
    Column("router_id", ID, ForeignKey("routers.id")),
    Column("status", String(16), nullable=False, default="DOWN"),
    UniqueConstraint("floating_network_id", "floating_ip_address"),
    UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address"),
)

# A floating IP with port forwardings has no fixed port: each forwarding maps
# protocol and external port(s) to an internal port's IPv4 address and port(s).
port_forwardings = Table(
    "port_forwardings",
    metadata,
    Column("id", ID, primary_key=True),
    owned_by("floatingips"),
    Column("internal_port_id", ID, ForeignKey("ports.id", ondelete="CASCADE"), nullable=False),
    Column("protocol", String(40), nullable=False),
    Column("internal_ip_address", String(64), nullable=False),
    Column("internal_port_start", Integer, nullable=False),
    Column("internal_port_end", Integer, nullable=False),
    Column("external_port_start", Integer, nullable=False),
    Column("external_port_end", Integer, nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Index("ix_port_forwardings_floatingip_id", "floatingip_id"),
    Index("ix_port_forwardings_internal_port_id", "internal_port_id"),
)


# -- load balancers (Octavia v2) ------------------------------------------------------
# Each row carries Octavia's two statuses. `feed_revision` is the change-feed
# revision of the last change to the load balancer's tree: an agent that reports
# running that revision has realized it (see services/loadbalancers).
def lbaas_status() -> list[Column]:
    return [
        Column("admin_state_up", Boolean, nullable=False, default=True),
        Column("provisioning_status", String(16), nullable=False),
        Column("operating_status", String(16), nullable=False),
    ]


# Octavia's flavors and availability zones: profiles (admin only) hold the provider's data as
# the JSON text given; flavors and zones name a profile and are what load balancers refer to.
lb_flavor_profiles = Table(
    "lb_flavor_profiles",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("provider_name", String(255), nullable=False),
    Column("flavor_data", String(4096), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

lb_flavors = Table(
    "lb_flavors",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(255)),
    Column("enabled", Boolean, nullable=False),
    Column("flavor_profile_id", ID, ForeignKey("lb_flavor_profiles.id"), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

lb_availability_zone_profiles = Table(
    "lb_availability_zone_profiles",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("provider_name", String(255), nullable=False),
    Column("availability_zone_data", String(4096), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

lb_availability_zones = Table(
    "lb_availability_zones",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("description", String(255)),
    Column("enabled", Boolean, nullable=False),
    Column(
        "availability_zone_profile_id",
        ID,
        ForeignKey("lb_availability_zone_profiles.id"),
        nullable=False,
    ),
    Column("created_at", DateTime, nullable=False),
)

lb_loadbalancers = Table(
    "lb_loadbalancers",
    metadata,
    *standard(),
    *lbaas_status(),
    Column("vip_address", String(64), nullable=False),
    Column("vip_port_id", ID, nullable=False),
    Column("vip_subnet_id", ID, nullable=False),
    Column("vip_network_id", ID, nullable=False),
    Column("provider", String(64), nullable=False),
    Column("feed_revision", BigInteger, nullable=False, default=0),
    Column("flavor_id", ID, ForeignKey("lb_flavors.id"), index=True),
    Column("availability_zone", String(255), ForeignKey("lb_availability_zones.name"), index=True),
)

# A load balancer's instance (Octavia's amphora): the haproxy in its qlbaas- namespace. A failover
# replaces it with a new one, under a new id; the old one is PENDING_DELETE until the agent runs the
# new one (services/amphorae.py). ACTIVE_STANDBY: two, MASTER and BACKUP, each with its VRRP port;
# `failover_next`: replaced once the other one's replacement runs (a load balancer's failover).
lb_amphorae = Table(
    "lb_amphorae",
    metadata,
    Column("id", ID, primary_key=True),
    owned_by("lb_loadbalancers"),
    Column("status", String(36), nullable=False),
    Column("role", String(36), nullable=False, server_default="STANDALONE"),
    Column("vrrp_port_id", ID),
    Column("failover_next", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

lb_listeners = Table(
    "lb_listeners",
    metadata,
    *standard(),
    *lbaas_status(),
    owned_by("lb_loadbalancers"),
    Column("protocol", String(16), nullable=False),
    Column("protocol_port", Integer, nullable=False),
    Column("connection_limit", Integer, nullable=False, default=-1),
    Column("default_pool_id", ID),
    Column("timeout_client_data", Integer, nullable=False),
    Column("timeout_member_connect", Integer, nullable=False),
    Column("timeout_member_data", Integer, nullable=False),
    Column("timeout_tcp_inspect", Integer, nullable=False),
    Column("default_tls_container_ref", String(255)),
    Column("sni_container_refs", JSON, nullable=False, default=list, server_default="[]"),
    Column("client_authentication", String(16), nullable=False, server_default="NONE"),
    Column("client_ca_tls_container_ref", String(255)),
    Column("client_crl_container_ref", String(255)),
    Column("tls_ciphers", String(2048)),
    Column("tls_versions", JSON),
    Column("alpn_protocols", JSON),
    Column("hsts_max_age", Integer),
    Column("hsts_include_subdomains", Boolean, nullable=False, server_default=false()),
    Column("hsts_preload", Boolean, nullable=False, server_default=false()),
    Column("insert_headers", JSON),
    Column("allowed_cidrs", JSON),
    UniqueConstraint("lb_loadbalancer_id", "protocol", "protocol_port"),
)

lb_pools = Table(
    "lb_pools",
    metadata,
    *standard(),
    *lbaas_status(),
    owned_by("lb_loadbalancers"),
    Column("protocol", String(16), nullable=False),
    Column("lb_algorithm", String(32), nullable=False),
    Column("session_persistence", JSON),
    Column("tls_enabled", Boolean, nullable=False, server_default=false()),
    Column("tls_container_ref", String(255)),
    Column("ca_tls_container_ref", String(255)),
    Column("crl_container_ref", String(255)),
    Column("tls_ciphers", String(2048)),
    Column("tls_versions", JSON),
    Column("alpn_protocols", JSON),
)

lb_members = Table(
    "lb_members",
    metadata,
    *standard(),
    *lbaas_status(),
    owned_by("lb_pools"),
    Column("address", String(64), nullable=False),
    Column("protocol_port", Integer, nullable=False),
    Column("weight", Integer, nullable=False, default=1),
    Column("subnet_id", ID),
    Column("backup", Boolean, nullable=False, default=False),
    Column("monitor_address", String(64)),
    Column("monitor_port", Integer),
    UniqueConstraint("lb_pool_id", "address", "protocol_port"),
)

lb_healthmonitors = Table(
    "lb_healthmonitors",
    metadata,
    *standard(),
    *lbaas_status(),
    Column(
        "lb_pool_id", ID, ForeignKey("lb_pools.id", ondelete="CASCADE"), nullable=False, unique=True
    ),
    Column("type", String(16), nullable=False),
    Column("delay", Integer, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("max_retries", Integer, nullable=False),
    Column("max_retries_down", Integer, nullable=False),
    Column("http_method", String(16)),
    Column("url_path", String(255)),
    Column("expected_codes", String(64)),
    Column("http_version", Float),
    Column("domain_name", String(255)),
)

# A listener's L7 policies, in `position` order (1, 2, ... without gaps), each with its rules.
lb_l7policies = Table(
    "lb_l7policies",
    metadata,
    *standard(),
    *lbaas_status(),
    owned_by("lb_listeners"),
    Column("action", String(32), nullable=False),
    Column("position", Integer, nullable=False),
    Column("redirect_pool_id", ID),
    Column("redirect_url", String(2048)),
    Column("redirect_prefix", String(2048)),
    Column("redirect_http_code", Integer),
)

lb_l7rules = Table(
    "lb_l7rules",
    metadata,
    *standard(),
    *lbaas_status(),
    Column(
        "lb_l7policy_id", ID, ForeignKey("lb_l7policies.id", ondelete="CASCADE"), nullable=False
    ),
    Column("type", String(32), nullable=False),
    Column("compare_type", String(32), nullable=False),
    Column("key", String(255)),
    Column("value", String(255), nullable=False),
    Column("invert", Boolean, nullable=False, default=False),
)

# What the listeners' haproxy counted (Octavia's listener statistics). `worker` and `worker_counts`
# are the reporting haproxy worker and its own counters: totals move by the difference, so a
# report sent twice counts once, and a new worker after a reload counts from zero again.
lb_listener_stats = Table(
    "lb_listener_stats",
    metadata,
    Column("listener_id", ID, ForeignKey("lb_listeners.id", ondelete="CASCADE"), primary_key=True),
    Column("active_connections", BigInteger, nullable=False, default=0),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    Column("total_connections", BigInteger, nullable=False, default=0),
    Column("request_errors", BigInteger, nullable=False, default=0),
    Column("worker", String(64), nullable=False, default=""),
    Column("worker_counts", JSON, nullable=False),
)


# -- key manager (Barbican v1) ------------------------------------------------
# A secret's payload is held only sealed (services/keymanager: AES-GCM bound to the secret's id);
# `content_type` says how it was given, and is null while a secret has no payload yet.
def key_manager_entity() -> list[Column]:
    return [
        Column("id", ID, primary_key=True),
        Column("project_id", String(64), nullable=False, index=True),
        Column("creator_id", String(64), nullable=False),
        Column("name", String(255)),
        Column("status", String(20), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    ]


km_secrets = Table(
    "km_secrets",
    metadata,
    *key_manager_entity(),
    Column("secret_type", String(80), nullable=False),
    Column("expiration", DateTime),
    Column("algorithm", String(255)),
    Column("bit_length", Integer),
    Column("mode", String(255)),
    Column("content_type", String(255)),
    Column("payload", LargeBinary),
)

km_containers = Table(
    "km_containers",
    metadata,
    *key_manager_entity(),
    Column("type", String(16), nullable=False),
)

# A container's secrets in the order given; deleting a secret takes it out of its containers.
km_container_secrets = Table(
    "km_container_secrets",
    metadata,
    Column(
        "container_id", ID, ForeignKey("km_containers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("name", String(255)),
    Column(
        "secret_id", ID, ForeignKey("km_secrets.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)


# The one ACL operation Barbican has, `read`: without a row, the default (project access).
def key_manager_acl(table: str) -> Table:
    owner = f"{table[3:-1]}_id"
    return Table(
        f"{table[:-1]}_acls",
        metadata,
        Column(owner, ID, ForeignKey(f"{table}.id", ondelete="CASCADE"), primary_key=True),
        Column("project_access", Boolean, nullable=False),
        Column("users", JSON, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
    )


km_secret_acls = key_manager_acl("km_secrets")
km_container_acls = key_manager_acl("km_containers")

# Services using a container (Octavia registers its listeners), as Barbican's consumers.
km_container_consumers = Table(
    "km_container_consumers",
    metadata,
    Column(
        "container_id", ID, ForeignKey("km_containers.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("name", String(36), primary_key=True),
    Column("url", String(255), primary_key=True),
    Column("project_id", String(64), nullable=False),  # the registering project's
    Column("created_at", DateTime, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_id", ID, primary_key=True),
    Column("tag", String(255), primary_key=True),
    Column("resource_type", String(32), nullable=False),
)
Index("ix_tags_tag", tags.c.tag)

# Who else may use an object: one row per grant of an `action` on one object to a project, or to
# every project (`*`). `shared` is no column: it is a grant of access_as_shared.
rbac_policies = Table(
    "rbac_policies",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("object_type", String(32), nullable=False),
    Column("object_id", ID, nullable=False, index=True),
    Column("action", String(255), nullable=False),
    Column("target_project", String(255), nullable=False, index=True),
    UniqueConstraint("object_type", "object_id", "action", "target_project"),
)

quotas = Table(
    "quotas",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("resource", String(64), primary_key=True),
    Column("limit", Integer, nullable=False),
)

# -- change feed -----------------------------------------------------------
# A single-row counter: bumping it inside the writing transaction orders the
# log by commit (on PostgreSQL the row lock is held until commit), so a
# reader that has seen revision N can never later find a change below N.
feed_head = Table(
    "feed_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
    # Deletions up to this revision are no longer in `changes`: an agent behind it must resync.
    Column("compacted_through", BigInteger, nullable=False, server_default="0"),
)

changes = Table(
    "changes",
    metadata,
    Column("revision", BigInteger, primary_key=True, autoincrement=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("op", String(8), nullable=False),
    Column("at", DateTime, nullable=False),
    Index("ix_changes_resource", "resource_type", "resource_id"),
)

# Applied revision and health reported by each agent.
agents = Table(
    "agents",
    metadata,
    Column("host", String(255), primary_key=True),
    Column("applied_revision", BigInteger, nullable=False, default=0),
    Column("heartbeat_at", DateTime, nullable=False),
    Column("report", JSON, nullable=False),
)

# Each role a host's agent plays (DHCP, L3, L2), as Neutron lists agents: one row per
# host and type, made by the agent's first report and refreshed by every one after.
network_agents = Table(
    "network_agents",
    metadata,
    Column("id", ID, primary_key=True),
    Column("host", String(255), nullable=False),
    Column("agent_type", String(64), nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("description", String(255)),
    Column("availability_zone", String(255)),
    Column("configurations", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
    UniqueConstraint("host", "agent_type"),
)

# Which DHCP agent serves a network, which L3 agent a router (the schedulers' choices).
network_dhcp_agents = Table(
    "network_dhcp_agents",
    metadata,
    Column("network_id", ID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", ID, ForeignKey("network_agents.id", ondelete="CASCADE"), primary_key=True),
)

router_l3_agents = Table(
    "router_l3_agents",
    metadata,
    Column("router_id", ID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True),
    Column("agent_id", ID, ForeignKey("network_agents.id", ondelete="CASCADE"), primary_key=True),
)

lab_instances = Table(
    "lab_instances",
    metadata,
    *standard(),
    Column("host", String(255), nullable=False),
    Column("availability_zone", String(255), nullable=False, server_default="nova"),
    Column("status", String(16), nullable=False, default="BUILD"),
    Column("owned_ports", JSON, nullable=False),  # ports it made, deleted with it
    Column("netns", String(64)),  # where its host's agent runs it, as reported
    Column("addresses", JSON, nullable=False),  # as the instance sees them, reported by the agent
)

# -- notifications (PostgreSQL) ---------------------------------------------
# A write to one of these tables is announced on its channel (db.CHANNELS): a process LISTENing
# there wakes its long-polls, or forgets the tokens it checked. One notification a transaction
# and channel: PostgreSQL folds identical ones, and delivers them at commit.
NOTIFIED = {
    "feed_head": "neutrino_feed",
    "domains": "neutrino_identity",
    "projects": "neutrino_identity",
    "users": "neutrino_identity",
    "roles": "neutrino_identity",
    "role_assignments": "neutrino_identity",
    "revoked_tokens": "neutrino_identity",
}
NOTIFY_FUNCTION = (
    "CREATE FUNCTION neutrino_notify() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $$"
)
NOTIFY_TRIGGERS = [
    f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION neutrino_notify('{channel}')"
    for table, channel in NOTIFIED.items()
]
