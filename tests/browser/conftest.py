"""The dashboard in Debian's headless Chromium (Playwright), against a live server with its data
plane.

The server runs with its embedded agent in isolated mode (a unique namespace
prefix); everything it made is torn down at the end, and the test asserts
nothing is left. Playwright never downloads a browser: it drives
/usr/bin/chromium, which scripts/test installs.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_PASSWORD, Databases, LiveServer, dataplane_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(reason="needs Debian's chromium (scripts/test installs it)")
                )
            elif os.geteuid() != 0:
                item.add_marker(
                    pytest.mark.skip(
                        reason="the dashboard tests run the real data plane: need root"
                    )
                )


class Cloud(LiveServer):
    """A live server with its data plane, and the ways a test checks packets from outside."""

    def outside(self, *command: str) -> subprocess.CompletedProcess[str]:
        """Run a command in the outside world (the upstream of the external network)."""
        return self.neutrino("outside", "--", *command, check=False)

    @property
    def dashboard(self) -> str:
        return self.url + "/dashboard"


@pytest.fixture(scope="module")
def cloud(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with dataplane_server(databases, tmp_path_factory, "tb", Cloud, host="web") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def sign_in(browser: Any, cloud: Cloud, user: str, password: str, project: str = "") -> Any:
    """A fresh browser context signed in as `user`; returns its page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Release 10.10.10.3?" -> yes
    page.goto(cloud.dashboard + "/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.fill("input[name=project]", project)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r".*/dashboard/project/topology"))
    return page


@pytest.fixture
def admin_page(browser: Any, cloud: Cloud) -> Iterator[Any]:
    page = sign_in(browser, cloud, "admin", ADMIN_PASSWORD, "admin")
    yield page
    page.context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
