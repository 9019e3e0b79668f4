"""IP address and MAC allocation.

Correctness under concurrency comes from two layers. First, writers are
serialized (SQLite's single writer behind a process lock; on PostgreSQL
every write transaction holds the change feed's head row, see db), so the
"look for a free address, then take it" step never races. Second, the
(subnet, address) primary key of ip_allocations and the (network, MAC)
unique constraint of ports make a duplicate impossible even if the first
layer were ever bypassed.

Which address: small pools hand out the lowest free address, as people
expect from the tutorial (.1 gateway, then .2, .3 ...); large pools (IPv6
/64s, big IPv4 ranges) probe random candidates. Neither reads a subnet's
allocations: each subnet keeps its free addresses as ranges (the pools less
what is allocated in them), so the lowest free address is the start of the
first range, and taking or freeing an address changes at most two ranges.
The gateway, and for IPv4 the network and broadcast addresses, are never in
a pool and so never allocated.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Iterable, Iterator

from neutrino import errors

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Pool = tuple[Address, Address]

SCAN_LIMIT = 4096  # pools up to this size are scanned for the lowest free address
BASE_MAC = (0xFA, 0x16, 0x3E)  # the prefix Neutron users recognize
RANDOM = random.SystemRandom()


def default_gateway(net: Network) -> Address:
    """First host address; for IPv6 the subnet-router anycast address, as Neutron."""
    if net.version == 6:
        return net.network_address
    return net.network_address + 1


def usable_range(net: Network) -> Pool:
    """Addresses a pool may contain: IPv4 excludes network and broadcast."""
    if net.version == 4 and net.prefixlen < 31:
        return net.network_address + 1, net.broadcast_address - 1
    if net.version == 6:
        # The subnet-router anycast address is never a host address.
        return net.network_address + 1, net.broadcast_address
    return net.network_address, net.broadcast_address


def _between(low: Address, address: Address, high: Address) -> bool:
    """low <= address <= high; an address of another IP version is never between."""
    return low.version == address.version == high.version and int(low) <= int(address) <= int(high)


def default_pools(net: Network, gateway: Address | None) -> list[Pool]:
    """The usable range minus the gateway, split around it."""
    first, last = usable_range(net)
    if gateway is None or not _between(first, gateway, last):
        return [(first, last)]
    pools = []
    if gateway != first:
        pools.append((first, gateway - 1))
    if gateway != last:
        pools.append((gateway + 1, last))
    return pools


def parse_pools(net: Network, raw: Iterable[dict[str, str]], gateway: Address | None) -> list[Pool]:
    """Validate user-given pools: inside the subnet, ordered, not overlapping, not the gateway."""
    pools: list[Pool] = []
    first, last = usable_range(net)
    for item in raw:
        try:
            start, end = ipaddress.ip_address(item["start"]), ipaddress.ip_address(item["end"])
        except (KeyError, ValueError, TypeError):
            raise errors.InvalidInput(
                error_message=(
                    f"Invalid allocation pool {item}: 'start' and 'end' must be IP addresses"
                )
            ) from None
        if start.version != net.version or end.version != net.version or int(start) > int(end):
            raise errors.InvalidAllocationPool(pool=f"{item.get('start')}-{item.get('end')}")
        if not (_between(first, start, last) and _between(first, end, last)):
            raise errors.InvalidInput(
                error_message=(
                    f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}"
                )
            )
        pools.append((start, end))
    pools.sort()
    for (a_start, a_end), (b_start, b_end) in itertools.pairwise(pools):
        if int(b_start) <= int(a_end):
            raise errors.OverlappingAllocationPools(
                pool_1=f"{a_start}-{a_end}", pool_2=f"{b_start}-{b_end}", subnet_cidr=str(net)
            )
    if gateway is not None:
        for start, end in pools:
            if _between(start, gateway, end):
                raise errors.GatewayConflictWithAllocationPools(
                    ip_address=str(gateway), pool=f"{start}-{end}"
                )
    return pools


def pools_from(raw: list[dict[str, str]]) -> list[Pool]:
    """Pools as stored (`[{"start", "end"}]`) to address pairs."""
    return [(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])) for p in raw]


def pool_size(pools: list[Pool]) -> int:
    return sum(int(end) - int(start) + 1 for start, end in pools)


def in_pools(address: Address, pools: list[Pool]) -> bool:
    return any(_between(start, address, end) for start, end in pools)


def free_ranges(pools: list[Pool], taken: Iterable[Address]) -> list[Pool]:
    """What `pools` leave free of `taken`, in address order."""
    free: list[Pool] = []
    inside = sorted({int(a) for a in taken if in_pools(a, pools)})
    for start, end in sorted(pools):
        kind, low = type(start), int(start)
        for value in inside:
            if low <= value <= int(end):
                if value > low:
                    free.append((kind(low), kind(value - 1)))
                low = value + 1
        if low <= int(end):
            free.append((kind(low), end))
    return free


def sortable(address: Address, step: int = 0) -> str:
    """`address` (or the one `step` places on) as text that sorts as addresses do: fixed-width
    hex. Past either end of the address space, a text no address has."""
    return f"{int(address) + step:0{8 if address.version == 4 else 32}x}"


def from_sortable(text: str) -> Address:
    value = int(text, 16)
    return ipaddress.IPv4Address(value) if len(text) == 8 else ipaddress.IPv6Address(value)


def random_candidates(
    pools: list[Pool], tries: int = 64, rng: random.Random = RANDOM
) -> Iterator[Address]:
    """Addresses of large `pools` to probe, at random; the caller stops at the first free one."""
    total = pool_size(pools)
    for _ in range(tries):
        offset = rng.randrange(total)
        for start, end in pools:
            size = int(end) - int(start) + 1
            if offset < size:
                yield ipaddress.ip_address(int(start) + offset)
                break
            offset -= size


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def is_auto_address(ra_mode: str | None, address_mode: str | None) -> bool:
    """Hosts configure their own address (SLAAC): the port's is the EUI-64 one, not a pick."""
    return address_mode in AUTO_ADDRESS_MODES or ra_mode in AUTO_ADDRESS_MODES


