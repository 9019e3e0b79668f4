"""The unchanged clients (openstacksdk, keystoneauth, the openstack CLI) authenticate against us."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.routing import Mount

from neutrino.api.identity import routes
from neutrino.config import Settings
from neutrino.db import Database, migrations
from neutrino.identity import Identity

pytestmark = [
    pytest.mark.compat,
    # openstacksdk 4.22 warns about InfluxDB on every connection, configured or not.
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack.*"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state = tmp_path_factory.mktemp("identity")
    url = f"sqlite:///{state}/neutrino.db"
    settings = Settings(
        state_dir=state, database_url=url, bind_port=free_port(), admin_password="admin-pw"
    )
    db = Database(url)
    migrations.upgrade(db.engine)
    identity = Identity(db, settings)
    identity.bootstrap()
    app = Starlette(routes=[Mount("/identity", routes=routes(identity, settings))])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.bind_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield settings
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


def test_openstacksdk_authenticates_and_finds_the_network_endpoint(server: Settings) -> None:
    conn = openstack.connect(
        auth_url=f"{server.public_url}/identity/v3",
        username="admin",
        password="admin-pw",
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )
    try:
        assert conn.authorize().startswith("gAAAAA")
        endpoint = conn.session.get_endpoint(service_type="network", interface="public")
        assert endpoint == f"{server.public_url}/networking"
        assert conn.identity.get_project(conn.current_project_id).name == "admin"
        assert {p.name for p in conn.identity.projects()} == {"admin", "demo", "service"}
    finally:
        conn.close()


def test_openstack_cli_issues_a_token(server: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    cli = Path(sys.executable).with_name("openstack")
    result = subprocess.run(
        [
            str(cli),
            "--os-auth-url",
            f"{server.public_url}/identity/v3",
            "--os-username",
            "demo",
            # One argument: a generated password may begin with "-", which argparse would
            # take for an option.
            f"--os-password={_demo_password(server)}",
            "--os-project-name",
            "demo",
            "--os-user-domain-name",
            "Default",
            "--os-project-domain-name",
            "Default",
            "--os-identity-api-version",
            "3",
            "token",
            "issue",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)
    assert token["id"].startswith("gAAAAA") and token["project_id"] and token["user_id"]


def test_openstack_cli_uses_the_written_clouds_yaml(server: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_CLIENT_CONFIG_FILE=str(server.state_dir / "clouds.yaml"), OS_CLOUD="neutrino-admin"
    )
    cli = Path(sys.executable).with_name("openstack")
    result = subprocess.run(
        [str(cli), "project", "list", "-f", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {p["Name"] for p in json.loads(result.stdout)} == {"admin", "demo", "service"}


def _demo_password(settings: Settings) -> str:
    clouds = yaml.safe_load((settings.state_dir / "clouds.yaml").read_text())["clouds"]
    return str(clouds["neutrino-demo"]["auth"]["password"])
