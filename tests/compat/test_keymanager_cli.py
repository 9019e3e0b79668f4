"""The unchanged python-barbicanclient against a live neutrino: its library, as Octavia uses it,
and its `openstack secret` commands, storing a secret and a certificate container and reading
them back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import openstack.config
import pytest
import yaml
from barbicanclient import client as barbican
from barbicanclient import exceptions

from tests.conftest import CLI_BACKEND, LiveServer

pytestmark = [pytest.mark.compat, CLI_BACKEND]

CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"


def key_manager(live_server: LiveServer, cloud: str) -> Any:
    config = openstack.config.OpenStackConfig(config_files=[str(live_server.clouds_yaml)])
    return barbican.Client(session=config.get_one(cloud).get_session())


@pytest.fixture(scope="module")
def demo(live_server: LiveServer) -> Iterator[Any]:
    yield key_manager(live_server, "neutrino-demo")


def test_library_stores_and_reads_a_secret_and_a_certificate_container(
    live_server: LiveServer, demo: Any
) -> None:
    blob = bytes(range(200))
    secret = demo.secrets.create(name="octavia-p12", payload=blob)
    ref = secret.store()
    assert ref.startswith(live_server.url + "/key-manager/v1/secrets/")
    again = demo.secrets.get(ref)
    assert (again.name, again.payload, again.secret_type) == ("octavia-p12", blob, "opaque")
    assert ref in [s.secret_ref for s in demo.secrets.list(name="octavia-p12")]

    certificate = demo.secrets.create(name="cert", payload=CERTIFICATE)
    key = demo.secrets.create(name="key", payload=PRIVATE_KEY)
    container = demo.containers.create_certificate(
        name="tls", certificate=certificate, private_key=key
    )
    container_ref = container.store()
    read = demo.containers.get(container_ref)
    assert (read.name, read.certificate.payload, read.private_key.payload) == (
        "tls",
        CERTIFICATE,
        PRIVATE_KEY,
    )
    # Octavia registers its listener, and grants its service user read.
    listener = live_server.url + "/load-balancer/v2/listeners/1"
    registered = demo.containers.register_consumer(container_ref, "lbaas", listener)
    assert registered.consumers == [{"name": "lbaas", "URL": listener}]
    admin = key_manager(live_server, "neutrino-admin")
    with pytest.raises(exceptions.HTTPClientError) as refused:
        admin.containers.get(container_ref).certificate.payload  # noqa: B018
    assert refused.value.status_code == 403
    admin_user = admin.client.session.get_user_id()
    for acl_ref in (container_ref, read.certificate.secret_ref, read.private_key.secret_ref):
        acl = demo.acls.get(acl_ref)
        acl.get("read").users.append(admin_user)
        acl.submit()
    assert demo.acls.get(container_ref).get("read").users == [admin_user]
    assert admin.containers.get(container_ref).certificate.payload == CERTIFICATE
    demo.containers.remove_consumer(container_ref, "lbaas", listener)
    demo.containers.delete(container_ref)
    with pytest.raises(exceptions.HTTPClientError) as gone:
        demo.containers.get(container_ref).name  # noqa: B018
    assert gone.value.status_code == 404
    assert "Secrets container not found." in str(gone.value)


def test_openstack_secret_commands(live_server: LiveServer) -> None:
    def cli(*args: str) -> Any:
        return live_server.cli(*args, cloud="neutrino-demo")

    stored = cli("secret", "store", "--name", "cli-secret", "--payload", "p4ssw0rd")
    href = stored["Secret href"]
    assert href.startswith(live_server.url + "/key-manager/v1/secrets/")
    assert stored["Name"] == "cli-secret"
    assert cli("secret", "get", href, "--payload")["Payload"] == "p4ssw0rd"
    p12 = base64.b64encode(b"\x30\x82binary").decode()
    binary = cli(
        "secret",
        "store",
        "--name",
        "cli-p12",
        "--payload-content-type",
        "application/octet-stream",
        "--payload-content-encoding",
        "base64",
        "--payload",
        p12,
    )["Secret href"]
    content_types = cli("secret", "get", binary)["Content types"]
    assert content_types == {"default": "application/octet-stream"}
    certificate = cli("secret", "store", "--name", "cert", "--payload", CERTIFICATE)["Secret href"]
    key = cli("secret", "store", "--name", "key", "--payload", PRIVATE_KEY)["Secret href"]
    container = cli(
        "secret",
        "container",
        "create",
        "--name",
        "cli-tls",
        "--type",
        "certificate",
        "--secret",
        f"certificate={certificate}",
        "--secret",
        f"private_key={key}",
    )
    container_href = container["Container href"]
    # The client's container has a datetime, which its JSON output cannot print: YAML can.
    got = live_server.run_cli(
        "secret", "container", "get", container_href, "-f", "yaml", cloud="neutrino-demo"
    )
    assert got.returncode == 0, got.stderr
    shown = yaml.safe_load(got.stdout)
    assert (shown["Name"], shown["Type"], shown["Certificate"], shown["Private Key"]) == (
        "cli-tls",
        "certificate",
        certificate,
        key,
    )
    # Another project's user reads the container once its ACL names the user.
    as_admin = ("secret", "container", "get", container_href, "-f", "yaml")
    refused = live_server.run_cli(*as_admin).stderr
    assert "Forbidden: Container retrieval attempt not allowed - please review your " in refused
    admin_user = live_server.cli("token", "issue")["user_id"]
    [acl] = cli("acl", "user", "add", "--user", admin_user, container_href)
    assert (acl["Operation Type"], acl["Project Access"], acl["Users"]) == (
        "read",
        True,
        [admin_user],
    )
    assert live_server.run_cli(*as_admin).returncode == 0
    listed = cli("secret", "container", "list")
    assert [c["Container href"] for c in listed] == [container_href]
    assert {s["Name"] for s in cli("secret", "list")} >= {"cli-secret", "cert", "key"}
    cli_args = ("secret", "container", "delete", container_href)
    assert live_server.run_cli(*cli_args, cloud="neutrino-demo").returncode == 0
    assert live_server.run_cli("secret", "delete", href, cloud="neutrino-demo").returncode == 0
    missing = live_server.run_cli("secret", "get", href, cloud="neutrino-demo")
    assert missing.returncode != 0
    assert "Secret not found." in missing.stderr
