"""The one hierarchy of API errors.

Leaf class names are Neutron's (neutron-lib) because clients match on the
`type` field of the `NeutronError` body; the HTTP status comes from the
category a leaf derives from. `api/errors.py` renders them; docs/errors.md
lists every leaf and a unit test keeps the two in agreement.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NeutronError(Exception):
    status: ClassVar[int] = 500
    message: ClassVar[str] = "An unknown exception occurred."
    retry_after: int | None = None

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.msg = message if message is not None else self.message.format(**kwargs)
        super().__init__(self.msg)

    @property
    def type(self) -> str:
        return type(self).__name__


# Categories: the status code is a property of the category.
class BadRequest(NeutronError):
    status = 400
    message = "Bad {resource} request: {msg}."


class NotAuthorized(NeutronError):
    status = 403
    message = "Not authorized."


class NotFound(NeutronError):
    status = 404
    message = "An unknown exception occurred."


class Conflict(NeutronError):
    status = 409
    message = "A conflict occurred."


class InUse(Conflict):
    message = "The resource is in use."


class PreconditionFailed(NeutronError):
    status = 412
    message = "Precondition failed."


class ServiceUnavailable(NeutronError):
    status = 503
    message = "The service is unavailable."


# 400
class InvalidInput(BadRequest):
    message = "Invalid input for operation: {error_message}."


class InvalidActionForType(InvalidInput):
    message = (
        "Invalid action '{action}' for object type '{object_type}'. Valid actions: {valid_actions}"
    )


class NetworkVlanRangeError(BadRequest):
    """Neutron answers this one with a 500; a bad range is the client's."""

    message = "Invalid network VLAN range: '{vlan_range}' - '{error}'."


class NetworkTunnelRangeError(BadRequest):
    """Neutron answers this one with a 500; a bad range is the client's."""

    message = "Invalid network tunnel range: '{tunnel_range}' - {error}."


class NetworkSegmentRangeNetTypeNotSupported(BadRequest):
    message = "Network type {type} does not support network segment ranges."


class NetworkSegmentRangeDefaultReadOnly(BadRequest):
    message = (
        "Network Segment Range {range_id} is a default segment range which could not be "
        "updated or deleted."
    )


class SegmentsSetInConjunctionWithProviders(InvalidInput):
    message = "Segments and provider values cannot both be set."


class SegmentsContainDuplicateEntry(InvalidInput):
    message = "Duplicate segment entry in request."


class InvalidSubnetServiceType(InvalidInput):
    message = "Subnet service type {service_type} does not correspond to a valid device owner."


class InvalidInputSubnetServiceType(InvalidInput):
    message = "Subnet service type {service_type} is not a string."


class InvalidServiceType(InvalidInput):
    message = "Invalid service type: {service_type}."


class InvalidFlavorServiceType(InvalidInput):
    message = "Invalid service type {service_type}."


class ServiceProfileEmpty(InvalidInput):
    message = "Service Profile needs either a driver or metainfo."


class HTTPBadRequest(BadRequest):
    """Neutron's name for query-string errors (sort keys, fields, filters)."""

    message = "{msg}"


class InvalidAllocationPool(BadRequest):
    message = "The allocation pool {pool} is not valid."


class OverlappingAllocationPools(BadRequest):
    message = "Found overlapping allocation pools: {pool_1} {pool_2} for subnet {subnet_cidr}."


class GatewayConflictWithAllocationPools(InUse):
    message = "Gateway ip {ip_address} conflicts with allocation pool {pool}."


class GatewayIpInUse(InUse):
    message = "Current gateway ip {ip_address} already in use by port {port_id}. Unable to update."


class InvalidIpForSubnet(BadRequest):
    message = "IP address {ip_address} is not a valid IP for the specified subnet."


class InvalidIpForNetwork(BadRequest):
    message = (
        "IP address {ip_address} is not a valid IP for any of the subnets on the specified network."
    )


class InvalidSharedSetting(Conflict):
    message = (
        "Unable to reconfigure sharing settings for network {network}. "
        "Multiple tenants are using it."
    )


