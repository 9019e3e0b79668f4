"""A small client of neutrino's public HTTP APIs, configured as the openstack CLI is.

The cloud comes from `--os-cloud`, else OS_CLOUD, else `neutrino-admin`; the
clouds.yaml from OS_CLIENT_CONFIG_FILE, else the usual places
(./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml),
else the one `neutrino serve` wrote into its state directory. The agent and
the `neutrino` command both use it; neither ever opens the database.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from neutrino.config import default_state_dir

if TYPE_CHECKING:
    import httpx

DEFAULT_CLOUD = "neutrino-admin"


class ClientError(Exception):
    """A failed call, with the server's own message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def config_candidates() -> list[Path]:
    env = os.environ.get("OS_CLIENT_CONFIG_FILE")
    if env:
        return [Path(env)]
    return [
        Path("clouds.yaml"),
        Path.home() / ".config/openstack/clouds.yaml",
        Path("/etc/openstack/clouds.yaml"),
        default_state_dir() / "clouds.yaml",
    ]


@dataclass(frozen=True)
class Cloud:
    name: str
    auth: dict[str, str]
    region: str | None = None
    interface: str = "public"

    @classmethod
    def load(cls, name: str | None = None, config_file: Path | None = None) -> Cloud:
        name = name or os.environ.get("OS_CLOUD") or DEFAULT_CLOUD
        for path in [config_file] if config_file else config_candidates():
            if path.is_file():
                clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds", {})
                if name in clouds:
                    entry = clouds[name]
                    return cls(
                        name,
                        entry["auth"],
                        entry.get("region_name"),
                        entry.get("interface", "public"),
                    )
        raise ClientError(
            0,
            f"cloud {name!r} not found in clouds.yaml (looked in: "
            f"{', '.join(str(p) for p in ([config_file] if config_file else config_candidates()))}"
            "); "
            "start `neutrino serve` or set OS_CLIENT_CONFIG_FILE and OS_CLOUD",
        )


class Session:
    """A logged-in caller: finds endpoints in the catalog, logs in again when the token expires.

    With `token_cache` (a file only its owner reads), a token and its catalog are kept there
    for the next process until shortly before they expire: logging in checks a password, which
    costs the server a deliberately slow hash, and a short-lived process (a CNI plugin's) would
    pay it on every run.
    """

    def __init__(
        self, cloud: Cloud, timeout: float = 60.0, token_cache: Path | None = None
    ) -> None:
        import httpx  # with the first session: `neutrino serve` without its agent opens none

        self.cloud = cloud
        self.http = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._catalog: list[dict[str, Any]] = []
        self.token_cache = token_cache

    def login(self) -> None:
        auth = self.cloud.auth
        domain = {"name": auth.get("user_domain_name", "Default")}
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": auth["username"],
                            "password": auth["password"],
                            "domain": domain,
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": auth["project_name"],
                        "domain": {"name": auth.get("project_domain_name", "Default")},
                    }
                },
            }
        }
        response = self.http.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body)
        if response.status_code != 201:
            raise ClientError(
                response.status_code, f"login to {auth['auth_url']} failed: {response.text}"
            )
        self._token = response.headers["X-Subject-Token"]
        self._catalog = response.json()["token"].get("catalog", [])
        if self.token_cache is not None:
            kept = {
                "token": self._token,
                "catalog": self._catalog,
                "expires_at": response.json()["token"]["expires_at"],
            }
            self.token_cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fresh = self.token_cache.with_suffix(f".{os.getpid()}")
            fresh.touch(mode=0o600)
            fresh.write_text(json.dumps(kept))
            fresh.replace(self.token_cache)

    def _cached(self) -> bool:
        """Take the cached token and catalog, unless they expire within a minute."""
        if self.token_cache is None:
            return False
        try:
            kept = json.loads(self.token_cache.read_text())
            expires = datetime.fromisoformat(kept["expires_at"])
        except (OSError, ValueError, KeyError):
            return False
        if expires - timedelta(minutes=1) < datetime.now(UTC):
            return False
        self._token, self._catalog = kept["token"], kept["catalog"]
        return True

    def endpoint(self, service_type: str) -> str:
        self.token()
        for service in self._catalog:
            if service["type"] == service_type:
                for endpoint in service["endpoints"]:
                    if endpoint["interface"] == self.cloud.interface:
                        url: str = endpoint["url"]
                        return url.rstrip("/")
        raise ClientError(0, f"no {service_type} endpoint in the catalog")

    def token(self, renew: bool = False) -> str:
        """The token of this session (a new one when `renew`: the last one has expired)."""
        with self._lock:
            if renew or (self._token is None and not self._cached()):
                self.login()
            return self._token or ""

    def request(
        self, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One call with the token; a 401 (expired token) logs in once more and retries."""
        for attempt in range(2):
            token = self.token(renew=bool(attempt))
            response = self.http.request(
                method, url, headers={**(headers or {}), "X-Auth-Token": token}, **kwargs
            )
            if response.status_code != 401:
                return response
        return response

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """`request`, raising ClientError with the server's message on 4xx/5xx; the JSON body or
        None."""
        response = self.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise ClientError(response.status_code, error_message(response))
        return response.json() if response.content else None

    def close(self) -> None:
        self.http.close()


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text or f"HTTP {response.status_code}"
    for key in ("NeutronError", "error", "faultstring"):
        if isinstance(body, dict) and key in body:
            inner = body[key]
            return inner.get("message", str(inner)) if isinstance(inner, dict) else str(inner)
    return str(body)
