"""What load balancers and Octavia's flavors and availability zones share: the providers, and
Octavia's refusal of a change to a busy load balancer (the others are services/refusals.py, all
rendered by api/octavia.py as {"faultcode", "faultstring", "debuginfo"})."""

from __future__ import annotations

from neutrino.services.refusals import Conflict

PROVIDER = "amphora"
# Octavia's providers by default: amphora, and octavia as an alias of it.
PROVIDERS = {
    PROVIDER: "haproxy in a network namespace on an agent's host",
    "octavia": "Deprecated alias of the amphora provider.",
}


class Immutable(Conflict):
    """Octavia's ImmutableObject: the load balancer is busy with an earlier change."""

    retry_after = 1

    def __init__(self, lb_id: str) -> None:
        super().__init__(f"Load Balancer {lb_id} is immutable and cannot be updated.")