class AddressPairAndPortSecurityRequired(Conflict):
    message = "Port Security must be enabled in order to have allowed address pairs on a port."


class PortSecurityPortHasSecurityGroup(InUse):
    message = (
        "Port has security group associated. Cannot disable port security or ip address "
        "until security group is removed"
    )


class PortSecurityAndIPRequiredForSecurityGroups(InvalidInput):
    message = (
        "Port security must be enabled and port must have an IP address in order to use "
        "security groups."
    )


# 403
class PolicyNotAuthorized(NotAuthorized):
    message = "rule:{action} is disallowed by policy"


class PolicyRemoveAuthorizationError(NotAuthorized):
    message = "Failed to remove provided policy {policy_id} because you are not authorized."


# 404
class QosPolicyNotFound(NotFound):
    message = "QoS policy {policy_id} could not be found."


class QosRuleNotFound(NotFound):
    message = "QoS rule {rule_id} for policy {policy_id} could not be found."


class NetworkNotFound(NotFound):
    message = "Network {net_id} could not be found."


class SubnetNotFound(NotFound):
    message = "Subnet {subnet_id} could not be found."


class PortNotFound(NotFound):
    message = "Port {port_id} could not be found."


class RouterNotFound(NotFound):
    message = "Router {router_id} could not be found."


class AgentNotFound(NotFound):
    message = "Agent {id} could not be found."


class FlavorNotFound(NotFound):
    message = "Flavor {flavor_id} could not be found."


class ServiceProfileNotFound(NotFound):
    message = "Service Profile {sp_id} could not be found."


class FlavorServiceProfileBindingNotFound(NotFound):
    message = "Service Profile {sp_id} is not associated with flavor {fl_id}."


class ServiceProfileDriverNotFound(NotFound):
    message = "Service Profile driver {driver} could not be found."


class InvalidDHCPAgent(AgentNotFound):
    message = "Agent {id} is not a valid DHCP Agent or has been disabled."


class InvalidL3Agent(AgentNotFound):
    message = "Agent {id} is not a L3 Agent or has been disabled"


class AvailabilityZoneNotFound(NotFound):
    message = "AvailabilityZone {availability_zone} could not be found."


class FloatingIPNotFound(NotFound):
    message = "Floating IP {floatingip_id} could not be found"


class PortForwardingNotFound(NotFound):
    message = "Port Forwarding {id} could not be found."


class SecurityGroupNotFound(NotFound):
    message = "Security group {id} does not exist"


class SecurityGroupRuleNotFound(NotFound):
    message = "Security group rule {id} does not exist"


class RbacPolicyNotFound(NotFound):
    message = "RBAC policy of type {object_type} with ID {id} not found"


class NetworkSegmentRangeNotFound(NotFound):
    message = "Network Segment Range {range_id} could not be found."


class DefaultSecurityGroupRuleNotFound(NotFound):
    message = "Default Security Group rule {id} does not exist"


class SecurityGroupDefaultStatefulnessNotFound(NotFound):
    message = "Security group default statefulness {id} could not be found."


class AddressGroupNotFound(NotFound):
    message = "Address group {address_group_id} could not be found."


class AddressesNotFound(NotFound):
    message = "Addresses {addresses} not found in the address group {address_group_id}."


class TagNotFound(NotFound):
    message = "Tag {tag} could not be found for {resource} {resource_id}."


class ExternalGatewayForFloatingIPNotFound(NotFound):
    message = (
        "External network {external_network_id} is not reachable from subnet {subnet_id}. "
        "Therefore, cannot associate Port {port_id} with a Floating IP."
    )


class HTTPNotFound(NotFound):
    """A GET that policy refuses: Neutron answers as if nothing were there."""

    message = "The resource could not be found."


class ResourceNotFound(NotFound):
    """A URL that names no resource collection."""

    message = "The resource could not be found."


class HTTPMethodNotAllowed(NeutronError):
    """Agents register themselves: a client cannot create one."""

    status = 405
    message = "The method is not allowed for the requested resource."


