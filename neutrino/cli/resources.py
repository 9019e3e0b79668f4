"""Resources the command line names by name or ID, found as the openstack CLI finds them.

An ID is tried first; otherwise the resource is the one whose name (or, for
floating IPs and load balancers, address) is exactly the reference. Several
matches are an error that lists them; none is "not found". What the caller
cannot see is not found, as the APIs answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from neutrino.client import ClientError, Session


@dataclass(frozen=True)
class Kind:
    noun: str  # as messages say it
    service: str  # its type in the catalog
    path: str  # its collection below the service's endpoint
    keys: tuple[str, ...] = ("name",)  # what else than the ID names one

    @property
    def collection(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def member(self) -> str:
        return self.collection.removesuffix("s")


NETWORK = Kind("network", "network", "/v2.0/networks")
PORT = Kind("port", "network", "/v2.0/ports")
ROUTER = Kind("router", "network", "/v2.0/routers")
FLOATING_IP = Kind("floating IP", "network", "/v2.0/floatingips", ("floating_ip_address",))
INSTANCE = Kind("instance", "lab", "/v1/instances")
LOAD_BALANCER = Kind(
    "load balancer", "load-balancer", "/v2/lbaas/loadbalancers", ("name", "vip_address")
)


def find(session: Session, kind: Kind, ref: str) -> dict[str, Any]:
    """The one resource of `kind` that `ref` names; ClientError 404 or 409 when none or several."""
    base = session.endpoint(kind.service) + kind.path
    by_id = session.request("GET", f"{base}/{quote(ref, safe='')}")
    if by_id.status_code == 200 and by_id.json()[kind.member]["id"] == ref:
        return dict(by_id.json()[kind.member])
    matches: dict[str, dict[str, Any]] = {}
    for key in kind.keys:
        listed = session.call("GET", base, params={key: ref})[kind.collection]
        matches.update((item["id"], item) for item in listed if item.get(key) == ref)
    if not matches:
        raise ClientError(404, f"No {kind.noun} found for {ref!r}.")
    if len(matches) > 1:
        raise ClientError(
            409,
            f"More than one {kind.noun} matches {ref!r}: "
            f"{', '.join(sorted(matches))}. Give its ID.",
        )
    return next(iter(matches.values()))


def find_id(session: Session, kind: Kind, ref: str) -> str:
    return str(find(session, kind, ref)["id"])
