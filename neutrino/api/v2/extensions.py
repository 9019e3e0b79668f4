"""`GET /v2.0/extensions`: exactly the extensions this service implements.

Clients (openstacksdk, the openstack CLI, Terraform) probe this list to
decide which attributes and calls to use, so an alias appears here only
when its behaviour is real.
"""

from __future__ import annotations

EXTENSIONS: dict[str, tuple[str, str]] = {
    "aap-reject-multicast": (
        "Allowed address pairs reject multicast extension",
        "Reject multicast addresses in Allowed Address Pairs",
    ),
    "address-group": ("Address group", "Support address group"),
    "address-scope": ("Address scope", "Address scopes extension."),
    "agent": ("agent", "The agent management extension."),
    "agent-resources-synced": (
        "Agent's Resource View Synced to Placement",
        "Stores success/failure of last sync to Placement",
    ),
    "agent_sort_key": (
        "Agents Sort Key",
        "Enabling the keyword sort_key for sorting in agents.",
    ),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "auto-allocated-topology": (
        "Auto Allocated Topology Services",
        "Auto Allocated Topology Services.",
    ),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "availability_zone_filter": (
        "Availability Zone Filter Extension",
        "Add filter parameters to AvailabilityZone resource",
    ),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "binding-extended": (
        "Port Bindings Extended",
        "Expose port bindings of a virtual port to external application",
    ),
    "default-subnetpools": (
        "Default Subnetpools",
        "Provides ability to mark and use a subnetpool as the default.",
    ),
    "dhcp_agent_scheduler": ("DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    "dns-domain-ports": (
        "dns_domain for ports",
        "Allows the DNS domain to be specified for a network port.",
    ),
    "dns-integration": (
        "DNS Integration",
        (
            "Ports' DNS names, answered by their network's DHCP server, and networks' DNS "
            "domain (floating IPs have no DNS attributes here)"
        ),
    ),
    "dvr": (
        "Distributed Virtual Router",
        "Routers' distributed flag, set by administrators; one host routes either way",
    ),
    "empty-string-filtering": (
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
    ),
    "expose-port-forwarding-in-fip": (
        "Expose Floating IP port forwardings",
        "Expose port forwarding fields in floating IP response",
    ),
    "expose-l3-conntrack-helper": (
        "Expose CT target rules for conntrack helper",
        "Expose allow adding CT target rules for conntrack helper",
    ),
    "ext-gw-mode": (
        "Router gateway SNAT mode",
        "Choose whether a router source-NATs traffic through its external gateway (enable_snat)",
    ),
    "external-net": (
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    "extra_dhcp_opt": (
        "Neutron Extra DHCP options",
        (
            "Extra options configuration for DHCP. For example PXE boot options to DHCP clients "
            "can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"
        ),
    ),
    "extraroute": (
        "Router static routes",
        "Static routes on routers; each nexthop on a subnet the router is connected to",
    ),
    "extraroute-atomic": (
        "Atomic router static route changes",
        "add_extraroutes and remove_extraroutes change some routes without replacing all",
    ),
    "filter-validation": (
        "Filter parameters validation",
        "Unknown filter parameters are rejected with 400",
    ),
    "fip-port-details": (
        "Floating IP port details",
        "Floating IPs show the name, MAC, status and owner of their associated port",
    ),
    "floating-ip-port-forwarding": (
        "Floating IP Port Forwarding",
        "Allow port forwarding from floating IP port to an internal port",
    ),
    "floating-ip-port-forwarding-description": (
        "Floating IP Port Forwarding new attribute description",
        "Add a description field to Port Forwarding rules",
    ),
    "floating-ip-port-forwarding-detail": (
        "Floating IP port forwarding detail",
        (
            "Allow list floating ip return more port forwarding data, include'id' and "
            "'internal_port_id'"
        ),
    ),
    "floating-ip-port-forwarding-port-ranges": (
        "Floating IP Port Forwarding support port ranges",
        "Add support to port ranges",
    ),
    "floating-ip-router-writable": (
        "Floating IP Router (writable)",
        "Provides a writable router_id attribute for a floating IP resource.",
    ),
    "flavors": (
        "Neutron Service Flavors",
        "Flavor specification for Neutron advanced services.",
    ),
    "floatingip-pools": ("Floating IP Pools Extension", "Provides a floating IP pools API."),
    "ip-substring-filtering": (
        "IP address substring filtering",
        "Provides IP address substring filtering when listing ports",
    ),
    "l3-conntrack-helper": (
        "L3 Conntrack helper",
        "Allow adding CT target rules for conntrack helper",
    ),
    "l3-flavors": ("Router Flavor Extension", "Flavor support for routers."),
    "l3-ha": (
        "HA Router extension",
        "Routers' ha flag, set by administrators; one host runs one copy either way",
    ),
    "l3-port-ip-change-not-allowed": (
        "Prevent L3 router ports IP address change extension",
        "Prevent change of IP address for some L3 router ports",
    ),
    "l3_agent_scheduler": ("L3 Agent Scheduler", "Schedule routers among l3 agents"),
    "metering": ("Neutron Metering", "Neutron Metering extension."),
    "metering_source_and_destination_fields": (
        "Neutron Metering with source and destination filtering",
        (
            "Neutron Metering extension that enables the use of source and destination IP "
            "prefixes to create metering label rules."
        ),
    ),
    "multi-provider": (
        "Multi Provider Network",
        "Networks' segments; a network has one segment here",
    ),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": (
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
    ),
    "network-ip-availability": (
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
    ),
    "network-ip-availability-details": (
        "Network IP Availability Details Extension",
        "Add ip_availability_details attribute to network-ip-availabilities resource.",
    ),
    "network-segment-range": (
        "Neutron Network Segment Range",
        "Provides support for the network segment range management",
    ),
    "network_availability_zone": (
        "Network Availability Zone",
        "Availability zone support for network.",
    ),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-device-profile": ("Port device profile", "Expose the port device profile (Cyborg)"),
    "port-mac-address-regenerate": (
        "Neutron Port MAC address regenerate",
        "Network port MAC address regenerate",
    ),
    "port-numa-affinity-policy": (
        "Port NUMA affinity policy",
        "Expose the port NUMA affinity policy",
    ),
    "port-numa-affinity-policy-socket": (
        'Port NUMA affinity policy "socket"',
        'Adds "socket" to the supported port NUMA affinity policies',
    ),
    "port-security": ("Port Security", "Provides port security"),
    "port-security-groups-filtering": (
        "Port filtering on security groups",
        "Provides security groups filtering when listing ports",
    ),
    "project-id": (
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "qos": ("Quality of Service", "The Quality of Service extension."),
    "qos-bw-limit-direction": (
        "Direction for QoS bandwidth limit rule",
        "Allow to configure QoS bandwidth limit rule with specific direction: ingress or egress",
    ),
    "qos-default": ("QoS default policy", "Expose the QoS default policy per project"),
    "qos-port-network-policy": (
        "QoS port network policy ID",
        "Adds a the QoS network ID to the port definition",
    ),
    "qos-rule-type-details": (
        "Details of QoS rule types",
        "Expose details about QoS rule types supported by loaded backend drivers",
    ),
    "qos-rules-alias": (
        "Quality of Service rules alias API",
        (
            "API to enable GET, PUT and DELETE operations on QoS policy rules without "
            "specifying policy ID"
        ),
    ),
    "quota-check-limit": (
        "Quota limit check",
        "With check_limit, a quota update below current usage is refused",
    ),
    "quota-check-limit-default": (
        "Quota engine limit check by default",
        (
            "By default, the Neutron quota engine checks the resource usage before applying a "
            "new quota limit"
        ),
    ),
    "quota_details": (
        "Quota usage",
        "Per-project limits with current usage at /quotas/{project_id}/details",
    ),
    "quotas": (
        "Quotas",
        (
            "Per-project limits on networks, subnets, ports, routers, floating IPs, security "
            "groups and RBAC policies"
        ),
    ),
    "rbac-address-group": (
        "Add address_group type to RBAC",
        "Add address_group type to network RBAC",
    ),
    "rbac-address-scope": ("Add address_scope type to RBAC", "Add address_scope type to RBAC"),
    "rbac-policies": (
        "RBAC Policies",
        "Allows creation and modification of policies that control tenant access to resources.",
    ),
    "rbac-security-groups": ("Add security_group type to RBAC", "Add security_group type to RBAC"),
    "rbac-subnetpool": ("Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    "router": (
        "Routers",
        "Routers between networks, gateways to external networks, and floating IPs",
    ),
    "router-admin-state-down-before-update": (
        "Enforce Router's Admin State Down Before Update Extension",
        "Ensure that the admin state of a router is DOWN before updating the distributed attribute",
    ),
    "router_availability_zone": (
        "Router Availability Zone",
        "Availability zone support for router.",
    ),
    "security-group": (
        "Security groups",
        "Stateful filtering of ports by security groups and their rules",
    ),
    "security-groups-default-rules": (
        "Default rules for security groups",
        "Configure set of security group rules used as default rules for every new security group",
    ),
    "security-groups-default-statefulness": (
        "Security Groups Default Statefulness",
        (
            "Allows configuring the default value of the 'stateful' attribute for new security "
            "groups, on a per-project or system-wide basis"
        ),
    ),
    "security-groups-normalized-cidr": (
        "Normalized remote prefixes",
        "Security group rules show their remote prefix as a network address (normalized_cidr)",
    ),
    "security-groups-remote-address-group": (
        "Remote address group id field for security group rules",
        "Add new field of remote address group id in SG rules",
    ),
    "security-groups-rules-belongs-to-default-sg": (
        "Security group rule belongs to the project's default security group",
        (
            "Flag to determine if the security group rule belongs to the project's default "
            "security group"
        ),
    ),
    "security-groups-shared-filtering": (
        "Security group filtering on the shared field",
        "Support filtering security groups on the shared field",
    ),
    "service-type": (
        "Neutron Service Type Management",
        "API for retrieving service providers for Neutron advanced services",
    ),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": (
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    "standard-attr-revisions": (
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    "standard-attr-tag": (
        (
            "Tag support for resources with standard attribute: subnet, trunk, "
            "network_segment_range, router, network, policy, subnetpool, port, security_group, "
            "floatingip"
        ),
        "Enables to set tag on resources with standard attribute.",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        (
            "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
            "standard attributes."
        ),
    ),
    "stateful-security-group": (
        "Stateful security group",
        "Indicates if the security group is stateful or not",
    ),
    "subnet-external-network": (
        "Subnet belongs to an external network",
        "Subnets of external networks are visible to every project",
    ),
    "subnet-service-types": (
        "Subnet service types",
        "Provides ability to set the subnet service_types field",
    ),
    "subnet_allocation": (
        "Subnet Allocation",
        "Enables allocation of subnets from a subnet pool",
    ),
    "subnet_onboard": (
        "Subnet Onboard",
        "Provides support for onboarding subnets into subnet pools",
    ),
    "subnetpool-prefix-ops": (
        "Subnet Pool Prefix Operations",
        "Provides support for adjusting the prefix list of subnet pools",
    ),
    "tag-creation": (
        "Tag creation extension",
        "Allow to create multiple tags for a resource",
    ),
    "tag-ports-during-bulk-creation": (
        "Tag Ports During Bulk Creation",
        "Allow to tag ports during bulk creation",
    ),
    "trunk": ("Trunk Extension", "Provides support for trunk ports"),
    "trunk-details": ("Trunk port details", "Expose trunk port details"),
}


def extension_list() -> list[dict[str, object]]:
    return [
        {
            "alias": alias,
            "name": name,
            "description": description,
            "updated": "2026-01-01T00:00:00-00:00",
            "links": [],
        }
        for alias, (name, description) in sorted(EXTENSIONS.items())
    ]