# 409
class DefaultExternalNetworkExists(Conflict):
    message = "A default external network already exists: {net_id}."


class AutoAllocationFailure(Conflict):
    message = "Deployment error: {reason}."


class NetworkSegmentRangeOverlaps(Conflict):
    message = "Network segment range overlaps with range(s) with id {range_id}"


class NetworkSegmentRangeReferencedByProject(InUse):
    message = "Network Segment Range {range_id} is referenced by one or more project networks."


class NetworkHostedByDHCPAgent(Conflict):
    message = "The network {network_id} has been already hosted by the DHCP Agent {agent_id}."


class NetworkNotHostedByDhcpAgent(Conflict):
    message = "The network {network_id} is not hosted by the DHCP Agent {agent_id}."


class RouterHostedByL3Agent(Conflict):
    message = "The router {router_id} has been already hosted by the L3 Agent {agent_id}."


class NetworkInUse(InUse):
    message = (
        "Unable to complete operation on network {net_id}. "
        "There are one or more ports still in use on the network."
    )


class SubnetInUse(InUse):
    message = "Unable to complete operation on subnet {subnet_id}: {reason}."


class PortInUse(InUse):
    message = (
        "Unable to complete operation on port {port_id} for network {net_id}. "
        "Port already has an attached device {device_id}."
    )


class PortBound(InUse):
    message = (
        "Unable to complete operation on port {port_id}, port is already bound, "
        "port type: {vif_type}, old_mac {old_mac}, new_mac {new_mac}."
    )


class PortDeviceInUse(InUse):
    message = "Device {device} on host {host} is already bound to port {port_id}."


class PortBindingNotFound(NotFound):
    message = "Binding for port {port_id} for host {host} could not be found."


class PortBindingAlreadyActive(Conflict):
    message = "Binding for port {port_id} on host {host} is already active."


class PortBindingAlreadyExists(Conflict):
    message = "Binding for port {port_id} on host {host} already exists."


class UnsupportedPortDeviceOwner(Conflict):
    message = "Operation {op} is not supported for device_owner {device_owner} on port {port_id}."


class MacAddressInUse(InUse):
    message = "Unable to complete operation for network {net_id}. The mac address {mac} is in use."


class NetworkMTUSubnetConflict(Conflict):
    message = "MTU of {net_id} is not valid, subnet requires a minimum of {mtu}"


class IpAddressAlreadyAllocated(Conflict):
    message = "IP address {ip} already allocated in subnet {subnet_id}"


class IpAddressGenerationFailure(Conflict):
    message = "No more IP addresses available on network {net_id}."


class IpAddressGenerationFailureNoMatchingSubnet(IpAddressGenerationFailure):
    message = (
        "No valid service subnet for the given device owner, "
        "network {network_id}, service type {service_type}."
    )


class FlatNetworkInUse(InUse):
    message = "Unable to create the flat network. Physical network {physical_network} is in use."


class VlanIdInUse(InUse):
    message = (
        "Unable to create the network. "
        "The VLAN {vlan_id} on physical network {physical_network} is in use."
    )


class TunnelIdInUse(InUse):
    message = "Unable to create the network. The tunnel ID {tunnel_id} is in use."


class NoNetworkAvailable(ServiceUnavailable):
    message = "Unable to create the network. No tenant network is available for allocation."


class FlavorDisabled(ServiceUnavailable):
    message = "Flavor is not enabled."


class ServiceProfileDisabled(ServiceUnavailable):
    message = "Service Profile is not enabled."


class RevisionNumberConstraintFailed(PreconditionFailed):
    message = "Constrained to {expected}, but current revision is {current}"


class OverQuota(Conflict):
    message = "Quota exceeded for resources: {overs}."


class RouterInUse(InUse):
    message = "Router {router_id} {reason}"


class FlavorInUse(InUse):
    message = "Flavor {flavor_id} is used by some service instance."


class ServiceProfileInUse(InUse):
    message = "Service Profile {sp_id} is used by some service instance."


class FlavorServiceProfileBindingExists(Conflict):
    message = "Service Profile {sp_id} is already associated with flavor {fl_id}."


