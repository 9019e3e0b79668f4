"""Real-kernel tests: every test gets its own name prefix and leaves nothing behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netlab import Lab, leftovers, root_namespace
from test_routers_api import RoutedCloud

from neutrino.agent.drivers import netns as ns


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/netns/" in str(item.path):
            item.add_marker(pytest.mark.netns)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="netns tests need root"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A Lab whose namespaces and processes are all gone when the test ends, pass or fail."""
    prefix = f"tn{secrets.token_hex(3)}-"
    lab = Lab(prefix, tmp_path / "state")
    root = root_namespace()
    try:
        yield lab
    finally:
        lab.close()
        assert leftovers(prefix, lab.state_root) == []
        assert root_namespace() == root


@pytest.fixture
def guests(cloud: RoutedCloud) -> Iterator[Callable[[str], str]]:
    """Namespaces of the test's own (a VM or a container would have them), gone after it."""
    made: list[str] = []

    def make(name: str) -> str:
        netns = f"{cloud.prefix}g-{name}"
        ns.ensure_namespace(netns)
        made.append(netns)
        return netns

    yield make
    for netns in made:
        ns.delete_namespace(netns)
