"""What load balancers and Octavia's flavors and availability zones share: the providers and
Octavia's kinds of error, rendered by api/octavia.py as {"faultcode", "faultstring",
"debuginfo"}."""

from __future__ import annotations

PROVIDER = "amphora"
# Octavia's providers by default: amphora, and octavia as an alias of it.
PROVIDERS = {
    PROVIDER: "haproxy in a network namespace on an agent's host",
    "octavia": "Deprecated alias of the amphora provider.",
}


class LoadBalancerError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(LoadBalancerError):
    status = 400


class Forbidden(LoadBalancerError):
    status = 403


class NotFound(LoadBalancerError):
    status = 404


class Conflict(LoadBalancerError):
    status = 409


class Immutable(Conflict):
    """Octavia's ImmutableObject: the load balancer is busy with an earlier change."""

    def __init__(self, lb_id: str) -> None:
        super().__init__(f"Load Balancer {lb_id} is immutable and cannot be updated.")
