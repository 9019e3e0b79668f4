"""The agent's loop (agent.runner) on a real host, fed by a change feed held in memory: what it
reports while instances wait for their addresses."""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from netlab import Lab, flat_model, wait_for

from neutrino.agent.runner import Model, Runner
from neutrino.lab import models


class MemoryFeed:
    """The server's side of a host's change feed: a snapshot, then the changes put in
    `changes`; it keeps every report the agent sends."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self._snapshot = {**snapshot, "anchors": {}}
        self.changes_to_send: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        self.reports: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._snapshot)

    def changes(self, model: Model, timeout: float) -> dict[str, Any]:
        try:  # a short wait, so that the loop sees its stop soon
            changes = self.changes_to_send.get(timeout=min(timeout, 0.1))
        except queue.Empty:
            changes = []
        return {"revision": model.revision + len(changes), "changes": changes, "anchors": {}}

    def report(self, host: str, body: dict[str, Any]) -> None:
        self.reports.append(body)


@contextmanager
def running(lab: Lab, snapshot: dict[str, Any]) -> Iterator[MemoryFeed]:
    """An agent's loop on a host of `lab`, following a feed that starts at `snapshot`; no
    periodic resync or heartbeat comes within a test's time."""
    host = lab.host()
    feed = MemoryFeed(snapshot)
    runner = Runner(lab.agent(host), feed, resync_seconds=600, report_interval=600)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: feed.reports, timeout=30)
        yield feed
    finally:
        runner.stop()
        thread.join(10)


def test_an_instance_on_a_subnet_without_dhcp_keeps_the_agent_quiet(lab: Lab) -> None:
    """Its DHCP client is never answered: the agent reports it without an address and does not
    sync the host again and again waiting for one."""
    net = models.network("flat")
    sub = models.subnet(net, "10.20.0.0/24", enable_dhcp=False)
    port = models.port(net, sub, "10.20.0.10")
    vm = models.instance("vm0", lab.host().name, port)
    snapshot = models.snapshot(networks=[net], subnets=[sub], ports=[port], instances=[vm])
    with running(lab, snapshot) as feed:
        time.sleep(0.5)  # the port's device, plugged, may be told once more
        reported = len(feed.reports)
        time.sleep(2.0)
        assert len(feed.reports) == reported
        assert feed.reports[-1]["instances"][vm["id"]]["addresses"] == []


def test_an_address_that_comes_later_is_reported_without_a_change(lab: Lab) -> None:
    """An instance whose DHCP answer comes after the sync is reported with its address as soon
    as it has it, though nothing changed in the feed."""
    host = lab.host()
    snapshot, _, vm = flat_model(host.name, count=1)
    with running(lab, snapshot) as feed:
        wait_for(
            lambda: feed.reports[-1]["instances"][vm["id"]]["addresses"] == ["10.10.0.10/24"],
            timeout=15,
        )
