"""Request shape of network segment ranges (administrators' only)."""

from __future__ import annotations

from neutrino.api.v2.attrs import REQUIRED, Attr, boolean, one_of, ranged_int, standard, string

# Neutron's NETWORK_SEGMENT_RANGE_LIMIT: the widest type's (GRE) identifiers.
SEGMENTATION_ID = ranged_int(1, 2**32 - 1)

NETWORK_SEGMENT_RANGE = {
    **standard(),
    "default": Attr(post=False, filter=False),
    "shared": Attr(boolean, default=True, filter=False),
    "network_type": Attr(one_of("vlan", "vxlan", "gre", "geneve"), default=REQUIRED),
    "physical_network": Attr(string(64)),
    "minimum": Attr(SEGMENTATION_ID, default=REQUIRED, put=True, filter=False),
    "maximum": Attr(SEGMENTATION_ID, default=REQUIRED, put=True, filter=False),
    "used": Attr(post=False, filter=False),
    "available": Attr(post=False, filter=False),
}
