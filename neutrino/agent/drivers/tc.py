"""Traffic shaping by tc (plan.qos): tbf qdiscs at the root of taps and ifb devices, and the
ingress filters that send what arrives on a tap to its ifb.

A tbf is changed in place (`tc qdisc replace` on a tbf modifies it, its queue
stays) and deleted when the plan no longer wants it, which gives the device
its default queue back; a tap's redirect goes with its ingress qdisc. Only
devices with our names are looked at.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from neutrino.plan.state import Shaper

LATENCY = "50ms"  # how long a packet may wait in the bucket before it is dropped
OWNED = ("tap", "ifb")
INGRESS = "ffff:"
# The one filter of a tap's ingress qdisc: every frame, to the ifb.
REDIRECT = ["parent", INGRESS, "protocol", "all", "prio", "49", "handle", "800::800", "u32"]
REDIRECT += ["match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev"]


class TcError(RuntimeError):
    pass


@dataclass
class Observed:
    buckets: dict[str, tuple[int, int]]  # device -> (rate in bits/s, burst in bytes) of its tbf
    redirects: dict[str, str | None]  # tap with an ingress qdisc -> the device it sends to


def _tc(netns: str | None, *args: str) -> str:
    command = ["tc", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise TcError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def observe(netns: str | None) -> Observed:
    seen = Observed({}, {})
    for qdisc in json.loads(_tc(netns, "-j", "qdisc", "show") or "[]"):
        device = qdisc.get("dev", "")
        if not device.startswith(OWNED):
            continue
        if qdisc.get("kind") == "tbf" and qdisc.get("root"):
            options = qdisc.get("options", {})
            seen.buckets[device] = (int(options["rate"]) * 8, int(options["burst"]))
        if qdisc.get("kind") == "ingress":
            seen.redirects[device] = redirect_target(netns, device)
    return seen


def redirect_target(netns: str | None, tap: str) -> str | None:
    for found in json.loads(_tc(netns, "-j", "filter", "show", "dev", tap, "ingress") or "[]"):
        for action in found.get("options", {}).get("actions", []):
            if action.get("kind") == "mirred":
                return str(action.get("to_dev"))
    return None


def matches(shaper: Shaper, seen: tuple[int, int] | None) -> bool:
    """The kernel keeps the bucket as a time at the rate: the burst reads back rounded."""
    if seen is None or seen[0] != shaper.rate_bps:
        return False
    return abs(seen[1] - shaper.burst_bytes) <= shaper.burst_bytes // 1000 + 64


def shape(shaper: Shaper) -> None:
    rate, burst = f"{shaper.rate_bps}bit", f"{shaper.burst_bytes}b"
    _tc(
        shaper.netns,
        *("qdisc", "replace", "dev", shaper.device, "root", "tbf"),
        *("rate", rate, "burst", burst, "latency", LATENCY),
    )


def redirect(netns: str | None, tap: str, target: str) -> None:
    _tc(netns, "qdisc", "replace", "dev", tap, "ingress")
    _tc(netns, "filter", "replace", "dev", tap, *REDIRECT, target)


def unshape(netns: str | None, device: str) -> None:
    _tc(netns, "qdisc", "del", "dev", device, "root")


def stop_redirect(netns: str | None, tap: str) -> None:
    _tc(netns, "qdisc", "del", "dev", tap, "ingress")
