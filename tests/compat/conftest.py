"""openstacksdk connections to the module's live server, as the administrator and as a member
(a module that speaks another client defines its own `admin`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[Any]:
    conn = live_server.sdk("neutrino-admin")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def demo(live_server: LiveServer) -> Iterator[Any]:
    conn = live_server.sdk("neutrino-demo")
    yield conn
    conn.close()