class RouterInterfaceNotFoundForSubnet(NotFound):
    message = "Router {router_id} has no interface on subnet {subnet_id}"


class RouterInterfaceNotFound(NotFound):
    message = "Router {router_id} does not have an interface with id {port_id}"


class FloatingIPRouterWithoutGateway(Conflict):
    message = (
        "Router {router_id} has no gateway on external network {external_network_id}. "
        "Therefore, it cannot hold a Floating IP of that network."
    )


class RouterExternalGatewayInUseByFloatingIp(InUse):
    message = (
        "Gateway cannot be updated for router {router_id}, since a gateway to external network "
        "{net_id} is required by one or more floating IPs."
    )


class FloatingIPPortAlreadyAssociated(InUse):
    message = (
        "Cannot associate floating IP {floating_ip_address} ({fip_id}) with port {port_id} using "
        "fixed IP {fixed_ip}, as that fixed IP already has a floating IP on external network "
        "{net_id}."
    )


class FipInUseByPortForwarding(InUse):
    message = "Floating IP {id} in use by Port Forwarding resources."


class PortHasBindingFloatingIP(InUse):
    message = (
        "Cannot create port forwarding to floating IP {floating_ip_address} ({fip_id}) with port "
        "{port_id} using fixed IP {fixed_ip}, as that port already has a binding floating IP."
    )


class SecurityGroupRuleExists(InUse):
    message = "Security group rule already exists. Rule id is {rule_id}."


class SecurityGroupInUse(InUse):
    message = "Security Group {id} in use."


class ExternalNetworkInUse(InUse):
    message = (
        "External network {net_id} cannot be updated to be made non-external, "
        "since it has existing gateway ports."
    )


class RbacPolicyInUse(Conflict):
    message = (
        "RBAC policy on object {object_id} cannot be removed because other objects depend "
        "on it.\nDetails: {details}"
    )


class DuplicateRbacPolicy(Conflict):
    message = "An RBAC policy already exists with those values."


class DefaultSecurityGroupRuleExists(InUse):
    message = "Default Security group rule already exists. Rule id is {rule_id}."


class AddressGroupInUse(InUse):
    message = "Address group {address_group_id} is in use on one or more security group rules."


class SecurityGroupDefaultStatefulnessAlreadyExists(Conflict):
    message = (
        "A security group default statefulness setting already exists for project '{project_id}'."
    )


class SecurityGroupConflict(Conflict):
    message = "Error {reason} while attempting the operation."


class QosPolicyInUse(InUse):
    message = "QoS Policy {policy_id} is used by {object_type} {object_id}."


class QoSPolicyDefaultAlreadyExists(Conflict):
    message = "A default QoS policy exists for project {project_id}."


class QoSRulesConflict(Conflict):
    message = (
        "Rule {new_rule_type} conflicts with rule {rule_id} which already exists in "
        "QoS Policy {policy_id}."
    )


class QoSRuleParameterConflict(Conflict):
    message = (
        "Unable to add the rule with value {rule_value} to the policy {policy_id} as the "
        "existing rule of type {existing_rule} has value {existing_value}."
    )


class QosRuleNotSupported(Conflict):
    message = "Rule {rule_type} is not supported by port {port_id}"


class QosRuleNotSupportedByNetwork(Conflict):
    message = "Rule {rule_type} is not supported by network {network_id}"


class SecurityGroupCannotRemoveDefault(InUse):
    message = "Insufficient rights for removing default security group."


class ExternalIpAddressExhausted(BadRequest):
    message = "Unable to find any IP address on external network {net_id}."