def eui64(net: Network, mac: str) -> ipaddress.IPv6Address:
    """The address a NIC with `mac` configures in the /64 `net` (RFC 4291's modified EUI-64)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    interface_id = int.from_bytes(bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]]), "big")
    return ipaddress.IPv6Address(int(net.network_address) | interface_id)


def random_mac(rng: random.Random = RANDOM) -> str:
    """A unicast, locally-administered-style MAC under Neutron's base prefix."""
    tail = [rng.randrange(256) for _ in range(3)]
    return ":".join(f"{b:02x}" for b in (*BASE_MAC, *tail))


# -- subnet pools: prefixes handed out as subnets ------------------------------------------
def within(inner: Network, outer: Network) -> bool:
    """`inner` is a part of `outer` (False across IP versions, where ipaddress raises)."""
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def compact(prefixes: Iterable[Network]) -> list[Network]:
    """The fewest CIDRs covering the same addresses (overlaps and neighbours merged), IPv4
    first."""
    nets = list(prefixes)
    return [
        merged
        for version in (4, 6)
        for merged in ipaddress.collapse_addresses(  # type: ignore[type-var]
            n for n in nets if n.version == version
        )
    ]


def covers(outer: Iterable[Network], inner: Iterable[Network]) -> bool:
    """Every address of `inner` is in `outer`."""
    whole = compact(outer)
    return all(any(within(net, big) for big in whole) for net in compact(inner))


def overlapping(ours: Iterable[Network], theirs: Iterable[Network]) -> bool:
    others = list(theirs)
    return any(within(a, b) or within(b, a) for a in ours for b in others)


def free_prefixes(prefixes: Iterable[Network], taken: Iterable[Network]) -> list[Network]:
    """What `prefixes` leave free of `taken`, smallest blocks first (the best fit first)."""
    free = compact(prefixes)
    for used in taken:
        left: list[Network] = []
        for block in free:
            if within(used, block):
                left += [] if used == block else block.address_exclude(used)  # type: ignore[arg-type]
            elif not within(block, used):
                left.append(block)
        free = left
    return sorted(compact(free), key=lambda net: net.prefixlen, reverse=True)


def allocate_prefix(free: list[Network], prefixlen: int) -> Network | None:
    """The first subnet of length `prefixlen` in the smallest free block that holds one."""
    for block in free:
        if prefixlen >= block.prefixlen:
            return next(block.subnets(new_prefix=prefixlen))  # type: ignore[return-value]
    return None
