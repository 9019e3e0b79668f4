"""`GET /v2.0/extensions`: exactly the extensions this service implements.

Clients (openstacksdk, the openstack CLI, Terraform) probe this list to
decide which attributes and calls to use, so an alias appears here only
when its behaviour is real.
"""

from __future__ import annotations

EXTENSIONS: dict[str, tuple[str, str]] = {
    # alias: (name, description)
    "aap-reject-multicast": (
        "Allowed address pairs reject multicast extension",
        "Reject multicast addresses in Allowed Address Pairs",
    ),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "ext-gw-mode": (
        "Router gateway SNAT mode",
        "Choose whether a router source-NATs traffic through its external gateway (enable_snat)",
    ),
    "dvr": (
        "Distributed Virtual Router",
        "Routers' distributed flag, set by administrators; one host routes either way",
    ),
    "empty-string-filtering": (
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
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
    "floatingip-pools": ("Floating IP Pools Extension", "Provides a floating IP pools API."),
    "ip-substring-filtering": (
        "IP address substring filtering",
        "Provides IP address substring filtering when listing ports",
    ),
    "l3-ha": (
        "HA Router extension",
        "Routers' ha flag, set by administrators; one host runs one copy either way",
    ),
    "l3-port-ip-change-not-allowed": (
        "Prevent L3 router ports IP address change extension",
        "Prevent change of IP address for some L3 router ports",
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
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-mac-address-regenerate": (
        "Neutron Port MAC address regenerate",
        "Network port MAC address regenerate",
    ),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": (
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
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
        "Per-project limits on networks, subnets, ports, routers, floating IPs and security groups",
    ),
    "revision-if-match": (
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    "router-admin-state-down-before-update": (
        "Enforce Router's Admin State Down Before Update Extension",
        "Ensure that the admin state of a router is DOWN before updating the distributed attribute",
    ),
    "router": (
        "Routers",
        "Routers between networks, gateways to external networks, and floating IPs",
    ),
    "security-group": (
        "Security groups",
        "Stateful filtering of ports by security groups and their rules",
    ),
    "security-groups-normalized-cidr": (
        "Normalized remote prefixes",
        "Security group rules show their remote prefix as a network address (normalized_cidr)",
    ),
    "subnet-external-network": (
        "Subnet belongs to an external network",
        "Subnets of external networks are visible to every project",
    ),
    "subnet-service-types": (
        "Subnet service types",
        "Provides ability to set the subnet service_types field",
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
    "tag-creation": (
        "Tag creation extension",
        "Allow to create multiple tags for a resource",
    ),
    "tag-ports-during-bulk-creation": (
        "Tag Ports During Bulk Creation",
        "Allow to tag ports during bulk creation",
    ),
    "standard-attr-timestamp": (
        "Resource timestamps",
        (
            "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
            "standard attributes."
        ),
    ),
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