class KeystoneError(Exception):
    """Identity errors render in Keystone's own body shape."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def all_leaves() -> list[type[NeutronError]]:
    """Every concrete error class, for the docs/errors.md agreement test."""
    seen: list[type[NeutronError]] = []
    stack = [NeutronError]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            seen.append(sub)
            stack.append(sub)
    return sorted(set(seen), key=lambda c: c.__name__)


# -- routers, floating IPs, security groups (appended with the L3 API) --------
class InvalidRoutes(InvalidInput):
    message = "Invalid format for routes: {routes}, {reason}"


class RoutesExhausted(BadRequest):
    message = (
        "Unable to complete operation for {router_id}. "
        "The number of routes exceeds the maximum {quota}."
    )


class RouterInterfaceInUseByRoute(InUse):
    message = (
        "Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, "
        "as it is required by one or more routes."
    )


class RouterInterfaceInUseByFloatingIP(InUse):
    message = (
        "Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, "
        "as it is required by one or more floating IPs."
    )


class SubnetMismatchForPort(BadRequest):
    message = "Subnet on port {port_id} does not match the requested subnet {subnet_id}."


class SecurityGroupCannotUpdateDefault(InUse):
    message = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(InUse):
    message = "Default security group already exists."


class SecurityGroupRuleInvalidProtocol(InvalidInput):
    message = (
        "Security group rule protocol {protocol} not supported. Only protocol values {values} "
        "and integer representations [0 to 255] are supported."
    )


class SecurityGroupRuleInvalidEtherType(InvalidInput):
    message = (
        "Security group rule for ethertype '{ethertype}' not supported. "
        "Allowed values are {values}."
    )


class SecurityGroupMultipleRemoteEntites(InvalidInput):
    message = (
        "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be "
        "provided."
    )


class SecurityGroupProtocolRequiredWithPorts(InvalidInput):
    message = "Must also specify protocol if port range is given."


class SecurityGroupInvalidPortRange(BadRequest):
    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidPortValue(BadRequest):
    message = "Invalid value for port {port}"


class SecurityGroupInvalidIcmpValue(BadRequest):
    message = "Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255."


class SecurityGroupMissingIcmpType(BadRequest):
    message = (
        "ICMP code (port-range-max) {value} is provided but ICMP type (port-range-min) is missing."
    )


class SecurityGroupInvalidProtocolForPortRange(InvalidInput):
    message = (
        "Invalid protocol {protocol} for port range, "
        "only supported for TCP, UDP, UDPLITE, SCTP and DCCP."
    )


class SecurityGroupEthertypeConflictWithProtocol(BadRequest):
    message = "Invalid ethertype {ethertype} for protocol {protocol}."


class AddressesAlreadyExist(BadRequest):
    message = "Addresses {addresses} already exist in the address group {address_group_id}."


class AddrFormatError(BadRequest):
    """netaddr's error, which Neutron answers as it is (an address in an address group
    action, a metering rule's prefix)."""

    message = "invalid IPNetwork {address}"


class SecurityGroupRuleParameterConflict(InvalidInput):
    message = "Conflicting value ethertype {ethertype} for CIDR {cidr}"


class NeutronDbObjectDuplicateEntry(Conflict):
    message = (
        "Failed to create a duplicate {object_type}: "
        "for attribute(s) {attributes} with value(s) {values}"
    )


# -- subnet pools and address scopes ----------------------------------------------------
class SubnetPoolNotFound(NotFound):
    message = "Subnet pool {subnetpool_id} could not be found."


class AddressScopeNotFound(NotFound):
    message = "Address scope {address_scope_id} could not be found."


class EmptySubnetPoolPrefixList(BadRequest):
    message = "Empty subnet pool prefix list."


class PrefixVersionMismatch(BadRequest):
    message = "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


class IllegalSubnetPoolPrefixBounds(BadRequest):
    message = (
        "Illegal prefix bounds: {prefix_type}={prefixlen}, {base_prefix_type}={base_prefixlen}."
    )


class IllegalSubnetPoolPrefixUpdate(BadRequest):
    message = "Illegal update to prefixes: {msg}."


class IllegalSubnetPoolIpVersionAssociationToAddressScope(BadRequest):
    message = (
        "Illegal subnetpool association: subnetpool {subnetpool_id} cannot associate with "
        "address scope {address_scope_id} because subnetpool ip_version is not {ip_version}."
    )


class IllegalSubnetPoolUpdate(BadRequest):
    message = "Illegal subnetpool update : {reason}."


class MinPrefixSubnetAllocationError(BadRequest):
    message = (
        "Unable to allocate subnet with prefix length {prefixlen}, "
        "minimum allowed prefix is {min_prefixlen}."
    )


class MaxPrefixSubnetAllocationError(BadRequest):
    message = (
        "Unable to allocate subnet with prefix length {prefixlen}, "
        "maximum allowed prefix is {max_prefixlen}."
    )


class SubnetPoolDeleteError(BadRequest):
    message = "Unable to delete subnet pool: {reason}."


class NetworkSubnetPoolAffinityError(BadRequest):
    message = "Subnets hosted on the same network must be allocated from the same subnet pool."


class NetworkAddressScopeAffinityError(BadRequest):
    message = (
        "Subnets of the same address family hosted on the same network must all participate "
        "in the same address scope."
    )


class AddressScopeUpdateError(BadRequest):
    message = "Unable to update address scope {address_scope_id} : {reason}."


class SubnetAllocationError(Conflict):
    """Neutron answers this one with a 500; a pool without room is no server fault."""

    message = "Failed to allocate subnet: {reason}."


class AddressScopePrefixConflict(Conflict):
    message = (
        "Failed to associate address scope: subnetpools within an address scope must have "
        "unique prefixes."
    )


class AddressScopeInUse(InUse):
    message = (
        "Unable to complete operation on address scope {address_scope_id}. There are one or "
        "more subnet pools in use on the address scope."
    )


class SubnetPoolQuotaExceeded(OverQuota):
    message = "Per-project subnet pool prefix quota exceeded."


# -- trunks ----------------------------------------------------------------------------------
class TrunkNotFound(NotFound):
    message = "Trunk {trunk_id} could not be found."


class SubPortNotFound(NotFound):
    message = "SubPort {port_id} on trunk {trunk_id} could not be found."


class TrunkPortInUse(InUse):
    message = "Port {port_id} is in use by another trunk."


class DuplicateSubPort(InUse):
    message = (
        "segmentation_type {segmentation_type} and segmentation_id {segmentation_id} "
        "already in use on trunk {trunk_id}."
    )


class ParentPortInUse(InUse):
    message = "Port {port_id} is currently in use and is not eligible for use as a parent port."


class SubPortMtuGreaterThanTrunkPortMtu(Conflict):
    message = (
        "MTU {port_mtu} of subport {port_id} cannot be greater than MTU {trunk_mtu} "
        "of trunk {trunk_id}."
    )


class PortInUseAsTrunkParent(InUse):
    message = "Port {port_id} is currently a parent port for trunk {trunk_id}."


class PortInUseAsSubPort(InUse):
    message = "Port {port_id} is currently a subport for trunk {trunk_id}."


class TrunkInUse(InUse):
    message = "Trunk {trunk_id} is currently in use."


class TrunkDisabled(Conflict):
    message = "Trunk {trunk_id} is currently disabled."


# -- conntrack helpers -------------------------------------------------------------------------
class ConntrackHelperNotFound(NotFound):
    message = "Conntrack Helper {id} could not be found."


class ConntrackHelperNotAllowed(BadRequest):
    message = "Conntrack Helper {helper} is not allowed."


class InvalidProtocolForHelper(BadRequest):
    message = (
        "Conntrack Helper {helper} does not support: {protocol}. "
        "Supported protocols are: {supported_protocols}"
    )


# -- metering --------------------------------------------------------------------------------
class MeteringLabelNotFound(NotFound):
    message = "Metering label '{label_id}' does not exist."


class MeteringLabelRuleNotFound(NotFound):
    message = "Metering label rule '{rule_id}' does not exist."


class MeteringLabelRuleOverlaps(Conflict):
    message = "Metering label rule with remote_ip_prefix '{remote_ip_prefix}' overlaps another."


class Invalid(BadRequest):
    """neutron-lib's generic Invalid, which Neutron answers with a 500 (it is in no fault map);
    bad input is the client's fault, so here it is a 400 with Neutron's type and message."""

    message = "{message}"
